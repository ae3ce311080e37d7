//! Row ⇄ domain conversion, shared by the adapters.
use coffer_core::Error;
use coffer_core::key::{KeyAttributes, KeyName, KeyOperation, KeyOrigin, KeyType, KeyVersion, KeyVersionRecord};
use coffer_crypto::keys::{Curve, PublicKey};
use sqlx::Row;

/// The columns of a key version, with its key's name and deletion state.
pub(crate) const VERSION_SELECT: &str = "SELECT k.name AS name, k.deleted_date AS deleted_date, \
    k.scheduled_purge_date AS scheduled_purge_date, v.version, v.kty, v.size_bits, v.crv, v.pub_a, v.pub_b, \
    v.key_ops, v.enabled, v.nbf, v.exp, v.created, v.updated, v.exportable, v.tags, v.release_policy, \
    v.sealed_material, v.origin FROM key_versions v JOIN keys k ON k.name_key = v.name_key";

pub(crate) fn storage(e: sqlx::Error) -> Error {
    Error::Storage(Box::new(e))
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("key_versions row: {what}"))
}

/// Column values of a key version row (public parts in `pub_a`/`pub_b`: RSA n/e, EC x/y).
pub(crate) struct VersionColumns {
    pub kty: &'static str,
    pub size_bits: i64,
    pub crv: Option<&'static str>,
    pub pub_a: Option<Vec<u8>>,
    pub pub_b: Option<Vec<u8>>,
    pub key_ops: String,
    pub tags: String,
}

pub(crate) fn columns(rec: &KeyVersionRecord) -> Result<VersionColumns, Error> {
    let (size_bits, crv) = match rec.key_type {
        KeyType::Rsa(b) | KeyType::Oct(b) => (i64::from(b), None),
        KeyType::Ec(c) => (0, Some(c.name())),
    };
    let (pub_a, pub_b) = match &rec.public_key {
        PublicKey::Rsa { n, e } => (Some(n.clone()), Some(e.clone())),
        PublicKey::Ec { x, y, .. } => (Some(x.clone()), Some(y.clone())),
        PublicKey::Oct => (None, None),
    };
    let key_ops = rec.key_ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(",");
    let tags = serde_json::to_string(&rec.tags).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(VersionColumns {
        kty: rec.key_type.storage_tag(),
        size_bits,
        crv,
        pub_a,
        pub_b,
        key_ops,
        tags,
    })
}

pub(crate) fn version_from_row(row: &sqlx::any::AnyRow) -> Result<KeyVersionRecord, Error> {
    let g = |c: &str| -> Result<i64, Error> { row.try_get::<i64, _>(c).map_err(storage) };
    let go = |c: &str| -> Result<Option<i64>, Error> { row.try_get::<Option<i64>, _>(c).map_err(storage) };
    let s = |c: &str| -> Result<String, Error> { row.try_get::<String, _>(c).map_err(storage) };
    let name = KeyName::parse(&s("name")?).map_err(|_| corrupt("name"))?;
    let version = KeyVersion::parse(&s("version")?).ok_or_else(|| corrupt("version"))?;
    let kty = s("kty")?;
    let crv: Option<String> = row.try_get("crv").map_err(storage)?;
    let pub_a: Option<Vec<u8>> = row.try_get("pub_a").map_err(storage)?;
    let pub_b: Option<Vec<u8>> = row.try_get("pub_b").map_err(storage)?;
    let size = u32::try_from(g("size_bits")?).map_err(|_| corrupt("size"))?;
    let (key_type, public_key) = match (kty.as_str(), crv, pub_a, pub_b) {
        ("RSA", None, Some(n), Some(e)) => (KeyType::Rsa(size), PublicKey::Rsa { n, e }),
        ("EC", Some(c), Some(x), Some(y)) => {
            let curve = Curve::parse(&c).ok_or_else(|| corrupt("crv"))?;
            (KeyType::Ec(curve), PublicKey::Ec { curve, x, y })
        }
        ("oct", None, None, None) => (KeyType::Oct(size), PublicKey::Oct),
        _ => return Err(corrupt("key type")),
    };
    let ops_text = s("key_ops")?;
    let key_ops = ops_text
        .split(',')
        .filter(|o| !o.is_empty())
        .map(KeyOperation::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| corrupt("key_ops"))?;
    let tags = serde_json::from_str(&s("tags")?).map_err(|_| corrupt("tags"))?;
    Ok(KeyVersionRecord {
        name,
        version,
        key_type,
        public_key,
        key_ops,
        attributes: KeyAttributes {
            enabled: g("enabled")? != 0,
            not_before: go("nbf")?,
            expires: go("exp")?,
            created: g("created")?,
            updated: g("updated")?,
            exportable: g("exportable")? != 0,
        },
        tags,
        release_policy: row.try_get("release_policy").map_err(storage)?,
        sealed_material: row.try_get("sealed_material").map_err(storage)?,
        origin: row
            .try_get::<Option<String>, _>("origin")
            .map_err(storage)?
            .and_then(|o| KeyOrigin::parse(&o)),
    })
}
