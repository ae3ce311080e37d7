//! Identities: principals with their secrets, certificates and networks; groups and memberships.
use super::prelude::*;

/// A principal reads back by object id and by client id, with its secrets and certificates; `list_principals` is
/// ordered by object id. (Networks: `principal_networks_are_set_on_existing_principals`; a principal created with
/// networks: `keys::restore_full_into_an_empty_store_writes_everything`.)
pub async fn a_principal_reads_back_by_object_id_and_client_id(store: Arc<dyn Store>) {
    let mut p = principal(&guid(2), &guid(102));
    p.secrets.push(secret("second", T0 + 1));
    p.certificates.push(b"second cert".to_vec());
    store.create_principal(&p).await.expect("create_principal");
    store
        .create_principal(&principal(&guid(1), &guid(103)))
        .await
        .expect("create_principal");

    assert_same_principal(
        &store.principal(&guid(2)).await.expect("principal").expect("exists"),
        &p,
    );
    assert_same_principal(
        &store
            .principal_by_client_id(&guid(102))
            .await
            .expect("by client id")
            .expect("exists"),
        &p,
    );
    assert_eq!(
        store.principal_networks(&guid(2)).await.expect("networks"),
        Some(Vec::new())
    );
    assert!(
        store.principal(&guid(102)).await.expect("principal").is_none(),
        "a client id is not an object id"
    );
    assert!(
        store
            .principal_by_client_id(&guid(2))
            .await
            .expect("by client id")
            .is_none()
    );
    assert!(store.principal_networks(&guid(9)).await.expect("networks").is_none());
    let ids: Vec<_> = store
        .list_principals()
        .await
        .expect("list_principals")
        .into_iter()
        .map(|p| p.object_id)
        .collect();
    assert_eq!(ids, [guid(1), guid(2)]);
}

/// A taken object id or client id is a conflict, and the existing principal is unchanged.
pub async fn a_taken_object_id_or_client_id_is_a_conflict(store: Arc<dyn Store>) {
    let p = principal(&guid(1), &guid(101));
    store.create_principal(&p).await.expect("create_principal");
    for dup in [principal(&guid(1), &guid(999)), principal(&guid(999), &guid(101))] {
        let r = store.create_principal(&dup).await;
        assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    }
    assert!(store.principal(&guid(999)).await.expect("principal").is_none());
    assert!(
        store
            .principal_by_client_id(&guid(999))
            .await
            .expect("principal")
            .is_none()
    );
    let all = store.list_principals().await.expect("list");
    assert_eq!(all.len(), 1);
    assert_same_principal(&all[0], &p);
}

/// Client secrets and certificates are added to existing principals only; a secret is deleted by its id.
pub async fn secrets_and_certificates_are_added_and_removed(store: Arc<dyn Store>) {
    let p = principal(&guid(1), &guid(101));
    store.create_principal(&p).await.expect("create_principal");
    let s2 = secret("s2", T0 + 5);
    assert!(
        !store.add_secret(&guid(9), &s2).await.expect("add_secret"),
        "absent principal"
    );
    assert!(store.add_secret(&guid(1), &s2).await.expect("add_secret"));
    assert!(!store.add_certificate(&guid(9), b"c2").await.expect("add_certificate"));
    assert!(store.add_certificate(&guid(1), b"c2").await.expect("add_certificate"));
    let mut want = p.clone();
    want.secrets.push(s2);
    want.certificates.push(b"c2".to_vec());
    assert_same_principal(
        &store.principal(&guid(1)).await.expect("principal").expect("exists"),
        &want,
    );

    assert!(!store.delete_secret(&guid(1), "nope").await.expect("delete_secret"));
    assert!(!store.delete_secret(&guid(9), "s2").await.expect("delete_secret"));
    assert!(store.delete_secret(&guid(1), "s2").await.expect("delete_secret"));
    assert!(
        !store.delete_secret(&guid(1), "s2").await.expect("delete_secret"),
        "deleted once"
    );
    want.secrets.pop();
    assert_same_principal(
        &store.principal(&guid(1)).await.expect("principal").expect("exists"),
        &want,
    );
}

/// A principal's networks are set (and cleared) on existing principals only.
pub async fn principal_networks_are_set_on_existing_principals(store: Arc<dyn Store>) {
    store
        .create_principal(&principal(&guid(1), &guid(101)))
        .await
        .expect("create_principal");
    assert_eq!(
        store.principal_networks(&guid(1)).await.expect("networks"),
        Some(Vec::new())
    );
    assert!(!store.set_principal_networks(&guid(9), &networks()).await.expect("set"));
    assert!(store.principal_networks(&guid(9)).await.expect("networks").is_none());
    assert!(store.set_principal_networks(&guid(1), &networks()).await.expect("set"));
    assert_eq!(
        store.principal_networks(&guid(1)).await.expect("networks"),
        Some(networks())
    );
    let p = store.principal(&guid(1)).await.expect("principal").expect("exists");
    assert_eq!(p.allowed_networks, networks());
    assert!(store.set_principal_networks(&guid(1), &[]).await.expect("set"));
    assert_eq!(
        store.principal_networks(&guid(1)).await.expect("networks"),
        Some(Vec::new())
    );
}

/// Deleting a principal removes its credentials, its memberships and the role assignments naming it, and nothing
/// of anyone else; its ids are free afterwards.
pub async fn delete_principal_removes_its_credentials_memberships_and_assignments(store: Arc<dyn Store>) {
    let p = principal(&guid(1), &guid(101));
    let other = principal(&guid(2), &guid(102));
    store.create_principal(&p).await.expect("create_principal");
    store.create_principal(&other).await.expect("create_principal");
    store.create_group(&group(&guid(401), &[])).await.expect("create_group");
    for m in [guid(1), guid(2)] {
        assert!(store.add_group_member(&guid(401), &m).await.expect("add_group_member"));
    }
    store
        .create_role_assignment(&assignment(&guid(201), CRYPTO_USER, &guid(1)), false)
        .await
        .expect("assign");
    store
        .create_role_assignment(&assignment(&guid(202), CRYPTO_USER, &guid(2)), false)
        .await
        .expect("assign");

    assert!(store.delete_principal(&guid(1)).await.expect("delete_principal"));
    assert!(
        !store.delete_principal(&guid(1)).await.expect("delete_principal"),
        "deleted once"
    );
    assert!(store.principal(&guid(1)).await.expect("principal").is_none());
    assert!(
        store
            .principal_by_client_id(&guid(101))
            .await
            .expect("by client id")
            .is_none()
    );
    assert!(store.principal_networks(&guid(1)).await.expect("networks").is_none());
    assert!(store.groups_of(&guid(1)).await.expect("groups_of").is_empty());
    let g = store.group(&guid(401)).await.expect("group").expect("the group stays");
    assert_eq!(members_of(&g), [guid(2)]);
    let left: Vec<_> = store
        .role_assignments(None)
        .await
        .expect("assignments")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(left, [guid(202)]);
    assert_same_principal(
        &store.principal(&guid(2)).await.expect("principal").expect("kept"),
        &other,
    );

    // The ids are free, and the new principal has only its own credentials.
    let mut again = principal(&guid(1), &guid(101));
    again.secrets = vec![secret("fresh", T0 + 9)];
    again.certificates = Vec::new();
    store.create_principal(&again).await.expect("create_principal again");
    assert_same_principal(
        &store.principal(&guid(1)).await.expect("principal").expect("exists"),
        &again,
    );
}

/// Principal ids compare case-insensitively in the store (as in the in-memory state): deleting a principal also
/// removes an assignment that names it in another case.
pub async fn delete_principal_removes_assignments_naming_it_in_any_case(store: Arc<dyn Store>) {
    let id = "0000000a-0000-4000-8000-00000000000b";
    store
        .create_principal(&principal(id, &guid(101)))
        .await
        .expect("create_principal");
    store
        .create_role_assignment(&assignment(&guid(201), CRYPTO_USER, &id.to_ascii_uppercase()), false)
        .await
        .expect("assign");
    let found = store
        .role_assignments(Some(&[id.to_string()]))
        .await
        .expect("role_assignments");
    assert_eq!(found.len(), 1, "the assignment names the principal");
    assert!(store.delete_principal(id).await.expect("delete_principal"));
    assert!(
        store.role_assignments(None).await.expect("assignments").is_empty(),
        "an assignment naming the deleted principal (in another case) is left behind"
    );
}

/// Groups: a taken object id is a conflict; a group reads back with its members; `list_groups` holds them all;
/// deleting one removes its memberships and the assignments naming it.
pub async fn groups_are_created_read_and_deleted_with_their_memberships(store: Arc<dyn Store>) {
    let g = group(&guid(401), &[]);
    store.create_group(&g).await.expect("create_group");
    store.create_group(&group(&guid(402), &[])).await.expect("create_group");
    let mut dup = group(&guid(401), &[]);
    dup.display_name = "impostor".into();
    let r = store.create_group(&dup).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    let got = store.group(&guid(401)).await.expect("group").expect("exists");
    assert_eq!(got.display_name, g.display_name);
    assert_eq!(got.created, g.created);
    assert!(got.members.is_empty());
    assert!(store.group(&guid(409)).await.expect("group").is_none());

    for m in [guid(2), guid(1)] {
        assert!(store.add_group_member(&guid(401), &m).await.expect("add"));
    }
    assert!(store.add_group_member(&guid(402), &guid(1)).await.expect("add"));
    store
        .create_role_assignment(&assignment(&guid(201), CRYPTO_USER, &guid(401)), false)
        .await
        .expect("assign to the group");
    let mut all = store.list_groups().await.expect("list_groups");
    all.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    assert_eq!(all.len(), 2);
    assert_eq!(members_of(&all[0]), [guid(1), guid(2)]);
    assert_eq!(members_of(&all[1]), [guid(1)]);

    assert!(store.delete_group(&guid(401)).await.expect("delete_group"));
    assert!(
        !store.delete_group(&guid(401)).await.expect("delete_group"),
        "deleted once"
    );
    assert!(store.group(&guid(401)).await.expect("group").is_none());
    assert_eq!(store.groups_of(&guid(1)).await.expect("groups_of"), [guid(402)]);
    assert!(store.groups_of(&guid(2)).await.expect("groups_of").is_empty());
    assert!(store.role_assignments(None).await.expect("assignments").is_empty());
    // The id is free again, and the new group starts empty.
    store.create_group(&g).await.expect("create_group again");
    assert!(
        store
            .group(&guid(401))
            .await
            .expect("group")
            .expect("exists")
            .members
            .is_empty()
    );
}

/// Adding a member is idempotent and needs the group; removing answers whether it was a member; `groups_of` lists
/// a member's groups.
pub async fn group_membership_is_idempotent_and_needs_the_group(store: Arc<dyn Store>) {
    store.create_group(&group(&guid(401), &[])).await.expect("create_group");
    store.create_group(&group(&guid(402), &[])).await.expect("create_group");
    assert!(
        !store.add_group_member(&guid(409), &guid(1)).await.expect("add"),
        "absent group"
    );
    assert!(store.add_group_member(&guid(401), &guid(1)).await.expect("add"));
    assert!(store.add_group_member(&guid(401), &guid(1)).await.expect("add again"));
    assert!(store.add_group_member(&guid(402), &guid(1)).await.expect("add"));
    assert_eq!(
        members_of(&store.group(&guid(401)).await.expect("group").expect("exists")),
        [guid(1)]
    );
    let mut of = store.groups_of(&guid(1)).await.expect("groups_of");
    of.sort();
    assert_eq!(of, [guid(401), guid(402)]);
    assert!(store.remove_group_member(&guid(401), &guid(1)).await.expect("remove"));
    assert!(
        !store.remove_group_member(&guid(401), &guid(1)).await.expect("remove"),
        "not a member any more"
    );
    assert!(!store.remove_group_member(&guid(409), &guid(1)).await.expect("remove"));
    assert_eq!(store.groups_of(&guid(1)).await.expect("groups_of"), [guid(402)]);
    assert!(store.groups_of(&guid(7)).await.expect("groups_of").is_empty());
}
