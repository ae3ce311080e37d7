//! Local RBAC: custom role definitions (and their limit), role assignments, eligible assignments and activations.
//! (Network limits of principals: `identities`; of assignments: here.)
use coffer_core::rbac::Scope;

use super::prelude::*;

/// A custom role reads back as written (as a custom role); writing the same id again replaces it; deleting it
/// returns it once.
pub async fn custom_roles_are_written_replaced_and_deleted(store: Arc<dyn Store>) {
    let r1 = custom_role(&guid(301));
    let r2 = custom_role(&guid(302));
    store.put_custom_role(&r2, T0, 50).await.expect("put");
    store.put_custom_role(&r1, T0, 50).await.expect("put");
    assert_eq!(
        store.custom_role(&guid(301)).await.expect("custom_role"),
        Some(r1.clone())
    );
    assert!(store.custom_role(&guid(309)).await.expect("custom_role").is_none());
    let mut all = store.custom_roles().await.expect("custom_roles");
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, [r1.clone(), r2.clone()]);

    let mut changed = r1.clone();
    changed.role_name = "renamed".into();
    changed.description = "now also signs".into();
    changed.permissions[0]
        .data_actions
        .push("Microsoft.KeyVault/managedHsm/keys/sign/action".into());
    changed.assignable_scopes = vec!["/keys".into()];
    store.put_custom_role(&changed, T0 + 1, 50).await.expect("replace");
    assert_eq!(
        store.custom_role(&guid(301)).await.expect("custom_role"),
        Some(changed.clone())
    );
    assert_eq!(
        store.custom_roles().await.expect("custom_roles").len(),
        2,
        "replaced, not added"
    );

    assert_eq!(
        store.delete_custom_role(&guid(301)).await.expect("delete"),
        Some(changed)
    );
    assert_eq!(store.delete_custom_role(&guid(301)).await.expect("delete"), None);
    assert_eq!(store.custom_roles().await.expect("custom_roles"), [r2]);
}

/// At most `limit` custom roles exist: a new one beyond it is refused with `BadParameter` (the error core gives
/// for a full limit), while replacing an existing one at the limit is fine.
pub async fn put_custom_role_refuses_a_new_role_beyond_the_limit(store: Arc<dyn Store>) {
    store
        .put_custom_role(&custom_role(&guid(301)), T0, 2)
        .await
        .expect("put");
    store
        .put_custom_role(&custom_role(&guid(302)), T0, 2)
        .await
        .expect("put");
    let r = store.put_custom_role(&custom_role(&guid(303)), T0, 2).await;
    assert!(matches!(r, Err(Error::BadParameter(_))), "{r:?}");
    assert!(store.custom_role(&guid(303)).await.expect("custom_role").is_none());
    let mut changed = custom_role(&guid(302));
    changed.role_name = "still fits".into();
    store
        .put_custom_role(&changed, T0 + 1, 2)
        .await
        .expect("replace at the limit");
    assert_eq!(store.custom_role(&guid(302)).await.expect("custom_role"), Some(changed));
    // A higher limit lets the third in.
    store
        .put_custom_role(&custom_role(&guid(303)), T0, 3)
        .await
        .expect("put");
    assert_eq!(store.custom_roles().await.expect("custom_roles").len(), 3);
}

/// A custom role referenced by an assignment cannot be deleted (conflict, role kept) until the assignment is gone.
pub async fn a_custom_role_in_use_cannot_be_deleted(store: Arc<dyn Store>) {
    let role = custom_role(&guid(301));
    store.put_custom_role(&role, T0, 50).await.expect("put");
    store
        .create_role_assignment(&assignment(&guid(201), &guid(301), &guid(1)), true)
        .await
        .expect("assign the custom role");
    let r = store.delete_custom_role(&guid(301)).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert_eq!(
        store.custom_role(&guid(301)).await.expect("custom_role"),
        Some(role.clone())
    );
    store
        .delete_role_assignment(&guid(201))
        .await
        .expect("delete assignment");
    assert_eq!(store.delete_custom_role(&guid(301)).await.expect("delete"), Some(role));
}

/// Assigning a custom role that does not exist is refused (`BadParameter`) and writes nothing; a built-in role id
/// (`custom_role` false) is not checked by the store.
pub async fn an_assignment_of_a_missing_custom_role_is_refused(store: Arc<dyn Store>) {
    let r = store
        .create_role_assignment(&assignment(&guid(201), &guid(309), &guid(1)), true)
        .await;
    assert!(matches!(r, Err(Error::BadParameter(_))), "{r:?}");
    assert!(
        store
            .role_assignment(&guid(201))
            .await
            .expect("role_assignment")
            .is_none()
    );
    store
        .create_role_assignment(&assignment(&guid(201), CRYPTO_USER, &guid(1)), false)
        .await
        .expect("a built-in role");
}

/// A role assignment reads back field for field (scope, expiry, networks, justification); a taken name is a
/// conflict that changes nothing; delete returns it once; `touch` records the last use.
pub async fn role_assignments_round_trip_and_a_taken_name_is_a_conflict(store: Arc<dyn Store>) {
    let mut a = assignment(&guid(201), CRYPTO_USER, &guid(1));
    a.scope = Scope::Key("Payments-Key".into());
    a.expires = Some(T0 + 3600);
    a.allowed_networks = networks();
    a.justification = Some("on call".into());
    store.create_role_assignment(&a, false).await.expect("create");
    let b = assignment(&guid(202), CRYPTO_USER, &guid(2));
    store.create_role_assignment(&b, false).await.expect("create");
    assert_eq!(store.role_assignment(&guid(201)).await.expect("read"), Some(a.clone()));

    let dup = assignment(&guid(201), CRYPTO_USER, &guid(3));
    let r = store.create_role_assignment(&dup, false).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert_eq!(
        store.role_assignment(&guid(201)).await.expect("read"),
        Some(a.clone()),
        "unchanged"
    );
    let mut all = store.role_assignments(None).await.expect("list");
    all.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(all, [a.clone(), b.clone()]);

    store.touch_role_assignment(&guid(202), T0 + 60).await.expect("touch");
    let touched = store.role_assignment(&guid(202)).await.expect("read").expect("exists");
    assert_eq!(touched.last_used, Some(T0 + 60));

    assert_eq!(store.delete_role_assignment(&guid(201)).await.expect("delete"), Some(a));
    assert_eq!(store.delete_role_assignment(&guid(201)).await.expect("delete"), None);
    assert!(store.role_assignment(&guid(201)).await.expect("read").is_none());
}

/// `role_assignments(Some(ids))` gives the assignments naming any of the ids, compared case-insensitively, each
/// once.
pub async fn role_assignments_filter_by_principal_ids_case_insensitively(store: Arc<dyn Store>) {
    let upper = "0000000A-0000-4000-8000-00000000000B";
    let lower = upper.to_ascii_lowercase();
    store
        .create_role_assignment(&assignment(&guid(201), CRYPTO_USER, upper), false)
        .await
        .expect("create");
    store
        .create_role_assignment(&assignment(&guid(202), CRYPTO_USER, &guid(2)), false)
        .await
        .expect("create");
    store
        .create_role_assignment(&assignment(&guid(203), CRYPTO_USER, &guid(3)), false)
        .await
        .expect("create");
    let names = |v: Vec<RoleAssignment>| {
        let mut n: Vec<String> = v.into_iter().map(|a| a.name).collect();
        n.sort();
        n
    };
    let ids = [lower.clone(), guid(2)];
    assert_eq!(
        names(store.role_assignments(Some(&ids)).await.expect("filter")),
        [guid(201), guid(202)]
    );
    let twice = [lower, upper.to_string()];
    assert_eq!(
        names(store.role_assignments(Some(&twice)).await.expect("filter")),
        [guid(201)]
    );
    assert!(
        store
            .role_assignments(Some(&[guid(9)]))
            .await
            .expect("filter")
            .is_empty()
    );
    assert!(store.role_assignments(Some(&[])).await.expect("filter").is_empty());
}

/// Eligible assignments: read back, a taken name is a conflict, deleted once. Names are looked up
/// case-insensitively (core passes the name from the URL as given).
pub async fn eligible_assignments_round_trip_and_a_taken_name_is_a_conflict(store: Arc<dyn Store>) {
    let e = eligible(&guid(501), CRYPTO_USER, &guid(1));
    store.create_eligible(&e).await.expect("create_eligible");
    let mut dup = eligible(&guid(501), CRYPTO_USER, &guid(2));
    dup.max_duration_secs = 60;
    let r = store.create_eligible(&dup).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    store
        .create_eligible(&eligible(&guid(502), CRYPTO_USER, &guid(2)))
        .await
        .expect("create_eligible");
    assert_eq!(store.eligible(&guid(501)).await.expect("eligible"), Some(e.clone()));
    assert_eq!(
        store.eligible(&guid(501).to_ascii_uppercase()).await.expect("eligible"),
        Some(e.clone())
    );
    let mut all = store.list_eligible().await.expect("list");
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(all, [e, eligible(&guid(502), CRYPTO_USER, &guid(2))]);
    assert!(
        store
            .delete_eligible(&guid(501).to_ascii_uppercase())
            .await
            .expect("delete")
    );
    assert!(
        !store.delete_eligible(&guid(501)).await.expect("delete"),
        "deleted once"
    );
    assert!(store.eligible(&guid(501)).await.expect("eligible").is_none());
}

/// `activate` writes the activation and its time-bound assignment together; `activations` lists newest first.
pub async fn activate_writes_the_activation_and_its_assignment(store: Arc<dyn Store>) {
    store
        .create_eligible(&eligible(&guid(501), CRYPTO_USER, &guid(0xe0)))
        .await
        .expect("create_eligible");
    let (act1, asg1) = activation(&guid(601), &guid(501), &guid(701), T0);
    let (act2, asg2) = activation(&guid(602), &guid(501), &guid(702), T0 + 10);
    store.activate(&act1, &asg1).await.expect("activate");
    store.activate(&act2, &asg2).await.expect("activate");
    assert_eq!(store.activations().await.expect("activations"), [act2, act1]);
    assert_eq!(store.role_assignment(&guid(701)).await.expect("read"), Some(asg1));
    assert_eq!(store.role_assignment(&guid(702)).await.expect("read"), Some(asg2));
}

/// An activation whose assignment name is taken is a conflict and records nothing (one transaction).
pub async fn activate_is_all_or_nothing(store: Arc<dyn Store>) {
    let taken = assignment(&guid(701), CRYPTO_USER, &guid(1));
    store.create_role_assignment(&taken, false).await.expect("create");
    let (act, asg) = activation(&guid(601), &guid(501), &guid(701), T0);
    let r = store.activate(&act, &asg).await;
    assert!(matches!(r, Err(Error::Conflict(_))), "{r:?}");
    assert!(store.activations().await.expect("activations").is_empty());
    assert_eq!(store.role_assignment(&guid(701)).await.expect("read"), Some(taken));
}
