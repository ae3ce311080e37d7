//! Hashes: SHA-1 (certificate thumbprints only), SHA-256/384/512, HMAC-SHA256.
use aws_lc_rs::{digest, hmac};

use crate::SecretBytes;

/// SHA-1. Only for certificate thumbprints (`x5t`), never for security decisions on its own.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    copy_prefix(
        &mut out,
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref(),
    );
    out
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    copy_prefix(&mut out, digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// SHA-384 (48 bytes).
pub fn sha384(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA384, data).as_ref().to_vec()
}

/// SHA-512 (64 bytes).
pub fn sha512(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA512, data).as_ref().to_vec()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &SecretBytes, data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose_secret());
    let mut out = [0u8; 32];
    copy_prefix(&mut out, hmac::sign(&key, data).as_ref());
    out
}

/// Copies as much of `src` as fits into `dst` (the lengths are equal for every call above; this avoids a
/// panicking `copy_from_slice`).
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2 appendix examples for "abc".
    #[test]
    fn known_answers_abc() {
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha384(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex(&sha512(b"abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
