//! Key derivation: HKDF-SHA256 (RFC 5869) from the domain secret to purpose-bound keys.
use aws_lc_rs::hkdf;

use crate::{Error, SecretBytes};

/// The longest output HKDF-SHA256 can produce: 255 blocks of 32 bytes (RFC 5869 §2.3).
const MAX_OUTPUT_LEN: usize = 255 * 32;

/// HKDF-SHA256 extract-and-expand. `info` names the purpose (e.g. b"coffer/key-material/v1").
///
/// `len` must be between 1 and 8160 bytes, otherwise `Error::InvalidParameter`.
pub fn hkdf_sha256(ikm: &SecretBytes, salt: &[u8], info: &[u8], len: usize) -> Result<SecretBytes, Error> {
    if len == 0 || len > MAX_OUTPUT_LEN {
        return Err(Error::InvalidParameter("HKDF output length must be 1..=8160 bytes"));
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm.expose_secret());
    let info = [info];
    let okm = prk
        .expand(&info, OutputLen(len))
        .map_err(|_| Error::InvalidParameter("HKDF output length"))?;
    let mut out = SecretBytes::new(vec![0u8; len]);
    okm.fill(out.expose_secret_mut()).map_err(|_| Error::Unspecified)?;
    Ok(out)
}

/// The requested output length, as aws-lc-rs wants it.
struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_lengths() {
        let ikm = SecretBytes::new(vec![1; 32]);
        assert!(matches!(
            hkdf_sha256(&ikm, b"", b"", 0),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            hkdf_sha256(&ikm, b"", b"", MAX_OUTPUT_LEN + 1),
            Err(Error::InvalidParameter(_))
        ));
        assert_eq!(
            hkdf_sha256(&ikm, b"", b"", MAX_OUTPUT_LEN).unwrap().len(),
            MAX_OUTPUT_LEN
        );
    }

    #[test]
    fn info_separates_purposes() {
        let ikm = SecretBytes::new(vec![7; 32]);
        let a = hkdf_sha256(&ikm, b"salt", b"coffer/a", 32).unwrap();
        let b = hkdf_sha256(&ikm, b"salt", b"coffer/b", 32).unwrap();
        assert!(!a.ct_eq(b.expose_secret()));
        let a2 = hkdf_sha256(&ikm, b"salt", b"coffer/a", 32).unwrap();
        assert!(a.ct_eq(a2.expose_secret()));
    }
}
