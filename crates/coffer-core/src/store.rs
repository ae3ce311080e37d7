//! The storage port. Each method is one transaction in the adapter: it either applies entirely or not at all.
//! Adapters (coffer-store) implement it for SQLite now and PostgreSQL later; core never sees SQL.
use async_trait::async_trait;

use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};
use crate::rbac::{Activation, EligibleAssignment, Network, RoleAssignment, RoleDefinition};

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

/// Storage of everything Coffer persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The instance row, if the instance exists.
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error>;
    /// Creates the instance together with its bootstrap principal and initial role assignments. Fails if an
    /// instance exists.
    async fn create_instance(
        &self,
        instance: &InstanceRecord,
        bootstrap: &PrincipalRecord,
        assignments: &[RoleAssignment],
    ) -> Result<(), Error>;

    /// Records a security-domain download; activates a provisioned instance (state, activation time).
    async fn record_download(&self, now: i64) -> Result<(), Error>;
    /// Installs a recovered domain secret: the re-sealed domain secret and token key, state active, and the
    /// exchange key dropped, in one transaction.
    async fn install_domain_secret(
        &self,
        sealed_domain_secret: &[u8],
        sealed_token_key: &[u8],
        now: i64,
    ) -> Result<(), Error>;
    /// Replaces the sealed domain secret (seal-provider migration).
    async fn reseal_domain_secret(&self, sealed_domain_secret: &[u8]) -> Result<(), Error>;

    /// The rotation policy of a key (JSON text, created, updated), if one was set.
    async fn rotation_policy(&self, name: &KeyName) -> Result<Option<(String, i64, i64)>, Error>;
    /// Writes a key's rotation policy (the key must be live; returns false otherwise).
    async fn put_rotation_policy(&self, name: &KeyName, policy: &str, now: i64) -> Result<bool, Error>;
    /// Names of live keys that have a rotation policy, with the policy JSON.
    async fn rotation_policies(&self) -> Result<Vec<(KeyName, String)>, Error>;
    /// Names of soft-deleted keys whose scheduled purge date is at or before `now`.
    async fn purge_due(&self, now: i64) -> Result<Vec<KeyName>, Error>;
    /// Number of versions of a key.
    async fn version_count(&self, name: &KeyName) -> Result<i64, Error>;
    /// All settings (name, value).
    async fn settings(&self) -> Result<Vec<(String, String)>, Error>;
    /// Writes a setting.
    async fn put_setting(&self, name: &str, value: &str, now: i64) -> Result<(), Error>;
    /// An instance fact that is not a setting (e.g. `last_backup_success`).
    async fn meta(&self, name: &str) -> Result<Option<String>, Error>;
    /// Writes an instance fact.
    async fn put_meta(&self, name: &str, value: &str, now: i64) -> Result<(), Error>;
    /// Keys that are not deleted, counted by storage tag of their current version (`RSA`, `EC`, `oct`).
    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error>;
    /// Switches purge protection on for the instance (never off).
    async fn enable_purge_protection(&self) -> Result<(), Error>;

    /// Every key (live or soft-deleted) with all its versions (oldest first), deletion state and rotation policy
    /// (JSON, created, updated): the content of a full backup.
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error>;
    /// Full restore, in one transaction: replaces every key (versions, deletion state, rotation policies) and every
    /// custom role with the given ones, upserts the settings, and adds the principals, groups and role assignments
    /// that do not exist yet (existing ones are kept, so the restoring administrator keeps access).
    ///
    /// A restore never erases: keys and versions the instance holds are kept (its own deletion state, attributes and
    /// latest version win), the backup's missing keys and versions are added, live keys the backup lacks are
    /// soft-deleted with `deletion_for_missing`; custom roles and policy assignments are added where missing;
    /// identities only when `identities` is set.
    async fn restore_full(&self, state: &RestoreSet) -> Result<(), Error>;

    /// Writes new versions of a key (one for create/import; all of them for restore), making the last the latest.
    /// Returns the key's stored name (names are case-insensitive; the first spelling is kept).
    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error>;
    /// A version of a live key (`None` = latest).
    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error>;
    /// All versions of a live key, oldest first.
    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Latest versions of live keys with names greater than `after`, by name, at most `limit`.
    async fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Versions of a live key with version ids greater than `after`, at most `limit`.
    async fn list_versions(
        &self,
        name: &KeyName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Replaces the mutable fields (key_ops, attributes, tags, release policy) of one version.
    async fn update_version(&self, record: &KeyVersionRecord) -> Result<(), Error>;
    /// Soft-deletes a live key (all versions). Returns the latest version, or `None` if there is no live key.
    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error>;
    /// A soft-deleted key.
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error>;
    /// Soft-deleted keys with names greater than `after`, at most `limit`.
    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error>;
    /// Recovers a soft-deleted key. Returns its latest version, or `None` if it is not deleted.
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error>;
    /// Permanently removes a soft-deleted key. Returns false if there was none.
    async fn purge(&self, name: &KeyName) -> Result<bool, Error>;

    /// A principal by client id.
    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error>;
    /// Adds a certificate credential to a principal. Returns false if the principal does not exist.
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error>;
    /// A principal by object id.
    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error>;
    /// A principal's allowed networks (`None` if the principal does not exist): one indexed read, for the
    /// per-request conditional-access check.
    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error>;
    /// All principals, by object id.
    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, Error>;
    /// Creates a principal with its secrets. A taken client id or object id is a conflict.
    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error>;
    /// Deletes a principal, its credentials, its group memberships and the role assignments naming it.
    /// Returns false if it did not exist.
    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error>;
    /// Adds a client secret. Returns false if the principal does not exist.
    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error>;
    /// Removes a client secret. Returns false if there was no such secret.
    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error>;

    /// Creates a group. A taken object id is a conflict.
    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error>;
    /// A group with its members.
    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error>;
    /// All groups with their members.
    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error>;
    /// Deletes a group, its memberships and the role assignments naming it. Returns false if it did not exist.
    async fn delete_group(&self, object_id: &str) -> Result<bool, Error>;
    /// Adds a member (idempotent). Returns false if the group does not exist.
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error>;
    /// Removes a member. Returns false if it was not a member.
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error>;
    /// Object ids of the groups `member_id` belongs to.
    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error>;

    /// Custom role definitions.
    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error>;
    /// A custom role definition by GUID.
    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error>;
    /// Creates or replaces a custom role definition. At most `limit` custom roles may exist.
    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error>;
    /// Deletes a custom role. Conflict if an assignment references it; `None` if it did not exist.
    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error>;
    /// Role assignments, all or only those naming one of `principal_ids`.
    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error>;
    /// One role assignment by name.
    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error>;
    /// Creates a role assignment. A taken name is a conflict; the role definition must exist (built-in roles
    /// are checked by core, custom ones here, in the same transaction).
    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error>;
    /// Deletes a role assignment, returning it.
    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error>;
    /// Records that an assignment granted a request at `now`.
    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error>;
    /// Sets a principal's allowed networks. Returns false if it does not exist.
    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error>;

    /// Creates an eligible assignment. A taken name is a conflict.
    async fn create_eligible(&self, eligible: &EligibleAssignment) -> Result<(), Error>;
    /// All eligible assignments.
    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error>;
    /// One eligible assignment.
    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error>;
    /// Deletes an eligible assignment. Returns false if it did not exist.
    async fn delete_eligible(&self, name: &str) -> Result<bool, Error>;
    /// Writes an activation and the time-bound assignment it creates, in one transaction.
    async fn activate(&self, activation: &Activation, assignment: &RoleAssignment) -> Result<(), Error>;
    /// Recorded activations, newest first.
    async fn activations(&self) -> Result<Vec<Activation>, Error>;

    /// Key policy assignments, by name.
    async fn policy_assignments(&self) -> Result<Vec<crate::policy::PolicyAssignment>, Error>;
    /// One key policy assignment (names are case-insensitive).
    async fn policy_assignment(&self, name: &str) -> Result<Option<crate::policy::PolicyAssignment>, Error>;
    /// Creates or replaces a key policy assignment (an existing one keeps its name spelling and `created`). At most
    /// `limit` may exist. Returns the stored assignment and whether it was created.
    async fn put_policy_assignment(
        &self,
        assignment: &crate::policy::PolicyAssignment,
        limit: usize,
    ) -> Result<(crate::policy::PolicyAssignment, bool), Error>;
    /// Deletes a key policy assignment. Returns false if it did not exist.
    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error>;

    /// Remembers that client `client_id` used the client-assertion id `jti`, until `expires` (Unix seconds), and
    /// prunes the ids that expired before `now`, in one transaction. Returns false (and changes nothing else) when
    /// the id is already remembered: a replay.
    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error>;
}
