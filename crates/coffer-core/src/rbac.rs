//! Local RBAC: dataActions, scopes, built-in roles, and the evaluation rule. Every core operation names the
//! dataAction it needs and the scope it touches, and calls [`Hsm::authorize`](crate::Hsm) before it reads or
//! changes anything (so a caller without rights gets 403, never 404).
//!
//! Rule: a caller holds a dataAction at a scope when an active assignment to the caller's object id, or to a group
//! the token names, at a scope that covers it (`/` covers everything, `/keys` every key, `/keys/{name}` that key),
//! references a role definition one of whose permission blocks lists the dataAction in `dataActions` and not in
//! the same block's `notDataActions` ("excluded but not denied": another assignment can still grant it).

pub mod builtin;

use crate::Error;

const PREFIX: &str = "Microsoft.KeyVault/managedHsm";

macro_rules! data_actions {
    ($($variant:ident => $name:expr),* $(,)?) => {
        /// A Managed HSM dataAction (or one of Coffer's own, under `Coffer/`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DataAction { $($variant),* }

        impl DataAction {
            /// Every dataAction.
            pub const ALL: &'static [DataAction] = &[$(DataAction::$variant),*];
            /// The full dataAction string.
            pub fn name(self) -> &'static str {
                match self { $(DataAction::$variant => $name),* }
            }
        }
    };
}

data_actions! {
    BackupStart => "Microsoft.KeyVault/managedHsm/backup/start/action",
    BackupStatus => "Microsoft.KeyVault/managedHsm/backup/status/action",
    KeysBackup => "Microsoft.KeyVault/managedHsm/keys/backup/action",
    KeysCreate => "Microsoft.KeyVault/managedHsm/keys/create",
    KeysDecrypt => "Microsoft.KeyVault/managedHsm/keys/decrypt/action",
    KeysDelete => "Microsoft.KeyVault/managedHsm/keys/delete",
    KeysDeletedDelete => "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete",
    KeysDeletedRead => "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
    KeysDeletedRecover => "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action",
    KeysDerive => "Microsoft.KeyVault/managedHsm/keys/derive/action",
    KeysEncrypt => "Microsoft.KeyVault/managedHsm/keys/encrypt/action",
    KeysExport => "Microsoft.KeyVault/managedHsm/keys/export/action",
    KeysImport => "Microsoft.KeyVault/managedHsm/keys/import/action",
    KeysRead => "Microsoft.KeyVault/managedHsm/keys/read/action",
    KeysRelease => "Microsoft.KeyVault/managedHsm/keys/release/action",
    KeysRestore => "Microsoft.KeyVault/managedHsm/keys/restore/action",
    KeysRotate => "Microsoft.KeyVault/managedHsm/keys/rotate/action",
    KeysSign => "Microsoft.KeyVault/managedHsm/keys/sign/action",
    KeysUnwrap => "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
    KeysVerify => "Microsoft.KeyVault/managedHsm/keys/verify/action",
    KeysWrap => "Microsoft.KeyVault/managedHsm/keys/wrap/action",
    KeysWrite => "Microsoft.KeyVault/managedHsm/keys/write/action",
    RestoreStart => "Microsoft.KeyVault/managedHsm/restore/start/action",
    RestoreStatus => "Microsoft.KeyVault/managedHsm/restore/status/action",
    Rng => "Microsoft.KeyVault/managedHsm/rng/action",
    RoleAssignmentsDelete => "Microsoft.KeyVault/managedHsm/roleAssignments/delete/action",
    RoleAssignmentsRead => "Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
    RoleAssignmentsWrite => "Microsoft.KeyVault/managedHsm/roleAssignments/write/action",
    RoleDefinitionsDelete => "Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action",
    RoleDefinitionsRead => "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
    RoleDefinitionsWrite => "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action",
    SecurityDomainDownload => "Microsoft.KeyVault/managedHsm/securitydomain/download/action",
    SecurityDomainDownloadRead => "Microsoft.KeyVault/managedHsm/securitydomain/download/read",
    SecurityDomainTransferKeyRead => "Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read",
    SecurityDomainUpload => "Microsoft.KeyVault/managedHsm/securitydomain/upload/action",
    SecurityDomainUploadRead => "Microsoft.KeyVault/managedHsm/securitydomain/upload/read",
    IdentitiesRead => "Coffer/identities/read/action",
    IdentitiesWrite => "Coffer/identities/write/action",
}

impl DataAction {
    /// Parses a full dataAction string (case-insensitive, as Azure compares them).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(s))
    }
}

/// Whether a permission pattern (a dataAction string, possibly ending in `*`) matches a dataAction.
pub fn pattern_matches(pattern: &str, action: DataAction) -> bool {
    let name = action.name();
    match pattern.strip_suffix('*') {
        Some(prefix) => name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        None => name.eq_ignore_ascii_case(pattern),
    }
}

/// Validates a dataAction pattern of a custom role: a known dataAction, or a wildcard that matches at least one.
pub fn validate_pattern(pattern: &str) -> Result<(), Error> {
    if pattern.ends_with('*') {
        if DataAction::ALL.iter().any(|a| pattern_matches(pattern, *a)) {
            return Ok(());
        }
    } else if DataAction::parse(pattern).is_some() {
        return Ok(());
    }
    Err(Error::BadParameter(format!(
        "The dataAction '{pattern}' is not a known Managed HSM data action."
    )))
}

/// The scope a request touches or an assignment grants: `/`, `/keys` or `/keys/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Root,
    Keys,
    Key(String),
}

impl Scope {
    /// The scope string.
    pub fn as_string(&self) -> String {
        match self {
            Self::Root => "/".into(),
            Self::Keys => "/keys".into(),
            Self::Key(n) => format!("/keys/{n}"),
        }
    }

    /// Parses a scope as clients send it: `/`, `""`, `/keys`, `keys`, `/keys/{name}`; repeated slashes collapse.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [] => Ok(Self::Root),
            [k] if k.eq_ignore_ascii_case("keys") => Ok(Self::Keys),
            [k, name] if k.eq_ignore_ascii_case("keys") => {
                let n = crate::key::KeyName::parse(name)?;
                Ok(Self::Key(n.as_str().to_string()))
            }
            _ => Err(Error::BadParameter(format!(
                "The scope '{s}' is not valid. Use '/', '/keys' or '/keys/{{key-name}}'."
            ))),
        }
    }

    /// Whether a grant at `self` covers a request at `target`.
    pub fn covers(&self, target: &Scope) -> bool {
        match (self, target) {
            (Self::Root, _) => true,
            (Self::Keys, Self::Keys | Self::Key(_)) => true,
            (Self::Key(a), Self::Key(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// One permission block of a role definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

impl Permission {
    /// Whether this block grants `action`.
    pub fn grants(&self, action: DataAction) -> bool {
        self.data_actions.iter().any(|p| pattern_matches(p, action))
            && !self.not_data_actions.iter().any(|p| pattern_matches(p, action))
    }
}

/// Built-in or custom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleType {
    BuiltIn,
    Custom,
}

impl RoleType {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BuiltIn => "AKVBuiltInRole",
            Self::Custom => "CustomRole",
        }
    }
}

/// A role definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDefinition {
    /// The GUID (the definition's `name`).
    pub id: String,
    pub role_name: String,
    pub description: String,
    pub role_type: RoleType,
    pub permissions: Vec<Permission>,
    pub assignable_scopes: Vec<String>,
}

impl RoleDefinition {
    /// Whether any block grants `action`.
    pub fn grants(&self, action: DataAction) -> bool {
        self.permissions.iter().any(|p| p.grants(action))
    }
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    /// The assignment's name (a GUID chosen by the client).
    pub name: String,
    pub scope: Scope,
    /// GUID of the role definition.
    pub role_definition_id: String,
    /// Object id of a principal or group.
    pub principal_id: String,
    pub created: i64,
}

/// The full role definition id as the service returns it.
pub fn role_definition_resource_id(guid: &str) -> String {
    format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

/// Extracts the GUID from a role definition id given with or without the leading slash and prefix.
pub fn role_definition_guid(id: &str) -> String {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(id)
        .to_ascii_lowercase()
}

/// The prefix of Managed HSM dataActions.
pub fn prefix() -> &'static str {
    PREFIX
}
