//! Key material and every Managed HSM crypto operation: RSA 2048/3072/4096, EC P-256/P-256K/P-384/P-521,
//! AES 128/192/256. Signing takes the digest the client computed (pre-hashed), as the Azure API does.
//!
//! This module holds the public types and dispatches on the key family; the per-family work lives in the
//! private modules `rsa`, `ec` and `aes` (and `kw192` for the one AES key-wrap size aws-lc-rs lacks).
use crate::{Error, SecretBytes, aes, ec, pkcs8, random, rsa};

/// An elliptic curve, by its JOSE name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P256K,
    P384,
    P521,
}

impl Curve {
    /// The JOSE name: `P-256`, `P-256K`, `P-384`, `P-521`.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P256K => "P-256K",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }
    /// Parses a JOSE curve name (exact match; `SECP256K1` is also accepted for P-256K).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-256K" | "SECP256K1" => Some(Self::P256K),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }
    /// Size of one coordinate (and of `d`) in bytes: 32, 32, 48, 66.
    pub fn coordinate_len(self) -> usize {
        match self {
            Self::P256 | Self::P256K => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
    /// The field size in bits: 256, 256, 384, 521.
    pub(crate) fn field_bits(self) -> u32 {
        match self {
            Self::P256 | Self::P256K => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }
}

/// The three families of key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    Ec,
    Oct,
    Rsa,
}

/// Encryption and key-wrap algorithms (JsonWebKeyEncryptionAlgorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    A128Cbc,
    A192Cbc,
    A256Cbc,
    A128CbcPad,
    A192CbcPad,
    A256CbcPad,
    A128Gcm,
    A192Gcm,
    A256Gcm,
    A128Kw,
    A192Kw,
    A256Kw,
    /// RFC 3394 with the key's own size (128/192/256).
    CkmAesKeyWrap,
    /// RFC 5649 with the key's own size.
    CkmAesKeyWrapPad,
    Rsa1_5,
    RsaOaep,
    RsaOaep256,
}

impl EncryptionAlgorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Self; 17] = [
        Self::A128Cbc,
        Self::A192Cbc,
        Self::A256Cbc,
        Self::A128CbcPad,
        Self::A192CbcPad,
        Self::A256CbcPad,
        Self::A128Gcm,
        Self::A192Gcm,
        Self::A256Gcm,
        Self::A128Kw,
        Self::A192Kw,
        Self::A256Kw,
        Self::CkmAesKeyWrap,
        Self::CkmAesKeyWrapPad,
        Self::Rsa1_5,
        Self::RsaOaep,
        Self::RsaOaep256,
    ];

    /// The wire name, e.g. `RSA-OAEP-256`, `A256GCM`, `A128CBCPAD`, `CKM_AES_KEY_WRAP_PAD`.
    pub fn name(self) -> &'static str {
        match self {
            Self::A128Cbc => "A128CBC",
            Self::A192Cbc => "A192CBC",
            Self::A256Cbc => "A256CBC",
            Self::A128CbcPad => "A128CBCPAD",
            Self::A192CbcPad => "A192CBCPAD",
            Self::A256CbcPad => "A256CBCPAD",
            Self::A128Gcm => "A128GCM",
            Self::A192Gcm => "A192GCM",
            Self::A256Gcm => "A256GCM",
            Self::A128Kw => "A128KW",
            Self::A192Kw => "A192KW",
            Self::A256Kw => "A256KW",
            Self::CkmAesKeyWrap => "CKM_AES_KEY_WRAP",
            Self::CkmAesKeyWrapPad => "CKM_AES_KEY_WRAP_PAD",
            Self::Rsa1_5 => "RSA1_5",
            Self::RsaOaep => "RSA-OAEP",
            Self::RsaOaep256 => "RSA-OAEP-256",
        }
    }
    /// Parses a wire name (exact, case-sensitive). Unknown names give `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }
    /// The key family this algorithm needs.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Rsa1_5 | Self::RsaOaep | Self::RsaOaep256 => KeyFamily::Rsa,
            _ => KeyFamily::Oct,
        }
    }
}

/// Signature algorithms (JsonWebKeySignatureAlgorithm) that Managed HSM keys support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    Es256,
    Es256K,
    Es384,
    Es512,
    Ps256,
    Ps384,
    Ps512,
    Rs256,
    Rs384,
    Rs512,
}

impl SignatureAlgorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Es256,
        Self::Es256K,
        Self::Es384,
        Self::Es512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
    ];

    /// The wire name, e.g. `ES256K`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es256K => "ES256K",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
        }
    }
    /// Parses a wire name. `HS*` and `RSNULL` are not supported and give `None`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }
    /// Digest length in bytes that `sign`/`verify` expect (32, 48 or 64).
    pub fn digest_len(self) -> usize {
        match self {
            Self::Es256 | Self::Es256K | Self::Ps256 | Self::Rs256 => 32,
            Self::Es384 | Self::Ps384 | Self::Rs384 => 48,
            Self::Es512 | Self::Ps512 | Self::Rs512 => 64,
        }
    }
    /// The key family this algorithm needs.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Es256 | Self::Es256K | Self::Es384 | Self::Es512 => KeyFamily::Ec,
            Self::Ps256 | Self::Ps384 | Self::Ps512 | Self::Rs256 | Self::Rs384 | Self::Rs512 => KeyFamily::Rsa,
        }
    }
    /// The curve an ECDSA algorithm needs; `None` for RSA algorithms.
    pub fn curve(self) -> Option<Curve> {
        match self {
            Self::Es256 => Some(Curve::P256),
            Self::Es256K => Some(Curve::P256K),
            Self::Es384 => Some(Curve::P384),
            Self::Es512 => Some(Curve::P521),
            Self::Ps256 | Self::Ps384 | Self::Ps512 | Self::Rs256 | Self::Rs384 | Self::Rs512 => None,
        }
    }
}

/// Private RSA components as in a JWK (big-endian unsigned integers).
pub struct RsaPrivateComponents {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: SecretBytes,
    pub p: SecretBytes,
    pub q: SecretBytes,
    pub dp: SecretBytes,
    pub dq: SecretBytes,
    pub qi: SecretBytes,
}

impl std::fmt::Debug for RsaPrivateComponents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateComponents")
            .field("n_len", &self.n.len())
            .finish_non_exhaustive()
    }
}

/// The public half of a key, as a JWK carries it. `Oct` has no public part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Oct,
    /// `n` without leading zero bytes; `e` without leading zeros (`AQAB` = 65537).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl PublicKey {
    /// Verifies a signature over a caller-computed digest with this public key: the same checks as
    /// [`PrivateKey::verify`], which goes through this code. A wrong signature is `Ok(false)`; a wrong algorithm for
    /// the key, a wrong digest length or an unusable public key (`InvalidKey`) is an `Err`. EC coordinates shorter
    /// than the curve size are left-padded.
    pub fn verify(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<bool, Error> {
        match self {
            Self::Ec { curve, x, y } => {
                let point = ec::uncompressed_point(*curve, x, y)?;
                ec::verify_with_point(*curve, &point, alg, digest, signature)
            }
            Self::Rsa { n, e } => rsa::verify_with_components(n, e, alg, digest, signature),
            Self::Oct => Err(Error::AlgorithmMismatch {
                alg: alg.name(),
                reason: "an AES key supports only AES encryption and key wrap",
            }),
        }
    }
}

/// The result of encrypt / wrap. `iv` and `tag` are set for GCM (service-generated 12-byte IV, 16-byte tag);
/// `iv` is echoed for CBC.
#[derive(Debug)]
pub struct CipherOutput {
    pub value: Vec<u8>,
    pub iv: Option<Vec<u8>>,
    pub tag: Option<Vec<u8>>,
}

/// Inputs of encrypt/decrypt besides the data. GCM encrypt ignores no field: a client `iv` for GCM encrypt is
/// rejected (`InvalidParameter`), the service generates it. CBC needs a 16-byte `iv`. GCM decrypt needs `iv`
/// and a 16-byte `tag`. `aad` is used by GCM and ignored by CBC (as the service does).
#[derive(Default, Debug)]
pub struct CipherParams<'a> {
    pub iv: Option<&'a [u8]>,
    pub aad: Option<&'a [u8]>,
    pub tag: Option<&'a [u8]>,
}

/// Private key material. No `Debug` that shows material, no `Clone`; zeroized on drop.
pub struct PrivateKey {
    material: Material,
}

/// The per-family key material. aws-lc-rs zeroizes and frees its own key objects; AES keys are `SecretBytes`.
enum Material {
    Ec(ec::EcKey),
    Oct(SecretBytes),
    Rsa(rsa::RsaKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    /// New RSA key with e = 65537; `bits` must be 2048, 3072 or 4096.
    pub fn generate_rsa(bits: u32) -> Result<Self, Error> {
        Ok(Self {
            material: Material::Rsa(rsa::RsaKey::generate(bits)?),
        })
    }
    /// New EC key on `curve`.
    pub fn generate_ec(curve: Curve) -> Result<Self, Error> {
        Ok(Self {
            material: Material::Ec(ec::EcKey::generate(curve)?),
        })
    }
    /// New AES key; `bits` must be 128, 192 or 256.
    pub fn generate_oct(bits: u32) -> Result<Self, Error> {
        let len = match bits {
            128 => 16,
            192 => 24,
            256 => 32,
            _ => {
                return Err(Error::InvalidParameter("AES key size must be 128, 192 or 256 bits"));
            }
        };
        Ok(Self {
            material: Material::Oct(random::secret(len)?),
        })
    }
    /// Imports RSA private components (checked for consistency; 2048..=4096 bits... any size aws-lc accepts, 2048+).
    pub fn import_rsa(components: &RsaPrivateComponents) -> Result<Self, Error> {
        Ok(Self {
            material: Material::Rsa(rsa::RsaKey::from_components(components)?),
        })
    }
    /// Imports an EC private key `d` with its public point (x, y); the point must match `d`.
    pub fn import_ec(curve: Curve, d: &SecretBytes, x: &[u8], y: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            material: Material::Ec(ec::EcKey::from_components(curve, d, x, y)?),
        })
    }
    /// Imports raw AES key bytes (16, 24 or 32).
    pub fn import_oct(k: SecretBytes) -> Result<Self, Error> {
        if !matches!(k.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKey("AES key must be 16, 24 or 32 bytes"));
        }
        Ok(Self {
            material: Material::Oct(k),
        })
    }

    /// Parses an unencrypted PKCS#8 `PrivateKeyInfo` (RFC 5208) of an RSA or EC key, finding the family and the
    /// curve from its AlgorithmIdentifier (e.g. the plaintext of a BYOK blob). RSA keys must be 2048, 3072 or 4096
    /// bits (the Managed HSM sizes); EC keys must be on P-256, P-256K (secp256k1), P-384 or P-521 (the curve OID
    /// in the AlgorithmIdentifier parameters; the `publicKey` inside `ECPrivateKey` is optional). Every problem is
    /// `InvalidKey` with a message that says which.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let material = match pkcs8::algorithm(der)? {
            pkcs8::Pkcs8Algorithm::Rsa { modulus_bits } => {
                if !matches!(modulus_bits, 2048 | 3072 | 4096) {
                    return Err(Error::InvalidKey("RSA key size must be 2048, 3072 or 4096 bits"));
                }
                Material::Rsa(rsa::RsaKey::from_pkcs8(der)?)
            }
            pkcs8::Pkcs8Algorithm::Ec(curve) => Material::Ec(ec::EcKey::from_pkcs8(curve, der)?),
        };
        Ok(Self { material })
    }

    /// The family of this key.
    pub fn family(&self) -> KeyFamily {
        match &self.material {
            Material::Ec(_) => KeyFamily::Ec,
            Material::Oct(_) => KeyFamily::Oct,
            Material::Rsa(_) => KeyFamily::Rsa,
        }
    }
    /// RSA modulus bits, AES key bits, or the curve's field bits (256, 256, 384, 521).
    pub fn size_bits(&self) -> u32 {
        match &self.material {
            Material::Ec(key) => key.curve().field_bits(),
            Material::Oct(k) => u32::try_from(k.len().saturating_mul(8)).unwrap_or(u32::MAX),
            Material::Rsa(key) => key.bits(),
        }
    }
    /// The curve of an EC key.
    pub fn curve(&self) -> Option<Curve> {
        match &self.material {
            Material::Ec(key) => Some(key.curve()),
            Material::Oct(_) | Material::Rsa(_) => None,
        }
    }
    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match &self.material {
            Material::Ec(key) => {
                let (x, y) = key.public_coordinates();
                PublicKey::Ec {
                    curve: key.curve(),
                    x,
                    y,
                }
            }
            Material::Oct(_) => PublicKey::Oct,
            Material::Rsa(key) => PublicKey::Rsa {
                n: key.modulus().to_vec(),
                e: key.exponent().to_vec(),
            },
        }
    }

    /// Serialises for sealed storage: PKCS#8 DER for RSA and EC, raw bytes for AES.
    pub fn to_storage_bytes(&self) -> Result<SecretBytes, Error> {
        match &self.material {
            Material::Ec(key) => key.to_pkcs8(),
            Material::Oct(k) => Ok(k.duplicate()),
            Material::Rsa(key) => key.to_pkcs8(),
        }
    }
    /// The inverse of `to_storage_bytes`. `curve` is required for EC.
    pub fn from_storage_bytes(family: KeyFamily, curve: Option<Curve>, bytes: &[u8]) -> Result<Self, Error> {
        let material = match family {
            KeyFamily::Ec => {
                let curve = curve.ok_or(Error::InvalidParameter("an EC key needs its curve"))?;
                Material::Ec(ec::EcKey::from_pkcs8(curve, bytes)?)
            }
            KeyFamily::Oct => return Self::import_oct(SecretBytes::new(bytes.to_vec())),
            KeyFamily::Rsa => Material::Rsa(rsa::RsaKey::from_pkcs8(bytes)?),
        };
        Ok(Self { material })
    }

    /// Encrypts (or wraps: same operation) `plaintext`. RSA algorithms use the public key.
    pub fn encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
        params: &CipherParams<'_>,
    ) -> Result<CipherOutput, Error> {
        match (&self.material, alg.family()) {
            (Material::Oct(k), KeyFamily::Oct) => aes::encrypt(k, alg, plaintext, params),
            (Material::Rsa(key), KeyFamily::Rsa) => {
                reject_params(params)?;
                Ok(CipherOutput {
                    value: key.encrypt(alg, plaintext)?,
                    iv: None,
                    tag: None,
                })
            }
            _ => Err(self.family_mismatch(alg.name())),
        }
    }
    /// Decrypts (or unwraps). Every authentication/padding failure is `Error::DecryptFailed`.
    pub fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
        params: &CipherParams<'_>,
    ) -> Result<SecretBytes, Error> {
        match (&self.material, alg.family()) {
            (Material::Oct(k), KeyFamily::Oct) => aes::decrypt(k, alg, ciphertext, params),
            (Material::Rsa(key), KeyFamily::Rsa) => {
                reject_params(params)?;
                key.decrypt(alg, ciphertext)
            }
            _ => Err(self.family_mismatch(alg.name())),
        }
    }
    /// Signs a digest the caller computed. EC signatures are raw `r || s`, each padded to the curve size.
    /// PS* use salt length = hash length. The digest length must equal `alg.digest_len()`.
    pub fn sign(&self, alg: SignatureAlgorithm, digest: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.material {
            Material::Ec(key) => key.sign(alg, digest),
            Material::Rsa(key) => key.sign(alg, digest),
            Material::Oct(_) => Err(self.family_mismatch(alg.name())),
        }
    }
    /// Verifies a signature over a digest. A wrong signature is `Ok(false)`; a wrong algorithm for the key
    /// or a wrong digest length is an `Err`.
    pub fn verify(&self, alg: SignatureAlgorithm, digest: &[u8], signature: &[u8]) -> Result<bool, Error> {
        match &self.material {
            Material::Ec(key) => key.verify(alg, digest, signature),
            Material::Rsa(key) => key.verify(alg, digest, signature),
            Material::Oct(_) => Err(self.family_mismatch(alg.name())),
        }
    }

    fn family_mismatch(&self, alg: &'static str) -> Error {
        let reason = match self.family() {
            KeyFamily::Ec => "an EC key supports only ES256, ES256K, ES384 and ES512 signatures",
            KeyFamily::Oct => "an AES key supports only AES encryption and key wrap",
            KeyFamily::Rsa => "an RSA key supports only RSA signatures and RSA encryption",
        };
        Error::AlgorithmMismatch { alg, reason }
    }
}

/// RSA encryption takes no IV, AAD or tag.
fn reject_params(params: &CipherParams<'_>) -> Result<(), Error> {
    if params.iv.is_some() || params.aad.is_some() || params.tag.is_some() {
        return Err(Error::InvalidParameter("RSA encryption takes no iv, aad or tag"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in EncryptionAlgorithm::ALL {
            assert_eq!(EncryptionAlgorithm::parse(alg.name()), Some(alg));
        }
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::parse(alg.name()), Some(alg));
        }
        for curve in [Curve::P256, Curve::P256K, Curve::P384, Curve::P521] {
            assert_eq!(Curve::parse(curve.name()), Some(curve));
        }
        assert_eq!(Curve::parse("SECP256K1"), Some(Curve::P256K));
        assert_eq!(Curve::parse("p-256"), None);
        assert_eq!(EncryptionAlgorithm::parse("rsa-oaep"), None);
        assert_eq!(EncryptionAlgorithm::parse("A128KWPAD"), None);
        assert_eq!(SignatureAlgorithm::parse("HS256"), None);
        assert_eq!(SignatureAlgorithm::parse("RSNULL"), None);
        assert_eq!(
            EncryptionAlgorithm::parse("CKM_AES_KEY_WRAP_PAD"),
            Some(EncryptionAlgorithm::CkmAesKeyWrapPad)
        );
        assert_eq!(EncryptionAlgorithm::RsaOaep256.family(), KeyFamily::Rsa);
        assert_eq!(EncryptionAlgorithm::A192Kw.family(), KeyFamily::Oct);
        assert_eq!(SignatureAlgorithm::Es256K.digest_len(), 32);
        assert_eq!(SignatureAlgorithm::Ps384.digest_len(), 48);
        assert_eq!(SignatureAlgorithm::Es512.digest_len(), 64);
        assert_eq!(
            [Curve::P256, Curve::P256K, Curve::P384, Curve::P521].map(Curve::coordinate_len),
            [32, 32, 48, 66]
        );
    }
}
