//! Full backup and restore routes: `POST /backup`, `POST /prebackup`, `GET /backup/{jobId}/pending`,
//! `PUT /restore`, `PUT /prerestore`, `PUT /keys/{name}/restore`, `GET /restore/{jobId}/pending`. Starting a job
//! answers 202 with the job status as JSON and `Azure-AsyncOperation`; the status routes need no api-version.
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use coffer_core::backup_storage::BackupLocation;
use coffer_core::ops::full_backup::{JobKind, JobStatus};
use serde::Deserialize;
use serde_json::json;

use super::{Ctx, json_response, ok_json};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SasParameters {
    storage_resource_uri: String,
    token: Option<String>,
    use_managed_identity: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestoreRequest {
    sas_token_parameters: SasParameters,
    folder_to_restore: String,
    /// Coffer extension: also restore the identities the instance no longer has (docs/BACKUP.md).
    #[serde(default)]
    restore_identities: bool,
}

#[derive(Deserialize)]
struct SelectiveRestoreRequest {
    #[serde(rename = "sasTokenParameters")]
    sas_token_parameters: SasParameters,
    folder: String,
}

fn status_json(j: &JobStatus) -> serde_json::Value {
    let mut v = json!({
        "status": j.status,
        "statusDetails": j.status_details,
        "error": j.error.as_ref().map(|(c, m)| json!({"code": c, "message": m, "innererror": null})),
        "startTime": j.start_time,
        "endTime": j.end_time,
        "jobId": j.job_id,
    });
    if matches!(j.kind, JobKind::Backup | JobKind::PreBackup) {
        v["azureStorageBlobContainerUri"] = json!(j.container_uri);
    }
    v
}

fn accepted(ctx: &Ctx<'_>, job: &JobStatus, kind: &str) -> Response {
    let mut r = json_response(StatusCode::ACCEPTED, &status_json(job));
    let url = format!("{}/{kind}/{}/pending", ctx.app.public_url, job.job_id);
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert("azure-asyncoperation", v);
    }
    r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    r
}

fn location(p: SasParameters, folder: String) -> Result<BackupLocation, ApiError> {
    if p.storage_resource_uri.trim().is_empty() {
        return Err(ApiError::bad_parameter("storageResourceUri is required."));
    }
    if p.use_managed_identity == Some(true) && p.token.is_none() && p.storage_resource_uri.starts_with("http") {
        return Err(ApiError::bad_parameter(
            "Managed identities are not available to Coffer: pass a SAS token.",
        ));
    }
    Ok(BackupLocation {
        container_uri: p.storage_resource_uri,
        sas_token: p.token.filter(|t| !t.is_empty()),
        folder,
    })
}

fn hsm(ctx: &Ctx<'_>) -> Arc<coffer_core::Hsm> {
    Arc::clone(&ctx.app.hsm)
}

pub(super) async fn start_backup(ctx: &Ctx<'_>, check_only: bool) -> Result<Response, ApiError> {
    let p: SasParameters = ctx.json()?;
    let loc = location(p, String::new())?;
    let job = hsm(ctx)
        .start_backup(ctx.principal, loc.container_uri, loc.sas_token, check_only)
        .await?;
    Ok(accepted(ctx, &job, "backup"))
}

pub(super) async fn start_restore(ctx: &Ctx<'_>, check_only: bool) -> Result<Response, ApiError> {
    let r: RestoreRequest = ctx.json()?;
    let loc = location(r.sas_token_parameters, r.folder_to_restore)?;
    let options = coffer_core::ops::full_backup::RestoreOptions {
        identities: r.restore_identities,
    };
    let job = hsm(ctx).start_restore(ctx.principal, loc, check_only, options).await?;
    Ok(accepted(ctx, &job, "restore"))
}

pub(super) async fn start_selective_restore(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let r: SelectiveRestoreRequest = ctx.json()?;
    let loc = location(r.sas_token_parameters, r.folder)?;
    let job = hsm(ctx).start_selective_restore(ctx.principal, name, loc).await?;
    Ok(accepted(ctx, &job, "restore"))
}

pub(super) async fn status(ctx: &Ctx<'_>, id: &str, restore: bool) -> Result<Response, ApiError> {
    let j = ctx.app.hsm.job_status(ctx.principal, id, restore).await?;
    let mut r = ok_json(&status_json(&j));
    if j.status == "InProgress" {
        r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    }
    Ok(r)
}
