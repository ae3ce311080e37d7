//! The route table and the request pipeline. One dispatcher reads every request so that the order of checks
//! is fixed for all routes:
//! 1. `/healthz` and the token service (`/{tenant}/…`, `/adfs/…`) need no bearer token;
//! 2. every other path is data plane: the bearer token is checked first, and a request without a valid token
//!    gets 401 with the `WWW-Authenticate` challenge before its route, api-version or body is looked at;
//! 3. then the api-version, the route, and the body (size-limited; JSON errors become Azure errors).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::Principal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

mod admin;
mod backup;
mod crypto;
mod keys;
mod policy;
mod rbac;
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
    pub principal: Principal,
    pub method: Method,
    pub query: Query,
    pub api_version: String,
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
        q.append_pair("api-version", &self.api_version);
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
#[derive(Debug, Default)]
pub(crate) struct RequestInfo {
    /// The authenticated caller.
    pub principal: Option<Principal>,
    /// The accepted api-version.
    pub api_version: Option<String>,
    /// The request went to the token service (`/{tenant}/…`, `/adfs/…`).
    pub token_service: bool,
    /// The request had no valid bearer token (401 challenge).
    pub unauthenticated: bool,
    /// Token requests: the `client_id` asked for (not secret).
    pub token_client_id: Option<String>,
    /// The client address the network ACLs judged (the peer, or the address a trusted proxy forwarded).
    pub client_ip: Option<std::net::IpAddr>,
    /// The network ACLs' decision.
    pub address_authorized: Option<bool>,
    /// Whose throttling budget the request was charged to.
    pub throttle_key: Option<String>,
}

async fn dispatch(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return finish_headers(
            ok_json(&serde_json::json!({"status": "ok"})),
            &request_id,
            None,
            started,
        );
    }
    let correlation = req
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string);
    let seen = crate::request_audit::Seen::of(&req);
    let notes = coffer_core::audit::context::SharedNotes::default();
    let mut info = RequestInfo::default();
    let audit = app.hsm.audit_log().cloned();
    let ready = match &audit {
        Some(log) => log.ensure_ready().await,
        None => true,
    };
    let (mut resp, refused) = if ready {
        let r = coffer_core::audit::context::scope(notes.clone(), handle(&app, req, &mut info)).await;
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
        correlation.as_deref().unwrap_or(&request_id),
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
    let resp = finish_headers(resp, &request_id, correlation.as_deref(), started);
    tracing::info!(
        request_id,
        method = %method,
        path,
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
    if let Ok(v) = HeaderValue::from_str(&started.elapsed().as_millis().to_string()) {
        h.insert("x-ms-server-latency", v);
    }
    resp
}

/// 403 for a client address the network ACLs refuse (Key Vault's `ForbiddenByFirewall`).
fn firewall_refusal(ip: Option<std::net::IpAddr>) -> Response {
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

/// 429 with `Retry-After`.
fn throttled(retry_after: std::time::Duration, who: &str) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        format!(
            "Request was not processed because too many requests were received. Reason: the weighted transaction \
             limit per 10 seconds was reached ({who}). Retry after {secs} seconds."
        ),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Takes `cost` units from `who`'s throttling budget; the 429 response when it is spent.
fn admit(app: &AppState, info: &mut RequestInfo, who: String, cost: u64) -> Option<Response> {
    let t = app.throttle.as_ref()?;
    let result = t.admit(&who, cost);
    let label = if who.starts_with("ip:") {
        "client address"
    } else {
        "principal"
    };
    info.throttle_key = Some(who);
    result.err().map(|wait| throttled(wait, label))
}

async fn handle(app: &AppState, req: Request, info: &mut RequestInfo) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let acls = app.hsm.network_acls();
    let client_ip =
        peer.map(|p| acls.client_address(p, req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok())));
    info.client_ip = client_ip;
    let first = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or("");
    info.token_service = first == app.hsm.tenant_id() || first.eq_ignore_ascii_case("adfs");
    let address_ok = client_ip.is_some_and(|ip| acls.allows(ip));
    info.address_authorized = Some(address_ok);
    if !address_ok {
        return firewall_refusal(client_ip);
    }
    let ip_key = format!("ip:{}", client_ip.map_or_else(String::new, |i| i.to_string()));
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if info.token_service {
        if let Some(r) = admit(app, info, ip_key, 1) {
            return r;
        }
        let body = match read_body(app, &parts.headers, body).await {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        };
        info.token_client_id = url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.chars().take(128).collect());
        return match token::handle(app, &parts.method, &segs, &body).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
    }
    let Some(mut principal) = authenticate(app, &parts.headers).await else {
        info.unauthenticated = true;
        if let Some(r) = admit(app, info, ip_key, 1) {
            return r;
        }
        return challenge(app);
    };
    principal.client_ip = client_ip;
    info.principal = Some(principal.clone());
    let operation = coffer_core::audit::operations::operation_name(parts.method.as_str(), &segs, false);
    if let Some(r) = admit(
        app,
        info,
        format!("oid:{}", principal.object_id),
        coffer_core::throttle::upfront_cost(&operation),
    ) {
        return r;
    }
    let query = Query::parse(parts.uri.query());
    // Long-running-operation status URLs are polled verbatim, without api-version.
    let is_status_poll = parts.method == Method::GET && path.trim_end_matches('/').ends_with("/pending");
    let api_version = match query.get("api-version") {
        Some(v) if API_VERSIONS.contains(&v) => {
            info.api_version = Some(v.to_string());
            v.to_string()
        }
        None if is_status_poll => "2025-07-01".to_string(),
        Some(v) => {
            return ApiError::bad_parameter(format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (2025-07-01)."
            ))
            .into_response();
        }
        None => {
            return ApiError::bad_parameter("The 'api-version' query parameter is missing.").into_response();
        }
    };
    let body = match read_body(app, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let ctx = Ctx {
        app,
        principal,
        method: parts.method,
        query,
        api_version,
        body,
    };
    match route(&ctx, &segs).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(ctx: &Ctx<'_>, segs: &[&str]) -> Result<Response, ApiError> {
    let m = &ctx.method;
    if let Some((scope, collection, name)) = rbac::parse(segs) {
        return rbac::handle(ctx, &scope, &collection, name.as_deref()).await;
    }
    match segs {
        ["keys"] | ["keys", ""] => keys::list(ctx).await,
        ["keys", "restore"] if m == Method::POST => keys::restore(ctx).await,
        ["keys", name] => match *m {
            Method::PUT => keys::import(ctx, name).await,
            Method::DELETE => keys::delete(ctx, name).await,
            Method::GET => keys::get(ctx, name, None).await,
            Method::PATCH => keys::update(ctx, name, None).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["keys", name, verb] if verb.eq_ignore_ascii_case("rotationpolicy") => match *m {
            Method::GET => rotation::get_policy(ctx, name).await,
            Method::PUT => rotation::put_policy(ctx, name).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["keys", name, verb] if verb.eq_ignore_ascii_case("rotate") && m == Method::POST => {
            rotation::rotate(ctx, name).await
        }
        ["backup"] if m == Method::POST => backup::start_backup(ctx, false).await,
        ["prebackup"] if m == Method::POST => backup::start_backup(ctx, true).await,
        ["backup", id, "pending"] if m == Method::GET => backup::status(ctx, id, false).await,
        ["restore"] if m == Method::PUT => backup::start_restore(ctx, false).await,
        ["prerestore"] if m == Method::PUT => backup::start_restore(ctx, true).await,
        ["restore", id, "pending"] if m == Method::GET => backup::status(ctx, id, true).await,
        ["keys", name, verb] if verb.eq_ignore_ascii_case("restore") && m == Method::PUT => {
            backup::start_selective_restore(ctx, name).await
        }
        ["settings"] | ["settings", ""] => rotation::settings(ctx, None).await,
        ["settings", n] => rotation::settings(ctx, Some(n)).await,
        ["keys", name, verb] if verb.eq_ignore_ascii_case("create") && m == Method::POST => {
            keys::create(ctx, name).await
        }
        ["keys", name, verb] if verb.eq_ignore_ascii_case("release") && m == Method::POST => {
            crypto::release(ctx, name, None).await
        }
        ["keys", name, verb] if verb.eq_ignore_ascii_case("backup") && m == Method::POST => {
            keys::backup(ctx, name).await
        }
        ["keys", name, verb] if verb.eq_ignore_ascii_case("versions") && m == Method::GET => {
            keys::versions(ctx, name).await
        }
        ["keys", name, version] => match *m {
            Method::GET => keys::get(ctx, name, Some(version)).await,
            Method::PATCH => keys::update(ctx, name, Some(version)).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["keys", name, version, op] if m == Method::POST => crypto::operation(ctx, name, version, op).await,
        ["deletedkeys"] | ["deletedkeys", ""] if m == Method::GET => keys::list_deleted(ctx).await,
        ["deletedkeys", name] => match *m {
            Method::GET => keys::get_deleted(ctx, name).await,
            Method::DELETE => keys::purge(ctx, name).await,
            _ => Err(ApiError::method_not_allowed()),
        },
        ["deletedkeys", name, verb] if verb.eq_ignore_ascii_case("recover") && m == Method::POST => {
            keys::recover(ctx, name).await
        }
        ["rng"] if m == Method::POST => crypto::random(ctx).await,
        ["coffer", "v1", rest @ ..] => admin::handle(ctx, rest).await,
        ["securitydomain", rest @ ..] => security_domain::handle(ctx, rest).await,
        _ => Err(ApiError::not_found_route()),
    }
}

async fn authenticate(app: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    app.hsm.authenticate(token.trim()).await.ok()
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

async fn read_body(app: &AppState, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("The request body exceeds the limit of {} bytes.", app.max_body_bytes),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > app.max_body_bytes
    {
        return Err(too_large());
    }
    axum::body::to_bytes(body, app.max_body_bytes)
        .await
        .map_err(|_| too_large())
}
