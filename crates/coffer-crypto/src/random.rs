//! Random bytes from the system CSPRNG (aws-lc-rs `SystemRandom`).
use aws_lc_rs::rand;

use crate::{Error, SecretBytes};

/// `n` random public bytes (ids, nonces, the `/rng` API).
pub fn bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; n];
    rand::fill(&mut out).map_err(|_| Error::Unspecified)?;
    Ok(out)
}

/// `n` random secret bytes (keys, client secrets).
pub fn secret(n: usize) -> Result<SecretBytes, Error> {
    // Allocate inside the zeroizing wrapper first so that no copy of the secret is left behind.
    let mut out = SecretBytes::new(vec![0u8; n]);
    rand::fill(out.expose_secret_mut()).map_err(|_| Error::Unspecified)?;
    Ok(out)
}

/// Fills a fixed-size array with random bytes (nonces).
pub(crate) fn array<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    rand::fill(&mut out).map_err(|_| Error::Unspecified)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_variation() {
        assert_eq!(bytes(0).unwrap().len(), 0);
        let a = bytes(32).unwrap();
        let b = bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "two 256-bit draws collided");
        let s = secret(24).unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.expose_secret().iter().any(|&x| x != 0));
    }
}
