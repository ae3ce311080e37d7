//! The route table and the request pipeline. One dispatcher reads every request so that the order of checks
//! is fixed for all routes:
//! 1. `/healthz` and the token service (`/{tenant}/…`, `/adfs/…`) need no bearer token;
//! 2. every other path is data plane: the bearer token is checked first, and a request without a valid token
//!    gets 401 with the `WWW-Authenticate` challenge before its route, api-version or body is looked at;
//! 3. then the api-version, the route, and the body (size-limited; JSON errors become Azure errors).
//!
//! The route is the typed [`Operation`] from core's operation table, parsed once per request from the method
//! and the path: it gives the audit name, the throttling cost and the audited object, and [`route`] matches on
//! it to call the handler.
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::Principal;
use coffer_core::identity::Audience;
use coffer_core::operation::{CofferOp, Operation};
use coffer_core::throttle::{Refusal, Who};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

mod admin;
mod backup;
mod body;
mod crypto;
mod graph;
mod keys;
mod policy;
#[doc(hidden)]
pub mod rbac;
mod rotation;
mod security_domain;
mod token;

/// api-versions the data plane accepts.
pub const API_VERSIONS: &[&str] = &[
    "7.2",
    "7.2-preview",
    "7.3",
    "7.3-preview",
    "7.4",
    "7.4-preview.1",
    "7.5",
    "7.5-preview.1",
    "7.6",
    "7.6-preview.1",
    "7.6-preview.2",
    "2025-06-01-preview",
    "2025-07-01",
];

/// The router: everything goes through [`dispatch`].
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// Decoded query parameters (names and values percent-decoded, so `api%2Dversion` is `api-version`).
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let mut map = HashMap::new();
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        }
        Self(map)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    /// `maxresults` as an integer.
    pub fn maxresults(&self) -> Result<Option<i64>, ApiError> {
        match self.get("maxresults") {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_parameter("maxresults must be an integer.")),
        }
    }
}

/// A parsed data-plane request after authentication.
pub struct Ctx<'a> {
    pub app: &'a AppState,
    pub principal: &'a Principal,
    pub query: Query,
    pub api_version: &'static str,
    pub body: axum::body::Bytes,
}

impl Ctx<'_> {
    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_parameter("The request body is missing."));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_parameter(format!("The request body is not valid: {e}")))
    }
    /// A `nextLink` for a list path and marker.
    pub fn next_link(&self, path: &str, marker: Option<String>) -> Option<String> {
        let marker = marker?;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("api-version", self.api_version);
        q.append_pair("$skiptoken", &crate::convert::enc(marker.as_bytes()));
        if let Some(m) = self.query.get("maxresults") {
            q.append_pair("maxresults", m);
        }
        Some(format!("{}{path}?{}", self.app.public_url, q.finish()))
    }
    /// The decoded `$skiptoken` marker.
    pub fn marker(&self) -> Result<Option<String>, ApiError> {
        match self.query.get("$skiptoken") {
            None | Some("") => Ok(None),
            Some(t) => {
                let raw = crate::convert::b64("$skiptoken", t)?;
                String::from_utf8(raw)
                    .map(Some)
                    .map_err(|_| ApiError::bad_parameter("invalid $skiptoken"))
            }
        }
    }
}

/// A 200 JSON response.
pub fn ok_json<T: Serialize>(v: &T) -> Response {
    json_response(StatusCode::OK, v)
}

/// A JSON response with a status.
pub fn json_response<T: Serialize>(status: StatusCode, v: &T) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// What the pipeline learned about a request, for its audit record.
#[derive(Debug)]
pub(crate) struct RequestInfo<'a> {
    /// The operation, parsed once from the method and path.
    pub operation: Operation<'a>,
    /// The authenticated caller.
    pub principal: Option<Principal>,
    /// The accepted api-version.
    pub api_version: Option<&'static str>,
    /// The request went to the token service (`/{tenant}/…`, `/adfs/…`).
    pub token_service: bool,
    /// The request had no valid bearer token (401 challenge).
    pub unauthenticated: bool,
    /// Token requests: the `client_id` asked for (not secret).
    pub token_client_id: Option<String>,
    /// The client address the network ACLs judged (the peer, or the address a trusted proxy forwarded).
    pub client_ip: Option<IpAddr>,
    /// The network ACLs' decision.
    pub address_authorized: Option<bool>,
    /// Whose throttling budget the request was charged to.
    pub charged: Option<Charged>,
}

/// Whose throttling budget a request was charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charged {
    /// The authenticated principal's.
    Principal,
    /// The client address's for requests without a valid token (or before an unknown token is verified).
    Address,
    /// The client address's for the token service.
    TokenClient,
}

impl<'a> RequestInfo<'a> {
    fn new(operation: Operation<'a>) -> Self {
        Self {
            operation,
            principal: None,
            api_version: None,
            token_service: operation.is_token_service(),
            unauthenticated: false,
            token_client_id: None,
            client_ip: None,
            address_authorized: None,
            charged: None,
        }
    }

    /// The budget the request was charged to, for the surcharge after the fact.
    pub(crate) fn throttled_who(&self) -> Option<Who<'_>> {
        match self.charged? {
            Charged::Principal => self.principal.as_ref().map(|p| Who::Principal(&p.object_id)),
            Charged::Address => self.client_ip.map(Who::Address),
            Charged::TokenClient => self.client_ip.map(Who::TokenClient),
        }
    }
}

async fn dispatch(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let mut id_buf = uuid::Uuid::encode_buffer();
    let request_id: &str = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id_buf);
    let (parts, body) = req.into_parts();
    let operation = Operation::parse(parts.method.as_str(), parts.uri.path(), app.hsm.tenant_id());
    if operation == Operation::Health {
        return finish_headers(ok_json(&serde_json::json!({"status": "ok"})), request_id, None, started);
    }
    if operation == Operation::HealthMethodNotAllowed {
        return finish_headers(method_not_allowed("GET"), request_id, None, started);
    }
    let correlation = parts
        .headers
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128);
    let seen = crate::request_audit::Seen::of(&parts);
    let notes = coffer_core::audit::context::SharedNotes::default();
    let mut info = RequestInfo::new(operation);
    let audit = app.hsm.audit_log().cloned();
    let ready = match &audit {
        Some(log) => log.ensure_ready().await,
        None => true,
    };
    let (mut resp, refused) = if ready {
        let r = coffer_core::audit::context::scope(notes.clone(), handle(&app, &parts, body, &mut info)).await;
        (r, false)
    } else {
        (crate::request_audit::audit_unavailable(), true)
    };
    let status = resp.status().as_u16();
    let record = crate::request_audit::build(
        &app,
        &seen,
        &info,
        &notes,
        &resp,
        correlation.unwrap_or(request_id),
        started.elapsed(),
    );
    crate::request_audit::observe(&app, &record, &info, &notes, status, started.elapsed());
    if let Some(log) = &audit {
        if refused {
            log.record_detached(&record);
        } else if !log.record(&record).await {
            tracing::error!(
                operation = record.operation_name,
                correlation_id = record.correlation_id,
                "the audit record of a request could not be written: answering 503 (fail-closed)"
            );
            resp = crate::request_audit::audit_unavailable();
        }
    }
    let status = resp.status();
    let mut resp = finish_headers(resp, request_id, correlation, started);
    // The generation of the in-memory state the decision used (a write: the one it published), as in the audit
    // record: a client can tell that a request saw its earlier write.
    // Only for authorized requests: a denied caller learns nothing about the instance's write rate.
    if record.properties.is_rbac_authorized == Some(true)
        && let Some(g) = record.properties.state_generation
    {
        resp.headers_mut()
            .insert("x-coffer-state-generation", HeaderValue::from(g));
    }
    // The audit record is the request log; this line is for debugging only.
    tracing::debug!(
        request_id,
        method = %parts.method,
        path = parts.uri.path(),
        status = status.as_u16(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    resp
}

/// Headers every response carries.
fn finish_headers(mut resp: Response, request_id: &str, correlation: Option<&str>, started: Instant) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-ms-request-id", v);
    }
    if let Some(c) = correlation
        && let Ok(v) = HeaderValue::from_str(c)
    {
        h.insert("x-ms-client-request-id", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000;includeSubDomains"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "x-ms-keyvault-service-version",
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    h.insert(
        "x-ms-server-latency",
        HeaderValue::from(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
    );
    resp
}

/// 403 for a client address the network ACLs refuse (Key Vault's `ForbiddenByFirewall`).
fn firewall_refusal(ip: Option<IpAddr>) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "ForbiddenByFirewall",
        format!(
            "Client address is not authorized and caller is not a trusted service.\r\nClient address: {}",
            ip.map_or_else(|| "unknown".to_string(), |i| i.to_string())
        ),
    )
    .into_response()
}

/// 429 with `Retry-After`, naming the budget that was short.
fn throttled(refusal: Refusal) -> Response {
    let secs = refusal.retry_after.as_secs().max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        format!(
            "Request was not processed because too many requests were received. Reason: the weighted transaction \
             limit per 10 seconds was reached ({}). Retry after {secs} seconds.",
            refusal.budget.describe()
        ),
    )
    .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// Takes `cost` units from `who`'s throttling budget; the 429 response when it is short.
fn admit(app: &AppState, who: Who<'_>, cost: u64) -> Option<Response> {
    app.throttle.as_ref()?.admit(who, cost).err().map(throttled)
}

async fn handle(app: &AppState, parts: &Parts, body: Body, info: &mut RequestInfo<'_>) -> Response {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let acls = app.hsm.network_acls();
    // Every X-Forwarded-For line, in order. Bytes that are not text are kept as replacement characters, so a hop a
    // proxy appended after a client's garbage still parses, and the garbage itself fails closed.
    let forwarded: Vec<std::borrow::Cow<'_, str>> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    let forwarded: Vec<&str> = forwarded.iter().map(AsRef::as_ref).collect();
    let client_ip = peer.map(|p| acls.client_address(p, &forwarded));
    info.client_ip = client_ip;
    let address_ok = client_ip.is_some_and(|ip| acls.allows(ip));
    info.address_authorized = Some(address_ok);
    if !address_ok {
        return firewall_refusal(client_ip);
    }
    let client = client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let operation = info.operation;
    if let Operation::Token(op) = operation {
        // The token service has a pool of its own: requests with bad tokens cannot keep clients from getting one.
        info.charged = Some(Charged::TokenClient);
        if let Some(r) = admit(app, Who::TokenClient(client), 1) {
            return r;
        }
        let body = match read_body(app, parts, body, body::MediaType::Form).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        info.token_client_id = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.chars().take(128).collect());
        return match token::handle(app, op, &body).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
    }
    let bearer = bearer_token(&parts.headers);
    // A token that is not in the verified-token cache costs a signature check (for an external issuer perhaps a
    // key fetch): the client address pays for it first, from its budget for requests without a valid token, so
    // that a flood of forged tokens is throttled per address before any is verified. A cached token pays nothing.
    let mut paid = false;
    if let Some(token) = bearer
        && !app.hsm.is_token_cached(token)
    {
        info.charged = Some(Charged::Address);
        if let Some(r) = admit(app, Who::Address(client), 1) {
            return r;
        }
        paid = true;
        app.metrics.token_verification();
    }
    // A Graph request needs a token for the Graph resource, any other one a token for the HSM.
    let audience = if operation.is_graph() {
        Audience::Graph
    } else {
        Audience::Hsm
    };
    let authenticated = match bearer {
        Some(token) => app.hsm.authenticate_for(token, audience).await.ok(),
        None => None,
    };
    let Some(mut principal) = authenticated else {
        info.unauthenticated = true;
        info.charged = Some(Charged::Address);
        if !paid && let Some(r) = admit(app, Who::Address(client), 1) {
            return r;
        }
        if operation.is_graph() {
            return graph::unauthenticated().into_response();
        }
        return challenge(app);
    };
    principal.client_ip = client_ip;
    let refusal = admit(app, Who::Principal(&principal.object_id), operation.upfront_cost());
    info.charged = Some(Charged::Principal);
    let principal = &*info.principal.insert(principal);
    if let Some(r) = refusal {
        return r;
    }
    let query = Query::parse(parts.uri.query());
    let api_version = match query.get("api-version") {
        // Graph versions by path (`/graph/v1.0/…`).
        _ if operation.is_graph() => "v1.0",
        Some(v) => match API_VERSIONS.iter().find(|a| **a == v) {
            Some(known) => {
                info.api_version = Some(known);
                *known
            }
            None => {
                return ApiError::bad_parameter(format!(
                    "The specified version ({v}) is not recognized. Consider using the latest supported version (2025-07-01)."
                ))
                .into_response();
            }
        },
        // Long-running-operation status URLs are polled verbatim, without api-version.
        None if operation.is_status_poll() => "2025-07-01",
        None => {
            return ApiError::bad_parameter("The 'api-version' query parameter is missing.").into_response();
        }
    };
    let body = match read_body(app, parts, body, body::MediaType::Json).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    // One of the principal's concurrency slots, for the handler's work (not for the audit write after it, which
    // group commit batches across requests): a principal with more requests than slots waits for its own.
    let _slot = match &app.principal_slots {
        Some(slots) => Some(slots.acquire(&principal.object_id).await),
        None => None,
    };
    let ctx = Ctx {
        app,
        principal,
        query,
        api_version,
        body,
    };
    match route(&ctx, operation).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Calls the handler of a data-plane operation.
async fn route(ctx: &Ctx<'_>, op: Operation<'_>) -> Result<Response, ApiError> {
    use Operation as O;
    match op {
        O::KeyList => keys::list(ctx).await,
        O::KeyCreate { name } => keys::create(ctx, name).await,
        O::KeyImport { name } => keys::import(ctx, name).await,
        O::KeyGet { name, version } => keys::get(ctx, name, version).await,
        O::KeyAttestation { name, version } => keys::attestation(ctx, name, version).await,
        O::KeyUpdate { name, version } => keys::update(ctx, name, version).await,
        O::KeyDelete { name } => keys::delete(ctx, name).await,
        O::KeyListVersions { name } => keys::versions(ctx, name).await,
        O::KeyBackup { name } => keys::backup(ctx, name).await,
        O::KeyRestore => keys::restore(ctx).await,
        O::KeyRotate { name } => rotation::rotate(ctx, name).await,
        O::KeyRotationPolicyGet { name } => rotation::get_policy(ctx, name).await,
        O::KeyRotationPolicySet { name } => rotation::put_policy(ctx, name).await,
        O::KeyRelease { name, version } => crypto::release(ctx, name, version).await,
        O::KeyCrypto { name, version, verb } => crypto::operation(ctx, name, version, verb).await,
        O::DeletedKeyList => keys::list_deleted(ctx).await,
        O::DeletedKeyGet { name } => keys::get_deleted(ctx, name).await,
        O::DeletedKeyPurge { name } => keys::purge(ctx, name).await,
        O::DeletedKeyRecover { name } => keys::recover(ctx, name).await,
        O::RandomBytes => crypto::random(ctx).await,
        O::BackupCreate => backup::start_backup(ctx, false).await,
        O::PreBackupCreate => backup::start_backup(ctx, true).await,
        O::BackupStatus { id } => backup::status(ctx, id, false).await,
        O::RestoreCreate => backup::start_restore(ctx, false).await,
        O::PreRestoreCreate => backup::start_restore(ctx, true).await,
        O::RestoreStatus { id } => backup::status(ctx, id, true).await,
        O::SelectiveKeyRestore { name } => backup::start_selective_restore(ctx, name).await,
        O::SettingList => rotation::settings(ctx).await,
        O::SettingGet { name } => rotation::setting(ctx, name).await,
        O::SettingUpdate { name } => rotation::update_setting(ctx, name).await,
        O::SecurityDomain(sd) => security_domain::handle(ctx, sd).await,
        O::Rbac(r) => rbac::handle(ctx, r).await,
        O::Coffer(
            c @ (CofferOp::PolicyDefinitionList
            | CofferOp::PolicyAssignmentList
            | CofferOp::PolicyAssignmentGet { .. }
            | CofferOp::PolicyAssignmentSet { .. }
            | CofferOp::PolicyAssignmentDelete { .. }
            | CofferOp::Compliance),
        ) => policy::handle(ctx, c).await,
        O::Coffer(c) => admin::handle(ctx, c).await,
        O::Graph(g) => graph::handle(ctx, g).await,
        O::MethodNotAllowed { allow } => Ok(method_not_allowed(allow)),
        O::NotFound | O::Health | O::HealthMethodNotAllowed | O::Token(_) => Err(ApiError::not_found_route()),
    }
}

/// 405 with the methods the path serves in `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = ApiError::method_not_allowed().into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The bearer token of the `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// 401 with the Key Vault challenge.
fn challenge(app: &AppState) -> Response {
    let value = format!(
        "Bearer authorization=\"{}/{}\", resource=\"{}\"",
        app.public_url,
        app.hsm.tenant_id(),
        app.resource
    );
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn read_body(
    app: &AppState,
    parts: &Parts,
    body: Body,
    media: body::MediaType,
) -> Result<axum::body::Bytes, Response> {
    body::read(parts, body, media, app.max_body_bytes, app.body_read_timeout).await
}
