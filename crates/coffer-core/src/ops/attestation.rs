//! Key attestation (`GET /keys/{name}[/{version}]/attestation`): a statement of how a key version came to be
//! (generated inside an instance holding this security domain, imported in plaintext, or imported from a `.byok`
//! blob) and whether it can leave the HSM (exportable, release policy), signed by the instance's attestation key,
//! which signs nothing else (not tokens, not TLS). Azure's attestation carries a hardware vendor's format that
//! software cannot produce; Coffer's format is documented in docs/KEY-ATTESTATION.md and checked offline by
//! `coffer key verify-attestation`.
//!
//! The attestation key (P-256) is made on first use, sealed by the seal provider and kept in the store, so every node
//! and every restart attests with the same certificate.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::attestation::AttestationKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::key::{KeyName, KeyVersionRecord};
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// `meta` entry of the sealed attestation key.
const ATTESTATION_KEY: &str = "key_attestation_key";
/// The statement format.
pub const FORMAT: &str = "coffer-key-attestation/1";

/// Serialises the first generation of the attestation key within this process.
static INIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Serialize, Deserialize)]
struct Stored {
    sealed_key: String,
    cert: String,
}

fn aad(instance_id: &str) -> Vec<u8> {
    format!("coffer/key-attestation-key/v1|{instance_id}").into_bytes()
}

/// An attestation as the service returns it in `attributes.attestation` (the blobs are base64url on the wire).
#[derive(Debug, Clone)]
pub struct KeyAttestation {
    /// The attestation certificate, PEM.
    pub certificate_pem: String,
    /// The statement about the key version (compact JWS).
    pub private_key_attestation: String,
    /// For asymmetric keys, a statement binding the public key (compact JWS).
    pub public_key_attestation: Option<String>,
    pub version: String,
}

impl Hsm {
    async fn attestation_key(&self) -> Result<AttestationKey, Error> {
        let aad = aad(&self.instance.instance_id);
        let load = |stored: &str| -> Result<AttestationKey, Error> {
            let s: Stored =
                serde_json::from_str(stored).map_err(|e| Error::Corrupt(format!("attestation key: {e}")))?;
            let sealed = STANDARD
                .decode(&s.sealed_key)
                .map_err(|e| Error::Corrupt(format!("attestation key: {e}")))?;
            let cert = STANDARD
                .decode(&s.cert)
                .map_err(|e| Error::Corrupt(format!("attestation key: {e}")))?;
            Ok(AttestationKey::from_parts(&self.seal.open(&aad, &sealed)?, cert)?)
        };
        if let Some(v) = self.store.meta(ATTESTATION_KEY).await? {
            return load(&v);
        }
        let _g = INIT.lock().await;
        if let Some(v) = self.store.meta(ATTESTATION_KEY).await? {
            return load(&v);
        }
        let key = AttestationKey::generate(&format!(
            "Coffer key attestation, instance {}",
            self.instance.instance_id
        ))?;
        let stored = Stored {
            sealed_key: STANDARD.encode(self.seal.seal(&aad, key.pkcs8()?.expose_secret())?),
            cert: STANDARD.encode(key.cert_der()),
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.store.put_meta(ATTESTATION_KEY, &json, self.clock.now()).await?;
        tracing::info!("key attestation key created");
        Ok(key)
    }

    /// GetKeyAttestation: the key version and its attestation.
    pub async fn key_attestation(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        kid: impl Fn(&KeyVersionRecord) -> String,
    ) -> Result<(KeyVersionRecord, KeyAttestation), Error> {
        let key_name = KeyName::parse(name).map_err(|_| Error::NotFound {
            code: "KeyNotFound",
            message: format!("A key with (name/id) {name} was not found in this key vault."),
        })?;
        self.authorize(caller, DataAction::KeysRead, &Scope::Key(key_name.to_string()))
            .await?;
        let rec = self.load_version(&key_name, version).await?;
        let key = self.attestation_key().await?;
        let statement = statement(&rec, &kid(&rec), &self.instance.instance_id, self.clock.now());
        let private_key_attestation = key.sign(&statement)?;
        let public_key_attestation = match public_jwk(&rec) {
            Some(jwk) => Some(key.sign(&json!({"format": FORMAT, "kid": kid(&rec), "jwk": jwk}))?),
            None => None,
        };
        Ok((
            rec,
            KeyAttestation {
                certificate_pem: key.cert_pem(),
                private_key_attestation,
                public_key_attestation,
                version: FORMAT.to_string(),
            },
        ))
    }
}

/// The public key of an asymmetric version as a JWK (`None` for oct).
fn public_jwk(rec: &KeyVersionRecord) -> Option<Value> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B;
    match &rec.public_key {
        coffer_crypto::keys::PublicKey::Rsa { n, e } => Some(json!({"kty": "RSA", "n": B.encode(n), "e": B.encode(e)})),
        coffer_crypto::keys::PublicKey::Ec { curve, x, y } => {
            Some(json!({"kty": "EC", "crv": curve.name(), "x": B.encode(x), "y": B.encode(y)}))
        }
        coffer_crypto::keys::PublicKey::Oct => None,
    }
}

/// The attested facts. An imported (or BYOK, or unrecorded) version is never attested as generated, and an
/// exportable one never as non-exportable: the facts come from the stored record, which only the server writes.
fn statement(rec: &KeyVersionRecord, kid: &str, instance_id: &str, now: i64) -> Value {
    let origin = rec.origin.map_or("unknown", |o| o.name());
    let (size, crv) = match rec.key_type {
        crate::key::KeyType::Rsa(b) | crate::key::KeyType::Oct(b) => (Some(b), None),
        crate::key::KeyType::Ec(c) => (None, Some(c.name())),
    };
    json!({
        "format": FORMAT,
        "instance": instance_id,
        "kid": kid,
        "kty": rec.key_type.kty(),
        "keySize": size,
        "crv": crv,
        "publicKey": public_jwk(rec),
        "origin": origin,
        "generatedInHsm": origin == "generated",
        "exportable": rec.attributes.exportable,
        "releasePolicy": rec.release_policy.is_some(),
        "created": rec.attributes.created,
        "iat": now,
    })
}
