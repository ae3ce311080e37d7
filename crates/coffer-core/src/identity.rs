//! The built-in token service (client-credentials grant by client secret or by certificate assertion) and
//! bearer-token validation. Tokens are ES256 JWTs signed by a key sealed under the domain secret.
//!
//! A bearer token's signature is verified once; its claims are then kept in a bounded cache keyed by the
//! SHA-256 of the token, until the token expires. Revocation does not wait for expiry: on every request a token
//! of this instance's own service is checked against the in-memory state (`state/`):
//! - the principal must still exist (deleting it ends its tokens at once);
//! - the credential the token was issued with (its `cred` claim: the client secret's id, or the SHA-256 of the
//!   certificate) must still be registered (removing a secret or certificate ends the tokens it obtained);
//! - the token's `groups` count only while the principal is still a member (removing a member takes effect at
//!   once; joining a group needs a new token, as in Entra ID).
//!
//! Tokens of external issuers are their issuers' business: they are honoured until they expire.
//!
//! The service issues tokens for two resources, and each is accepted only where it belongs: the HSM's (`resource`,
//! the data plane) and the Graph subset's (`{public URL}/graph`, which the Azure CLI calls to show principal
//! names). A Graph token is refused by the data plane and an HSM token by Graph ([`Audience`]). Tokens of external
//! issuers are HSM tokens only.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_crypto::jwt::{self, TokenValidation};

use crate::instance::client_secret_hash;
use crate::{Error, Hsm, Principal};

/// The client-assertion type of RFC 7523.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token request (form fields of the token endpoint).
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<coffer_crypto::SecretBytes>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub scope: Option<String>,
}

/// An issued token.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// How many verified tokens the cache keeps.
const TOKEN_CACHE_CAPACITY: usize = 65_536;
/// Clock skew allowed on `exp` and `nbf`, seconds.
const LEEWAY: i64 = 60;

/// Which of the resources served here a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The data plane (`resource`).
    Hsm,
    /// The Graph subset (`{public URL}/graph`).
    Graph,
}

/// A verified token's facts.
#[derive(Debug)]
struct VerifiedToken {
    principal: Principal,
    /// The resource the token is for.
    audience: Audience,
    /// `exp` and `nbf` (Unix seconds; `nbf` 0 when absent).
    exp: i64,
    nbf: i64,
    /// Issued by this instance's own token service.
    own: bool,
    /// The credential the token was issued with (`cred`), for own tokens.
    credential: Option<String>,
}

/// Verified bearer tokens by SHA-256 of the token. (The hash is not secret: it does not reveal the token.)
#[derive(Debug, Default)]
pub struct TokenCache {
    map: RwLock<HashMap<[u8; 32], Arc<VerifiedToken>>>,
}

impl TokenCache {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<VerifiedToken>> {
        match self.map.read() {
            Ok(m) => m.get(key).cloned(),
            Err(p) => p.into_inner().get(key).cloned(),
        }
    }
    fn insert(&self, key: [u8; 32], token: Arc<VerifiedToken>, now: i64) {
        let mut m = match self.map.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if m.len() >= TOKEN_CACHE_CAPACITY {
            m.retain(|_, t| now < t.exp.saturating_add(LEEWAY));
            if m.len() >= TOKEN_CACHE_CAPACITY {
                m.clear();
            }
        }
        m.insert(key, token);
    }
    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }
    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Hsm {
    /// Whether a bearer token's verification is cached, so that [`Hsm::authenticate`] checks no signature for it
    /// (the dispatcher charges the client address before an uncached token is verified). Cheap: one SHA-256.
    pub fn is_token_cached(&self, bearer: &str) -> bool {
        self.tokens
            .get(&coffer_crypto::hash::sha256(bearer.as_bytes()))
            .is_some()
    }
}

fn invalid_request(code: &'static str, description: impl Into<String>) -> Error {
    Error::InvalidTokenRequest {
        code,
        description: description.into(),
    }
}

impl Hsm {
    /// The issuer of this instance's tokens: `{url}/{tenant}/v2.0`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The token endpoint as advertised (also the audience of client assertions).
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.config.public_url, self.instance.tenant_id
        )
    }

    /// The public JWK Set of the token service.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.token_key().public_jwk()] })
    }

    /// Runs the client-credentials grant.
    pub async fn issue_token(&self, req: TokenRequest, token_endpoint_seen: &str) -> Result<IssuedToken, Error> {
        match req.grant_type.as_deref() {
            Some("client_credentials") => {}
            Some(other) => {
                return Err(invalid_request(
                    "unsupported_grant_type",
                    format!("The grant type '{other}' is not supported."),
                ));
            }
            None => {
                return Err(invalid_request(
                    "invalid_request",
                    "The request must contain grant_type.",
                ));
            }
        }
        let scope = req
            .scope
            .as_deref()
            .ok_or_else(|| invalid_request("invalid_request", "scope is required."))?;
        let audience = scope
            .split(' ')
            .find_map(|s| s.strip_suffix("/.default"))
            .ok_or_else(|| invalid_request("invalid_scope", "The scope must be '<resource>/.default'."))?;
        if !self.accepted_audiences().iter().any(|a| a == audience)
            && !self.graph_audiences().iter().any(|a| a == audience)
        {
            return Err(invalid_request(
                "invalid_scope",
                format!("The resource '{audience}' is not served here."),
            ));
        }
        let client_id = req
            .client_id
            .as_deref()
            .ok_or_else(|| invalid_request("invalid_request", "client_id is required."))?;
        let principal = self.store.principal_by_client_id(client_id).await?;
        let Some(principal) = principal else {
            tracing::info!(client_id, "token refused: unknown client");
            return Err(Error::InvalidClient(format!(
                "Application with identifier '{client_id}' was not found."
            )));
        };
        let now = self.clock.now();
        let credential: String;
        if let Some(secret) = &req.client_secret {
            let presented = client_secret_hash(secret.expose_secret());
            let mut matched: Option<&str> = None;
            // Every stored hash is compared (constant time each), whichever matches.
            for stored in &principal.secrets {
                if coffer_crypto::secret::ct_eq(&stored.hash, &presented) {
                    matched = Some(&stored.id);
                }
            }
            let Some(id) = matched else {
                tracing::info!(client_id, "token refused: wrong client secret");
                return Err(Error::InvalidClient("Invalid client secret provided.".into()));
            };
            credential = id.to_string();
        } else if let Some(assertion) = &req.client_assertion {
            if req.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                return Err(invalid_request(
                    "invalid_request",
                    "client_assertion_type must be jwt-bearer.",
                ));
            }
            let now_u = u64::try_from(now).unwrap_or(0);
            let mut accepted = None;
            // The assertion's audience is the token endpoint as the client saw it advertised; the certificate that
            // verifies it is the credential the token is bound to.
            'found: for aud in [self.token_endpoint(), token_endpoint_seen.to_string()] {
                for cert in &principal.certificates {
                    if let Ok(claims) =
                        jwt::verify_client_assertion(assertion, std::slice::from_ref(cert), &aud, client_id, now_u)
                    {
                        accepted = Some((crate::state::certificate_credential_id(cert), claims));
                        break 'found;
                    }
                }
            }
            let Some((id, claims)) = accepted else {
                tracing::info!(client_id, "token refused: client assertion rejected");
                return Err(Error::InvalidClient("The client assertion is invalid.".into()));
            };
            // Replay rules: iat and exp, at most 10 minutes, each jti once (remembered in the store).
            let assertion_id = crate::assertion::check(&claims, self.clock.now()).map_err(|reason| {
                tracing::info!(client_id, reason, "token refused: client assertion rejected");
                Error::InvalidClient("The client assertion is invalid.".into())
            })?;
            if !self
                .store
                .consume_assertion_jti(client_id, &assertion_id.jti, assertion_id.remember_until, now)
                .await?
            {
                tracing::info!(client_id, "token refused: client assertion replayed (jti already used)");
                return Err(Error::InvalidClient("The client assertion is invalid.".into()));
            }
            credential = id;
        } else {
            return Err(invalid_request(
                "invalid_request",
                "client_secret or client_assertion is required.",
            ));
        }
        let groups = self.store.groups_of(&principal.object_id).await?;
        let lifetime = self.config.token_lifetime_secs;
        let claims = serde_json::json!({
            "aud": audience,
            "iss": self.issuer(),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "tid": self.instance.tenant_id,
            "appid": principal.client_id,
            "azp": principal.client_id,
            "idtyp": "app",
            "groups": groups,
            "cred": credential,
            "ver": "2.0",
        });
        let access_token = self.token_key().sign(&claims)?;
        tracing::info!(client_id, object_id = %principal.object_id, "token issued");
        Ok(IssuedToken {
            access_token,
            expires_in: u64::try_from(lifetime).unwrap_or(3600),
        })
    }

    /// Audiences the data plane accepts.
    pub fn accepted_audiences(&self) -> Vec<String> {
        let r = self.config.resource.trim_end_matches('/').to_string();
        vec![r.clone(), format!("{r}/")]
    }

    /// The Graph subset's resource (`{public URL}/graph`): the `microsoftGraphResourceId` of an Azure CLI cloud.
    pub fn graph_resource(&self) -> String {
        format!("{}/graph", self.config.public_url.trim_end_matches('/'))
    }

    /// Audiences of Graph tokens.
    fn graph_audiences(&self) -> Vec<String> {
        let g = self.graph_resource();
        vec![g.clone(), format!("{g}/")]
    }

    /// Validates a bearer token for the data plane (signature, issuer, audience, expiry, not-before) and returns
    /// the caller. Tokens of this instance's token service and of configured external issuers are accepted.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, Error> {
        self.authenticate_for(bearer, Audience::Hsm).await
    }

    /// Validates a bearer token for `audience`: a token for the other resource is refused.
    pub async fn authenticate_for(&self, bearer: &str, audience: Audience) -> Result<Principal, Error> {
        let key = coffer_crypto::hash::sha256(bearer.as_bytes());
        let now = self.clock.now();
        let token = match self.tokens.get(&key) {
            Some(t) => t,
            None => {
                let t = Arc::new(self.verify_token(bearer).await?);
                self.tokens.insert(key, Arc::clone(&t), now);
                t
            }
        };
        if now >= token.exp.saturating_add(LEEWAY) || now < token.nbf.saturating_sub(LEEWAY) {
            return Err(Error::Unauthenticated);
        }
        if token.audience != audience {
            tracing::debug!(object_id = %token.principal.object_id, ?audience, "token for another resource");
            return Err(Error::Unauthenticated);
        }
        if !token.own {
            return Ok(token.principal.clone());
        }
        let view = self.view();
        let Some(entry) = view.principals.get(&token.principal.object_id) else {
            tracing::debug!(object_id = %token.principal.object_id, "token of a deleted principal");
            return Err(Error::Unauthenticated);
        };
        // Every token this service issues names its credential; one that does not (issued before credentials
        // were bound to tokens) is refused, so that removing a secret always ends the tokens it obtained.
        if !token
            .credential
            .as_ref()
            .is_some_and(|cred| entry.credentials.iter().any(|c| c == cred))
        {
            tracing::debug!(object_id = %token.principal.object_id, "token of a removed credential");
            return Err(Error::Unauthenticated);
        }
        let member_of = view.groups_of(&token.principal.object_id);
        let mut principal = token.principal.clone();
        principal.groups.retain(|g| member_of.contains(g));
        Ok(principal)
    }

    /// Verifies a bearer token's signature and claims (once per token; [`Self::authenticate`] caches the result).
    async fn verify_token(&self, bearer: &str) -> Result<VerifiedToken, Error> {
        let peeked = jwt::peek(bearer).map_err(|_| Error::Unauthenticated)?;
        let iss = peeked
            .claims
            .get("iss")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        if iss == self.issuer() {
            let hsm = self.accepted_audiences();
            let graph = self.graph_audiences();
            let audiences: Vec<String> = hsm.iter().chain(&graph).cloned().collect();
            let validation = TokenValidation {
                issuer: &iss,
                audiences: &audiences,
                now,
                leeway: 60,
            };
            let claims = jwt::verify(bearer, &self.jwks(), &validation).map_err(|e| {
                tracing::debug!(error = %e, "bearer token rejected");
                Error::Unauthenticated
            })?;
            let principal = principal_from_claims(iss, &claims, "oid", "groups")?;
            // Our tokens carry one audience (a string); the data plane's wins should the two resources coincide
            // (the server refuses to start so configured).
            let aud = claims.get("aud").and_then(|v| v.as_str()).unwrap_or_default();
            let audience = if !hsm.iter().any(|a| a == aud) && graph.iter().any(|a| a == aud) {
                Audience::Graph
            } else {
                Audience::Hsm
            };
            return Ok(verified(principal, &claims, true, audience));
        }
        let Some(ext) = self.config.external_issuers.iter().find(|i| i.issuer == iss) else {
            tracing::info!(issuer = %iss, "token from an untrusted issuer");
            return Err(Error::Unauthenticated);
        };
        let alg_ok = peeked
            .alg
            .as_deref()
            .is_some_and(|a| ext.algorithms.iter().any(|x| x == a));
        if !alg_ok {
            tracing::info!(issuer = %iss, alg = ?peeked.alg, "token algorithm not allowed for this issuer");
            return Err(Error::Unauthenticated);
        }
        let fetcher = self.fetcher.as_deref().ok_or(Error::Unauthenticated)?;
        let keys = self
            .key_sets
            .key_set(fetcher, ext, peeked.kid.as_deref(), self.clock.now())
            .await?;
        let validation = TokenValidation {
            issuer: &iss,
            audiences: &ext.audiences,
            now,
            leeway: 60,
        };
        let claims = jwt::verify(bearer, &keys, &validation).map_err(|e| {
            tracing::info!(issuer = %iss, error = %e, "external token rejected");
            Error::Unauthenticated
        })?;
        let principal = principal_from_claims(iss, &claims, &ext.object_id_claim, &ext.groups_claim)?;
        Ok(verified(principal, &claims, false, Audience::Hsm))
    }
}

fn verified(principal: Principal, claims: &serde_json::Value, own: bool, audience: Audience) -> VerifiedToken {
    // NumericDate may be fractional (RFC 7519 §2); `as` saturates.
    let int = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    VerifiedToken {
        principal,
        audience,
        exp: int("exp").unwrap_or(0),
        nbf: int("nbf").unwrap_or(0),
        own,
        credential: own
            .then(|| claims.get("cred").and_then(|v| v.as_str()).map(str::to_string))
            .flatten(),
    }
}

/// Builds the caller from validated claims.
fn principal_from_claims(
    issuer: String,
    claims: &serde_json::Value,
    object_id_claim: &str,
    groups_claim: &str,
) -> Result<Principal, Error> {
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let object_id = s(object_id_claim).or_else(|| s("sub")).ok_or(Error::Unauthenticated)?;
    let tenant_id = s("tid").unwrap_or_default();
    let client_id = s("appid").or_else(|| s("azp")).unwrap_or_default();
    let groups = claims
        .get(groups_claim)
        .and_then(|g| g.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(Principal {
        issuer,
        tenant_id,
        object_id,
        client_id,
        groups,
        client_ip: None,
    })
}
