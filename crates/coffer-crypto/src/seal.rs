//! At-rest envelope: AES-256-GCM with a random 96-bit nonce. Format: `0x01 || nonce(12) || ciphertext || tag(16)`.
//! The caller supplies the AAD that binds the ciphertext to its context (instance, key name, version, type).
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{Error, SecretBytes, random};

/// The format version byte.
const VERSION: u8 = 0x01;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Smallest valid sealed blob: version, nonce and tag around an empty plaintext.
const MIN_SEALED_LEN: usize = 1 + NONCE_LEN + TAG_LEN;

/// Seals `plaintext` under the 32-byte `key`, binding `aad`.
pub fn seal(key: &SecretBytes, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let key = sealing_key(key)?;
    let nonce_bytes: [u8; NONCE_LEN] = random::array()?;
    // Encrypt in a zeroizing buffer so that a failure leaves no plaintext copy behind.
    let mut body = zeroize::Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad), &mut body)
        .map_err(|_| Error::Unspecified)?;
    let mut out = Vec::with_capacity(MIN_SEALED_LEN + body.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a sealed blob; any tampering, wrong key or wrong AAD gives `Error::DecryptFailed`.
pub fn open(key: &SecretBytes, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, Error> {
    let key = sealing_key(key)?;
    if sealed.len() < MIN_SEALED_LEN {
        return Err(Error::DecryptFailed);
    }
    let (version, rest) = sealed.split_first().ok_or(Error::DecryptFailed)?;
    if *version != VERSION {
        return Err(Error::DecryptFailed);
    }
    let (nonce, body) = rest.split_at_checked(NONCE_LEN).ok_or(Error::DecryptFailed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::DecryptFailed)?;
    let mut buf = SecretBytes::new(body.to_vec());
    let plaintext_len = key
        .open_in_place(nonce, Aad::from(aad), buf.expose_secret_mut())
        .map_err(|_| Error::DecryptFailed)?
        .len();
    let plaintext = buf.expose_secret().get(..plaintext_len).ok_or(Error::DecryptFailed)?;
    Ok(SecretBytes::new(plaintext.to_vec()))
}

fn sealing_key(key: &SecretBytes) -> Result<LessSafeKey, Error> {
    if key.len() != 32 {
        return Err(Error::InvalidParameter("sealing key must be 32 bytes"));
    }
    let key = UnboundKey::new(&AES_256_GCM, key.expose_secret()).map_err(|_| Error::Unspecified)?;
    Ok(LessSafeKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretBytes {
        random::secret(32).unwrap()
    }

    #[test]
    fn round_trip_and_format() {
        let k = key();
        let sealed = seal(&k, b"ctx", b"hello").unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 5 + 16);
        assert_eq!(sealed[0], 0x01);
        assert_eq!(open(&k, b"ctx", &sealed).unwrap().expose_secret(), b"hello");
        // Fresh nonce every time.
        assert_ne!(seal(&k, b"ctx", b"hello").unwrap(), sealed);
        // Empty plaintext.
        let empty = seal(&k, b"", b"").unwrap();
        assert_eq!(open(&k, b"", &empty).unwrap().len(), 0);
    }

    #[test]
    fn format_is_plain_aes_256_gcm() {
        // Open with aws-lc-rs directly, using the documented layout, to pin the format.
        let k = key();
        let sealed = seal(&k, b"aad", b"payload").unwrap();
        let lk = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.expose_secret()).unwrap());
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..13]).unwrap();
        let mut body = sealed[13..].to_vec();
        let pt = lk.open_in_place(nonce, Aad::from(b"aad"), &mut body).unwrap();
        assert_eq!(pt, b"payload");
    }

    #[test]
    fn tampering_fails() {
        let k = key();
        let sealed = seal(&k, b"ctx", b"secret material").unwrap();
        assert!(matches!(open(&k, b"other", &sealed), Err(Error::DecryptFailed)));
        assert!(matches!(open(&key(), b"ctx", &sealed), Err(Error::DecryptFailed)));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(open(&k, b"ctx", &t), Err(Error::DecryptFailed)), "byte {i}");
        }
        assert!(matches!(open(&k, b"ctx", &sealed[..28]), Err(Error::DecryptFailed)));
        assert!(matches!(open(&k, b"ctx", &[]), Err(Error::DecryptFailed)));
    }

    #[test]
    fn wrong_key_size() {
        let k = SecretBytes::new(vec![0; 16]);
        assert!(matches!(seal(&k, b"", b"x"), Err(Error::InvalidParameter(_))));
        assert!(matches!(open(&k, b"", &[0; 40]), Err(Error::InvalidParameter(_))));
    }
}
