//! The store conformance suite: what every adapter of coffer-core's [`Store`] port must do, observed through the
//! port only (write, then read back; for a refusal, which [`coffer_core::Error`] variant). SQLite runs it in
//! coffer-store's `tests/conformance_sqlite.rs`; the PostgreSQL adapter will run it the same way.
//!
//! Each test is a `pub async fn name(store: Arc<dyn Store>)` given a fresh, empty store, in a file per aggregate:
//! [`instance`] (instance, settings, meta), [`keys`] (versions, paging, soft-delete/recover/purge, `purge_due`,
//! rotation policies, full dump and restore), [`identities`] (principals, secrets, certificates, groups,
//! memberships), [`rbac`] (custom roles, role assignments, eligible assignments, activations, networks),
//! [`policies`], [`assertions`] (client-assertion `jti`s), and [`concurrency`] (racing writes: conflicts, limits,
//! checks that must hold against a concurrent write).
//!
//! An adapter's test file runs them all with [`store_conformance_tests!`](crate::store_conformance_tests), given a
//! function (or closure) that returns a future of a fresh store (see [`FreshStore`]); it is called once per test:
//!
//! ```ignore
//! async fn fresh_store() -> (Arc<dyn Store>, tempfile::TempDir) { … }
//! coffer_testkit::store_conformance_tests!(fresh_store);
//! ```
//!
//! The test crate needs `tokio` (with `macros` and `rt-multi-thread`) among its dev-dependencies.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed expectation is a failed test"
)]

pub mod assertions;
pub mod concurrency;
pub mod fixtures;
pub mod identities;
pub mod instance;
pub mod keys;
pub mod policies;
mod postgres;
pub mod rbac;

pub use coffer_core::store::Store;
pub use postgres::{PG_PASSWORD_FILE_ENV, PG_URL_ENV, fresh_postgres_url};

/// Whatever must outlive a test's store (e.g. the temporary directory of its SQLite file); dropped when the test ends.
pub type Guard = Box<dyn std::any::Any + Send>;

/// What an adapter's constructor may return to [`store_conformance_tests!`](crate::store_conformance_tests).
pub trait FreshStore {
    /// The store and its guard; `None` skips the test (the test passes at once, saying so on stderr).
    fn into_parts(self) -> Option<(std::sync::Arc<dyn Store>, Guard)>;
}

/// A store that needs nothing else.
impl FreshStore for std::sync::Arc<dyn Store> {
    fn into_parts(self) -> Option<(std::sync::Arc<dyn Store>, Guard)> {
        Some((self, Box::new(())))
    }
}

/// A store and a guard that must live until the test ends.
impl<G: Send + 'static> FreshStore for (std::sync::Arc<dyn Store>, G) {
    fn into_parts(self) -> Option<(std::sync::Arc<dyn Store>, Guard)> {
        Some((self.0, Box::new(self.1)))
    }
}

/// No store in this run (e.g. no PostgreSQL configured: [`fresh_postgres_url`] gave `None`): the tests are skipped.
impl<T: FreshStore> FreshStore for Option<T> {
    fn into_parts(self) -> Option<(std::sync::Arc<dyn Store>, Guard)> {
        self.and_then(FreshStore::into_parts)
    }
}

/// What every suite file uses. The `Store` port may be split into sub-traits (one per aggregate) that it extends:
/// the glob import keeps all of them in scope, so their methods resolve on `dyn Store`.
mod prelude {
    pub(crate) use std::sync::Arc;

    pub(crate) use coffer_core::Error;
    pub(crate) use coffer_core::key::{KeyName, KeyOperation, KeyVersion, KeyVersionRecord};
    pub(crate) use coffer_core::policy::PolicyAssignment;
    pub(crate) use coffer_core::rbac::{RoleAssignment, RoleDefinition};
    #[allow(unused_imports, reason = "brings the sub-traits of a split port into scope")]
    pub(crate) use coffer_core::store::*;
    pub(crate) use coffer_crypto::keys::{Curve, PublicKey};

    pub(crate) use super::fixtures::*;
}

/// Expands into one `#[tokio::test]` per suite function (in a module `conformance`, one sub-module per file), each
/// given a fresh store from `$make`: a function (or closure) called once per test, returning a future of a
/// [`FreshStore`] (`Arc<dyn Store>`, or `(Arc<dyn Store>, guard)`, or an `Option` of either). The [`concurrency`]
/// tests run on a multi-threaded runtime with 4 workers. A last test checks that this list names every suite
/// function.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr $(,)?) => {
        $crate::__store_conformance_expand! {
            $make;
            serial {
                instance: [
                    a_fresh_store_is_empty,
                    create_instance_writes_the_instance_its_bootstrap_principal_and_assignments,
                    a_second_create_instance_fails_and_writes_nothing,
                    create_instance_is_all_or_nothing,
                    record_download_activates_a_provisioned_instance_once,
                    install_domain_secret_activates_a_recovering_instance_once,
                    reseal_domain_secret_replaces_only_the_domain_secret,
                    purge_protection_is_switched_on_and_stays_on,
                    settings_and_meta_are_upserted_by_name,
                ],
                keys: [
                    a_new_key_reads_back_every_field,
                    key_names_are_case_insensitive_and_keep_the_first_spelling,
                    versions_are_kept_in_write_order_and_paged_by_id,
                    restore_whole_key_needs_the_name_to_be_free,
                    add_version_to_a_soft_deleted_key_is_a_conflict,
                    merge_from_backup_adds_only_missing_versions,
                    list_keys_pages_live_keys_by_name_case_insensitively,
                    update_version_replaces_the_mutable_fields_of_one_version,
                    update_version_of_a_missing_or_deleted_key_is_key_not_found,
                    soft_delete_and_recover_move_a_key_between_live_and_deleted,
                    list_deleted_pages_deleted_keys_by_name,
                    purge_removes_a_deleted_key_and_frees_its_name,
                    purge_due_lists_deleted_keys_due_at_or_before_now,
                    rotation_policies_belong_to_live_keys,
                    key_counts_count_live_keys_by_current_type,
                    dump_keys_holds_every_key_with_versions_deletion_and_policy,
                    restore_full_into_an_empty_store_writes_everything,
                    restore_full_keeps_what_exists_and_soft_deletes_live_keys_it_lacks,
                    restore_full_without_identities_leaves_them_alone,
                ],
                identities: [
                    a_principal_reads_back_by_object_id_and_client_id,
                    a_taken_object_id_or_client_id_is_a_conflict,
                    secrets_and_certificates_are_added_and_removed,
                    principal_networks_are_set_on_existing_principals,
                    delete_principal_removes_its_credentials_memberships_and_assignments,
                    delete_principal_removes_assignments_naming_it_in_any_case,
                    groups_are_created_read_and_deleted_with_their_memberships,
                    group_membership_is_idempotent_and_needs_the_group,
                ],
                rbac: [
                    custom_roles_are_written_replaced_and_deleted,
                    put_custom_role_refuses_a_new_role_beyond_the_limit,
                    a_custom_role_in_use_cannot_be_deleted,
                    an_assignment_of_a_missing_custom_role_is_refused,
                    role_assignments_round_trip_and_a_taken_name_is_a_conflict,
                    role_assignments_filter_by_principal_ids_case_insensitively,
                    eligible_assignments_round_trip_and_a_taken_name_is_a_conflict,
                    activate_writes_the_activation_and_its_assignment,
                    activate_is_all_or_nothing,
                ],
                policies: [
                    policy_assignments_are_created_replaced_and_deleted,
                    put_policy_assignment_refuses_a_new_one_beyond_the_limit,
                ],
                assertions: [
                    a_jti_is_accepted_once_per_client_and_a_replay_changes_nothing,
                ],
            }
            concurrent {
                concurrency: [
                    racing_role_assignments_of_one_name_create_one,
                    racing_principals_with_one_client_id_or_object_id_create_one,
                    racing_groups_of_one_object_id_create_one,
                    racing_eligible_assignments_of_one_name_create_one,
                    racing_activations_of_one_assignment_name_record_one,
                    racing_new_custom_roles_stop_at_the_limit,
                    racing_writes_of_one_custom_role_all_succeed,
                    racing_new_policy_assignments_stop_at_the_limit,
                    racing_writes_of_one_policy_assignment_create_it_once,
                    racing_new_versions_of_one_new_key_make_one_key,
                    racing_consumes_of_one_jti_accept_it_once,
                    racing_new_versions_and_soft_deletes_of_one_key_stay_serial,
                    racing_soft_deletes_of_one_key_delete_it_once,
                    racing_purges_and_recovers_of_one_key_act_once,
                    racing_assignments_and_deletion_of_their_custom_role_stay_serial,
                    racing_memberships_and_deletion_of_their_group_leave_no_orphans,
                    racing_create_instance_creates_one,
                    racing_upserts_of_one_setting_and_fact_all_succeed,
                ],
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_expand {
    (
        $make:expr;
        serial { $($smod:ident: [$($sname:ident),* $(,)?]),* $(,)? }
        concurrent { $($cmod:ident: [$($cname:ident),* $(,)?]),* $(,)? }
    ) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            /// The store for one test, and what must live as long as it; `None`: skip the test.
            async fn fresh() -> ::std::option::Option<(
                ::std::sync::Arc<dyn $crate::store_conformance::Store>,
                $crate::store_conformance::Guard,
            )> {
                let parts = $crate::store_conformance::FreshStore::into_parts(($make)().await);
                if parts.is_none() {
                    ::std::eprintln!("skipped: this run has no store of this kind (see store_conformance::FreshStore)");
                }
                parts
            }

            #[test]
            fn the_macro_runs_every_suite_function() {
                $crate::store_conformance::assert_every_function_listed(&[
                    $($(concat!(stringify!($smod), "::", stringify!($sname)),)*)*
                    $($(concat!(stringify!($cmod), "::", stringify!($cname)),)*)*
                ]);
            }

            $(
                mod $smod {
                    $(
                        #[::tokio::test]
                        async fn $sname() {
                            let ::std::option::Option::Some((store, _guard)) = super::fresh().await else { return };
                            $crate::store_conformance::$smod::$sname(store).await;
                        }
                    )*
                }
            )*

            $(
                mod $cmod {
                    $(
                        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $cname() {
                            let ::std::option::Option::Some((store, _guard)) = super::fresh().await else { return };
                            $crate::store_conformance::$cmod::$cname(store).await;
                        }
                    )*
                }
            )*
        }
    };
}

/// The suite's files and their sources: every `pub async fn` in them is a suite function.
const SOURCES: &[(&str, &str)] = &[
    ("assertions", include_str!("assertions.rs")),
    ("concurrency", include_str!("concurrency.rs")),
    ("identities", include_str!("identities.rs")),
    ("instance", include_str!("instance.rs")),
    ("keys", include_str!("keys.rs")),
    ("policies", include_str!("policies.rs")),
    ("rbac", include_str!("rbac.rs")),
];

/// Asserts that `listed` (`file::function`) names every suite function, so none is written and never run.
#[doc(hidden)]
pub fn assert_every_function_listed(listed: &[&str]) {
    let mut missing = Vec::new();
    for (file, src) in SOURCES {
        for line in src.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let full = format!("{file}::{name}");
            if !listed.contains(&full.as_str()) {
                missing.push(full);
            }
        }
    }
    assert!(missing.is_empty(), "store_conformance_tests! does not run: {missing:?}");
}
