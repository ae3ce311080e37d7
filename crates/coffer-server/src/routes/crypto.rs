//! Crypto routes: `POST /keys/{name}/{version}/{encrypt|decrypt|wrapkey|unwrapkey|sign|verify}` (an empty
//! version means the latest) and `POST /rng`.
use axum::http::StatusCode;
use axum::response::Response;
use coffer_api::keys as wire;
use coffer_core::operation::CryptoVerb;
use coffer_core::ops::crypto::{CipherInput, CipherOp, CipherResult};

use super::{Ctx, ok_json};
use crate::convert::{b64, enc};
use crate::error::ApiError;

fn opt_b64(field: &str, v: &Option<String>) -> Result<Option<Vec<u8>>, ApiError> {
    v.as_deref().map(|s| b64(field, s)).transpose()
}

pub(super) async fn operation(
    ctx: &Ctx<'_>,
    name: &str,
    version: &str,
    verb: CryptoVerb,
) -> Result<Response, ApiError> {
    let version = Some(version);
    let cipher_op = match verb {
        CryptoVerb::Encrypt => Some(CipherOp::Encrypt),
        CryptoVerb::Decrypt => Some(CipherOp::Decrypt),
        CryptoVerb::WrapKey => Some(CipherOp::WrapKey),
        CryptoVerb::UnwrapKey => Some(CipherOp::UnwrapKey),
        CryptoVerb::Sign | CryptoVerb::Verify => None,
    };
    let base = &ctx.app.public_url;
    if let Some(cop) = cipher_op {
        let p: wire::KeyOperationsParameters = ctx.json()?;
        let input = CipherInput {
            value: b64("value", &p.value)?,
            iv: opt_b64("iv", &p.iv)?,
            aad: opt_b64("aad", &p.aad)?,
            tag: opt_b64("tag", &p.tag)?,
            alg: p.alg,
        };
        let aad = input.aad.clone();
        let r = ctx.app.hsm.cipher(ctx.principal, cop, name, version, input).await?;
        let kid = format!("{base}/keys/{}/{}", r.name, r.version);
        let out = match r.output {
            CipherResult::Plain(p) => wire::KeyOperationResult {
                kid,
                value: enc(p.expose_secret()),
                iv: None,
                tag: None,
                aad: None,
            },
            CipherResult::Cipher(c) => wire::KeyOperationResult {
                kid,
                value: enc(&c.value),
                iv: c.iv.as_deref().map(enc),
                tag: c.tag.as_deref().map(enc),
                aad: aad.as_deref().map(enc),
            },
        };
        return Ok(ok_json(&out));
    }
    if verb == CryptoVerb::Sign {
        let p: wire::KeySignParameters = ctx.json()?;
        let digest = b64("value", &p.value)?;
        let r = ctx.app.hsm.sign(ctx.principal, name, version, &p.alg, &digest).await?;
        let kid = format!("{base}/keys/{}/{}", r.name, r.version);
        return Ok(ok_json(&wire::KeyOperationResult {
            kid,
            value: enc(&r.output),
            iv: None,
            tag: None,
            aad: None,
        }));
    }
    let p: wire::KeyVerifyParameters = ctx.json()?;
    let digest = b64("digest", &p.digest)?;
    let sig = b64("value", &p.value)?;
    let r = ctx
        .app
        .hsm
        .verify(ctx.principal, name, version, &p.alg, &digest, &sig)
        .await?;
    Ok(ok_json(&wire::KeyVerifyResult { value: r.output }))
}

pub(super) async fn random(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let p: wire::GetRandomBytesRequest = ctx.json()?;
    let bytes = ctx.app.hsm.random_bytes(ctx.principal, p.count).await?;
    Ok(ok_json(&wire::RandomBytes { value: enc(&bytes) }))
}

/// `POST /keys/{name}/{version}/release` (also `/keys/{name}//release` and `/keys/{name}/release`): the signed
/// release JWS (docs/KEY-RELEASE.md).
pub(super) async fn release(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let p: wire::KeyReleaseParameters = ctx.json()?;
    // Taken once, so that a certificate reload during the release cannot mix two certificates.
    let signer = ctx.app.tls.release_signer().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Key release is not available: the server's TLS key cannot sign release responses.",
        )
    })?;
    let req = coffer_core::ops::release::ReleaseRequest {
        target: p.target.unwrap_or_default(),
        enc: p.enc,
    };
    let out = ctx.app.hsm.release_key(ctx.principal, name, version, req).await?;
    let base = &ctx.app.public_url;
    let mut bundle = serde_json::to_value(crate::convert::key_bundle(&ctx.app.hsm, base, &out.record))
        .map_err(|_| ApiError::from(coffer_core::Error::Corrupt("key bundle".into())))?;
    if let Some(key) = bundle.get_mut("key").and_then(serde_json::Value::as_object_mut) {
        key.insert("key_hsm".into(), out.key_hsm.into());
    }
    let requested_kid = match version {
        Some(v) if !v.is_empty() => format!("{base}/keys/{}/{v}", out.record.name),
        _ => format!("{base}/keys/{}", out.record.name),
    };
    let mut request = serde_json::json!({
        "api-version": ctx.api_version,
        "enc": out.enc.name(),
        "kid": requested_kid,
    });
    if let Some(n) = p.nonce {
        request["nonce"] = n.into();
    }
    let payload = serde_json::json!({"request": request, "response": {"key": bundle}});
    let value = signer
        .sign(&payload)
        .map_err(|e| ApiError::from(coffer_core::Error::Crypto(e)))?;
    tracing::debug!(issuer = %out.issuer, "release response signed");
    Ok(ok_json(&wire::KeyReleaseResult { value }))
}
