//! The public key of a JWK as an X.509 SubjectPublicKeyInfo (RFC 5280), DER or PEM, for `coffer key download`:
//! RSA from `n`/`e` (rsaEncryption, RFC 8017 RSAPublicKey), EC from `crv`/`x`/`y` (id-ecPublicKey with the named
//! curve, uncompressed point, RFC 5480). Only public values are handled, so a small DER writer suffices.
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// (JWK curve name, named-curve OID, coordinate length in bytes).
const CURVES: &[(&str, &[u8], usize)] = &[
    // prime256v1 (1.2.840.10045.3.1.7)
    ("P-256", &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], 32),
    // secp256k1 (1.3.132.0.10)
    ("P-256K", &[0x2b, 0x81, 0x04, 0x00, 0x0a], 32),
    // secp384r1 (1.3.132.0.34)
    ("P-384", &[0x2b, 0x81, 0x04, 0x00, 0x22], 48),
    // secp521r1 (1.3.132.0.35)
    ("P-521", &[0x2b, 0x81, 0x04, 0x00, 0x23], 66),
];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let m = magnitude.get(skip..).unwrap_or_default();
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(0x02, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

fn b64_field(jwk: &Value, field: &str) -> anyhow::Result<Vec<u8>> {
    let s = jwk
        .get(field)
        .and_then(Value::as_str)
        .with_context(|| format!("the key has no '{field}'"))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .with_context(|| format!("'{field}' is not base64url"))
}

/// A big-endian coordinate left-padded (or stripped of leading zeros) to `len` bytes.
fn coordinate(raw: &[u8], len: usize, field: &str) -> anyhow::Result<Vec<u8>> {
    let skip = raw.iter().take_while(|b| **b == 0).count();
    let m = raw.get(skip..).unwrap_or_default();
    if m.len() > len {
        bail!("'{field}' is longer than the curve's {len} bytes");
    }
    let mut out = vec![0; len - m.len()];
    out.extend_from_slice(m);
    Ok(out)
}

/// The SubjectPublicKeyInfo DER of a JWK (the `key` of a KeyBundle).
pub fn spki_der(jwk: &Value) -> anyhow::Result<Vec<u8>> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    match kty {
        "RSA" | "RSA-HSM" => {
            let n = b64_field(jwk, "n")?;
            let e = b64_field(jwk, "e")?;
            let rsa_public_key = sequence(&[&uint(&n), &uint(&e)]);
            let alg = sequence(&[&tlv(0x06, OID_RSA), &[0x05, 0x00]]);
            Ok(sequence(&[&alg, &bit_string(&rsa_public_key)]))
        }
        "EC" | "EC-HSM" => {
            let crv = jwk.get("crv").and_then(Value::as_str).context("the key has no 'crv'")?;
            let (_, oid, len) = CURVES
                .iter()
                .find(|(name, _, _)| *name == crv)
                .with_context(|| format!("unknown curve '{crv}'"))?;
            let x = coordinate(&b64_field(jwk, "x")?, *len, "x")?;
            let y = coordinate(&b64_field(jwk, "y")?, *len, "y")?;
            let point = [&[0x04][..], &x, &y].concat();
            let alg = sequence(&[&tlv(0x06, OID_EC), &tlv(0x06, oid)]);
            Ok(sequence(&[&alg, &bit_string(&point)]))
        }
        "" => bail!("the key has no 'kty'"),
        other => bail!("a key of type '{other}' has no public key to download (only RSA and EC keys have one)"),
    }
}

/// PEM (`-----BEGIN PUBLIC KEY-----`, 64-column base64) of a DER SubjectPublicKeyInfo.
pub fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    // Expected values made by `openssl pkey -pubout -outform DER` from generated keys.
    const EC_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d0301070342000466957fda82852cc33d712a333ea87a5b8cf6f0305d2963bf45ca8980f0a7d8801ff11d25ec8b585a64b6b64ae7e442185232acc2540849ee60377b63b860ce95";
    const RSA_1024: &str = "30819f300d06092a864886f70d010101050003818d0030818902818100b3578b8c57065dd149fe4ca2c788b52785706366ec1663af35e9ccb3dfde737f6e485023007c13a9aed5d4c82aa14dfcd111a235ccd844fa796ecda88914572514fefbdadce7ca70f95a4f7c3df03841ec60521ec73f1e81d6a2e5a4282eed433e91e09b43d68b5f05b831302be23d7f5fb72262d38be7e1ec51509b2b8fb2970203010001";
    const EC_P521: &str = "30819b301006072a8648ce3d020106052b8104002303818600040177c27806323ee4b12c32545b5ae69ed9904b193c10d2f33b3f676ed2c84451fa606d01687b8a9a0967a13a97196683cd8d4ddd1f0d4bdda39061e7696b1146b259000cb554d5161bfc9a2c2f9c81121b5353f4775d9fa8dfa785d76983715345a3ebcabe61b7231e3d7bee56606cb522d70f94caffa59ef0b5f547b4bf9b9d2c68682c";

    #[test]
    fn ec_p256_matches_openssl() {
        let der = unhex(EC_P256);
        let point = &der[der.len() - 64..];
        let jwk = json!({"kty": "EC-HSM", "crv": "P-256", "x": b64(&point[..32]), "y": b64(&point[32..])});
        assert_eq!(spki_der(&jwk).unwrap(), der);
    }

    #[test]
    fn ec_p521_matches_openssl() {
        let der = unhex(EC_P521);
        let point = &der[der.len() - 132..];
        let jwk = json!({"kty": "EC", "crv": "P-521", "x": b64(&point[..66]), "y": b64(&point[66..])});
        assert_eq!(spki_der(&jwk).unwrap(), der);
    }

    #[test]
    fn coordinates_are_padded_to_the_curve_length() {
        assert_eq!(coordinate(&[1, 2], 4, "x").unwrap(), [0, 0, 1, 2]);
        assert_eq!(coordinate(&[0, 0, 0, 1, 2], 4, "x").unwrap(), [0, 0, 1, 2]);
        assert!(coordinate(&[1, 2, 3, 4, 5], 4, "x").is_err());
    }

    #[test]
    fn rsa_matches_openssl() {
        let der = unhex(RSA_1024);
        // n: the 128 bytes after `02 81 81 00`; e = 65537.
        let at = der.windows(4).position(|w| w == [0x02, 0x81, 0x81, 0x00]).unwrap() + 4;
        let jwk = json!({"kty": "RSA-HSM", "n": b64(&der[at..at + 128]), "e": "AQAB"});
        assert_eq!(spki_der(&jwk).unwrap(), der);
    }

    #[test]
    fn long_lengths_and_pem() {
        // 4096-bit modulus: lengths need the two-byte long form.
        let n = vec![0xffu8; 512];
        let der = spki_der(&json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"})).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x82, 0x02, 0x22]);
        assert_eq!(der.len(), 4 + 0x222);
        let p = pem(&der);
        assert!(p.starts_with("-----BEGIN PUBLIC KEY-----\n") && p.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn refusals() {
        assert!(spki_der(&json!({"kty": "oct-HSM"})).is_err());
        assert!(spki_der(&json!({"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"})).is_err());
        assert!(spki_der(&json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 33]), "y": b64(&[1; 32])})).is_err());
        assert!(spki_der(&json!({"kty": "RSA", "e": "AQAB"})).is_err());
    }
}
