//! Trust of external OIDC issuers (Entra ID, Keycloak, Kubernetes workload identities…): which issuers, which
//! audiences, which claims name the caller, and a cache of their signing keys. Fetching a JWK Set is I/O, so it
//! goes through the [`KeySetFetcher`] port; the cache refreshes when a token names an unknown `kid` (at most once
//! per `min_refresh_secs`) and after `max_age_secs`, and keeps the last good set when a fetch fails.
use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::Error;

/// Where an issuer's JWK Set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// An `https://` URL.
    Url(String),
    /// A local file.
    File(std::path::PathBuf),
}

/// A trusted external issuer.
#[derive(Debug, Clone)]
pub struct ExternalIssuer {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    /// Claim holding the object id (falls back to `sub`).
    pub object_id_claim: String,
    /// Claim holding group object ids.
    pub groups_claim: String,
    /// Allowed JWS algorithms (e.g. RS256, ES256).
    pub algorithms: Vec<String>,
    /// PEM file of a CA to trust for the JWKS URL (besides the system roots).
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Fetches JWK Sets.
#[async_trait]
pub trait KeySetFetcher: Send + Sync {
    /// The current JWK Set of `issuer`.
    async fn fetch(&self, issuer: &ExternalIssuer) -> Result<serde_json::Value, Error>;
}

struct Cached {
    keys: serde_json::Value,
    fetched: i64,
}

/// JWK Sets by issuer.
#[derive(Default)]
pub struct KeySetCache {
    entries: Mutex<HashMap<String, Cached>>,
    attempts: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for KeySetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySetCache(..)")
    }
}

/// Seconds between forced refreshes of one issuer.
pub const MIN_REFRESH_SECS: i64 = 30;
/// Age after which a cached set is refreshed.
pub const MAX_AGE_SECS: i64 = 3600;

impl KeySetCache {
    /// The cached set if fresh enough and (when `kid` is given) containing that key id.
    fn get(&self, issuer: &str, kid: Option<&str>, now: i64) -> Option<serde_json::Value> {
        let map = self.entries.lock().ok()?;
        let c = map.get(issuer)?;
        let has_kid = kid.is_none_or(|k| {
            c.keys["keys"]
                .as_array()
                .is_some_and(|a| a.iter().any(|j| j["kid"].as_str() == Some(k)))
        });
        (has_kid && now - c.fetched < MAX_AGE_SECS).then(|| c.keys.clone())
    }

    fn stale(&self, issuer: &str) -> Option<serde_json::Value> {
        self.entries.lock().ok()?.get(issuer).map(|c| c.keys.clone())
    }

    /// The key set to verify a token with: cached, or fetched (rate-limited), or the last good one.
    pub async fn key_set(
        &self,
        fetcher: &dyn KeySetFetcher,
        issuer: &ExternalIssuer,
        kid: Option<&str>,
        now: i64,
    ) -> Result<serde_json::Value, Error> {
        if let Some(k) = self.get(&issuer.issuer, kid, now) {
            return Ok(k);
        }
        let may_fetch = {
            let mut attempts = self.attempts.lock().map_err(|_| Error::Corrupt("lock".into()))?;
            let last = attempts.get(&issuer.issuer).copied();
            let ok = last.is_none_or(|t| now - t >= MIN_REFRESH_SECS) || self.stale(&issuer.issuer).is_none();
            if ok {
                attempts.insert(issuer.issuer.clone(), now);
            }
            ok
        };
        if may_fetch {
            match fetcher.fetch(issuer).await {
                Ok(keys) if keys["keys"].is_array() => {
                    if let Ok(mut map) = self.entries.lock() {
                        map.insert(
                            issuer.issuer.clone(),
                            Cached {
                                keys: keys.clone(),
                                fetched: now,
                            },
                        );
                    }
                    tracing::info!(issuer = %issuer.issuer, "fetched issuer signing keys");
                    return Ok(keys);
                }
                Ok(_) => tracing::warn!(issuer = %issuer.issuer, "issuer JWKS has no keys array"),
                Err(e) => tracing::warn!(issuer = %issuer.issuer, error = %e, "could not fetch issuer JWKS"),
            }
        }
        self.stale(&issuer.issuer).ok_or(Error::Unauthenticated)
    }
}
