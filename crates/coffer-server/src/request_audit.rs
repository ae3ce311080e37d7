//! The audit record of an HTTP request, built by the dispatcher after the response is known from what the
//! request looked like, what the pipeline learned (caller, api-version) and what core noted (dataAction, RBAC
//! decision, key facts). Request and response bodies never go in.
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::audit::AuditRecord;
use coffer_core::audit::context::SharedNotes;
use coffer_core::audit::record::reason_phrase;

use crate::error::{ApiError, ErrorMessage};
use crate::routes::RequestInfo;
use crate::state::AppState;

/// What the request looked like on arrival.
#[derive(Debug)]
pub(crate) struct Seen {
    path_and_query: String,
    user_agent: Option<String>,
    client_ip: Option<std::net::IpAddr>,
    tls_version: Option<&'static str>,
}

impl Seen {
    pub(crate) fn of(req: &Parts) -> Self {
        Self {
            path_and_query: req
                .uri
                .path_and_query()
                .map_or_else(|| req.uri.path().to_string(), |p| p.as_str().to_string()),
            user_agent: req
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect()),
            client_ip: req
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
            tls_version: req.extensions.get::<crate::tls::TlsInfo>().map(|t| t.version),
        }
    }
}

/// 503 when a request cannot be recorded (fail-closed auditing).
pub(crate) fn audit_unavailable() -> Response {
    let mut r = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The request was not processed because it cannot be recorded in the audit log. Try again later.",
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// Builds the record.
pub(crate) fn build(
    app: &AppState,
    seen: &Seen,
    info: &RequestInfo<'_>,
    notes: &SharedNotes,
    resp: &Response,
    correlation_id: &str,
    elapsed: Duration,
) -> AuditRecord {
    let status = resp.status().as_u16();
    let op = if info.unauthenticated {
        "Authentication"
    } else {
        info.operation.name()
    };
    let mut rec = app.hsm.audit_record(op);
    rec.operation_version = info.api_version.unwrap_or_default().to_string();
    rec.result_type = if status >= 500 && status != 503 {
        "Failure".into()
    } else {
        "Success".into()
    };
    rec.result_signature = reason_phrase(status).to_string();
    if status >= 400 {
        rec.result_description = resp.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
    }
    rec.duration_ms = elapsed.as_millis().to_string();
    rec.caller_ip_address = info
        .client_ip
        .or(seen.client_ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    rec.correlation_id = correlation_id.to_string();
    if let Some(p) = &info.principal {
        let c = &mut rec.identity.claim;
        c.oid = Some(p.object_id.clone());
        c.appid = Some(p.client_id.clone());
        c.tid = Some(p.tenant_id.clone());
        c.idtyp = Some("app".into());
        if p.issuer != app.hsm.issuer() {
            c.iss = Some(p.issuer.clone());
        }
    } else if let Some(client) = &info.token_client_id {
        rec.identity.claim.appid = Some(client.clone());
    }
    let notes = match notes.lock() {
        Ok(n) => n.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let props = &mut rec.properties;
    props.id = Some(info.operation.target().id(&app.public_url, app.hsm.tenant_id()));
    props.client_info = seen.user_agent.clone();
    props.http_status_code = Some(status);
    props.request_uri = Some(format!("{}{}", app.public_url, seen.path_and_query));
    props.tls_version = seen.tls_version.map(str::to_string);
    props.is_rbac_authorized = notes.authorized;
    props.is_address_authorized = info.address_authorized;
    props.applied_assignment_id = notes.assignment;
    props.data_action = notes.action.map(|a| a.name().to_string());
    props.key_properties = notes.key_properties;
    props.state_generation = notes.generation;
    if !notes.policy_violations.is_empty() {
        let v = serde_json::Value::Array(notes.policy_violations);
        match &mut props.details {
            Some(serde_json::Value::Object(m)) => {
                m.insert("policyViolations".into(), v);
            }
            _ => props.details = Some(serde_json::json!({ "policyViolations": v })),
        }
    }
    if let Some(v) = notes.key_release {
        match &mut props.details {
            Some(serde_json::Value::Object(m)) => {
                m.insert("keyRelease".into(), v);
            }
            _ => props.details = Some(serde_json::json!({ "keyRelease": v })),
        }
    }
    rec.level = match status {
        500.. => "Error",
        401 | 403 => "Warning",
        _ => "Informational",
    }
    .into();
    rec
}

/// Updates the request metrics.
pub(crate) fn observe(
    app: &AppState,
    rec: &AuditRecord,
    info: &RequestInfo<'_>,
    notes: &SharedNotes,
    status: u16,
    elapsed: Duration,
) {
    app.metrics.observe(&rec.operation_name, status, elapsed);
    if info.unauthenticated || (info.token_service && matches!(status, 400 | 401)) {
        app.metrics.authentication_failure();
    }
    let (denied, surcharge) = {
        let n = match notes.lock() {
            Ok(n) => n,
            Err(p) => p.into_inner(),
        };
        (
            n.authorized == Some(false),
            coffer_core::throttle::key_surcharge(&info.operation, n.key_properties.as_ref()),
        )
    };
    if let (Some(t), Some(who)) = (&app.throttle, info.throttled_who()) {
        t.charge(who, surcharge);
    }
    if status == 403 && denied {
        app.metrics.denial(&rec.operation_name);
    }
}
