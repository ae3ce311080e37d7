//! AES-192 key wrap (RFC 3394) and key wrap with padding (RFC 5649) through raw aws-lc-sys calls.
//!
//! aws-lc-rs's `key_wrap` module only offers AES-128 and AES-256 KEKs; AWS-LC itself supports every AES key size,
//! so for a 192-bit KEK this module calls the same four C functions that aws-lc-rs wraps. With `rsa_pkcs1.rs` (raw
//! RSA for implicit rejection) it is one of the two places in Coffer with `unsafe` code. Every buffer size is
//! checked in Rust before the call, so AWS-LC never writes past the end of an output buffer, and the expanded AES
//! key schedule is wiped after use.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use aws_lc_sys::{
    AES_KEY, AES_set_decrypt_key, AES_set_encrypt_key, AES_unwrap_key, AES_unwrap_key_padded, AES_wrap_key,
    AES_wrap_key_padded, OPENSSL_cleanse,
};

use crate::{Error, SecretBytes};

/// The only key length this module accepts.
const KEY_LEN: usize = 24;
/// RFC 3394 / RFC 5649 integrity check block length.
const ICV_LEN: usize = 8;

/// An expanded AES-192 key schedule that is wiped when dropped.
struct KeySchedule(AES_KEY);

impl KeySchedule {
    /// Expands `kek` for encryption (`for_encryption`) or decryption.
    fn new(kek: &[u8], for_encryption: bool) -> Result<Self, Error> {
        if kek.len() != KEY_LEN {
            return Err(Error::InvalidParameter("AES-192 key wrap needs a 24-byte key"));
        }
        // Zero-initialised, so the value is fully initialised whatever parts of it AWS-LC writes.
        let mut schedule = MaybeUninit::<AES_KEY>::zeroed();
        // SAFETY: `kek` points to exactly 24 readable bytes (checked above) and 192 is the matching bit length;
        // `schedule` is a valid, writable, properly aligned `AES_KEY`. Both functions only read the key and write
        // the schedule, and return 0 on success, in which case they have fully initialised it.
        let rc = unsafe {
            if for_encryption {
                AES_set_encrypt_key(kek.as_ptr(), 192, schedule.as_mut_ptr())
            } else {
                AES_set_decrypt_key(kek.as_ptr(), 192, schedule.as_mut_ptr())
            }
        };
        if rc != 0 {
            return Err(Error::Unspecified);
        }
        // SAFETY: `AES_KEY` is plain integers, for which the all-zero bytes `zeroed()` started from are valid, and
        // the call above returned 0, so it has written the key schedule.
        Ok(Self(unsafe { schedule.assume_init() }))
    }
}

impl Drop for KeySchedule {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a live, writable `AES_KEY`; OPENSSL_cleanse overwrites exactly
        // `size_of::<AES_KEY>()` bytes starting at its address, and every bit pattern is a valid `AES_KEY`.
        unsafe {
            OPENSSL_cleanse((&raw mut self.0).cast::<std::ffi::c_void>(), size_of::<AES_KEY>());
        }
    }
}

/// RFC 3394 wrap with a 192-bit KEK. `plaintext` must be a multiple of 8 bytes and at least 16.
pub(crate) fn wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if plaintext.len() < 16 || !plaintext.len().is_multiple_of(8) {
        return Err(Error::InvalidParameter(
            "key wrap input must be a multiple of 8 bytes, at least 16",
        ));
    }
    let schedule = KeySchedule::new(kek, true)?;
    let out_len = plaintext
        .len()
        .checked_add(ICV_LEN)
        .ok_or(Error::InvalidParameter("input too long"))?;
    let mut out = vec![0u8; out_len];
    // SAFETY: `schedule` is an encryption schedule; a null IV selects the RFC 3394 default IV; `out` has room for
    // `plaintext.len() + 8` bytes, which is exactly what AES_wrap_key writes on success; `plaintext` is readable
    // for its length. The function returns the number of bytes written, or -1.
    let written = unsafe {
        AES_wrap_key(
            &raw const schedule.0,
            std::ptr::null(),
            out.as_mut_ptr(),
            plaintext.as_ptr(),
            plaintext.len(),
        )
    };
    if usize::try_from(written).ok() != Some(out_len) {
        return Err(Error::InvalidParameter("key wrap input rejected"));
    }
    Ok(out)
}

/// RFC 3394 unwrap with a 192-bit KEK. Any integrity or length failure is `Error::DecryptFailed`.
pub(crate) fn unwrap(kek: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, Error> {
    if ciphertext.len() < 24 || !ciphertext.len().is_multiple_of(8) {
        return Err(Error::DecryptFailed);
    }
    let schedule = KeySchedule::new(kek, false)?;
    let out_len = ciphertext.len() - ICV_LEN;
    let mut out = SecretBytes::new(vec![0u8; out_len]);
    // SAFETY: `schedule` is a decryption schedule; a null IV selects the RFC 3394 default IV; `out` has room for
    // `ciphertext.len() - 8` bytes, exactly what AES_unwrap_key writes on success; `ciphertext` is readable for
    // its length. The function returns the number of bytes written, or -1; on failure `out` may hold unverified
    // data, which is zeroized when the `SecretBytes` drops.
    let written = unsafe {
        AES_unwrap_key(
            &raw const schedule.0,
            std::ptr::null(),
            out.expose_secret_mut().as_mut_ptr(),
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    };
    if usize::try_from(written).ok() != Some(out_len) {
        return Err(Error::DecryptFailed);
    }
    Ok(out)
}

/// RFC 5649 wrap with padding and a 192-bit KEK. `plaintext` must not be empty.
pub(crate) fn wrap_padded(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if plaintext.is_empty() || u32::try_from(plaintext.len()).is_err() {
        return Err(Error::InvalidParameter(
            "key wrap with padding input must be 1..2^32 bytes",
        ));
    }
    let schedule = KeySchedule::new(kek, true)?;
    // The padded length rounded up to 8, plus the 8-byte AIV: at most `len + 15`.
    let max_out = plaintext
        .len()
        .checked_add(15)
        .ok_or(Error::InvalidParameter("input too long"))?;
    let mut out = vec![0u8; max_out];
    let mut written: usize = 0;
    // SAFETY: `schedule` is an encryption schedule; `out` is writable for `max_out` bytes and AES_wrap_key_padded
    // never writes more than `max_out`; `written` is a valid `usize` out-parameter; `plaintext` is readable for its
    // length. Returns 1 on success.
    let rc = unsafe {
        AES_wrap_key_padded(
            &raw const schedule.0,
            out.as_mut_ptr(),
            &raw mut written,
            max_out,
            plaintext.as_ptr(),
            plaintext.len(),
        )
    };
    if rc != 1 || written > max_out {
        return Err(Error::InvalidParameter("key wrap with padding input rejected"));
    }
    out.truncate(written);
    Ok(out)
}

/// RFC 5649 unwrap with a 192-bit KEK. Any integrity, padding or length failure is `Error::DecryptFailed`.
pub(crate) fn unwrap_padded(kek: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, Error> {
    if ciphertext.len() < 16 || !ciphertext.len().is_multiple_of(8) {
        return Err(Error::DecryptFailed);
    }
    let schedule = KeySchedule::new(kek, false)?;
    let max_out = ciphertext.len();
    let mut out = SecretBytes::new(vec![0u8; max_out]);
    let mut written: usize = 0;
    // SAFETY: `schedule` is a decryption schedule; `out` is writable for `max_out` bytes and
    // AES_unwrap_key_padded never writes more than `max_out`; `written` is a valid `usize` out-parameter;
    // `ciphertext` is readable for its length. Returns 1 on success.
    let rc = unsafe {
        AES_unwrap_key_padded(
            &raw const schedule.0,
            out.expose_secret_mut().as_mut_ptr(),
            &raw mut written,
            max_out,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    };
    if rc != 1 {
        return Err(Error::DecryptFailed);
    }
    let plaintext = out.expose_secret().get(..written).ok_or(Error::DecryptFailed)?;
    Ok(SecretBytes::new(plaintext.to_vec()))
}
