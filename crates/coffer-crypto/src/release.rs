//! Secure Key Release: wrapping an exportable key for a TEE's RSA public key, and the signed JWS the release
//! response carries (docs/KEY-RELEASE.md).
//!
//! The wrap is the BYOK construction pointed the other way: `RSA-OAEP(H, MGF1-H)(tee_pub, K) || AES-KWP(K, key)`
//! (RFC 5649) with a fresh AES-256 `K`. `H` is SHA-1 for `CKM_RSA_AES_KEY_WRAP`, SHA-256 for `RSA_AES_KEY_WRAP_256`
//! and SHA-384 for `RSA_AES_KEY_WRAP_384`.
//!
//! The response JWS is signed with the server's TLS key and carries its certificate chain in `x5c`, as Key Vault
//! does: Microsoft's clients verify with `x5c[0]` and then validate the chain for the HSM host name.
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OaepAlgorithm, PublicEncryptingKey,
    PublicKeyComponents,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::{Error, SecretBytes, hash, x509};

/// Smallest accepted TEE wrapping key.
pub const MIN_TEE_KEY_BITS: usize = 2048;

/// The release `enc` (KeyEncryptionAlgorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseEnc {
    /// OAEP with SHA-1 (the default).
    CkmRsaAesKeyWrap,
    /// OAEP with SHA-256.
    RsaAesKeyWrap256,
    /// OAEP with SHA-384.
    RsaAesKeyWrap384,
}

impl ReleaseEnc {
    /// Parses the wire name (exact spelling).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CKM_RSA_AES_KEY_WRAP" => Some(Self::CkmRsaAesKeyWrap),
            "RSA_AES_KEY_WRAP_256" => Some(Self::RsaAesKeyWrap256),
            "RSA_AES_KEY_WRAP_384" => Some(Self::RsaAesKeyWrap384),
            _ => None,
        }
    }
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CkmRsaAesKeyWrap => "CKM_RSA_AES_KEY_WRAP",
            Self::RsaAesKeyWrap256 => "RSA_AES_KEY_WRAP_256",
            Self::RsaAesKeyWrap384 => "RSA_AES_KEY_WRAP_384",
        }
    }
    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            Self::CkmRsaAesKeyWrap => &OAEP_SHA1_MGF1SHA1,
            Self::RsaAesKeyWrap256 => &OAEP_SHA256_MGF1SHA256,
            Self::RsaAesKeyWrap384 => &OAEP_SHA384_MGF1SHA384,
        }
    }
}

/// Wraps `key_material` (PKCS#8 DER for RSA/EC, raw bytes for oct) for the TEE RSA public key (`n`, `e`
/// big-endian): `RSA-OAEP(H)(tee, K) || AES-KWP(K, key_material)` with a fresh 32-byte `K`. The RSA part is exactly
/// the modulus length. Refuses moduli below 2048 bits.
pub fn release_wrap(n: &[u8], e: &[u8], enc: ReleaseEnc, key_material: &SecretBytes) -> Result<Vec<u8>, Error> {
    let public: PublicEncryptingKey = PublicKeyComponents { n, e }
        .try_into()
        .map_err(|_| Error::InvalidKey("not a valid RSA public key"))?;
    if public.key_size_bits() < MIN_TEE_KEY_BITS {
        return Err(Error::InvalidKey(
            "the wrapping key must be an RSA key of at least 2048 bits",
        ));
    }
    crate::byok::rsa_aes_kwp_wrap(public, enc.oaep(), 32, key_material.expose_secret())
}

enum SignerKey {
    Ec256(EcdsaKeyPair),
    Ec384(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// Signs release responses: the server's TLS key and certificate chain.
pub struct JwsSigner {
    key: SignerKey,
    /// The certificate chain, DER, leaf first.
    chain: Vec<Vec<u8>>,
    /// base64url of the protected header (the same for every response).
    header_b64: String,
}

impl std::fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwsSigner(..)")
    }
}

impl JwsSigner {
    /// From a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1
    /// `RSA PRIVATE KEY`; P-256, P-384 or RSA). The leaf's public key must be the key's.
    pub fn from_pem(chain_pem: &str, key_pem: &SecretBytes) -> Result<Self, Error> {
        let chain = x509::certificates_from_pem(chain_pem)?;
        let block = x509_parser::pem::Pem::iter_from_buffer(key_pem.expose_secret())
            .filter_map(Result::ok)
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .ok_or(Error::InvalidKey("no PRIVATE KEY block in the key PEM"))?;
        let der = SecretBytes::new(block.contents);
        let d = der.expose_secret();
        let key = if block.label == "RSA PRIVATE KEY" {
            SignerKey::Rsa(RsaKeyPair::from_der(d).map_err(|_| Error::InvalidKey("bad RSA private key"))?)
        } else if let Ok(k) = EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, d) {
            SignerKey::Ec256(k)
        } else if let Ok(k) = EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, d) {
            SignerKey::Ec384(k)
        } else {
            SignerKey::Rsa(RsaKeyPair::from_pkcs8(d).map_err(|_| Error::InvalidKey("unsupported signing key"))?)
        };
        let leaf = chain
            .first()
            .ok_or(Error::InvalidParameter("empty certificate chain"))?;
        let leaf_key = certificate_public_key(leaf)?;
        let own = match &key {
            SignerKey::Ec256(k) | SignerKey::Ec384(k) => signature::KeyPair::public_key(k).as_ref().to_vec(),
            // The PKCS#1 RSAPublicKey, as in the certificate's subjectPublicKey.
            SignerKey::Rsa(k) => signature::KeyPair::public_key(k).as_ref().to_vec(),
        };
        if own != leaf_key {
            return Err(Error::InvalidKey("the signing key does not match the certificate"));
        }
        let kid: String = hash::sha1(leaf).iter().map(|b| format!("{b:02X}")).collect();
        let header = serde_json::json!({
            "alg": alg_of(&key),
            "kid": kid,
            "x5t": x509::thumbprint_sha1(leaf),
            "typ": "JWT",
            "x5t#S256": x509::thumbprint_sha256(leaf),
            "x5c": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>(),
        });
        let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| Error::Unspecified)?);
        Ok(Self { key, chain, header_b64 })
    }

    /// The JWS `alg`.
    pub fn alg(&self) -> &'static str {
        alg_of(&self.key)
    }

    /// The certificate chain (DER, leaf first) that goes into `x5c`.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Compact JWS over `payload` with header `{alg, kid (SHA-1 hex upper), x5t, typ: JWT, x5t#S256, x5c}`.
    pub fn sign(&self, payload: &Value) -> Result<String, Error> {
        let p = serde_json::to_vec(payload).map_err(|_| Error::Unspecified)?;
        let input = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(p));
        let rng = SystemRandom::new();
        let sig = match &self.key {
            SignerKey::Ec256(k) | SignerKey::Ec384(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|_| Error::Unspecified)?
                .as_ref()
                .to_vec(),
            SignerKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| Error::Unspecified)?;
                sig
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn alg_of(key: &SignerKey) -> &'static str {
    match key {
        SignerKey::Ec256(_) => "ES256",
        SignerKey::Ec384(_) => "ES384",
        SignerKey::Rsa(_) => "RS256",
    }
}

/// The subjectPublicKey bits of a certificate (EC: the uncompressed point; RSA: the PKCS#1 RSAPublicKey).
fn certificate_public_key(der: &[u8]) -> Result<Vec<u8>, Error> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| Error::InvalidParameter("certificate does not parse"))?;
    Ok(cert.tbs_certificate.subject_pki.subject_public_key.data.to_vec())
}

/// Verifies a release JWS the way Microsoft's clients do: with the public key of the header's `x5c[0]` and the
/// header's `alg` (RS256, ES256, ES384). Returns the header and the payload. The certificate chain itself is not
/// validated here (callers compare `x5c` with the CA they trust).
pub fn verify_release_jws(jws: &str) -> Result<(Value, Value), Error> {
    let bad = |why: &'static str| Error::InvalidParameter(why);
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not a compact JWS"));
    };
    let decode = |x: &str| URL_SAFE_NO_PAD.decode(x).map_err(|_| bad("bad base64url"));
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| bad("bad header"))?;
    let payload: Value = serde_json::from_slice(&decode(p)?).map_err(|_| bad("bad payload"))?;
    let sig = decode(s)?;
    let leaf = header["x5c"][0].as_str().ok_or(bad("no x5c"))?;
    let leaf = STANDARD.decode(leaf).map_err(|_| bad("bad x5c"))?;
    let key = certificate_public_key(&leaf)?;
    let alg: &'static dyn signature::VerificationAlgorithm = match header["alg"].as_str() {
        Some("ES256") => &signature::ECDSA_P256_SHA256_FIXED,
        Some("ES384") => &signature::ECDSA_P384_SHA384_FIXED,
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(bad("unsupported alg")),
    };
    let input = format!("{h}.{p}");
    UnparsedPublicKey::new(alg, key)
        .verify(input.as_bytes(), &sig)
        .map_err(|_| Error::DecryptFailed)?;
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm) -> (String, SecretBytes) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), SecretBytes::new(key.serialize_pem().into_bytes()))
    }

    #[test]
    fn signs_and_verifies_with_ec_and_rsa_certificates() {
        for (alg, name) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, "ES256"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ES384"),
            (&rcgen::PKCS_RSA_SHA256, "RS256"),
        ] {
            let (chain, key) = self_signed(alg);
            let signer = JwsSigner::from_pem(&chain, &key).unwrap();
            assert_eq!(signer.alg(), name);
            let jws = signer.sign(&serde_json::json!({"a": 1})).unwrap();
            let (header, payload) = verify_release_jws(&jws).unwrap();
            assert_eq!(header["alg"], name);
            assert_eq!(payload["a"], 1);
            let mut tampered = jws.clone();
            tampered.push('A');
            assert!(verify_release_jws(&tampered).is_err());
            // A different, validly encoded payload under the original header and signature: only the signature
            // check can refuse it.
            let parts: Vec<&str> = jws.split('.').collect();
            let other = URL_SAFE_NO_PAD.encode(br#"{"a":2}"#);
            let swapped = format!("{}.{other}.{}", parts[0], parts[2]);
            assert!(matches!(verify_release_jws(&swapped), Err(Error::DecryptFailed)));
            // The header is built once and matches the leaf.
            assert_eq!(header["x5c"][0], STANDARD.encode(&signer.chain()[0]));
            assert_eq!(header["x5t"], x509::thumbprint_sha1(&signer.chain()[0]));
        }
        // A key that does not match the certificate is refused.
        let (chain, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(JwsSigner::from_pem(&chain, &other).is_err());
    }
}
