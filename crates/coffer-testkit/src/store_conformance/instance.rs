//! The instance row (create, security-domain lifecycle, purge protection), settings and instance facts (meta).
use super::prelude::*;

/// A fresh store is empty: no instance and nothing in any aggregate (every other test starts from here).
pub async fn a_fresh_store_is_empty(store: Arc<dyn Store>) {
    assert!(store.instance().await.expect("instance").is_none());
    assert!(store.settings().await.expect("settings").is_empty());
    assert!(store.meta("last_backup_success").await.expect("meta").is_none());
    assert!(store.key_counts().await.expect("key_counts").is_empty());
    assert!(store.list_keys(None, 25).await.expect("list_keys").is_empty());
    assert!(store.list_deleted(None, 25).await.expect("list_deleted").is_empty());
    assert!(store.dump_keys().await.expect("dump_keys").is_empty());
    assert!(store.purge_due(i64::MAX).await.expect("purge_due").is_empty());
    assert!(store.rotation_policies().await.expect("rotation_policies").is_empty());
    assert!(store.list_principals().await.expect("list_principals").is_empty());
    assert!(store.list_groups().await.expect("list_groups").is_empty());
    assert!(store.custom_roles().await.expect("custom_roles").is_empty());
    assert!(store.role_assignments(None).await.expect("role_assignments").is_empty());
    assert!(store.list_eligible().await.expect("list_eligible").is_empty());
    assert!(store.activations().await.expect("activations").is_empty());
    assert!(store.policy_assignments().await.expect("policy_assignments").is_empty());
}

/// `create_instance` writes the instance row, its bootstrap principal and its initial assignments together.
pub async fn create_instance_writes_the_instance_its_bootstrap_principal_and_assignments(store: Arc<dyn Store>) {
    let want = instance(LifecycleState::Provisioned);
    let admin = principal(&want.bootstrap_object_id, &guid(0xb1));
    let assignments = [
        assignment(&guid(0xc1), CRYPTO_USER, &admin.object_id),
        assignment(&guid(0xc2), "515eb02d-2335-4d2d-92f2-b1cbdf9c3778", &admin.object_id),
    ];
    store
        .create_instance(&want, &admin, &assignments)
        .await
        .expect("create_instance");
    let got = store.instance().await.expect("instance").expect("the instance exists");
    assert_same_instance(&got, &want);
    let p = store
        .principal(&admin.object_id)
        .await
        .expect("principal")
        .expect("the bootstrap principal exists");
    assert_same_principal(&p, &admin);
    let mut stored = store.role_assignments(None).await.expect("role_assignments");
    stored.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(stored, assignments);
}

/// A second `create_instance` fails and writes nothing: neither its instance row nor its bootstrap principal.
pub async fn a_second_create_instance_fails_and_writes_nothing(store: Arc<dyn Store>) {
    let first = instance(LifecycleState::Active);
    store
        .create_instance(&first, &principal(&first.bootstrap_object_id, &guid(0xb1)), &[])
        .await
        .expect("create_instance");
    let mut second = instance(LifecycleState::Provisioned);
    second.instance_id = guid(0xa9);
    second.bootstrap_object_id = guid(0xb9);
    let admin2 = principal(&second.bootstrap_object_id, &guid(0xb8));
    let r = store
        .create_instance(
            &second,
            &admin2,
            &[assignment(&guid(0xc9), CRYPTO_USER, &admin2.object_id)],
        )
        .await;
    assert!(r.is_err(), "a second instance was created: {r:?}");
    assert_same_instance(&store.instance().await.expect("instance").expect("exists"), &first);
    assert!(store.principal(&admin2.object_id).await.expect("principal").is_none());
    assert!(
        store
            .role_assignment(&guid(0xc9))
            .await
            .expect("role_assignment")
            .is_none()
    );
}

/// `create_instance` is one transaction: when an initial assignment cannot be written (a taken name), there is no
/// instance and no bootstrap principal afterwards.
pub async fn create_instance_is_all_or_nothing(store: Arc<dyn Store>) {
    let ins = instance(LifecycleState::Provisioned);
    let admin = principal(&ins.bootstrap_object_id, &guid(0xb1));
    let same_name = [
        assignment(&guid(0xc1), CRYPTO_USER, &admin.object_id),
        assignment(&guid(0xc1), CRYPTO_USER, &admin.object_id),
    ];
    let r = store.create_instance(&ins, &admin, &same_name).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert!(store.instance().await.expect("instance").is_none());
    assert!(store.principal(&admin.object_id).await.expect("principal").is_none());
    assert!(store.role_assignments(None).await.expect("role_assignments").is_empty());
    // And the store is usable afterwards.
    store
        .create_instance(&ins, &admin, &same_name[..1])
        .await
        .expect("create_instance");
}

/// `record_download` activates a provisioned instance and records the first activation time only.
pub async fn record_download_activates_a_provisioned_instance_once(store: Arc<dyn Store>) {
    let ins = instance(LifecycleState::Provisioned);
    store
        .create_instance(&ins, &principal(&ins.bootstrap_object_id, &guid(0xb1)), &[])
        .await
        .expect("create_instance");
    store.record_download(T0 + 100).await.expect("record_download");
    let got = store.instance().await.expect("instance").expect("exists");
    assert_eq!(got.state, LifecycleState::Active);
    assert_eq!(got.activated, Some(T0 + 100));
    store.record_download(T0 + 200).await.expect("record_download");
    let got = store.instance().await.expect("instance").expect("exists");
    assert_eq!(got.state, LifecycleState::Active);
    assert_eq!(
        got.activated,
        Some(T0 + 100),
        "a later download does not move the activation time"
    );
}

/// `install_domain_secret` activates an instance in recovery: new sealed secrets, exchange key dropped; on an
/// instance that is not in recovery it is a conflict (as SQLite answers) and changes nothing.
pub async fn install_domain_secret_activates_a_recovering_instance_once(store: Arc<dyn Store>) {
    let ins = instance(LifecycleState::Recovery);
    store
        .create_instance(&ins, &principal(&ins.bootstrap_object_id, &guid(0xb1)), &[])
        .await
        .expect("create_instance");
    store
        .install_domain_secret(b"recovered ds", b"recovered token key", T0 + 50)
        .await
        .expect("install_domain_secret");
    let got = store.instance().await.expect("instance").expect("exists");
    assert_eq!(got.state, LifecycleState::Active);
    assert_eq!(got.sealed_domain_secret, b"recovered ds");
    assert_eq!(got.sealed_token_key, b"recovered token key");
    assert_eq!(got.activated, Some(T0 + 50));
    assert!(got.sealed_exchange_key.is_none(), "the exchange key is dropped");
    assert_eq!(got.instance_id, ins.instance_id);

    let r = store.install_domain_secret(b"other", b"other", T0 + 60).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let again = store.instance().await.expect("instance").expect("exists");
    assert_eq!(again.sealed_domain_secret, b"recovered ds");
    assert_eq!(again.activated, Some(T0 + 50));
}

/// `reseal_domain_secret` replaces the sealed domain secret and nothing else.
pub async fn reseal_domain_secret_replaces_only_the_domain_secret(store: Arc<dyn Store>) {
    let ins = instance(LifecycleState::Active);
    store
        .create_instance(&ins, &principal(&ins.bootstrap_object_id, &guid(0xb1)), &[])
        .await
        .expect("create_instance");
    store
        .reseal_domain_secret(b"resealed under pkcs11")
        .await
        .expect("reseal");
    let got = store.instance().await.expect("instance").expect("exists");
    let want = InstanceRecord {
        sealed_domain_secret: b"resealed under pkcs11".to_vec(),
        ..ins
    };
    assert_same_instance(&got, &want);
}

/// Purge protection can be switched on, and stays on.
pub async fn purge_protection_is_switched_on_and_stays_on(store: Arc<dyn Store>) {
    let ins = instance(LifecycleState::Active);
    store
        .create_instance(&ins, &principal(&ins.bootstrap_object_id, &guid(0xb1)), &[])
        .await
        .expect("create_instance");
    assert!(
        !store
            .instance()
            .await
            .expect("instance")
            .expect("exists")
            .purge_protection
    );
    store.enable_purge_protection().await.expect("enable");
    assert!(
        store
            .instance()
            .await
            .expect("instance")
            .expect("exists")
            .purge_protection
    );
    store.enable_purge_protection().await.expect("enable again");
    assert!(
        store
            .instance()
            .await
            .expect("instance")
            .expect("exists")
            .purge_protection
    );
}

/// Settings are upserted by name; meta facts are kept apart from settings.
pub async fn settings_and_meta_are_upserted_by_name(store: Arc<dyn Store>) {
    store.put_setting("b", "2", T0).await.expect("put_setting");
    store.put_setting("a", "1", T0).await.expect("put_setting");
    store.put_setting("a", "3", T0 + 1).await.expect("put_setting again");
    let mut s = store.settings().await.expect("settings");
    s.sort();
    assert_eq!(
        s,
        [("a".to_string(), "3".to_string()), ("b".to_string(), "2".to_string())]
    );

    store.put_meta("last_backup_success", "x", T0).await.expect("put_meta");
    store
        .put_meta("last_backup_success", "y", T0 + 1)
        .await
        .expect("put_meta again");
    assert_eq!(
        store.meta("last_backup_success").await.expect("meta").as_deref(),
        Some("y")
    );
    assert!(
        store.meta("a").await.expect("meta").is_none(),
        "a setting is not a meta fact"
    );
    assert_eq!(
        store.settings().await.expect("settings").len(),
        2,
        "a meta fact is not a setting"
    );
}

#[track_caller]
fn assert_same_instance(got: &InstanceRecord, want: &InstanceRecord) {
    assert_eq!(got.instance_id, want.instance_id);
    assert_eq!(got.instance_name, want.instance_name);
    assert_eq!(got.tenant_id, want.tenant_id);
    assert_eq!(got.created, want.created);
    assert_eq!(got.dev, want.dev);
    assert_eq!(got.sealed_domain_secret, want.sealed_domain_secret);
    assert_eq!(got.sealed_token_key, want.sealed_token_key);
    assert_eq!(got.soft_delete_retention_days, want.soft_delete_retention_days);
    assert_eq!(got.purge_protection, want.purge_protection);
    assert_eq!(got.bootstrap_object_id, want.bootstrap_object_id);
    assert_eq!(got.state, want.state);
    assert_eq!(got.sealed_exchange_key, want.sealed_exchange_key);
    assert_eq!(got.exchange_cert, want.exchange_cert);
    assert_eq!(got.activated, want.activated);
}
