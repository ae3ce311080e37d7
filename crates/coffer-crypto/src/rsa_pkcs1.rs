//! RSA1_5 (PKCS#1 v1.5 type 2) decryption with implicit rejection, the Marvin / Bleichenbacher countermeasure of
//! draft-irtf-cfrg-rsa-guidance (section "Implicit rejection"), as OpenSSL 3.2+ does it by default.
//!
//! A ciphertext whose padding is wrong is not an error: it decrypts to a *synthetic* message, a pseudo-random
//! function of the private key and the ciphertext, whose length is drawn like a real message's. The caller, and
//! the client, cannot tell a well-formed ciphertext from a malformed one by the answer, and the padding check and
//! the choice between the real and the synthetic message are done without secret-dependent branches or memory
//! accesses, so they cannot tell it by the time either.
//!
//! aws-lc-rs only offers PKCS#1 v1.5 decryption that fails on bad padding (`Pkcs1PrivateDecryptingKey`), and an
//! AWS-LC failure also pushes onto its error queue, a data-dependent code path. So this module asks AWS-LC for the
//! raw RSA private operation (`RSA_decrypt` with `RSA_NO_PADDING`: blinded, CRT, fault-checked) through
//! aws-lc-sys, the library aws-lc-rs wraps, and does the padding check and the implicit rejection in Rust.
//!
//! `unsafe` is allowed here, as in `kw192.rs`, for those FFI calls only; each says why it is sound.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use aws_lc_rs::hmac;
use aws_lc_sys::{
    BN_bn2bin_padded, CBS, CBS_init, EVP_PKEY_free, EVP_PKEY_get1_RSA, EVP_parse_private_key, RSA, RSA_NO_PADDING,
    RSA_decrypt, RSA_free, RSA_get0_d, RSA_size,
};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};

use crate::{Error, SecretBytes};

/// An AWS-LC `RSA` private key, freed on drop.
struct RawRsa(NonNull<RSA>);

impl RawRsa {
    /// Parses a PKCS#8 `PrivateKeyInfo` holding an RSA key.
    fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let mut cbs = MaybeUninit::<CBS>::zeroed();
        // SAFETY: `cbs` is valid writable storage for a CBS; CBS_init only stores the pointer and length of `der`,
        // which outlives `cbs` (both live until the end of this function). EVP_parse_private_key reads through
        // the CBS within those bounds and returns a new EVP_PKEY or null. EVP_PKEY_get1_RSA returns a new
        // reference (or null), so freeing the EVP_PKEY afterwards leaves the RSA alive and owned by us.
        let rsa = unsafe {
            CBS_init(cbs.as_mut_ptr(), der.as_ptr(), der.len());
            let pkey = EVP_parse_private_key(cbs.as_mut_ptr());
            if pkey.is_null() {
                return Err(Error::InvalidKey("not a valid RSA PKCS#8 private key"));
            }
            let rsa = EVP_PKEY_get1_RSA(pkey);
            EVP_PKEY_free(pkey);
            rsa
        };
        NonNull::new(rsa)
            .map(Self)
            .ok_or(Error::InvalidKey("not an RSA private key"))
    }

    /// The modulus length in bytes.
    fn size(&self) -> usize {
        // SAFETY: `self.0` is a live RSA object owned by `self`.
        unsafe { RSA_size(self.0.as_ptr()) as usize }
    }

    /// `c^d mod n`, left-padded to the modulus length. Fails (on public facts only) when `c.len()` is not the
    /// modulus length or `c >= n`.
    fn private_op(&self, c: &[u8]) -> Result<SecretBytes, Error> {
        let k = self.size();
        if c.len() != k {
            return Err(Error::DecryptFailed);
        }
        let mut out = SecretBytes::new(vec![0u8; k]);
        let mut written = 0usize;
        // SAFETY: `out` has exactly `k` writable bytes and `k` is passed as its size; `c` has `k` readable bytes.
        // With RSA_NO_PADDING, RSA_decrypt writes at most RSA_size(rsa) = k bytes and sets `written`.
        let rc = unsafe {
            RSA_decrypt(
                self.0.as_ptr(),
                &raw mut written,
                out.expose_secret_mut().as_mut_ptr(),
                k,
                c.as_ptr(),
                c.len(),
                RSA_NO_PADDING,
            )
        };
        if rc != 1 || written != k {
            return Err(Error::DecryptFailed);
        }
        Ok(out)
    }

    /// The private exponent `d`, big-endian, left-padded to `k` bytes.
    fn d_padded(&self, k: usize) -> Result<SecretBytes, Error> {
        let mut out = SecretBytes::new(vec![0u8; k]);
        // SAFETY: RSA_get0_d returns a pointer owned by the live RSA object (or null for a public key, checked);
        // BN_bn2bin_padded writes exactly `k` bytes into `out`, which has `k` writable bytes, or returns 0.
        let rc = unsafe {
            let d = RSA_get0_d(self.0.as_ptr());
            if d.is_null() {
                return Err(Error::InvalidKey("not an RSA private key"));
            }
            BN_bn2bin_padded(out.expose_secret_mut().as_mut_ptr(), k, d)
        };
        if rc != 1 {
            return Err(Error::Unspecified);
        }
        Ok(out)
    }
}

impl Drop for RawRsa {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the one reference this value owns; it is not used after this.
        unsafe { RSA_free(self.0.as_ptr()) }
    }
}

/// The draft's PRF: HMAC-SHA256(key, i (2 bytes) || label || bits (2 bytes)) for i = 0, 1, …, truncated to
/// `len` bytes.
fn prf(key: &hmac::Key, label: &[u8], len: usize) -> Result<SecretBytes, Error> {
    let bits = u16::try_from(len * 8).map_err(|_| Error::Unspecified)?;
    let mut out = Vec::with_capacity(len + 32);
    let mut i: u16 = 0;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(&i.to_be_bytes());
        ctx.update(label);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        i = i.checked_add(1).ok_or(Error::Unspecified)?;
    }
    out.truncate(len);
    Ok(SecretBytes::new(out))
}

/// RSA1_5 decryption with implicit rejection for one key: the AWS-LC key and the key that derives each
/// ciphertext's key-derivation key (HMAC-SHA256 keyed with SHA-256 of `d`).
pub(crate) struct Pkcs1Decryptor {
    rsa: RawRsa,
    d_key: hmac::Key,
}

// SAFETY: AWS-LC documents RSA decryption, `RSA_size` and the `RSA_get0_*` accessors as non-mutating: "may be used
// concurrently" from several threads (rsa.h, "Encryption / Decryption"; lazily computed Montgomery contexts and
// blinding state are behind the object's own lock). This type never calls a mutating function after
// construction, and it owns its reference (freed once, on drop). aws-lc-rs makes the same claim for its own
// `PrivateDecryptingKey`.
unsafe impl Send for Pkcs1Decryptor {}
// SAFETY: as for `Send` above.
unsafe impl Sync for Pkcs1Decryptor {}

impl Pkcs1Decryptor {
    /// Parses the PKCS#8 document of an RSA private key.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, Error> {
        let rsa = RawRsa::from_pkcs8(pkcs8)?;
        let k = rsa.size();
        // Coffer's keys are 2048 to 8192 bits; a 2-byte length and bit count must fit.
        if !(64..=1024).contains(&k) {
            return Err(Error::InvalidKey("unsupported RSA key size"));
        }
        let d_hash = zeroize::Zeroizing::new(crate::hash::sha256(rsa.d_padded(k)?.expose_secret()));
        let d_key = hmac::Key::new(hmac::HMAC_SHA256, d_hash.as_ref());
        Ok(Self { rsa, d_key })
    }

    /// Decrypts an RSA1_5 ciphertext. Only a ciphertext that is not the modulus length, or not below the modulus
    /// (public facts), is an error; bad padding yields the synthetic message.
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, Error> {
        let rsa = &self.rsa;
        let k = rsa.size();
        let em = rsa.private_op(ciphertext)?;
        let em = em.expose_secret();

        // The key-derivation key: HMAC-SHA256 keyed with SHA-256(d), over the ciphertext.
        let kdk = hmac::sign(&self.d_key, ciphertext);
        let kdk = hmac::Key::new(hmac::HMAC_SHA256, kdk.as_ref());
        let candidates = prf(&kdk, b"length", 256)?;
        let synthetic = prf(&kdk, b"message", k)?;

        // The synthetic length: the last of 128 candidates (masked to the bit length of the longest possible
        // message) that is below that longest length.
        let max_len = u32::try_from(k - 2 - 8).map_err(|_| Error::Unspecified)?;
        let mask = u32::MAX >> max_len.leading_zeros();
        let mut synthetic_len: u32 = 0;
        for pair in candidates.expose_secret().chunks_exact(2) {
            let candidate = (u32::from(pair[0]) << 8 | u32::from(pair[1])) & mask;
            synthetic_len.conditional_assign(&candidate, candidate.ct_lt(&max_len));
        }

        // The padding check: 0x00 0x02, at least 8 non-zero bytes, a zero separator. No secret-dependent branch.
        let mut good = em[0].ct_eq(&0) & em[1].ct_eq(&2);
        let mut found_zero = Choice::from(0);
        let mut zero_index: u32 = 0;
        for (i, b) in (0u32..).zip(em.iter()).skip(2) {
            let is_zero = b.ct_eq(&0);
            zero_index.conditional_assign(&i, !found_zero & is_zero);
            found_zero |= is_zero;
        }
        good &= found_zero & zero_index.ct_gt(&9);
        let k32 = u32::try_from(k).map_err(|_| Error::Unspecified)?;
        let real_len = k32.wrapping_sub(zero_index).wrapping_sub(1);
        let len = u32::conditional_select(&synthetic_len, &real_len, good);

        // Both messages end at the last byte; choose byte by byte, then cut to the chosen length (which the answer
        // reveals anyway).
        let chosen: Vec<u8> = em
            .iter()
            .zip(synthetic.expose_secret())
            .map(|(real, synth)| u8::conditional_select(synth, real, good))
            .collect();
        let chosen = SecretBytes::new(chosen);
        let start = k.saturating_sub(len as usize);
        Ok(SecretBytes::new(
            chosen.expose_secret().get(start..).unwrap_or_default().to_vec(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prf_matches_its_definition() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let out = prf(&key, b"length", 40).unwrap();
        let block = |i: u16| {
            let mut data = i.to_be_bytes().to_vec();
            data.extend_from_slice(b"length");
            data.extend_from_slice(&320u16.to_be_bytes());
            hmac::sign(&key, &data).as_ref().to_vec()
        };
        let mut want = block(0);
        want.extend_from_slice(&block(1)[..8]);
        assert_eq!(out.expose_secret(), &want[..]);
    }
}
