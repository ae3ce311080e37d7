//! Key management routes: create, import, get, list, versions, update, delete, deleted keys, recover, purge,
//! backup, restore.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_api::keys as wire;
use coffer_core::ops::create_import::{CreateKeyRequest, ImportKeyRequest};

use super::{Ctx, ok_json};
use crate::convert::{self, b64};
use crate::error::ApiError;

pub(super) async fn create(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let p: wire::KeyCreateParameters = ctx.json()?;
    let properties = convert::properties(p.key_ops, p.attributes, p.tags, p.release_policy)?;
    let req = CreateKeyRequest {
        name: name.to_string(),
        kty: p.kty,
        key_size: p.key_size,
        public_exponent: p.public_exponent,
        curve: p.crv,
        properties,
    };
    let rec = ctx.app.hsm.create_key(ctx.principal, req).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

pub(super) async fn import(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let p: wire::KeyImportParameters = ctx.json()?;
    let material = convert::import_material(&p.key)?;
    let key_ops = p.key.key_ops.clone();
    let properties = convert::properties(key_ops, p.attributes, p.tags, p.release_policy)?;
    let req = ImportKeyRequest {
        name: name.to_string(),
        material,
        properties,
    };
    let rec = ctx.app.hsm.import_key(ctx.principal, req).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

pub(super) async fn get(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let rec = ctx.app.hsm.get_key(ctx.principal, name, version).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

/// GetKeyAttestation: the key bundle with `attributes.attestation`.
pub(super) async fn attestation(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let base = &ctx.app.public_url;
    let (rec, att) = ctx
        .app
        .hsm
        .key_attestation(ctx.principal, name, version, |r| {
            convert::key_bundle(&ctx.app.hsm, base, r).key.kid.unwrap_or_default()
        })
        .await?;
    let mut bundle = convert::key_bundle(&ctx.app.hsm, base, &rec);
    bundle.attributes.attestation = Some(wire::KeyAttestation {
        certificate_pem_file: Some(B64.encode(att.certificate_pem.as_bytes())),
        private_key_attestation: Some(B64.encode(att.private_key_attestation.as_bytes())),
        public_key_attestation: att.public_key_attestation.map(|p| B64.encode(p.as_bytes())),
        version: Some(att.version),
    });
    Ok(ok_json(&bundle))
}

pub(super) async fn update(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let p: wire::KeyUpdateParameters = ctx.json()?;
    let properties = convert::properties(p.key_ops, p.attributes, p.tags, p.release_policy)?;
    let rec = ctx.app.hsm.update_key(ctx.principal, name, version, properties).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

pub(super) async fn list(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let marker = ctx.marker()?;
    let page = ctx
        .app
        .hsm
        .list_keys(ctx.principal, marker.as_deref(), ctx.query.maxresults()?)
        .await?;
    let value = page
        .items
        .iter()
        .map(|r| convert::key_item(&ctx.app.hsm, &ctx.app.public_url, r, false))
        .collect();
    Ok(ok_json(&wire::ListResult {
        value,
        next_link: ctx.next_link("/keys", page.next_marker),
    }))
}

pub(super) async fn versions(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let marker = ctx.marker()?;
    let page = ctx
        .app
        .hsm
        .list_versions(ctx.principal, name, marker.as_deref(), ctx.query.maxresults()?)
        .await?;
    let value = page
        .items
        .iter()
        .map(|r| convert::key_item(&ctx.app.hsm, &ctx.app.public_url, r, true))
        .collect();
    let path = format!("/keys/{name}/versions");
    Ok(ok_json(&wire::ListResult {
        value,
        next_link: ctx.next_link(&path, page.next_marker),
    }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let d = ctx.app.hsm.delete_key(ctx.principal, name).await?;
    Ok(ok_json(&convert::deleted_bundle(&ctx.app.hsm, &ctx.app.public_url, &d)))
}

pub(super) async fn get_deleted(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let d = ctx.app.hsm.get_deleted_key(ctx.principal, name).await?;
    Ok(ok_json(&convert::deleted_bundle(&ctx.app.hsm, &ctx.app.public_url, &d)))
}

pub(super) async fn list_deleted(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let marker = ctx.marker()?;
    let page = ctx
        .app
        .hsm
        .list_deleted_keys(ctx.principal, marker.as_deref(), ctx.query.maxresults()?)
        .await?;
    let value = page
        .items
        .iter()
        .map(|d| convert::deleted_item(&ctx.app.hsm, &ctx.app.public_url, d))
        .collect();
    Ok(ok_json(&wire::ListResult {
        value,
        next_link: ctx.next_link("/deletedkeys", page.next_marker),
    }))
}

pub(super) async fn recover(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let rec = ctx.app.hsm.recover_key(ctx.principal, name).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

pub(super) async fn purge(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    ctx.app.hsm.purge_key(ctx.principal, name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn backup(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let blob = ctx.app.hsm.backup_key(ctx.principal, name).await?;
    Ok(ok_json(&wire::BackupKeyResult {
        value: convert::enc(&blob),
    }))
}

pub(super) async fn restore(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let p: wire::BackupKeyResult = ctx.json()?;
    let blob = b64("value", &p.value)?;
    let rec = ctx.app.hsm.restore_key(ctx.principal, &blob).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}
