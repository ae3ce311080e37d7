//! The operation table: every request the server answers, as one typed value parsed once from the method and
//! the path. Routing matches on it, and its audit `operationName`, the dataAction it needs, its throttling cost
//! and the audited object all come from it ([`Operation::spec`] is the table), so no list of routes is kept
//! anywhere else.
//!
//! Names: key operations use the names Key Vault documents; `BackupCreate`, `SecurityDomainBackup`,
//! `SecurityDomainBackupStatusGet` and `Authentication` (a 401, decided by the dispatcher) are the documented
//! Managed HSM names; the other Managed HSM ones (roles, full restore, security-domain upload, settings, rng)
//! are the names audit-log.md §4 proposes, and `Coffer…` (`Coffer` + the resource path without ids + a verb),
//! `Token…` and `AuditQuery` are Coffer's own. A path nothing answers is `RequestNotFound`, as is a method a
//! path does not support (answered 405 with `Allow`).
//!
//! Matching follows the router's long-standing rules: collection names (`keys`, `deletedkeys`, `backup`, …) are
//! matched as written, the verbs after a key name (`create`, `rotate`, `sign`, …), `providers`,
//! `Microsoft.Authorization` and the role collections case-insensitively. Path segments are the raw
//! (not percent-decoded) text between `/`; leading slashes are ignored.
use crate::rbac::DataAction;

/// A request, typed. Parameters borrow from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `GET /healthz` (or `HEAD`): answered before anything else, never audited.
    Health,
    /// `/healthz` with another method: 405 (`Allow: GET`) before anything else, never audited.
    HealthMethodNotAllowed,
    /// The token service (`/{tenant}/…`, `/adfs/…`): no bearer token.
    Token(TokenOp),
    /// `GET /keys`.
    KeyList,
    /// `POST /keys/{name}/create`.
    KeyCreate { name: &'a str },
    /// `PUT /keys/{name}`.
    KeyImport { name: &'a str },
    /// `GET /keys/{name}[/{version}]`.
    KeyGet { name: &'a str, version: Option<&'a str> },
    /// `GET /keys/{name}[/{version}]/attestation`.
    KeyAttestation { name: &'a str, version: Option<&'a str> },
    /// `PATCH /keys/{name}[/{version}]`.
    KeyUpdate { name: &'a str, version: Option<&'a str> },
    /// `DELETE /keys/{name}`.
    KeyDelete { name: &'a str },
    /// `GET /keys/{name}/versions`.
    KeyListVersions { name: &'a str },
    /// `POST /keys/{name}/backup`.
    KeyBackup { name: &'a str },
    /// `POST /keys/restore`.
    KeyRestore,
    /// `POST /keys/{name}/rotate`.
    KeyRotate { name: &'a str },
    /// `GET /keys/{name}/rotationpolicy`.
    KeyRotationPolicyGet { name: &'a str },
    /// `PUT /keys/{name}/rotationpolicy`.
    KeyRotationPolicySet { name: &'a str },
    /// `POST /keys/{name}/release` and `POST /keys/{name}/{version}/release`.
    KeyRelease { name: &'a str, version: Option<&'a str> },
    /// `POST /keys/{name}/{version}/{encrypt|decrypt|wrapkey|unwrapkey|sign|verify}` (an empty version: latest).
    KeyCrypto {
        name: &'a str,
        version: &'a str,
        verb: CryptoVerb,
    },
    /// `GET /deletedkeys`.
    DeletedKeyList,
    /// `GET /deletedkeys/{name}`.
    DeletedKeyGet { name: &'a str },
    /// `DELETE /deletedkeys/{name}`.
    DeletedKeyPurge { name: &'a str },
    /// `POST /deletedkeys/{name}/recover`.
    DeletedKeyRecover { name: &'a str },
    /// `POST /rng`.
    RandomBytes,
    /// `POST /backup`.
    BackupCreate,
    /// `POST /prebackup`.
    PreBackupCreate,
    /// `GET /backup/{id}/pending`.
    BackupStatus { id: &'a str },
    /// `PUT /restore`.
    RestoreCreate,
    /// `PUT /prerestore`.
    PreRestoreCreate,
    /// `GET /restore/{id}/pending`.
    RestoreStatus { id: &'a str },
    /// `PUT /keys/{name}/restore`.
    SelectiveKeyRestore { name: &'a str },
    /// `GET /settings`.
    SettingList,
    /// `GET /settings/{name}`.
    SettingGet { name: &'a str },
    /// `PATCH /settings/{name}`.
    SettingUpdate { name: &'a str },
    /// `/securitydomain/…`.
    SecurityDomain(SecurityDomainOp),
    /// `/{scope}/providers/Microsoft.Authorization/{roleDefinitions|roleAssignments}[/{name}]`.
    Rbac(RbacOp<'a>),
    /// Coffer's own API under `/coffer/v1/`.
    Coffer(CofferOp<'a>),
    /// The small part of Microsoft Graph the Azure CLI calls to show principal names (`/graph/v1.0/…`; see
    /// [`GraphOp`]). Needs a token for the Graph resource, not the HSM's.
    Graph(GraphOp),
    /// No such path.
    NotFound,
    /// The path exists but not with this method; `allow` is the `Allow` header's value.
    MethodNotAllowed { allow: &'static str },
}

/// The token service's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOp {
    /// OIDC discovery (`…/.well-known/openid-configuration`).
    OpenIdConfiguration { adfs: bool },
    /// The token-signing keys (`…/discovery/[v2.0/]keys`).
    Keys,
    /// The token endpoint: `POST /{tenant|adfs}/oauth2/v2.0/token` (`v2`) or `/{tenant|adfs}/oauth2/token` (v1),
    /// every path the Azure identity libraries build (MSAL uses `/adfs/oauth2/token`; azure.identity.aio and the Azure
    /// SDK for Rust build `{authority}/adfs/oauth2/v2.0/token`).
    Issue { adfs: bool, v2: bool },
    /// A token-service path with a method it does not serve (405 with `Allow`, still no bearer token).
    MethodNotAllowed { allow: &'static str },
    /// Anything else under the tenant or `adfs` (404, still no bearer token).
    NotFound,
}

/// The crypto operations on a key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoVerb {
    Encrypt,
    Decrypt,
    WrapKey,
    UnwrapKey,
    Sign,
    Verify,
}

/// The security-domain endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityDomainOp {
    /// `POST /securitydomain/download`.
    Download,
    /// `GET /securitydomain/download/pending`.
    DownloadStatus,
    /// `GET /securitydomain/upload`: the transfer key.
    TransferKey,
    /// `POST /securitydomain/upload`.
    Upload,
    /// `GET /securitydomain/upload/pending`.
    UploadStatus,
}

/// Role definitions and assignments. `scope` is the raw path before `/providers` (see [`scope_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacOp<'a> {
    DefinitionList { scope: &'a str },
    DefinitionGet { scope: &'a str, name: &'a str },
    DefinitionSet { scope: &'a str, name: &'a str },
    DefinitionDelete { scope: &'a str, name: &'a str },
    AssignmentList { scope: &'a str },
    AssignmentGet { scope: &'a str, name: &'a str },
    AssignmentCreate { scope: &'a str, name: &'a str },
    AssignmentDelete { scope: &'a str, name: &'a str },
}

/// Coffer's own API (`/coffer/v1/…`): identities, just-in-time access, audit, posture, network ACLs, policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CofferOp<'a> {
    PrincipalCreate,
    PrincipalList,
    PrincipalGet { id: &'a str },
    PrincipalDelete { id: &'a str },
    PrincipalSecretCreate { id: &'a str },
    PrincipalSecretDelete { id: &'a str, secret: &'a str },
    PrincipalCertificateAdd { id: &'a str },
    PrincipalNetworksSet { id: &'a str },
    GroupCreate,
    GroupList,
    GroupGet { id: &'a str },
    GroupDelete { id: &'a str },
    GroupMemberAdd { group: &'a str, member: &'a str },
    GroupMemberRemove { group: &'a str, member: &'a str },
    EligibleAssignmentCreate,
    EligibleAssignmentList,
    EligibleAssignmentDelete { name: &'a str },
    EligibleAssignmentActivate { name: &'a str },
    ActivationList,
    AccessReview,
    AuditQuery,
    Posture,
    NetworkAclsGet,
    NetworkAclsSet,
    PolicyDefinitionList,
    PolicyAssignmentList,
    PolicyAssignmentGet { name: &'a str },
    PolicyAssignmentSet { name: &'a str },
    PolicyAssignmentDelete { name: &'a str },
    Compliance,
}

/// Microsoft Graph, as far as `az keyvault role assignment create|list|delete` use it (`{graph}/v1.0/…`, the
/// cloud's `microsoftGraphResourceId` being `{public URL}/graph`), answered from Coffer's principals and groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphOp {
    /// `POST /graph/v1.0/directoryObjects/getByIds`.
    GetByIds,
    /// `GET /graph/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c eq '…')`.
    ServicePrincipalList,
    /// `GET /graph/v1.0/users?$filter=userPrincipalName eq '…'` (Coffer has no users: always empty).
    UserList,
    /// Anything else under `/graph`: refused with a Graph error.
    Unsupported,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The audit `operationName`.
    pub name: &'static str,
    /// The dataAction the operation needs (`None`: none, or decided otherwise, e.g. activating an eligible
    /// assignment or the token service).
    pub data_action: Option<DataAction>,
    /// Throttling units charged before the request runs.
    pub cost: u64,
    /// A key operation whose cost grows with the key type (RSA-3072/4096), charged after the request.
    pub key_weighted: bool,
}

/// What a request acts on, for the audit record's `properties.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The HSM as a whole.
    Hsm,
    /// The token service.
    TokenService,
    /// A key, or one version of it.
    Key { name: &'a str, version: Option<&'a str> },
    /// A soft-deleted key.
    DeletedKey { name: &'a str },
}

impl Target<'_> {
    /// The id: `{base}/`, `{base}/{tenant}`, `{base}/keys/{name}[/{version}]` or `{base}/deletedkeys/{name}`.
    pub fn id(&self, base: &str, tenant: &str) -> String {
        match *self {
            Target::Hsm => format!("{base}/"),
            Target::TokenService => format!("{base}/{tenant}"),
            Target::Key { name, version: Some(v) } => format!("{base}/keys/{name}/{v}"),
            Target::Key { name, version: None } => format!("{base}/keys/{name}"),
            Target::DeletedKey { name } => format!("{base}/deletedkeys/{name}"),
        }
    }
}

/// The cost of creating, importing, rotating or restoring a key (Key Vault allows 10 per 10 s against 2,000
/// cheap operations).
pub const KEY_WRITE_COST: u64 = 200;

const fn row(name: &'static str, data_action: Option<DataAction>, cost: u64, key_weighted: bool) -> Spec {
    Spec {
        name,
        data_action,
        cost,
        key_weighted,
    }
}

/// A key operation: 1 unit, more for RSA-3072/4096 keys.
const fn key(name: &'static str, a: DataAction) -> Spec {
    row(name, Some(a), 1, true)
}

/// Any other operation needing `a`: 1 unit.
const fn op(name: &'static str, a: DataAction) -> Spec {
    row(name, Some(a), 1, false)
}

const NOT_FOUND: Spec = row("RequestNotFound", None, 1, false);

impl<'a> Operation<'a> {
    /// The table: name, dataAction, cost and weighting of every operation.
    pub fn spec(&self) -> Spec {
        use CofferOp as C;
        use DataAction as D;
        use Operation as O;
        match *self {
            O::Health | O::HealthMethodNotAllowed => row("HealthGet", None, 0, false),
            O::Token(TokenOp::Issue { .. }) => row("TokenIssue", None, 1, false),
            O::Token(TokenOp::OpenIdConfiguration { .. } | TokenOp::Keys) => {
                row("TokenServiceMetadataGet", None, 1, false)
            }
            O::Token(TokenOp::NotFound | TokenOp::MethodNotAllowed { .. })
            | O::NotFound
            | O::MethodNotAllowed { .. } => NOT_FOUND,
            // Names are shown to whoever may read role assignments (the only use of this Graph subset).
            O::Graph(g) => match g {
                GraphOp::GetByIds => op("GraphDirectoryObjectsGetByIds", D::RoleAssignmentsRead),
                GraphOp::ServicePrincipalList => op("GraphServicePrincipalsList", D::RoleAssignmentsRead),
                GraphOp::UserList => op("GraphUsersList", D::RoleAssignmentsRead),
                GraphOp::Unsupported => NOT_FOUND,
            },
            O::KeyList => key("KeyList", D::KeysRead),
            O::KeyCreate { .. } => row("KeyCreate", Some(D::KeysCreate), KEY_WRITE_COST, false),
            O::KeyImport { .. } => row("KeyImport", Some(D::KeysImport), KEY_WRITE_COST, false),
            O::KeyGet { .. } => key("KeyGet", D::KeysRead),
            O::KeyAttestation { .. } => key("KeyGetAttestation", D::KeysRead),
            O::KeyUpdate { .. } => key("KeyUpdate", D::KeysWrite),
            O::KeyDelete { .. } => key("KeyDelete", D::KeysDelete),
            O::KeyListVersions { .. } => key("KeyListVersions", D::KeysRead),
            O::KeyBackup { .. } => key("KeyBackup", D::KeysBackup),
            O::KeyRestore => row("KeyRestore", Some(D::KeysRestore), KEY_WRITE_COST, false),
            O::KeyRotate { .. } => row("KeyRotate", Some(D::KeysRotate), KEY_WRITE_COST, false),
            O::KeyRotationPolicyGet { .. } => key("KeyRotationPolicyGet", D::KeysRead),
            O::KeyRotationPolicySet { .. } => key("KeyRotationPolicySet", D::KeysWrite),
            O::KeyRelease { .. } => key("KeyRelease", D::KeysRelease),
            O::KeyCrypto { verb, .. } => match verb {
                CryptoVerb::Encrypt => key("KeyEncrypt", D::KeysEncrypt),
                CryptoVerb::Decrypt => key("KeyDecrypt", D::KeysDecrypt),
                CryptoVerb::WrapKey => key("KeyWrap", D::KeysWrap),
                CryptoVerb::UnwrapKey => key("KeyUnwrap", D::KeysUnwrap),
                CryptoVerb::Sign => key("KeySign", D::KeysSign),
                CryptoVerb::Verify => key("KeyVerify", D::KeysVerify),
            },
            O::DeletedKeyList => key("KeyListDeleted", D::KeysDeletedRead),
            O::DeletedKeyGet { .. } => key("KeyGetDeleted", D::KeysDeletedRead),
            O::DeletedKeyPurge { .. } => key("KeyPurge", D::KeysDeletedDelete),
            O::DeletedKeyRecover { .. } => key("KeyRecover", D::KeysDeletedRecover),
            O::RandomBytes => op("RandomBytesGet", D::Rng),
            O::BackupCreate => op("BackupCreate", D::BackupStart),
            O::PreBackupCreate => op("PreBackupCreate", D::BackupStart),
            O::BackupStatus { .. } => op("BackupStatusGet", D::BackupStatus),
            O::RestoreCreate => op("RestoreCreate", D::RestoreStart),
            O::PreRestoreCreate => op("PreRestoreCreate", D::RestoreStart),
            O::RestoreStatus { .. } => op("RestoreStatusGet", D::RestoreStatus),
            O::SelectiveKeyRestore { .. } => op("SelectiveKeyRestoreCreate", D::RestoreStart),
            // Settings are guarded by the role-definition actions, as in Managed HSM.
            O::SettingList => op("SettingList", D::RoleDefinitionsRead),
            O::SettingGet { .. } => op("SettingGet", D::RoleDefinitionsRead),
            O::SettingUpdate { .. } => op("SettingUpdate", D::RoleDefinitionsWrite),
            O::SecurityDomain(sd) => match sd {
                SecurityDomainOp::Download => op("SecurityDomainBackup", D::SecurityDomainDownload),
                SecurityDomainOp::DownloadStatus => op("SecurityDomainBackupStatusGet", D::SecurityDomainDownloadRead),
                SecurityDomainOp::TransferKey => op("SecurityDomainTransferKeyGet", D::SecurityDomainTransferKeyRead),
                SecurityDomainOp::Upload => op("SecurityDomainRestore", D::SecurityDomainUpload),
                SecurityDomainOp::UploadStatus => op("SecurityDomainRestoreStatusGet", D::SecurityDomainUploadRead),
            },
            O::Rbac(r) => match r {
                RbacOp::DefinitionList { .. } => op("RoleDefinitionList", D::RoleDefinitionsRead),
                RbacOp::DefinitionGet { .. } => op("RoleDefinitionGet", D::RoleDefinitionsRead),
                RbacOp::DefinitionSet { .. } => op("RoleDefinitionSet", D::RoleDefinitionsWrite),
                RbacOp::DefinitionDelete { .. } => op("RoleDefinitionDelete", D::RoleDefinitionsDelete),
                RbacOp::AssignmentList { .. } => op("RoleAssignmentList", D::RoleAssignmentsRead),
                RbacOp::AssignmentGet { .. } => op("RoleAssignmentGet", D::RoleAssignmentsRead),
                RbacOp::AssignmentCreate { .. } => op("RoleAssignmentCreate", D::RoleAssignmentsWrite),
                RbacOp::AssignmentDelete { .. } => op("RoleAssignmentDelete", D::RoleAssignmentsDelete),
            },
            O::Coffer(c) => match c {
                C::PrincipalCreate => op("CofferPrincipalsCreate", D::IdentitiesWrite),
                C::PrincipalList => op("CofferPrincipalsList", D::IdentitiesRead),
                C::PrincipalGet { .. } => op("CofferPrincipalsGet", D::IdentitiesRead),
                C::PrincipalDelete { .. } => op("CofferPrincipalsDelete", D::IdentitiesWrite),
                C::PrincipalSecretCreate { .. } => op("CofferPrincipalsSecretsCreate", D::IdentitiesWrite),
                C::PrincipalSecretDelete { .. } => op("CofferPrincipalsSecretsDelete", D::IdentitiesWrite),
                C::PrincipalCertificateAdd { .. } => op("CofferPrincipalsCertificatesCreate", D::IdentitiesWrite),
                C::PrincipalNetworksSet { .. } => op("CofferPrincipalsNetworksSet", D::IdentitiesWrite),
                C::GroupCreate => op("CofferGroupsCreate", D::IdentitiesWrite),
                C::GroupList => op("CofferGroupsList", D::IdentitiesRead),
                C::GroupGet { .. } => op("CofferGroupsGet", D::IdentitiesRead),
                C::GroupDelete { .. } => op("CofferGroupsDelete", D::IdentitiesWrite),
                C::GroupMemberAdd { .. } => op("CofferGroupsMembersSet", D::IdentitiesWrite),
                C::GroupMemberRemove { .. } => op("CofferGroupsMembersDelete", D::IdentitiesWrite),
                C::EligibleAssignmentCreate => op("CofferEligibleAssignmentsCreate", D::RoleAssignmentsWrite),
                C::EligibleAssignmentList => op("CofferEligibleAssignmentsList", D::RoleAssignmentsRead),
                C::EligibleAssignmentDelete { .. } => op("CofferEligibleAssignmentsDelete", D::RoleAssignmentsDelete),
                // The eligible principal activates its own eligibility: no dataAction.
                C::EligibleAssignmentActivate { .. } => row("CofferEligibleAssignmentsActivateCreate", None, 1, false),
                C::ActivationList => op("CofferActivationsList", D::RoleAssignmentsRead),
                C::AccessReview => op("CofferAccessReviewList", D::RoleAssignmentsRead),
                C::AuditQuery => op("AuditQuery", D::AuditRead),
                C::Posture => op("CofferPostureList", D::PostureRead),
                C::NetworkAclsGet => op("CofferNetworkAclsList", D::NetworkRead),
                C::NetworkAclsSet => op("CofferNetworkAclsSet", D::NetworkWrite),
                C::PolicyDefinitionList => op("CofferPolicyDefinitionsList", D::PoliciesRead),
                C::PolicyAssignmentList => op("CofferPoliciesList", D::PoliciesRead),
                C::PolicyAssignmentGet { .. } => op("CofferPoliciesGet", D::PoliciesRead),
                C::PolicyAssignmentSet { .. } => op("CofferPoliciesSet", D::PoliciesWrite),
                C::PolicyAssignmentDelete { .. } => op("CofferPoliciesDelete", D::PoliciesWrite),
                C::Compliance => op("CofferComplianceList", D::PoliciesRead),
            },
        }
    }

    /// The audit `operationName`.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// The dataAction the operation needs.
    pub fn data_action(&self) -> Option<DataAction> {
        self.spec().data_action
    }

    /// Throttling units charged before the request runs (key creation, import, rotation, restore: 200; else 1).
    pub fn upfront_cost(&self) -> u64 {
        self.spec().cost
    }

    /// The request needs no bearer token: the token service.
    pub fn is_token_service(&self) -> bool {
        matches!(self, Operation::Token(_))
    }

    /// A request to the Graph subset (`/graph/…`): authenticated with a Graph token, answered in Graph's shape.
    pub fn is_graph(&self) -> bool {
        matches!(self, Operation::Graph(_))
    }

    /// A long-running operation's status URL, polled verbatim (without api-version).
    pub fn is_status_poll(&self) -> bool {
        matches!(
            self,
            Operation::BackupStatus { .. }
                | Operation::RestoreStatus { .. }
                | Operation::SecurityDomain(SecurityDomainOp::DownloadStatus | SecurityDomainOp::UploadStatus)
        )
    }

    /// What the request acts on (the audit record's `properties.id`).
    pub fn target(&self) -> Target<'a> {
        use Operation as O;
        let key = |name: &'a str, version: Option<&'a str>| {
            if name.is_empty() {
                Target::Hsm
            } else {
                Target::Key {
                    name,
                    version: version.filter(|v| !v.is_empty()),
                }
            }
        };
        match *self {
            O::Token(_) => Target::TokenService,
            O::KeyGet { name, version }
            | O::KeyAttestation { name, version }
            | O::KeyUpdate { name, version }
            | O::KeyRelease { name, version } => key(name, version),
            O::KeyCrypto { name, version, .. } => key(name, Some(version)),
            O::KeyCreate { name }
            | O::KeyImport { name }
            | O::KeyDelete { name }
            | O::KeyListVersions { name }
            | O::KeyBackup { name }
            | O::KeyRotate { name }
            | O::KeyRotationPolicyGet { name }
            | O::KeyRotationPolicySet { name }
            | O::SelectiveKeyRestore { name } => key(name, None),
            O::DeletedKeyGet { name } | O::DeletedKeyPurge { name } | O::DeletedKeyRecover { name }
                if !name.is_empty() =>
            {
                Target::DeletedKey { name }
            }
            _ => Target::Hsm,
        }
    }

    /// Parses a request: `method` as the client sent it (`GET`, `POST`, … compared exactly), `path` the URI
    /// path, `tenant` this instance's tenant id (the token service's first segment, besides `adfs`).
    pub fn parse(method: &str, path: &'a str, tenant: &str) -> Self {
        if path == "/healthz" {
            return if matches!(method, "GET" | "HEAD") {
                Operation::Health
            } else {
                Operation::HealthMethodNotAllowed
            };
        }
        let trimmed = path.trim_start_matches('/');
        let Some(segs) = Segments::split(trimmed) else {
            let first = trimmed.split('/').next().unwrap_or("");
            return if first == tenant || first.eq_ignore_ascii_case("adfs") {
                Operation::Token(TokenOp::NotFound)
            } else {
                Operation::NotFound
            };
        };
        let s = segs.as_slice();
        let first = s.first().copied().unwrap_or("");
        if first == tenant || first.eq_ignore_ascii_case("adfs") {
            return Operation::Token(token(
                method,
                first.eq_ignore_ascii_case("adfs"),
                s.get(1..).unwrap_or(&[]),
            ));
        }
        if first == "graph" {
            return Operation::Graph(graph(method, s.get(1..).unwrap_or(&[])));
        }
        if let Some(op) = rbac(method, trimmed, &segs) {
            return op;
        }
        data_plane(method, s)
    }
}

/// The scope a role definition or assignment path names: the raw text before `/providers` with empty segments
/// dropped, as `/`, `/keys` or `/keys/{name}` (`Scope::parse` judges it).
pub fn scope_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 1);
    for s in raw.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The path's segments, without allocating (paths with more segments than any route are not found).
struct Segments<'a> {
    segs: [&'a str; Segments::MAX],
    starts: [usize; Segments::MAX],
    len: usize,
}

impl<'a> Segments<'a> {
    const MAX: usize = 12;

    fn split(path: &'a str) -> Option<Self> {
        let mut out = Segments {
            segs: [""; Self::MAX],
            starts: [0; Self::MAX],
            len: 0,
        };
        let mut start = 0;
        for s in path.split('/') {
            *out.segs.get_mut(out.len)? = s;
            *out.starts.get_mut(out.len)? = start;
            out.len += 1;
            start += s.len() + 1;
        }
        Some(out)
    }

    fn as_slice(&self) -> &[&'a str] {
        self.segs.get(..self.len).unwrap_or(&[])
    }
}

fn token(method: &str, adfs: bool, rest: &[&str]) -> TokenOp {
    match (method, rest) {
        ("GET", ["v2.0", ".well-known", "openid-configuration"]) if !adfs => {
            TokenOp::OpenIdConfiguration { adfs: false }
        }
        ("GET", [".well-known", "openid-configuration"]) => TokenOp::OpenIdConfiguration { adfs },
        ("GET", ["discovery", "v2.0", "keys"] | ["discovery", "keys"]) => TokenOp::Keys,
        ("POST", ["oauth2", "v2.0", "token"]) => TokenOp::Issue { adfs, v2: true },
        ("POST", ["oauth2", "token"]) => TokenOp::Issue { adfs, v2: false },
        (_, ["v2.0", ".well-known", "openid-configuration"]) if !adfs => TokenOp::MethodNotAllowed { allow: "GET" },
        (_, [".well-known", "openid-configuration"] | ["discovery", "v2.0", "keys"] | ["discovery", "keys"]) => {
            TokenOp::MethodNotAllowed { allow: "GET" }
        }
        (_, ["oauth2", "v2.0", "token"] | ["oauth2", "token"]) => TokenOp::MethodNotAllowed { allow: "POST" },
        _ => TokenOp::NotFound,
    }
}

/// Graph paths after `/graph` (segments case-insensitive, as Graph's are).
fn graph(method: &str, rest: &[&str]) -> GraphOp {
    let is = |s: &&str, w: &str| s.eq_ignore_ascii_case(w);
    match (method, rest) {
        ("POST", [v, d, g]) if is(v, "v1.0") && is(d, "directoryObjects") && is(g, "getByIds") => GraphOp::GetByIds,
        ("GET", [v, sp]) if is(v, "v1.0") && is(sp, "servicePrincipals") => GraphOp::ServicePrincipalList,
        ("GET", [v, u]) if is(v, "v1.0") && is(u, "users") => GraphOp::UserList,
        _ => GraphOp::Unsupported,
    }
}

/// `…/providers/Microsoft.Authorization/{collection}[/{name}]` at the end of the path (empty segments ignored),
/// at any scope.
fn rbac<'a>(method: &str, path: &'a str, segs: &Segments<'a>) -> Option<Operation<'a>> {
    let s = segs.as_slice();
    let at = s.iter().position(|p| p.eq_ignore_ascii_case("providers"))?;
    let mut rest = s.get(at + 1..)?.iter().copied().filter(|p| !p.is_empty());
    let ns = rest.next()?;
    let collection = rest.next()?;
    let name = rest.next();
    if rest.next().is_some() || !ns.eq_ignore_ascii_case("Microsoft.Authorization") {
        return None;
    }
    let scope = path.get(..*segs.starts.get(at)?)?;
    let definitions = collection.eq_ignore_ascii_case("roleDefinitions");
    if !definitions && !collection.eq_ignore_ascii_case("roleAssignments") {
        return Some(Operation::NotFound);
    }
    let op = match (method, name) {
        ("GET", None) if definitions => RbacOp::DefinitionList { scope },
        ("GET", None) => RbacOp::AssignmentList { scope },
        ("GET", Some(name)) if definitions => RbacOp::DefinitionGet { scope, name },
        ("GET", Some(name)) => RbacOp::AssignmentGet { scope, name },
        ("PUT", Some(name)) if definitions => RbacOp::DefinitionSet { scope, name },
        ("PUT", Some(name)) => RbacOp::AssignmentCreate { scope, name },
        ("DELETE", Some(name)) if definitions => RbacOp::DefinitionDelete { scope, name },
        ("DELETE", Some(name)) => RbacOp::AssignmentDelete { scope, name },
        (_, None) => return Some(not_allowed("GET")),
        (_, Some(_)) => return Some(not_allowed("GET, PUT, DELETE")),
    };
    Some(Operation::Rbac(op))
}

const fn not_allowed(allow: &'static str) -> Operation<'static> {
    Operation::MethodNotAllowed { allow }
}

/// The verbs after a key name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyVerb {
    RotationPolicy,
    Rotate,
    Restore,
    Create,
    Release,
    Backup,
    Versions,
    Attestation,
    /// Not a verb: a version.
    Version,
}

impl KeyVerb {
    fn of(s: &str) -> Self {
        const VERBS: [(&str, KeyVerb); 8] = [
            ("rotationpolicy", KeyVerb::RotationPolicy),
            ("rotate", KeyVerb::Rotate),
            ("restore", KeyVerb::Restore),
            ("create", KeyVerb::Create),
            ("release", KeyVerb::Release),
            ("backup", KeyVerb::Backup),
            ("versions", KeyVerb::Versions),
            ("attestation", KeyVerb::Attestation),
        ];
        VERBS
            .iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(s))
            .map_or(KeyVerb::Version, |(_, k)| *k)
    }
}

/// What follows a key version: a crypto operation or `release`.
enum VersionVerb {
    Crypto(CryptoVerb),
    Release,
}

impl VersionVerb {
    fn of(s: &str) -> Option<Self> {
        const VERBS: [(&str, CryptoVerb); 6] = [
            ("encrypt", CryptoVerb::Encrypt),
            ("decrypt", CryptoVerb::Decrypt),
            ("wrapkey", CryptoVerb::WrapKey),
            ("unwrapkey", CryptoVerb::UnwrapKey),
            ("sign", CryptoVerb::Sign),
            ("verify", CryptoVerb::Verify),
        ];
        if s.eq_ignore_ascii_case("release") {
            return Some(VersionVerb::Release);
        }
        VERBS
            .iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(s))
            .map(|(_, c)| VersionVerb::Crypto(*c))
    }
}

fn data_plane<'a>(m: &str, s: &[&'a str]) -> Operation<'a> {
    use Operation as O;
    match s {
        ["keys"] | ["keys", ""] => match m {
            "GET" => O::KeyList,
            _ => not_allowed("GET"),
        },
        ["keys", "restore"] if m == "POST" => O::KeyRestore,
        ["keys", name] => match m {
            "PUT" => O::KeyImport { name },
            "DELETE" => O::KeyDelete { name },
            "GET" => O::KeyGet { name, version: None },
            "PATCH" => O::KeyUpdate { name, version: None },
            _ if *name == "restore" => not_allowed("GET, PUT, PATCH, DELETE, POST"),
            _ => not_allowed("GET, PUT, PATCH, DELETE"),
        },
        ["keys", name, x] => {
            let verb = KeyVerb::of(x);
            match (verb, m) {
                (KeyVerb::RotationPolicy, "GET") => O::KeyRotationPolicyGet { name },
                (KeyVerb::RotationPolicy, "PUT") => O::KeyRotationPolicySet { name },
                (KeyVerb::RotationPolicy, _) => not_allowed("GET, PUT"),
                (KeyVerb::Rotate, "POST") => O::KeyRotate { name },
                (KeyVerb::Restore, "PUT") => O::SelectiveKeyRestore { name },
                (KeyVerb::Create, "POST") => O::KeyCreate { name },
                (KeyVerb::Release, "POST") => O::KeyRelease { name, version: None },
                (KeyVerb::Backup, "POST") => O::KeyBackup { name },
                (KeyVerb::Versions, "GET") => O::KeyListVersions { name },
                (KeyVerb::Attestation, "GET") => O::KeyAttestation { name, version: None },
                (KeyVerb::Attestation, _) => not_allowed("GET"),
                // `/keys/{name}/{op}`: a crypto operation on the latest version, as the service serves it (Vault's
                // and OpenBao's azurekeyvault seal call `POST /keys/{name}/wrapkey`). Versions are 32 hex digits, so
                // no version is taken for a verb.
                (KeyVerb::Version, "POST") => match VersionVerb::of(x) {
                    Some(VersionVerb::Crypto(verb)) => O::KeyCrypto {
                        name,
                        version: "",
                        verb,
                    },
                    _ => not_allowed("GET, PATCH"),
                },
                // Otherwise the third segment is a version.
                (_, "GET") => O::KeyGet { name, version: Some(x) },
                (_, "PATCH") => O::KeyUpdate { name, version: Some(x) },
                (KeyVerb::Rotate | KeyVerb::Create | KeyVerb::Release | KeyVerb::Backup, _) => {
                    not_allowed("GET, PATCH, POST")
                }
                (KeyVerb::Restore, _) => not_allowed("GET, PATCH, PUT"),
                _ => not_allowed("GET, PATCH"),
            }
        }
        ["keys", name, version, x] if x.eq_ignore_ascii_case("attestation") => match m {
            "GET" => O::KeyAttestation {
                name,
                version: Some(version),
            },
            _ => not_allowed("GET"),
        },
        ["keys", name, version, x] => match (VersionVerb::of(x), m) {
            (Some(VersionVerb::Crypto(verb)), "POST") => O::KeyCrypto { name, version, verb },
            (Some(VersionVerb::Release), "POST") => O::KeyRelease {
                name,
                version: Some(version),
            },
            (Some(_), _) => not_allowed("POST"),
            (None, _) => O::NotFound,
        },
        ["deletedkeys"] | ["deletedkeys", ""] => match m {
            "GET" => O::DeletedKeyList,
            _ => not_allowed("GET"),
        },
        ["deletedkeys", name] => match m {
            "GET" => O::DeletedKeyGet { name },
            "DELETE" => O::DeletedKeyPurge { name },
            _ => not_allowed("GET, DELETE"),
        },
        ["deletedkeys", name, x] if x.eq_ignore_ascii_case("recover") => match m {
            "POST" => O::DeletedKeyRecover { name },
            _ => not_allowed("POST"),
        },
        ["rng"] => only(m, "POST", O::RandomBytes),
        ["backup"] => only(m, "POST", O::BackupCreate),
        ["prebackup"] => only(m, "POST", O::PreBackupCreate),
        ["backup", id, "pending"] => only(m, "GET", O::BackupStatus { id }),
        ["restore"] => only(m, "PUT", O::RestoreCreate),
        ["prerestore"] => only(m, "PUT", O::PreRestoreCreate),
        ["restore", id, "pending"] => only(m, "GET", O::RestoreStatus { id }),
        ["settings"] | ["settings", ""] => only(m, "GET", O::SettingList),
        ["settings", name] => match m {
            "GET" => O::SettingGet { name },
            "PATCH" => O::SettingUpdate { name },
            _ => not_allowed("GET, PATCH"),
        },
        ["securitydomain", rest @ ..] => security_domain(m, rest),
        ["coffer", "v1", rest @ ..] => coffer(m, rest),
        _ => O::NotFound,
    }
}

/// `op` when the method is `method`, else 405 allowing only `method`.
fn only<'a>(m: &str, method: &'static str, op: Operation<'a>) -> Operation<'a> {
    if m == method { op } else { not_allowed(method) }
}

fn security_domain<'a>(m: &str, rest: &[&'a str]) -> Operation<'a> {
    use SecurityDomainOp as S;
    let sd = Operation::SecurityDomain;
    match rest {
        ["download"] => only(m, "POST", sd(S::Download)),
        ["download", "pending"] => only(m, "GET", sd(S::DownloadStatus)),
        ["upload"] => match m {
            "GET" => sd(S::TransferKey),
            "POST" => sd(S::Upload),
            _ => not_allowed("GET, POST"),
        },
        ["upload", "pending"] => only(m, "GET", sd(S::UploadStatus)),
        _ => Operation::NotFound,
    }
}

fn coffer<'a>(m: &str, rest: &[&'a str]) -> Operation<'a> {
    use CofferOp as C;
    let c = Operation::Coffer;
    let get_post = |get: CofferOp<'a>, post: CofferOp<'a>| match m {
        "GET" => c(get),
        "POST" => c(post),
        _ => not_allowed("GET, POST"),
    };
    let get_delete = |get: CofferOp<'a>, delete: CofferOp<'a>| match m {
        "GET" => c(get),
        "DELETE" => c(delete),
        _ => not_allowed("GET, DELETE"),
    };
    match rest {
        ["principals"] => get_post(C::PrincipalList, C::PrincipalCreate),
        ["principals", id] => get_delete(C::PrincipalGet { id }, C::PrincipalDelete { id }),
        ["principals", id, "secrets"] => only(m, "POST", c(C::PrincipalSecretCreate { id })),
        ["principals", id, "secrets", secret] => only(m, "DELETE", c(C::PrincipalSecretDelete { id, secret })),
        ["principals", id, "certificates"] => only(m, "POST", c(C::PrincipalCertificateAdd { id })),
        ["principals", id, "networks"] => only(m, "PUT", c(C::PrincipalNetworksSet { id })),
        ["groups"] => get_post(C::GroupList, C::GroupCreate),
        ["groups", id] => get_delete(C::GroupGet { id }, C::GroupDelete { id }),
        ["groups", group, "members", member] => match m {
            "PUT" => c(C::GroupMemberAdd { group, member }),
            "DELETE" => c(C::GroupMemberRemove { group, member }),
            _ => not_allowed("PUT, DELETE"),
        },
        ["eligible-assignments"] => get_post(C::EligibleAssignmentList, C::EligibleAssignmentCreate),
        ["eligible-assignments", name] => only(m, "DELETE", c(C::EligibleAssignmentDelete { name })),
        ["eligible-assignments", name, "activate"] => only(m, "POST", c(C::EligibleAssignmentActivate { name })),
        ["activations"] => only(m, "GET", c(C::ActivationList)),
        ["access-review"] => only(m, "GET", c(C::AccessReview)),
        ["audit"] => only(m, "GET", c(C::AuditQuery)),
        ["posture"] => only(m, "GET", c(C::Posture)),
        ["network-acls"] => match m {
            "GET" => c(C::NetworkAclsGet),
            "PUT" => c(C::NetworkAclsSet),
            _ => not_allowed("GET, PUT"),
        },
        ["policy-definitions"] => only(m, "GET", c(C::PolicyDefinitionList)),
        ["policies"] | ["policies", ""] => only(m, "GET", c(C::PolicyAssignmentList)),
        ["policies", name] => match m {
            "GET" => c(C::PolicyAssignmentGet { name }),
            "PUT" => c(C::PolicyAssignmentSet { name }),
            "DELETE" => c(C::PolicyAssignmentDelete { name }),
            _ => not_allowed("GET, PUT, DELETE"),
        },
        ["compliance"] => only(m, "GET", c(C::Compliance)),
        _ => Operation::NotFound,
    }
}

#[cfg(test)]
mod tests;
