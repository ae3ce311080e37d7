//! Unit tests of the parent module.
use super::*;
use DataAction as D;

const T: &str = "tenant-1";

fn parse<'a>(m: &str, p: &'a str) -> Operation<'a> {
    Operation::parse(m, p, T)
}

/// (method, path) → operationName, dataAction, upfront cost: the whole table, walked through the parser.
#[test]
fn table() {
    let cases: &[(&str, &str, &str, Option<D>, u64)] = &[
        ("GET", "/keys", "KeyList", Some(D::KeysRead), 1),
        ("GET", "/keys/", "KeyList", Some(D::KeysRead), 1),
        ("POST", "/keys/k1/create", "KeyCreate", Some(D::KeysCreate), 200),
        ("POST", "/keys/k1/CREATE", "KeyCreate", Some(D::KeysCreate), 200),
        ("PUT", "/keys/k1", "KeyImport", Some(D::KeysImport), 200),
        ("GET", "/keys/k1", "KeyGet", Some(D::KeysRead), 1),
        ("GET", "/keys/k1/abc", "KeyGet", Some(D::KeysRead), 1),
        ("GET", "/keys/k1/rotate", "KeyGet", Some(D::KeysRead), 1),
        ("PATCH", "/keys/k1", "KeyUpdate", Some(D::KeysWrite), 1),
        ("PATCH", "/keys/k1/abc", "KeyUpdate", Some(D::KeysWrite), 1),
        ("DELETE", "/keys/k1", "KeyDelete", Some(D::KeysDelete), 1),
        ("GET", "/keys/k1/versions", "KeyListVersions", Some(D::KeysRead), 1),
        ("POST", "/keys/k1/backup", "KeyBackup", Some(D::KeysBackup), 1),
        ("POST", "/keys/restore", "KeyRestore", Some(D::KeysRestore), 200),
        ("POST", "/keys/k1/rotate", "KeyRotate", Some(D::KeysRotate), 200),
        (
            "GET",
            "/keys/k1/rotationpolicy",
            "KeyRotationPolicyGet",
            Some(D::KeysRead),
            1,
        ),
        (
            "PUT",
            "/keys/k1/rotationPolicy",
            "KeyRotationPolicySet",
            Some(D::KeysWrite),
            1,
        ),
        ("POST", "/keys/k1/release", "KeyRelease", Some(D::KeysRelease), 1),
        ("POST", "/keys/k1/abc/release", "KeyRelease", Some(D::KeysRelease), 1),
        ("POST", "/keys/k1/abc/encrypt", "KeyEncrypt", Some(D::KeysEncrypt), 1),
        ("POST", "/keys/k1/abc/decrypt", "KeyDecrypt", Some(D::KeysDecrypt), 1),
        ("POST", "/keys/k1/abc/wrapKey", "KeyWrap", Some(D::KeysWrap), 1),
        ("POST", "/keys/k1//unwrapkey", "KeyUnwrap", Some(D::KeysUnwrap), 1),
        ("POST", "/keys/k1/wrapkey", "KeyWrap", Some(D::KeysWrap), 1),
        ("POST", "/keys/k1/UnwrapKey", "KeyUnwrap", Some(D::KeysUnwrap), 1),
        ("POST", "/keys/k1/ENCRYPT", "KeyEncrypt", Some(D::KeysEncrypt), 1),
        ("POST", "/keys/k1/decrypt", "KeyDecrypt", Some(D::KeysDecrypt), 1),
        ("POST", "/keys/k1/sign", "KeySign", Some(D::KeysSign), 1),
        ("POST", "/keys/k1/verify", "KeyVerify", Some(D::KeysVerify), 1),
        ("POST", "/keys/k1/abc/sign", "KeySign", Some(D::KeysSign), 1),
        ("POST", "/keys/k1/abc/verify", "KeyVerify", Some(D::KeysVerify), 1),
        ("GET", "/deletedkeys", "KeyListDeleted", Some(D::KeysDeletedRead), 1),
        ("GET", "/deletedkeys/k1", "KeyGetDeleted", Some(D::KeysDeletedRead), 1),
        ("DELETE", "/deletedkeys/k1", "KeyPurge", Some(D::KeysDeletedDelete), 1),
        (
            "POST",
            "/deletedkeys/k1/recover",
            "KeyRecover",
            Some(D::KeysDeletedRecover),
            1,
        ),
        ("POST", "/rng", "RandomBytesGet", Some(D::Rng), 1),
        (
            "POST",
            "/graph/v1.0/directoryObjects/getByIds",
            "GraphDirectoryObjectsGetByIds",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "GET",
            "/graph/V1.0/servicePrincipals",
            "GraphServicePrincipalsList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "GET",
            "/graph/v1.0/users",
            "GraphUsersList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        ("GET", "/graph/v1.0/me", "RequestNotFound", None, 1),
        (
            "GET",
            "/graph/v1.0/directoryObjects/getByIds",
            "RequestNotFound",
            None,
            1,
        ),
        ("POST", "/backup", "BackupCreate", Some(D::BackupStart), 1),
        ("POST", "/prebackup", "PreBackupCreate", Some(D::BackupStart), 1),
        ("GET", "/backup/j1/pending", "BackupStatusGet", Some(D::BackupStatus), 1),
        ("PUT", "/restore", "RestoreCreate", Some(D::RestoreStart), 1),
        ("PUT", "/prerestore", "PreRestoreCreate", Some(D::RestoreStart), 1),
        (
            "GET",
            "/restore/j1/pending",
            "RestoreStatusGet",
            Some(D::RestoreStatus),
            1,
        ),
        (
            "PUT",
            "/keys/k1/restore",
            "SelectiveKeyRestoreCreate",
            Some(D::RestoreStart),
            1,
        ),
        ("GET", "/settings", "SettingList", Some(D::RoleDefinitionsRead), 1),
        (
            "GET",
            "/settings/PurgeProtection",
            "SettingGet",
            Some(D::RoleDefinitionsRead),
            1,
        ),
        (
            "PATCH",
            "/settings/PurgeProtection",
            "SettingUpdate",
            Some(D::RoleDefinitionsWrite),
            1,
        ),
        (
            "POST",
            "/securitydomain/download",
            "SecurityDomainBackup",
            Some(D::SecurityDomainDownload),
            1,
        ),
        (
            "GET",
            "/securitydomain/download/pending",
            "SecurityDomainBackupStatusGet",
            Some(D::SecurityDomainDownloadRead),
            1,
        ),
        (
            "GET",
            "/securitydomain/upload",
            "SecurityDomainTransferKeyGet",
            Some(D::SecurityDomainTransferKeyRead),
            1,
        ),
        (
            "POST",
            "/securitydomain/upload",
            "SecurityDomainRestore",
            Some(D::SecurityDomainUpload),
            1,
        ),
        (
            "GET",
            "/securitydomain/upload/pending",
            "SecurityDomainRestoreStatusGet",
            Some(D::SecurityDomainUploadRead),
            1,
        ),
        (
            "PUT",
            "///providers/Microsoft.Authorization/roleAssignments/x",
            "RoleAssignmentCreate",
            Some(D::RoleAssignmentsWrite),
            1,
        ),
        (
            "GET",
            "/providers/Microsoft.Authorization/roleAssignments/",
            "RoleAssignmentList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "GET",
            "/keys/k1/providers/microsoft.authorization/roleassignments/x",
            "RoleAssignmentGet",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "DELETE",
            "/providers/Microsoft.Authorization/roleAssignments/x",
            "RoleAssignmentDelete",
            Some(D::RoleAssignmentsDelete),
            1,
        ),
        (
            "GET",
            "/keys/providers/Microsoft.Authorization/roleDefinitions",
            "RoleDefinitionList",
            Some(D::RoleDefinitionsRead),
            1,
        ),
        (
            "GET",
            "/providers/Microsoft.Authorization/roleDefinitions/d",
            "RoleDefinitionGet",
            Some(D::RoleDefinitionsRead),
            1,
        ),
        (
            "PUT",
            "/providers/Microsoft.Authorization/roleDefinitions/d",
            "RoleDefinitionSet",
            Some(D::RoleDefinitionsWrite),
            1,
        ),
        (
            "DELETE",
            "/providers/Microsoft.Authorization/roleDefinitions/d",
            "RoleDefinitionDelete",
            Some(D::RoleDefinitionsDelete),
            1,
        ),
        (
            "POST",
            "/coffer/v1/principals",
            "CofferPrincipalsCreate",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "GET",
            "/coffer/v1/principals",
            "CofferPrincipalsList",
            Some(D::IdentitiesRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/principals/o",
            "CofferPrincipalsGet",
            Some(D::IdentitiesRead),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/principals/o",
            "CofferPrincipalsDelete",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "POST",
            "/coffer/v1/principals/o/secrets",
            "CofferPrincipalsSecretsCreate",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/principals/o/secrets/s",
            "CofferPrincipalsSecretsDelete",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "POST",
            "/coffer/v1/principals/o/certificates",
            "CofferPrincipalsCertificatesCreate",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "PUT",
            "/coffer/v1/principals/o/networks",
            "CofferPrincipalsNetworksSet",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "POST",
            "/coffer/v1/groups",
            "CofferGroupsCreate",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "GET",
            "/coffer/v1/groups",
            "CofferGroupsList",
            Some(D::IdentitiesRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/groups/g",
            "CofferGroupsGet",
            Some(D::IdentitiesRead),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/groups/g",
            "CofferGroupsDelete",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "PUT",
            "/coffer/v1/groups/g/members/o",
            "CofferGroupsMembersSet",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/groups/g/members/o",
            "CofferGroupsMembersDelete",
            Some(D::IdentitiesWrite),
            1,
        ),
        (
            "POST",
            "/coffer/v1/eligible-assignments",
            "CofferEligibleAssignmentsCreate",
            Some(D::RoleAssignmentsWrite),
            1,
        ),
        (
            "GET",
            "/coffer/v1/eligible-assignments",
            "CofferEligibleAssignmentsList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/eligible-assignments/e",
            "CofferEligibleAssignmentsDelete",
            Some(D::RoleAssignmentsDelete),
            1,
        ),
        (
            "POST",
            "/coffer/v1/eligible-assignments/e/activate",
            "CofferEligibleAssignmentsActivateCreate",
            None,
            1,
        ),
        (
            "GET",
            "/coffer/v1/activations",
            "CofferActivationsList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/access-review",
            "CofferAccessReviewList",
            Some(D::RoleAssignmentsRead),
            1,
        ),
        ("GET", "/coffer/v1/audit", "AuditQuery", Some(D::AuditRead), 1),
        (
            "GET",
            "/coffer/v1/posture",
            "CofferPostureList",
            Some(D::PostureRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/network-acls",
            "CofferNetworkAclsList",
            Some(D::NetworkRead),
            1,
        ),
        (
            "PUT",
            "/coffer/v1/network-acls",
            "CofferNetworkAclsSet",
            Some(D::NetworkWrite),
            1,
        ),
        (
            "GET",
            "/coffer/v1/policy-definitions",
            "CofferPolicyDefinitionsList",
            Some(D::PoliciesRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/policies",
            "CofferPoliciesList",
            Some(D::PoliciesRead),
            1,
        ),
        (
            "GET",
            "/coffer/v1/policies/p",
            "CofferPoliciesGet",
            Some(D::PoliciesRead),
            1,
        ),
        (
            "PUT",
            "/coffer/v1/policies/p",
            "CofferPoliciesSet",
            Some(D::PoliciesWrite),
            1,
        ),
        (
            "DELETE",
            "/coffer/v1/policies/p",
            "CofferPoliciesDelete",
            Some(D::PoliciesWrite),
            1,
        ),
        (
            "GET",
            "/coffer/v1/compliance",
            "CofferComplianceList",
            Some(D::PoliciesRead),
            1,
        ),
        ("POST", "/tenant-1/oauth2/v2.0/token", "TokenIssue", None, 1),
        ("POST", "/adfs/oauth2/token", "TokenIssue", None, 1),
        (
            "GET",
            "/tenant-1/v2.0/.well-known/openid-configuration",
            "TokenServiceMetadataGet",
            None,
            1,
        ),
        (
            "GET",
            "/ADFS/.well-known/openid-configuration",
            "TokenServiceMetadataGet",
            None,
            1,
        ),
        (
            "GET",
            "/tenant-1/discovery/v2.0/keys",
            "TokenServiceMetadataGet",
            None,
            1,
        ),
        ("GET", "/tenant-1/nothing", "RequestNotFound", None, 1),
        ("GET", "/nothing/here", "RequestNotFound", None, 1),
        ("GET", "/KEYS", "RequestNotFound", None, 1),
        ("POST", "/keys/k1/abc/nothing", "RequestNotFound", None, 1),
        ("GET", "/coffer/v1/nothing", "RequestNotFound", None, 1),
        ("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n", "RequestNotFound", None, 1),
        (
            "GET",
            "/providers/Microsoft.Authorization/roleEverything",
            "RequestNotFound",
            None,
            1,
        ),
        // A method the path does not support: 405, named like an unknown request.
        ("POST", "/keys/k1", "RequestNotFound", None, 1),
        ("PATCH", "/coffer/v1/principals", "RequestNotFound", None, 1),
    ];
    for &(m, p, name, action, cost) in cases {
        let op = parse(m, p);
        assert_eq!(
            (op.name(), op.data_action(), op.upfront_cost()),
            (name, action, cost),
            "{m} {p}: {op:?}"
        );
    }
}

#[test]
fn parameters_and_405() {
    assert_eq!(
        parse("POST", "/keys/k1/v1/wrapkey"),
        Operation::KeyCrypto {
            name: "k1",
            version: "v1",
            verb: CryptoVerb::WrapKey
        }
    );
    assert_eq!(
        parse("POST", "/keys/k1/wrapkey"),
        Operation::KeyCrypto {
            name: "k1",
            version: "",
            verb: CryptoVerb::WrapKey
        },
        "the versionless form is the latest version"
    );
    assert_eq!(
        parse("PUT", "/keys/k1/providers/Microsoft.Authorization/roleAssignments/a"),
        Operation::Rbac(RbacOp::AssignmentCreate {
            scope: "keys/k1/",
            name: "a"
        })
    );
    assert_eq!(scope_path("keys/k1/"), "/keys/k1");
    assert_eq!(scope_path(""), "/");
    assert_eq!(scope_path("//keys//"), "/keys");
    assert_eq!(
        parse("GET", "/coffer/v1/groups/g/members/o"),
        Operation::MethodNotAllowed { allow: "PUT, DELETE" }
    );
    assert_eq!(
        parse("GET", "/keys/k1/v1/sign"),
        Operation::MethodNotAllowed { allow: "POST" }
    );
    assert_eq!(parse("GET", "/healthz"), Operation::Health);
    assert_eq!(parse("HEAD", "/healthz"), Operation::Health);
    assert_eq!(parse("DELETE", "/healthz"), Operation::HealthMethodNotAllowed);
    // The token service's paths with another method: 405, still the token service (no bearer token).
    for (m, p, allow) in [
        ("GET", "/tenant-1/oauth2/v2.0/token", "POST"),
        ("DELETE", "/adfs/oauth2/token", "POST"),
        ("POST", "/tenant-1/discovery/v2.0/keys", "GET"),
        ("PUT", "/adfs/.well-known/openid-configuration", "GET"),
        ("PATCH", "/tenant-1/v2.0/.well-known/openid-configuration", "GET"),
    ] {
        assert_eq!(
            parse(m, p),
            Operation::Token(TokenOp::MethodNotAllowed { allow }),
            "{m} {p}"
        );
    }
    assert_eq!(
        parse("GET", "/adfs/oauth2/v2.0/token"),
        Operation::Token(TokenOp::MethodNotAllowed { allow: "POST" })
    );
    assert_eq!(parse("GET", "/adfs/nothing"), Operation::Token(TokenOp::NotFound));
    assert!(parse("GET", "/adfs/anything").is_token_service());
    assert!(!parse("GET", "/keys").is_token_service());
    assert!(parse("GET", "/backup/j/pending").is_status_poll());
    assert_eq!(
        parse("DELETE", "/graph/v1.0/users"),
        Operation::Graph(GraphOp::Unsupported)
    );
    assert_eq!(parse("GET", "/graph"), Operation::Graph(GraphOp::Unsupported));
    assert!(parse("GET", "/graph/beta/users").is_graph());
    assert!(!parse("GET", "/keys/graph").is_graph());
    assert!(!parse("GET", "/keys/j/pending").is_status_poll());
}

#[test]
fn targets() {
    let b = "https://h";
    let id = |m: &str, p: &str| parse(m, p).target().id(b, T);
    assert_eq!(id("POST", "/keys/k/create"), "https://h/keys/k");
    assert_eq!(id("POST", "/keys/k/abc/sign"), "https://h/keys/k/abc");
    assert_eq!(id("POST", "/keys/k//sign"), "https://h/keys/k");
    assert_eq!(id("GET", "/keys/k"), "https://h/keys/k");
    assert_eq!(id("GET", "/keys/k/abc"), "https://h/keys/k/abc");
    assert_eq!(id("GET", "/keys/k/rotationpolicy"), "https://h/keys/k");
    assert_eq!(id("POST", "/deletedkeys/k/recover"), "https://h/deletedkeys/k");
    assert_eq!(id("POST", "/rng"), "https://h/");
    assert_eq!(id("POST", "/tenant-1/oauth2/v2.0/token"), "https://h/tenant-1");
}
