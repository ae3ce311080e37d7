//! The instance's root of trust: the 256-bit domain secret, what is derived from it, and how it is sealed at rest.
//!
//! Sealing policy (what each AAD binds):
//! - domain secret, sealed by the seal provider: `coffer/domain-secret/v1|{instance_id}`
//! - key material, under the material key: `coffer/key/v1|{instance_id}|{lower-cased name}|{version}|{kty}`
//! - token-signing key, under the token key: `coffer/token-key/v1|{instance_id}`
//! - key backup blobs, under the backup key: `coffer/key-backup/v1` (no instance id: a blob restores into any
//!   instance that holds the same domain secret, and nowhere else).
use coffer_crypto::SecretBytes;
use coffer_crypto::jwt::TokenSigningKey;

use crate::Error;
use crate::key::{KeyName, KeyType, KeyVersion};
use crate::rbac::{RoleAssignment, Scope, builtin};
use crate::store::{ClientSecretRecord, InstanceRecord, PrincipalRecord};

/// Protects the domain secret at rest (a key file now; PKCS#11 in a later issue).
pub trait SealProvider: Send + Sync {
    /// Seals `plaintext`, binding `aad`.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error>;
    /// Opens what `seal` produced.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, Error>;
}

/// A seal provider holding a 256-bit AES key (read from `<data-dir>/seal.key` by the server).
pub struct KeySealProvider {
    key: SecretBytes,
}

impl std::fmt::Debug for KeySealProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealProvider(..)")
    }
}

impl KeySealProvider {
    /// Wraps a 32-byte seal key.
    pub fn new(key: SecretBytes) -> Result<Self, Error> {
        if key.len() != 32 {
            return Err(Error::Corrupt("the seal key must be 32 bytes".into()));
        }
        Ok(Self { key })
    }
}

impl SealProvider for KeySealProvider {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(coffer_crypto::seal::seal(&self.key, aad, plaintext)?)
    }
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, Error> {
        Ok(coffer_crypto::seal::open(&self.key, aad, sealed)?)
    }
}

/// Keys derived from the domain secret by HKDF-SHA256, one per purpose.
pub struct DerivedKeys {
    pub(crate) material: SecretBytes,
    pub(crate) backup: SecretBytes,
    pub(crate) full_backup: SecretBytes,
    pub(crate) token: SecretBytes,
    pub(crate) audit: SecretBytes,
}

impl std::fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKeys(..)")
    }
}

impl DerivedKeys {
    /// The audit log's MAC key.
    pub fn audit_mac_key(&self) -> SecretBytes {
        self.audit.duplicate()
    }

    /// Derives every internal key from the domain secret.
    pub fn derive(domain_secret: &SecretBytes) -> Result<Self, Error> {
        let d = |info: &[u8]| coffer_crypto::kdf::hkdf_sha256(domain_secret, b"coffer-domain-v1", info, 32);
        Ok(Self {
            material: d(b"coffer/key-material/v1")?,
            backup: d(b"coffer/key-backup/v1")?,
            full_backup: d(b"coffer/full-backup/v1")?,
            token: d(b"coffer/token-signing/v1")?,
            audit: d(b"coffer/audit-mac/v1")?,
        })
    }
}

/// AAD binding sealed key material to its instance, key name, version and type.
/// The name is lower-cased: key names are case-insensitive, and a version sealed under one spelling must open
/// under another.
pub fn material_aad(instance_id: &str, name: &KeyName, version: &KeyVersion, key_type: KeyType) -> Vec<u8> {
    let name = name.as_str().to_ascii_lowercase();
    format!(
        "coffer/key/v1|{instance_id}|{name}|{}|{}",
        version.as_str(),
        key_type.storage_tag()
    )
    .into_bytes()
}

/// AAD of the sealed domain secret.
pub fn domain_secret_aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/domain-secret/v1|{instance_id}").into_bytes()
}

/// AAD of the sealed token-signing key.
pub fn token_key_aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/token-key/v1|{instance_id}").into_bytes()
}

/// Options fixed at instance creation.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub instance_name: String,
    pub dev: bool,
    pub soft_delete_retention_days: i64,
    pub purge_protection: bool,
    /// Object ids (principals or groups, of any trusted issuer) made Managed HSM Administrators at `/`.
    pub administrators: Vec<String>,
    /// Create in recovery mode (waiting for a security-domain upload).
    pub recovery: bool,
}

/// AAD of the sealed exchange (transfer) key.
pub fn exchange_key_aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/exchange-key/v1|{instance_id}").into_bytes()
}

/// The bootstrap administrator's credentials, returned once at creation.
pub struct BootstrapCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub object_id: String,
    pub client_secret: SecretBytes,
}

impl std::fmt::Debug for BootstrapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("object_id", &self.object_id)
            .finish_non_exhaustive()
    }
}

/// A new random UUID (v4) string from the crypto RNG.
pub fn new_uuid() -> Result<String, Error> {
    let b = coffer_crypto::random::bytes(16)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(&b);
    Ok(uuid::Builder::from_random_bytes(a).into_uuid().to_string())
}

/// A new client secret: 32 random bytes, base64url-like text (only `[A-Za-z0-9_-]`, so it is safe in forms).
pub fn new_client_secret() -> Result<SecretBytes, Error> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let raw = coffer_crypto::random::secret(40)?;
    let text: Vec<u8> = raw
        .expose_secret()
        .iter()
        .map(|b| ALPHABET[usize::from(b & 63)])
        .collect();
    Ok(SecretBytes::new(text))
}

/// Hash under which a client secret is stored.
pub fn client_secret_hash(secret: &[u8]) -> Vec<u8> {
    coffer_crypto::hash::sha256(secret).to_vec()
}

/// The roles the bootstrap principal and each configured administrator get at `/` on creation: together they hold
/// every protected dataAction, so that every role can be handed out.
pub const INITIAL_ADMINISTRATOR_ROLES: [&str; 3] = [
    builtin::ADMINISTRATOR,
    builtin::POLICY_ADMINISTRATOR,
    builtin::CRYPTO_AUDITOR,
];

/// Everything a new instance consists of.
pub struct NewInstance {
    pub record: InstanceRecord,
    pub bootstrap: PrincipalRecord,
    /// [`INITIAL_ADMINISTRATOR_ROLES`] and Identity Administrator at `/` for the bootstrap principal;
    /// [`INITIAL_ADMINISTRATOR_ROLES`] at `/` for each configured administrator.
    pub assignments: Vec<RoleAssignment>,
    pub credentials: BootstrapCredentials,
}

/// Creates a new instance: tenant id, domain secret (sealed), token-signing key (sealed under the domain secret)
/// and the bootstrap service principal.
pub fn new_instance(seal: &dyn SealProvider, options: &CreateOptions, now: i64) -> Result<NewInstance, Error> {
    let instance_id = new_uuid()?;
    let tenant_id = new_uuid()?;
    let domain_secret = coffer_crypto::random::secret(32)?;
    let sealed_domain_secret = seal.seal(&domain_secret_aad(&instance_id), domain_secret.expose_secret())?;
    let derived = DerivedKeys::derive(&domain_secret)?;
    let token_key = TokenSigningKey::generate()?;
    let sealed_token_key = coffer_crypto::seal::seal(
        &derived.token,
        &token_key_aad(&instance_id),
        token_key.to_pkcs8()?.expose_secret(),
    )?;
    let client_secret = new_client_secret()?;
    let bootstrap = PrincipalRecord {
        object_id: new_uuid()?,
        client_id: new_uuid()?,
        display_name: "bootstrap-administrator".into(),
        secrets: vec![ClientSecretRecord {
            id: new_uuid()?,
            hash: client_secret_hash(client_secret.expose_secret()),
            created: now,
        }],
        certificates: Vec::new(),
        created: now,
        allowed_networks: Vec::new(),
    };
    let credentials = BootstrapCredentials {
        tenant_id: tenant_id.clone(),
        client_id: bootstrap.client_id.clone(),
        object_id: bootstrap.object_id.clone(),
        client_secret,
    };
    let record = InstanceRecord {
        instance_id,
        instance_name: options.instance_name.clone(),
        tenant_id,
        created: now,
        dev: options.dev,
        sealed_domain_secret,
        sealed_token_key,
        soft_delete_retention_days: options.soft_delete_retention_days,
        purge_protection: options.purge_protection,
        bootstrap_object_id: bootstrap.object_id.clone(),
        state: if options.recovery {
            crate::store::LifecycleState::Recovery
        } else if options.dev {
            crate::store::LifecycleState::Active
        } else {
            crate::store::LifecycleState::Provisioned
        },
        sealed_exchange_key: None,
        exchange_cert: None,
        activated: None,
    };
    let mut record = record;
    if options.recovery {
        let exchange =
            coffer_crypto::security_domain::generate_rsa_certified(3072, "Coffer security-domain exchange key")?;
        record.sealed_exchange_key = Some(seal.seal(
            &exchange_key_aad(&record.instance_id),
            exchange.key_pkcs8_der.expose_secret(),
        )?);
        record.exchange_cert = Some(exchange.cert_der);
    }
    if options.dev {
        record.activated = Some(now);
    }
    let mut assignments = Vec::new();
    let mut assign = |principal_id: &str, role: &str| -> Result<(), Error> {
        assignments.push(RoleAssignment {
            name: new_uuid()?,
            scope: Scope::Root,
            role_definition_id: role.to_string(),
            principal_id: principal_id.to_string(),
            created: now,
            expires: None,
            allowed_networks: Vec::new(),
            last_used: None,
            justification: None,
        });
        Ok(())
    };
    // No role can confer protected rights it does not hold (rbac::escalation), so the first administrators hold
    // every administrative role from the start: they hand roles out, then give up their own.
    for role in INITIAL_ADMINISTRATOR_ROLES {
        assign(&bootstrap.object_id, role)?;
    }
    assign(&bootstrap.object_id, builtin::IDENTITY_ADMINISTRATOR)?;
    for admin in &options.administrators {
        for role in INITIAL_ADMINISTRATOR_ROLES {
            assign(admin, role)?;
        }
    }
    Ok(NewInstance {
        record,
        bootstrap,
        assignments,
        credentials,
    })
}
