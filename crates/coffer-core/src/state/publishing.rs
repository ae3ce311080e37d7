//! The store as core sees it: every write method of the port runs its transaction in the adapter and then
//! publishes the changed entries into the [`StateCell`], before it returns. Reads pass through. Because every
//! write of every operation goes through here, no route or job can change stored state without the in-memory
//! view following it.
//!
//! A failed publication (the re-read failed after the write committed) is logged and the whole view is rebuilt
//! from the store on the next publication attempt, so the view never stays behind the store silently.
use std::sync::Arc;

use async_trait::async_trait;

use super::{StateCell, View};
use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};
use crate::policy::PolicyAssignment;
use crate::rbac::{Activation, EligibleAssignment, Network, RoleAssignment, RoleDefinition};
use crate::store::{
    ClientSecretRecord, GroupRecord, InstanceRecord, KeyDump, NewVersionMode, PrincipalRecord, RestoreSet, Store,
};

/// The publishing decorator.
pub struct PublishingStore {
    inner: Arc<dyn Store>,
    state: Arc<StateCell>,
}

impl PublishingStore {
    /// Wraps `inner`; publications go to `state`.
    pub fn new(inner: Arc<dyn Store>, state: Arc<StateCell>) -> Self {
        Self { inner, state }
    }

    /// Publishes after a committed write. A failure to re-read is logged and repaired by a full rebuild.
    async fn publish<F, Fut>(&self, change: F)
    where
        F: FnOnce(Arc<dyn Store>, View) -> Fut,
        Fut: Future<Output = Result<View, Error>>,
    {
        let store = Arc::clone(&self.inner);
        if let Err(e) = self.state.publish(move |v| change(store, v)).await {
            tracing::error!(error = %e, "could not publish a change to the in-memory state: rebuilding it");
            if let Err(e) = self.state.reload(self.inner.as_ref()).await {
                tracing::error!(error = %e, "could not rebuild the in-memory state");
            }
        }
    }

    async fn key(&self, name: &KeyName) {
        let name = name.clone();
        self.publish(|s, mut v| async move {
            super::refresh_key(s.as_ref(), &mut v, &name).await?;
            Ok(v)
        })
        .await;
    }

    async fn principal(&self, object_id: &str) {
        let id = object_id.to_string();
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

    async fn assignments(&self, assignee: &str) {
        let id = assignee.to_string();
        self.publish(|s, mut v| async move {
            super::refresh_assignments(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
    }
}

#[async_trait]
impl Store for PublishingStore {
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
        self.inner.put_meta(name, value, now).await?;
        if name == crate::network::META_KEY {
            let acls = serde_json::from_str(value)
                .map_err(|e| Error::Corrupt(format!("network ACLs: {e}")))
                .and_then(crate::network::NetworkAcls::parse)?;
            let acls = Arc::new(acls);
            self.state.publish_with(|v| v.network = acls).await;
        } else if name == super::RESTORE_LEASE {
            let until = value.parse().unwrap_or(0);
            self.state.publish_with(|v| v.restore_lease_until = until).await;
        }
        Ok(())
    }
    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        self.inner.key_counts().await
    }
    async fn enable_purge_protection(&self) -> Result<(), Error> {
        self.inner.enable_purge_protection().await?;
        self.state.publish_with(|v| v.purge_protection = true).await;
        Ok(())
    }
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error> {
        self.inner.dump_keys().await
    }
    async fn restore_full(&self, state: &RestoreSet) -> Result<(), Error> {
        let r = self.inner.restore_full(state).await;
        // Rebuilt even on failure: the transaction rolled back, and the rebuild proves the view matches the store.
        self.publish(|s, v| async move { super::rebuild(s.as_ref(), v).await })
            .await;
        r
    }
    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error> {
        let name = self.inner.insert_versions(versions, mode).await?;
        self.key(&name).await;
        Ok(name)
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
        self.inner.update_version(record).await?;
        self.key(&record.name).await;
        Ok(())
    }
    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error> {
        let r = self.inner.soft_delete(name, deletion).await?;
        self.key(name).await;
        Ok(r)
    }
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error> {
        self.inner.deleted_key(name).await
    }
    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error> {
        self.inner.list_deleted(after, limit).await
    }
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error> {
        let r = self.inner.recover(name).await?;
        self.key(name).await;
        Ok(r)
    }
    async fn purge(&self, name: &KeyName) -> Result<bool, Error> {
        let r = self.inner.purge(name).await?;
        self.key(name).await;
        Ok(r)
    }

    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        self.inner.principal_by_client_id(client_id).await
    }
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        let r = self.inner.add_certificate(object_id, der).await?;
        self.principal(object_id).await;
        Ok(r)
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
        self.inner.create_principal(principal).await?;
        self.principal(&principal.object_id).await;
        Ok(())
    }
    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error> {
        let r = self.inner.delete_principal(object_id).await?;
        let id = object_id.to_string();
        self.publish(|s, mut v| async move {
            super::refresh_principal(s.as_ref(), &mut v, &id).await?;
            super::refresh_memberships(s.as_ref(), &mut v, &id).await?;
            super::refresh_assignments(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
        Ok(r)
    }
    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error> {
        let r = self.inner.add_secret(object_id, secret).await?;
        self.principal(object_id).await;
        Ok(r)
    }
    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error> {
        let r = self.inner.delete_secret(object_id, secret_id).await?;
        self.principal(object_id).await;
        Ok(r)
    }

    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error> {
        self.inner.create_group(group).await?;
        self.memberships(group.members.clone()).await;
        Ok(())
    }
    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error> {
        self.inner.group(object_id).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error> {
        self.inner.list_groups().await
    }
    async fn delete_group(&self, object_id: &str) -> Result<bool, Error> {
        let members = self
            .inner
            .group(object_id)
            .await?
            .map(|g| g.members)
            .unwrap_or_default();
        let r = self.inner.delete_group(object_id).await?;
        let id = object_id.to_string();
        self.publish(|s, mut v| async move {
            for m in members.iter().chain(std::iter::once(&id)) {
                super::refresh_memberships(s.as_ref(), &mut v, m).await?;
            }
            super::refresh_assignments(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
        Ok(r)
    }
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let r = self.inner.add_group_member(group_id, member_id).await?;
        self.memberships(vec![member_id.to_string()]).await;
        Ok(r)
    }
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let r = self.inner.remove_group_member(group_id, member_id).await?;
        self.memberships(vec![member_id.to_string()]).await;
        Ok(r)
    }
    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error> {
        self.inner.groups_of(member_id).await
    }

    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error> {
        self.inner.custom_roles().await
    }
    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        self.inner.custom_role(id).await
    }
    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error> {
        self.inner.put_custom_role(role, now, limit).await?;
        let id = role.id.clone();
        self.publish(|s, mut v| async move {
            super::refresh_custom_role(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
        Ok(())
    }
    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        let r = self.inner.delete_custom_role(id).await?;
        let id = id.to_string();
        self.publish(|s, mut v| async move {
            super::refresh_custom_role(s.as_ref(), &mut v, &id).await?;
            Ok(v)
        })
        .await;
        Ok(r)
    }
    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error> {
        self.inner.role_assignments(principal_ids).await
    }
    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        self.inner.role_assignment(name).await
    }
    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error> {
        self.inner.create_role_assignment(assignment, custom_role).await?;
        self.assignments(&assignment.principal_id).await;
        Ok(())
    }
    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        let r = self.inner.delete_role_assignment(name).await?;
        if let Some(a) = &r {
            self.assignments(&a.principal_id).await;
        }
        Ok(r)
    }
    // `last_used` is bookkeeping for access review, not a decision input: nothing to publish.
    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error> {
        self.inner.touch_role_assignment(name, now).await
    }
    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error> {
        let r = self.inner.set_principal_networks(object_id, networks).await?;
        self.principal(object_id).await;
        Ok(r)
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
        self.inner.activate(activation, assignment).await?;
        self.assignments(&assignment.principal_id).await;
        Ok(())
    }
    async fn activations(&self) -> Result<Vec<Activation>, Error> {
        self.inner.activations().await
    }

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
