//! EC keys (P-256, P-256K = secp256k1, P-384, P-521): ECDSA over caller-supplied digests, raw `r || s` output.
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, UnparsedPublicKey,
};

use crate::keys::{Curve, SignatureAlgorithm};
use crate::{Error, SecretBytes};

/// An EC private key bound to the one ECDSA algorithm its curve supports.
pub(crate) struct EcKey {
    curve: Curve,
    pair: EcdsaKeyPair,
}

impl EcKey {
    pub(crate) fn generate(curve: Curve) -> Result<Self, Error> {
        let pair = EcdsaKeyPair::generate(signing_algorithm(curve)).map_err(|_| Error::Unspecified)?;
        Ok(Self { curve, pair })
    }

    /// Parses an unencrypted PKCS#8 document; the key must be on `curve`.
    pub(crate) fn from_pkcs8(curve: Curve, der: &[u8]) -> Result<Self, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(signing_algorithm(curve), der)
            .map_err(|_| Error::InvalidKey("not a valid EC PKCS#8 private key for this curve"))?;
        Ok(Self { curve, pair })
    }

    /// Imports `d` with the public point (x, y). Shorter values are left-padded with zeros (some encoders strip
    /// them); AWS-LC checks that the point is on the curve and equals `d·G`.
    pub(crate) fn from_components(curve: Curve, d: &SecretBytes, x: &[u8], y: &[u8]) -> Result<Self, Error> {
        let len = curve.coordinate_len();
        let d = SecretBytes::new(
            left_pad(d.expose_secret(), len).ok_or(Error::InvalidKey("EC d is too long for the curve"))?,
        );
        let point = uncompressed_point(curve, x, y)?;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(signing_algorithm(curve), d.expose_secret(), &point)
            .map_err(|_| {
            Error::InvalidKey("EC private key and public point do not match or are not on the curve")
        })?;
        Ok(Self { curve, pair })
    }

    pub(crate) fn curve(&self) -> Curve {
        self.curve
    }

    /// (x, y), each exactly `coordinate_len` bytes.
    pub(crate) fn public_coordinates(&self) -> (Vec<u8>, Vec<u8>) {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = self.pair.public_key().as_ref();
        let len = self.curve.coordinate_len();
        let x = point.get(1..1 + len).unwrap_or_default().to_vec();
        let y = point.get(1 + len..1 + 2 * len).unwrap_or_default().to_vec();
        (x, y)
    }

    pub(crate) fn to_pkcs8(&self) -> Result<SecretBytes, Error> {
        let doc = self.pair.to_pkcs8v1().map_err(|_| Error::Unspecified)?;
        Ok(SecretBytes::new(doc.as_ref().to_vec()))
    }

    pub(crate) fn sign(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let digest = import_digest(self.curve, alg, digest)?;
        let sig = self.pair.sign_digest(&digest).map_err(|_| Error::Unspecified)?;
        Ok(sig.as_ref().to_vec())
    }

    /// Verifies with this key's public point (the same path as a public-key-only verify).
    pub(crate) fn verify(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<bool, Error> {
        verify_with_point(self.curve, self.pair.public_key().as_ref(), alg, digest, signature)
    }
}

/// Checks that `alg` is `curve`'s algorithm and wraps the digest, checking its length.
fn import_digest(curve: Curve, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Digest, Error> {
    if alg.curve() != Some(curve) {
        return Err(Error::AlgorithmMismatch {
            alg: alg.name(),
            reason: curve_requirement(curve),
        });
    }
    Digest::import_less_safe(digest, digest_algorithm(curve))
        .map_err(|_| Error::InvalidParameter("digest length does not match the algorithm"))
}

/// Builds the uncompressed SEC1 point `0x04 || x || y`, left-padding each coordinate to the curve size.
pub(crate) fn uncompressed_point(curve: Curve, x: &[u8], y: &[u8]) -> Result<Vec<u8>, Error> {
    let len = curve.coordinate_len();
    let x = left_pad(x, len).ok_or(Error::InvalidKey("EC x is too long for the curve"))?;
    let y = left_pad(y, len).ok_or(Error::InvalidKey("EC y is too long for the curve"))?;
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// Verifies a raw `r || s` signature over a caller-computed digest with an uncompressed public point. A bad
/// signature (including one of the wrong length) is `Ok(false)`; a wrong algorithm or digest length is an `Err`.
/// A point that is not on the curve never verifies.
pub(crate) fn verify_with_point(
    curve: Curve,
    point: &[u8],
    alg: SignatureAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, Error> {
    let digest = import_digest(curve, alg, digest)?;
    let public = UnparsedPublicKey::new(verification_algorithm(curve), point);
    Ok(public.verify_digest(&digest, signature).is_ok())
}

fn curve_requirement(curve: Curve) -> &'static str {
    match curve {
        Curve::P256 => "a P-256 key signs only with ES256",
        Curve::P256K => "a P-256K key signs only with ES256K",
        Curve::P384 => "a P-384 key signs only with ES384",
        Curve::P521 => "a P-521 key signs only with ES512",
    }
}

fn signing_algorithm(curve: Curve) -> &'static EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P256K => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn verification_algorithm(curve: Curve) -> &'static EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P256K => &signature::ECDSA_P256K1_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

fn digest_algorithm(curve: Curve) -> &'static digest::Algorithm {
    match curve {
        Curve::P256 | Curve::P256K => &digest::SHA256,
        Curve::P384 => &digest::SHA384,
        Curve::P521 => &digest::SHA512,
    }
}

/// Strips leading zeros, then left-pads to `len`. `None` if the value does not fit.
fn left_pad(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let significant = bytes.get(start..)?;
    let pad = len.checked_sub(significant.len())?;
    // One allocation of the final size, so no reallocation leaves a partial copy of a secret behind.
    let mut out = Vec::with_capacity(len);
    out.resize(pad, 0);
    out.extend_from_slice(significant);
    Some(out)
}
