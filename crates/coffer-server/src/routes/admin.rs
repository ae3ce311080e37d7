//! Coffer's own administration API under `/coffer/v1/`: service principals (with client secrets and certificate
//! credentials) and groups. Guarded by the `Coffer/identities/…` dataActions.
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::store::{GroupRecord, PrincipalRecord};
use serde::Deserialize;
use serde_json::json;

use super::{Ctx, json_response, ok_json};
use crate::error::ApiError;

#[derive(Deserialize)]
struct AddCertificate {
    certificate: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    display_name: String,
}

fn principal_json(p: &PrincipalRecord) -> serde_json::Value {
    json!({
        "objectId": p.object_id,
        "clientId": p.client_id,
        "displayName": p.display_name,
        "created": p.created,
        "secrets": p.secrets.iter().map(|s| json!({"secretId": s.id, "created": s.created})).collect::<Vec<_>>(),
        "certificates": p.certificates.iter().map(|c| json!({"thumbprint": coffer_crypto::x509::thumbprint_sha1(c)})).collect::<Vec<_>>(),
    })
}

fn group_json(g: &GroupRecord) -> serde_json::Value {
    json!({"objectId": g.object_id, "displayName": g.display_name, "created": g.created, "members": g.members})
}

fn secret_text(s: &coffer_crypto::SecretBytes) -> Result<String, ApiError> {
    String::from_utf8(s.expose_secret().to_vec())
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "secret encoding"))
}

/// Routes under `/coffer/v1/`.
pub(super) async fn handle(ctx: &Ctx<'_>, rest: &[&str]) -> Result<Response, ApiError> {
    let hsm = &ctx.app.hsm;
    let p = &ctx.principal;
    let m = &ctx.method;
    match rest {
        ["principals"] if m == Method::POST => {
            let body: Named = ctx.json()?;
            let created = hsm.create_principal(p, &body.display_name).await?;
            let mut v = principal_json(&created.record);
            v["clientSecret"] = json!(secret_text(&created.client_secret)?);
            v["secretId"] = json!(created.secret_id);
            v["tenantId"] = json!(hsm.tenant_id());
            Ok(json_response(StatusCode::CREATED, &v))
        }
        ["principals"] if m == Method::GET => {
            let list = hsm.list_principals(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(principal_json).collect::<Vec<_>>()}),
            ))
        }
        ["principals", oid] if m == Method::GET => Ok(ok_json(&principal_json(&hsm.get_principal(p, oid).await?))),
        ["principals", oid] if m == Method::DELETE => {
            hsm.delete_principal(p, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ["principals", oid, "secrets"] if m == Method::POST => {
            let (id, secret) = hsm.add_client_secret(p, oid).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"secretId": id, "clientSecret": secret_text(&secret)?}),
            ))
        }
        ["principals", oid, "secrets", sid] if m == Method::DELETE => {
            hsm.delete_client_secret(p, oid, sid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ["principals", oid, "certificates"] if m == Method::POST => {
            let body: AddCertificate = ctx.json()?;
            let thumbprint = hsm.add_certificate(p, oid, &body.certificate).await?;
            Ok(json_response(StatusCode::CREATED, &json!({ "thumbprint": thumbprint })))
        }
        ["groups"] if m == Method::POST => {
            let body: Named = ctx.json()?;
            Ok(json_response(
                StatusCode::CREATED,
                &group_json(&hsm.create_group(p, &body.display_name).await?),
            ))
        }
        ["groups"] if m == Method::GET => {
            let list = hsm.list_groups(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(group_json).collect::<Vec<_>>()}),
            ))
        }
        ["groups", gid] if m == Method::GET => Ok(ok_json(&group_json(&hsm.get_group(p, gid).await?))),
        ["groups", gid] if m == Method::DELETE => {
            hsm.delete_group(p, gid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ["groups", gid, "members", oid] if m == Method::PUT => {
            hsm.add_group_member(p, gid, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ["groups", gid, "members", oid] if m == Method::DELETE => {
            hsm.remove_group_member(p, gid, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::not_found_route()),
    }
}
