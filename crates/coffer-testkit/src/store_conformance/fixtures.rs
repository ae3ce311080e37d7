//! Records for the suite, built with coffer-core's own types. Sealed material and hashes are arbitrary bytes: the
//! store keeps them, it never opens them.
use std::collections::BTreeMap;

use coffer_core::key::{KeyAttributes, KeyName, KeyOperation, KeyOrigin, KeyType, KeyVersion, KeyVersionRecord};
use coffer_core::policy::{Effect, PolicyAssignment};
use coffer_core::rbac::{
    Activation, EligibleAssignment, Network, Permission, RoleAssignment, RoleDefinition, RoleType, Scope,
};
use coffer_core::store::{ClientSecretRecord, GroupRecord, InstanceRecord, LifecycleState, PrincipalRecord};
use coffer_crypto::keys::{Curve, PublicKey};

/// A fixed "now" (2027): every time in the suite is relative to it.
pub const T0: i64 = 1_800_000_000;

/// A GUID-shaped id, lowercase as core makes them, distinct per `n`.
pub fn guid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A key name.
pub fn name(s: &str) -> KeyName {
    KeyName::parse(s).expect("a valid key name")
}

/// A version id whose lexical order is the order of `n`.
pub fn version(n: u128) -> KeyVersion {
    KeyVersion::parse(&format!("{n:032x}")).expect("32 hex digits")
}

/// An EC P-256 version with everything optional left unset. Its material names the key and the version, so a
/// version read back can be told from any other.
pub fn ec_version(key: &str, v: u128, created: i64) -> KeyVersionRecord {
    let ver = version(v);
    KeyVersionRecord {
        name: name(key),
        key_type: KeyType::Ec(Curve::P256),
        public_key: PublicKey::Ec {
            curve: Curve::P256,
            x: vec![0x11; 32],
            y: vec![0x22; 32],
        },
        key_ops: vec![KeyOperation::Sign, KeyOperation::Verify],
        attributes: KeyAttributes {
            enabled: true,
            not_before: None,
            expires: None,
            created,
            updated: created,
            exportable: false,
        },
        tags: BTreeMap::new(),
        release_policy: None,
        sealed_material: format!("sealed:{key}:{}", ver.as_str()).into_bytes(),
        origin: Some(KeyOrigin::Generated),
        version: ver,
    }
}

/// An RSA-2048 version.
pub fn rsa_version(key: &str, v: u128, created: i64) -> KeyVersionRecord {
    KeyVersionRecord {
        key_type: KeyType::Rsa(2048),
        public_key: PublicKey::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1],
        },
        key_ops: vec![
            KeyOperation::Encrypt,
            KeyOperation::Decrypt,
            KeyOperation::WrapKey,
            KeyOperation::UnwrapKey,
        ],
        origin: Some(KeyOrigin::Imported),
        ..ec_version(key, v, created)
    }
}

/// An AES-256 (oct-HSM) version.
pub fn oct_version(key: &str, v: u128, created: i64) -> KeyVersionRecord {
    KeyVersionRecord {
        key_type: KeyType::Oct(256),
        public_key: PublicKey::Oct,
        key_ops: vec![KeyOperation::WrapKey, KeyOperation::UnwrapKey],
        origin: None,
        ..ec_version(key, v, created)
    }
}

/// An RSA version with every optional field set (P-384 would do as well; RSA has the most columns).
pub fn full_version(key: &str, v: u128, created: i64) -> KeyVersionRecord {
    let mut rec = rsa_version(key, v, created);
    rec.key_type = KeyType::Rsa(3072);
    rec.public_key = PublicKey::Rsa {
        n: (0..=255u8).cycle().take(384).collect(),
        e: vec![1, 0, 1],
    };
    rec.key_ops = vec![KeyOperation::Decrypt, KeyOperation::Export];
    rec.attributes = KeyAttributes {
        enabled: false,
        not_before: Some(created + 10),
        expires: Some(created + 86_400),
        created,
        updated: created + 5,
        exportable: true,
    };
    rec.tags = [("env", "prod"), ("owner", "team ä")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rec.release_policy = Some(r#"{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[]}]}"#.into());
    rec.origin = Some(KeyOrigin::Byok);
    rec
}

/// Asserts that two key version records are equal in every field.
#[track_caller]
pub fn assert_same_version(got: &KeyVersionRecord, want: &KeyVersionRecord) {
    assert_eq!(got.name, want.name, "name");
    assert_eq!(got.version, want.version, "version");
    let what = format!("{}/{}", want.name, want.version.as_str());
    assert_eq!(got.key_type, want.key_type, "{what}: key_type");
    assert_eq!(got.public_key, want.public_key, "{what}: public_key");
    assert_eq!(got.key_ops, want.key_ops, "{what}: key_ops");
    assert_eq!(got.attributes, want.attributes, "{what}: attributes");
    assert_eq!(got.tags, want.tags, "{what}: tags");
    assert_eq!(got.release_policy, want.release_policy, "{what}: release_policy");
    assert_eq!(got.sealed_material, want.sealed_material, "{what}: sealed_material");
    assert_eq!(got.origin, want.origin, "{what}: origin");
}

/// The version ids of some records, in order.
pub fn versions_of(recs: &[KeyVersionRecord]) -> Vec<String> {
    recs.iter().map(|r| r.version.as_str().to_string()).collect()
}

/// The names of some records, in order.
pub fn names_of(recs: &[KeyVersionRecord]) -> Vec<String> {
    recs.iter().map(|r| r.name.as_str().to_string()).collect()
}

/// An instance record in `state`.
pub fn instance(state: LifecycleState) -> InstanceRecord {
    let recovery = state == LifecycleState::Recovery;
    InstanceRecord {
        instance_id: guid(0xa1),
        instance_name: "conformance".into(),
        tenant_id: guid(0xa2),
        created: T0,
        dev: false,
        sealed_domain_secret: b"sealed domain secret".to_vec(),
        sealed_token_key: b"sealed token key".to_vec(),
        soft_delete_retention_days: 7,
        purge_protection: false,
        bootstrap_object_id: guid(0xb0),
        state,
        sealed_exchange_key: recovery.then(|| b"sealed exchange key".to_vec()),
        exchange_cert: recovery.then(|| b"exchange cert der".to_vec()),
        activated: (state == LifecycleState::Active).then_some(T0),
    }
}

/// A principal with one secret and one certificate, no network limit.
pub fn principal(object_id: &str, client_id: &str) -> PrincipalRecord {
    PrincipalRecord {
        object_id: object_id.to_string(),
        client_id: client_id.to_string(),
        display_name: format!("app {object_id}"),
        secrets: vec![secret(&format!("{object_id}-s1"), T0)],
        certificates: vec![format!("cert of {object_id}").into_bytes()],
        created: T0,
        allowed_networks: Vec::new(),
    }
}

/// A client secret record (its hash is arbitrary bytes).
pub fn secret(id: &str, created: i64) -> ClientSecretRecord {
    ClientSecretRecord {
        id: id.to_string(),
        hash: format!("sha256 of {id}").into_bytes(),
        created,
    }
}

/// Address ranges, IPv4 and IPv6.
pub fn networks() -> Vec<Network> {
    ["10.1.0.0/16", "192.0.2.7", "2001:db8::/32"]
        .into_iter()
        .map(|n| Network::parse(n).expect("a valid range"))
        .collect()
}

/// A group with `members`.
pub fn group(object_id: &str, members: &[&str]) -> GroupRecord {
    GroupRecord {
        object_id: object_id.to_string(),
        display_name: format!("group {object_id}"),
        created: T0,
        members: members.iter().map(ToString::to_string).collect(),
    }
}

/// Managed HSM Crypto User (a built-in role: the store does not check built-in role ids).
pub const CRYPTO_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625b";

/// A role assignment of `role` to `principal_id` at `/`.
pub fn assignment(name: &str, role: &str, principal_id: &str) -> RoleAssignment {
    RoleAssignment {
        name: name.to_string(),
        scope: Scope::Root,
        role_definition_id: role.to_string(),
        principal_id: principal_id.to_string(),
        created: T0,
        expires: None,
        allowed_networks: Vec::new(),
        last_used: None,
        justification: None,
    }
}

/// A custom role definition granting key reads.
pub fn custom_role(id: &str) -> RoleDefinition {
    RoleDefinition {
        id: id.to_string(),
        role_name: format!("role {id}"),
        description: "reads keys".into(),
        role_type: RoleType::Custom,
        permissions: vec![Permission {
            actions: Vec::new(),
            not_actions: Vec::new(),
            data_actions: vec!["Microsoft.KeyVault/managedHsm/keys/read/action".into()],
            not_data_actions: vec!["Microsoft.KeyVault/managedHsm/keys/export/action".into()],
        }],
        assignable_scopes: vec!["/".into(), "/keys".into()],
    }
}

/// An eligible assignment of `role` to `principal_id`.
pub fn eligible(name: &str, role: &str, principal_id: &str) -> EligibleAssignment {
    EligibleAssignment {
        name: name.to_string(),
        scope: Scope::Keys,
        role_definition_id: role.to_string(),
        principal_id: principal_id.to_string(),
        max_duration_secs: 3600,
        created: T0,
    }
}

/// An activation of `eligible_name` at `at`, with the time-bound assignment it creates.
pub fn activation(id: &str, eligible_name: &str, assignment_name: &str, at: i64) -> (Activation, RoleAssignment) {
    let principal_id = guid(0xe0);
    let activation = Activation {
        id: id.to_string(),
        eligible_name: eligible_name.to_string(),
        principal_id: principal_id.clone(),
        assignment_name: assignment_name.to_string(),
        justification: "incident 42".into(),
        activated: at,
        expires: at + 3600,
    };
    let assignment = RoleAssignment {
        scope: Scope::Keys,
        created: at,
        expires: Some(at + 3600),
        justification: Some("incident 42".into()),
        ..assignment(assignment_name, CRYPTO_USER, &principal_id)
    };
    (activation, assignment)
}

/// A key policy assignment (the definition id is not checked by the store).
pub fn policy(name: &str, effect: Effect, at: i64) -> PolicyAssignment {
    let mut parameters = serde_json::Map::new();
    parameters.insert("maximumValidityInDays".into(), serde_json::json!(90));
    parameters.insert("allowedKeyTypes".into(), serde_json::json!(["RSA", "EC"]));
    PolicyAssignment {
        name: name.to_string(),
        definition_id: "0a075868-4c26-42ef-914c-5bc007359560".into(),
        effect,
        parameters,
        created: at,
        updated: at,
    }
}

/// Asserts that two principals are equal: every field, secrets and certificates in any order.
#[track_caller]
pub fn assert_same_principal(got: &PrincipalRecord, want: &PrincipalRecord) {
    assert_eq!(got.object_id, want.object_id, "object_id");
    let what = &want.object_id;
    assert_eq!(got.client_id, want.client_id, "{what}: client_id");
    assert_eq!(got.display_name, want.display_name, "{what}: display_name");
    assert_eq!(got.created, want.created, "{what}: created");
    let secrets = |p: &PrincipalRecord| {
        let mut s: Vec<_> = p
            .secrets
            .iter()
            .map(|s| (s.id.clone(), s.hash.clone(), s.created))
            .collect();
        s.sort();
        s
    };
    assert_eq!(secrets(got), secrets(want), "{what}: secrets");
    let certs = |p: &PrincipalRecord| {
        let mut c = p.certificates.clone();
        c.sort();
        c
    };
    assert_eq!(certs(got), certs(want), "{what}: certificates");
    assert_eq!(got.allowed_networks, want.allowed_networks, "{what}: allowed_networks");
}

/// A group's members, sorted.
pub fn members_of(g: &GroupRecord) -> Vec<String> {
    let mut m = g.members.clone();
    m.sort();
    m
}
