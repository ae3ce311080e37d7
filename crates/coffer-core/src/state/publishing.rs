//! The store as core sees it: every write method of the port runs its transaction in the adapter and then
//! publishes the changed entries into the [`StateCell`], before it returns. Reads pass through. Because every
//! write of every operation goes through here, no route or job can change stored state without the in-memory
//! view following it.
//!
//! A failed publication (the re-read failed after the write committed) is logged and the whole view is rebuilt
//! from the store on the next publication attempt, so the view never stays behind the store silently.
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use super::{StateCell, View};
use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};
use crate::policy::PolicyAssignment;
use crate::rbac::{Activation, EligibleAssignment, Network, RoleAssignment, RoleDefinition};
use crate::store::{
    AssertionStore, BackupStore, Change, ChangeStore, IdentityStore, InstanceStore, KeyStore, PolicyStore, RbacStore,
};
use crate::store::{
    ClientSecretRecord, GroupRecord, InstanceRecord, KeyDump, NewVersionMode, PrincipalRecord, RestoreSet, Store,
};

/// The publishing decorator.
pub struct PublishingStore {
    inner: Arc<dyn Store>,
    state: Arc<StateCell>,
}

type Task<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>;

/// What a write task holds: the adapter and the state cell.
#[derive(Clone)]
struct Ctx {
    store: Arc<dyn Store>,
    state: Arc<StateCell>,
}

impl PublishingStore {
    /// Wraps `inner`; publications go to `state`.
    pub fn new(inner: Arc<dyn Store>, state: Arc<StateCell>) -> Self {
        Self { inner, state }
    }

    /// Runs a write and its publication as a task of its own, so that a request whose future is dropped (the
    /// client went away, shutdown) cannot leave a committed write unpublished. The caller's audit notes get the
    /// generation in force once the task is done (at least the one it published).
    async fn write<T: Send + 'static>(&self, task: impl FnOnce(Ctx) -> Task<T>) -> Result<T, Error> {
        let ctx = Ctx {
            store: Arc::clone(&self.inner),
            state: Arc::clone(&self.state),
        };
        let r = tokio::spawn(task(ctx))
            .await
            .map_err(|e| Error::Corrupt(format!("a store write task failed: {e}")))?;
        crate::audit::context::generation(self.state.generation());
        r
    }
}

impl Ctx {
    /// Publishes after a committed write. A failure to re-read is repaired by a full rebuild; when that fails
    /// too, the state is marked stale and requests are refused until a rebuild succeeds (fail closed).
    async fn publish<F, Fut>(&self, change: F)
    where
        F: FnOnce(Arc<dyn Store>, View) -> Fut,
        Fut: Future<Output = Result<View, Error>>,
    {
        let store = Arc::clone(&self.store);
        if let Err(e) = self.state.publish(move |v| change(store, v)).await {
            tracing::error!(error = %e, "could not publish a change to the in-memory state: rebuilding it");
            if let Err(e) = self.state.reload(self.store.as_ref()).await {
                tracing::error!(error = %e, "could not rebuild the in-memory state: refusing requests until it is");
                self.state.mark_stale();
            }
        }
    }

    async fn key(&self, name: KeyName) {
        self.publish(|s, mut v| async move {
            super::refresh_key(s.as_ref(), &mut v, &name).await?;
            Ok(v)
        })
        .await;
    }

    async fn principal(&self, id: String) {
        self.publish(|s, mut v| async move {
            super::refresh_principal(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
    }

    async fn memberships(&self, members: Vec<String>) {
        self.publish(|s, mut v| async move {
            for m in &members {
                super::refresh_memberships(s.as_ref(), &mut v, m).await?;
            }
            Ok(v)
        })
        .await;
    }

    /// Publishes one created assignment (re-read by name), not all of its assignee's.
    async fn one_assignment(&self, name: String) {
        self.publish(|s, mut v| async move {
            super::refresh_one_assignment(s.as_ref(), &mut v, &name).await?;
            Ok(v)
        })
        .await;
    }

    /// Publishes one deleted assignment.
    async fn removed_assignment(&self, a: RoleAssignment) {
        self.publish(|_, mut v| async move {
            super::remove_one_assignment(&mut v, &a);
            Ok(v)
        })
        .await;
    }

    async fn custom_role(&self, id: String) {
        self.publish(|s, mut v| async move {
            super::refresh_custom_role(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
    }
}

#[async_trait]
impl InstanceStore for PublishingStore {
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error> {
        self.inner.instance().await
    }
    async fn create_instance(
        &self,
        instance: &InstanceRecord,
        bootstrap: &PrincipalRecord,
        assignments: &[RoleAssignment],
    ) -> Result<(), Error> {
        self.inner.create_instance(instance, bootstrap, assignments).await
    }
    // The lifecycle is published by the security-domain operations themselves (`Hsm::set_state`), after they
    // have installed the keys the new state needs.
    async fn record_download(&self, now: i64) -> Result<(), Error> {
        self.inner.record_download(now).await
    }
    async fn install_domain_secret(
        &self,
        sealed_domain_secret: &[u8],
        sealed_token_key: &[u8],
        now: i64,
    ) -> Result<(), Error> {
        self.inner
            .install_domain_secret(sealed_domain_secret, sealed_token_key, now)
            .await
    }
    async fn reseal_domain_secret(&self, sealed_domain_secret: &[u8]) -> Result<(), Error> {
        self.inner.reseal_domain_secret(sealed_domain_secret).await
    }
    async fn settings(&self) -> Result<Vec<(String, String)>, Error> {
        self.inner.settings().await
    }
    async fn put_setting(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        self.inner.put_setting(name, value, now).await
    }
    async fn meta(&self, name: &str) -> Result<Option<String>, Error> {
        self.inner.meta(name).await
    }
    async fn put_meta(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        let (name, value) = (name.to_string(), value.to_string());
        self.write(move |c| {
            Box::pin(async move {
                c.store.put_meta(&name, &value, now).await?;
                if name == crate::network::META_KEY {
                    let acls = serde_json::from_str(&value)
                        .map_err(|e| Error::Corrupt(format!("network ACLs: {e}")))
                        .and_then(crate::network::NetworkAcls::parse)?;
                    let acls = Arc::new(acls);
                    c.state.publish_with(|v| v.network = acls).await;
                } else if name == super::RESTORE_LEASE {
                    let until = value.parse().unwrap_or(0);
                    c.state.publish_with(|v| v.restore_lease_until = until).await;
                }
                Ok(())
            })
        })
        .await
    }
    async fn enable_purge_protection(&self) -> Result<(), Error> {
        self.write(|c| {
            Box::pin(async move {
                c.store.enable_purge_protection().await?;
                c.state.publish_with(|v| v.purge_protection = true).await;
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl KeyStore for PublishingStore {
    async fn rotation_policy(&self, name: &KeyName) -> Result<Option<(String, i64, i64)>, Error> {
        self.inner.rotation_policy(name).await
    }
    async fn put_rotation_policy(&self, name: &KeyName, policy: &str, now: i64) -> Result<bool, Error> {
        self.inner.put_rotation_policy(name, policy, now).await
    }
    async fn rotation_policies(&self) -> Result<Vec<(KeyName, String)>, Error> {
        self.inner.rotation_policies().await
    }
    async fn purge_due(&self, now: i64) -> Result<Vec<KeyName>, Error> {
        self.inner.purge_due(now).await
    }
    async fn version_count(&self, name: &KeyName) -> Result<i64, Error> {
        self.inner.version_count(name).await
    }
    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        self.inner.key_counts().await
    }
    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error> {
        let versions = versions.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                let name = c.store.insert_versions(&versions, mode).await?;
                c.key(name.clone()).await;
                Ok(name)
            })
        })
        .await
    }
    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error> {
        self.inner.key_version(name, version).await
    }
    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error> {
        self.inner.all_versions(name).await
    }
    async fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyVersionRecord>, Error> {
        self.inner.list_keys(after, limit).await
    }
    async fn list_versions(
        &self,
        name: &KeyName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        self.inner.list_versions(name, after, limit).await
    }
    async fn update_version(&self, record: &KeyVersionRecord) -> Result<(), Error> {
        let record = record.clone();
        self.write(|c| {
            Box::pin(async move {
                c.store.update_version(&record).await?;
                c.key(record.name).await;
                Ok(())
            })
        })
        .await
    }
    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error> {
        let name = name.clone();
        self.write(move |c| {
            Box::pin(async move {
                let r = c.store.soft_delete(&name, deletion).await?;
                c.key(name).await;
                Ok(r)
            })
        })
        .await
    }
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error> {
        self.inner.deleted_key(name).await
    }
    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error> {
        self.inner.list_deleted(after, limit).await
    }
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error> {
        let name = name.clone();
        self.write(move |c| {
            Box::pin(async move {
                let r = c.store.recover(&name).await?;
                c.key(name).await;
                Ok(r)
            })
        })
        .await
    }
    async fn purge(&self, name: &KeyName) -> Result<bool, Error> {
        let name = name.clone();
        self.write(move |c| {
            Box::pin(async move {
                let r = c.store.purge(&name).await?;
                c.key(name).await;
                Ok(r)
            })
        })
        .await
    }
}

#[async_trait]
impl BackupStore for PublishingStore {
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error> {
        self.inner.dump_keys().await
    }
    async fn restore_full(&self, state: &RestoreSet) -> Result<(), Error> {
        let set = state.clone();
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.restore_full(&set).await;
                // Rebuilt even on failure: the transaction rolled back, and the rebuild proves the view matches.
                c.publish(|s, v| async move { super::rebuild(s.as_ref(), v).await })
                    .await;
                r
            })
        })
        .await
    }
}

#[async_trait]
impl IdentityStore for PublishingStore {
    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        self.inner.principal_by_client_id(client_id).await
    }
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        let (id, der) = (object_id.to_string(), der.to_vec());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.add_certificate(&id, &der).await?;
                c.principal(id).await;
                Ok(r)
            })
        })
        .await
    }
    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        self.inner.principal(object_id).await
    }
    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error> {
        self.inner.principal_networks(object_id).await
    }
    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, Error> {
        self.inner.list_principals().await
    }
    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error> {
        let principal = principal.clone();
        self.write(|c| {
            Box::pin(async move {
                c.store.create_principal(&principal).await?;
                c.principal(principal.object_id).await;
                Ok(())
            })
        })
        .await
    }
    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error> {
        let id = object_id.to_string();
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.delete_principal(&id).await?;
                c.publish(|s, mut v| async move {
                    super::refresh_principal(s.as_ref(), &mut v, &id).await?;
                    super::refresh_memberships(s.as_ref(), &mut v, &id).await?;
                    super::refresh_assignments(s.as_ref(), &mut v, &id).await?;
                    Ok(v)
                })
                .await;
                Ok(r)
            })
        })
        .await
    }
    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error> {
        let (id, secret) = (object_id.to_string(), secret.clone());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.add_secret(&id, &secret).await?;
                c.principal(id).await;
                Ok(r)
            })
        })
        .await
    }
    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error> {
        let (id, sid) = (object_id.to_string(), secret_id.to_string());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.delete_secret(&id, &sid).await?;
                c.principal(id).await;
                Ok(r)
            })
        })
        .await
    }
    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error> {
        let group = group.clone();
        self.write(|c| {
            Box::pin(async move {
                c.store.create_group(&group).await?;
                c.memberships(group.members).await;
                Ok(())
            })
        })
        .await
    }
    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error> {
        self.inner.group(object_id).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error> {
        self.inner.list_groups().await
    }
    async fn delete_group(&self, object_id: &str) -> Result<bool, Error> {
        let id = object_id.to_string();
        self.write(|c| {
            Box::pin(async move {
                let before = c.store.group(&id).await?.map(|g| g.members).unwrap_or_default();
                let r = c.store.delete_group(&id).await?;
                c.publish(|s, mut v| async move {
                    // The members read before the delete, and any the view holds (a member added between that
                    // read and the delete was published under this lock before us).
                    let mut members = before;
                    members.extend(
                        v.groups_of
                            .iter()
                            .filter(|(_, gs)| gs.iter().any(|g| g == &id))
                            .map(|(m, _)| m.clone()),
                    );
                    members.push(id.clone());
                    members.sort();
                    members.dedup();
                    for m in &members {
                        super::refresh_memberships(s.as_ref(), &mut v, m).await?;
                    }
                    super::refresh_assignments(s.as_ref(), &mut v, &id).await?;
                    Ok(v)
                })
                .await;
                Ok(r)
            })
        })
        .await
    }
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let (g, m) = (group_id.to_string(), member_id.to_string());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.add_group_member(&g, &m).await?;
                c.memberships(vec![m]).await;
                Ok(r)
            })
        })
        .await
    }
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let (g, m) = (group_id.to_string(), member_id.to_string());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.remove_group_member(&g, &m).await?;
                c.memberships(vec![m]).await;
                Ok(r)
            })
        })
        .await
    }
    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error> {
        self.inner.groups_of(member_id).await
    }
    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error> {
        let (id, networks) = (object_id.to_string(), networks.to_vec());
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.set_principal_networks(&id, &networks).await?;
                c.principal(id).await;
                Ok(r)
            })
        })
        .await
    }
}

#[async_trait]
impl RbacStore for PublishingStore {
    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error> {
        self.inner.custom_roles().await
    }
    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        self.inner.custom_role(id).await
    }
    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error> {
        let role = role.clone();
        self.write(move |c| {
            Box::pin(async move {
                c.store.put_custom_role(&role, now, limit).await?;
                c.custom_role(role.id).await;
                Ok(())
            })
        })
        .await
    }
    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        let id = id.to_string();
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.delete_custom_role(&id).await?;
                c.custom_role(id).await;
                Ok(r)
            })
        })
        .await
    }
    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error> {
        self.inner.role_assignments(principal_ids).await
    }
    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        self.inner.role_assignment(name).await
    }
    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error> {
        let a = assignment.clone();
        self.write(move |c| {
            Box::pin(async move {
                c.store.create_role_assignment(&a, custom_role).await?;
                c.one_assignment(a.name).await;
                Ok(())
            })
        })
        .await
    }
    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        let name = name.to_string();
        self.write(|c| {
            Box::pin(async move {
                let r = c.store.delete_role_assignment(&name).await?;
                if let Some(a) = &r {
                    c.removed_assignment(a.clone()).await;
                }
                Ok(r)
            })
        })
        .await
    }
    // `last_used` is bookkeeping for access review, not a decision input: nothing to publish.
    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error> {
        self.inner.touch_role_assignment(name, now).await
    }
    async fn create_eligible(&self, eligible: &EligibleAssignment) -> Result<(), Error> {
        self.inner.create_eligible(eligible).await
    }
    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error> {
        self.inner.list_eligible().await
    }
    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error> {
        self.inner.eligible(name).await
    }
    async fn delete_eligible(&self, name: &str) -> Result<bool, Error> {
        self.inner.delete_eligible(name).await
    }
    async fn activate(&self, activation: &Activation, assignment: &RoleAssignment) -> Result<(), Error> {
        let (act, a) = (activation.clone(), assignment.clone());
        self.write(|c| {
            Box::pin(async move {
                c.store.activate(&act, &a).await?;
                c.one_assignment(a.name).await;
                Ok(())
            })
        })
        .await
    }
    async fn activations(&self) -> Result<Vec<Activation>, Error> {
        self.inner.activations().await
    }
}

#[async_trait]
impl PolicyStore for PublishingStore {
    // Key policies are evaluated where a version is written (a write, which may read the store); they are not
    // part of the request-path state.
    async fn policy_assignments(&self) -> Result<Vec<PolicyAssignment>, Error> {
        self.inner.policy_assignments().await
    }
    async fn policy_assignment(&self, name: &str) -> Result<Option<PolicyAssignment>, Error> {
        self.inner.policy_assignment(name).await
    }
    async fn put_policy_assignment(
        &self,
        assignment: &PolicyAssignment,
        limit: usize,
    ) -> Result<(PolicyAssignment, bool), Error> {
        self.inner.put_policy_assignment(assignment, limit).await
    }
    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error> {
        self.inner.delete_policy_assignment(name).await
    }
}

#[async_trait]
impl AssertionStore for PublishingStore {
    // Not part of the view: written straight through.
    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error> {
        self.inner.consume_assertion_jti(client_id, jti, expires, now).await
    }
}

/// The feed only reports other nodes' changes; nothing to publish.
#[async_trait]
impl ChangeStore for PublishingStore {
    async fn last_change_before(&self, at: i64) -> Result<i64, Error> {
        self.inner.last_change_before(at).await
    }
    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, Error> {
        self.inner.changes_after(after, limit).await
    }
    async fn prune_changes(&self, before: i64) -> Result<u64, Error> {
        self.inner.prune_changes(before).await
    }
}
