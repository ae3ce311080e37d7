//! RSA keys: PKCS#1 v1.5 and PSS signatures over caller-supplied digests, and PKCS#1 v1.5 / OAEP encryption.
//!
//! One key is held twice: as an aws-lc-rs `RsaKeyPair` (signing) and as a `PrivateDecryptingKey` (decryption),
//! both parsed from the same PKCS#8 document. Encryption uses the public half.
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{
    KeyPairComponents, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicKeyComponents,
};
use aws_lc_rs::signature::{self, KeyPair, RsaEncoding, RsaKeyPair, RsaParameters};

use crate::keys::{EncryptionAlgorithm, RsaPrivateComponents, SignatureAlgorithm};
use crate::{Error, SecretBytes};

/// An RSA private key, ready for signing and decryption.
pub(crate) struct RsaKey {
    signing: RsaKeyPair,
    decrypting: PrivateDecryptingKey,
    /// Modulus, big-endian without leading zeros.
    n: Vec<u8>,
    /// Public exponent, big-endian without leading zeros.
    e: Vec<u8>,
    bits: u32,
    /// RSA1_5 decryption with implicit rejection, made on first use.
    pkcs1: std::sync::OnceLock<Box<crate::rsa_pkcs1::Pkcs1Decryptor>>,
}

impl RsaKey {
    /// A new key with e = 65537 (the only exponent AWS-LC generates).
    pub(crate) fn generate(bits: u32) -> Result<Self, Error> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => {
                return Err(Error::InvalidParameter("RSA key size must be 2048, 3072 or 4096 bits"));
            }
        };
        let pair = RsaKeyPair::generate(size).map_err(|_| Error::Unspecified)?;
        Self::from_signing_pair(pair)
    }

    /// Parses an unencrypted PKCS#8 `PrivateKeyInfo`.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| Error::InvalidKey("not a valid RSA PKCS#8 private key"))?;
        Self::from_signing_pair(pair)
    }

    /// Imports JWK components. AWS-LC checks `n = p*q`, `d*e = 1 mod (p-1)(q-1)` and the CRT values.
    pub(crate) fn from_components(c: &RsaPrivateComponents) -> Result<Self, Error> {
        let n = strip_leading_zeros(&c.n);
        let e = strip_leading_zeros(&c.e);
        if n.is_empty() || e.is_empty() {
            return Err(Error::InvalidKey("RSA n and e must not be empty"));
        }
        let components = KeyPairComponents {
            public_key: PublicKeyComponents { n, e },
            d: c.d.expose_secret(),
            p: c.p.expose_secret(),
            q: c.q.expose_secret(),
            dP: c.dp.expose_secret(),
            dQ: c.dq.expose_secret(),
            qInv: c.qi.expose_secret(),
        };
        let pair = RsaKeyPair::from_components(&components)
            .map_err(|_| Error::InvalidKey("inconsistent or unsupported RSA key components (2048..=8192 bits)"))?;
        Self::from_signing_pair(pair)
    }

    fn from_signing_pair(signing: RsaKeyPair) -> Result<Self, Error> {
        let pkcs8: Pkcs8V1Der<'static> = signing.as_der().map_err(|_| Error::Unspecified)?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| Error::InvalidKey("RSA key not usable for decryption"))?;
        let public = signing.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let bits = u32::try_from(decrypting.key_size_bits()).map_err(|_| Error::Unspecified)?;
        Ok(Self {
            signing,
            decrypting,
            n,
            e,
            bits,
            pkcs1: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn bits(&self) -> u32 {
        self.bits
    }
    pub(crate) fn modulus(&self) -> &[u8] {
        &self.n
    }
    pub(crate) fn exponent(&self) -> &[u8] {
        &self.e
    }

    /// PKCS#8 v1 DER of the private key.
    pub(crate) fn to_pkcs8(&self) -> Result<SecretBytes, Error> {
        let der: Pkcs8V1Der<'static> = self.signing.as_der().map_err(|_| Error::Unspecified)?;
        Ok(SecretBytes::new(der.as_ref().to_vec()))
    }

    /// Encrypts with the public key.
    pub(crate) fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let public = self.decrypting.public_key();
        let mut out = vec![0u8; public.key_size_bytes()];
        let written = if let Some(oaep) = oaep_algorithm(alg) {
            let key = OaepPublicEncryptingKey::new(public).map_err(|_| Error::Unspecified)?;
            if plaintext.len() > key.max_plaintext_size(oaep) {
                return Err(Error::InvalidParameter("plaintext too long for RSA-OAEP with this key"));
            }
            key.encrypt(oaep, plaintext, &mut out, None)
                .map_err(|_| Error::Unspecified)?
                .len()
        } else if alg == EncryptionAlgorithm::Rsa1_5 {
            let key = Pkcs1PublicEncryptingKey::new(public).map_err(|_| Error::Unspecified)?;
            if plaintext.len() > key.max_plaintext_size() {
                return Err(Error::InvalidParameter("plaintext too long for RSA1_5 with this key"));
            }
            key.encrypt(plaintext, &mut out).map_err(|_| Error::Unspecified)?.len()
        } else {
            return Err(not_rsa_encryption(alg));
        };
        out.truncate(written);
        Ok(out)
    }

    /// Decrypts with the private key. Every OAEP failure (length, padding) is `Error::DecryptFailed`. RSA1_5 fails
    /// only on a wrong length or a ciphertext not below the modulus (public facts): bad padding decrypts to a
    /// synthetic message (implicit rejection, `rsa_pkcs1.rs`), so RSA1_5 is no padding oracle.
    pub(crate) fn decrypt(&self, alg: EncryptionAlgorithm, ciphertext: &[u8]) -> Result<SecretBytes, Error> {
        let oaep = oaep_algorithm(alg);
        if oaep.is_none() && alg != EncryptionAlgorithm::Rsa1_5 {
            return Err(not_rsa_encryption(alg));
        }
        if ciphertext.len() != self.decrypting.key_size_bytes() {
            return Err(Error::DecryptFailed);
        }
        let mut out = SecretBytes::new(vec![0u8; self.decrypting.key_size_bytes()]);
        let written = match oaep {
            Some(oaep) => OaepPrivateDecryptingKey::new(self.decrypting.clone())
                .map_err(|_| Error::Unspecified)?
                .decrypt(oaep, ciphertext, out.expose_secret_mut(), None)
                .map_err(|_| Error::DecryptFailed)?
                .len(),
            None => return self.pkcs1()?.decrypt(ciphertext),
        };
        let plaintext = out.expose_secret().get(..written).ok_or(Error::DecryptFailed)?;
        Ok(SecretBytes::new(plaintext.to_vec()))
    }

    fn pkcs1(&self) -> Result<&crate::rsa_pkcs1::Pkcs1Decryptor, Error> {
        if let Some(d) = self.pkcs1.get() {
            return Ok(d);
        }
        let d = Box::new(crate::rsa_pkcs1::Pkcs1Decryptor::from_pkcs8(
            self.to_pkcs8()?.expose_secret(),
        )?);
        Ok(self.pkcs1.get_or_init(|| d))
    }

    /// Signs a caller-computed digest (RS* = PKCS#1 v1.5, PS* = PSS with salt length = hash length).
    pub(crate) fn sign(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let (encoding, _, hash) = rsa_algorithms(alg)?;
        let digest = import_digest(digest, hash)?;
        let mut sig = vec![0u8; self.signing.public_modulus_len()];
        self.signing
            .sign_digest(encoding, &digest, &mut sig)
            .map_err(|_| Error::Unspecified)?;
        Ok(sig)
    }

    /// Verifies a signature over a caller-computed digest (the same path as a public-key-only verify).
    pub(crate) fn verify(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<bool, Error> {
        verify_with_components(&self.n, &self.e, alg, digest, signature)
    }
}

/// Verifies an RS*/PS* signature over a caller-computed digest with the public key (n, e). Leading zero bytes on
/// `n` and `e` are ignored. A bad signature is `Ok(false)`; a wrong algorithm or digest length, or an unusable
/// key, is an `Err`.
pub(crate) fn verify_with_components(
    n: &[u8],
    e: &[u8],
    alg: SignatureAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool, Error> {
    let (_, params, hash) = rsa_algorithms(alg)?;
    let digest = import_digest(digest, hash)?;
    let components = PublicKeyComponents {
        n: strip_leading_zeros(n),
        e: strip_leading_zeros(e),
    };
    let public = components
        .to_parsed_public_key(params)
        .map_err(|_| Error::InvalidKey("not a valid RSA public key"))?;
    Ok(public.verify_digest_sig(&digest, signature).is_ok())
}

/// Wraps the caller's digest bytes, checking their length against the algorithm.
fn import_digest(digest: &[u8], hash: &'static digest::Algorithm) -> Result<Digest, Error> {
    Digest::import_less_safe(digest, hash)
        .map_err(|_| Error::InvalidParameter("digest length does not match the algorithm"))
}

type RsaAlgorithms = (
    &'static dyn RsaEncoding,
    &'static RsaParameters,
    &'static digest::Algorithm,
);

fn rsa_algorithms(alg: SignatureAlgorithm) -> Result<RsaAlgorithms, Error> {
    Ok(match alg {
        SignatureAlgorithm::Rs256 => (
            &signature::RSA_PKCS1_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            &digest::SHA256,
        ),
        SignatureAlgorithm::Rs384 => (
            &signature::RSA_PKCS1_SHA384,
            &signature::RSA_PKCS1_2048_8192_SHA384,
            &digest::SHA384,
        ),
        SignatureAlgorithm::Rs512 => (
            &signature::RSA_PKCS1_SHA512,
            &signature::RSA_PKCS1_2048_8192_SHA512,
            &digest::SHA512,
        ),
        SignatureAlgorithm::Ps256 => (
            &signature::RSA_PSS_SHA256,
            &signature::RSA_PSS_2048_8192_SHA256,
            &digest::SHA256,
        ),
        SignatureAlgorithm::Ps384 => (
            &signature::RSA_PSS_SHA384,
            &signature::RSA_PSS_2048_8192_SHA384,
            &digest::SHA384,
        ),
        SignatureAlgorithm::Ps512 => (
            &signature::RSA_PSS_SHA512,
            &signature::RSA_PSS_2048_8192_SHA512,
            &digest::SHA512,
        ),
        SignatureAlgorithm::Es256
        | SignatureAlgorithm::Es256K
        | SignatureAlgorithm::Es384
        | SignatureAlgorithm::Es512 => {
            return Err(Error::AlgorithmMismatch {
                alg: alg.name(),
                reason: "an RSA key supports only RS256/384/512 and PS256/384/512 signatures",
            });
        }
    })
}

fn oaep_algorithm(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaOaep => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaOaep256 => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

fn not_rsa_encryption(alg: EncryptionAlgorithm) -> Error {
    Error::AlgorithmMismatch {
        alg: alg.name(),
        reason: "an RSA key supports only RSA1_5, RSA-OAEP and RSA-OAEP-256",
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}
