//! The part of Microsoft Graph v1.0 that `az keyvault role assignment create|list|delete` call to show the
//! principals of assignments (`azure/cli/command_modules/role/custom.py`: `_get_object_stubs`,
//! `_resolve_object_id`), served under the cloud's `microsoftGraphResourceId` = `{public URL}/graph`:
//!
//! - `POST /graph/v1.0/directoryObjects/getByIds` `{"ids": […], "types": […]}`: Coffer's principals (as
//!   `servicePrincipal`s, named by their client id, as Entra names an application's service principal by its
//!   appId) and groups;
//! - `GET /graph/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c eq '{client id}')`;
//! - `GET /graph/v1.0/users?$filter=userPrincipalName eq '…'`: always empty (Coffer has no users).
//!
//! Everything else is refused with Graph's error shape. The caller needs a token for the Graph resource (the
//! dispatcher authenticates it so) and `roleAssignments/read` at `/` (core, `ops/directory.rs`).
use axum::http::StatusCode;
use axum::response::Response;
use coffer_core::operation::GraphOp;
use coffer_core::ops::directory::{DirectoryObject, Types};
use coffer_core::store::{GroupRecord, PrincipalRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, ok_json};
use crate::error::ApiError;

#[derive(Deserialize)]
struct GetByIds {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    types: Vec<String>,
}

pub(super) async fn handle(ctx: &Ctx<'_>, op: GraphOp) -> Result<Response, ApiError> {
    let hsm = &ctx.app.hsm;
    let core = |e: coffer_core::Error| as_graph(ApiError::from(e));
    let base = hsm.graph_resource();
    let tenant = hsm.tenant_id();
    match op {
        GraphOp::GetByIds => {
            let body: GetByIds = ctx.json().map_err(as_graph)?;
            let types = Types::from_names(body.types.iter().map(String::as_str));
            let found = hsm
                .directory_objects(ctx.principal, &body.ids, types)
                .await
                .map_err(core)?;
            let value: Vec<Value> = found
                .iter()
                .map(|o| match o {
                    DirectoryObject::ServicePrincipal(p) => service_principal(p, tenant, true),
                    DirectoryObject::Group(g) => group(g),
                })
                .collect();
            Ok(list(&base, "directoryObjects", value))
        }
        GraphOp::ServicePrincipalList => {
            let name = filter(ctx, "servicePrincipalNames/any(c:c eq '", "')")?;
            let found = hsm.service_principals_named(ctx.principal, &name).await.map_err(core)?;
            let value = found.iter().map(|p| service_principal(p, tenant, false)).collect();
            Ok(list(&base, "servicePrincipals", value))
        }
        GraphOp::UserList => {
            let upn = filter(ctx, "userPrincipalName eq '", "'")?;
            hsm.users_named(ctx.principal, &upn).await.map_err(core)?;
            Ok(list(&base, "users", Vec::new()))
        }
        GraphOp::Unsupported => Err(unsupported()),
    }
}

/// A refused Graph request.
pub(super) fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        "Coffer serves only the part of Microsoft Graph that the Azure CLI uses to show principal names: POST \
         /v1.0/directoryObjects/getByIds, and GET /v1.0/servicePrincipals and /v1.0/users with the filters \
         az keyvault sends.",
    )
}

/// A data-plane error in Graph's codes (same `{"error":{"code","message"}}` shape).
fn as_graph(e: ApiError) -> ApiError {
    let code = match e.status {
        StatusCode::BAD_REQUEST => "Request_BadRequest",
        StatusCode::UNAUTHORIZED => "InvalidAuthenticationToken",
        StatusCode::FORBIDDEN => "Authorization_RequestDenied",
        StatusCode::NOT_FOUND => "Request_ResourceNotFound",
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        s if s.is_server_error() => "generalException",
        _ => e.code,
    };
    ApiError { code, ..e }
}

/// 401 for a request without a valid Graph token (an HSM token included).
pub(super) fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token validation failure: a token of this instance's token service for its Graph resource \
         ({public URL}/graph) is required.",
    )
}

/// The quoted value of a `$filter` of the form `{prefix}value{suffix}` (OData quotes doubled).
fn filter(ctx: &Ctx<'_>, prefix: &str, suffix: &str) -> Result<String, ApiError> {
    let f = ctx.query.get("$filter").unwrap_or_default().trim();
    let value = f
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
        .filter(|v| !v.replace("''", "").contains('\''));
    match value {
        Some(v) => Ok(v.replace("''", "'")),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!("Coffer supports only $filter={prefix}…{suffix} here."),
        )),
    }
}

fn list(base: &str, collection: &str, value: Vec<Value>) -> Response {
    ok_json(&json!({
        "@odata.context": format!("{base}/v1.0/$metadata#{collection}"),
        "value": value,
    }))
}

fn service_principal(p: &PrincipalRecord, tenant: &str, typed: bool) -> Value {
    let mut v = json!({
        "id": p.object_id,
        "appId": p.client_id,
        "appOwnerOrganizationId": tenant,
        "displayName": p.display_name,
        "servicePrincipalNames": [p.client_id],
        "servicePrincipalType": "Application",
        "accountEnabled": true,
    });
    if typed {
        v["@odata.type"] = json!("#microsoft.graph.servicePrincipal");
    }
    v
}

fn group(g: &GroupRecord) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.group",
        "id": g.object_id,
        "displayName": g.display_name,
        "securityEnabled": true,
        "mailEnabled": false,
        "groupTypes": [],
    })
}
