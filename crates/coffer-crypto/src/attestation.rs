//! Key attestation: statements about how a key came to be, signed (ES256, compact JWS) by an attestation key that
//! signs nothing else, with a self-signed certificate for that key that a verifier pins (its SHA-256) and checks
//! offline.
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{CertificateParams, KeyPair, KeyUsagePurpose};
use serde_json::Value;

use crate::jwt::TokenSigningKey;
use crate::x509::{common_name_dn, random_serial, set_validity, unix_now};
use crate::{Error, SecretBytes};

/// Validity of the attestation certificate.
const VALIDITY_DAYS: i64 = 3650;
/// OID of id-ecPublicKey and of the P-256 curve.
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";

/// An instance's attestation key (P-256) and its self-signed certificate.
pub struct AttestationKey {
    signer: TokenSigningKey,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttestationKey(..)")
    }
}

impl AttestationKey {
    /// A new key with a self-signed certificate (`common_name` names the instance).
    pub fn generate(common_name: &str) -> Result<Self, Error> {
        let signer = TokenSigningKey::generate()?;
        let pkcs8 = signer.to_pkcs8()?;
        let pair = KeyPair::try_from(pkcs8.expose_secret()).map_err(|_| Error::Unspecified)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, unix_now()?, VALIDITY_DAYS)?;
        let cert = params.self_signed(&pair).map_err(|_| Error::Unspecified)?;
        Ok(Self {
            signer,
            cert_der: cert.der().to_vec(),
        })
    }

    /// Loads a stored key and certificate.
    pub fn from_parts(pkcs8: &SecretBytes, cert_der: Vec<u8>) -> Result<Self, Error> {
        Ok(Self {
            signer: TokenSigningKey::from_pkcs8(pkcs8)?,
            cert_der,
        })
    }

    /// PKCS#8 DER of the private key, for sealed storage.
    pub fn pkcs8(&self) -> Result<SecretBytes, Error> {
        self.signer.to_pkcs8()
    }

    /// The certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate (PEM).
    pub fn cert_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.cert_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// Signs a statement (a JSON object) as a compact JWS (ES256).
    pub fn sign(&self, statement: &Value) -> Result<String, Error> {
        self.signer.sign(statement)
    }
}

/// Verifies a statement signed by the key of `cert_pem` (a P-256 certificate); returns its claims. The caller
/// decides whether it trusts the certificate (for example by its SHA-256, [`crate::x509::thumbprint_sha256`]).
pub fn verify_statement(jws: &str, cert_der: &[u8]) -> Result<Value, Error> {
    let bad = |m: &'static str| Error::InvalidParameter(m);
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|_| bad("the attestation certificate is not X.509"))?;
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if alg != EC_PUBLIC_KEY || curve.as_deref() != Some(P256) {
        return Err(bad("the attestation certificate's key is not P-256"));
    }
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("the attestation is not a compact JWS"));
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| bad("bad JWS header"))?)
        .map_err(|_| bad("bad JWS header"))?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(bad("the attestation is not ES256"));
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad("bad JWS signature"))?;
    let signed = format!("{h}.{p}");
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spki.subject_public_key.data.as_ref())
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| bad("the attestation signature does not verify"))?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| bad("bad JWS payload"))?)
        .map_err(|_| bad("bad JWS payload"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_verifies_under_its_certificate_and_not_when_changed() {
        let k = AttestationKey::generate("test attestation").unwrap();
        let jws = k.sign(&serde_json::json!({"origin": "generated"})).unwrap();
        assert_eq!(verify_statement(&jws, k.cert_der()).unwrap()["origin"], "generated");
        let reloaded = AttestationKey::from_parts(&k.pkcs8().unwrap(), k.cert_der().to_vec()).unwrap();
        assert!(verify_statement(&reloaded.sign(&serde_json::json!({})).unwrap(), k.cert_der()).is_ok());
        let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"origin":"imported"}"#);
        assert!(
            verify_statement(&parts.join("."), k.cert_der()).is_err(),
            "tampered payload"
        );
        let other = AttestationKey::generate("other").unwrap();
        assert!(
            verify_statement(&jws, other.cert_der()).is_err(),
            "another key's certificate"
        );
        assert!(k.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
