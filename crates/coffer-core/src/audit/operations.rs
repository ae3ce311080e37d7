//! The `operationName` of a request. Key operations use the names Key Vault documents; `BackupCreate`,
//! `SecurityDomainBackup`, `SecurityDomainBackupStatusGet` and `Authentication` are the documented Managed HSM
//! names; the other Managed HSM ones (roles, full restore, security-domain upload, settings, rng) are the names
//! audit-log.md §4 proposes, and `Coffer…`, `Token…` and `AuditQuery` are Coffer's own (its identity and audit
//! APIs have no Azure counterpart). Unknown paths are `RequestNotFound`.

/// The operation name for `method` on the path segments `segs` (the path split at `/`, without the leading
/// empty segment). `token_service` says the first segment is the tenant (or `adfs`).
pub fn operation_name(method: &str, segs: &[&str], token_service: bool) -> String {
    let m = method.to_ascii_uppercase();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    if token_service {
        return if m == "POST" && l.last() == Some(&"token") {
            "TokenIssue".into()
        } else {
            "TokenServiceMetadataGet".into()
        };
    }
    if let Some(name) = rbac(&m, &l) {
        return name.into();
    }
    let name = match (m.as_str(), l.as_slice()) {
        ("GET", ["keys"] | ["keys", ""]) => "KeyList",
        ("POST", ["keys", "restore"]) => "KeyRestore",
        ("PUT", ["keys", _]) => "KeyImport",
        ("DELETE", ["keys", _]) => "KeyDelete",
        ("GET", ["keys", _]) => "KeyGet",
        ("PATCH", ["keys", _]) => "KeyUpdate",
        ("GET", ["keys", _, "rotationpolicy"]) => "KeyRotationPolicyGet",
        ("PUT", ["keys", _, "rotationpolicy"]) => "KeyRotationPolicySet",
        ("POST", ["keys", _, "rotate"]) => "KeyRotate",
        ("PUT", ["keys", _, "restore"]) => "SelectiveKeyRestoreCreate",
        ("POST", ["keys", _, "create"]) => "KeyCreate",
        ("POST", ["keys", _, "backup"]) => "KeyBackup",
        ("POST", ["keys", _, "release"]) => "KeyRelease",
        ("GET", ["keys", _, "versions"]) => "KeyListVersions",
        ("GET", ["keys", _, _]) => "KeyGet",
        ("PATCH", ["keys", _, _]) => "KeyUpdate",
        ("GET", ["keys", _, _, "attestation"]) => "KeyAttestationGet",
        ("POST", ["keys", _, _, op]) => match *op {
            "sign" => "KeySign",
            "verify" => "KeyVerify",
            "wrapkey" => "KeyWrap",
            "unwrapkey" => "KeyUnwrap",
            "encrypt" => "KeyEncrypt",
            "decrypt" => "KeyDecrypt",
            "release" => "KeyRelease",
            _ => "RequestNotFound",
        },
        ("GET", ["deletedkeys"] | ["deletedkeys", ""]) => "KeyListDeleted",
        ("GET", ["deletedkeys", _]) => "KeyGetDeleted",
        ("DELETE", ["deletedkeys", _]) => "KeyPurge",
        ("POST", ["deletedkeys", _, "recover"]) => "KeyRecover",
        ("POST", ["rng"]) => "RandomBytesGet",
        ("POST", ["backup"]) => "BackupCreate",
        ("POST", ["prebackup"]) => "PreBackupCreate",
        ("GET", ["backup", _, "pending"]) => "BackupStatusGet",
        ("PUT", ["restore"]) => "RestoreCreate",
        ("PUT", ["prerestore"]) => "PreRestoreCreate",
        ("GET", ["restore", _, "pending"]) => "RestoreStatusGet",
        ("GET", ["settings"] | ["settings", ""]) => "SettingList",
        ("GET", ["settings", _]) => "SettingGet",
        ("PATCH", ["settings", _]) => "SettingUpdate",
        ("POST", ["securitydomain", "download"]) => "SecurityDomainBackup",
        ("GET", ["securitydomain", "download", "pending"]) => "SecurityDomainBackupStatusGet",
        ("GET", ["securitydomain", "upload"]) => "SecurityDomainTransferKeyGet",
        ("POST", ["securitydomain", "upload"]) => "SecurityDomainRestore",
        ("GET", ["securitydomain", "upload", "pending"]) => "SecurityDomainRestoreStatusGet",
        ("GET", ["coffer", "v1", "audit"]) => "AuditQuery",
        (_, ["coffer", "v1", rest @ ..]) => return coffer(&m, rest),
        _ => "RequestNotFound",
    };
    name.into()
}

/// Role definitions and assignments at any of the scope spellings.
fn rbac(m: &str, l: &[&str]) -> Option<&'static str> {
    let at = l.iter().position(|s| *s == "microsoft.authorization")?;
    if at == 0 || l.get(at - 1) != Some(&"providers") {
        return None;
    }
    let rest = l.get(at + 1..)?;
    let named = rest.len() >= 2 && rest.get(1).is_some_and(|s| !s.is_empty());
    Some(match (rest.first().copied()?, named, m) {
        ("roleassignments", false, "GET") => "RoleAssignmentList",
        ("roleassignments", true, "GET") => "RoleAssignmentGet",
        ("roleassignments", true, "PUT") => "RoleAssignmentCreate",
        ("roleassignments", true, "DELETE") => "RoleAssignmentDelete",
        ("roledefinitions", false, "GET") => "RoleDefinitionList",
        ("roledefinitions", true, "GET") => "RoleDefinitionGet",
        ("roledefinitions", true, "PUT") => "RoleDefinitionSet",
        ("roledefinitions", true, "DELETE") => "RoleDefinitionDelete",
        _ => "RequestNotFound",
    })
}

/// Coffer's own APIs: `Coffer` + the resource path (ids left out) + a verb.
fn coffer(m: &str, rest: &[&str]) -> String {
    let resource: String = rest
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, s)| {
            s.split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        })
        .collect();
    let collection = rest.len() % 2 == 1;
    let verb = match (m, collection) {
        ("GET", true) => "List",
        ("GET", false) => "Get",
        ("POST", _) => "Create",
        ("PUT", _) => "Set",
        ("PATCH", _) => "Update",
        ("DELETE", _) => "Delete",
        _ => "Request",
    };
    format!("Coffer{resource}{verb}")
}

#[cfg(test)]
mod tests {
    use super::operation_name as op;

    #[test]
    fn names() {
        assert_eq!(op("POST", &["keys", "k1", "create"], false), "KeyCreate");
        assert_eq!(op("POST", &["keys", "k1", "abc", "wrapKey"], false), "KeyWrap");
        assert_eq!(op("GET", &["keys", "k1", "abc"], false), "KeyGet");
        assert_eq!(op("GET", &["keys", "k1", "versions"], false), "KeyListVersions");
        assert_eq!(op("DELETE", &["deletedkeys", "k1"], false), "KeyPurge");
        assert_eq!(
            op("POST", &["securitydomain", "download"], false),
            "SecurityDomainBackup"
        );
        assert_eq!(op("POST", &["backup"], false), "BackupCreate");
        assert_eq!(
            op(
                "PUT",
                &["", "providers", "Microsoft.Authorization", "roleAssignments", "x"],
                false
            ),
            "RoleAssignmentCreate"
        );
        assert_eq!(
            op(
                "GET",
                &["keys", "providers", "Microsoft.Authorization", "roleDefinitions"],
                false
            ),
            "RoleDefinitionList"
        );
        assert_eq!(
            op("GET", &["coffer", "v1", "principals"], false),
            "CofferPrincipalsList"
        );
        assert_eq!(
            op("POST", &["coffer", "v1", "principals", "o", "secrets"], false),
            "CofferPrincipalsSecretsCreate"
        );
        assert_eq!(
            op("GET", &["coffer", "v1", "access-review"], false),
            "CofferAccessReviewList"
        );
        assert_eq!(op("GET", &["coffer", "v1", "audit"], false), "AuditQuery");
        assert_eq!(op("POST", &["t", "oauth2", "v2.0", "token"], true), "TokenIssue");
        assert_eq!(op("GET", &["nothing", "here"], false), "RequestNotFound");
    }
}
