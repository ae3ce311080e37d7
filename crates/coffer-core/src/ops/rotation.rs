//! Key rotation: the rotation policy of a key (`GET`/`PUT /keys/{name}/rotationpolicy`, durations echoed exactly as
//! given, Managed HSM's 28-day minimums) and rotation (`POST /keys/{name}/rotate`, and the scheduler in `jobs.rs`):
//! a new version with new material of the same kind, copying operations, tags, enabled, exportable and release
//! policy, with `exp = now + expiryTime` when the policy sets one. At most 100 versions per key.
use serde::{Deserialize, Serialize};

use crate::duration::IsoDuration;
use crate::key::{KeyName, KeyType, KeyVersionRecord};
use crate::ops::KeyProperties;
use crate::ops::read::not_found;
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// Most versions a key may have.
pub const MAX_VERSIONS: i64 = 100;
const MIN_SECS: i64 = 28 * 86_400;

/// One lifetime action as stored (only `Rotate` on Managed HSM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifetimeAction {
    pub time_after_create: Option<String>,
    pub time_before_expiry: Option<String>,
}

/// A rotation policy as stored: the original duration strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    pub lifetime_actions: Vec<LifetimeAction>,
    pub expiry_time: Option<String>,
    #[serde(skip)]
    pub created: Option<i64>,
    #[serde(skip)]
    pub updated: Option<i64>,
}

/// A policy as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RotationPolicyRequest {
    /// (action type, timeAfterCreate, timeBeforeExpiry) per lifetime action.
    pub actions: Vec<(String, Option<String>, Option<String>)>,
    pub expiry_time: Option<String>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadParameter(m.into())
}

/// Validates a requested policy against Managed HSM's rules.
pub fn validate(req: RotationPolicyRequest) -> Result<RotationPolicy, Error> {
    if req.actions.len() > 2 {
        return Err(bad("A rotation policy has at most two lifetime actions."));
    }
    let expiry = match &req.expiry_time {
        Some(e) => {
            let d = IsoDuration::parse(e)?;
            if d.min_seconds() < MIN_SECS {
                return Err(bad("expiryTime must be at least 28 days (P28D)."));
            }
            Some(d)
        }
        None => None,
    };
    let mut actions = Vec::new();
    for (kind, after, before) in req.actions {
        if kind.eq_ignore_ascii_case("notify") {
            return Err(bad("Managed HSM supports only the Rotate lifetime action (no Notify)."));
        }
        if !kind.eq_ignore_ascii_case("rotate") {
            return Err(bad(format!("Unknown lifetime action type '{kind}'.")));
        }
        if !actions.is_empty() {
            return Err(bad("At most one Rotate action is allowed."));
        }
        match (&after, &before) {
            (Some(a), None) => {
                if IsoDuration::parse(a)?.min_seconds() < MIN_SECS {
                    return Err(bad("timeAfterCreate must be at least 28 days (P28D) on Managed HSM."));
                }
            }
            (None, Some(b)) => {
                let b = IsoDuration::parse(b)?;
                if let Some(e) = &expiry
                    && b.max_seconds() > e.min_seconds() - MIN_SECS
                {
                    return Err(bad("timeBeforeExpiry must be at most expiryTime minus 28 days."));
                }
            }
            _ => {
                return Err(bad(
                    "Each lifetime action needs exactly one trigger: timeAfterCreate or timeBeforeExpiry.",
                ));
            }
        }
        actions.push(LifetimeAction {
            time_after_create: after,
            time_before_expiry: before,
        });
    }
    Ok(RotationPolicy {
        lifetime_actions: actions,
        expiry_time: req.expiry_time,
        created: None,
        updated: None,
    })
}

impl Hsm {
    /// GetKeyRotationPolicy (an empty policy when none was set).
    pub async fn get_rotation_policy(&self, caller: &Principal, name: &str) -> Result<RotationPolicy, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysRead, &Scope::Key(key_name.to_string()))
            .await?;
        self.load_version(&key_name, None).await?;
        self.stored_policy(&key_name).await.map(Option::unwrap_or_default)
    }

    async fn stored_policy(&self, name: &KeyName) -> Result<Option<RotationPolicy>, Error> {
        match self.store.rotation_policy(name).await? {
            Some((json, created, updated)) => {
                let mut p: RotationPolicy =
                    serde_json::from_str(&json).map_err(|_| Error::Corrupt("rotation policy".into()))?;
                p.created = Some(created);
                p.updated = Some(updated);
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }

    /// UpdateKeyRotationPolicy: validates and stores; returns the stored form.
    pub async fn put_rotation_policy(
        &self,
        caller: &Principal,
        name: &str,
        req: RotationPolicyRequest,
    ) -> Result<RotationPolicy, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysWrite, &Scope::Key(key_name.to_string()))
            .await?;
        let policy = validate(req)?;
        let json = serde_json::to_string(&policy).map_err(|e| Error::Corrupt(e.to_string()))?;
        if !self
            .store
            .put_rotation_policy(&key_name, &json, self.clock.now())
            .await?
        {
            return Err(not_found(name));
        }
        tracing::info!(key = %key_name, "rotation policy set");
        self.stored_policy(&key_name).await?.ok_or_else(|| not_found(name))
    }

    /// RotateKey (on demand): needs a rotation policy, as on Managed HSM.
    pub async fn rotate_key(&self, caller: &Principal, name: &str) -> Result<KeyVersionRecord, Error> {
        let key_name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysRotate, &Scope::Key(key_name.to_string()))
            .await?;
        let current = self.load_version_for_write(&key_name, None).await?;
        let policy = self
            .stored_policy(&key_name)
            .await?
            .ok_or_else(|| bad("Set a rotation policy on the key before rotating it."))?;
        let rec = self.rotate_now(current, &policy).await?;
        tracing::info!(key = %rec.name, version = rec.version.as_str(), "key rotated on demand");
        crate::audit::context::key_result(&rec);
        Ok(rec)
    }

    /// Makes the new version (shared by the endpoint and the scheduler).
    pub(crate) async fn rotate_now(
        &self,
        current: KeyVersionRecord,
        policy: &RotationPolicy,
    ) -> Result<KeyVersionRecord, Error> {
        if self.store.version_count(&current.name).await? >= MAX_VERSIONS {
            return Err(bad(format!(
                "Key '{}' has reached the limit of {MAX_VERSIONS} versions.",
                current.name
            )));
        }
        let key_type = current.key_type;
        let key = match key_type {
            KeyType::Rsa(bits) => {
                tokio::task::spawn_blocking(move || coffer_crypto::keys::PrivateKey::generate_rsa(bits))
                    .await
                    .map_err(|_| Error::Corrupt("key generation task failed".into()))??
            }
            KeyType::Ec(c) => coffer_crypto::keys::PrivateKey::generate_ec(c)?,
            KeyType::Oct(bits) => coffer_crypto::keys::PrivateKey::generate_oct(bits)?,
        };
        let now = self.clock.now();
        let expires = match &policy.expiry_time {
            Some(e) => Some(IsoDuration::parse(e)?.add_to(now)),
            None => None,
        };
        let props = KeyProperties {
            key_ops: Some(current.key_ops.iter().map(|o| o.name().to_string()).collect()),
            enabled: Some(current.attributes.enabled),
            not_before: None,
            expires,
            exportable: Some(current.attributes.exportable),
            tags: Some(current.tags.clone()),
            release_policy: current.release_policy.clone(),
        };
        self.store_new_version(current.name, key_type, key, props, crate::key::KeyOrigin::Generated)
            .await
    }

    /// When the current version of a key is due for rotation under `policy` (None: no Rotate trigger, or a
    /// before-expiry trigger on a version without `exp`).
    pub fn rotation_due_at(current: &KeyVersionRecord, policy: &RotationPolicy) -> Option<i64> {
        let action = policy.lifetime_actions.first()?;
        if let Some(a) = &action.time_after_create {
            return IsoDuration::parse(a).ok().map(|d| d.add_to(current.attributes.created));
        }
        let before = IsoDuration::parse(action.time_before_expiry.as_deref()?).ok()?;
        current.attributes.expires.map(|exp| before.subtract_from(exp))
    }
}
