//! Keys API shapes (keys.json, 2025-07-01).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// JsonWebKey. Responses never carry the private members.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonWebKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dq: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hsm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// KeyAttributes. Only `enabled`, `nbf`, `exp` and `exportable` are writable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
    #[serde(rename = "recoverableDays", skip_serializing_if = "Option::is_none")]
    pub recoverable_days: Option<i64>,
    #[serde(rename = "recoveryLevel", skip_serializing_if = "Option::is_none")]
    pub recovery_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exportable: Option<bool>,
    #[serde(rename = "hsmPlatform", skip_serializing_if = "Option::is_none")]
    pub hsm_platform: Option<String>,
    /// Read-only: set by GetKeyAttestation only.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub attestation: Option<KeyAttestation>,
}

/// KeyAttestation (base64url blobs; Coffer's format: docs/KEY-ATTESTATION.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyAttestation {
    #[serde(rename = "certificatePemFile", skip_serializing_if = "Option::is_none")]
    pub certificate_pem_file: Option<String>,
    #[serde(rename = "privateKeyAttestation", skip_serializing_if = "Option::is_none")]
    pub private_key_attestation: Option<String>,
    #[serde(rename = "publicKeyAttestation", skip_serializing_if = "Option::is_none")]
    pub public_key_attestation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// POST /keys/{name}/{version}/release.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyReleaseParameters {
    pub target: Option<String>,
    pub nonce: Option<String>,
    pub enc: Option<String>,
}

/// KeyReleaseResult: a compact JWS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyReleaseResult {
    pub value: String,
}

/// KeyReleasePolicy (the policy JSON is base64url in `data`; see docs/KEY-RELEASE.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyReleasePolicy {
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// POST /keys/{name}/create.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyCreateParameters {
    pub kty: String,
    pub key_size: Option<i64>,
    pub public_exponent: Option<i64>,
    pub key_ops: Option<Vec<String>>,
    pub attributes: Option<KeyAttributes>,
    pub tags: Option<BTreeMap<String, String>>,
    pub crv: Option<String>,
    pub release_policy: Option<KeyReleasePolicy>,
}

/// PUT /keys/{name}.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyImportParameters {
    #[serde(rename = "Hsm")]
    pub hsm: Option<bool>,
    pub key: JsonWebKey,
    pub attributes: Option<KeyAttributes>,
    pub tags: Option<BTreeMap<String, String>>,
    pub release_policy: Option<KeyReleasePolicy>,
}

/// PATCH /keys/{name}/{version}.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyUpdateParameters {
    pub key_ops: Option<Vec<String>>,
    pub attributes: Option<KeyAttributes>,
    pub tags: Option<BTreeMap<String, String>>,
    pub release_policy: Option<KeyReleasePolicy>,
}

/// KeyBundle, and DeletedKeyBundle when the deletion fields are set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyBundle {
    pub key: JsonWebKey,
    pub attributes: KeyAttributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_policy: Option<KeyReleasePolicy>,
    #[serde(rename = "recoveryId", skip_serializing_if = "Option::is_none")]
    pub recovery_id: Option<String>,
    #[serde(rename = "scheduledPurgeDate", skip_serializing_if = "Option::is_none")]
    pub scheduled_purge_date: Option<i64>,
    #[serde(rename = "deletedDate", skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<i64>,
}

/// KeyItem and DeletedKeyItem (list rows, no key material).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyItem {
    pub kid: String,
    pub attributes: KeyAttributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "recoveryId", skip_serializing_if = "Option::is_none")]
    pub recovery_id: Option<String>,
    #[serde(rename = "scheduledPurgeDate", skip_serializing_if = "Option::is_none")]
    pub scheduled_purge_date: Option<i64>,
    #[serde(rename = "deletedDate", skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<i64>,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResult<T> {
    pub value: Vec<T>,
    #[serde(rename = "nextLink")]
    pub next_link: Option<String>,
}

/// encrypt / decrypt / wrapKey / unwrapKey request.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyOperationsParameters {
    pub alg: String,
    pub value: String,
    pub iv: Option<String>,
    pub aad: Option<String>,
    pub tag: Option<String>,
}

/// encrypt / decrypt / wrapKey / unwrapKey / sign response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyOperationResult {
    pub kid: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aad: Option<String>,
}

/// sign request: `value` is the digest.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySignParameters {
    pub alg: String,
    pub value: String,
}

/// verify request.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyVerifyParameters {
    pub alg: String,
    pub digest: String,
    pub value: String,
}

/// verify response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyVerifyResult {
    pub value: bool,
}

/// Key backup blob (response of backup, request of restore).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupKeyResult {
    pub value: String,
}

/// POST /rng request.
#[derive(Debug, Clone, Deserialize)]
pub struct GetRandomBytesRequest {
    pub count: i64,
}

/// POST /rng response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomBytes {
    pub value: String,
}
