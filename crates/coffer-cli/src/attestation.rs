//! `coffer key verify-attestation`: checks offline what `GET /keys/{name}[/{version}]/attestation` (or
//! `az keyvault key get-attestation`) returned: the statement's signature under the attestation certificate, that
//! the certificate is the one the caller pinned (its SHA-256), and that the statement is about this key (its `kid`
//! and public key). Prints the attested facts; fails on any mismatch. Format: docs/KEY-ATTESTATION.md.
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn b64_text(v: &Value, what: &str) -> anyhow::Result<String> {
    let s = v.as_str().with_context(|| format!("the attestation has no {what}"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .with_context(|| format!("{what} is not base64url"))?;
    String::from_utf8(bytes).with_context(|| format!("{what} is not text"))
}

/// Verifies the key bundle in `file`; `root_sha256` (base64url or hex) pins the attestation certificate.
pub fn verify(file: &Path, root_sha256: Option<&str>) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle: Value = serde_json::from_str(&text).context("the file is not JSON")?;
    let att = &bundle["attributes"]["attestation"];
    if !att.is_object() {
        bail!("the key bundle has no attributes.attestation");
    }
    let pem = b64_text(&att["certificatePemFile"], "certificatePemFile")?;
    let cert = coffer_crypto::x509::certificates_from_pem(&pem)
        .ok()
        .and_then(|c| c.into_iter().next())
        .context("certificatePemFile holds no certificate")?;
    let fingerprint = coffer_crypto::x509::thumbprint_sha256(&cert);
    let hex_fingerprint: String = URL_SAFE_NO_PAD
        .decode(&fingerprint)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(pin) = root_sha256 {
        let pin = pin.trim().replace(':', "").to_ascii_lowercase();
        if pin != fingerprint.to_ascii_lowercase() && pin != hex_fingerprint {
            bail!("the attestation certificate is not the pinned one (its SHA-256 is {hex_fingerprint})");
        }
    }
    let statement = b64_text(&att["privateKeyAttestation"], "privateKeyAttestation")?;
    let claims = coffer_crypto::attestation::verify_statement(&statement, &cert)
        .map_err(|e| anyhow::anyhow!("privateKeyAttestation: {e}"))?;
    let kid = bundle["key"]["kid"].as_str().context("the key bundle has no key.kid")?;
    if claims["kid"] != kid {
        bail!("the attestation is about {} but the key bundle is {kid}", claims["kid"]);
    }
    let key = &bundle["key"];
    let public = &claims["publicKey"];
    if public.is_object() {
        for member in ["n", "e", "x", "y", "crv"] {
            if public.get(member).is_some() && public[member] != key[member] {
                bail!("the attested public key differs from the key bundle's ({member})");
            }
        }
    }
    if let Some(p) = att.get("publicKeyAttestation").filter(|v| !v.is_null()) {
        let jws = b64_text(p, "publicKeyAttestation")?;
        let pk = coffer_crypto::attestation::verify_statement(&jws, &cert)
            .map_err(|e| anyhow::anyhow!("publicKeyAttestation: {e}"))?;
        if pk["kid"] != kid || pk["jwk"] != *public {
            bail!("publicKeyAttestation is about another key");
        }
    }
    if root_sha256.is_none() {
        eprintln!(
            "warning: no --root-sha256: the signature was checked against the certificate in the same file, so this \
             proves nothing about who made it; pin the instance's attestation certificate ({hex_fingerprint})"
        );
    }
    Ok(json!({
        // Verified means: signed by the pinned certificate. Without a pin only the signature's consistency is known.
        "verified": root_sha256.is_some(),
        "signatureValid": true,
        "kid": kid,
        "origin": claims["origin"],
        "generatedInHsm": claims["generatedInHsm"],
        "exportable": claims["exportable"],
        "releasePolicy": claims["releasePolicy"],
        "instance": claims["instance"],
        "format": claims["format"],
        "certificateSha256": hex_fingerprint,
        "certificatePinned": root_sha256.is_some(),
    }))
}
