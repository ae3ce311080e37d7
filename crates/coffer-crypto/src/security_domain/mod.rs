//! The Managed HSM security domain (shared/docs/security-domain.md): the file a download returns, the officers'
//! offline recovery, the restore blob an upload carries, and the transfer (exchange) key.
//!
//! * File (§5): every secret item is a `dir`/A256CBC-HS512 JWE under `K_tag = SP800-108(master, tag)`; the 32-byte
//!   master key is split with GF(257) Shamir into one share per officer certificate, each share encrypted as an
//!   RSA-OAEP-256/A256CBC-HS512 JWE to that certificate.
//! * Restore blob (§9): the same items under a new master key that is encrypted to the exchange certificate.
//!
//! The building blocks are public for tests and interoperability checks: [`sp800_108_hmac_sha512`],
//! [`shamir_split`] / [`shamir_combine`], and the JWE helpers ([`jwe_encrypt_dir`], [`jwe_decrypt_dir`],
//! [`jwe_encrypt_rsa_oaep256`], [`jwe_decrypt_rsa_oaep256`]).
use std::borrow::Cow;
use std::collections::HashSet;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicEncryptingKey};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rcgen::{CertificateParams, KeyUsagePurpose};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{Error, SecretBytes, hash, random, x509};

mod jwe;
mod shamir;
mod sp800_108;

pub use jwe::{
    ALG_DIR, ALG_RSA_OAEP_256, CEK_LEN, ENC_A256CBC_HS512, JweDecrypted, JweHeader, jwe_decrypt_dir,
    jwe_decrypt_rsa_oaep256, jwe_encrypt_dir, jwe_encrypt_rsa_oaep256, jwe_header,
};
pub use shamir::{MAX_SHARES, shamir_combine, shamir_split};
pub use sp800_108::sp800_108_hmac_sha512;

/// base64url without padding; decoding accepts padded input too (the clients emit unpadded values).
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Master-key length (bytes) of the files and blobs this module writes.
pub const MASTER_KEY_LEN: usize = 32;
/// KDF output length in bits: one HMAC-SHA-512 block, the 64-byte A256CBC-HS512 key.
const ITEM_KEY_BITS: u32 = 512;
/// The `kid` of share and wrapped-key JWEs (what the real service writes).
const KID_NOT_USED: &str = "not used";
/// `EncData.kdf`.
const KDF_NAME: &str = "sp108_kdf";
/// `SharedKeys.key_algorithm`.
const KEY_ALGORITHM: &str = "shamir_share";
/// File format version (Shamir).
const FILE_VERSION: u32 = 2;
/// Certificate count limits (the CLI refuses others).
const MIN_CERTIFICATES: usize = 3;
const MAX_CERTIFICATES: usize = 10;
/// Quorum limits the clients accept when reading a file.
const MIN_QUORUM: u8 = 2;
const MAX_QUORUM: u8 = 10;
/// Master-key lengths accepted in a restore blob (the clients write 32).
const BLOB_MASTER_KEY_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Officer/exchange certificate lifetime.
const CERT_VALIDITY_DAYS: i64 = 3650;

// ---------------------------------------------------------------------------------------------------------------
// RSA key with certificate
// ---------------------------------------------------------------------------------------------------------------

/// An RSA key pair and its self-signed certificate (officer wrapping keys; the exchange key).
pub struct RsaCertified {
    /// PKCS#8 DER of the private key.
    pub key_pkcs8_der: SecretBytes,
    /// DER of the certificate.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for RsaCertified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaCertified")
            .field("x5t_256", &x5t_s256(&self.cert_der))
            .finish_non_exhaustive()
    }
}

impl RsaCertified {
    /// The private key as `PRIVATE KEY` (PKCS#8) PEM.
    pub fn key_pem(&self) -> SecretBytes {
        let pem = pem_encode("PRIVATE KEY", self.key_pkcs8_der.expose_secret());
        SecretBytes::new(pem.as_bytes().to_vec())
    }

    /// The certificate as `CERTIFICATE` PEM.
    pub fn cert_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.cert_der).to_string()
    }

    /// Reads a private key (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE KEY` PKCS#1 PEM, unencrypted) and a certificate
    /// (the first `CERTIFICATE` block), and checks that the certificate carries this key's public key.
    pub fn from_pem(key_pem: &[u8], cert_pem: &str) -> Result<Self, Error> {
        let key_pkcs8_der = private_key_from_pem(key_pem)?;
        let cert_der = x509::certificates_from_pem(cert_pem)?
            .into_iter()
            .next()
            .ok_or(Error::InvalidParameter("no CERTIFICATE block in PEM"))?;
        check_wrapping_certificate(&cert_der)?;
        let pair = RsaKeyPair::from_pkcs8(key_pkcs8_der.expose_secret())
            .map_err(|_| Error::InvalidKey("not an RSA private key"))?;
        let key_public = pair.public_key();
        let cert_public = rsa_public_key_of_cert(&cert_der)?;
        let same = key_public.modulus().big_endian_without_leading_zero()
            == cert_public.modulus().big_endian_without_leading_zero()
            && key_public.exponent().big_endian_without_leading_zero()
                == cert_public.exponent().big_endian_without_leading_zero();
        if !same {
            return Err(Error::InvalidKey("the private key does not belong to the certificate"));
        }
        Ok(Self {
            key_pkcs8_der,
            cert_der,
        })
    }
}

/// New RSA key (bits 2048, 3072 or 4096, e = 65537) with a self-signed certificate (CN = `common_name`,
/// 10 years, keyUsage keyEncipherment). Reads the system clock; [`generate_rsa_certified_at`] takes the time.
pub fn generate_rsa_certified(bits: u32, common_name: &str) -> Result<RsaCertified, Error> {
    generate_rsa_certified_at(bits, common_name, x509::unix_now()?)
}

/// [`generate_rsa_certified`] with the current time passed in (Unix seconds).
pub fn generate_rsa_certified_at(bits: u32, common_name: &str, now: u64) -> Result<RsaCertified, Error> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        _ => return Err(Error::InvalidParameter("RSA key size must be 2048, 3072 or 4096 bits")),
    };
    if common_name.is_empty() {
        return Err(Error::InvalidParameter("certificate common name must not be empty"));
    }
    let pair = RsaKeyPair::generate(size).map_err(|_| Error::Unspecified)?;
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| Error::Unspecified)?;
    let key_pkcs8_der = SecretBytes::new(pkcs8.as_ref().to_vec());
    drop(pkcs8);
    // rcgen signs through the `SigningKey` trait with the aws-lc-rs key itself, so that no copy of the private key
    // is left in rcgen's (non-zeroizing) `KeyPair`.
    let signer = RsaCertSigner(pair);
    let mut params = CertificateParams::default();
    params.distinguished_name = x509::common_name_dn(common_name);
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    params.serial_number = Some(x509::random_serial()?);
    x509::set_validity(&mut params, now, CERT_VALIDITY_DAYS)?;
    let cert = params.self_signed(&signer).map_err(|_| Error::Unspecified)?;
    Ok(RsaCertified {
        key_pkcs8_der,
        cert_der: cert.der().to_vec(),
    })
}

/// Signs a certificate with RSA PKCS#1 v1.5 SHA-256 for rcgen.
struct RsaCertSigner(RsaKeyPair);

impl rcgen::PublicKeyData for RsaCertSigner {
    /// PKCS#1 `RSAPublicKey` DER (rcgen wraps it into the SubjectPublicKeyInfo).
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for RsaCertSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut signature = vec![0u8; self.0.public_modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut signature)
            .map_err(|_| rcgen::Error::RingUnspecified)?;
        Ok(signature)
    }
}

/// base64url (unpadded) SHA-256 of a certificate DER: the `x5t_256` / `x5t#S256` value.
pub fn x5t_s256(cert_der: &[u8]) -> String {
    B64URL.encode(hash::sha256(cert_der))
}

/// Checks a wrapping certificate from a download request's `x5c[0]`: parses as X.509 (nothing after it) with an
/// RSA key of at least 2048 bits.
pub fn check_wrapping_certificate(cert_der: &[u8]) -> Result<(), Error> {
    rsa_public_key_from_cert(cert_der).map(|_| ())
}

/// The SubjectPublicKeyInfo DER of a certificate (no trailing data allowed).
fn spki_of_cert(cert_der: &[u8]) -> Result<Vec<u8>, Error> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|_| Error::InvalidParameter("not a DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(Error::InvalidParameter("trailing data after the certificate"));
    }
    Ok(cert.public_key().raw.to_vec())
}

/// The RSA encryption key of a certificate; refuses non-RSA keys and RSA keys outside 2048..=8192 bits.
pub(crate) fn rsa_public_key_from_cert(cert_der: &[u8]) -> Result<PublicEncryptingKey, Error> {
    PublicEncryptingKey::from_der(&spki_of_cert(cert_der)?)
        .map_err(|_| Error::InvalidParameter("certificate key must be RSA with at least 2048 bits"))
}

/// The RSA public key of a certificate as (n, e) holder.
fn rsa_public_key_of_cert(cert_der: &[u8]) -> Result<aws_lc_rs::rsa::PublicKey, Error> {
    check_wrapping_certificate(cert_der)?;
    aws_lc_rs::rsa::PublicKey::from_der(&spki_of_cert(cert_der)?)
        .map_err(|_| Error::InvalidParameter("certificate key must be RSA with at least 2048 bits"))
}

/// PEM with 64-character lines, in a zeroizing buffer.
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let mut b64 = Zeroizing::new(String::with_capacity(der.len().div_ceil(3) * 4));
    STANDARD.encode_string(der, &mut b64);
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first private-key block of a PEM text to PKCS#8 DER, in zeroizing buffers.
fn private_key_from_pem(pem: &[u8]) -> Result<SecretBytes, Error> {
    let text = std::str::from_utf8(pem).map_err(|_| Error::InvalidKey("private key PEM is not text"))?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(Error::InvalidKey(
            "encrypted private keys are not supported; decrypt the key first",
        ));
    }
    let (label, pkcs1) = if text.contains("-----BEGIN PRIVATE KEY-----") {
        ("PRIVATE KEY", false)
    } else if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        ("RSA PRIVATE KEY", true)
    } else {
        return Err(Error::InvalidKey("no PRIVATE KEY or RSA PRIVATE KEY block in PEM"));
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .split_once(begin.as_str())
        .and_then(|(_, rest)| rest.split_once(end.as_str()))
        .map(|(body, _)| body)
        .ok_or(Error::InvalidKey("unterminated private key PEM block"))?;
    if body.contains(':') {
        return Err(Error::InvalidKey("encrypted (Proc-Type) PEM keys are not supported"));
    }
    let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
    b64.extend(body.chars().filter(|c| !c.is_ascii_whitespace()));
    let mut der = Zeroizing::new(Vec::with_capacity(b64.len() / 4 * 3 + 3));
    STANDARD
        .decode_vec(b64.as_bytes(), &mut der)
        .map_err(|_| Error::InvalidKey("private key PEM is not valid base64"))?;
    let pair = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    }
    .map_err(|_| Error::InvalidKey("not an RSA private key (2048..=8192 bits)"))?;
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| Error::Unspecified)?;
    Ok(SecretBytes::new(pkcs8.as_ref().to_vec()))
}

// ---------------------------------------------------------------------------------------------------------------
// JSON shapes (§5, §9). Field order is the real files' order.
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct SdFileOut {
    #[serde(rename = "EncData")]
    enc_data: EncDataOut,
    #[serde(rename = "SharedKeys")]
    shared_keys: SharedKeysOut,
    version: u32,
}

#[derive(Serialize)]
struct RestoreBlobOut {
    #[serde(rename = "EncData")]
    enc_data: EncDataOut,
    #[serde(rename = "WrappedKey")]
    wrapped_key: KeyEntry,
}

#[derive(Serialize)]
struct EncDataOut {
    data: Vec<Datum>,
    kdf: &'static str,
}

#[derive(Serialize)]
struct SharedKeysOut {
    enc_shares: Vec<KeyEntry>,
    key_algorithm: &'static str,
    required: u8,
}

#[derive(Serialize, Deserialize)]
struct Datum {
    compact_jwe: String,
    tag: String,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    enc_key: String,
    x5t_256: String,
}

#[derive(Deserialize)]
struct EncDataIn {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct SharedKeysIn {
    enc_shares: Vec<KeyEntry>,
    key_algorithm: String,
    required: u64,
}

fn sd_err(message: impl Into<String>) -> Error {
    Error::SecurityDomain(message.into())
}

/// Parses `text` as a JSON object.
fn parse_object(text: &str, what: &str) -> Result<serde_json::Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(sd_err(format!("the {what} is not a JSON object"))),
        Err(e) => Err(sd_err(format!("the {what} is not valid JSON: {e}"))),
    }
}

fn field<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<T, Error> {
    let value = map
        .remove(name)
        .ok_or_else(|| sd_err(format!("the {what} has no \"{name}\"")))?;
    serde_json::from_value(value).map_err(|e| sd_err(format!("\"{name}\" of the {what} is malformed: {e}")))
}

/// Checks item tags: at least one item, every tag non-empty and distinct.
fn check_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for tag in tags {
        if tag.is_empty() {
            return Err(sd_err("an EncData item has an empty tag"));
        }
        if !seen.insert(tag) {
            return Err(sd_err(format!("the EncData tag \"{tag}\" appears twice")));
        }
    }
    if seen.is_empty() {
        return Err(sd_err("there are no EncData items"));
    }
    Ok(())
}

/// `K_tag` (§6.3).
fn item_key(master: &SecretBytes, tag: &str) -> Result<SecretBytes, Error> {
    sp800_108_hmac_sha512(master.expose_secret(), tag.as_bytes(), b"", ITEM_KEY_BITS)
}

/// Encrypts every item under `K_tag = KDF(master, tag)` (`dir` JWE, `kid` = tag).
fn encrypt_items<'a>(
    master: &SecretBytes,
    items: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<EncDataOut, Error> {
    let mut data = Vec::new();
    for (tag, plaintext) in items {
        let key = item_key(master, tag)?;
        data.push(Datum {
            compact_jwe: jwe_encrypt_dir(&key, tag, plaintext)?,
            tag: tag.to_owned(),
        });
    }
    Ok(EncDataOut { data, kdf: KDF_NAME })
}

/// Decrypts every item with `K_tag = KDF(master, tag)`; with `check_kid`, the header `kid` must equal the tag.
fn decrypt_items(master: &SecretBytes, data: &[Datum], check_kid: bool) -> Result<Vec<(String, SecretBytes)>, Error> {
    check_tags(data.iter().map(|d| d.tag.as_str()))?;
    let mut out = Vec::with_capacity(data.len());
    for datum in data {
        let tag = &datum.tag;
        let compact_jwe = strip_legacy_layer(&datum.compact_jwe)
            .map_err(|_| sd_err(format!("EncData item \"{tag}\": compact_jwe is not a JWE")))?;
        let key = item_key(master, tag)?;
        let decrypted = jwe_decrypt_dir(&compact_jwe, &key).map_err(|e| match e {
            Error::DecryptFailed => sd_err(format!(
                "EncData item \"{tag}\" failed authentication: the data was altered or the master key is wrong"
            )),
            other => sd_err(format!("EncData item \"{tag}\": {other}")),
        })?;
        if check_kid && decrypted.header.kid.as_deref() != Some(tag.as_str()) {
            return Err(sd_err(format!(
                "EncData item \"{tag}\": the JWE kid does not match the tag"
            )));
        }
        out.push((tag.clone(), decrypted.plaintext));
    }
    Ok(out)
}

/// The old CLI (azure-cli 8fd17580) wrapped `compact_jwe` and `enc_key` of the restore blob in one more base64url
/// layer. A value without '.' is decoded once more.
fn strip_legacy_layer(value: &str) -> Result<Cow<'_, str>, Error> {
    if value.contains('.') {
        return Ok(Cow::Borrowed(value));
    }
    let bytes = B64URL
        .decode(value.trim())
        .map_err(|_| Error::InvalidParameter("not a compact JWE"))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidParameter("not a compact JWE"))?;
    if !text.contains('.') {
        return Err(Error::InvalidParameter("not a compact JWE"));
    }
    Ok(Cow::Owned(text))
}

// ---------------------------------------------------------------------------------------------------------------
// Server side: build the file, open a restore blob, the transfer key
// ---------------------------------------------------------------------------------------------------------------

/// Builds the security-domain file (JSON text, §5): one `EncData` item per (tag, plaintext), a fresh 32-byte
/// master key split with GF(257) Shamir (quorum `quorum`, x = 1..N in certificate order), share i encrypted as
/// RSA-OAEP-256/A256CBC-HS512 JWE (kid "not used") to `certificates[i]` (DER).
///
/// Validates 3 <= N <= 10, 2 <= quorum <= N, distinct certificates (SHA-256 thumbprint), RSA >= 2048, at least one
/// item, non-empty distinct tags.
pub fn build_security_domain(items: &[(&str, &[u8])], certificates: &[Vec<u8>], quorum: u8) -> Result<String, Error> {
    if !(MIN_CERTIFICATES..=MAX_CERTIFICATES).contains(&certificates.len()) {
        return Err(Error::InvalidParameter("a security domain needs 3 to 10 certificates"));
    }
    let n = u8::try_from(certificates.len()).map_err(|_| Error::Unspecified)?;
    if quorum < MIN_QUORUM || quorum > n {
        return Err(Error::InvalidParameter(
            "the quorum must be at least 2 and at most the number of certificates",
        ));
    }
    let mut thumbprints = Vec::with_capacity(certificates.len());
    for cert in certificates {
        check_wrapping_certificate(cert)?;
        let t = x5t_s256(cert);
        if thumbprints.contains(&t) {
            return Err(Error::InvalidParameter("the certificates must be distinct"));
        }
        thumbprints.push(t);
    }
    check_tags(items.iter().map(|(tag, _)| *tag))?;

    let master = random::secret(MASTER_KEY_LEN)?;
    let enc_data = encrypt_items(&master, items.iter().map(|(tag, p)| (*tag, *p)))?;
    let shares = shamir_split(master.expose_secret(), n, quorum)?;
    drop(master);
    let mut enc_shares = Vec::with_capacity(shares.len());
    for ((share, cert), x5t_256) in shares.iter().zip(certificates).zip(thumbprints) {
        enc_shares.push(KeyEntry {
            enc_key: jwe_encrypt_rsa_oaep256(cert, KID_NOT_USED, share.expose_secret())?,
            x5t_256,
        });
    }
    let file = SdFileOut {
        enc_data,
        shared_keys: SharedKeysOut {
            enc_shares,
            key_algorithm: KEY_ALGORITHM,
            required: quorum,
        },
        version: FILE_VERSION,
    };
    serde_json::to_string(&file).map_err(|_| Error::Unspecified)
}

/// Server side: opens a restore blob (§9) with the exchange key. Checks `WrappedKey.x5t_256` against the exchange
/// certificate, decrypts the master key, decrypts every item (tag check, header `kid` == tag).
///
/// A security-domain file given instead of a blob, a blob for another exchange key, or any tampering is an
/// `Error::SecurityDomain` with a message that says which. Tolerates the old CLI's extra base64url layer around
/// `compact_jwe` / `enc_key` (values without '.').
pub fn open_restore_blob(blob_json: &str, exchange: &RsaCertified) -> Result<Vec<(String, SecretBytes)>, Error> {
    const WHAT: &str = "restore blob";
    let mut blob = parse_object(blob_json, WHAT)?;
    if !blob.contains_key("WrappedKey") {
        if blob.contains_key("SharedKeys") {
            return Err(sd_err(
                "this is a security-domain file, not a restore blob: the officers must first turn it into a \
                 restore blob for this HSM's exchange key (az keyvault security-domain restore-blob, or upload \
                 with --sd-wrapping-keys and --sd-exchange-key)",
            ));
        }
        return Err(sd_err("the restore blob has no \"WrappedKey\""));
    }
    let wrapped: KeyEntry = field(&mut blob, "WrappedKey", WHAT)?;
    let enc_data: EncDataIn = field(&mut blob, "EncData", WHAT)?;

    let expected = x5t_s256(&exchange.cert_der);
    if wrapped.x5t_256.trim_end_matches('=') != expected {
        return Err(sd_err(
            "the restore blob was made for another exchange key (WrappedKey.x5t_256 does not match this HSM's \
             exchange certificate): download the exchange key again and rebuild the blob",
        ));
    }
    let enc_key = strip_legacy_layer(&wrapped.enc_key).map_err(|_| sd_err("WrappedKey.enc_key is not a JWE"))?;
    let master = jwe_decrypt_rsa_oaep256(&enc_key, &exchange.key_pkcs8_der)
        .map_err(|e| match e {
            Error::DecryptFailed => sd_err(
                "WrappedKey.enc_key cannot be decrypted with the exchange key: the blob was altered or made for \
                 another key",
            ),
            other => sd_err(format!("WrappedKey.enc_key: {other}")),
        })?
        .plaintext;
    if !BLOB_MASTER_KEY_LEN.contains(&master.len()) {
        return Err(sd_err("the wrapped master key has an unexpected length"));
    }
    decrypt_items(&master, &enc_data.data, true)
}

/// The transfer key JWK (§8) for the exchange certificate: `kid` = "{base_url}/transfer_key", kty RSA, key_ops
/// ["encrypt","wrapKey"], n, e, alg "RSA-OAEP-256", x5c [standard base64 DER], x5t, "x5t#S256". The server sends it
/// as a JSON *string* (`serde_json::to_string` of this value).
pub fn transfer_key_jwk(exchange_cert_der: &[u8], base_url: &str) -> Result<Value, Error> {
    let public = rsa_public_key_of_cert(exchange_cert_der)?;
    Ok(serde_json::json!({
        "kid": format!("{}/transfer_key", base_url.trim_end_matches('/')),
        "kty": "RSA",
        "key_ops": ["encrypt", "wrapKey"],
        "n": B64URL.encode(public.modulus().big_endian_without_leading_zero()),
        "e": B64URL.encode(public.exponent().big_endian_without_leading_zero()),
        "alg": ALG_RSA_OAEP_256,
        "x5c": [STANDARD.encode(exchange_cert_der)],
        "x5t": x509::thumbprint_sha1(exchange_cert_der),
        "x5t#S256": x5t_s256(exchange_cert_der),
    }))
}

// ---------------------------------------------------------------------------------------------------------------
// Officer side: recover the items, make a restore blob
// ---------------------------------------------------------------------------------------------------------------

/// Officer side: decrypts shares with the given officers' (key, cert) pairs (matched by `x5t_256`; the first
/// `required` matches are used, extra officers are ignored), rebuilds the master key and decrypts every item.
/// Too few matching officers is an `Error::SecurityDomain`.
pub fn recover_items(sd_json: &str, officers: &[RsaCertified]) -> Result<Vec<(String, SecretBytes)>, Error> {
    const WHAT: &str = "security-domain file";
    let mut file = parse_object(sd_json, WHAT)?;
    if file.contains_key("WrappedKey") && !file.contains_key("SharedKeys") {
        return Err(sd_err(
            "this is a restore blob, not a security-domain file: only the exchange key can open it",
        ));
    }
    let shared: SharedKeysIn = field(&mut file, "SharedKeys", WHAT)?;
    let enc_data: EncDataIn = field(&mut file, "EncData", WHAT)?;
    if shared.key_algorithm != KEY_ALGORITHM {
        return Err(sd_err(format!(
            "unsupported SharedKeys.key_algorithm \"{}\" (expected \"shamir_share\")",
            shared.key_algorithm
        )));
    }
    let required = u8::try_from(shared.required)
        .ok()
        .filter(|r| (MIN_QUORUM..=MAX_QUORUM).contains(r))
        .ok_or_else(|| sd_err("SharedKeys.required must be between 2 and 10"))?;

    let mut shares: Vec<SecretBytes> = Vec::with_capacity(usize::from(required));
    let mut used = vec![false; shared.enc_shares.len()];
    'officers: for officer in officers {
        let thumbprint = x5t_s256(&officer.cert_der);
        for (index, entry) in shared.enc_shares.iter().enumerate() {
            if entry.x5t_256 != thumbprint || used.get(index).copied().unwrap_or(true) {
                continue;
            }
            let share = jwe_decrypt_rsa_oaep256(&entry.enc_key, &officer.key_pkcs8_der).map_err(|e| {
                sd_err(format!(
                    "share {index} matches an officer certificate but cannot be decrypted with its key: {e}"
                ))
            })?;
            if let Some(u) = used.get_mut(index) {
                *u = true;
            }
            shares.push(share.plaintext);
            if shares.len() >= usize::from(required) {
                break 'officers;
            }
        }
    }
    if shares.len() < usize::from(required) {
        return Err(sd_err(format!(
            "only {} of the {required} required shares could be decrypted: too few of the given officer keys \
             match the file's certificates",
            shares.len()
        )));
    }
    let parts: Vec<&[u8]> = shares.iter().map(SecretBytes::expose_secret).collect();
    let master = shamir_combine(&parts).map_err(|e| sd_err(format!("the shares do not combine: {e}")))?;
    drop(parts);
    drop(shares);
    decrypt_items(&master, &enc_data.data, false)
}

/// Officer side: the restore blob (JSON text, §9). Re-encrypts the items under a NEW 32-byte master key, which is
/// itself encrypted (RSA-OAEP-256/A256CBC-HS512, kid "not used") to the exchange certificate.
pub fn make_restore_blob(items: &[(String, SecretBytes)], exchange_cert_der: &[u8]) -> Result<String, Error> {
    check_wrapping_certificate(exchange_cert_der)?;
    check_tags(items.iter().map(|(tag, _)| tag.as_str()))?;
    let master = random::secret(MASTER_KEY_LEN)?;
    let enc_data = encrypt_items(&master, items.iter().map(|(t, p)| (t.as_str(), p.expose_secret())))?;
    let wrapped_key = KeyEntry {
        enc_key: jwe_encrypt_rsa_oaep256(exchange_cert_der, KID_NOT_USED, master.expose_secret())?,
        x5t_256: x5t_s256(exchange_cert_der),
    };
    drop(master);
    serde_json::to_string(&RestoreBlobOut { enc_data, wrapped_key }).map_err(|_| Error::Unspecified)
}

#[cfg(test)]
mod tests;
