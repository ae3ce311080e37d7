//! `SecretBytes`: the one container for secret byte strings.

/// Secret bytes: zeroized on drop, never printed, compared in constant time.
pub struct SecretBytes(zeroize::Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes` (they are zeroized when this value drops).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(zeroize::Zeroizing::new(bytes))
    }
    /// Reads the secret. Every caller is a place where the secret is used; keep them few.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
    /// Mutable access for filling a buffer allocated inside the wrapper (RNG, decryption output).
    pub(crate) fn expose_secret_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }
    /// An explicit copy (secrets do not implement `Clone` so that copies are visible).
    pub fn duplicate(&self) -> Self {
        Self::new(self.0.to_vec())
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}

/// Constant-time comparison of two public-length byte strings (e.g. hashes of secrets).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_comparison_works() {
        let s = SecretBytes::new(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(format!("{s:?}"), "SecretBytes(..)");
        assert!(s.ct_eq(&[0xde, 0xad, 0xbe, 0xef]));
        assert!(!s.ct_eq(&[0xde, 0xad, 0xbe]));
        assert!(!s.ct_eq(&[0xde, 0xad, 0xbe, 0xee]));
        let d = s.duplicate();
        assert_eq!(d.expose_secret(), s.expose_secret());
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(SecretBytes::new(Vec::new()).is_empty());
    }
}
