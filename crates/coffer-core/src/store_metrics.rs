//! Counting decorator for the [`Store`] port: [`CountingStore`] delegates every method to the real store and counts
//! each call first, per method, in [`StoreCounters`]. The server wraps its store in it and exports the counts as
//! `coffer_store_queries_total{method}`, which shows which requests reach storage.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};
use crate::rbac::{Activation, EligibleAssignment, Network, RoleAssignment, RoleDefinition};
use crate::store::{
    AssertionStore, BackupStore, Change, ChangeStore, IdentityStore, InstanceStore, KeyStore, PolicyStore, RbacStore,
};
use crate::store::{
    ClientSecretRecord, GroupRecord, InstanceRecord, KeyDump, NewVersionMode, PrincipalRecord, RestoreSet, Store,
};

/// Declares [`StoreCounters`]: one `AtomicU64` per listed method, and `snapshot` in the listed order.
macro_rules! store_counters {
    ($($method:ident),* $(,)?) => {
        /// Calls of each [`Store`] method so far, one counter per method.
        #[derive(Debug, Default)]
        pub struct StoreCounters {
            $($method: AtomicU64,)*
        }

        impl StoreCounters {
            /// Every method (named exactly as in the trait, in its order) with its number of calls so far.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($method), self.$method.load(Ordering::Relaxed))),*]
            }
        }
    };
}

// The methods of `Store`: its sub-traits in the order `Store` names them, each in its own order (the test below checks
// this list against the port's files).
store_counters!(
    instance,
    create_instance,
    record_download,
    install_domain_secret,
    reseal_domain_secret,
    settings,
    put_setting,
    meta,
    put_meta,
    enable_purge_protection,
    rotation_policy,
    put_rotation_policy,
    rotation_policies,
    purge_due,
    version_count,
    key_counts,
    insert_versions,
    key_version,
    all_versions,
    list_keys,
    list_versions,
    update_version,
    soft_delete,
    deleted_key,
    list_deleted,
    recover,
    purge,
    dump_keys,
    restore_full,
    principal_by_client_id,
    add_certificate,
    principal,
    principal_networks,
    list_principals,
    create_principal,
    delete_principal,
    add_secret,
    delete_secret,
    create_group,
    group,
    list_groups,
    delete_group,
    add_group_member,
    remove_group_member,
    groups_of,
    set_principal_networks,
    custom_roles,
    custom_role,
    put_custom_role,
    delete_custom_role,
    role_assignments,
    role_assignment,
    create_role_assignment,
    delete_role_assignment,
    touch_role_assignment,
    create_eligible,
    list_eligible,
    eligible,
    delete_eligible,
    activate,
    activations,
    policy_assignments,
    policy_assignment,
    put_policy_assignment,
    delete_policy_assignment,
    consume_assertion_jti,
    last_change_before,
    changes_after,
    prune_changes,
);

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A [`Store`] that counts every call per method and then delegates it to `inner`.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counters: Arc<StoreCounters>,
}

impl std::fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingStore").finish_non_exhaustive()
    }
}

impl CountingStore {
    /// Wraps `inner`; every counter starts at 0.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    /// The counters, to read while the store is in use.
    pub fn counters(&self) -> &Arc<StoreCounters> {
        &self.counters
    }
}

#[async_trait]
impl InstanceStore for CountingStore {
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error> {
        count(&self.counters.instance);
        self.inner.instance().await
    }
    async fn create_instance(
        &self,
        instance: &InstanceRecord,
        bootstrap: &PrincipalRecord,
        assignments: &[RoleAssignment],
    ) -> Result<(), Error> {
        count(&self.counters.create_instance);
        self.inner.create_instance(instance, bootstrap, assignments).await
    }
    async fn record_download(&self, now: i64) -> Result<(), Error> {
        count(&self.counters.record_download);
        self.inner.record_download(now).await
    }
    async fn install_domain_secret(
        &self,
        sealed_domain_secret: &[u8],
        sealed_token_key: &[u8],
        now: i64,
    ) -> Result<(), Error> {
        count(&self.counters.install_domain_secret);
        self.inner
            .install_domain_secret(sealed_domain_secret, sealed_token_key, now)
            .await
    }
    async fn reseal_domain_secret(&self, sealed_domain_secret: &[u8]) -> Result<(), Error> {
        count(&self.counters.reseal_domain_secret);
        self.inner.reseal_domain_secret(sealed_domain_secret).await
    }
    async fn settings(&self) -> Result<Vec<(String, String)>, Error> {
        count(&self.counters.settings);
        self.inner.settings().await
    }
    async fn put_setting(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        count(&self.counters.put_setting);
        self.inner.put_setting(name, value, now).await
    }
    async fn meta(&self, name: &str) -> Result<Option<String>, Error> {
        count(&self.counters.meta);
        self.inner.meta(name).await
    }
    async fn put_meta(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        count(&self.counters.put_meta);
        self.inner.put_meta(name, value, now).await
    }
    async fn enable_purge_protection(&self) -> Result<(), Error> {
        count(&self.counters.enable_purge_protection);
        self.inner.enable_purge_protection().await
    }
}

#[async_trait]
impl KeyStore for CountingStore {
    async fn rotation_policy(&self, name: &KeyName) -> Result<Option<(String, i64, i64)>, Error> {
        count(&self.counters.rotation_policy);
        self.inner.rotation_policy(name).await
    }
    async fn put_rotation_policy(&self, name: &KeyName, policy: &str, now: i64) -> Result<bool, Error> {
        count(&self.counters.put_rotation_policy);
        self.inner.put_rotation_policy(name, policy, now).await
    }
    async fn rotation_policies(&self) -> Result<Vec<(KeyName, String)>, Error> {
        count(&self.counters.rotation_policies);
        self.inner.rotation_policies().await
    }
    async fn purge_due(&self, now: i64) -> Result<Vec<KeyName>, Error> {
        count(&self.counters.purge_due);
        self.inner.purge_due(now).await
    }
    async fn version_count(&self, name: &KeyName) -> Result<i64, Error> {
        count(&self.counters.version_count);
        self.inner.version_count(name).await
    }
    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        count(&self.counters.key_counts);
        self.inner.key_counts().await
    }
    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error> {
        count(&self.counters.insert_versions);
        self.inner.insert_versions(versions, mode).await
    }
    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error> {
        count(&self.counters.key_version);
        self.inner.key_version(name, version).await
    }
    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error> {
        count(&self.counters.all_versions);
        self.inner.all_versions(name).await
    }
    async fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyVersionRecord>, Error> {
        count(&self.counters.list_keys);
        self.inner.list_keys(after, limit).await
    }
    async fn list_versions(
        &self,
        name: &KeyName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        count(&self.counters.list_versions);
        self.inner.list_versions(name, after, limit).await
    }
    async fn update_version(&self, record: &KeyVersionRecord) -> Result<(), Error> {
        count(&self.counters.update_version);
        self.inner.update_version(record).await
    }
    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error> {
        count(&self.counters.soft_delete);
        self.inner.soft_delete(name, deletion).await
    }
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error> {
        count(&self.counters.deleted_key);
        self.inner.deleted_key(name).await
    }
    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error> {
        count(&self.counters.list_deleted);
        self.inner.list_deleted(after, limit).await
    }
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error> {
        count(&self.counters.recover);
        self.inner.recover(name).await
    }
    async fn purge(&self, name: &KeyName) -> Result<bool, Error> {
        count(&self.counters.purge);
        self.inner.purge(name).await
    }
}

#[async_trait]
impl BackupStore for CountingStore {
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error> {
        count(&self.counters.dump_keys);
        self.inner.dump_keys().await
    }
    async fn restore_full(&self, state: &RestoreSet) -> Result<(), Error> {
        count(&self.counters.restore_full);
        self.inner.restore_full(state).await
    }
}

#[async_trait]
impl IdentityStore for CountingStore {
    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        count(&self.counters.principal_by_client_id);
        self.inner.principal_by_client_id(client_id).await
    }
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        count(&self.counters.add_certificate);
        self.inner.add_certificate(object_id, der).await
    }
    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        count(&self.counters.principal);
        self.inner.principal(object_id).await
    }
    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error> {
        count(&self.counters.principal_networks);
        self.inner.principal_networks(object_id).await
    }
    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, Error> {
        count(&self.counters.list_principals);
        self.inner.list_principals().await
    }
    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error> {
        count(&self.counters.create_principal);
        self.inner.create_principal(principal).await
    }
    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error> {
        count(&self.counters.delete_principal);
        self.inner.delete_principal(object_id).await
    }
    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error> {
        count(&self.counters.add_secret);
        self.inner.add_secret(object_id, secret).await
    }
    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error> {
        count(&self.counters.delete_secret);
        self.inner.delete_secret(object_id, secret_id).await
    }
    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error> {
        count(&self.counters.create_group);
        self.inner.create_group(group).await
    }
    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error> {
        count(&self.counters.group);
        self.inner.group(object_id).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error> {
        count(&self.counters.list_groups);
        self.inner.list_groups().await
    }
    async fn delete_group(&self, object_id: &str) -> Result<bool, Error> {
        count(&self.counters.delete_group);
        self.inner.delete_group(object_id).await
    }
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        count(&self.counters.add_group_member);
        self.inner.add_group_member(group_id, member_id).await
    }
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        count(&self.counters.remove_group_member);
        self.inner.remove_group_member(group_id, member_id).await
    }
    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error> {
        count(&self.counters.groups_of);
        self.inner.groups_of(member_id).await
    }
    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error> {
        count(&self.counters.set_principal_networks);
        self.inner.set_principal_networks(object_id, networks).await
    }
}

#[async_trait]
impl RbacStore for CountingStore {
    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error> {
        count(&self.counters.custom_roles);
        self.inner.custom_roles().await
    }
    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        count(&self.counters.custom_role);
        self.inner.custom_role(id).await
    }
    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error> {
        count(&self.counters.put_custom_role);
        self.inner.put_custom_role(role, now, limit).await
    }
    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        count(&self.counters.delete_custom_role);
        self.inner.delete_custom_role(id).await
    }
    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error> {
        count(&self.counters.role_assignments);
        self.inner.role_assignments(principal_ids).await
    }
    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        count(&self.counters.role_assignment);
        self.inner.role_assignment(name).await
    }
    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error> {
        count(&self.counters.create_role_assignment);
        self.inner.create_role_assignment(assignment, custom_role).await
    }
    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        count(&self.counters.delete_role_assignment);
        self.inner.delete_role_assignment(name).await
    }
    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error> {
        count(&self.counters.touch_role_assignment);
        self.inner.touch_role_assignment(name, now).await
    }
    async fn create_eligible(&self, eligible: &EligibleAssignment) -> Result<(), Error> {
        count(&self.counters.create_eligible);
        self.inner.create_eligible(eligible).await
    }
    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error> {
        count(&self.counters.list_eligible);
        self.inner.list_eligible().await
    }
    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error> {
        count(&self.counters.eligible);
        self.inner.eligible(name).await
    }
    async fn delete_eligible(&self, name: &str) -> Result<bool, Error> {
        count(&self.counters.delete_eligible);
        self.inner.delete_eligible(name).await
    }
    async fn activate(&self, activation: &Activation, assignment: &RoleAssignment) -> Result<(), Error> {
        count(&self.counters.activate);
        self.inner.activate(activation, assignment).await
    }
    async fn activations(&self) -> Result<Vec<Activation>, Error> {
        count(&self.counters.activations);
        self.inner.activations().await
    }
}

#[async_trait]
impl PolicyStore for CountingStore {
    async fn policy_assignments(&self) -> Result<Vec<crate::policy::PolicyAssignment>, Error> {
        count(&self.counters.policy_assignments);
        self.inner.policy_assignments().await
    }
    async fn policy_assignment(&self, name: &str) -> Result<Option<crate::policy::PolicyAssignment>, Error> {
        count(&self.counters.policy_assignment);
        self.inner.policy_assignment(name).await
    }
    async fn put_policy_assignment(
        &self,
        assignment: &crate::policy::PolicyAssignment,
        limit: usize,
    ) -> Result<(crate::policy::PolicyAssignment, bool), Error> {
        count(&self.counters.put_policy_assignment);
        self.inner.put_policy_assignment(assignment, limit).await
    }
    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error> {
        count(&self.counters.delete_policy_assignment);
        self.inner.delete_policy_assignment(name).await
    }
}

#[async_trait]
impl AssertionStore for CountingStore {
    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error> {
        count(&self.counters.consume_assertion_jti);
        self.inner.consume_assertion_jti(client_id, jti, expires, now).await
    }
}

#[async_trait]
impl ChangeStore for CountingStore {
    async fn last_change_before(&self, at: i64) -> Result<i64, Error> {
        count(&self.counters.last_change_before);
        self.inner.last_change_before(at).await
    }
    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, Error> {
        count(&self.counters.changes_after);
        self.inner.changes_after(after, limit).await
    }
    async fn prune_changes(&self, before: i64) -> Result<u64, Error> {
        count(&self.counters.prune_changes);
        self.inner.prune_changes(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of the `async fn`s in the first `{ ... }` block after `start` in `src`.
    fn async_fns<'a>(src: &'a str, start: &str) -> Vec<&'a str> {
        let from = src.find(start).expect("block start");
        let block = &src[from..];
        let end = block.find("\n}").expect("block end");
        block[..end]
            .split("async fn ")
            .skip(1)
            .map(|s| s.split('(').next().expect("name").trim())
            .collect()
    }

    #[test]
    fn every_store_method_has_a_counter_in_trait_order() {
        let ports = [
            (include_str!("store/instance.rs"), "pub trait InstanceStore"),
            (include_str!("store/keys.rs"), "pub trait KeyStore"),
            (include_str!("store/backup.rs"), "pub trait BackupStore"),
            (include_str!("store/identities.rs"), "pub trait IdentityStore"),
            (include_str!("store/rbac.rs"), "pub trait RbacStore"),
            (include_str!("store/policy.rs"), "pub trait PolicyStore"),
            (include_str!("store/assertions.rs"), "pub trait AssertionStore"),
            (include_str!("store/changes.rs"), "pub trait ChangeStore"),
        ];
        let trait_methods: Vec<&str> = ports.iter().flat_map(|(src, start)| async_fns(src, start)).collect();
        assert!(trait_methods.len() > 50, "{trait_methods:?}");
        let counted: Vec<&str> = StoreCounters::default().snapshot().iter().map(|(m, _)| *m).collect();
        assert_eq!(counted, trait_methods);
        let supertraits: String = include_str!("store/mod.rs")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let order = ports
            .iter()
            .map(|(_, start)| start.trim_start_matches("pub trait "))
            .collect::<Vec<_>>();
        assert!(
            supertraits.contains(&format!("pub trait Store: {}", order.join(" + "))),
            "{order:?}"
        );
    }

    #[test]
    fn every_delegation_counts_and_calls_its_own_method() {
        let src = include_str!("store_metrics.rs");
        let mut seen = 0;
        // Each `impl …Store for CountingStore {` block (a line of its own).
        for block in src
            .split("\nimpl ")
            .skip(1)
            .filter(|b| b.lines().next().is_some_and(|l| l.ends_with(" for CountingStore {")))
        {
            let end = block.find("\n}").expect("impl end");
            for body in block[..end].split("async fn ").skip(1) {
                seen += 1;
                let name = body.split('(').next().expect("name");
                // rustfmt may break a call over lines.
                let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                assert!(
                    body.contains(&format!("count(&self.counters.{name});")),
                    "{name} counts another method"
                );
                assert!(
                    body.contains(&format!("self.inner.{name}(")),
                    "{name} delegates to another method"
                );
                assert_eq!(body.matches("self.counters.").count(), 1, "{name}");
                assert_eq!(body.matches("self.inner.").count(), 1, "{name}");
            }
        }
        assert_eq!(seen, StoreCounters::default().snapshot().len());
    }
}
