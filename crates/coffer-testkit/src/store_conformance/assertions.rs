//! Client-assertion ids (`jti`). Reopening and pruning on SQLite: coffer-store's `tests/assertion_jti.rs`; here what
//! every adapter must do: once per client, a replay changes nothing (it does not extend the memory), and an id is
//! remembered through the second it expires.
use super::prelude::*;

/// An id is accepted once per client; a replay neither succeeds nor extends how long the id is remembered; an id
/// is remembered up to and including its `expires`, and forgotten once a later write prunes it.
pub async fn a_jti_is_accepted_once_per_client_and_a_replay_changes_nothing(store: Arc<dyn Store>) {
    assert!(
        store
            .consume_assertion_jti("c1", "j", T0 + 100, T0)
            .await
            .expect("consume")
    );
    assert!(
        !store
            .consume_assertion_jti("c1", "j", T0 + 100, T0 + 1)
            .await
            .expect("consume"),
        "replay"
    );
    assert!(
        store
            .consume_assertion_jti("c2", "j", T0 + 100, T0 + 1)
            .await
            .expect("consume"),
        "other client"
    );
    // A replay with a later expiry is still a replay, and does not move the expiry.
    assert!(
        !store
            .consume_assertion_jti("c1", "j", T0 + 10_000, T0 + 2)
            .await
            .expect("consume")
    );
    assert!(
        !store
            .consume_assertion_jti("c1", "j", T0 + 10_000, T0 + 100)
            .await
            .expect("consume"),
        "at expires"
    );
    // After `expires` (T0 + 100) the id is pruned by the next write and accepted again.
    assert!(
        store
            .consume_assertion_jti("c1", "other", T0 + 500, T0 + 101)
            .await
            .expect("consume")
    );
    assert!(
        store
            .consume_assertion_jti("c1", "j", T0 + 500, T0 + 102)
            .await
            .expect("consume"),
        "forgotten"
    );
}
