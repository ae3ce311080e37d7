//! BYOK import (docs/BYOK.md): an import request whose JWK carries `key_hsm`, the bytes of a `.byok` file. The
//! file names a key exchange key (KEK) of this HSM in `header.kid`; its `ciphertext` is `CKM_RSA_AES_KEY_WRAP`
//! (RSA-OAEP-SHA1 of an AES transport key, then RFC 5649) of the target key: PKCS#8 for RSA and EC, raw bytes for
//! AES. [`Hsm::import_key`] authorizes (`keys/import/action` on the target name, nothing more: opening the blob with
//! the KEK is part of the import, the KEK can do nothing else) and then calls [`Hsm::byok_key`] here, which checks
//! the blob and the KEK, unwraps, and builds the key from the plaintext. The result is stored like any import.
//!
//! Rules: `header.alg` must be `dir` and `header.enc` `CKM_RSA_AES_KEY_WRAP`; the KEK must be a key of this HSM
//! (scheme and host of `kid` equal the public URL, case-insensitively; without a version the latest is used),
//! enabled, within `nbf`/`exp`, RSA 2048/3072/4096, with `key_ops` exactly `["import"]` (checked at every import,
//! not only when the KEK is created). The requested `kty` must match the key inside (a mismatch is refused, not
//! trusted), `crv` when given must match the curve inside, and the public part comes from the plaintext only.
//! Every failure of the unwrap itself is one message ([`UNWRAP_FAILED`]); everything else says what is wrong.
use base64::Engine as _;
use coffer_crypto::SecretBytes;
use coffer_crypto::keys::{Curve, KeyFamily, PrivateKey};
use serde::Deserialize;

use crate::key::{KeyName, KeyOperation, KeyType, KeyVersion, KeyVersionRecord};
use crate::{Error, Hsm};

/// The one message for every failure to open the ciphertext (OAEP, transport key size, RFC 5649 check).
pub const UNWRAP_FAILED: &str = "The key could not be unwrapped with the key exchange key.";

/// The only `header.enc` accepted for import.
pub const ENC_RSA_AES_KEY_WRAP: &str = "CKM_RSA_AES_KEY_WRAP";

/// The BYOK part of an import request.
pub struct ByokImport {
    /// The requested `kty` (`RSA-HSM`, `EC-HSM`, `oct-HSM`, or without `-HSM`).
    pub kty: String,
    /// The requested `crv`, if any (checked against the curve inside for EC; ignored otherwise).
    pub curve: Option<String>,
    /// The `.byok` file bytes (the decoded `key_hsm`).
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for ByokImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByokImport")
            .field("kty", &self.kty)
            .field("curve", &self.curve)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// The `.byok` JSON file. Members are optional here so that a missing one gets its own message.
#[derive(Deserialize)]
struct ByokFile {
    schema_version: Option<String>,
    header: Option<ByokHeader>,
    ciphertext: Option<String>,
    generator: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ByokHeader {
    kid: Option<String>,
    alg: Option<String>,
    enc: Option<String>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadParameter(m.into())
}

/// Decodes base64 leniently: base64url or standard alphabet, padded or not, surrounding whitespace ignored (BYOK
/// tools and SDKs differ).
pub fn decode_base64_lenient(s: &str) -> Option<Vec<u8>> {
    let cleaned: String = s
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cleaned).ok()
}

/// The `kty` name of a family, as responses spell it.
fn kty_name(family: KeyFamily) -> &'static str {
    match family {
        KeyFamily::Ec => "EC-HSM",
        KeyFamily::Oct => "oct-HSM",
        KeyFamily::Rsa => "RSA-HSM",
    }
}

/// `scheme://authority` (lowercase, without the default https port) and the path after it, without its leading
/// slash.
fn split_url(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.strip_suffix(":443")) {
        ("https", Some(host)) => host.to_string(),
        _ => authority,
    };
    (!authority.is_empty()).then(|| (format!("{scheme}://{authority}"), path))
}

impl Hsm {
    /// Opens a BYOK blob and builds the key it carries (the caller has authorized the import).
    pub(crate) async fn byok_key(&self, req: ByokImport) -> Result<(KeyType, PrivateKey), Error> {
        let family = KeyType::parse_family(&req.kty)?;
        let curve = match (&req.curve, family) {
            (Some(crv), KeyFamily::Ec) => {
                Some(Curve::parse(crv).ok_or_else(|| bad(format!("The curve '{crv}' is not supported.")))?)
            }
            _ => None,
        };
        let file = parse_blob(&req.blob)?;
        let header = file.header.ok_or_else(|| bad("The BYOK blob has no header."))?;
        match header.alg.as_deref() {
            Some("dir") => {}
            Some(other) => {
                return Err(bad(format!(
                    "The BYOK blob's header.alg '{other}' is not supported; expected 'dir'."
                )));
            }
            None => return Err(bad("The BYOK blob's header has no alg; expected 'dir'.")),
        }
        match header.enc.as_deref() {
            Some(ENC_RSA_AES_KEY_WRAP) => {}
            Some(other) => {
                return Err(bad(format!(
                    "The BYOK blob's header.enc '{other}' is not supported for import; expected '{ENC_RSA_AES_KEY_WRAP}'."
                )));
            }
            None => {
                return Err(bad(format!(
                    "The BYOK blob's header has no enc; expected '{ENC_RSA_AES_KEY_WRAP}'."
                )));
            }
        }
        let kid = header
            .kid
            .ok_or_else(|| bad("The BYOK blob's header has no kid (the key exchange key)."))?;
        let ciphertext = file
            .ciphertext
            .as_deref()
            .ok_or_else(|| bad("The BYOK blob has no ciphertext."))?;
        let ciphertext = decode_base64_lenient(ciphertext)
            .ok_or_else(|| bad("The BYOK blob's ciphertext is not valid base64url."))?;
        let kek_rec = self.resolve_kek(&kid).await?;
        self.check_kek(&kid, &kek_rec)?;
        let generator = file.generator.map(|g| match g {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        tracing::info!(
            kek = %kid,
            generator = generator.as_deref().map(printable).unwrap_or_default(),
            "BYOK import: opening a transfer blob"
        );
        let kek = self.private_key(&kek_rec).await?;
        let plaintext = coffer_crypto::byok::byok_unwrap(&kek, &ciphertext).map_err(|e| match e {
            coffer_crypto::Error::DecryptFailed => bad(UNWRAP_FAILED),
            coffer_crypto::Error::InvalidParameter(_) => bad(format!(
                "The BYOK ciphertext length does not fit the key exchange key: expected its {}-byte RSA block \
                 followed by an RFC 5649 key wrap.",
                kek.size_bits().div_ceil(8)
            )),
            other => Error::Crypto(other),
        })?;
        key_from_plaintext(family, curve, plaintext)
    }

    /// Finds the KEK that `kid` names: a key of this HSM, its given version or the latest.
    async fn resolve_kek(&self, kid: &str) -> Result<KeyVersionRecord, Error> {
        let malformed = || {
            bad(format!(
                "The BYOK blob's header.kid '{kid}' is not a key identifier ({}/keys/{{name}}[/{{version}}]).",
                self.config.public_url
            ))
        };
        let not_found = || bad(format!("The key exchange key '{kid}' was not found in this HSM."));
        let (origin, path) = split_url(kid).ok_or_else(malformed)?;
        let (own_origin, _) =
            split_url(&self.config.public_url).ok_or_else(|| Error::Corrupt("the public URL is not a URL".into()))?;
        if origin != own_origin {
            return Err(bad(format!(
                "The key exchange key '{kid}' does not belong to this HSM ({}).",
                self.config.public_url
            )));
        }
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (name, version) = match segments.as_slice() {
            ["keys", name] => (*name, None),
            ["keys", name, version] => (*name, Some(*version)),
            _ => return Err(malformed()),
        };
        let name = KeyName::parse(name).map_err(|_| not_found())?;
        let version = match version {
            Some(v) => Some(KeyVersion::parse(v).ok_or_else(not_found)?),
            None => None,
        };
        // Read through the store, not `load_version`: the audit record's key is the imported one, not the KEK.
        self.store
            .key_version(&name, version.as_ref())
            .await?
            .ok_or_else(not_found)
    }

    /// The KEK rules, at every import: RSA 2048/3072/4096, `key_ops` exactly `["import"]`, usable now.
    fn check_kek(&self, kid: &str, rec: &KeyVersionRecord) -> Result<(), Error> {
        if !matches!(rec.key_type, KeyType::Rsa(2048 | 3072 | 4096)) {
            return Err(bad(format!(
                "The key exchange key '{kid}' must be an RSA key of 2048, 3072 or 4096 bits; it is {}.",
                rec.key_type.kty()
            )));
        }
        if rec.key_ops != [KeyOperation::Import] {
            return Err(bad(format!(
                "The key '{kid}' is not a key exchange key: its key_ops must be exactly [\"import\"]."
            )));
        }
        if rec.attributes.exportable {
            return Err(bad(format!(
                "The key exchange key '{kid}' is exportable; a key exchange key must never leave the HSM."
            )));
        }
        let now = self.clock.now();
        if !rec.attributes.enabled {
            return Err(bad(format!("The key exchange key '{kid}' is disabled.")));
        }
        if rec.attributes.not_before.is_some_and(|nbf| now < nbf) {
            return Err(bad(format!("The key exchange key '{kid}' is not yet valid (nbf).")));
        }
        if rec.attributes.expires.is_some_and(|exp| now >= exp) {
            return Err(bad(format!("The key exchange key '{kid}' has expired.")));
        }
        Ok(())
    }
}

/// Parses the `.byok` JSON (UTF-8, a BOM and surrounding whitespace tolerated) and checks `schema_version` (1.x).
fn parse_blob(blob: &[u8]) -> Result<ByokFile, Error> {
    let not_blob = || {
        bad(
            "The key_hsm value is not a BYOK transfer blob: expected the base64url of a .byok JSON file \
             (schema_version, header, ciphertext).",
        )
    };
    let text = std::str::from_utf8(blob).map_err(|_| not_blob())?;
    let text = text.trim_start_matches('\u{feff}').trim();
    let file: ByokFile = serde_json::from_str(text).map_err(|_| not_blob())?;
    if let Some(v) = &file.schema_version
        && v != "1"
        && !v.starts_with("1.")
    {
        return Err(bad(format!(
            "The BYOK blob's schema_version '{v}' is not supported; expected 1.0.0."
        )));
    }
    Ok(file)
}

/// Fuzzing entry (`fuzz/`): the `.byok` file parser, its ciphertext's decoding, and (behind the RSA-OAEP and
/// RFC 5649 unwrap) the parser of the unwrapped plaintext for each key family. `plaintext` stands for what the
/// unwrap would yield.
#[doc(hidden)]
pub fn fuzz_parse_blob(blob: &[u8], plaintext: &[u8]) -> Result<(), Error> {
    let file = parse_blob(blob);
    if let Ok(f) = &file
        && let Some(c) = &f.ciphertext
    {
        let _ = decode_base64_lenient(c);
    }
    for (family, curve) in [
        (KeyFamily::Rsa, None),
        (KeyFamily::Ec, Some(Curve::P256)),
        (KeyFamily::Ec, None),
        (KeyFamily::Oct, None),
    ] {
        let _ = key_from_plaintext(family, curve, SecretBytes::new(plaintext.to_vec()));
    }
    file.map(|_| ())
}

/// Builds the target key from the unwrapped plaintext, checking it against the requested type and curve.
fn key_from_plaintext(
    family: KeyFamily,
    curve: Option<Curve>,
    plaintext: SecretBytes,
) -> Result<(KeyType, PrivateKey), Error> {
    let wanted = kty_name(family);
    let aes_sized = matches!(plaintext.len(), 16 | 24 | 32);
    let mismatch = |found: &str| {
        bad(format!(
            "The BYOK blob holds {found} key, but the request's kty is {wanted}."
        ))
    };
    if family == KeyFamily::Oct {
        if aes_sized {
            let key = PrivateKey::import_oct(plaintext).map_err(Error::from_request_crypto)?;
            return Ok((KeyType::Oct(key.size_bits()), key));
        }
        if let Ok(other) = PrivateKey::from_pkcs8(plaintext.expose_secret()) {
            return Err(mismatch(article_kty(other.family())));
        }
        return Err(bad(format!(
            "An oct-HSM key must be 16, 24 or 32 bytes; the BYOK blob holds {} bytes.",
            plaintext.len()
        )));
    }
    let key = match PrivateKey::from_pkcs8(plaintext.expose_secret()) {
        Ok(key) => key,
        Err(_) if aes_sized => return Err(mismatch("an oct-HSM (raw AES)")),
        Err(coffer_crypto::Error::InvalidKey(m)) => {
            return Err(bad(format!("The key in the BYOK blob is not usable: {m}.")));
        }
        Err(other) => return Err(Error::Crypto(other)),
    };
    drop(plaintext);
    if key.family() != family {
        return Err(mismatch(article_kty(key.family())));
    }
    let key_type = match (key.family(), key.curve()) {
        (KeyFamily::Rsa, _) => KeyType::Rsa(key.size_bits()),
        (KeyFamily::Ec, Some(found)) => {
            if let Some(want) = curve
                && want != found
            {
                return Err(bad(format!(
                    "The BYOK blob holds a {} key, but the request's crv is {}.",
                    found.name(),
                    want.name()
                )));
            }
            KeyType::Ec(found)
        }
        _ => return Err(Error::Corrupt("a parsed PKCS#8 key has no type".into())),
    };
    Ok((key_type, key))
}

fn article_kty(family: KeyFamily) -> &'static str {
    match family {
        KeyFamily::Ec => "an EC-HSM",
        KeyFamily::Oct => "an oct-HSM",
        KeyFamily::Rsa => "an RSA-HSM",
    }
}

/// A log-safe copy of a tool-supplied string: printable ASCII only, at most 200 characters.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_accepts_both_alphabets_with_or_without_padding() {
        for s in ["-_8", "+/8", "-_8=", " +/8= \n"] {
            assert_eq!(decode_base64_lenient(s), Some(vec![0xfb, 0xff]), "{s:?}");
        }
        assert_eq!(decode_base64_lenient("e30"), Some(b"{}".to_vec()));
        assert_eq!(decode_base64_lenient("e30="), Some(b"{}".to_vec()));
        assert!(decode_base64_lenient("e3*0").is_none());
    }

    #[test]
    fn urls_compare_by_scheme_and_host_case_insensitively() {
        let (o, p) = split_url("HTTPS://Contoso.ManagedHSM.Azure.NET:443/keys/kek/abc").unwrap();
        assert_eq!(
            (o.as_str(), p),
            ("https://contoso.managedhsm.azure.net", "keys/kek/abc")
        );
        let (o, p) = split_url("https://127.0.0.1:8443").unwrap();
        assert_eq!((o.as_str(), p), ("https://127.0.0.1:8443", ""));
        assert!(split_url("kek/abc").is_none());
        assert!(split_url("https:///keys/x").is_none());
    }

    #[test]
    fn blob_json_tolerates_bom_and_whitespace_and_checks_the_schema() {
        let ok = "\u{feff}  {\"schema_version\":\"1.0.0\",\"header\":{},\"ciphertext\":\"\"}\n";
        assert!(parse_blob(ok.as_bytes()).is_ok());
        assert!(parse_blob(br#"{"schema_version":"1.0"}"#).is_ok());
        assert!(parse_blob(br#"{"schema_version":"2.0.0"}"#).is_err());
        assert!(
            parse_blob(b"eyJhbGciOiJkaXIifQ.x.y").is_err(),
            "compact JWE is not the file format"
        );
        assert!(parse_blob(&[0xff, 0xfe]).is_err());
    }
}
