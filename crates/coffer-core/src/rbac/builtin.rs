//! The built-in roles, with the exact names, GUIDs and dataActions a real Managed HSM returns
//! (builtin-roles.md), plus Coffer's own identity administrator role. Built-in roles cannot be changed or deleted.
use super::{DataAction as D, Permission, RoleDefinition, RoleType};

/// Managed HSM Administrator.
pub const ADMINISTRATOR: &str = "a290e904-7015-4bba-90c8-60543313cdb4";
/// Managed HSM Crypto Officer.
pub const CRYPTO_OFFICER: &str = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778";
/// Managed HSM Crypto User.
pub const CRYPTO_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625b";
/// Managed HSM Policy Administrator.
pub const POLICY_ADMINISTRATOR: &str = "4bd23610-cdcf-4971-bdee-bdc562cc28e4";
/// Managed HSM Crypto Auditor.
pub const CRYPTO_AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";
/// Managed HSM Crypto Service Encryption User.
pub const CRYPTO_SERVICE_ENCRYPTION_USER: &str = "33413926-3206-4cdd-b39a-83574fe37a17";
/// Managed HSM Crypto Service Release User.
pub const CRYPTO_SERVICE_RELEASE_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625c";
/// Managed HSM Backup (service roleName "Managed HSM Backup User").
pub const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
/// Managed HSM Restore.
pub const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";
/// Coffer Identity Administrator: manages service principals, their credentials and groups.
pub const IDENTITY_ADMINISTRATOR: &str = "c0ffe700-1d00-4a00-8000-00000000a001";

fn role(id: &str, name: &str, description: &str, actions: &[D]) -> RoleDefinition {
    RoleDefinition {
        id: id.to_string(),
        role_name: name.to_string(),
        description: description.to_string(),
        role_type: RoleType::BuiltIn,
        permissions: vec![Permission {
            data_actions: actions.iter().map(|a| a.name().to_string()).collect(),
            ..Permission::default()
        }],
        assignable_scopes: vec!["/".to_string()],
    }
}

/// Every built-in role, in the order the service lists them.
pub fn all() -> Vec<RoleDefinition> {
    vec![
        role(
            ADMINISTRATOR,
            "Managed HSM Administrator",
            "",
            &[
                D::RoleAssignmentsDelete,
                D::RoleAssignmentsRead,
                D::RoleAssignmentsWrite,
                D::RoleDefinitionsRead,
                D::RoleDefinitionsWrite,
                D::RoleDefinitionsDelete,
                D::SecurityDomainDownload,
                D::SecurityDomainDownloadRead,
                D::SecurityDomainUpload,
                D::SecurityDomainUploadRead,
                D::SecurityDomainTransferKeyRead,
                D::BackupStart,
                D::RestoreStart,
                D::BackupStatus,
                D::RestoreStatus,
                // Coffer's additions: the network ACLs (Azure's management plane) and the posture report.
                D::NetworkRead,
                D::NetworkWrite,
                D::PostureRead,
            ],
        ),
        role(
            CRYPTO_OFFICER,
            "Managed HSM Crypto Officer",
            "",
            &[
                D::RoleAssignmentsDelete,
                D::RoleAssignmentsRead,
                D::RoleAssignmentsWrite,
                D::RoleDefinitionsRead,
                D::RoleDefinitionsWrite,
                D::RoleDefinitionsDelete,
                D::KeysDeletedRead,
                D::KeysDeletedDelete,
                D::KeysDeletedRecover,
                D::KeysExport,
            ],
        ),
        role(
            CRYPTO_USER,
            "Managed HSM Crypto User",
            "",
            &[
                D::RoleDefinitionsRead,
                D::RoleAssignmentsRead,
                D::KeysRead,
                D::KeysWrite,
                D::KeysDelete,
                D::KeysCreate,
                D::KeysRotate,
                D::KeysImport,
                D::KeysRelease,
                D::KeysBackup,
                D::KeysRestore,
                D::KeysEncrypt,
                D::KeysDecrypt,
                D::KeysWrap,
                D::KeysUnwrap,
                D::KeysSign,
                D::KeysVerify,
                D::KeysDerive,
                D::Rng,
            ],
        ),
        role(
            POLICY_ADMINISTRATOR,
            "Managed HSM Policy Administrator",
            "",
            &[
                D::RoleDefinitionsRead,
                D::RoleDefinitionsWrite,
                D::RoleDefinitionsDelete,
                D::RoleAssignmentsRead,
                D::RoleAssignmentsWrite,
                D::RoleAssignmentsDelete,
                // Coffer's addition: policy administrators manage key policies (GET/PUT /coffer/v1/policies).
                D::PoliciesRead,
                D::PoliciesWrite,
            ],
        ),
        role(
            CRYPTO_AUDITOR,
            "Managed HSM Crypto Auditor",
            "",
            &[
                D::RoleAssignmentsRead,
                D::RoleDefinitionsRead,
                D::KeysRead,
                D::KeysDeletedRead,
                // Coffer's additions: auditors read the audit log (GET /coffer/v1/audit) and the posture report.
                D::AuditRead,
                D::PostureRead,
                // Coffer's addition: auditors read key policies and their compliance report.
                D::PoliciesRead,
            ],
        ),
        role(
            CRYPTO_SERVICE_ENCRYPTION_USER,
            "Managed HSM Crypto Service Encryption User",
            "",
            &[D::KeysRead, D::KeysWrap, D::KeysUnwrap],
        ),
        role(
            CRYPTO_SERVICE_RELEASE_USER,
            "Managed HSM Crypto Service Release User",
            "",
            &[D::KeysRelease],
        ),
        role(
            BACKUP,
            "Managed HSM Backup User",
            "",
            &[D::BackupStart, D::BackupStatus, D::KeysBackup],
        ),
        role(
            RESTORE,
            "Managed HSM Restore",
            "",
            &[D::RestoreStart, D::RestoreStatus, D::KeysRestore],
        ),
        role(
            IDENTITY_ADMINISTRATOR,
            "Coffer Identity Administrator",
            "Manages Coffer's service principals, their credentials and groups (no key or HSM administration).",
            &[D::IdentitiesRead, D::IdentitiesWrite],
        ),
    ]
}

static BUILTIN: std::sync::LazyLock<Vec<RoleDefinition>> = std::sync::LazyLock::new(all);

/// A built-in role by GUID (built once, shared).
pub fn get(guid: &str) -> Option<&'static RoleDefinition> {
    BUILTIN.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

/// A built-in role by GUID, owned.
pub fn by_id(guid: &str) -> Option<RoleDefinition> {
    get(guid).cloned()
}
