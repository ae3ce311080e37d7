//! Security-domain routes: download (activation), its status, the transfer key, upload (recovery) and its status.
//! Both operations answer 202 with `Azure-AsyncOperation` and a JSON body, and the `*/pending` routes need no
//! api-version (the clients poll the header URL verbatim).
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_core::operation::SecurityDomainOp;
use serde::Deserialize;
use serde_json::json;

use super::{Ctx, json_response, ok_json};
use crate::error::ApiError;

#[derive(Deserialize)]
struct DownloadRequest {
    certificates: Vec<CertificateJwk>,
    required: Option<i64>,
    /// Coffer extension: a restore blob made by a quorum of the current officers for the instance's exchange key,
    /// required to download the security domain of an active instance again (docs/SECURITY-DOMAIN.md).
    #[serde(default, rename = "quorumProof")]
    quorum_proof: Option<String>,
}

#[derive(Deserialize)]
struct CertificateJwk {
    x5c: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct UploadRequest {
    value: String,
}

fn accepted(ctx: &Ctx<'_>, body: &serde_json::Value, pending: &str) -> Response {
    let mut r = json_response(StatusCode::ACCEPTED, body);
    let url = format!("{}/securitydomain/{pending}/pending", ctx.app.public_url);
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert("azure-asyncoperation", v);
    }
    r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    r
}

fn status_json(s: &coffer_core::ops::security_domain::OperationStatus) -> serde_json::Value {
    json!({"status": s.status, "status_details": s.details})
}

/// `/securitydomain/...` operations.
pub(super) async fn handle(ctx: &Ctx<'_>, op: SecurityDomainOp) -> Result<Response, ApiError> {
    let hsm = &ctx.app.hsm;
    let p = ctx.principal;
    match op {
        SecurityDomainOp::Download => {
            let req: DownloadRequest = ctx.json()?;
            let mut ders = Vec::with_capacity(req.certificates.len());
            for (i, c) in req.certificates.iter().enumerate() {
                let first = c
                    .x5c
                    .as_ref()
                    .and_then(|x| x.first())
                    .ok_or_else(|| ApiError::bad_parameter(format!("certificates[{i}] has no x5c.")))?;
                let der = STANDARD
                    .decode(first.trim())
                    .map_err(|_| ApiError::bad_parameter(format!("certificates[{i}].x5c[0] is not base64.")))?;
                ders.push(der);
            }
            let file = hsm
                .security_domain_download(p, &ders, req.required.unwrap_or(2), req.quorum_proof.as_deref())
                .await?;
            Ok(accepted(ctx, &json!({ "value": file }), "download"))
        }
        SecurityDomainOp::DownloadStatus => Ok(ok_json(&status_json(&hsm.download_status(p).await?))),
        SecurityDomainOp::TransferKey => {
            let jwk = hsm.transfer_key(p).await?;
            Ok(ok_json(&json!({"key_format": "jwk", "transfer_key": jwk.to_string()})))
        }
        SecurityDomainOp::Upload => {
            let req: UploadRequest = ctx.json()?;
            hsm.security_domain_upload(p, &req.value).await?;
            Ok(accepted(
                ctx,
                &json!({"status": "InProgress", "status_details": ""}),
                "upload",
            ))
        }
        SecurityDomainOp::UploadStatus => Ok(ok_json(&status_json(&hsm.upload_status(p).await?))),
    }
}
