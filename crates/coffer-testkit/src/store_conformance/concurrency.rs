//! Concurrent writes: what must hold when writes race, as they do against PostgreSQL from several connections or
//! nodes (SQLite has a single writer, so it passes trivially). Each test starts its tasks together behind a barrier
//! on a multi-threaded runtime; the macro runs them with `flavor = "multi_thread", worker_threads = 4`.
//!
//! Each outcome is judged against the serial orders: the result of a race must be what some one-at-a-time order
//! of the same calls gives. A unique-key race answers `Conflict` (never a storage error); a limit holds; a
//! check inside one method (the role is unused, the key is live) holds against the write that races it.
use std::collections::BTreeSet;
use std::future::Future;

use coffer_core::key::Deletion;
use coffer_core::policy::Effect;

use super::prelude::*;

/// How many tasks race.
const N: usize = 16;

/// Runs `f(0..n)` as `n` tasks released together; their results in task order.
async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let work = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("a racing task panicked"));
    }
    out
}

/// The indices of the `Ok` results; every `Err` must satisfy `expected` (e.g. is a conflict).
#[track_caller]
fn winners<T: std::fmt::Debug>(results: &[Result<T, Error>], expected: fn(&Error) -> bool, what: &str) -> Vec<usize> {
    for (i, r) in results.iter().enumerate() {
        if let Err(e) = r {
            assert!(expected(e), "{what}: task {i} failed with an unexpected error: {e:?}");
        }
    }
    (0..results.len()).filter(|i| results[*i].is_ok()).collect()
}

fn conflict(e: &Error) -> bool {
    matches!(e, Error::Conflict(_))
}

fn bad_parameter(e: &Error) -> bool {
    matches!(e, Error::BadParameter(_))
}

fn any_error(_: &Error) -> bool {
    true
}

fn n64(i: usize) -> u64 {
    u64::try_from(i).expect("small")
}

/// Racing `create_role_assignment`s of one name: exactly one is created, the others are conflicts.
pub async fn racing_role_assignments_of_one_name_create_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            s.create_role_assignment(&assignment(&guid(201), CRYPTO_USER, &guid(n64(i) + 1)), false)
                .await
        }
    })
    .await;
    let won = winners(&results, conflict, "create_role_assignment");
    assert_eq!(won.len(), 1, "{results:?}");
    let stored = store.role_assignment(&guid(201)).await.expect("read").expect("exists");
    assert_eq!(
        stored.principal_id,
        guid(n64(won[0]) + 1),
        "the stored assignment is the winner's"
    );
    assert_eq!(store.role_assignments(None).await.expect("list").len(), 1);
}

/// Racing `create_principal`s with one client id (then with one object id): exactly one is created each time, the
/// others are conflicts, and no loser's credentials are left behind.
pub async fn racing_principals_with_one_client_id_or_object_id_create_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move { s.create_principal(&principal(&guid(n64(i) + 1), &guid(100))).await }
    })
    .await;
    let won = winners(&results, conflict, "create_principal (client id)");
    assert_eq!(won.len(), 1, "{results:?}");
    let p = store
        .principal_by_client_id(&guid(100))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(p.object_id, guid(n64(won[0]) + 1));
    assert_same_principal(&p, &principal(&guid(n64(won[0]) + 1), &guid(100)));
    assert_eq!(store.list_principals().await.expect("list").len(), 1);

    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            s.create_principal(&principal(&guid(1000), &guid(n64(i) + 1000 + 1)))
                .await
        }
    })
    .await;
    let won = winners(&results, conflict, "create_principal (object id)");
    assert_eq!(won.len(), 1, "{results:?}");
    let p = store.principal(&guid(1000)).await.expect("read").expect("exists");
    assert_same_principal(&p, &principal(&guid(1000), &guid(n64(won[0]) + 1000 + 1)));
    assert_eq!(store.list_principals().await.expect("list").len(), 2);
}

/// Racing `create_group`s of one object id: one is created, the others are conflicts.
pub async fn racing_groups_of_one_object_id_create_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let mut g = group(&guid(401), &[]);
            g.display_name = format!("group {i}");
            s.create_group(&g).await
        }
    })
    .await;
    let won = winners(&results, conflict, "create_group");
    assert_eq!(won.len(), 1, "{results:?}");
    let g = store.group(&guid(401)).await.expect("read").expect("exists");
    assert_eq!(g.display_name, format!("group {}", won[0]));
    assert_eq!(store.list_groups().await.expect("list").len(), 1);
}

/// Racing `create_eligible`s of one name: one is created, the others are conflicts.
pub async fn racing_eligible_assignments_of_one_name_create_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            s.create_eligible(&eligible(&guid(501), CRYPTO_USER, &guid(n64(i) + 1)))
                .await
        }
    })
    .await;
    let won = winners(&results, conflict, "create_eligible");
    assert_eq!(won.len(), 1, "{results:?}");
    let e = store.eligible(&guid(501)).await.expect("read").expect("exists");
    assert_eq!(e.principal_id, guid(n64(won[0]) + 1));
    assert_eq!(store.list_eligible().await.expect("list").len(), 1);
}

/// Racing activations that would create one assignment name: one activation is recorded with its assignment, the
/// others are conflicts that record nothing.
pub async fn racing_activations_of_one_assignment_name_record_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let (act, asg) = activation(
                &guid(600 + n64(i)),
                &guid(501),
                &guid(701),
                T0 + i64::try_from(i).expect("small"),
            );
            s.activate(&act, &asg).await
        }
    })
    .await;
    let won = winners(&results, conflict, "activate");
    assert_eq!(won.len(), 1, "{results:?}");
    let acts = store.activations().await.expect("activations");
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0].id, guid(600 + n64(won[0])));
    let asg = store.role_assignment(&guid(701)).await.expect("read").expect("exists");
    assert_eq!(asg.created, T0 + i64::try_from(won[0]).expect("small"));
}

/// Racing `put_custom_role`s of distinct new roles with `limit` 5 on an empty store: exactly 5 exist afterwards,
/// and they are the ones that succeeded; the others are refused with `BadParameter`.
pub async fn racing_new_custom_roles_stop_at_the_limit(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move { s.put_custom_role(&custom_role(&guid(300 + n64(i))), T0, 5).await }
    })
    .await;
    let won = winners(&results, bad_parameter, "put_custom_role");
    assert_eq!(won.len(), 5, "{results:?}");
    let stored: BTreeSet<String> = store
        .custom_roles()
        .await
        .expect("custom_roles")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let want: BTreeSet<String> = won.iter().map(|i| guid(300 + n64(*i))).collect();
    assert_eq!(stored, want);
}

/// Racing writes of one new custom role id ("creates or replaces") all succeed, even at `limit` 1, and leave one
/// role: a racing insert of the same id is a replace, never a conflict or a storage error.
pub async fn racing_writes_of_one_custom_role_all_succeed(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let mut r = custom_role(&guid(301));
            r.role_name = format!("version {i}");
            s.put_custom_role(&r, T0, 1).await
        }
    })
    .await;
    let won = winners(&results, |_| false, "put_custom_role (one id)");
    assert_eq!(won.len(), N);
    let all = store.custom_roles().await.expect("custom_roles");
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].role_name.starts_with("version "), "{:?}", all[0]);
}

/// Racing `put_policy_assignment`s of distinct new names with `limit` 5: exactly 5 exist, the others are refused
/// with `BadParameter`.
pub async fn racing_new_policy_assignments_stop_at_the_limit(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            s.put_policy_assignment(&policy(&format!("p-{i}"), Effect::Audit, T0), 5)
                .await
        }
    })
    .await;
    let won = winners(&results, bad_parameter, "put_policy_assignment");
    assert_eq!(won.len(), 5, "{results:?}");
    for i in &won {
        assert!(results[*i].as_ref().is_ok_and(|(_, created)| *created));
    }
    let stored: BTreeSet<String> = store
        .policy_assignments()
        .await
        .expect("policy_assignments")
        .into_iter()
        .map(|p| p.name)
        .collect();
    let want: BTreeSet<String> = won.iter().map(|i| format!("p-{i}")).collect();
    assert_eq!(stored, want);
}

/// Racing writes of one new policy assignment name (in several spellings) all succeed: exactly one creates it, and
/// the stored assignment keeps that one's spelling and `created`.
pub async fn racing_writes_of_one_policy_assignment_create_it_once(store: Arc<dyn Store>) {
    let spelling = |i: usize| {
        if i.is_multiple_of(2) {
            "Shared-Policy"
        } else {
            "shared-POLICY"
        }
    };
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let at = T0 + i64::try_from(i).expect("small");
            s.put_policy_assignment(&policy(spelling(i), Effect::Audit, at), 1)
                .await
        }
    })
    .await;
    let won = winners(&results, |_| false, "put_policy_assignment (one name)");
    assert_eq!(won.len(), N);
    let creators: Vec<usize> = (0..N)
        .filter(|i| results[*i].as_ref().is_ok_and(|(_, created)| *created))
        .collect();
    assert_eq!(creators.len(), 1, "{results:?}");
    let stored = store
        .policy_assignment("shared-policy")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.name, spelling(creators[0]));
    assert_eq!(stored.created, T0 + i64::try_from(creators[0]).expect("small"));
    assert_eq!(store.policy_assignments().await.expect("list").len(), 1);
}

/// Racing `AddVersion`s of one new key name (in two spellings) all succeed as versions of one key ("an existing key
/// gets a new version"): one spelling is kept and returned to all, and the key holds exactly their versions.
pub async fn racing_new_versions_of_one_new_key_make_one_key(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let spelling = if i.is_multiple_of(2) { "Raced" } else { "rACED" };
            let rec = ec_version(spelling, u128::try_from(i).expect("small") + 1, T0);
            s.insert_versions(&[rec], NewVersionMode::AddVersion).await
        }
    })
    .await;
    let won = winners(&results, |_| false, "insert_versions (AddVersion)");
    assert_eq!(won.len(), N);
    let names: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|n| n.as_str().to_string()))
        .collect();
    assert_eq!(
        names.len(),
        1,
        "every writer is told the one stored spelling: {names:?}"
    );
    let n = name("raced");
    assert_eq!(
        store.version_count(&n).await.expect("count"),
        i64::try_from(N).expect("small")
    );
    let all: BTreeSet<String> = versions_of(&store.all_versions(&n).await.expect("all"))
        .into_iter()
        .collect();
    let want: BTreeSet<String> = (1..=N)
        .map(|v| version(u128::try_from(v).expect("small")).as_str().to_string())
        .collect();
    assert_eq!(all, want);
    let latest = store.key_version(&n, None).await.expect("read").expect("latest");
    assert!(want.contains(latest.version.as_str()));
    assert_eq!(store.list_keys(None, 10).await.expect("list").len(), 1);
}

/// Racing `consume_assertion_jti`s of one id for one client: exactly one is accepted.
pub async fn racing_consumes_of_one_jti_accept_it_once(store: Arc<dyn Store>) {
    let results = race(N, |_| {
        let s = Arc::clone(&store);
        async move { s.consume_assertion_jti("client", "jti-1", T0 + 600, T0).await }
    })
    .await;
    let won = winners(&results, |_| false, "consume_assertion_jti");
    assert_eq!(won.len(), N);
    let accepted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(accepted, 1, "{results:?}");
}

enum KeyOp {
    Added(u128, Result<KeyName, Error>),
    Deleted(Result<Option<KeyVersion>, Error>),
}

/// `AddVersion` of a new key name racing `soft_delete` of that name (several rounds): the outcome is a serial one.
/// At most one delete succeeds; a version added after it is a conflict, never a storage error and never a version
/// of a "live" key beside a deleted one; the key ends with exactly the versions whose writes succeeded, and a
/// successful delete returned one of them as the latest.
pub async fn racing_new_versions_and_soft_deletes_of_one_key_stay_serial(store: Arc<dyn Store>) {
    for round in 0..4_u64 {
        let key = format!("contested-{round}");
        let results = race(N, |i| {
            let s = Arc::clone(&store);
            let key = key.clone();
            async move {
                let v = u128::try_from(i).expect("small") + 1;
                if i.is_multiple_of(2) {
                    let r = s
                        .insert_versions(&[ec_version(&key, v, T0)], NewVersionMode::AddVersion)
                        .await;
                    KeyOp::Added(v, r)
                } else {
                    KeyOp::Deleted(
                        s.soft_delete(&name(&key), deletion(T0 + 1))
                            .await
                            .map(|d| d.map(|r| r.version)),
                    )
                }
            }
        })
        .await;
        let mut added = BTreeSet::new();
        let mut refused = 0;
        let mut deleted_latest = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                KeyOp::Added(v, Ok(_)) => {
                    added.insert(version(v).as_str().to_string());
                }
                KeyOp::Added(_, Err(Error::Conflict(_))) => refused += 1,
                KeyOp::Added(_, Err(e)) => panic!("round {round}: add {i}: unexpected error {e:?}"),
                KeyOp::Deleted(Ok(Some(latest))) => deleted_latest.push(latest),
                KeyOp::Deleted(Ok(None)) => {}
                KeyOp::Deleted(Err(e)) => panic!("round {round}: delete {i}: unexpected error {e:?}"),
            }
        }
        let n = name(&key);
        assert!(
            deleted_latest.len() <= 1,
            "round {round}: deleted {} times",
            deleted_latest.len()
        );
        if let Some(latest) = deleted_latest.first() {
            assert!(
                !added.is_empty(),
                "round {round}: a key was deleted before any version existed"
            );
            assert!(
                added.contains(latest.as_str()),
                "round {round}: deleted an unknown latest"
            );
            assert!(
                store.key_version(&n, None).await.expect("read").is_none(),
                "round {round}: still live"
            );
            let d = store.deleted_key(&n).await.expect("deleted_key").expect("deleted");
            assert_eq!(&d.latest.version, latest, "round {round}");
            store.recover(&n).await.expect("recover").expect("was deleted");
        } else {
            assert_eq!(
                refused, 0,
                "round {round}: an add was refused but the key was never deleted"
            );
            assert!(
                store.deleted_key(&n).await.expect("deleted_key").is_none(),
                "round {round}"
            );
        }
        let stored: BTreeSet<String> = versions_of(&store.all_versions(&n).await.expect("all"))
            .into_iter()
            .collect();
        assert_eq!(
            stored, added,
            "round {round}: the key holds exactly the versions whose writes succeeded"
        );
    }
}

/// Racing `soft_delete`s of one live key: exactly one deletes it, and its deletion facts are the ones kept.
pub async fn racing_soft_deletes_of_one_key_delete_it_once(store: Arc<dyn Store>) {
    store
        .insert_versions(&[ec_version("victim", 1, T0)], NewVersionMode::AddVersion)
        .await
        .expect("insert");
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            s.soft_delete(&name("victim"), deletion(T0 + i64::try_from(i).expect("small")))
                .await
        }
    })
    .await;
    winners(&results, |_| false, "soft_delete");
    let won: Vec<usize> = (0..N).filter(|i| matches!(results[*i], Ok(Some(_)))).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let d = store
        .deleted_key(&name("victim"))
        .await
        .expect("deleted_key")
        .expect("deleted");
    assert_eq!(d.deletion, deletion(T0 + i64::try_from(won[0]).expect("small")));
}

/// Racing `purge`s and `recover`s of one soft-deleted key: exactly one of them acts (the first in the serial
/// order), and the key ends either live with all its versions or gone entirely.
pub async fn racing_purges_and_recovers_of_one_key_act_once(store: Arc<dyn Store>) {
    let both = [ec_version("limbo", 1, T0), ec_version("limbo", 2, T0)];
    store
        .insert_versions(&both, NewVersionMode::RestoreWholeKey)
        .await
        .expect("insert");
    let n = name("limbo");
    store.soft_delete(&n, deletion(T0 + 1)).await.expect("soft_delete");
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let n = name("limbo");
            if i.is_multiple_of(2) {
                s.purge(&n).await.map(|purged| (purged, false))
            } else {
                s.recover(&n).await.map(|r| (false, r.is_some()))
            }
        }
    })
    .await;
    winners(&results, |_| false, "purge/recover");
    let purged = results.iter().filter(|r| matches!(r, Ok((true, _)))).count();
    let recovered = results.iter().filter(|r| matches!(r, Ok((_, true)))).count();
    assert_eq!(
        purged + recovered,
        1,
        "purged {purged} times, recovered {recovered} times"
    );
    assert!(store.deleted_key(&n).await.expect("deleted_key").is_none());
    if recovered == 1 {
        assert_eq!(store.all_versions(&n).await.expect("all").len(), 2);
    } else {
        assert!(store.key_version(&n, None).await.expect("read").is_none());
        assert_eq!(store.version_count(&n).await.expect("count"), 0);
    }
}

/// Assignments of a custom role racing the deletion of that role (the store checks both in one transaction): the
/// outcome is serial, so either the role was deleted first (every assignment refused with `BadParameter`, one
/// delete returns it, the rest find nothing) or an assignment came first (every assignment made, every delete a
/// conflict). Never an assignment to a deleted role.
pub async fn racing_assignments_and_deletion_of_their_custom_role_stay_serial(store: Arc<dyn Store>) {
    store
        .put_custom_role(&custom_role(&guid(301)), T0, 50)
        .await
        .expect("put");
    enum Op {
        Assigned(Result<(), Error>),
        Deleted(Result<Option<RoleDefinition>, Error>),
    }
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            if i % 4 == 3 {
                Op::Deleted(s.delete_custom_role(&guid(301)).await)
            } else {
                let a = assignment(&guid(200 + n64(i)), &guid(301), &guid(n64(i) + 1));
                Op::Assigned(s.create_role_assignment(&a, true).await)
            }
        }
    })
    .await;
    let (mut made, mut refused, mut deleted, mut absent, mut in_use) = (0, 0, 0, 0, 0);
    for (i, r) in results.iter().enumerate() {
        match r {
            Op::Assigned(Ok(())) => made += 1,
            Op::Assigned(Err(Error::BadParameter(_))) => refused += 1,
            Op::Deleted(Ok(Some(_))) => deleted += 1,
            Op::Deleted(Ok(None)) => absent += 1,
            Op::Deleted(Err(Error::Conflict(_))) => in_use += 1,
            Op::Assigned(Err(e)) | Op::Deleted(Err(e)) => panic!("task {i}: unexpected error {e:?}"),
        }
    }
    let outcome = format!("{made} made, {refused} refused, {deleted} deleted, {absent} absent, {in_use} in use");
    let assignments = store.role_assignments(None).await.expect("list");
    let role = store.custom_role(&guid(301)).await.expect("read");
    if deleted == 1 {
        assert_eq!((made, in_use), (0, 0), "the role was deleted first: {outcome}");
        assert!(role.is_none());
        assert!(
            assignments.is_empty(),
            "an assignment to a deleted role: {assignments:?}"
        );
    } else {
        assert_eq!(
            (deleted, refused, absent),
            (0, 0, 0),
            "an assignment came first: {outcome}"
        );
        assert!(role.is_some());
        assert_eq!(assignments.len(), made);
    }
}

/// Members added to a group racing the group's deletion: the group is deleted exactly once, and no membership of
/// the deleted group is left behind.
pub async fn racing_memberships_and_deletion_of_their_group_leave_no_orphans(store: Arc<dyn Store>) {
    store.create_group(&group(&guid(401), &[])).await.expect("create_group");
    enum Op {
        Added(Result<bool, Error>),
        Deleted(Result<bool, Error>),
    }
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            if i % 4 == 3 {
                Op::Deleted(s.delete_group(&guid(401)).await)
            } else {
                Op::Added(s.add_group_member(&guid(401), &guid(n64(i) + 1)).await)
            }
        }
    })
    .await;
    let mut deleted = 0;
    for (i, r) in results.iter().enumerate() {
        match r {
            Op::Deleted(Ok(true)) => deleted += 1,
            Op::Deleted(Ok(false)) | Op::Added(Ok(_)) => {}
            Op::Added(Err(e)) | Op::Deleted(Err(e)) => panic!("task {i}: unexpected error {e:?}"),
        }
    }
    assert_eq!(deleted, 1);
    assert!(store.group(&guid(401)).await.expect("read").is_none());
    for i in 0..N {
        let of = store.groups_of(&guid(n64(i) + 1)).await.expect("groups_of");
        assert!(of.is_empty(), "member {i} is still in the deleted group: {of:?}");
    }
}

/// Racing `create_instance`s: exactly one instance is created; the others fail and leave nothing (no bootstrap
/// principal or assignment of theirs).
pub async fn racing_create_instance_creates_one(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let k = n64(i);
            let mut ins = instance(LifecycleState::Provisioned);
            ins.instance_id = guid(0xa000 + k);
            ins.bootstrap_object_id = guid(0xb000 + k);
            let admin = principal(&ins.bootstrap_object_id, &guid(0xc000 + k));
            let a = assignment(&guid(0xd000 + k), CRYPTO_USER, &ins.bootstrap_object_id);
            s.create_instance(&ins, &admin, &[a]).await
        }
    })
    .await;
    let won = winners(&results, any_error, "create_instance");
    assert_eq!(won.len(), 1, "{results:?}");
    let k = n64(won[0]);
    let ins = store.instance().await.expect("instance").expect("exists");
    assert_eq!(ins.instance_id, guid(0xa000 + k));
    let principals = store.list_principals().await.expect("principals");
    assert_eq!(principals.len(), 1, "a loser's bootstrap principal was written");
    assert_eq!(principals[0].object_id, guid(0xb000 + k));
    let assignments = store.role_assignments(None).await.expect("assignments");
    assert_eq!(assignments.len(), 1, "a loser's assignment was written");
}

/// Racing upserts of one setting and of one instance fact all succeed and leave one value each.
pub async fn racing_upserts_of_one_setting_and_fact_all_succeed(store: Arc<dyn Store>) {
    let results = race(N, |i| {
        let s = Arc::clone(&store);
        async move {
            let v = i.to_string();
            let at = T0 + i64::try_from(i).expect("small");
            s.put_setting("contested", &v, at).await?;
            s.put_meta("contested", &v, at).await
        }
    })
    .await;
    winners(&results, |_| false, "put_setting/put_meta");
    let settings = store.settings().await.expect("settings");
    assert_eq!(settings.len(), 1, "{settings:?}");
    let written: BTreeSet<String> = (0..N).map(|i| i.to_string()).collect();
    assert!(written.contains(&settings[0].1));
    let meta = store.meta("contested").await.expect("meta").expect("written");
    assert!(written.contains(&meta));
}

fn deletion(at: i64) -> Deletion {
    Deletion {
        deleted_date: at,
        scheduled_purge_date: at + 86_400,
    }
}
