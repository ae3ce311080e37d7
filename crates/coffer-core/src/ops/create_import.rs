//! Create and import: a new key, or a new version of an existing live key. A soft-deleted name is a conflict
//! (it must be recovered or purged first). Steps: authorize, validate, generate or import the material, evaluate the
//! key policies (`ops/policy.rs`; rotation ends here too), seal it, write the version (one transaction), cache the
//! unsealed key.
use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_crypto::keys::{Curve, KeyFamily, PrivateKey, RsaPrivateComponents};

use super::byok::ByokImport;
use super::{KeyProperties, check_tags, check_times};
use crate::key::{KeyAttributes, KeyName, KeyOperation, KeyOrigin, KeyType, KeyVersion, KeyVersionRecord};
use crate::rbac::{DataAction, Scope};
use crate::store::NewVersionMode;
use crate::{Error, Hsm, Principal};

/// A create request.
#[derive(Debug, Clone)]
pub struct CreateKeyRequest {
    pub name: String,
    pub kty: String,
    pub key_size: Option<i64>,
    pub public_exponent: Option<i64>,
    pub curve: Option<String>,
    pub properties: KeyProperties,
}

/// Private material of an import request.
pub enum ImportMaterial {
    Ec {
        curve: String,
        d: SecretBytes,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Oct(SecretBytes),
    Rsa(RsaPrivateComponents),
    /// A BYOK transfer blob (`key_hsm`), opened with a key exchange key of this HSM (`ops/byok.rs`).
    Byok(ByokImport),
}

impl std::fmt::Debug for ImportMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportMaterial(..)")
    }
}

/// An import request.
#[derive(Debug)]
pub struct ImportKeyRequest {
    pub name: String,
    pub material: ImportMaterial,
    pub properties: KeyProperties,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadParameter(m.into())
}

impl Hsm {
    /// Creates a key (or a new version of it).
    pub async fn create_key(&self, caller: &Principal, req: CreateKeyRequest) -> Result<KeyVersionRecord, Error> {
        let name = KeyName::parse(&req.name)?;
        self.authorize(caller, DataAction::KeysCreate, &Scope::Key(name.to_string()))
            .await?;
        let family = KeyType::parse_family(&req.kty)?;
        let (key_type, key) = match family {
            KeyFamily::Rsa => {
                if req.curve.is_some() {
                    return Err(bad("crv is not valid for an RSA key."));
                }
                if let Some(e) = req.public_exponent
                    && e != 65537
                {
                    return Err(bad("Only the public exponent 65537 is supported."));
                }
                let bits = match req.key_size {
                    None => 2048,
                    Some(b @ (2048 | 3072 | 4096)) => b,
                    Some(b) => {
                        return Err(bad(format!(
                            "RSA key size {b} is not supported; use 2048, 3072 or 4096."
                        )));
                    }
                };
                let bits = u32::try_from(bits).map_err(|_| bad("invalid key_size"))?;
                let key = tokio::task::spawn_blocking(move || PrivateKey::generate_rsa(bits))
                    .await
                    .map_err(|_| Error::Corrupt("key generation task failed".into()))??;
                (KeyType::Rsa(bits), key)
            }
            KeyFamily::Ec => {
                if req.key_size.is_some() || req.public_exponent.is_some() {
                    return Err(bad("key_size and public_exponent are not valid for an EC key."));
                }
                let crv = req.curve.as_deref().unwrap_or("P-256");
                let curve = Curve::parse(crv).ok_or_else(|| bad(format!("The curve '{crv}' is not supported.")))?;
                (KeyType::Ec(curve), PrivateKey::generate_ec(curve)?)
            }
            KeyFamily::Oct => {
                if req.curve.is_some() || req.public_exponent.is_some() {
                    return Err(bad("crv and public_exponent are not valid for an oct key."));
                }
                let bits = match req.key_size {
                    None => 256,
                    Some(b @ (128 | 192 | 256)) => b,
                    Some(b) => {
                        return Err(bad(format!("AES key size {b} is not supported; use 128, 192 or 256.")));
                    }
                };
                let bits = u32::try_from(bits).map_err(|_| bad("invalid key_size"))?;
                (KeyType::Oct(bits), PrivateKey::generate_oct(bits)?)
            }
        };
        self.store_new_version(name, key_type, key, req.properties, KeyOrigin::Generated)
            .await
    }

    /// Imports key material as a key (or a new version of it).
    pub async fn import_key(&self, caller: &Principal, req: ImportKeyRequest) -> Result<KeyVersionRecord, Error> {
        let name = KeyName::parse(&req.name)?;
        self.authorize(caller, DataAction::KeysImport, &Scope::Key(name.to_string()))
            .await?;
        let rq = Error::from_request_crypto;
        let origin = match &req.material {
            ImportMaterial::Byok(_) => KeyOrigin::Byok,
            _ => KeyOrigin::Imported,
        };
        let (key_type, key) = match req.material {
            ImportMaterial::Rsa(c) => {
                let key = PrivateKey::import_rsa(&c).map_err(rq)?;
                let bits = key.size_bits();
                if !(2048..=4096).contains(&bits) {
                    return Err(bad(format!(
                        "RSA key size {bits} is not supported; use 2048 to 4096 bits."
                    )));
                }
                (KeyType::Rsa(bits), key)
            }
            ImportMaterial::Ec { curve, d, x, y } => {
                let c = Curve::parse(&curve).ok_or_else(|| bad(format!("The curve '{curve}' is not supported.")))?;
                (KeyType::Ec(c), PrivateKey::import_ec(c, &d, &x, &y).map_err(rq)?)
            }
            ImportMaterial::Oct(k) => {
                let key = PrivateKey::import_oct(k).map_err(rq)?;
                (KeyType::Oct(key.size_bits()), key)
            }
            ImportMaterial::Byok(b) => self.byok_key(b).await?,
        };
        self.store_new_version(name, key_type, key, req.properties, origin)
            .await
    }

    pub(crate) async fn store_new_version(
        &self,
        name: KeyName,
        key_type: KeyType,
        key: PrivateKey,
        props: KeyProperties,
        origin: KeyOrigin,
    ) -> Result<KeyVersionRecord, Error> {
        let key_ops = match &props.key_ops {
            Some(ops) => KeyOperation::parse_list(ops, key_type)?,
            None => key_type.default_ops(),
        };
        if props.exportable == Some(true) && props.release_policy.is_none() {
            return Err(bad("An exportable key must have a release policy."));
        }
        if props.exportable != Some(true) && props.release_policy.is_some() {
            return Err(bad("Non-exportable keys must not have release policy"));
        }
        super::check_kek_not_exportable(&key_ops, props.exportable == Some(true))?;
        let tags = props.tags.unwrap_or_default();
        check_tags(&tags)?;
        let now = self.clock.now();
        let attributes = KeyAttributes {
            enabled: props.enabled.unwrap_or(true),
            not_before: props.not_before,
            expires: props.expires,
            created: now,
            updated: now,
            exportable: props.exportable.unwrap_or(false),
        };
        check_times(&attributes)?;
        let mut record = KeyVersionRecord {
            name,
            version: KeyVersion::generate()?,
            key_type,
            public_key: key.public_key(),
            key_ops,
            attributes,
            tags,
            release_policy: props.release_policy,
            sealed_material: Vec::new(),
            origin: Some(origin),
        };
        // The request is valid before key policies look at it: a refused release policy must not leave Audit
        // violations in the audit record for a version that is never written.
        record.release_policy = record
            .release_policy
            .as_deref()
            .map(crate::release_policy::normalize)
            .transpose()?;
        self.enforce_key_policies(&record, false).await?;
        record.sealed_material = self.seal_material(&key, &record)?;
        record.name = self
            .store
            .insert_versions(std::slice::from_ref(&record), NewVersionMode::AddVersion)
            .await?;
        self.cache
            .insert(record.name.as_str(), record.version.as_str(), Arc::new(key));
        tracing::info!(key = %record.name, version = record.version.as_str(), kty = key_type.kty(), "key version created");
        crate::audit::context::key_result(&record);
        Ok(record)
    }
}
