//! Local RBAC: dataActions, scopes, built-in roles, and the evaluation rule. Every core operation names the
//! dataAction it needs and the scope it touches, and calls [`Hsm::authorize`](crate::Hsm) before it reads or
//! changes anything (so a caller without rights gets 403, never 404).
//!
//! Rule: a caller holds a dataAction at a scope when an active assignment to the caller's object id, or to a group
//! the token names, at a scope that covers it (`/` covers everything, `/keys` every key, `/keys/{name}` that key),
//! references a role definition one of whose permission blocks lists the dataAction in `dataActions` and not in
//! the same block's `notDataActions` ("excluded but not denied": another assignment can still grant it).

pub mod builtin;
pub mod escalation;

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
    AuditRead => "Coffer/audit/read/action",
    PoliciesRead => "Coffer/policies/read/action",
    PoliciesWrite => "Coffer/policies/write/action",
    NetworkRead => "Coffer/network/read/action",
    NetworkWrite => "Coffer/network/write/action",
    PostureRead => "Coffer/posture/read/action",
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
    /// When the assignment stops granting (just-in-time activations, time-bound grants).
    pub expires: Option<i64>,
    /// Client address ranges the assignment is limited to (empty: any).
    pub allowed_networks: Vec<Network>,
    /// Last time the assignment granted a request (recorded at most once a minute).
    pub last_used: Option<i64>,
    /// Why it exists, for activations of eligible assignments.
    pub justification: Option<String>,
}

impl RoleAssignment {
    /// Whether the assignment is in force at `now` for a request from `ip`.
    pub fn active(&self, now: i64, ip: Option<std::net::IpAddr>) -> bool {
        self.expires.is_none_or(|e| now < e) && network_allows(&self.allowed_networks, ip)
    }
}

/// Whether a (possibly empty, meaning "any") list of networks admits `ip`. An unknown address is refused when
/// a list is set.
pub fn network_allows(networks: &[Network], ip: Option<std::net::IpAddr>) -> bool {
    networks.is_empty() || ip.is_some_and(|ip| networks.iter().any(|n| n.contains(ip)))
}

/// An address range in CIDR form (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses CIDR notation or a single address.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadParameter(format!("'{s}' is not an address range (CIDR, e.g. 10.0.0.0/8)."));
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An assignment a principal may activate for a bounded time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleAssignment {
    pub name: String,
    pub scope: Scope,
    pub role_definition_id: String,
    /// A principal or a group (any member may activate).
    pub principal_id: String,
    pub max_duration_secs: i64,
    pub created: i64,
}

/// A recorded activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub id: String,
    pub eligible_name: String,
    pub principal_id: String,
    pub assignment_name: String,
    pub justification: String,
    pub activated: i64,
    pub expires: i64,
}

/// What to do when an assignment gives one principal conflicting roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeparationOfDuties {
    Deny,
    Off,
    #[default]
    Warn,
}

impl SeparationOfDuties {
    /// Parses `off`, `warn` or `deny`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "warn" => Some(Self::Warn),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// Role pairs one principal should not hold together (docs/ACCESS.md explains each).
pub const CONFLICTING_ROLES: &[(&str, &str)] = &[
    (builtin::ADMINISTRATOR, builtin::CRYPTO_USER),
    (builtin::CRYPTO_OFFICER, builtin::CRYPTO_USER),
    (builtin::BACKUP, builtin::CRYPTO_OFFICER),
];

/// The conflicting pairs among a set of role GUIDs.
pub fn conflicts(roles: &[String]) -> Vec<(&'static str, &'static str)> {
    let has = |r: &str| roles.iter().any(|x| x.eq_ignore_ascii_case(r));
    CONFLICTING_ROLES
        .iter()
        .copied()
        .filter(|(a, b)| has(a) && has(b))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_cidr_ranges() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(ip("10.1.255.7")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 counts as IPv4");
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        assert!(Network::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Network::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        assert!(network_allows(&[], None));
        assert!(
            !network_allows(&[n], None),
            "an unknown address is refused when a list is set"
        );
    }

    #[test]
    fn scopes_cover_their_subtrees() {
        let k = Scope::parse("/keys/K1").unwrap();
        assert!(Scope::Root.covers(&k) && Scope::Keys.covers(&k) && k.covers(&Scope::Key("k1".into())));
        assert!(!k.covers(&Scope::Keys) && !Scope::Keys.covers(&Scope::Root));
        assert_eq!(Scope::parse("").unwrap(), Scope::Root);
        assert_eq!(Scope::parse("///").unwrap(), Scope::Root);
        assert_eq!(Scope::parse("keys").unwrap(), Scope::Keys);
        assert!(Scope::parse("/secrets").is_err());
    }

    #[test]
    fn not_data_actions_exclude_within_their_block() {
        let p = Permission {
            data_actions: vec!["Microsoft.KeyVault/managedHsm/keys/*".into()],
            not_data_actions: vec!["Microsoft.KeyVault/managedHsm/keys/sign/action".into()],
            ..Permission::default()
        };
        assert!(p.grants(DataAction::KeysRead));
        assert!(!p.grants(DataAction::KeysSign));
        assert!(!p.grants(DataAction::Rng));
        assert!(validate_pattern("Microsoft.KeyVault/managedHsm/keys/*").is_ok());
        assert!(validate_pattern("Microsoft.KeyVault/managedHsm/nothing/*").is_err());
        assert!(
            validate_pattern("microsoft.keyvault/managedhsm/keys/read/action").is_ok(),
            "case-insensitive"
        );
    }

    #[test]
    fn conflicting_role_pairs() {
        let roles = vec![builtin::ADMINISTRATOR.to_string(), builtin::CRYPTO_USER.to_string()];
        assert_eq!(conflicts(&roles).len(), 1);
        assert!(conflicts(&[builtin::CRYPTO_AUDITOR.to_string(), builtin::CRYPTO_USER.to_string()]).is_empty());
    }
}
