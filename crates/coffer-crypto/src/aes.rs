//! AES encryption and key wrap: GCM, CBC (no padding), CBC with PKCS#7 padding, RFC 3394 key wrap and RFC 5649
//! key wrap with padding, for 128-, 192- and 256-bit keys.
use aws_lc_rs::aead::{self, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap, KeyWrapPadded};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{CipherOutput, CipherParams, EncryptionAlgorithm};
use crate::{Error, SecretBytes, kw192, random};

/// GCM tag length (the only one Managed HSM uses).
const TAG_LEN: usize = 16;
/// AES block length, and the CBC IV length.
const BLOCK_LEN: usize = 16;

/// The mode an algorithm names, independent of key size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cbc,
    CbcPad,
    Gcm,
    Kw,
    Kwp,
}

/// The mode of `alg` and the key length in bytes it requires (`None`: the key's own size).
fn mode_and_key_len(alg: EncryptionAlgorithm) -> Result<(Mode, Option<usize>), Error> {
    use EncryptionAlgorithm as A;
    Ok(match alg {
        A::A128Cbc => (Mode::Cbc, Some(16)),
        A::A192Cbc => (Mode::Cbc, Some(24)),
        A::A256Cbc => (Mode::Cbc, Some(32)),
        A::A128CbcPad => (Mode::CbcPad, Some(16)),
        A::A192CbcPad => (Mode::CbcPad, Some(24)),
        A::A256CbcPad => (Mode::CbcPad, Some(32)),
        A::A128Gcm => (Mode::Gcm, Some(16)),
        A::A192Gcm => (Mode::Gcm, Some(24)),
        A::A256Gcm => (Mode::Gcm, Some(32)),
        A::A128Kw => (Mode::Kw, Some(16)),
        A::A192Kw => (Mode::Kw, Some(24)),
        A::A256Kw => (Mode::Kw, Some(32)),
        A::CkmAesKeyWrap => (Mode::Kw, None),
        A::CkmAesKeyWrapPad => (Mode::Kwp, None),
        A::Rsa1_5 | A::RsaOaep | A::RsaOaep256 => {
            return Err(Error::AlgorithmMismatch {
                alg: alg.name(),
                reason: "an AES key supports only AES encryption and key wrap",
            });
        }
    })
}

/// Checks the algorithm against the key and returns its mode.
fn mode_for_key(alg: EncryptionAlgorithm, key: &SecretBytes) -> Result<Mode, Error> {
    let (mode, key_len) = mode_and_key_len(alg)?;
    match key_len {
        Some(len) if len != key.len() => Err(Error::AlgorithmMismatch {
            alg: alg.name(),
            reason: "the AES key size does not match the algorithm",
        }),
        _ if !matches!(key.len(), 16 | 24 | 32) => Err(Error::InvalidKey("AES key must be 16, 24 or 32 bytes")),
        _ => Ok(mode),
    }
}

/// Encrypts or wraps `plaintext` under the AES key `key`.
pub(crate) fn encrypt(
    key: &SecretBytes,
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
    params: &CipherParams<'_>,
) -> Result<CipherOutput, Error> {
    match mode_for_key(alg, key)? {
        Mode::Gcm => gcm_encrypt(key, plaintext, params),
        Mode::Cbc => cbc_encrypt(key, plaintext, params, false),
        Mode::CbcPad => cbc_encrypt(key, plaintext, params, true),
        Mode::Kw => {
            reject_params(params)?;
            Ok(CipherOutput {
                value: kw_wrap(key, plaintext)?,
                iv: None,
                tag: None,
            })
        }
        Mode::Kwp => {
            reject_params(params)?;
            Ok(CipherOutput {
                value: kwp_wrap(key, plaintext)?,
                iv: None,
                tag: None,
            })
        }
    }
}

/// Decrypts or unwraps `ciphertext` under the AES key `key`.
pub(crate) fn decrypt(
    key: &SecretBytes,
    alg: EncryptionAlgorithm,
    ciphertext: &[u8],
    params: &CipherParams<'_>,
) -> Result<SecretBytes, Error> {
    match mode_for_key(alg, key)? {
        Mode::Gcm => gcm_decrypt(key, ciphertext, params),
        Mode::Cbc => cbc_decrypt(key, ciphertext, params, false),
        Mode::CbcPad => cbc_decrypt(key, ciphertext, params, true),
        Mode::Kw => {
            reject_params(params)?;
            kw_unwrap(key, ciphertext)
        }
        Mode::Kwp => {
            reject_params(params)?;
            kwp_unwrap(key, ciphertext)
        }
    }
}

/// Key wrap takes no IV, AAD or tag.
fn reject_params(params: &CipherParams<'_>) -> Result<(), Error> {
    if params.iv.is_some() || params.aad.is_some() || params.tag.is_some() {
        return Err(Error::InvalidParameter("AES key wrap takes no iv, aad or tag"));
    }
    Ok(())
}

// ---- GCM ----

fn gcm_key(key: &SecretBytes) -> Result<LessSafeKey, Error> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(Error::InvalidKey("AES key must be 16, 24 or 32 bytes")),
    };
    let key = UnboundKey::new(alg, key.expose_secret()).map_err(|_| Error::Unspecified)?;
    Ok(LessSafeKey::new(key))
}

fn gcm_encrypt(key: &SecretBytes, plaintext: &[u8], params: &CipherParams<'_>) -> Result<CipherOutput, Error> {
    if params.iv.is_some() {
        return Err(Error::InvalidParameter(
            "the service generates the GCM iv; do not send one",
        ));
    }
    if params.tag.is_some() {
        return Err(Error::InvalidParameter("GCM encrypt takes no tag"));
    }
    let key = gcm_key(key)?;
    let nonce: [u8; NONCE_LEN] = random::array()?;
    let aad = params.aad.unwrap_or_default();
    let mut buf = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| Error::InvalidParameter("GCM input too long"))?;
    // `buf` now holds ciphertext, which is public.
    let value = std::mem::take(&mut *buf);
    Ok(CipherOutput {
        value,
        iv: Some(nonce.to_vec()),
        tag: Some(tag.as_ref().to_vec()),
    })
}

fn gcm_decrypt(key: &SecretBytes, ciphertext: &[u8], params: &CipherParams<'_>) -> Result<SecretBytes, Error> {
    let iv = params.iv.ok_or(Error::InvalidParameter("GCM decrypt needs the iv"))?;
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Error::InvalidParameter("GCM iv must be 12 bytes"))?;
    let tag = params.tag.ok_or(Error::InvalidParameter("GCM decrypt needs the tag"))?;
    if tag.len() != TAG_LEN {
        return Err(Error::InvalidParameter("GCM tag must be 16 bytes"));
    }
    let key = gcm_key(key)?;
    let aad = params.aad.unwrap_or_default();
    // Ciphertext and tag are public; the buffer becomes secret once it is decrypted in place.
    let mut joined = Vec::with_capacity(ciphertext.len() + TAG_LEN);
    joined.extend_from_slice(ciphertext);
    joined.extend_from_slice(tag);
    let mut buf = SecretBytes::new(joined);
    let len = key
        .open_in_place(nonce, Aad::from(aad), buf.expose_secret_mut())
        .map_err(|_| Error::DecryptFailed)?
        .len();
    truncate_secret(buf, len)
}

// ---- CBC ----

fn cbc_algorithm(key: &SecretBytes) -> Result<&'static cipher::Algorithm, Error> {
    Ok(match key.len() {
        16 => &cipher::AES_128,
        24 => &cipher::AES_192,
        32 => &cipher::AES_256,
        _ => return Err(Error::InvalidKey("AES key must be 16, 24 or 32 bytes")),
    })
}

/// The IV of a CBC operation. `aad` is ignored, as the service ignores it for CBC (the Azure SDKs' recorded tests
/// send the same `aad` with every AES algorithm, and the service answers CBC requests normally).
fn cbc_iv(params: &CipherParams<'_>) -> Result<FixedLength<BLOCK_LEN>, Error> {
    if params.tag.is_some() {
        return Err(Error::InvalidParameter("a tag is only valid for GCM"));
    }
    let iv = params.iv.ok_or(Error::InvalidParameter("CBC needs a 16-byte iv"))?;
    FixedLength::<BLOCK_LEN>::try_from(iv).map_err(|_| Error::InvalidParameter("CBC iv must be 16 bytes"))
}

fn cbc_encrypt(
    key: &SecretBytes,
    plaintext: &[u8],
    params: &CipherParams<'_>,
    padded: bool,
) -> Result<CipherOutput, Error> {
    let iv = cbc_iv(params)?;
    let iv_out = iv.as_ref().to_vec();
    let unbound = UnboundCipherKey::new(cbc_algorithm(key)?, key.expose_secret()).map_err(|_| Error::Unspecified)?;
    let context = EncryptionContext::Iv128(iv);
    // Reserve room for the padding block up front, so that padding never reallocates (which would leave a
    // plaintext copy in freed memory).
    let mut buf: Vec<u8> = Vec::with_capacity(plaintext.len() + BLOCK_LEN);
    buf.extend_from_slice(plaintext);
    let result = if padded {
        PaddedBlockEncryptingKey::cbc_pkcs7(unbound)
            .and_then(|k| k.less_safe_encrypt(&mut buf, context))
            .map_err(|_| Error::Unspecified)
    } else if !plaintext.len().is_multiple_of(BLOCK_LEN) {
        Err(Error::InvalidParameter(
            "A*CBC (no padding) needs a multiple of 16 bytes; use A*CBCPAD",
        ))
    } else {
        EncryptingKey::cbc(unbound)
            .and_then(|k| k.less_safe_encrypt(&mut buf, context))
            .map_err(|_| Error::InvalidParameter("CBC input rejected"))
    };
    if let Err(e) = result {
        buf.zeroize();
        return Err(e);
    }
    Ok(CipherOutput {
        value: buf,
        iv: Some(iv_out),
        tag: None,
    })
}

fn cbc_decrypt(
    key: &SecretBytes,
    ciphertext: &[u8],
    params: &CipherParams<'_>,
    padded: bool,
) -> Result<SecretBytes, Error> {
    let iv = cbc_iv(params)?;
    let unbound = UnboundCipherKey::new(cbc_algorithm(key)?, key.expose_secret()).map_err(|_| Error::Unspecified)?;
    let context = DecryptionContext::Iv128(iv);
    let mut buf = SecretBytes::new(ciphertext.to_vec());
    let len = if padded {
        // Length, padding and every other failure look the same to the caller.
        PaddedBlockDecryptingKey::cbc_pkcs7(unbound)
            .and_then(|k| k.decrypt(buf.expose_secret_mut(), context).map(|p| p.len()))
            .map_err(|_| Error::DecryptFailed)?
    } else {
        if !ciphertext.len().is_multiple_of(BLOCK_LEN) {
            return Err(Error::InvalidParameter(
                "A*CBC ciphertext must be a multiple of 16 bytes",
            ));
        }
        DecryptingKey::cbc(unbound)
            .and_then(|k| k.decrypt(buf.expose_secret_mut(), context).map(|p| p.len()))
            .map_err(|_| Error::DecryptFailed)?
    };
    truncate_secret(buf, len)
}

// ---- Key wrap (RFC 3394) and key wrap with padding (RFC 5649) ----

fn kw_wrap(key: &SecretBytes, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if plaintext.len() < 16 || !plaintext.len().is_multiple_of(8) {
        return Err(Error::InvalidParameter(
            "key wrap input must be a multiple of 8 bytes, at least 16",
        ));
    }
    let Some(kek) = rs_kek(key)? else {
        return kw192::wrap(key.expose_secret(), plaintext);
    };
    let mut out = vec![0u8; plaintext.len() + 8];
    let len = kek
        .wrap(plaintext, &mut out)
        .map_err(|_| Error::InvalidParameter("key wrap input rejected"))?
        .len();
    out.truncate(len);
    Ok(out)
}

fn kw_unwrap(key: &SecretBytes, ciphertext: &[u8]) -> Result<SecretBytes, Error> {
    if ciphertext.len() < 24 || !ciphertext.len().is_multiple_of(8) {
        return Err(Error::DecryptFailed);
    }
    let Some(kek) = rs_kek(key)? else {
        return kw192::unwrap(key.expose_secret(), ciphertext);
    };
    let mut out = SecretBytes::new(vec![0u8; ciphertext.len() - 8]);
    let len = kek
        .unwrap(ciphertext, out.expose_secret_mut())
        .map_err(|_| Error::DecryptFailed)?
        .len();
    truncate_secret(out, len)
}

fn kwp_wrap(key: &SecretBytes, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if plaintext.is_empty() || u32::try_from(plaintext.len()).is_err() {
        return Err(Error::InvalidParameter(
            "key wrap with padding input must be 1..2^32 bytes",
        ));
    }
    let Some(kek) = rs_kek(key)? else {
        return kw192::wrap_padded(key.expose_secret(), plaintext);
    };
    let mut out = vec![0u8; plaintext.len() + 15];
    let len = kek
        .wrap_with_padding(plaintext, &mut out)
        .map_err(|_| Error::InvalidParameter("key wrap with padding input rejected"))?
        .len();
    out.truncate(len);
    Ok(out)
}

fn kwp_unwrap(key: &SecretBytes, ciphertext: &[u8]) -> Result<SecretBytes, Error> {
    if ciphertext.len() < 16 || !ciphertext.len().is_multiple_of(8) {
        return Err(Error::DecryptFailed);
    }
    let Some(kek) = rs_kek(key)? else {
        return kw192::unwrap_padded(key.expose_secret(), ciphertext);
    };
    let mut out = SecretBytes::new(vec![0u8; ciphertext.len()]);
    let len = kek
        .unwrap_with_padding(ciphertext, out.expose_secret_mut())
        .map_err(|_| Error::DecryptFailed)?
        .len();
    truncate_secret(out, len)
}

/// The aws-lc-rs KEK for 128- and 256-bit keys; `None` for 192-bit keys, which go through `kw192`.
fn rs_kek(key: &SecretBytes) -> Result<Option<AesKek>, Error> {
    let cipher = match key.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        24 => return Ok(None),
        _ => return Err(Error::InvalidKey("AES key must be 16, 24 or 32 bytes")),
    };
    AesKek::new(cipher, key.expose_secret())
        .map(Some)
        .map_err(|_| Error::Unspecified)
}

/// Keeps the first `len` bytes of a secret buffer (the rest is zeroized with it).
fn truncate_secret(buf: SecretBytes, len: usize) -> Result<SecretBytes, Error> {
    let kept = buf.expose_secret().get(..len).ok_or(Error::DecryptFailed)?;
    Ok(SecretBytes::new(kept.to_vec()))
}
