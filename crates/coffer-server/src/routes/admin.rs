//! Coffer's own administration API under `/coffer/v1/`: service principals (with client secrets and certificate
//! credentials) and groups. Guarded by the `Coffer/identities/…` dataActions.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::operation::CofferOp as C;
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
        "allowedNetworks": p.allowed_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
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

/// Operations under `/coffer/v1/` (the policy ones go to `policy.rs`).
pub(super) async fn handle(ctx: &Ctx<'_>, op: C<'_>) -> Result<Response, ApiError> {
    let hsm = &ctx.app.hsm;
    let p = ctx.principal;
    match op {
        C::PrincipalCreate => {
            let body: Named = ctx.json()?;
            let created = hsm.create_principal(p, &body.display_name).await?;
            let mut v = principal_json(&created.record);
            v["clientSecret"] = json!(secret_text(&created.client_secret)?);
            v["secretId"] = json!(created.secret_id);
            v["tenantId"] = json!(hsm.tenant_id());
            Ok(json_response(StatusCode::CREATED, &v))
        }
        C::PrincipalList => {
            let list = hsm.list_principals(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(principal_json).collect::<Vec<_>>()}),
            ))
        }
        C::PrincipalGet { id: oid } => Ok(ok_json(&principal_json(&hsm.get_principal(p, oid).await?))),
        C::PrincipalDelete { id: oid } => {
            hsm.delete_principal(p, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::PrincipalSecretCreate { id: oid } => {
            let (id, secret) = hsm.add_client_secret(p, oid).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"secretId": id, "clientSecret": secret_text(&secret)?}),
            ))
        }
        C::PrincipalSecretDelete { id: oid, secret: sid } => {
            hsm.delete_client_secret(p, oid, sid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::PrincipalCertificateAdd { id: oid } => {
            let body: AddCertificate = ctx.json()?;
            let thumbprint = hsm.add_certificate(p, oid, &body.certificate).await?;
            Ok(json_response(StatusCode::CREATED, &json!({ "thumbprint": thumbprint })))
        }
        C::GroupCreate => {
            let body: Named = ctx.json()?;
            Ok(json_response(
                StatusCode::CREATED,
                &group_json(&hsm.create_group(p, &body.display_name).await?),
            ))
        }
        C::GroupList => {
            let list = hsm.list_groups(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(group_json).collect::<Vec<_>>()}),
            ))
        }
        C::GroupGet { id: gid } => Ok(ok_json(&group_json(&hsm.get_group(p, gid).await?))),
        C::GroupDelete { id: gid } => {
            hsm.delete_group(p, gid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::GroupMemberAdd {
            group: gid,
            member: oid,
        } => {
            hsm.add_group_member(p, gid, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::GroupMemberRemove {
            group: gid,
            member: oid,
        } => {
            hsm.remove_group_member(p, gid, oid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::PrincipalNetworksSet { id: oid } => {
            let body: Networks = ctx.json()?;
            let nets = hsm.set_principal_networks(p, oid, &body.allowed_networks).await?;
            Ok(ok_json(
                &json!({"allowedNetworks": nets.iter().map(ToString::to_string).collect::<Vec<_>>()}),
            ))
        }
        C::EligibleAssignmentCreate => {
            let body: NewEligible = ctx.json()?;
            let scope = coffer_core::rbac::Scope::parse(&body.scope)?;
            let e = hsm
                .create_eligible_assignment(
                    p,
                    &scope,
                    body.name.as_deref(),
                    &body.role_definition_id,
                    &body.principal_id,
                    body.max_duration_seconds,
                )
                .await?;
            Ok(json_response(StatusCode::CREATED, &eligible_json(&e)))
        }
        C::EligibleAssignmentList => {
            let list = hsm.list_eligible_assignments(p).await?;
            Ok(ok_json(
                &json!({"value": list.iter().map(eligible_json).collect::<Vec<_>>()}),
            ))
        }
        C::EligibleAssignmentDelete { name } => {
            hsm.delete_eligible_assignment(p, name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        C::EligibleAssignmentActivate { name } => {
            let body: Activate = ctx.json()?;
            let (a, warnings) = hsm
                .activate_eligible_assignment(p, name, body.duration_seconds, &body.justification)
                .await?;
            Ok(super::rbac::created_with_warnings(
                &super::rbac::assignment(&a),
                &warnings,
            ))
        }
        C::ActivationList => {
            let list = hsm.list_activations(p).await?;
            let value: Vec<_> = list
                .iter()
                .map(|a| {
                    json!({"id": a.id, "eligibleAssignment": a.eligible_name, "principalId": a.principal_id,
                           "roleAssignment": a.assignment_name, "justification": a.justification,
                           "activated": a.activated, "expiresOn": a.expires})
                })
                .collect();
            Ok(ok_json(&json!({ "value": value })))
        }
        C::AccessReview => {
            let days = match ctx.query.get("unusedDays") {
                Some(d) => d
                    .parse()
                    .map_err(|_| ApiError::bad_parameter("unusedDays must be an integer."))?,
                None => 90,
            };
            let r = hsm.access_review(p, days).await?;
            let assignments: Vec<_> = r
                .assignments
                .iter()
                .map(|x| {
                    let a = &x.assignment;
                    json!({"name": a.name, "scope": a.scope.as_string(), "roleDefinitionId": a.role_definition_id,
                           "roleName": x.role_name, "principalId": a.principal_id, "principalType": x.principal_type,
                           "created": a.created, "expiresOn": a.expires, "expired": x.expired,
                           "lastUsed": a.last_used})
                })
                .collect();
            Ok(ok_json(&json!({
                "unusedDays": r.unused_days,
                "assignments": assignments,
                "principalsWithSeveralRoles": r.principals_with_several_roles,
                "individualAdministrators": r.individual_administrators,
                "unusedAssignments": r.unused_assignments,
                "separationOfDutiesConflicts": r.separation_of_duties_conflicts,
            })))
        }
        C::AuditQuery => audit_query(ctx).await,
        C::Posture => {
            let facts = ctx.app.posture_facts();
            Ok(ok_json(&hsm.posture(p, &facts).await?))
        }
        C::NetworkAclsGet => Ok(ok_json(&hsm.get_network_acls(p).await?)),
        C::NetworkAclsSet => {
            let doc: coffer_core::network::NetworkAclsDoc = ctx.json()?;
            let force = ctx.query.get("force").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            Ok(ok_json(&hsm.set_network_acls(p, doc, force).await?))
        }
        C::PolicyDefinitionList
        | C::PolicyAssignmentList
        | C::PolicyAssignmentGet { .. }
        | C::PolicyAssignmentSet { .. }
        | C::PolicyAssignmentDelete { .. }
        | C::Compliance => super::policy::handle(ctx, op).await,
    }
}

/// A time filter: RFC 3339 UTC (`2026-11-22T08:00:00Z`) or Unix seconds.
fn time_param(ctx: &Ctx<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    match ctx.query.get(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .or_else(|| coffer_core::audit::record::parse_time(v))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_parameter(format!(
                    "'{name}' must be a UTC time like 2026-11-22T08:00:00Z or Unix seconds."
                ))
            }),
    }
}

/// `GET /coffer/v1/audit?from=&to=&operation=&principal=&result=&maxresults=&$skiptoken=`.
async fn audit_query(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let after_seq = match ctx.marker()? {
        Some(m) => Some(
            m.parse::<u64>()
                .map_err(|_| ApiError::bad_parameter("invalid $skiptoken"))?,
        ),
        None => None,
    };
    let max = ctx.query.maxresults()?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::bad_parameter("maxresults must be between 1 and 1000."));
    }
    let q = coffer_core::audit::query::AuditQuery {
        from: time_param(ctx, "from")?,
        to: time_param(ctx, "to")?,
        operation: ctx.query.get("operation").filter(|s| !s.is_empty()).map(str::to_string),
        principal: ctx.query.get("principal").filter(|s| !s.is_empty()).map(str::to_string),
        result: ctx.query.get("result").filter(|s| !s.is_empty()).map(str::to_string),
        max: usize::try_from(max).unwrap_or(100),
        after_seq,
    };
    let page = ctx.app.hsm.query_audit(ctx.principal, q).await?;
    let mut body = json!({ "value": page.records });
    if let Some(next) = page.next_after {
        // Keep the filters in the link.
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        qs.append_pair("api-version", ctx.api_version);
        for k in ["from", "to", "operation", "principal", "result", "maxresults"] {
            if let Some(v) = ctx.query.get(k) {
                qs.append_pair(k, v);
            }
        }
        qs.append_pair("$skiptoken", &crate::convert::enc(next.to_string().as_bytes()));
        body["nextLink"] = json!(format!("{}/coffer/v1/audit?{}", ctx.app.public_url, qs.finish()));
    }
    Ok(ok_json(&body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Networks {
    allowed_networks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewEligible {
    name: Option<String>,
    scope: String,
    role_definition_id: String,
    principal_id: String,
    max_duration_seconds: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activate {
    duration_seconds: i64,
    justification: String,
}

fn eligible_json(e: &coffer_core::rbac::EligibleAssignment) -> serde_json::Value {
    json!({"name": e.name, "scope": e.scope.as_string(),
           "roleDefinitionId": coffer_core::rbac::role_definition_resource_id(&e.role_definition_id),
           "principalId": e.principal_id, "maxDurationSeconds": e.max_duration_secs, "created": e.created})
}
