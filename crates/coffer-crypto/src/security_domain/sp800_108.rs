//! NIST SP 800-108 key derivation in counter mode with HMAC-SHA-512 (security-domain.md §6.3).
//!
//! `K(i) = HMAC-SHA512(key, BE32(i) || label || 0x00 || context || BE32(L))` for i = 1.., output = the leftmost
//! L bits of `K(1) || K(2) || ...`. Each block is a fresh HMAC (the standard construction). The Azure CLI's own
//! implementation feeds one HMAC object across blocks, so it differs from this one for L > 512; the security domain
//! only ever uses L = 512 (one block), where both agree.
use aws_lc_rs::hmac;

use crate::{Error, SecretBytes};

/// HMAC-SHA-512 output length in bytes.
const BLOCK_LEN: usize = 64;
/// The longest output this function produces (bits). Far more than any use; keeps the counter small.
const MAX_OUT_BITS: u32 = 64 * 1024;

/// SP 800-108 counter-mode KDF with HMAC-SHA-512: `out_bits / 8` bytes derived from `key`.
///
/// `out_bits` must be a positive multiple of 8, at most 65536. The security domain uses `label` = the item tag,
/// `context` = empty and `out_bits` = 512; the 64-byte result is the A256CBC-HS512 content-encryption key.
pub fn sp800_108_hmac_sha512(key: &[u8], label: &[u8], context: &[u8], out_bits: u32) -> Result<SecretBytes, Error> {
    if out_bits == 0 || !out_bits.is_multiple_of(8) || out_bits > MAX_OUT_BITS {
        return Err(Error::InvalidParameter(
            "SP 800-108 output length must be a positive multiple of 8 bits, at most 65536",
        ));
    }
    let out_len = usize::try_from(out_bits / 8).map_err(|_| Error::Unspecified)?;
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA512, key);
    let mut out = SecretBytes::new(vec![0u8; out_len]);
    for (i, chunk) in out.expose_secret_mut().chunks_mut(BLOCK_LEN).enumerate() {
        let counter = u32::try_from(i + 1).map_err(|_| Error::Unspecified)?;
        let mut ctx = hmac::Context::with_key(&hmac_key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        ctx.update(&[0u8]);
        ctx.update(context);
        ctx.update(&out_bits.to_be_bytes());
        let tag = ctx.sign();
        for (d, s) in chunk.iter_mut().zip(tag.as_ref()) {
            *d = *s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// security-domain.md §6.3, first vector (the clients' own self-test).
    #[test]
    fn vector_label_context_256() {
        let key = [0x41u8; 32];
        let out = sp800_108_hmac_sha512(&key, b"label", b"context", 256).unwrap();
        assert_eq!(
            hex::encode(out.expose_secret()),
            "f0ca51f6308791404bf68b56024ee7c64d6c737716f81d47e1e68b5c4e399575"
        );
    }

    /// security-domain.md §6.3, second vector: the per-item key the security domain uses.
    #[test]
    fn vector_hsm_backup_512() {
        let key: Vec<u8> = (0u8..32).collect();
        let out = sp800_108_hmac_sha512(&key, b"hsm_backup", b"", 512).unwrap();
        assert_eq!(
            hex::encode(out.expose_secret()),
            "2d34f55a1dd64e68d793ce19439e032e913bc2c83a99237a33c1bde888fb91da\
             91626f37c72aaff2d718d3e7a37f0a39417a66839669da3c76fe4336aec9747c"
        );
    }

    /// Multi-block output follows the standard construction: block i is an independent HMAC with counter i.
    #[test]
    fn multi_block_is_standard_counter_mode() {
        let key = [7u8; 32];
        let out = sp800_108_hmac_sha512(&key, b"l", b"c", 1024 + 64).unwrap();
        assert_eq!(out.len(), 136);
        let k = hmac::Key::new(hmac::HMAC_SHA512, &key);
        let mut expected = Vec::new();
        for i in 1u32..=3 {
            let mut msg = i.to_be_bytes().to_vec();
            msg.extend_from_slice(b"l\0c");
            msg.extend_from_slice(&1088u32.to_be_bytes());
            expected.extend_from_slice(hmac::sign(&k, &msg).as_ref());
        }
        expected.truncate(136);
        assert_eq!(out.expose_secret(), expected.as_slice());
    }

    #[test]
    fn rejects_bad_lengths() {
        for bits in [0, 7, 100, MAX_OUT_BITS + 8] {
            assert!(matches!(
                sp800_108_hmac_sha512(b"k", b"l", b"", bits),
                Err(Error::InvalidParameter(_))
            ));
        }
    }
}
