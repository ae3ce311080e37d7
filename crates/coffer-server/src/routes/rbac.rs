//! Local RBAC routes: `/{scope}/providers/Microsoft.Authorization/roleDefinitions[/{name}]` and
//! `/{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`, with the scope spliced in by clients
//! (`///providers/…` from older clients, `/providers/…`, `/keys/providers/…`, `/keys/{name}/providers/…`).
use axum::http::StatusCode;
use axum::response::Response;
use coffer_api::rbac as wire;
use coffer_core::operation::{RbacOp, scope_path};
use coffer_core::ops::role_assignments::{AssignmentFilter, AssignmentOptions};
use coffer_core::ops::role_definitions::RoleDefinitionRequest;
use coffer_core::rbac::{self, Permission, RoleAssignment, RoleDefinition, Scope};

use super::{Ctx, json_response, ok_json};
use crate::error::ApiError;

fn definition(d: &RoleDefinition) -> wire::RoleDefinition {
    wire::RoleDefinition {
        id: rbac::role_definition_resource_id(&d.id),
        name: d.id.clone(),
        kind: "Microsoft.Authorization/roleDefinitions".into(),
        properties: wire::RoleDefinitionProperties {
            role_name: Some(d.role_name.clone()),
            description: Some(d.description.clone()),
            role_type: Some(d.role_type.name().into()),
            permissions: d
                .permissions
                .iter()
                .map(|p| wire::Permission {
                    actions: p.actions.clone(),
                    not_actions: p.not_actions.clone(),
                    data_actions: p.data_actions.clone(),
                    not_data_actions: p.not_data_actions.clone(),
                })
                .collect(),
            assignable_scopes: d.assignable_scopes.clone(),
        },
    }
}

pub(super) fn assignment(a: &RoleAssignment) -> wire::RoleAssignment {
    wire::RoleAssignment {
        id: format!("/providers/Microsoft.Authorization/roleAssignments/{}", a.name),
        name: a.name.clone(),
        kind: "Microsoft.Authorization/roleAssignments".into(),
        properties: wire::RoleAssignmentProperties {
            scope: a.scope.as_string(),
            role_definition_id: rbac::role_definition_resource_id(&a.role_definition_id),
            principal_id: a.principal_id.clone(),
            expires_on: a.expires,
            allowed_networks: a.allowed_networks.iter().map(ToString::to_string).collect(),
            justification: a.justification.clone(),
        },
    }
}

/// A 201 with separation-of-duties warnings in `x-coffer-warning`.
pub(super) fn created_with_warnings<T: serde::Serialize>(body: &T, warnings: &[String]) -> Response {
    let mut r = json_response(StatusCode::CREATED, body);
    if !warnings.is_empty()
        && let Ok(v) = axum::http::HeaderValue::from_str(&warnings.join("; "))
    {
        r.headers_mut().insert("x-coffer-warning", v);
    }
    r
}

/// Parses `$filter`: `atScope()`, `atScopeAndBelow()`, `principalId eq '…'`, `roleName eq '…'`.
fn filter_value<'a>(filter: &'a str, field: &str) -> Option<&'a str> {
    let f = filter.trim();
    let rest = f
        .get(..field.len())
        .filter(|h| h.eq_ignore_ascii_case(field))
        .and_then(|_| f.get(field.len()..))?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("eq").or_else(|| rest.strip_prefix("EQ"))?.trim();
    rest.strip_prefix('\'')?.strip_suffix('\'')
}

/// The role-assignment list's `$filter`.
fn assignment_filter(filter: &str) -> Result<AssignmentFilter, ApiError> {
    Ok(if filter.trim().eq_ignore_ascii_case("atScope()") {
        AssignmentFilter::AtScope
    } else if let Some(id) = filter_value(filter, "principalId") {
        AssignmentFilter::Principal(id.to_string())
    } else if filter.trim().is_empty() || filter.trim().eq_ignore_ascii_case("atScopeAndBelow()") {
        AssignmentFilter::All
    } else {
        return Err(ApiError::bad_parameter(format!(
            "The $filter '{filter}' is not supported."
        )));
    })
}

/// Fuzzing entry (`fuzz/`): both `$filter` parsers (role definitions' `roleName eq '…'`, role assignments').
#[doc(hidden)]
pub fn fuzz_filter(filter: &str) -> bool {
    let by_name = filter_value(filter, "roleName").is_some();
    assignment_filter(filter).is_ok() || by_name
}

pub(super) async fn handle(ctx: &Ctx<'_>, op: RbacOp<'_>) -> Result<Response, ApiError> {
    let raw = match op {
        RbacOp::DefinitionList { scope }
        | RbacOp::DefinitionGet { scope, .. }
        | RbacOp::DefinitionSet { scope, .. }
        | RbacOp::DefinitionDelete { scope, .. }
        | RbacOp::AssignmentList { scope }
        | RbacOp::AssignmentGet { scope, .. }
        | RbacOp::AssignmentCreate { scope, .. }
        | RbacOp::AssignmentDelete { scope, .. } => scope,
    };
    let scope = Scope::parse(&scope_path(raw))?;
    let hsm = &ctx.app.hsm;
    let p = ctx.principal;
    let filter = ctx.query.get("$filter").unwrap_or("");
    let definitions = matches!(
        op,
        RbacOp::DefinitionList { .. }
            | RbacOp::DefinitionGet { .. }
            | RbacOp::DefinitionSet { .. }
            | RbacOp::DefinitionDelete { .. }
    );
    if definitions && matches!(scope, Scope::Key(_)) {
        return Err(ApiError::bad_parameter("Role definitions exist only at scope '/'."));
    }
    match op {
        RbacOp::DefinitionList { .. } => {
            let defs = hsm
                .list_role_definitions(p, &scope, filter_value(filter, "roleName"))
                .await?;
            let value: Vec<_> = defs.iter().map(definition).collect();
            Ok(ok_json(&serde_json::json!({ "value": value, "nextLink": null })))
        }
        RbacOp::DefinitionGet { name, .. } => {
            Ok(ok_json(&definition(&hsm.get_role_definition(p, &scope, name).await?)))
        }
        RbacOp::DefinitionSet { name, .. } => {
            let body: wire::RoleDefinitionCreateParameters = ctx.json()?;
            let pr = body.properties;
            let req = RoleDefinitionRequest {
                role_name: pr.role_name,
                description: pr.description,
                role_type: pr.role_type,
                permissions: pr
                    .permissions
                    .into_iter()
                    .map(|w| Permission {
                        actions: w.actions,
                        not_actions: w.not_actions,
                        data_actions: w.data_actions,
                        not_data_actions: w.not_data_actions,
                    })
                    .collect(),
                assignable_scopes: pr.assignable_scopes,
            };
            let d = hsm.put_role_definition(p, &scope, name, req).await?;
            Ok(json_response(StatusCode::CREATED, &definition(&d)))
        }
        RbacOp::DefinitionDelete { name, .. } => Ok(ok_json(&definition(
            &hsm.delete_role_definition(p, &scope, name).await?,
        ))),
        RbacOp::AssignmentList { .. } => {
            let f = assignment_filter(filter)?;
            let list = hsm.list_role_assignments(p, &scope, &f).await?;
            let value: Vec<_> = list.iter().map(assignment).collect();
            Ok(ok_json(&serde_json::json!({ "value": value, "nextLink": null })))
        }
        RbacOp::AssignmentGet { name, .. } => {
            Ok(ok_json(&assignment(&hsm.get_role_assignment(p, &scope, name).await?)))
        }
        RbacOp::AssignmentCreate { name, .. } => {
            let body: wire::RoleAssignmentCreateParameters = ctx.json()?;
            let pr = body.properties;
            let options = AssignmentOptions {
                expires: pr.expires_on,
                allowed_networks: pr
                    .allowed_networks
                    .iter()
                    .map(|n| rbac::Network::parse(n))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let (a, warnings) = hsm
                .create_role_assignment(p, &scope, name, &pr.role_definition_id, &pr.principal_id, options)
                .await?;
            Ok(created_with_warnings(&assignment(&a), &warnings))
        }
        RbacOp::AssignmentDelete { name, .. } => Ok(ok_json(&assignment(
            &hsm.delete_role_assignment(p, &scope, name).await?,
        ))),
    }
}
