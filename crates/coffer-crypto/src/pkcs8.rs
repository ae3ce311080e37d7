//! A minimal DER reader for the one question aws-lc-rs does not answer: which algorithm (and, for EC, which curve;
//! for RSA, which modulus size) an unencrypted PKCS#8 `PrivateKeyInfo` (RFC 5208) holds. The key itself is then
//! parsed and checked by aws-lc-rs; this module never copies secret bytes, it only reads lengths and OIDs.
use crate::Error;
use crate::keys::Curve;

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1, 1.2.840.10045.3.1.7.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp256k1, 1.3.132.0.10.
const OID_P256K: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
/// secp384r1, 1.3.132.0.34.
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// secp521r1, 1.3.132.0.35.
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

const NOT_PKCS8: Error = Error::InvalidKey("not a DER PKCS#8 PrivateKeyInfo");

/// What a PKCS#8 document holds, as far as its AlgorithmIdentifier (and the RSA modulus) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pkcs8Algorithm {
    /// An RSA key whose modulus has this many significant bits.
    Rsa { modulus_bits: u32 },
    /// An EC key on a supported curve.
    Ec(Curve),
}

/// Reads the algorithm of a PKCS#8 document: `InvalidKey` when it is not PKCS#8, holds neither an RSA nor an EC
/// key, or names an unsupported curve.
pub(crate) fn algorithm(der: &[u8]) -> Result<Pkcs8Algorithm, Error> {
    let (info, rest) = read(der, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(NOT_PKCS8);
    }
    let (_version, info) = read(info, INTEGER)?;
    let (alg_id, info) = read(info, SEQUENCE)?;
    let (private_key, _attributes) = read(info, OCTET_STRING)?;
    let (oid, params) = read(alg_id, OID)?;
    if oid == OID_RSA {
        // RSAPrivateKey ::= SEQUENCE { version INTEGER, modulus INTEGER, ... }
        let (rsa, _) = read(private_key, SEQUENCE)?;
        let (_version, rsa) = read(rsa, INTEGER)?;
        let (modulus, _) = read(rsa, INTEGER)?;
        return Ok(Pkcs8Algorithm::Rsa {
            modulus_bits: significant_bits(modulus),
        });
    }
    if oid == OID_EC {
        let curve = match read(params, OID) {
            Ok((c, _)) if c == OID_P256 => Curve::P256,
            Ok((c, _)) if c == OID_P256K => Curve::P256K,
            Ok((c, _)) if c == OID_P384 => Curve::P384,
            Ok((c, _)) if c == OID_P521 => Curve::P521,
            Ok(_) => {
                return Err(Error::InvalidKey(
                    "unsupported EC curve (P-256, P-256K, P-384 and P-521 are supported)",
                ));
            }
            Err(_) => return Err(Error::InvalidKey("the EC PKCS#8 key does not name its curve")),
        };
        return Ok(Pkcs8Algorithm::Ec(curve));
    }
    Err(Error::InvalidKey("the PKCS#8 key is neither an RSA nor an EC key"))
}

/// Reads one DER element with tag `tag`: returns its contents and what follows it.
fn read(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), Error> {
    let (&t, rest) = input.split_first().ok_or(NOT_PKCS8)?;
    if t != tag {
        return Err(NOT_PKCS8);
    }
    let (&first, mut rest) = rest.split_first().ok_or(NOT_PKCS8)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(NOT_PKCS8);
        }
        let (bytes, after) = rest.split_at_checked(count).ok_or(NOT_PKCS8)?;
        rest = after;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    rest.split_at_checked(len).ok_or(NOT_PKCS8)
}

/// The number of significant bits of a big-endian unsigned integer (a DER INTEGER's leading zero is ignored).
fn significant_bits(int: &[u8]) -> u32 {
    let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    let bytes = int.get(start..).unwrap_or_default();
    let Some(&top) = bytes.first() else { return 0 };
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX / 8);
    len.saturating_mul(8).saturating_sub(top.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_truncated_and_foreign_input() {
        assert!(algorithm(&[]).is_err());
        assert!(algorithm(&[0x30, 0x05, 0x02, 0x01]).is_err());
        assert!(algorithm(&[0x04, 0x00]).is_err());
        // A sequence with an unknown algorithm OID (1.2.3).
        let other = [
            0x30, 0x0c, 0x02, 0x01, 0x00, 0x30, 0x04, 0x06, 0x02, 0x2a, 0x03, 0x04, 0x01, 0x00,
        ];
        assert!(matches!(algorithm(&other), Err(Error::InvalidKey(m)) if m.contains("neither")));
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01]), 1);
        assert_eq!(significant_bits(&[]), 0);
    }
}
