//! Secure Key Release (`POST /keys/{name}/{version}/release`, docs/KEY-RELEASE.md): an exportable key leaves the
//! HSM wrapped for the RSA key of an attested TEE. The caller needs `keys/release/action`; the body's `target` is
//! an attestation token signed by a configured attestation authority, whose claims must satisfy the key's release
//! policy. The server signs the response (coffer-server); here the rules and the wrap.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_crypto::release::{ReleaseEnc, release_wrap};
use serde_json::{Value, json};

use crate::key::{KeyName, KeyVersionRecord};
use crate::ops::read::not_found;
use crate::rbac::{DataAction, Scope};
use crate::release_policy::{self, normalize_issuer};
use crate::{Error, Hsm, Principal};

/// Clock skew allowed on attestation tokens, seconds.
pub const ATTESTATION_LEEWAY_SECS: u64 = 60;

/// A release request (decoded from the wire).
#[derive(Debug, Clone, Default)]
pub struct ReleaseRequest {
    /// The attestation token (JWT).
    pub target: String,
    /// `CKM_RSA_AES_KEY_WRAP` (default), `RSA_AES_KEY_WRAP_256` or `RSA_AES_KEY_WRAP_384`.
    pub enc: Option<String>,
}

/// What the server signs.
#[derive(Debug)]
pub struct ReleaseOutcome {
    pub record: KeyVersionRecord,
    /// The algorithm actually used.
    pub enc: ReleaseEnc,
    /// base64url of the `key_hsm` transfer blob.
    pub key_hsm: String,
    /// The token's `iss`.
    pub issuer: String,
}

fn forbidden(msg: impl Into<String>) -> Error {
    Error::Forbidden(msg.into())
}

/// The first RSA key of `x-ms-runtime.keys` meant for encryption (`key_use`/`use` = `enc`, or `key_ops` holding
/// `encrypt`): its `kid`, `n`, `e`.
fn runtime_key(claims: &Value) -> Result<(String, Vec<u8>, Vec<u8>), Error> {
    let keys = claims
        .get("x-ms-runtime")
        .and_then(|r| r.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| Error::BadParameter("The attestation token has no x-ms-runtime.keys.".into()))?;
    let for_enc = |k: &&Value| {
        k["kty"].as_str() == Some("RSA")
            && (k["key_use"].as_str() == Some("enc")
                || k["use"].as_str() == Some("enc")
                || k["key_ops"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|x| x.as_str() == Some("encrypt"))))
    };
    let k = keys.iter().find(for_enc).ok_or_else(|| {
        Error::BadParameter("The attestation token has no RSA encryption key in x-ms-runtime.keys.".into())
    })?;
    let part = |m: &str| {
        k[m].as_str()
            .and_then(crate::ops::byok::decode_base64_lenient)
            .ok_or_else(|| Error::BadParameter(format!("The runtime key's '{m}' is missing or not base64url.")))
    };
    Ok((
        k["kid"].as_str().unwrap_or_default().to_string(),
        part("n")?,
        part("e")?,
    ))
}

impl Hsm {
    /// Releases an exportable key to the TEE described by `req.target`.
    pub async fn release_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        req: ReleaseRequest,
    ) -> Result<ReleaseOutcome, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysRelease, &Scope::Key(key_name.to_string()))
            .await?;
        let enc = match req.enc.as_deref() {
            None | Some("") => ReleaseEnc::CkmRsaAesKeyWrap,
            Some(e) => ReleaseEnc::parse(e)
                .ok_or_else(|| Error::BadParameter(format!("The release algorithm '{e}' is not supported.")))?,
        };
        if req.target.is_empty() {
            return Err(Error::BadParameter(
                "The release target (attestation token) is required.".into(),
            ));
        }
        let rec = self.load_version(&key_name, version).await?;
        let now = self.clock.now();
        if !rec.attributes.exportable {
            return Err(forbidden(format!(
                "Key '{key_name}' is not exportable and cannot be released."
            )));
        }
        self.check_lifetime(&rec, "release", true)?;
        let policy = rec
            .release_policy
            .as_deref()
            .ok_or_else(|| forbidden(format!("Key '{key_name}' has no release policy.")))
            .and_then(release_policy::from_stored)?;

        let peek = coffer_crypto::jwt::peek(&req.target)
            .map_err(|_| Error::BadParameter("The release target is not a valid attestation token (JWT).".into()))?;
        let issuer = peek
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadParameter("The attestation token has no 'iss' claim.".into()))?
            .to_string();
        let iss_norm = normalize_issuer(&issuer);
        let trusted = self
            .config
            .attestation_authorities
            .iter()
            .find(|a| normalize_issuer(&a.issuer) == iss_norm);
        crate::audit::context::key_release(json!({
            "attestationIssuer": issuer,
            "authority": trusted.map(|a| a.issuer.as_str()),
        }));
        let authority = trusted.ok_or_else(|| {
            forbidden(format!(
                "The attestation authority '{issuer}' is not trusted by this HSM."
            ))
        })?;
        if policy.authorities_for(&issuer).next().is_none() {
            return Err(forbidden(format!(
                "The key's release policy does not accept attestation authority '{issuer}'."
            )));
        }
        let fetcher = self
            .fetcher
            .as_deref()
            .ok_or_else(|| forbidden("No attestation key fetcher is configured."))?;
        let jwks = self
            .key_sets
            .key_set(fetcher, authority, peek.kid.as_deref(), now)
            .await
            .map_err(|_| {
                forbidden(format!(
                    "The signing keys of attestation authority '{issuer}' are unavailable."
                ))
            })?;
        let now_u = u64::try_from(now).unwrap_or_default();
        let claims = coffer_crypto::jwt::verify_attestation(
            &req.target,
            &jwks,
            &authority.algorithms,
            now_u,
            ATTESTATION_LEEWAY_SECS,
        )
        .map_err(|e| match e {
            coffer_crypto::Error::TokenRejected(why) => {
                forbidden(format!("The attestation token was rejected: {why}."))
            }
            _ => forbidden("The attestation token was rejected."),
        })?;
        if !policy.evaluate(&issuer, &claims) {
            return Err(forbidden(
                "The attestation token's claims do not satisfy the key's release policy.",
            ));
        }
        let (tee_kid, n, e) = runtime_key(&claims)?;
        let key = self.private_key(&rec).await?;
        let material = key.to_storage_bytes().map_err(Error::Crypto)?;
        let ciphertext = release_wrap(&n, &e, enc, &material).map_err(|err| match err {
            coffer_crypto::Error::InvalidKey(why) => {
                Error::BadParameter(format!("The runtime key is unusable: {why}."))
            }
            other => Error::Crypto(other),
        })?;
        let blob = json!({
            "schema_version": "1.0",
            "header": {"kid": tee_kid, "alg": "dir", "enc": enc.name()},
            "ciphertext": URL_SAFE_NO_PAD.encode(&ciphertext),
        });
        tracing::info!(key = %key_name, version = rec.version.as_str(), issuer = %issuer, "key released");
        Ok(ReleaseOutcome {
            record: rec,
            enc,
            key_hsm: URL_SAFE_NO_PAD.encode(blob.to_string()),
            issuer,
        })
    }
}
