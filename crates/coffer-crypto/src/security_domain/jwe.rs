//! The JWE subset of the security domain (security-domain.md §6.1, §6.2, §6.6): compact serialization,
//! `enc` = A256CBC-HS512 (RFC 7518 §5.2.5), `alg` = `dir` or RSA-OAEP-256.
//!
//! Protected headers are written as `{"alg":"…","enc":"…","kid":"…"}` (compact, that key order, ASCII only: the
//! Azure CLI decodes the header as ASCII). On receipt the MAC covers the header text exactly as transmitted.
use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{B64URL, rsa_public_key_from_cert};
use crate::{Error, SecretBytes, random, secret};

/// `enc` value: AES-256-CBC + HMAC-SHA-512/256.
pub const ENC_A256CBC_HS512: &str = "A256CBC-HS512";
/// `alg` value for a JWE under a shared 64-byte CEK.
pub const ALG_DIR: &str = "dir";
/// `alg` value for a JWE whose CEK is RSA-OAEP (SHA-256, MGF1-SHA-256) encrypted.
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";
/// A256CBC-HS512 content-encryption key length: MAC key (32) then AES key (32).
pub const CEK_LEN: usize = 64;
const KEY_HALF: usize = 32;
/// CBC IV length.
const IV_LEN: usize = 16;
/// Authentication tag length (the first half of the HMAC-SHA-512 output).
const TAG_LEN: usize = 32;
/// AES block length.
const BLOCK_LEN: usize = 16;

/// The protected-header fields the security domain reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JweHeader {
    pub alg: String,
    pub enc: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kid: Option<String>,
}

/// A decrypted JWE.
#[derive(Debug)]
pub struct JweDecrypted {
    pub header: JweHeader,
    pub plaintext: SecretBytes,
}

/// `alg: dir`, `enc: A256CBC-HS512` JWE of `plaintext` under the 64-byte `cek`, header `kid` = `kid`.
pub fn jwe_encrypt_dir(cek: &SecretBytes, kid: &str, plaintext: &[u8]) -> Result<String, Error> {
    let header = encode_header(ALG_DIR, kid)?;
    let iv: [u8; IV_LEN] = random::array()?;
    let (ciphertext, tag) = a256cbc_hs512_encrypt(cek, header.as_bytes(), &iv, plaintext)?;
    Ok(compact(&header, &[], &iv, &ciphertext, &tag))
}

/// Decrypts an `alg: dir`, `enc: A256CBC-HS512` JWE with the 64-byte `cek`, checking the tag first.
///
/// Structural problems are `Error::InvalidParameter`; a wrong key or any tampering is `Error::DecryptFailed`.
pub fn jwe_decrypt_dir(compact_jwe: &str, cek: &SecretBytes) -> Result<JweDecrypted, Error> {
    let parts = Parts::parse(compact_jwe)?;
    if parts.header.alg != ALG_DIR {
        return Err(Error::InvalidParameter("JWE alg must be \"dir\""));
    }
    if !parts.encrypted_key.is_empty() {
        return Err(Error::InvalidParameter(
            "a \"dir\" JWE must have an empty encrypted key",
        ));
    }
    let plaintext = parts.decrypt(cek)?;
    Ok(JweDecrypted {
        header: parts.header,
        plaintext,
    })
}

/// `alg: RSA-OAEP-256`, `enc: A256CBC-HS512` JWE of `plaintext` to the RSA key of the certificate `cert_der`
/// (>= 2048 bits), with a fresh random 64-byte CEK.
pub fn jwe_encrypt_rsa_oaep256(cert_der: &[u8], kid: &str, plaintext: &[u8]) -> Result<String, Error> {
    let public = rsa_public_key_from_cert(cert_der)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| Error::Unspecified)?;
    let cek = random::secret(CEK_LEN)?;
    let mut encrypted_key = vec![0u8; oaep.ciphertext_size()];
    let written = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, cek.expose_secret(), &mut encrypted_key, None)
        .map_err(|_| Error::Unspecified)?
        .len();
    encrypted_key.truncate(written);
    let header = encode_header(ALG_RSA_OAEP_256, kid)?;
    let iv: [u8; IV_LEN] = random::array()?;
    let (ciphertext, tag) = a256cbc_hs512_encrypt(&cek, header.as_bytes(), &iv, plaintext)?;
    Ok(compact(&header, &encrypted_key, &iv, &ciphertext, &tag))
}

/// Decrypts an `alg: RSA-OAEP-256`, `enc: A256CBC-HS512` JWE with an RSA private key (PKCS#8 DER).
///
/// Other `alg` values (RSA-OAEP with SHA-1, RSA1_5) are refused. A wrong key or any tampering is
/// `Error::DecryptFailed`.
pub fn jwe_decrypt_rsa_oaep256(compact_jwe: &str, key_pkcs8_der: &SecretBytes) -> Result<JweDecrypted, Error> {
    let parts = Parts::parse(compact_jwe)?;
    if parts.header.alg != ALG_RSA_OAEP_256 {
        return Err(Error::InvalidParameter("JWE alg must be \"RSA-OAEP-256\""));
    }
    let private = PrivateDecryptingKey::from_pkcs8(key_pkcs8_der.expose_secret())
        .map_err(|_| Error::InvalidKey("not an RSA PKCS#8 private key"))?;
    if parts.encrypted_key.len() != private.key_size_bytes() {
        return Err(Error::DecryptFailed);
    }
    let oaep = OaepPrivateDecryptingKey::new(private).map_err(|_| Error::Unspecified)?;
    let mut buf = SecretBytes::new(vec![0u8; oaep.min_output_size()]);
    let written = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            &parts.encrypted_key,
            buf.expose_secret_mut(),
            None,
        )
        .map_err(|_| Error::DecryptFailed)?
        .len();
    if written != CEK_LEN {
        return Err(Error::DecryptFailed);
    }
    let cek = SecretBytes::new(buf.expose_secret().get(..CEK_LEN).ok_or(Error::DecryptFailed)?.to_vec());
    let plaintext = parts.decrypt(&cek)?;
    Ok(JweDecrypted {
        header: parts.header,
        plaintext,
    })
}

/// Reads the protected header of a compact JWE without decrypting anything.
pub fn jwe_header(compact_jwe: &str) -> Result<JweHeader, Error> {
    Parts::parse(compact_jwe).map(|p| p.header)
}

// ---- internals ----

/// base64url of `{"alg":…,"enc":"A256CBC-HS512","kid":…}` with non-ASCII characters escaped as `\uXXXX`.
fn encode_header(alg: &str, kid: &str) -> Result<String, Error> {
    let header = JweHeader {
        alg: alg.to_owned(),
        enc: ENC_A256CBC_HS512.to_owned(),
        kid: Some(kid.to_owned()),
    };
    let json = serde_json::to_string(&header).map_err(|_| Error::Unspecified)?;
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            // Only string contents can hold non-ASCII characters, so the escape is always inside a string.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Ok(B64URL.encode(ascii.as_bytes()))
}

fn compact(header: &str, encrypted_key: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> String {
    format!(
        "{header}.{}.{}.{}.{}",
        B64URL.encode(encrypted_key),
        B64URL.encode(iv),
        B64URL.encode(ciphertext),
        B64URL.encode(tag)
    )
}

/// A parsed compact JWE. `header_b64` is kept as transmitted for the MAC.
struct Parts<'a> {
    header_b64: &'a str,
    header: JweHeader,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl<'a> Parts<'a> {
    fn parse(compact_jwe: &'a str) -> Result<Self, Error> {
        let mut it = compact_jwe.split('.');
        let (Some(h), Some(k), Some(iv), Some(c), Some(t), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(Error::InvalidParameter(
                "a compact JWE has exactly five '.'-separated parts",
            ));
        };
        let decode = |s: &str| {
            B64URL
                .decode(s)
                .map_err(|_| Error::InvalidParameter("JWE part is not base64url"))
        };
        let header_json = decode(h)?;
        let header: JweHeader = serde_json::from_slice(&header_json)
            .map_err(|_| Error::InvalidParameter("JWE header is not a JSON object with string alg and enc"))?;
        if header.enc != ENC_A256CBC_HS512 {
            return Err(Error::InvalidParameter("JWE enc must be \"A256CBC-HS512\""));
        }
        let parts = Self {
            header_b64: h,
            header,
            encrypted_key: decode(k)?,
            iv: decode(iv)?,
            ciphertext: decode(c)?,
            tag: decode(t)?,
        };
        if parts.iv.len() != IV_LEN {
            return Err(Error::InvalidParameter("JWE iv must be 16 bytes"));
        }
        if parts.tag.len() != TAG_LEN {
            return Err(Error::InvalidParameter("JWE tag must be 32 bytes"));
        }
        if parts.ciphertext.is_empty() || !parts.ciphertext.len().is_multiple_of(BLOCK_LEN) {
            return Err(Error::InvalidParameter(
                "JWE ciphertext must be a non-empty multiple of 16 bytes",
            ));
        }
        Ok(parts)
    }

    fn decrypt(&self, cek: &SecretBytes) -> Result<SecretBytes, Error> {
        a256cbc_hs512_decrypt(cek, self.header_b64.as_bytes(), &self.iv, &self.ciphertext, &self.tag)
    }
}

fn split_cek(cek: &SecretBytes) -> Result<(&[u8], &[u8]), Error> {
    if cek.len() != CEK_LEN {
        return Err(Error::InvalidParameter("A256CBC-HS512 needs a 64-byte key"));
    }
    Ok(cek.expose_secret().split_at(KEY_HALF))
}

/// `HMAC-SHA-512(mac_key, aad || iv || ciphertext || BE64(bits(aad)))`, first 32 bytes.
fn mac(mac_key: &[u8], aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<[u8; TAG_LEN], Error> {
    let aad_bits = u64::try_from(aad.len())
        .ok()
        .and_then(|n| n.checked_mul(8))
        .ok_or(Error::InvalidParameter("JWE header too long"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA512, mac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ciphertext);
    ctx.update(&aad_bits.to_be_bytes());
    let full = ctx.sign();
    let mut tag = [0u8; TAG_LEN];
    for (d, s) in tag.iter_mut().zip(full.as_ref()) {
        *d = *s;
    }
    Ok(tag)
}

/// RFC 7518 §5.2.2.1 encryption: AES-256-CBC with PKCS#7 padding, then the tag. Returns (ciphertext, tag).
fn a256cbc_hs512_encrypt(
    cek: &SecretBytes,
    aad: &[u8],
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; TAG_LEN]), Error> {
    let (mac_key, enc_key) = split_cek(cek)?;
    let key = UnboundCipherKey::new(&AES_256, enc_key).map_err(|_| Error::Unspecified)?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| Error::Unspecified)?;
    // Room for the padding block up front, so that padding never reallocates a plaintext copy. On success the
    // buffer holds only ciphertext; on failure it is zeroized.
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(plaintext.len() + BLOCK_LEN));
    buf.extend_from_slice(plaintext);
    key.less_safe_encrypt(&mut *buf, EncryptionContext::Iv128(FixedLength::from(*iv)))
        .map_err(|_| Error::Unspecified)?;
    let ciphertext = buf.to_vec();
    let tag = mac(mac_key, aad, iv, &ciphertext)?;
    Ok((ciphertext, tag))
}

/// RFC 7518 §5.2.2.2 decryption: constant-time tag check over the transmitted bytes, then AES-256-CBC.
fn a256cbc_hs512_decrypt(
    cek: &SecretBytes,
    aad: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<SecretBytes, Error> {
    let (mac_key, enc_key) = split_cek(cek)?;
    let expected = mac(mac_key, aad, iv, ciphertext)?;
    if !secret::ct_eq(&expected, tag) {
        return Err(Error::DecryptFailed);
    }
    let iv = FixedLength::<IV_LEN>::try_from(iv).map_err(|_| Error::InvalidParameter("JWE iv must be 16 bytes"))?;
    let key = UnboundCipherKey::new(&AES_256, enc_key).map_err(|_| Error::Unspecified)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| Error::Unspecified)?;
    let mut buf = SecretBytes::new(ciphertext.to_vec());
    let len = key
        .decrypt(buf.expose_secret_mut(), DecryptionContext::Iv128(iv))
        .map_err(|_| Error::DecryptFailed)?
        .len();
    let plaintext = buf.expose_secret().get(..len).ok_or(Error::DecryptFailed)?;
    Ok(SecretBytes::new(plaintext.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security_domain::generate_rsa_certified;

    /// RFC 7518 Appendix B.3 (AES_256_CBC_HMAC_SHA_512).
    #[test]
    fn rfc7518_b3_vector() {
        let cek = SecretBytes::new((0u8..64).collect());
        let plaintext = b"A cipher system must not be required to be secret, and it must be able to fall into the \
                          hands of the enemy without inconvenience";
        let iv: [u8; 16] = hex::decode("1af38c2dc2b96ffdd86694092341bc04")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = b"The second principle of Auguste Kerckhoffs";
        let (c, t) = a256cbc_hs512_encrypt(&cek, aad, &iv, plaintext).unwrap();
        assert_eq!(
            hex::encode(&c),
            "4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd822c301dd67c373bccb584ad3e9279c2\
             e6d12a1374b77f077553df829410446b36ebd97066296ae6427ea75c2e0846a11a09ccf5370dc80bfecbad28c73f09b3\
             a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950bbe2638d09dd7a4930930806d0703b1f6"
        );
        assert_eq!(
            hex::encode(t),
            "4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5"
        );
        let p = a256cbc_hs512_decrypt(&cek, aad, &iv, &c, &t).unwrap();
        assert_eq!(p.expose_secret(), plaintext);
    }

    #[test]
    fn header_is_compact_ordered_ascii() {
        let h = encode_header(ALG_DIR, "hsm_backup").unwrap();
        assert_eq!(
            B64URL.decode(&h).unwrap(),
            br#"{"alg":"dir","enc":"A256CBC-HS512","kid":"hsm_backup"}"#
        );
        let h = encode_header(ALG_RSA_OAEP_256, "tag \u{e9}\u{1F600}\"").unwrap();
        let text = String::from_utf8(B64URL.decode(&h).unwrap()).unwrap();
        assert!(text.is_ascii());
        assert_eq!(
            text,
            r#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":"tag \u00e9\ud83d\ude00\""}"#
        );
        let parsed: JweHeader = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.kid.as_deref(), Some("tag \u{e9}\u{1F600}\""));
    }

    #[test]
    fn dir_round_trip_and_shape() {
        let cek = random::secret(64).unwrap();
        for len in [0usize, 1, 15, 16, 17, 64, 1000] {
            let msg = random::bytes(len).unwrap();
            let jwe = jwe_encrypt_dir(&cek, "hsm_backup", &msg).unwrap();
            let parts: Vec<&str> = jwe.split('.').collect();
            assert_eq!(parts.len(), 5);
            assert!(parts[1].is_empty(), "dir has an empty encrypted key");
            assert!(!jwe.contains('='), "unpadded base64url");
            assert_eq!(B64URL.decode(parts[2]).unwrap().len(), 16);
            // Full PKCS#7 block even for block-aligned input.
            assert_eq!(B64URL.decode(parts[3]).unwrap().len(), (len / 16 + 1) * 16);
            assert_eq!(B64URL.decode(parts[4]).unwrap().len(), 32);
            let out = jwe_decrypt_dir(&jwe, &cek).unwrap();
            assert_eq!(out.plaintext.expose_secret(), msg.as_slice());
            assert_eq!(out.header.kid.as_deref(), Some("hsm_backup"));
            assert_eq!(out.header.alg, "dir");
            assert_eq!(jwe_header(&jwe).unwrap(), out.header);
        }
        // Wrong key.
        let jwe = jwe_encrypt_dir(&cek, "t", b"x").unwrap();
        let other = random::secret(64).unwrap();
        assert!(matches!(jwe_decrypt_dir(&jwe, &other), Err(Error::DecryptFailed)));
        // A key of the wrong length.
        assert!(jwe_encrypt_dir(&random::secret(32).unwrap(), "t", b"x").is_err());
    }

    /// Rebuilds `jwe` with part `index` replaced by `f(decoded part)`.
    fn tamper(jwe: &str, index: usize, f: impl Fn(&mut Vec<u8>)) -> String {
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let mut bytes = B64URL.decode(&parts[index]).unwrap();
        f(&mut bytes);
        parts[index] = B64URL.encode(&bytes);
        parts.join(".")
    }

    fn flip_last(b: &mut [u8]) {
        let last = b.len() - 1;
        b[last] ^= 1;
    }

    fn flip_first(b: &mut [u8]) {
        b[0] ^= 0x80;
    }

    #[test]
    fn dir_detects_tampering() {
        let cek = random::secret(64).unwrap();
        let jwe = jwe_encrypt_dir(&cek, "hsm_backup", b"the secret blob, a bit longer than a block").unwrap();
        assert!(jwe_decrypt_dir(&jwe, &cek).is_ok());
        // iv, ciphertext (first and last byte), tag.
        for (index, first) in [(2usize, true), (2, false), (3, true), (3, false), (4, true), (4, false)] {
            let bad = tamper(&jwe, index, |b| if first { flip_first(b) } else { flip_last(b) });
            assert!(
                matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::DecryptFailed)),
                "part {index}"
            );
        }
        // The header: a different kid, still valid JSON.
        let bad = tamper(&jwe, 0, |b| {
            *b = br#"{"alg":"dir","enc":"A256CBC-HS512","kid":"hsm_backuq"}"#.to_vec()
        });
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::DecryptFailed)));
        // The same header JSON re-serialised differently (a space): the MAC covers the transmitted text.
        let bad = tamper(&jwe, 0, |b| {
            *b = br#"{"alg":"dir", "enc":"A256CBC-HS512","kid":"hsm_backup"}"#.to_vec()
        });
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::DecryptFailed)));
        // Header padded with '=' is a different transmitted text too.
        let (h, rest) = jwe.split_once('.').unwrap();
        if !h.len().is_multiple_of(4) {
            let padded = format!("{h}{}.{rest}", "=".repeat(4 - h.len() % 4));
            assert!(jwe_decrypt_dir(&padded, &cek).is_err());
        }
        // A truncated tag (the clients' quirk would skip the check) is refused.
        let bad = tamper(&jwe, 4, |b| b.truncate(31));
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::InvalidParameter(_))));
        // Structure.
        assert!(jwe_decrypt_dir(&format!("{jwe}.x"), &cek).is_err());
        assert!(jwe_decrypt_dir(jwe.rsplit_once('.').unwrap().0, &cek).is_err());
        assert!(jwe_decrypt_dir("", &cek).is_err());
        let bad = tamper(&jwe, 3, |b| b.truncate(b.len() - 1));
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::InvalidParameter(_))));
        let bad = tamper(&jwe, 0, |b| *b = br#"{"alg":"dir","enc":"A128CBC-HS256"}"#.to_vec());
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::InvalidParameter(_))));
        let bad = tamper(&jwe, 1, |b| *b = vec![1, 2, 3]);
        assert!(matches!(jwe_decrypt_dir(&bad, &cek), Err(Error::InvalidParameter(_))));
    }

    #[test]
    fn rsa_round_trip_and_tampering() {
        let officer = generate_rsa_certified(2048, "jwe test").unwrap();
        let other = generate_rsa_certified(2048, "other").unwrap();
        let share = random::bytes(64).unwrap();
        let jwe = jwe_encrypt_rsa_oaep256(&officer.cert_der, "not used", &share).unwrap();
        assert_eq!(B64URL.decode(jwe.split('.').nth(1).unwrap()).unwrap().len(), 256);
        assert_eq!(B64URL.decode(jwe.split('.').nth(3).unwrap()).unwrap().len(), 80);
        let out = jwe_decrypt_rsa_oaep256(&jwe, &officer.key_pkcs8_der).unwrap();
        assert_eq!(out.plaintext.expose_secret(), share.as_slice());
        assert_eq!(
            out.header,
            JweHeader {
                alg: "RSA-OAEP-256".into(),
                enc: "A256CBC-HS512".into(),
                kid: Some("not used".into())
            }
        );
        assert!(matches!(
            jwe_decrypt_rsa_oaep256(&jwe, &other.key_pkcs8_der),
            Err(Error::DecryptFailed)
        ));
        for index in 1..=4 {
            let bad = tamper(&jwe, index, |b| flip_last(b));
            assert!(
                matches!(
                    jwe_decrypt_rsa_oaep256(&bad, &officer.key_pkcs8_der),
                    Err(Error::DecryptFailed)
                ),
                "part {index}"
            );
        }
        let bad = tamper(&jwe, 0, |b| {
            *b = br#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":"used"}"#.to_vec()
        });
        assert!(matches!(
            jwe_decrypt_rsa_oaep256(&bad, &officer.key_pkcs8_der),
            Err(Error::DecryptFailed)
        ));
        // Other algorithms are refused, in both directions.
        let bad = tamper(&jwe, 0, |b| {
            *b = br#"{"alg":"RSA-OAEP","enc":"A256CBC-HS512"}"#.to_vec()
        });
        assert!(matches!(
            jwe_decrypt_rsa_oaep256(&bad, &officer.key_pkcs8_der),
            Err(Error::InvalidParameter(_))
        ));
        assert!(jwe_decrypt_dir(&jwe, &random::secret(64).unwrap()).is_err());
        let dir = jwe_encrypt_dir(&random::secret(64).unwrap(), "t", b"x").unwrap();
        assert!(jwe_decrypt_rsa_oaep256(&dir, &officer.key_pkcs8_der).is_err());
        // Not a certificate.
        assert!(jwe_encrypt_rsa_oaep256(b"junk", "k", b"x").is_err());
    }
}
