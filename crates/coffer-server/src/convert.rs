//! The only module that knows both the wire types (coffer-api) and the domain types (coffer-core).
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_api::keys as wire;
use coffer_core::Hsm;
use coffer_core::key::{DeletedKey, KeyVersionRecord};
use coffer_core::ops::KeyProperties;
use coffer_core::ops::byok::{ByokImport, decode_base64_lenient};
use coffer_core::ops::create_import::ImportMaterial;
use coffer_crypto::SecretBytes;
use coffer_crypto::keys::{PublicKey, RsaPrivateComponents};

use crate::error::ApiError;

/// Decodes base64url (padding tolerated). `field` names the JSON member in the error.
pub fn b64(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(s.trim_end_matches('='))
        .map_err(|_| ApiError::bad_parameter(format!("The value of '{field}' is not valid base64url.")))
}

fn b64_secret(field: &str, s: &Option<String>) -> Result<SecretBytes, ApiError> {
    let s = s
        .as_deref()
        .ok_or_else(|| ApiError::bad_parameter(format!("The JWK is missing '{field}'.")))?;
    Ok(SecretBytes::new(b64(field, s)?))
}

fn b64_public(field: &str, s: &Option<String>) -> Result<Vec<u8>, ApiError> {
    let s = s
        .as_deref()
        .ok_or_else(|| ApiError::bad_parameter(format!("The JWK is missing '{field}'.")))?;
    b64(field, s)
}

/// Encodes base64url without padding.
pub fn enc(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The versionless and versioned key ids.
pub fn kid(base: &str, rec: &KeyVersionRecord) -> String {
    format!("{base}/keys/{}/{}", rec.name, rec.version.as_str())
}

/// Writable properties from request attributes, tags, key_ops and release policy.
pub fn properties(
    key_ops: Option<Vec<String>>,
    attributes: Option<wire::KeyAttributes>,
    tags: Option<std::collections::BTreeMap<String, String>>,
    release_policy: Option<wire::KeyReleasePolicy>,
) -> Result<KeyProperties, ApiError> {
    let a = attributes.unwrap_or_default();
    let release_policy = match release_policy {
        Some(p) => Some(serde_json::to_string(&p).map_err(|_| ApiError::bad_parameter("invalid release_policy"))?),
        None => None,
    };
    Ok(KeyProperties {
        key_ops,
        enabled: a.enabled,
        not_before: a.nbf,
        expires: a.exp,
        exportable: a.exportable,
        tags,
        release_policy,
    })
}

/// The private material of an imported JWK.
pub fn import_material(jwk: &wire::JsonWebKey) -> Result<ImportMaterial, ApiError> {
    let kty = jwk
        .kty
        .as_deref()
        .ok_or_else(|| ApiError::bad_parameter("The JWK is missing 'kty'."))?;
    if let Some(key_hsm) = &jwk.key_hsm {
        // BYOK: the whole `.byok` file, base64url (padded or not, either alphabet). Private and public members of
        // the JWK are ignored: the key comes from the blob (core checks `kty`/`crv` against it).
        let blob = decode_base64_lenient(key_hsm)
            .ok_or_else(|| ApiError::bad_parameter("The value of 'key_hsm' is not valid base64url."))?;
        return Ok(ImportMaterial::Byok(ByokImport {
            kty: kty.to_string(),
            curve: jwk.crv.clone(),
            blob,
        }));
    }
    let family = coffer_core::key::KeyType::parse_family(kty)?;
    Ok(match family {
        coffer_crypto::keys::KeyFamily::Rsa => ImportMaterial::Rsa(RsaPrivateComponents {
            n: b64_public("n", &jwk.n)?,
            e: b64_public("e", &jwk.e)?,
            d: b64_secret("d", &jwk.d)?,
            p: b64_secret("p", &jwk.p)?,
            q: b64_secret("q", &jwk.q)?,
            dp: b64_secret("dp", &jwk.dp)?,
            dq: b64_secret("dq", &jwk.dq)?,
            qi: b64_secret("qi", &jwk.qi)?,
        }),
        coffer_crypto::keys::KeyFamily::Ec => ImportMaterial::Ec {
            curve: jwk
                .crv
                .clone()
                .ok_or_else(|| ApiError::bad_parameter("The JWK is missing 'crv'."))?,
            d: b64_secret("d", &jwk.d)?,
            x: b64_public("x", &jwk.x)?,
            y: b64_public("y", &jwk.y)?,
        },
        coffer_crypto::keys::KeyFamily::Oct => ImportMaterial::Oct(b64_secret("k", &jwk.k)?),
    })
}

fn attributes(hsm: &Hsm, rec: &KeyVersionRecord) -> wire::KeyAttributes {
    wire::KeyAttributes {
        enabled: Some(rec.attributes.enabled),
        nbf: rec.attributes.not_before,
        exp: rec.attributes.expires,
        created: Some(rec.attributes.created),
        updated: Some(rec.attributes.updated),
        recoverable_days: Some(hsm.retention_days()),
        recovery_level: Some(hsm.recovery_level().to_string()),
        exportable: Some(rec.attributes.exportable),
        hsm_platform: Some("0".into()),
        attestation: None,
    }
}

fn tags(rec: &KeyVersionRecord) -> Option<std::collections::BTreeMap<String, String>> {
    (!rec.tags.is_empty()).then(|| rec.tags.clone())
}

fn release_policy(rec: &KeyVersionRecord) -> Option<wire::KeyReleasePolicy> {
    rec.release_policy.as_deref().and_then(|p| serde_json::from_str(p).ok())
}

/// KeyBundle of a version.
pub fn key_bundle(hsm: &Hsm, base: &str, rec: &KeyVersionRecord) -> wire::KeyBundle {
    let mut key = wire::JsonWebKey {
        kid: Some(kid(base, rec)),
        kty: Some(rec.key_type.kty().to_string()),
        key_ops: Some(rec.key_ops.iter().map(|o| o.name().to_string()).collect()),
        ..Default::default()
    };
    match &rec.public_key {
        PublicKey::Rsa { n, e } => {
            key.n = Some(enc(n));
            key.e = Some(enc(e));
        }
        PublicKey::Ec { curve, x, y } => {
            key.crv = Some(curve.name().to_string());
            key.x = Some(enc(x));
            key.y = Some(enc(y));
        }
        PublicKey::Oct => {}
    }
    wire::KeyBundle {
        key,
        attributes: attributes(hsm, rec),
        tags: tags(rec),
        release_policy: release_policy(rec),
        recovery_id: None,
        scheduled_purge_date: None,
        deleted_date: None,
    }
}

/// DeletedKeyBundle.
pub fn deleted_bundle(hsm: &Hsm, base: &str, d: &DeletedKey) -> wire::KeyBundle {
    let mut b = key_bundle(hsm, base, &d.latest);
    b.recovery_id = Some(format!("{base}/deletedkeys/{}", d.latest.name));
    b.deleted_date = Some(d.deletion.deleted_date);
    b.scheduled_purge_date = Some(d.deletion.scheduled_purge_date);
    b
}

/// KeyItem: versionless kid for key lists, versioned for version lists.
pub fn key_item(hsm: &Hsm, base: &str, rec: &KeyVersionRecord, versioned: bool) -> wire::KeyItem {
    let kid = if versioned {
        kid(base, rec)
    } else {
        format!("{base}/keys/{}", rec.name)
    };
    wire::KeyItem {
        kid,
        attributes: attributes(hsm, rec),
        tags: tags(rec),
        recovery_id: None,
        scheduled_purge_date: None,
        deleted_date: None,
    }
}

/// DeletedKeyItem.
pub fn deleted_item(hsm: &Hsm, base: &str, d: &DeletedKey) -> wire::KeyItem {
    let mut i = key_item(hsm, base, &d.latest, false);
    i.recovery_id = Some(format!("{base}/deletedkeys/{}", d.latest.name));
    i.deleted_date = Some(d.deletion.deleted_date);
    i.scheduled_purge_date = Some(d.deletion.scheduled_purge_date);
    i
}
