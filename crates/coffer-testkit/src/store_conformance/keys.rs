//! Keys: versions, reads and list paging, update, soft-delete/recover/purge, `purge_due`, rotation policies,
//! counts, and the full backup's `dump_keys`/`restore_full`.
use coffer_core::key::Deletion;
use coffer_core::policy::Effect;

use super::prelude::*;

async fn add(store: &Arc<dyn Store>, rec: &KeyVersionRecord) -> KeyName {
    store
        .insert_versions(std::slice::from_ref(rec), NewVersionMode::AddVersion)
        .await
        .expect("insert_versions")
}

fn deletion(at: i64) -> Deletion {
    Deletion {
        deleted_date: at,
        scheduled_purge_date: at + 7 * 86_400,
    }
}

/// A new key reads back field for field: as the latest version, by its version id, in `all_versions`.
pub async fn a_new_key_reads_back_every_field(store: Arc<dyn Store>) {
    let rec = full_version("signing-key", 1, T0);
    assert_eq!(add(&store, &rec).await, rec.name);
    let n = name("signing-key");
    assert_same_version(&store.key_version(&n, None).await.expect("read").expect("latest"), &rec);
    let by_id = store.key_version(&n, Some(&rec.version)).await.expect("read");
    assert_same_version(&by_id.expect("by version"), &rec);
    let all = store.all_versions(&n).await.expect("all_versions");
    assert_eq!(all.len(), 1);
    assert_same_version(&all[0], &rec);
    assert_eq!(store.version_count(&n).await.expect("version_count"), 1);
    for other in [ec_version("signing-key", 2, T0), ec_version("other", 1, T0)] {
        let r = store
            .key_version(&other.name, Some(&other.version))
            .await
            .expect("read");
        assert!(r.is_none(), "{}/{} does not exist", other.name, other.version.as_str());
    }
    assert!(store.key_version(&name("other"), None).await.expect("read").is_none());
    assert!(
        store
            .all_versions(&name("other"))
            .await
            .expect("all_versions")
            .is_empty()
    );
}

/// Key names are case-insensitive and keep their first spelling: a version added under another spelling joins
/// the key, and every read answers with the first spelling.
pub async fn key_names_are_case_insensitive_and_keep_the_first_spelling(store: Arc<dyn Store>) {
    add(&store, &ec_version("MyKey", 1, T0)).await;
    let stored = add(&store, &ec_version("mykey", 2, T0 + 1)).await;
    assert_eq!(stored.as_str(), "MyKey", "insert_versions returns the stored spelling");
    let latest = store
        .key_version(&name("MYKEY"), None)
        .await
        .expect("read")
        .expect("latest");
    let mut want = ec_version("mykey", 2, T0 + 1);
    want.name = name("MyKey");
    assert_same_version(&latest, &want);
    assert_eq!(store.version_count(&name("mYkEy")).await.expect("count"), 2);
    assert_eq!(
        names_of(&store.all_versions(&name("mykey")).await.expect("all_versions")),
        ["MyKey", "MyKey"]
    );
    assert_eq!(names_of(&store.list_keys(None, 10).await.expect("list")), ["MyKey"]);
}

/// A new version becomes the latest; `all_versions` is in write order (oldest first) whatever the ids, and
/// `list_versions` pages by version id.
pub async fn versions_are_kept_in_write_order_and_paged_by_id(store: Arc<dyn Store>) {
    // Ids deliberately not in write order.
    for (i, v) in [0xff_u128, 0x01, 0x80].into_iter().enumerate() {
        add(&store, &ec_version("k", v, T0 + i64::try_from(i).expect("small"))).await;
    }
    let n = name("k");
    let latest = store.key_version(&n, None).await.expect("read").expect("latest");
    assert_eq!(latest.version, version(0x80), "the last written version is the latest");
    let written = versions_of(&store.all_versions(&n).await.expect("all_versions"));
    assert_eq!(
        written,
        [version(0xff), version(0x01), version(0x80)].map(|v| v.as_str().to_string())
    );

    let page1 = store.list_versions(&n, None, 2).await.expect("list_versions");
    assert_eq!(
        versions_of(&page1),
        [version(0x01), version(0x80)].map(|v| v.as_str().to_string())
    );
    let page2 = store
        .list_versions(&n, Some(version(0x80).as_str()), 2)
        .await
        .expect("list_versions");
    assert_eq!(versions_of(&page2), [version(0xff).as_str().to_string()]);
    let page3 = store
        .list_versions(&n, Some(version(0xff).as_str()), 2)
        .await
        .expect("list_versions");
    assert!(page3.is_empty());
    assert!(
        store
            .list_versions(&name("absent"), None, 5)
            .await
            .expect("list")
            .is_empty()
    );
}

/// `RestoreWholeKey` writes all versions of an absent key (the last is the latest) and is a conflict when any key
/// of that name exists, live or soft-deleted.
pub async fn restore_whole_key_needs_the_name_to_be_free(store: Arc<dyn Store>) {
    let backup = [
        ec_version("r", 1, T0),
        rsa_version("r", 2, T0 + 1),
        ec_version("r", 3, T0 + 2),
    ];
    let stored = store
        .insert_versions(&backup, NewVersionMode::RestoreWholeKey)
        .await
        .expect("restore");
    assert_eq!(stored.as_str(), "r");
    let all = store.all_versions(&name("r")).await.expect("all_versions");
    assert_eq!(all.len(), 3);
    for (got, want) in all.iter().zip(&backup) {
        assert_same_version(got, want);
    }
    assert_eq!(
        store
            .key_version(&name("r"), None)
            .await
            .expect("read")
            .expect("latest")
            .version,
        version(3)
    );

    let again = store
        .insert_versions(&[ec_version("R", 9, T0)], NewVersionMode::RestoreWholeKey)
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "live key: {again:?}");
    store
        .soft_delete(&name("r"), deletion(T0 + 10))
        .await
        .expect("soft_delete");
    let deleted = store
        .insert_versions(&[ec_version("r", 9, T0)], NewVersionMode::RestoreWholeKey)
        .await;
    assert!(matches!(deleted, Err(Error::Conflict(_))), "deleted key: {deleted:?}");
    assert_eq!(
        store.version_count(&name("r")).await.expect("count"),
        3,
        "nothing was added"
    );
}

/// Adding a version to a soft-deleted key is a conflict (its name cannot be reused until purged) and adds nothing.
pub async fn add_version_to_a_soft_deleted_key_is_a_conflict(store: Arc<dyn Store>) {
    add(&store, &ec_version("gone", 1, T0)).await;
    store
        .soft_delete(&name("gone"), deletion(T0 + 1))
        .await
        .expect("soft_delete");
    let r = store
        .insert_versions(&[ec_version("GONE", 2, T0 + 2)], NewVersionMode::AddVersion)
        .await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let recovered = store
        .recover(&name("gone"))
        .await
        .expect("recover")
        .expect("was deleted");
    assert_eq!(recovered.version, version(1));
    assert_eq!(store.all_versions(&name("gone")).await.expect("all").len(), 1);
}

/// `MergeFromBackup`: a live key gains the versions it lacks and keeps its own (fields and latest); an absent key is
/// created; a soft-deleted one is a conflict.
pub async fn merge_from_backup_adds_only_missing_versions(store: Arc<dyn Store>) {
    let own1 = ec_version("m", 1, T0);
    let own2 = ec_version("m", 2, T0 + 1);
    add(&store, &own1).await;
    add(&store, &own2).await;
    let mut backup1 = ec_version("M", 1, T0);
    backup1.attributes.enabled = false;
    backup1.tags.insert("from".into(), "backup".into());
    let backup3 = ec_version("M", 3, T0 - 5);
    let stored = store
        .insert_versions(&[backup1, backup3.clone()], NewVersionMode::MergeFromBackup)
        .await
        .expect("merge");
    assert_eq!(stored.as_str(), "m");
    let n = name("m");
    assert_same_version(
        &store
            .key_version(&n, Some(&version(1)))
            .await
            .expect("read")
            .expect("v1"),
        &own1,
    );
    let mut want3 = backup3;
    want3.name = name("m");
    assert_same_version(
        &store
            .key_version(&n, Some(&version(3)))
            .await
            .expect("read")
            .expect("v3"),
        &want3,
    );
    assert_eq!(store.version_count(&n).await.expect("count"), 3);
    assert_eq!(
        store
            .key_version(&n, None)
            .await
            .expect("read")
            .expect("latest")
            .version,
        version(2),
        "the key keeps its latest"
    );

    let fresh = [ec_version("new", 1, T0), ec_version("new", 2, T0)];
    store
        .insert_versions(&fresh, NewVersionMode::MergeFromBackup)
        .await
        .expect("merge into nothing");
    assert_eq!(
        store
            .key_version(&name("new"), None)
            .await
            .expect("read")
            .expect("latest")
            .version,
        version(2)
    );

    store.soft_delete(&n, deletion(T0 + 9)).await.expect("soft_delete");
    let r = store
        .insert_versions(&[ec_version("m", 4, T0)], NewVersionMode::MergeFromBackup)
        .await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
}

/// `list_keys` gives the latest version of each live key, ordered by name case-insensitively, paged by a marker
/// compared case-insensitively (core passes the last name it returned, in its stored spelling).
pub async fn list_keys_pages_live_keys_by_name_case_insensitively(store: Arc<dyn Store>) {
    for (i, k) in ["b", "A", "c", "D", "e"].into_iter().enumerate() {
        let i = u128::try_from(i).expect("small");
        add(&store, &ec_version(k, 2 * i + 1, T0)).await;
    }
    add(&store, &ec_version("b", 99, T0 + 1)).await;
    store
        .soft_delete(&name("c"), deletion(T0 + 2))
        .await
        .expect("soft_delete");

    let page1 = store.list_keys(None, 2).await.expect("list_keys");
    assert_eq!(names_of(&page1), ["A", "b"]);
    assert_eq!(page1[1].version, version(99), "the latest version of each key");
    let page2 = store.list_keys(Some("b"), 2).await.expect("list_keys");
    assert_eq!(names_of(&page2), ["D", "e"]);
    assert_eq!(names_of(&store.list_keys(Some("B"), 1).await.expect("list")), ["D"]);
    assert_eq!(names_of(&store.list_keys(Some("D"), 5).await.expect("list")), ["e"]);
    assert!(store.list_keys(Some("e"), 5).await.expect("list").is_empty());
    assert_eq!(store.list_keys(None, 100).await.expect("list").len(), 4);
}

/// `update_version` replaces the mutable fields of one version; the key's other versions, the material and the
/// public key stay as they were.
pub async fn update_version_replaces_the_mutable_fields_of_one_version(store: Arc<dyn Store>) {
    let v1 = ec_version("u", 1, T0);
    let v2 = ec_version("u", 2, T0 + 1);
    add(&store, &v1).await;
    add(&store, &v2).await;
    let mut changed = v1.clone();
    changed.key_ops = vec![KeyOperation::Verify];
    changed.attributes.enabled = false;
    changed.attributes.not_before = Some(T0 + 100);
    changed.attributes.expires = Some(T0 + 200);
    changed.attributes.updated = T0 + 50;
    changed.tags.insert("stage".into(), "retired".into());
    changed.release_policy = Some(r#"{"version":"1.0.0"}"#.into());
    store.update_version(&changed).await.expect("update_version");
    let n = name("u");
    assert_same_version(
        &store
            .key_version(&n, Some(&version(1)))
            .await
            .expect("read")
            .expect("v1"),
        &changed,
    );
    assert_same_version(&store.key_version(&n, None).await.expect("read").expect("v2"), &v2);

    // The mutable fields only: material and public key are not rewritten by an update.
    let mut sneaky = changed.clone();
    sneaky.sealed_material = b"replaced material".to_vec();
    sneaky.public_key = PublicKey::Ec {
        curve: Curve::P256,
        x: vec![9; 32],
        y: vec![9; 32],
    };
    store.update_version(&sneaky).await.expect("update_version");
    assert_same_version(
        &store
            .key_version(&n, Some(&version(1)))
            .await
            .expect("read")
            .expect("v1"),
        &changed,
    );
}

/// Updating a version of a soft-deleted or absent key, or an absent version, is `KeyNotFound`.
pub async fn update_version_of_a_missing_or_deleted_key_is_key_not_found(store: Arc<dyn Store>) {
    let r = store.update_version(&ec_version("none", 1, T0)).await;
    assert!(matches!(r, Err(Error::KeyNotFound(_))), "absent key: {r:?}");
    add(&store, &ec_version("d", 1, T0)).await;
    let r = store.update_version(&ec_version("d", 2, T0)).await;
    assert!(matches!(r, Err(Error::KeyNotFound(_))), "absent version: {r:?}");
    store
        .soft_delete(&name("d"), deletion(T0 + 1))
        .await
        .expect("soft_delete");
    let mut upd = ec_version("d", 1, T0);
    upd.attributes.enabled = false;
    let r = store.update_version(&upd).await;
    assert!(matches!(r, Err(Error::KeyNotFound(_))), "deleted key: {r:?}");
    let back = store.recover(&name("d")).await.expect("recover").expect("deleted");
    assert!(back.attributes.enabled, "the deleted key was not changed");
}

/// Soft-delete hides a key from every live read and shows it as deleted; recover brings it back with all its
/// versions; each answers "nothing" (`None`) when the key is not in the state it needs.
pub async fn soft_delete_and_recover_move_a_key_between_live_and_deleted(store: Arc<dyn Store>) {
    add(&store, &ec_version("Sd", 1, T0)).await;
    let v2 = rsa_version("Sd", 2, T0 + 1);
    add(&store, &v2).await;
    let n = name("sd");
    assert!(
        store.recover(&n).await.expect("recover").is_none(),
        "a live key is not recovered"
    );
    assert!(store.deleted_key(&n).await.expect("deleted_key").is_none());

    let gone = store.soft_delete(&n, deletion(T0 + 10)).await.expect("soft_delete");
    let mut want = v2.clone();
    want.name = name("Sd");
    assert_same_version(&gone.expect("returns the latest version"), &want);
    assert!(store.key_version(&n, None).await.expect("read").is_none());
    assert!(store.key_version(&n, Some(&version(1))).await.expect("read").is_none());
    assert!(store.all_versions(&n).await.expect("all").is_empty());
    assert!(
        store
            .list_versions(&n, None, 5)
            .await
            .expect("list_versions")
            .is_empty()
    );
    assert!(store.list_keys(None, 5).await.expect("list_keys").is_empty());
    let d = store.deleted_key(&n).await.expect("deleted_key").expect("deleted");
    assert_eq!(d.deletion, deletion(T0 + 10));
    assert_same_version(&d.latest, &want);
    let listed = store.list_deleted(None, 5).await.expect("list_deleted");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].latest.name.as_str(), "Sd");
    assert_eq!(listed[0].deletion, deletion(T0 + 10));
    assert!(
        store
            .soft_delete(&n, deletion(T0 + 20))
            .await
            .expect("soft_delete")
            .is_none(),
        "a deleted key is not deleted again"
    );
    assert_eq!(
        store
            .deleted_key(&n)
            .await
            .expect("deleted_key")
            .expect("deleted")
            .deletion,
        deletion(T0 + 10),
        "and keeps its first deletion"
    );

    let back = store.recover(&name("SD")).await.expect("recover").expect("was deleted");
    assert_same_version(&back, &want);
    assert!(store.recover(&n).await.expect("recover").is_none());
    assert!(store.deleted_key(&n).await.expect("deleted_key").is_none());
    assert!(store.list_deleted(None, 5).await.expect("list_deleted").is_empty());
    assert_eq!(store.all_versions(&n).await.expect("all").len(), 2);
    assert!(
        store
            .soft_delete(&name("absent"), deletion(T0))
            .await
            .expect("soft_delete")
            .is_none()
    );
}

/// `list_deleted` pages soft-deleted keys by name (case-insensitively), with their deletion facts.
pub async fn list_deleted_pages_deleted_keys_by_name(store: Arc<dyn Store>) {
    for (i, k) in ["c", "A", "b", "live"].into_iter().enumerate() {
        let i = i64::try_from(i).expect("small");
        add(&store, &ec_version(k, 1, T0)).await;
        if k != "live" {
            store
                .soft_delete(&name(k), deletion(T0 + i))
                .await
                .expect("soft_delete");
        }
    }
    let page1 = store.list_deleted(None, 2).await.expect("list_deleted");
    let names: Vec<_> = page1.iter().map(|d| d.latest.name.as_str().to_string()).collect();
    assert_eq!(names, ["A", "b"]);
    assert_eq!(page1[0].deletion, deletion(T0 + 1));
    let page2 = store.list_deleted(Some("B"), 2).await.expect("list_deleted");
    let names: Vec<_> = page2.iter().map(|d| d.latest.name.as_str().to_string()).collect();
    assert_eq!(names, ["c"]);
    assert_eq!(page2[0].deletion, deletion(T0));
}

/// Purge removes a soft-deleted key for good (versions, rotation policy); the name is then free. A live or absent
/// key is not purged.
pub async fn purge_removes_a_deleted_key_and_frees_its_name(store: Arc<dyn Store>) {
    add(&store, &ec_version("p", 1, T0)).await;
    add(&store, &ec_version("p", 2, T0)).await;
    let n = name("p");
    assert!(store.put_rotation_policy(&n, "{\"a\":1}", T0).await.expect("put"));
    assert!(!store.purge(&n).await.expect("purge"), "a live key is not purged");
    assert_eq!(store.all_versions(&n).await.expect("all").len(), 2);
    store.soft_delete(&n, deletion(T0 + 1)).await.expect("soft_delete");
    assert!(store.purge(&name("P")).await.expect("purge"));
    assert!(!store.purge(&n).await.expect("purge"), "purged once");
    assert!(store.deleted_key(&n).await.expect("deleted_key").is_none());
    assert!(store.list_deleted(None, 5).await.expect("list_deleted").is_empty());
    assert_eq!(store.version_count(&n).await.expect("count"), 0);
    assert!(store.rotation_policy(&n).await.expect("policy").is_none());
    assert!(store.dump_keys().await.expect("dump").is_empty());

    // A new key of that name starts from nothing (and may reuse a version id of the purged one).
    let reborn = rsa_version("P", 1, T0 + 5);
    assert_eq!(add(&store, &reborn).await.as_str(), "P");
    assert_same_version(
        &store.key_version(&n, None).await.expect("read").expect("latest"),
        &reborn,
    );
    assert_eq!(store.version_count(&n).await.expect("count"), 1);
    assert!(store.rotation_policy(&n).await.expect("policy").is_none());
    assert!(!store.purge(&name("absent")).await.expect("purge"));
}

/// `purge_due` lists the soft-deleted keys whose scheduled purge date is at or before `now`, never live ones.
pub async fn purge_due_lists_deleted_keys_due_at_or_before_now(store: Arc<dyn Store>) {
    for k in ["early", "late", "live"] {
        add(&store, &ec_version(k, 1, T0)).await;
    }
    let at = |d: i64| Deletion {
        deleted_date: T0,
        scheduled_purge_date: d,
    };
    store
        .soft_delete(&name("early"), at(T0 + 100))
        .await
        .expect("soft_delete");
    store
        .soft_delete(&name("late"), at(T0 + 200))
        .await
        .expect("soft_delete");
    let due = |v: Vec<KeyName>| {
        let mut v: Vec<String> = v.into_iter().map(|n| n.as_str().to_string()).collect();
        v.sort();
        v
    };
    assert!(store.purge_due(T0 + 99).await.expect("purge_due").is_empty());
    assert_eq!(due(store.purge_due(T0 + 100).await.expect("purge_due")), ["early"]);
    assert_eq!(due(store.purge_due(T0 + 150).await.expect("purge_due")), ["early"]);
    assert_eq!(
        due(store.purge_due(T0 + 200).await.expect("purge_due")),
        ["early", "late"]
    );
    store.recover(&name("late")).await.expect("recover");
    assert_eq!(due(store.purge_due(i64::MAX).await.expect("purge_due")), ["early"]);
}

/// A rotation policy can be written only on a live key (created kept, updated moves); `rotation_policies` lists live
/// keys' policies under the keys' stored spelling.
pub async fn rotation_policies_belong_to_live_keys(store: Arc<dyn Store>) {
    let n = name("RotMe");
    assert!(
        !store.put_rotation_policy(&n, "{}", T0).await.expect("put"),
        "absent key"
    );
    add(&store, &ec_version("RotMe", 1, T0)).await;
    add(&store, &ec_version("plain", 1, T0)).await;
    assert!(
        store
            .put_rotation_policy(&name("rotme"), "{\"v\":1}", T0 + 1)
            .await
            .expect("put")
    );
    assert_eq!(
        store.rotation_policy(&n).await.expect("policy"),
        Some(("{\"v\":1}".to_string(), T0 + 1, T0 + 1))
    );
    assert!(store.put_rotation_policy(&n, "{\"v\":2}", T0 + 2).await.expect("put"));
    assert_eq!(
        store.rotation_policy(&name("ROTME")).await.expect("policy"),
        Some(("{\"v\":2}".to_string(), T0 + 1, T0 + 2)),
        "replaced: created kept, updated moved"
    );
    assert!(store.rotation_policy(&name("plain")).await.expect("policy").is_none());
    let listed = store.rotation_policies().await.expect("rotation_policies");
    assert_eq!(listed, [(name("RotMe"), "{\"v\":2}".to_string())]);

    store.soft_delete(&n, deletion(T0 + 3)).await.expect("soft_delete");
    assert!(
        store.rotation_policies().await.expect("list").is_empty(),
        "deleted keys are not listed"
    );
    assert!(
        !store.put_rotation_policy(&n, "{\"v\":3}", T0 + 4).await.expect("put"),
        "deleted key"
    );
    store.recover(&n).await.expect("recover");
    assert_eq!(
        store.rotation_policies().await.expect("list"),
        [(name("RotMe"), "{\"v\":2}".to_string())],
        "recovered with its policy"
    );
}

/// `key_counts` counts live keys by the type of their current version.
pub async fn key_counts_count_live_keys_by_current_type(store: Arc<dyn Store>) {
    add(&store, &ec_version("e1", 1, T0)).await;
    add(&store, &ec_version("e2", 1, T0)).await;
    add(&store, &rsa_version("r1", 1, T0)).await;
    add(&store, &oct_version("o1", 1, T0)).await;
    // The current version decides: e2 becomes an RSA key; e3 is deleted.
    add(&store, &rsa_version("e2", 2, T0)).await;
    add(&store, &ec_version("e3", 1, T0)).await;
    store.soft_delete(&name("e3"), deletion(T0)).await.expect("soft_delete");
    let mut counts = store.key_counts().await.expect("key_counts");
    counts.sort();
    assert_eq!(
        counts,
        [("EC".to_string(), 1), ("RSA".to_string(), 2), ("oct".to_string(), 1)]
    );
}

/// `dump_keys` holds every key, live and deleted, with all versions oldest first, its deletion and its rotation
/// policy.
pub async fn dump_keys_holds_every_key_with_versions_deletion_and_policy(store: Arc<dyn Store>) {
    let a = [ec_version("Alpha", 0xf0, T0), full_version("alpha", 0x0f, T0 + 1)];
    for v in &a {
        add(&store, v).await;
    }
    store
        .put_rotation_policy(&name("alpha"), "{\"p\":1}", T0 + 2)
        .await
        .expect("put");
    add(&store, &oct_version("beta", 1, T0)).await;
    store
        .soft_delete(&name("beta"), deletion(T0 + 3))
        .await
        .expect("soft_delete");

    let mut dump = store.dump_keys().await.expect("dump_keys");
    dump.sort_by_key(|d| d.versions.first().map(|v| v.name.as_str().to_ascii_lowercase()));
    assert_eq!(dump.len(), 2);
    assert_eq!(dump[0].versions.len(), 2);
    let mut want_a1 = a[1].clone();
    want_a1.name = name("Alpha");
    assert_same_version(&dump[0].versions[0], &a[0]);
    assert_same_version(&dump[0].versions[1], &want_a1);
    assert_eq!(dump[0].deletion, None);
    assert_eq!(dump[0].rotation_policy, Some(("{\"p\":1}".to_string(), T0 + 2, T0 + 2)));
    assert_eq!(dump[1].versions.len(), 1);
    assert_same_version(&dump[1].versions[0], &oct_version("beta", 1, T0));
    assert_eq!(dump[1].deletion, Some(deletion(T0 + 3)));
    assert_eq!(dump[1].rotation_policy, None);
}

fn full_restore_set() -> RestoreSet {
    let live = KeyDump {
        versions: vec![ec_version("Live", 1, T0), full_version("Live", 2, T0 + 1)],
        deletion: None,
        rotation_policy: Some(("{\"r\":1}".into(), T0, T0 + 1)),
    };
    let deleted = KeyDump {
        versions: vec![oct_version("dead", 1, T0)],
        deletion: Some(deletion(T0 + 5)),
        rotation_policy: None,
    };
    let mut p = principal(&guid(1), &guid(101));
    p.allowed_networks = networks();
    let mut a = assignment(&guid(201), &guid(301), &guid(1));
    a.allowed_networks = networks();
    a.expires = Some(T0 + 999);
    RestoreSet {
        keys: vec![live, deleted],
        custom_roles: vec![custom_role(&guid(301))],
        assignments: vec![a],
        principals: vec![p],
        groups: vec![group(&guid(401), &[&guid(1)])],
        settings: vec![("purge_job".into(), "off".into())],
        policies: Some(vec![policy("require-expiry", Effect::Deny, T0)]),
        identities: true,
        deletion_for_missing: deletion(T0 + 50),
    }
}

/// `restore_full` into an empty store writes everything the backup holds: keys with versions, deletion state and
/// rotation policies; custom roles, principals (with their networks), groups, assignments, settings and policies.
pub async fn restore_full_into_an_empty_store_writes_everything(store: Arc<dyn Store>) {
    let set = full_restore_set();
    store.restore_full(&set).await.expect("restore_full");

    let mut dump = store.dump_keys().await.expect("dump_keys");
    dump.sort_by_key(|d| d.versions.first().map(|v| v.name.as_str().to_ascii_lowercase()));
    assert_eq!(dump.len(), 2);
    for (got, want) in dump.iter().zip(&[&set.keys[1], &set.keys[0]]) {
        assert_eq!(got.versions.len(), want.versions.len());
        for (g, w) in got.versions.iter().zip(&want.versions) {
            assert_same_version(g, w);
        }
        assert_eq!(got.deletion, want.deletion);
        assert_eq!(got.rotation_policy, want.rotation_policy);
    }
    assert_eq!(
        store
            .key_version(&name("live"), None)
            .await
            .expect("read")
            .expect("latest")
            .version,
        version(2)
    );
    assert_eq!(store.custom_roles().await.expect("roles"), set.custom_roles);
    assert_eq!(
        store.role_assignments(None).await.expect("assignments"),
        set.assignments
    );
    let p = store.principal(&guid(1)).await.expect("principal").expect("restored");
    assert_same_principal(&p, &set.principals[0]);
    assert_eq!(
        store.principal_networks(&guid(1)).await.expect("networks"),
        Some(networks()),
        "a restored principal keeps its network limit"
    );
    let g = store.group(&guid(401)).await.expect("group").expect("restored");
    assert_eq!(members_of(&g), [guid(1)]);
    assert_eq!(g.display_name, set.groups[0].display_name);
    assert_eq!(store.settings().await.expect("settings"), set.settings);
    assert_eq!(
        store.policy_assignments().await.expect("policies"),
        set.policies.clone().unwrap_or_default()
    );
}

/// A restore never erases: a present key keeps its own versions, deletion state and latest and gains the backup's
/// missing versions; live keys the backup lacks are soft-deleted with `deletion_for_missing` (deleted ones keep
/// their deletion); present roles, principals, groups, assignments and policies are kept as they are and missing
/// ones added; settings take the backup's values.
pub async fn restore_full_keeps_what_exists_and_soft_deletes_live_keys_it_lacks(store: Arc<dyn Store>) {
    // Present before the restore.
    let own1 = ec_version("live", 1, T0 - 100);
    let own3 = ec_version("live", 3, T0 - 50);
    add(&store, &own1).await;
    add(&store, &own3).await;
    add(&store, &ec_version("dead", 7, T0 - 100)).await;
    store
        .soft_delete(&name("dead"), deletion(T0 - 10))
        .await
        .expect("soft_delete");
    add(&store, &ec_version("newer", 1, T0 + 100)).await;
    add(&store, &ec_version("trash", 1, T0 + 100)).await;
    store
        .soft_delete(&name("trash"), deletion(T0 + 110))
        .await
        .expect("soft_delete");
    let mut own_role = custom_role(&guid(301));
    own_role.role_name = "renamed since".into();
    store.put_custom_role(&own_role, T0, 50).await.expect("put_custom_role");
    let own_principal = principal(&guid(1), &guid(101));
    store.create_principal(&own_principal).await.expect("create_principal");
    let own_policy = policy("require-expiry", Effect::Audit, T0 + 1);
    store.put_policy_assignment(&own_policy, 200).await.expect("put_policy");
    store.put_setting("purge_job", "on", T0).await.expect("put_setting");
    store.put_setting("mine", "kept", T0).await.expect("put_setting");

    let mut set = full_restore_set();
    set.policies
        .get_or_insert_with(Vec::new)
        .push(policy("second", Effect::Audit, T0));
    store.restore_full(&set).await.expect("restore_full");

    // "live": own v1 and v3 kept (v1 not overwritten), backup's v2 added, own latest (v3) kept.
    let live = name("live");
    assert_same_version(
        &store
            .key_version(&live, Some(&version(1)))
            .await
            .expect("read")
            .expect("v1"),
        &own1,
    );
    let mut backup2 = full_version("Live", 2, T0 + 1);
    backup2.name = live.clone();
    assert_same_version(
        &store
            .key_version(&live, Some(&version(2)))
            .await
            .expect("read")
            .expect("v2"),
        &backup2,
    );
    assert_eq!(store.version_count(&live).await.expect("count"), 3);
    assert_eq!(
        store
            .key_version(&live, None)
            .await
            .expect("read")
            .expect("latest")
            .version,
        version(3)
    );
    // "dead" is deleted here and in the backup: it keeps its own deletion, gains the backup's version.
    let dead = store
        .deleted_key(&name("dead"))
        .await
        .expect("deleted_key")
        .expect("still deleted");
    assert_eq!(dead.deletion, deletion(T0 - 10));
    assert_eq!(dead.latest.version, version(7), "its own latest");
    // "newer" (live, not in the backup) is soft-deleted, recoverable; "trash" keeps its own deletion.
    let newer = store
        .deleted_key(&name("newer"))
        .await
        .expect("deleted_key")
        .expect("soft-deleted");
    assert_eq!(newer.deletion, set.deletion_for_missing);
    let trash = store
        .deleted_key(&name("trash"))
        .await
        .expect("deleted_key")
        .expect("deleted");
    assert_eq!(trash.deletion, deletion(T0 + 110));
    let mut live_names: Vec<_> = names_of(&store.list_keys(None, 10).await.expect("list_keys"));
    live_names.sort();
    assert_eq!(live_names, ["live"]);

    assert_eq!(
        store.custom_roles().await.expect("roles"),
        [own_role],
        "present role kept"
    );
    assert_same_principal(
        &store.principal(&guid(1)).await.expect("principal").expect("kept"),
        &own_principal,
    );
    assert_eq!(store.list_principals().await.expect("principals").len(), 1);
    assert_eq!(
        store.role_assignments(None).await.expect("assignments"),
        set.assignments,
        "missing added"
    );
    let mut policies = store.policy_assignments().await.expect("policies");
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(policies, [own_policy, policy("second", Effect::Audit, T0)]);
    let mut settings = store.settings().await.expect("settings");
    settings.sort();
    assert_eq!(
        settings,
        [
            ("mine".to_string(), "kept".to_string()),
            ("purge_job".to_string(), "off".to_string())
        ]
    );
}

/// Without `identities`, a restore leaves principals, groups and role assignments exactly as they are; with
/// `policies: None` (a backup from before policies) it leaves policy assignments as they are.
pub async fn restore_full_without_identities_leaves_them_alone(store: Arc<dyn Store>) {
    store
        .put_policy_assignment(&policy("own", Effect::Deny, T0), 200)
        .await
        .expect("put_policy");
    let mut set = full_restore_set();
    set.identities = false;
    set.policies = None;
    store.restore_full(&set).await.expect("restore_full");
    assert!(store.list_principals().await.expect("principals").is_empty());
    assert!(store.list_groups().await.expect("groups").is_empty());
    assert!(store.role_assignments(None).await.expect("assignments").is_empty());
    assert_eq!(
        store.policy_assignments().await.expect("policies"),
        [policy("own", Effect::Deny, T0)]
    );
    assert_eq!(
        store.custom_roles().await.expect("roles"),
        set.custom_roles,
        "roles are not identities"
    );
    assert_eq!(store.dump_keys().await.expect("dump").len(), 2);
}
