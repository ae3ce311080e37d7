//! Key policy assignments: names are case-insensitive (the first spelling and `created` are kept), at most `limit`.
use coffer_core::policy::Effect;

use super::prelude::*;

/// A new assignment is created (`true`); writing it again under another spelling replaces it (`false`), keeping the
/// first spelling and `created`; lookups and deletion are case-insensitive; the list is by name.
pub async fn policy_assignments_are_created_replaced_and_deleted(store: Arc<dyn Store>) {
    let first = policy("Require-Expiry", Effect::Audit, T0);
    assert_eq!(
        store.put_policy_assignment(&first, 200).await.expect("put"),
        (first.clone(), true)
    );
    let mut again = policy("require-EXPIRY", Effect::Deny, T0 + 10);
    again
        .parameters
        .insert("maximumValidityInDays".into(), serde_json::json!(30));
    let want = PolicyAssignment {
        name: "Require-Expiry".into(),
        created: T0,
        ..again.clone()
    };
    assert_eq!(
        store.put_policy_assignment(&again, 200).await.expect("put"),
        (want.clone(), false)
    );
    assert_eq!(
        store.policy_assignment("REQUIRE-expiry").await.expect("read"),
        Some(want.clone())
    );
    assert!(store.policy_assignment("other").await.expect("read").is_none());

    // Capitalised like the first, so that byte order and case-insensitive order agree.
    let b = policy("B-Second", Effect::Disabled, T0);
    let c = policy("C-Third", Effect::Audit, T0);
    store.put_policy_assignment(&c, 200).await.expect("put");
    store.put_policy_assignment(&b, 200).await.expect("put");
    assert_eq!(store.policy_assignments().await.expect("list"), [b, c, want], "by name");
    assert!(store.delete_policy_assignment("REQUIRE-EXPIRY").await.expect("delete"));
    assert!(
        !store.delete_policy_assignment("require-expiry").await.expect("delete"),
        "deleted once"
    );
    assert!(store.policy_assignment("require-expiry").await.expect("read").is_none());
    // The name is free again: a new assignment takes the new spelling.
    let reborn = policy("REQUIRE-EXPIRY", Effect::Audit, T0 + 20);
    assert_eq!(
        store.put_policy_assignment(&reborn, 200).await.expect("put"),
        (reborn, true)
    );
    assert_eq!(store.policy_assignments().await.expect("list").len(), 3);
}

/// At most `limit` assignments exist: a new one beyond it is refused with `BadParameter`; replacing one at the limit
/// is fine.
pub async fn put_policy_assignment_refuses_a_new_one_beyond_the_limit(store: Arc<dyn Store>) {
    store
        .put_policy_assignment(&policy("a", Effect::Audit, T0), 2)
        .await
        .expect("put");
    store
        .put_policy_assignment(&policy("b", Effect::Audit, T0), 2)
        .await
        .expect("put");
    let r = store.put_policy_assignment(&policy("c", Effect::Audit, T0), 2).await;
    assert!(matches!(r, Err(Error::BadParameter(_))), "{r:?}");
    assert!(store.policy_assignment("c").await.expect("read").is_none());
    let (stored, created) = store
        .put_policy_assignment(&policy("B", Effect::Deny, T0 + 1), 2)
        .await
        .expect("replace at the limit");
    assert!(!created);
    assert_eq!(stored.effect, Effect::Deny);
    assert_eq!(store.policy_assignments().await.expect("list").len(), 2);
}
