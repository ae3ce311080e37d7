//! Coffer's identities: service principals of the built-in token service (with client secrets and certificate
//! credentials) and groups. Guarded by Coffer's own dataActions (`Coffer/identities/…`), held by the built-in
//! Coffer Identity Administrator role, which is separate from the Managed HSM Administrator.
use coffer_crypto::SecretBytes;

use crate::instance::{client_secret_hash, new_client_secret, new_uuid};
use crate::rbac::{DataAction, Scope, escalation};
use crate::store::{ClientSecretRecord, GroupRecord, PrincipalRecord};
use crate::{Error, Hsm, Principal};

/// A new principal and its first secret (shown once).
#[derive(Debug)]
pub struct NewPrincipal {
    pub record: PrincipalRecord,
    pub secret_id: String,
    pub client_secret: SecretBytes,
}

fn principal_not_found(id: &str) -> Error {
    Error::NotFound {
        code: "PrincipalNotFound",
        message: format!("Principal '{id}' was not found."),
    }
}

fn group_not_found(id: &str) -> Error {
    Error::NotFound {
        code: "GroupNotFound",
        message: format!("Group '{id}' was not found."),
    }
}

fn check_display_name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 256 {
        return Err(Error::BadParameter("displayName must be 1 to 256 characters.".into()));
    }
    Ok(n.to_string())
}

impl Hsm {
    /// A credential lets whoever holds it act as the principal: the caller must hold every protected right the
    /// principal holds (itself or through its groups).
    /// Also guards removals (deleting the principal or a credential, restricting its networks): whoever could not
    /// have granted a principal's rights cannot take them away either (an Identity Administrator cannot lock the
    /// Administrators out).
    pub(crate) async fn check_may_act_as(&self, caller: &Principal, object_id: &str, what: &str) -> Result<(), Error> {
        let ids = escalation::with_groups(&self.view(), object_id);
        let conferred = self.held_or_eligible(&ids).await?;
        self.check_no_escalation(caller, &conferred, what)
    }

    /// Whoever changes a group's membership (or deletes it) must hold what the group's roles and eligibilities grant.
    async fn check_may_change_group(&self, caller: &Principal, group_id: &str, what: &str) -> Result<(), Error> {
        let conferred = self.held_or_eligible(&[group_id.to_string()]).await?;
        self.check_no_escalation(caller, &conferred, what)
    }

    /// Creates a service principal with a client secret.
    pub async fn create_principal(&self, caller: &Principal, display_name: &str) -> Result<NewPrincipal, Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        let display_name = check_display_name(display_name)?;
        let client_secret = new_client_secret()?;
        let now = self.clock.now();
        let secret_id = new_uuid()?;
        let record = PrincipalRecord {
            object_id: new_uuid()?,
            client_id: new_uuid()?,
            display_name,
            secrets: vec![ClientSecretRecord {
                id: secret_id.clone(),
                hash: client_secret_hash(client_secret.expose_secret()),
                created: now,
            }],
            certificates: Vec::new(),
            created: now,
            allowed_networks: Vec::new(),
        };
        self.store.create_principal(&record).await?;
        tracing::info!(object_id = %record.object_id, client_id = %record.client_id, "principal created");
        Ok(NewPrincipal {
            record,
            secret_id,
            client_secret,
        })
    }

    /// Lists principals.
    pub async fn list_principals(&self, caller: &Principal) -> Result<Vec<PrincipalRecord>, Error> {
        self.authorize(caller, DataAction::IdentitiesRead, &Scope::Root).await?;
        self.store.list_principals().await
    }

    /// One principal.
    pub async fn get_principal(&self, caller: &Principal, object_id: &str) -> Result<PrincipalRecord, Error> {
        self.authorize(caller, DataAction::IdentitiesRead, &Scope::Root).await?;
        self.store
            .principal(object_id)
            .await?
            .ok_or_else(|| principal_not_found(object_id))
    }

    /// Deletes a principal with its credentials, memberships and role assignments. A caller cannot delete itself.
    pub async fn delete_principal(&self, caller: &Principal, object_id: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        if caller.object_id.eq_ignore_ascii_case(object_id) {
            return Err(Error::BadParameter("A principal cannot delete itself.".into()));
        }
        self.check_may_act_as(caller, object_id, "delete this principal")
            .await?;
        if !self.store.delete_principal(object_id).await? {
            return Err(principal_not_found(object_id));
        }
        tracing::info!(object_id, "principal deleted");
        Ok(())
    }

    /// Adds a client secret (for rotation: add, switch clients over, then delete the old one).
    pub async fn add_client_secret(&self, caller: &Principal, object_id: &str) -> Result<(String, SecretBytes), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        self.check_may_act_as(caller, object_id, "add a credential to this principal")
            .await?;
        let secret = new_client_secret()?;
        let rec = ClientSecretRecord {
            id: new_uuid()?,
            hash: client_secret_hash(secret.expose_secret()),
            created: self.clock.now(),
        };
        if !self.store.add_secret(object_id, &rec).await? {
            return Err(principal_not_found(object_id));
        }
        tracing::info!(object_id, secret_id = %rec.id, "client secret added");
        Ok((rec.id, secret))
    }

    /// Deletes a client secret.
    pub async fn delete_client_secret(
        &self,
        caller: &Principal,
        object_id: &str,
        secret_id: &str,
    ) -> Result<(), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        self.check_may_act_as(caller, object_id, "delete a credential of this principal")
            .await?;
        if !self.store.delete_secret(object_id, secret_id).await? {
            return Err(Error::NotFound {
                code: "SecretNotFound",
                message: format!("Secret '{secret_id}' was not found."),
            });
        }
        tracing::info!(object_id, secret_id, "client secret deleted");
        Ok(())
    }

    /// Registers a certificate credential (PEM, RSA ≥ 2048 bits) for a principal; returns its `x5t` thumbprint.
    pub async fn add_certificate(&self, caller: &Principal, object_id: &str, pem: &str) -> Result<String, Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        let ders = coffer_crypto::x509::certificates_from_pem(pem)
            .map_err(|_| Error::BadParameter("certificate must be a PEM X.509 certificate".into()))?;
        let der = ders
            .into_iter()
            .next()
            .ok_or_else(|| Error::BadParameter("no certificate in PEM".into()))?;
        coffer_crypto::x509::check_client_certificate(&der)
            .map_err(|e| Error::BadParameter(format!("certificate not usable as a credential: {e}")))?;
        self.check_may_act_as(caller, object_id, "add a credential to this principal")
            .await?;
        if !self.store.add_certificate(object_id, &der).await? {
            return Err(principal_not_found(object_id));
        }
        Ok(coffer_crypto::x509::thumbprint_sha1(&der))
    }

    /// Creates a group.
    pub async fn create_group(&self, caller: &Principal, display_name: &str) -> Result<GroupRecord, Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        let group = GroupRecord {
            object_id: new_uuid()?,
            display_name: check_display_name(display_name)?,
            created: self.clock.now(),
            members: Vec::new(),
        };
        self.store.create_group(&group).await?;
        tracing::info!(group = %group.object_id, "group created");
        Ok(group)
    }

    /// Lists groups.
    pub async fn list_groups(&self, caller: &Principal) -> Result<Vec<GroupRecord>, Error> {
        self.authorize(caller, DataAction::IdentitiesRead, &Scope::Root).await?;
        self.store.list_groups().await
    }

    /// One group with its members.
    pub async fn get_group(&self, caller: &Principal, group_id: &str) -> Result<GroupRecord, Error> {
        self.authorize(caller, DataAction::IdentitiesRead, &Scope::Root).await?;
        self.store
            .group(group_id)
            .await?
            .ok_or_else(|| group_not_found(group_id))
    }

    /// Deletes a group (its role assignments go with it).
    pub async fn delete_group(&self, caller: &Principal, group_id: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        self.check_may_change_group(caller, group_id, "delete this group")
            .await?;
        if !self.store.delete_group(group_id).await? {
            return Err(group_not_found(group_id));
        }
        Ok(())
    }

    /// Adds a principal to a group. Membership shows in tokens issued afterwards.
    pub async fn add_group_member(&self, caller: &Principal, group_id: &str, member_id: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        if self.store.principal(member_id).await?.is_none() {
            return Err(principal_not_found(member_id));
        }
        let now = self.clock.now();
        self.check_may_change_group(caller, group_id, "add a member to this group")
            .await?;
        self.separation_of_duties_for_membership(group_id, member_id, now)?;
        if !self.store.add_group_member(group_id, member_id).await? {
            return Err(group_not_found(group_id));
        }
        Ok(())
    }

    /// Removes a principal from a group.
    pub async fn remove_group_member(&self, caller: &Principal, group_id: &str, member_id: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        self.check_may_change_group(caller, group_id, "remove a member of this group")
            .await?;
        if !self.store.remove_group_member(group_id, member_id).await? {
            return Err(Error::NotFound {
                code: "MemberNotFound",
                message: format!("'{member_id}' is not a member of group '{group_id}'."),
            });
        }
        Ok(())
    }
}
