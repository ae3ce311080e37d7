//! Directory look-ups for the Graph subset (`routes/graph.rs`): the Azure CLI shows the names of the principals
//! in role assignments by asking Microsoft Graph for the objects behind their ids. Coffer answers from its own
//! principals and groups.
//!
//! Who may look names up: holders of `roleAssignments/read` at `/` — the callers who can list assignments and so
//! meet the ids (the built-in Administrator, Crypto Officer, Crypto User, Policy Administrator and Crypto Auditor;
//! not the Backup, Restore, Service Encryption, Service Release or Identity Administrator roles). A look-up reveals
//! a principal's display name and client id, much less than `Coffer/identities/read` (every principal with its
//! credentials and networks), which it does not require.
use std::collections::HashSet;

use crate::rbac::{DataAction, Scope};
use crate::store::{GroupRecord, PrincipalRecord};
use crate::{Error, Hsm, Principal};

/// How many ids one `getByIds` call may name (Graph's limit).
pub const MAX_IDS: usize = 1000;

/// A directory object as Graph describes it.
#[derive(Debug, Clone)]
pub enum DirectoryObject {
    /// A principal of the built-in token service.
    ServicePrincipal(PrincipalRecord),
    /// A group.
    Group(GroupRecord),
}

/// The object types a `getByIds` call asks for (Graph's `types`; none: all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Types {
    pub service_principals: bool,
    pub groups: bool,
}

impl Types {
    /// From Graph's type names (`servicePrincipal`, `group`, `user`, …; case-insensitive). Empty: every type.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut t = Types::default();
        let mut any = false;
        for n in names {
            any = true;
            let n = n.trim_start_matches("microsoft.graph.");
            t.service_principals |= n.eq_ignore_ascii_case("servicePrincipal");
            t.groups |= n.eq_ignore_ascii_case("group");
        }
        if !any {
            t = Types {
                service_principals: true,
                groups: true,
            };
        }
        t
    }
}

impl Hsm {
    /// Graph's `directoryObjects/getByIds`: the principals and groups with these object ids (ids not found are
    /// left out, as Graph does), in the order asked.
    pub async fn directory_objects(
        &self,
        caller: &Principal,
        ids: &[String],
        types: Types,
    ) -> Result<Vec<DirectoryObject>, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await?;
        if ids.len() > MAX_IDS {
            return Err(Error::BadParameter(format!("At most {MAX_IDS} ids may be given.")));
        }
        let wanted: HashSet<String> = ids.iter().map(|i| i.to_ascii_lowercase()).collect();
        let mut found = Vec::new();
        if types.service_principals {
            for p in self.store.list_principals().await? {
                if wanted.contains(&p.object_id.to_ascii_lowercase()) {
                    found.push(DirectoryObject::ServicePrincipal(p));
                }
            }
        }
        if types.groups {
            for g in self.store.list_groups().await? {
                if wanted.contains(&g.object_id.to_ascii_lowercase()) {
                    found.push(DirectoryObject::Group(g));
                }
            }
        }
        let position = |id: &str| {
            ids.iter()
                .position(|i| i.eq_ignore_ascii_case(id))
                .unwrap_or(usize::MAX)
        };
        found.sort_by_key(|o| match o {
            DirectoryObject::ServicePrincipal(p) => position(&p.object_id),
            DirectoryObject::Group(g) => position(&g.object_id),
        });
        Ok(found)
    }

    /// Graph's `servicePrincipals` filtered by a service-principal name: Coffer's service principals have one,
    /// their client id (an Entra application's appId is always among its names).
    pub async fn service_principals_named(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Vec<PrincipalRecord>, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await?;
        Ok(self.store.principal_by_client_id(name).await?.into_iter().collect())
    }

    /// Graph's `users` filtered by user principal name: authorizes the look-up, whose answer is always empty
    /// (Coffer has no users; the Azure CLI then tries service principals).
    pub async fn users_named(&self, caller: &Principal, _upn: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await
    }
}
