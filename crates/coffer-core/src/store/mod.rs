//! The storage port. Each method is one transaction in the adapter: it either applies entirely or not at all.
//! Adapters (coffer-store) implement it for SQLite now and PostgreSQL later; core never sees SQL.
mod assertions;
mod backup;
mod changes;
mod identities;
mod instance;
mod keys;
mod policy;
mod rbac;

pub use assertions::AssertionStore;
pub use backup::BackupStore;
pub use changes::{Change, ChangeStore};
pub use identities::IdentityStore;
pub use instance::InstanceStore;
pub use keys::KeyStore;
pub use policy::PolicyStore;
pub use rbac::RbacStore;

/// Every port trait, unnamed: `use coffer_core::store::prelude::*;` makes their methods callable on an adapter's
/// concrete type (on `dyn Store` they always are).
pub mod prelude {
    pub use super::{
        AssertionStore as _, BackupStore as _, ChangeStore as _, IdentityStore as _, InstanceStore as _, KeyStore as _,
        PolicyStore as _, RbacStore as _,
    };
}

use crate::Error;
use crate::key::{Deletion, KeyVersionRecord};
use crate::rbac::{Network, RoleAssignment, RoleDefinition};

/// The instance row, written once at creation.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub instance_name: String,
    pub tenant_id: String,
    pub created: i64,
    pub dev: bool,
    /// The domain secret sealed by the seal provider (AES-256-GCM under the seal key).
    pub sealed_domain_secret: Vec<u8>,
    /// The token-signing key (PKCS#8) sealed under a key derived from the domain secret.
    pub sealed_token_key: Vec<u8>,
    pub soft_delete_retention_days: i64,
    pub purge_protection: bool,
    /// Object id of the bootstrap administrator.
    pub bootstrap_object_id: String,
    /// Security-domain lifecycle state.
    pub state: LifecycleState,
    /// Recovery mode: the exchange (transfer) key's PKCS#8, sealed by the seal provider.
    pub sealed_exchange_key: Option<Vec<u8>>,
    /// Recovery mode: the exchange key's self-signed certificate (DER).
    pub exchange_cert: Option<Vec<u8>>,
    /// When the instance was activated.
    pub activated: Option<i64>,
}

/// Where an instance is in the security-domain lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    /// Activated: the security domain has been downloaded (or uploaded); everything works.
    Active,
    /// Created, waiting for the first security-domain download.
    Provisioned,
    /// Created in recovery mode, waiting for a security-domain upload.
    Recovery,
}

impl LifecycleState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Provisioned => "provisioned",
            Self::Recovery => "recovery",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "provisioned" => Some(Self::Provisioned),
            "recovery" => Some(Self::Recovery),
            _ => None,
        }
    }
}

/// A service principal of the built-in token service.
#[derive(Debug, Clone)]
pub struct PrincipalRecord {
    pub object_id: String,
    pub client_id: String,
    pub display_name: String,
    /// The client secrets, stored as SHA-256 hashes (secrets are 240-bit random, so a fast hash is enough).
    pub secrets: Vec<ClientSecretRecord>,
    /// DER of each registered certificate credential.
    pub certificates: Vec<Vec<u8>>,
    pub created: i64,
    /// Client address ranges the principal may call from (empty: any).
    pub allowed_networks: Vec<Network>,
}

/// A stored client secret.
#[derive(Debug, Clone)]
pub struct ClientSecretRecord {
    /// Identifies the secret for deletion (never the secret itself).
    pub id: String,
    /// SHA-256 of the secret.
    pub hash: Vec<u8>,
    pub created: i64,
}

/// A group of principals.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub object_id: String,
    pub display_name: String,
    pub created: i64,
    /// Object ids of the members.
    pub members: Vec<String>,
}

/// One key in a full backup.
#[derive(Debug, Clone)]
pub struct KeyDump {
    pub versions: Vec<KeyVersionRecord>,
    pub deletion: Option<Deletion>,
    pub rotation_policy: Option<(String, i64, i64)>,
}

/// Everything a full restore writes.
#[derive(Debug, Clone, Default)]
pub struct RestoreSet {
    pub keys: Vec<KeyDump>,
    pub custom_roles: Vec<RoleDefinition>,
    pub assignments: Vec<RoleAssignment>,
    pub principals: Vec<PrincipalRecord>,
    pub groups: Vec<GroupRecord>,
    pub settings: Vec<(String, String)>,
    /// Key policy assignments the backup holds (`None`: a backup made before policies existed). Added where no
    /// assignment of that name exists; current ones are kept.
    pub policies: Option<Vec<crate::policy::PolicyAssignment>>,
    /// Whether principals, groups, memberships and role assignments are restored (those missing are added back).
    /// When false, identities and role assignments stay exactly as they are.
    pub identities: bool,
    /// The deletion given to live keys the backup lacks (created after it): soft-deleted, recoverable.
    pub deletion_for_missing: Deletion,
}

/// How a new key version is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewVersionMode {
    /// Create or import: a soft-deleted key of that name is a conflict; an existing key gets a new version.
    AddVersion,
    /// Restore from backup: any key of that name (live or deleted) is a conflict.
    RestoreWholeKey,
    /// Restore from a full backup (selective restore): a live key of that name gets the versions it lacks and keeps
    /// its own (and its latest); a soft-deleted one is a conflict; an absent one is created.
    MergeFromBackup,
}

/// Storage of everything Coffer persists: one port per aggregate, each in its own file. Adapters implement every
/// one of them; core holds the whole as `Arc<dyn Store>`.
pub trait Store:
    InstanceStore + KeyStore + BackupStore + IdentityStore + RbacStore + PolicyStore + AssertionStore + ChangeStore
{
}

impl<T: InstanceStore + KeyStore + BackupStore + IdentityStore + RbacStore + PolicyStore + AssertionStore + ChangeStore>
    Store for T
{
}

/// Why an adapter refused a write: the typed outcome of a store method, which core (not the adapter) turns into the
/// Azure error a client sees. Adapters return it as `Err(Refusal::….into())`; a unique-key violation met in the
/// database itself (a race the adapter's own check did not see) is `Taken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A soft-deleted key holds the name.
    KeyDeleted { name: String },
    /// Restoring a whole key whose name exists (live or deleted).
    KeyExists { name: String },
    /// The key (or that version of it) does not exist.
    KeyNotFound { name: String },
    /// The instance is not waiting for a security-domain upload.
    NotInRecovery,
    /// A unique name or id is taken; `what` names the kind of object.
    Taken { what: Kind, id: String },
    /// A count limit is reached.
    Limit { what: Kind, limit: usize },
    /// A custom role is still referenced by role assignments.
    RoleInUse { id: String },
    /// A role assignment names a role definition that does not exist.
    NoSuchRole { id: String },
    /// The database itself refused the write: a duplicate unique key, or a conflict with concurrent writers that
    /// persisted through every retry.
    Duplicate,
}

/// The kinds of stored objects a [`Refusal`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    Principal,
    Group,
    CustomRole,
    RoleAssignment,
    EligibleAssignment,
    PolicyAssignment,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Principal => "principal",
            Self::Group => "group",
            Self::CustomRole => "custom role definition",
            Self::RoleAssignment => "role assignment",
            Self::EligibleAssignment => "eligible assignment",
            Self::PolicyAssignment => "policy assignment",
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::KeyDeleted { name } => Error::Conflict(format!(
                "Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this \
                 state, the key can only be recovered or purged."
            )),
            Refusal::KeyExists { name } => Error::Conflict(format!(
                "A key named {name} already exists; delete and purge it before restoring."
            )),
            Refusal::KeyNotFound { name } => {
                Error::KeyNotFound(format!("A key with (name/id) {name} was not found in this key vault."))
            }
            Refusal::NotInRecovery => Error::Conflict("The HSM is not in recovery mode.".into()),
            Refusal::Taken {
                what: Kind::Principal, ..
            } => Error::Conflict("A principal with this object id or client id exists.".into()),
            Refusal::Taken { what: Kind::Group, .. } => Error::Conflict("A group with this object id exists.".into()),
            Refusal::Taken { what, id } => Error::Conflict(format!("The {} '{id}' already exists.", what.noun())),
            Refusal::Limit { what, limit } => {
                Error::BadParameter(format!("An HSM may hold at most {limit} {}s.", what.noun()))
            }
            Refusal::RoleInUse { id } => Error::Conflict(format!(
                "The role definition '{id}' is referenced by role assignments; delete them first."
            )),
            Refusal::NoSuchRole { id } => Error::BadParameter(format!("The role definition '{id}' does not exist.")),
            Refusal::Duplicate => Error::Conflict(
                "The object exists, or is being changed by another request at the same time; try again.".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_become_the_azure_errors_clients_see() {
        let e = Error::from(Refusal::KeyDeleted { name: "k1".into() });
        assert!(
            matches!(&e, Error::Conflict(m) if m.starts_with("Key k1 is currently in a deleted")),
            "{e:?}"
        );
        let e = Error::from(Refusal::Taken {
            what: Kind::RoleAssignment,
            id: "a1".into(),
        });
        assert!(
            matches!(&e, Error::Conflict(m) if m == "The role assignment 'a1' already exists."),
            "{e:?}"
        );
        let e = Error::from(Refusal::Limit {
            what: Kind::CustomRole,
            limit: 5,
        });
        assert!(matches!(&e, Error::BadParameter(m) if m == "An HSM may hold at most 5 custom role definitions."));
        let e = Error::from(Refusal::KeyNotFound { name: "k2".into() });
        assert!(matches!(&e, Error::KeyNotFound(m) if m.contains("k2")), "{e:?}");
    }
}
