//! Key policies under `/coffer/v1/` (docs/POLICY.md): `policy-definitions` (the built-ins), `policies` and
//! `policies/{assignmentName}` (assignments: GET, PUT, DELETE), `compliance` (existing keys that do not comply).
//! The rules and their enforcement live in core (`coffer_core::policy`, `ops/policy.rs`).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::operation::CofferOp;
use coffer_core::policy::AssignmentRequest;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Ctx, json_response, ok_json};
use crate::error::ApiError;

/// The body of `PUT /coffer/v1/policies/{assignmentName}`. What `GET` returns can be sent back as it is (the
/// read-only members are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentBody {
    #[serde(alias = "policyDefinitionId")]
    definition_id: String,
    effect: Option<String>,
    parameters: Option<Map<String, Value>>,
}

/// Routes `policies…`, `policy-definitions` and `compliance` (the rest of the path after `/coffer/v1/`).
pub(super) async fn handle(ctx: &Ctx<'_>, op: CofferOp<'_>) -> Result<Response, ApiError> {
    let hsm = &ctx.app.hsm;
    let p = ctx.principal;
    match op {
        CofferOp::PolicyDefinitionList => {
            let defs = hsm.policy_definitions(p).await?;
            Ok(ok_json(
                &json!({"value": defs.iter().map(coffer_core::policy::PolicyDefinition::to_json).collect::<Vec<_>>()}),
            ))
        }
        CofferOp::PolicyAssignmentList => {
            let list = hsm.list_policy_assignments(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(coffer_core::policy::PolicyAssignment::to_json).collect::<Vec<_>>()}),
            ))
        }
        CofferOp::PolicyAssignmentGet { name } => Ok(ok_json(&hsm.get_policy_assignment(p, name).await?.to_json())),
        CofferOp::PolicyAssignmentSet { name } => {
            let body: AssignmentBody = ctx.json()?;
            let req = AssignmentRequest {
                definition_id: body.definition_id,
                effect: body.effect,
                parameters: body.parameters,
            };
            let (a, created) = hsm.put_policy_assignment(p, name, req).await?;
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(status, &a.to_json()))
        }
        CofferOp::PolicyAssignmentDelete { name } => {
            hsm.delete_policy_assignment(p, name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        CofferOp::Compliance => compliance(ctx).await,
        _ => Err(ApiError::not_found_route()),
    }
}

/// `GET /coffer/v1/compliance`.
async fn compliance(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let r = ctx.app.hsm.compliance(ctx.principal).await?;
    let mut results = 0;
    let value: Vec<Value> = r
        .entries
        .iter()
        .map(|e| {
            results += e.non_compliant.len();
            json!({
                "assignment": e.assignment.name,
                "definitionId": e.assignment.definition_id,
                "displayName": e.display_name,
                "effect": e.assignment.effect.name(),
                "parameters": e.assignment.parameters,
                "nonCompliant": e.non_compliant.iter()
                    .map(|k| json!({"key": k.key, "version": k.version, "reason": k.reason}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(ok_json(&json!({
        "value": value,
        "summary": {
            "evaluatedAt": r.evaluated_at,
            "assignmentsEvaluated": r.entries.len(),
            "keysEvaluated": r.keys_evaluated,
            "nonCompliantKeys": r.non_compliant_keys,
            "nonCompliantResults": results,
            "compliant": results == 0,
        },
    })))
}
