//! Managed HSM BYOK ("bring your own key"): the `CKM_RSA_AES_KEY_WRAP` construction of a `.byok` blob's
//! `ciphertext` (docs/BYOK.md).
//!
//! `ciphertext = C1 || C2` where `C1 = RSAES-OAEP(KEK public key, K_t)` with SHA-1, MGF1-SHA-1 and an empty label
//! (exactly the KEK modulus length), `K_t` is an ephemeral AES key of 16, 24 or 32 bytes, and
//! `C2 = AES-KWP(K_t, plaintext)` (RFC 5649, key wrap with padding). The plaintext is the target key: PKCS#8 for
//! RSA and EC, raw bytes for AES.
//!
//! [`byok_unwrap`] is the server side. [`byok_wrap`] is the tool side (what a vendor's BYOK tool does in the source
//! HSM); Coffer itself never wraps for import, it is here for tests and for building blobs from a public key.
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OaepAlgorithm, OaepPublicEncryptingKey, PublicEncryptingKey, PublicKeyComponents,
};

use crate::keys::{CipherParams, EncryptionAlgorithm, KeyFamily, PrivateKey, PublicKey};
use crate::{Error, SecretBytes, aes, random};

/// AES-KWP integrity block length: `len(C2)` is 8 plus the padded plaintext length.
const KWP_BLOCK: usize = 8;

/// Opens the `ciphertext` of a `.byok` blob with the key exchange key `kek` (an RSA private key) and returns the
/// target key's plaintext (PKCS#8 DER for RSA and EC, raw bytes for AES).
///
/// Errors: `AlgorithmMismatch` when `kek` is not an RSA key; `InvalidParameter` when the length cannot be
/// `C1 || C2` for this KEK (it must exceed the modulus length by more than 8 bytes, in a multiple of 8) — a check on
/// public lengths only; `DecryptFailed` for every failure that depends on secret data (OAEP padding, a transport key
/// that is not 16/24/32 bytes, the RFC 5649 integrity check value, length or padding), so that callers cannot
/// build an oracle. The transport key is zeroized when this function returns.
pub fn byok_unwrap(kek: &PrivateKey, ciphertext: &[u8]) -> Result<SecretBytes, Error> {
    if kek.family() != KeyFamily::Rsa {
        return Err(Error::AlgorithmMismatch {
            alg: "CKM_RSA_AES_KEY_WRAP",
            reason: "the key exchange key must be an RSA key",
        });
    }
    let n = usize::try_from(kek.size_bits().div_ceil(8)).map_err(|_| Error::Unspecified)?;
    let (c1, c2) = ciphertext.split_at_checked(n).ok_or(Error::InvalidParameter(
        "the BYOK ciphertext is shorter than the key exchange key's modulus",
    ))?;
    if c2.len() <= KWP_BLOCK || !c2.len().is_multiple_of(KWP_BLOCK) {
        return Err(Error::InvalidParameter(
            "the BYOK ciphertext length does not fit an RSA block followed by an RFC 5649 key wrap",
        ));
    }
    let params = CipherParams::default();
    let transport = kek.decrypt(EncryptionAlgorithm::RsaOaep, c1, &params)?;
    if !matches!(transport.len(), 16 | 24 | 32) {
        return Err(Error::DecryptFailed);
    }
    // Every failure of the RFC 5649 unwrap (AIV, length, padding) is `DecryptFailed`.
    aes::decrypt(&transport, EncryptionAlgorithm::CkmAesKeyWrapPad, c2, &params).map_err(|_| Error::DecryptFailed)
}

/// The tool side of BYOK: wraps `plaintext` for the key exchange key whose public half is `kek` (an RSA public
/// key), with a fresh random transport key of `transport_key_len` bytes (16, 24 or 32; tools normally use 32).
/// Returns `C1 || C2`, the value that goes, base64url-encoded, into the `.byok` file's `ciphertext`.
pub fn byok_wrap(kek: &PublicKey, transport_key_len: usize, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    let PublicKey::Rsa { n, e } = kek else {
        return Err(Error::InvalidParameter(
            "the key exchange key must be an RSA public key",
        ));
    };
    if !matches!(transport_key_len, 16 | 24 | 32) {
        return Err(Error::InvalidParameter("the transport key must be 16, 24 or 32 bytes"));
    }
    let public: PublicEncryptingKey = PublicKeyComponents {
        n: n.as_slice(),
        e: e.as_slice(),
    }
    .try_into()
    .map_err(|_| Error::InvalidKey("not a valid RSA public key"))?;
    rsa_aes_kwp_wrap(public, &OAEP_SHA1_MGF1SHA1, transport_key_len, plaintext)
}

/// The `RSA-AES` key wrap shared by BYOK and Secure Key Release: `RSA-OAEP(oaep_alg)(public, K) || AES-KWP(K,
/// plaintext)` (RFC 5649) with a fresh random `K` of `transport_len` bytes. `C1` is exactly the modulus length.
/// Callers check the key size and the transport length they accept.
pub(crate) fn rsa_aes_kwp_wrap(
    public: PublicEncryptingKey,
    oaep_alg: &'static OaepAlgorithm,
    transport_len: usize,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| Error::Unspecified)?;
    let transport = random::secret(transport_len)?;
    let mut c1 = vec![0u8; oaep.ciphertext_size()];
    let written = oaep
        .encrypt(oaep_alg, transport.expose_secret(), &mut c1, None)
        .map_err(|_| Error::InvalidParameter("the transport key does not fit this RSA key"))?
        .len();
    c1.truncate(written);
    let c2 = aes::encrypt(
        &transport,
        EncryptionAlgorithm::CkmAesKeyWrapPad,
        plaintext,
        &CipherParams::default(),
    )?;
    c1.extend_from_slice(&c2.value);
    Ok(c1)
}
