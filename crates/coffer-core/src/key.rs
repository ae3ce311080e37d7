//! Key domain types: names, versions, types, operations, attributes and the stored version record.
use std::collections::BTreeMap;

use coffer_crypto::keys::{Curve, KeyFamily, PublicKey};

use crate::Error;

/// A key name: 1 to 127 characters of `[0-9A-Za-z-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Parses a key name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() || s.len() > 127 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::BadParameter(format!(
                "The key name '{s}' is invalid: it must be 1 to 127 characters of 0-9, a-z, A-Z and '-'."
            )));
        }
        Ok(Self(s.to_string()))
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key version: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(String);

impl KeyVersion {
    /// Parses a version id as it appears in a URL (case-insensitive; stored lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(s.to_ascii_lowercase()))
    }
    /// A new random version.
    pub fn generate() -> Result<Self, Error> {
        let bytes = coffer_crypto::random::bytes(16)?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }
    /// The version id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key type and size of a Managed HSM key (always the `-HSM` variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ec(Curve),
    Oct(u32),
    Rsa(u32),
}

impl KeyType {
    /// The JWK `kty` Managed HSM reports.
    pub fn kty(self) -> &'static str {
        match self {
            Self::Ec(_) => "EC-HSM",
            Self::Oct(_) => "oct-HSM",
            Self::Rsa(_) => "RSA-HSM",
        }
    }
    /// The crypto family.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Ec(_) => KeyFamily::Ec,
            Self::Oct(_) => KeyFamily::Oct,
            Self::Rsa(_) => KeyFamily::Rsa,
        }
    }
    /// Normalises a requested `kty` (`RSA`, `RSA-HSM`, `EC`, `EC-HSM`, `oct`, `oct-HSM`) to a family.
    pub fn parse_family(kty: &str) -> Result<KeyFamily, Error> {
        match kty {
            "RSA" | "RSA-HSM" => Ok(KeyFamily::Rsa),
            "EC" | "EC-HSM" => Ok(KeyFamily::Ec),
            "oct" | "oct-HSM" => Ok(KeyFamily::Oct),
            other => Err(Error::BadParameter(format!(
                "The key type '{other}' is not supported. Supported: RSA-HSM, EC-HSM, oct-HSM."
            ))),
        }
    }
    /// Operations a new key of this type allows when the request names none.
    pub fn default_ops(self) -> Vec<KeyOperation> {
        use KeyOperation::{Decrypt, Encrypt, Sign, UnwrapKey, Verify, WrapKey};
        match self {
            Self::Rsa(_) => vec![Encrypt, Decrypt, Sign, Verify, WrapKey, UnwrapKey],
            Self::Ec(_) => vec![Sign, Verify],
            Self::Oct(_) => vec![Encrypt, Decrypt, WrapKey, UnwrapKey],
        }
    }
    /// Operations that make sense for this type at all.
    pub fn allowed_ops(self) -> &'static [KeyOperation] {
        use KeyOperation::{Decrypt, Encrypt, Export, Import, Sign, UnwrapKey, Verify, WrapKey};
        match self {
            Self::Rsa(_) => &[Encrypt, Decrypt, Sign, Verify, WrapKey, UnwrapKey, Import, Export],
            // `import` makes a key exchange key (BYOK), which must be RSA.
            Self::Ec(_) => &[Sign, Verify, Export],
            Self::Oct(_) => &[Encrypt, Decrypt, WrapKey, UnwrapKey, Export],
        }
    }
    /// A stable storage tag: `RSA`, `EC`, `oct`.
    pub fn storage_tag(self) -> &'static str {
        match self {
            Self::Ec(_) => "EC",
            Self::Oct(_) => "oct",
            Self::Rsa(_) => "RSA",
        }
    }
}

/// A JSON Web Key operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyOperation {
    Decrypt,
    Encrypt,
    Export,
    Import,
    Sign,
    UnwrapKey,
    Verify,
    WrapKey,
}

impl KeyOperation {
    /// The wire name (`wrapKey`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Decrypt => "decrypt",
            Self::Encrypt => "encrypt",
            Self::Export => "export",
            Self::Import => "import",
            Self::Sign => "sign",
            Self::UnwrapKey => "unwrapKey",
            Self::Verify => "verify",
            Self::WrapKey => "wrapKey",
        }
    }
    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "decrypt" => Self::Decrypt,
            "encrypt" => Self::Encrypt,
            "export" => Self::Export,
            "import" => Self::Import,
            "sign" => Self::Sign,
            "unwrapKey" => Self::UnwrapKey,
            "verify" => Self::Verify,
            "wrapKey" => Self::WrapKey,
            other => {
                return Err(Error::BadParameter(format!("Unknown key operation '{other}'.")));
            }
        })
    }
    /// Parses and validates a list of operations for a key type, removing duplicates and keeping order.
    pub fn parse_list(names: &[String], key_type: KeyType) -> Result<Vec<Self>, Error> {
        let mut ops = Vec::new();
        for n in names {
            let op = Self::parse(n)?;
            if !key_type.allowed_ops().contains(&op) {
                return Err(Error::BadParameter(format!(
                    "The key operation '{n}' is not valid for a key of type {}.",
                    key_type.kty()
                )));
            }
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        // A key exchange key (BYOK) may only import: "import is mutually exclusive with all other key operations".
        if ops.contains(&Self::Import) && ops.len() > 1 {
            return Err(Error::BadParameter(
                "The key operation 'import' is mutually exclusive with all other key operations: a key exchange key \
                 must have key_ops [\"import\"] only."
                    .into(),
            ));
        }
        Ok(ops)
    }
}

/// Attributes of one key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    pub enabled: bool,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    pub created: i64,
    pub updated: i64,
    pub exportable: bool,
}

/// One stored key version: public data in the clear, private material sealed.
#[derive(Debug, Clone)]
pub struct KeyVersionRecord {
    pub name: KeyName,
    pub version: KeyVersion,
    pub key_type: KeyType,
    pub public_key: PublicKey,
    pub key_ops: Vec<KeyOperation>,
    pub attributes: KeyAttributes,
    pub tags: BTreeMap<String, String>,
    /// Release policy JSON as given (kept for the key-release issue).
    pub release_policy: Option<String>,
    /// AES-256-GCM envelope of the private material, AAD from [`crate::instance::material_aad`].
    pub sealed_material: Vec<u8>,
    /// How the version came to be (`None`: written before Coffer recorded it).
    pub origin: Option<KeyOrigin>,
}

/// How a key version came to be (key attestation reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Generated inside an instance holding this security domain (create, rotate).
    Generated,
    /// Imported in plaintext (`PUT /keys/{name}` with a private JWK).
    Imported,
    /// Imported from a `.byok` blob (wrapped for a key exchange key).
    Byok,
}

impl KeyOrigin {
    /// The stored and attested name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Imported => "imported",
            Self::Byok => "byok",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Generated, Self::Imported, Self::Byok]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// Soft-deletion facts of a deleted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deletion {
    pub deleted_date: i64,
    pub scheduled_purge_date: i64,
}

/// A key version together with its deletion state (for deleted-key reads).
#[derive(Debug, Clone)]
pub struct DeletedKey {
    pub latest: KeyVersionRecord,
    pub deletion: Deletion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_the_azure_pattern() {
        for ok in ["a", "key-1", "ABC-def-123", &"x".repeat(127)] {
            assert_eq!(KeyName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "under_score", "dot.name", "space name", "ümlaut", &"x".repeat(128)] {
            assert!(
                matches!(KeyName::parse(bad), Err(Error::BadParameter(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn versions_are_32_lowercase_hex() {
        let v = KeyVersion::generate().unwrap();
        assert_eq!(v.as_str().len(), 32);
        assert!(
            v.as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(v, KeyVersion::generate().unwrap());
        assert_eq!(
            KeyVersion::parse("ABCDEF0123456789abcdef0123456789").unwrap().as_str(),
            "abcdef0123456789abcdef0123456789"
        );
        assert!(KeyVersion::parse("abc").is_none());
        assert!(KeyVersion::parse("g".repeat(32).as_str()).is_none());
    }

    #[test]
    fn key_types_normalise_to_hsm_variants() {
        assert_eq!(KeyType::parse_family("RSA").unwrap(), KeyFamily::Rsa);
        assert_eq!(KeyType::parse_family("RSA-HSM").unwrap(), KeyFamily::Rsa);
        assert_eq!(KeyType::parse_family("oct").unwrap(), KeyFamily::Oct);
        assert_eq!(KeyType::parse_family("EC-HSM").unwrap(), KeyFamily::Ec);
        assert!(KeyType::parse_family("rsa").is_err());
        assert_eq!(KeyType::Rsa(2048).kty(), "RSA-HSM");
        assert_eq!(KeyType::Oct(128).kty(), "oct-HSM");
    }

    #[test]
    fn key_operations_are_validated_per_type() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let ops = KeyOperation::parse_list(&names(&["sign", "verify", "sign"]), KeyType::Ec(Curve::P256)).unwrap();
        assert_eq!(ops, vec![KeyOperation::Sign, KeyOperation::Verify]);
        assert!(KeyOperation::parse_list(&names(&["encrypt"]), KeyType::Ec(Curve::P256)).is_err());
        assert!(KeyOperation::parse_list(&names(&["sign"]), KeyType::Oct(256)).is_err());
        assert!(
            KeyOperation::parse_list(&names(&["wrapkey"]), KeyType::Rsa(2048)).is_err(),
            "names are case-sensitive"
        );
        assert_eq!(
            KeyOperation::parse_list(&names(&["import"]), KeyType::Rsa(4096)).unwrap(),
            vec![KeyOperation::Import]
        );
        for mixed in [
            &["import", "decrypt"][..],
            &["unwrapKey", "import"],
            &["import", "export"],
        ] {
            assert!(
                matches!(KeyOperation::parse_list(&names(mixed), KeyType::Rsa(2048)), Err(Error::BadParameter(m)) if m.contains("mutually exclusive")),
                "{mixed:?}"
            );
        }
        assert!(KeyOperation::parse_list(&names(&["import"]), KeyType::Ec(Curve::P256)).is_err());
        assert!(KeyOperation::parse_list(&names(&["import"]), KeyType::Oct(256)).is_err());
        let all = KeyOperation::parse_list(
            &names(&["wrapKey", "unwrapKey", "encrypt", "decrypt"]),
            KeyType::Oct(256),
        );
        assert_eq!(all.unwrap().len(), 4);
    }
}
