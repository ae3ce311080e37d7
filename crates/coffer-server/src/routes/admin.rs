//! Coffer's own administration API under `/coffer/v1/` (principals and their credentials).
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{Ctx, json_response};
use crate::error::ApiError;

#[derive(Deserialize)]
struct AddCertificate {
    certificate: String,
}

/// `POST /coffer/v1/principals/{objectId}/certificates` `{"certificate": PEM}` → 201 `{"thumbprint"}`.
pub(super) async fn add_certificate(ctx: &Ctx<'_>, object_id: &str) -> Result<Response, ApiError> {
    let body: AddCertificate = ctx.json()?;
    let thumbprint = ctx
        .app
        .hsm
        .add_certificate(&ctx.principal, object_id, &body.certificate)
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "thumbprint": thumbprint }),
    ))
}
