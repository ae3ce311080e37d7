//! Rotation policy, rotate, and settings routes.
use axum::response::Response;
use coffer_core::ops::rotation::{RotationPolicy, RotationPolicyRequest};
use serde_json::{Value, json};

use super::{Ctx, ok_json};
use crate::convert;
use crate::error::ApiError;

fn policy_json(ctx: &Ctx<'_>, name: &str, p: &RotationPolicy) -> Value {
    let actions: Vec<Value> = p
        .lifetime_actions
        .iter()
        .map(|a| {
            let mut trigger = serde_json::Map::new();
            if let Some(t) = &a.time_after_create {
                trigger.insert("timeAfterCreate".into(), json!(t));
            }
            if let Some(t) = &a.time_before_expiry {
                trigger.insert("timeBeforeExpiry".into(), json!(t));
            }
            json!({"trigger": trigger, "action": {"type": "Rotate"}})
        })
        .collect();
    let mut attributes = serde_json::Map::new();
    if let Some(e) = &p.expiry_time {
        attributes.insert("expiryTime".into(), json!(e));
    }
    if let Some(c) = p.created {
        attributes.insert("created".into(), json!(c));
    }
    if let Some(u) = p.updated {
        attributes.insert("updated".into(), json!(u));
    }
    json!({
        "id": format!("{}/keys/{name}/rotationpolicy", ctx.app.public_url),
        "lifetimeActions": actions,
        "attributes": attributes,
    })
}

fn parse_policy(v: &Value) -> Result<RotationPolicyRequest, ApiError> {
    let bad = |m: &str| ApiError::bad_parameter(m.to_string());
    let str_or_null = |v: Option<&Value>| -> Result<Option<String>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad("Durations must be ISO-8601 strings.")),
        }
    };
    let mut actions = Vec::new();
    match v.get("lifetimeActions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for a in list {
                let kind = a
                    .get("action")
                    .and_then(|x| x.get("type"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("Each lifetime action needs action.type."))?;
                let trigger = a.get("trigger").cloned().unwrap_or(Value::Null);
                actions.push((
                    kind.to_string(),
                    str_or_null(trigger.get("timeAfterCreate"))?,
                    str_or_null(trigger.get("timeBeforeExpiry"))?,
                ));
            }
        }
        Some(_) => return Err(bad("lifetimeActions must be an array.")),
    }
    let expiry_time = match v.get("attributes") {
        None | Some(Value::Null) => None,
        Some(a @ Value::Object(_)) => str_or_null(a.get("expiryTime"))?,
        Some(_) => return Err(bad("attributes must be an object.")),
    };
    Ok(RotationPolicyRequest { actions, expiry_time })
}

pub(super) async fn get_policy(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let p = ctx.app.hsm.get_rotation_policy(ctx.principal, name).await?;
    Ok(ok_json(&policy_json(ctx, name, &p)))
}

pub(super) async fn put_policy(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let body: Value = ctx.json()?;
    let req = parse_policy(&body)?;
    let p = ctx.app.hsm.put_rotation_policy(ctx.principal, name, req).await?;
    Ok(ok_json(&policy_json(ctx, name, &p)))
}

pub(super) async fn rotate(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let rec = ctx.app.hsm.rotate_key(ctx.principal, name).await?;
    Ok(ok_json(&convert::key_bundle(&ctx.app.hsm, &ctx.app.public_url, &rec)))
}

fn setting_json((name, value): &(String, String)) -> Value {
    json!({"name": name, "value": value, "type": "boolean"})
}

/// `GET /settings`.
pub(super) async fn settings(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let list = ctx.app.hsm.settings(ctx.principal).await?;
    Ok(ok_json(
        &json!({"settings": list.iter().map(setting_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /settings/{name}`.
pub(super) async fn setting(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    Ok(ok_json(&setting_json(&ctx.app.hsm.setting(ctx.principal, name).await?)))
}

/// `PATCH /settings/{name}`.
pub(super) async fn update_setting(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    let body: Value = ctx.json()?;
    let v = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_parameter("value is required."))?;
    Ok(ok_json(&setting_json(
        &ctx.app.hsm.update_setting(ctx.principal, name, v).await?,
    )))
}
