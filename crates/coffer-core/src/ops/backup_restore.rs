//! Key backup and restore. A backup blob holds every version of one key (attributes, tags, operations and the
//! private material), serialised and sealed with AES-256-GCM under the backup key derived from the domain secret,
//! so it opens only in an instance holding the same domain secret. Restore brings back the whole key under its
//! original name; a live or soft-deleted key of that name is a conflict.
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_crypto::keys::{Curve, PrivateKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::key::{KeyAttributes, KeyName, KeyOperation, KeyType, KeyVersion, KeyVersionRecord};
use crate::ops::read::not_found;
use crate::rbac::{DataAction, Scope};
use crate::store::NewVersionMode;
use crate::{Error, Hsm, Principal};

const MAGIC: &[u8] = b"CofferKeyBackup1";
const AAD: &[u8] = b"coffer/key-backup/v1";

#[derive(Serialize, Deserialize)]
struct Blob {
    name: String,
    versions: Vec<BlobVersion>,
}

#[derive(Serialize, Deserialize)]
struct BlobVersion {
    version: String,
    kty: String,
    size: u32,
    crv: Option<String>,
    key_ops: Vec<String>,
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
    exportable: bool,
    tags: BTreeMap<String, String>,
    release_policy: Option<String>,
    material: String,
    /// How the version came to be (absent in blobs made before Coffer recorded it).
    #[serde(default)]
    origin: Option<String>,
}

impl Drop for BlobVersion {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.material);
    }
}

/// One version of an opened blob: its record (material not yet sealed for this instance) and its key.
fn parse_version(name: &KeyName, v: &BlobVersion) -> Result<(KeyVersionRecord, PrivateKey), Error> {
    let curve = match &v.crv {
        Some(c) => Some(Curve::parse(c).ok_or_else(invalid_blob)?),
        None => None,
    };
    let key_type = match (v.kty.as_str(), curve) {
        ("RSA", None) => KeyType::Rsa(v.size),
        ("EC", Some(c)) => KeyType::Ec(c),
        ("oct", None) => KeyType::Oct(v.size),
        _ => return Err(invalid_blob()),
    };
    let material = Zeroizing::new(B64.decode(&v.material).map_err(|_| invalid_blob())?);
    let key = PrivateKey::from_storage_bytes(key_type.family(), curve, &material).map_err(|_| invalid_blob())?;
    let ops = v
        .key_ops
        .iter()
        .map(|o| KeyOperation::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let rec = KeyVersionRecord {
        name: name.clone(),
        version: KeyVersion::parse(&v.version).ok_or_else(invalid_blob)?,
        key_type,
        public_key: key.public_key(),
        key_ops: ops,
        attributes: KeyAttributes {
            enabled: v.enabled,
            not_before: v.nbf,
            expires: v.exp,
            created: v.created,
            updated: v.updated,
            exportable: v.exportable,
        },
        tags: v.tags.clone(),
        release_policy: v.release_policy.clone(),
        sealed_material: Vec::new(),
        origin: v.origin.as_deref().and_then(crate::key::KeyOrigin::parse),
    };
    Ok((rec, key))
}

/// Fuzzing entry (`fuzz/`): everything [`Hsm::restore_key`] does with the JSON of an opened (unsealed) blob before
/// sealing and storing it. Returns the number of versions.
#[doc(hidden)]
pub fn fuzz_parse_opened_blob(json: &[u8]) -> Result<usize, Error> {
    let parsed: Blob = serde_json::from_slice(json).map_err(|_| invalid_blob())?;
    let name = KeyName::parse(&parsed.name).map_err(|_| invalid_blob())?;
    for v in &parsed.versions {
        parse_version(&name, v)?;
    }
    Ok(parsed.versions.len())
}

/// A sample opened blob holding `key` as version `0123…`, as [`Hsm::backup_key`] writes it (a fuzzing seed).
#[doc(hidden)]
pub fn fuzz_sample_opened_blob(key: &PrivateKey, kty: &str) -> Result<Vec<u8>, Error> {
    let blob = Blob {
        name: "seed-key".into(),
        versions: vec![BlobVersion {
            version: "0123456789abcdef0123456789abcdef".into(),
            kty: kty.into(),
            size: key.size_bits(),
            crv: key.curve().map(|c| c.name().to_string()),
            key_ops: vec!["sign".into(), "verify".into()],
            enabled: true,
            nbf: None,
            exp: Some(2_000_000_000),
            created: 1_700_000_000,
            updated: 1_700_000_000,
            exportable: false,
            tags: BTreeMap::from([("env".to_string(), "test".to_string())]),
            release_policy: None,
            material: B64.encode(key.to_storage_bytes()?.expose_secret()),
            origin: Some("generated".into()),
        }],
    };
    serde_json::to_vec(&blob).map_err(|e| Error::Corrupt(e.to_string()))
}

fn invalid_blob() -> Error {
    Error::BadParameter("The backup blob is invalid, was tampered with, or was made by another security domain.".into())
}

impl Hsm {
    /// BackupKey: an opaque blob of all versions.
    pub async fn backup_key(&self, caller: &Principal, name: &str) -> Result<Vec<u8>, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysBackup, &Scope::Key(key_name.to_string()))
            .await?;
        let records = self.store.all_versions(&key_name).await?;
        if records.is_empty() {
            return Err(not_found(name));
        }
        let mut versions = Vec::with_capacity(records.len());
        for r in &records {
            let key = self.private_key(r).await?;
            let material = key.to_storage_bytes()?;
            versions.push(BlobVersion {
                version: r.version.as_str().to_string(),
                kty: r.key_type.storage_tag().to_string(),
                size: key.size_bits(),
                crv: key.curve().map(|c| c.name().to_string()),
                key_ops: r.key_ops.iter().map(|o| o.name().to_string()).collect(),
                enabled: r.attributes.enabled,
                nbf: r.attributes.not_before,
                exp: r.attributes.expires,
                created: r.attributes.created,
                updated: r.attributes.updated,
                exportable: r.attributes.exportable,
                tags: r.tags.clone(),
                release_policy: r.release_policy.clone(),
                material: B64.encode(material.expose_secret()),
                origin: r.origin.map(|o| o.name().to_string()),
            });
        }
        let blob = Blob {
            name: key_name.to_string(),
            versions,
        };
        let json = Zeroizing::new(serde_json::to_vec(&blob).map_err(|e| Error::Corrupt(e.to_string()))?);
        let sealed = coffer_crypto::seal::seal(&self.derived().backup, AAD, &json)?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&sealed);
        tracing::info!(key = %key_name, versions = records.len(), "key backed up");
        Ok(out)
    }

    /// RestoreKey: brings back a key from a backup blob.
    pub async fn restore_key(&self, caller: &Principal, blob: &[u8]) -> Result<KeyVersionRecord, Error> {
        // The blob names the key only inside the sealed part; authorize on /keys first, then on the key itself.
        self.authorize(caller, DataAction::KeysRestore, &Scope::Keys).await?;
        let sealed = blob.strip_prefix(MAGIC).ok_or_else(invalid_blob)?;
        let json = coffer_crypto::seal::open(&self.derived().backup, AAD, sealed).map_err(|_| invalid_blob())?;
        let parsed: Blob = serde_json::from_slice(json.expose_secret()).map_err(|_| invalid_blob())?;
        let name = KeyName::parse(&parsed.name).map_err(|_| invalid_blob())?;
        self.authorize(caller, DataAction::KeysRestore, &Scope::Key(name.to_string()))
            .await?;
        let mut records = Vec::with_capacity(parsed.versions.len());
        for v in &parsed.versions {
            let (mut rec, key) = parse_version(&name, v)?;
            rec.sealed_material = self.seal_material(&key, &rec)?;
            records.push((rec, key));
        }
        let Some(latest) = records.last().map(|(r, _)| r.clone()) else {
            return Err(invalid_blob());
        };
        let recs: Vec<KeyVersionRecord> = records.iter().map(|(r, _)| r.clone()).collect();
        self.store
            .insert_versions(&recs, NewVersionMode::RestoreWholeKey)
            .await?;
        self.cache.invalidate(name.as_str());
        for (r, k) in records {
            self.cache.insert(r.name.as_str(), r.version.as_str(), Arc::new(k));
        }
        tracing::info!(key = %name, versions = recs.len(), "key restored");
        Ok(latest)
    }
}
