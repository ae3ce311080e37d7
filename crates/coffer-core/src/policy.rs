//! The key policy engine: built-in policy definitions that mirror Azure Policy's definitions for Managed HSM keys
//! (docs/POLICY.md), assignments of them with an effect (`Audit`, `Deny`, `Disabled`) and parameters, and the
//! evaluation of one key version against one assignment.
//!
//! Definitions are code (they cannot be added or changed through the API); assignments are stored. Core evaluates
//! every enabled assignment whenever a key version is written with new attributes (create, import, update,
//! on-demand and scheduled rotation: `ops/policy.rs`), so no route can skip it, and `GET /coffer/v1/compliance`
//! evaluates the current versions of the existing keys.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::key::{KeyType, KeyVersionRecord};

/// Most policy assignments an HSM may hold.
pub const MAX_ASSIGNMENTS: usize = 200;
const DAY: i64 = 86_400;
/// Upper bound of day-count parameters (100 years).
const MAX_DAYS: i64 = 36_500;
const DEFINITION_PREFIX: &str = "/providers/Microsoft.Authorization/policyDefinitions/";

/// What an assignment does with a non-compliant key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Let the operation through and record the violation (audit record, compliance report).
    Audit,
    /// Refuse the operation (403 `ForbiddenByPolicy`).
    Deny,
    /// The assignment is off.
    Disabled,
}

impl Effect {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audit => "Audit",
            Self::Deny => "Deny",
            Self::Disabled => "Disabled",
        }
    }
    /// Parses an effect (case-insensitive; Azure's `Disable` spelling is accepted for `Disabled`).
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "audit" => Ok(Self::Audit),
            "deny" => Ok(Self::Deny),
            "disabled" | "disable" => Ok(Self::Disabled),
            _ => Err(Error::BadParameter(format!(
                "The effect '{s}' is not valid. Allowed: Audit, Deny, Disabled."
            ))),
        }
    }
}

/// The check a definition makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    ExpirationSet,
    MaximumValidity,
    MinimumDaysBeforeExpiration,
    RsaMinimumKeySize,
    AllowedCurves,
    AllowedKeyTypes,
    NotExportable,
}

/// The type of a definition parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    Integer,
    Array,
}

impl ParameterType {
    /// The Azure Policy type name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Integer => "Integer",
            Self::Array => "Array",
        }
    }
}

/// A parameter of a definition (besides the effect, which every definition has).
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDefinition {
    pub name: &'static str,
    pub param_type: ParameterType,
    pub display_name: &'static str,
    pub description: &'static str,
    /// For arrays: the values an item may take; for integers: the values the parameter may take.
    pub allowed_values: Option<Vec<Value>>,
    /// `None`: the parameter is required.
    pub default_value: Option<Value>,
    /// Integer bounds (inclusive).
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// A built-in policy definition.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDefinition {
    /// Stable GUID: Azure's definition GUID where Azure has a Managed HSM definition, else Coffer's own.
    pub id: &'static str,
    /// A short stable name (also accepted as `definitionId`).
    pub name: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    /// Whether an Azure built-in definition with this id and display name exists.
    pub azure_builtin: bool,
    pub rule: RuleKind,
    pub parameters: Vec<ParameterDefinition>,
}

impl PolicyDefinition {
    /// The Azure-style resource id.
    pub fn resource_id(&self) -> String {
        format!("{DEFINITION_PREFIX}{}", self.id)
    }

    /// The definition as `GET /coffer/v1/policy-definitions` lists it (Azure Policy's parameter shape).
    pub fn to_json(&self) -> Value {
        let mut params = Map::new();
        for p in &self.parameters {
            let mut m = Map::new();
            m.insert("type".into(), p.param_type.name().into());
            m.insert(
                "metadata".into(),
                json!({"displayName": p.display_name, "description": p.description}),
            );
            if let Some(a) = &p.allowed_values {
                m.insert("allowedValues".into(), Value::Array(a.clone()));
            }
            if let Some(d) = &p.default_value {
                m.insert("defaultValue".into(), d.clone());
            }
            if let Some(min) = p.min {
                m.insert("minValue".into(), min.into());
            }
            if let Some(max) = p.max {
                m.insert("maxValue".into(), max.into());
            }
            params.insert(p.name.into(), Value::Object(m));
        }
        params.insert(
            "effect".into(),
            json!({
                "type": "String",
                "metadata": {"displayName": "Effect", "description": EFFECT_DESCRIPTION},
                "allowedValues": ["Audit", "Deny", "Disabled"],
                "defaultValue": "Audit",
            }),
        );
        json!({
            "id": self.id,
            "resourceId": self.resource_id(),
            "name": self.name,
            "displayName": self.display_name,
            "description": self.description,
            "policyType": "BuiltIn",
            "source": if self.azure_builtin { "Azure" } else { "Coffer" },
            "mode": "Microsoft.ManagedHSM.Data",
            "parameters": params,
        })
    }
}

const EFFECT_DESCRIPTION: &str = "'Audit' allows a non-compliant key to be created or changed, but records the \
    violation and lists the key as non-compliant. 'Deny' refuses the operation. 'Disabled' turns off the policy.";

const CURVES: [&str; 4] = ["P-256", "P-256K", "P-384", "P-521"];
const KEY_TYPES: [&str; 3] = ["RSA-HSM", "EC-HSM", "oct-HSM"];

fn strings(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::from(*s)).collect())
}

/// Every built-in definition, in a stable order.
pub fn definitions() -> Vec<PolicyDefinition> {
    vec![
        PolicyDefinition {
            id: "1d478a74-21ba-4b9f-9d8f-8e6fced0eec5",
            name: "mhsm-keys-expiration-set",
            display_name: "[Preview]: Azure Key Vault Managed HSM keys should have an expiration date",
            description: "Cryptographic keys should have a defined expiration date and not be permanent. Keys that are \
                valid forever provide a potential attacker with more time to compromise the key.",
            azure_builtin: true,
            rule: RuleKind::ExpirationSet,
            parameters: vec![],
        },
        PolicyDefinition {
            id: "c0ffe700-0b11-4c00-8000-000000000001",
            name: "mhsm-keys-maximum-validity",
            display_name: "Managed HSM keys should have the specified maximum validity period",
            description: "The maximum number of days a key version may be valid, from its activation date (nbf) or, \
                without one, its creation date, to its expiration date. A key without an expiration date does not \
                comply. Mirrors the Key Vault definition 'Keys should have the specified maximum validity period' \
                (49a22571-d204-4c91-a7b6-09b1a586fbc9), which Azure does not offer for Managed HSM.",
            azure_builtin: false,
            rule: RuleKind::MaximumValidity,
            parameters: vec![ParameterDefinition {
                name: "maximumValidityInDays",
                param_type: ParameterType::Integer,
                display_name: "The maximum validity period in days",
                description: "Specify the maximum number of days a key can be valid for.",
                allowed_values: None,
                default_value: None,
                min: Some(1),
                max: Some(MAX_DAYS),
            }],
        },
        PolicyDefinition {
            id: "ad27588c-0198-4c84-81ef-08efd0274653",
            name: "mhsm-keys-minimum-days-before-expiration",
            display_name: "[Preview]: Azure Key Vault Managed HSM Keys should have more than the specified number of \
                days before expiration",
            description: "If a key is too close to expiration, an organizational delay to rotate the key may result in \
                an outage. Existing keys are reported when they expire within the given number of days; a key \
                created, imported, updated or rotated must have an expiration date at least that far away (keys \
                without an expiration date are left to the expiration-date definition).",
            azure_builtin: true,
            rule: RuleKind::MinimumDaysBeforeExpiration,
            parameters: vec![ParameterDefinition {
                name: "minimumDaysBeforeExpiration",
                param_type: ParameterType::Integer,
                display_name: "The minimum days before expiration",
                description: "Specify the minimum number of days that a key should remain usable prior to expiration.",
                allowed_values: None,
                default_value: Some(90.into()),
                min: Some(0),
                max: Some(MAX_DAYS),
            }],
        },
        PolicyDefinition {
            id: "86810a98-8e91-4a44-8386-ec66d0de5d57",
            name: "mhsm-keys-rsa-minimum-key-size",
            display_name: "[Preview]: Azure Key Vault Managed HSM keys using RSA cryptography should have a \
                specified minimum key size",
            description: "Set the minimum allowed key size for RSA keys. Use of RSA keys with small key sizes is not a \
                secure practice and doesn't meet many industry certification requirements.",
            azure_builtin: true,
            rule: RuleKind::RsaMinimumKeySize,
            parameters: vec![ParameterDefinition {
                name: "minimumRSAKeySize",
                param_type: ParameterType::Integer,
                display_name: "Minimum RSA key size",
                description: "The minimum key size for RSA keys.",
                allowed_values: Some(vec![2048.into(), 3072.into(), 4096.into()]),
                default_value: Some(2048.into()),
                min: None,
                max: None,
            }],
        },
        PolicyDefinition {
            id: "e58fd0c1-feac-4d12-92db-0a7e9421f53e",
            name: "mhsm-keys-ec-allowed-curves",
            display_name: "[Preview]: Azure Key Vault Managed HSM keys using elliptic curve cryptography should have \
                the specified curve names",
            description: "Keys backed by elliptic curve cryptography can have different curve names. Some \
                applications are only compatible with specific elliptic curve keys. Enforce the curves of elliptic \
                curve keys that are allowed.",
            azure_builtin: true,
            rule: RuleKind::AllowedCurves,
            parameters: vec![ParameterDefinition {
                name: "allowedECNames",
                param_type: ParameterType::Array,
                display_name: "Allowed elliptic curve names",
                description: "The list of allowed curve names for elliptic curve keys.",
                allowed_values: Some(CURVES.iter().map(|c| Value::from(*c)).collect()),
                default_value: Some(strings(&CURVES)),
                min: None,
                max: None,
            }],
        },
        PolicyDefinition {
            id: "1fd3b2cc-9904-40fa-b8da-050c02612da9",
            name: "mhsm-keys-allowed-key-types",
            display_name: "Azure Key Vault Managed HSM keys should be the specified cryptographic type",
            description: "Some applications require the use of keys backed by a specific cryptographic type. Enforce \
                a particular cryptographic key type.",
            azure_builtin: true,
            rule: RuleKind::AllowedKeyTypes,
            parameters: vec![ParameterDefinition {
                name: "allowedKeyTypes",
                param_type: ParameterType::Array,
                display_name: "Allowed key types",
                description: "The list of allowed key types.",
                allowed_values: Some(KEY_TYPES.iter().map(|c| Value::from(*c)).collect()),
                default_value: Some(strings(&KEY_TYPES)),
                min: None,
                max: None,
            }],
        },
        PolicyDefinition {
            id: "c0ffe700-0b11-4c00-8000-000000000002",
            name: "mhsm-keys-not-exportable",
            display_name: "Managed HSM keys should not be exportable",
            description: "Exportable keys can leave the HSM under a release policy. Keep key material inside the HSM \
                by refusing or reporting keys created with exportable = true.",
            azure_builtin: false,
            rule: RuleKind::NotExportable,
            parameters: vec![],
        },
    ]
}

/// A definition by GUID, by resource id (`/providers/Microsoft.Authorization/policyDefinitions/{guid}`) or by its
/// short name; case-insensitive.
pub fn definition(id: &str) -> Option<PolicyDefinition> {
    let id = id.trim().trim_end_matches('/');
    let tail = id.rsplit('/').next().unwrap_or(id);
    definitions()
        .into_iter()
        .find(|d| d.id.eq_ignore_ascii_case(tail) || d.name.eq_ignore_ascii_case(tail))
}

/// A stored policy assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyAssignment {
    /// The name given in the URL (compared case-insensitively; the first spelling is kept).
    pub name: String,
    /// GUID of the definition.
    pub definition_id: String,
    pub effect: Effect,
    /// Every parameter of the definition, defaults filled in.
    pub parameters: Map<String, Value>,
    pub created: i64,
    pub updated: i64,
}

impl PolicyAssignment {
    /// The assignment as the API returns it.
    pub fn to_json(&self) -> Value {
        let def = definition(&self.definition_id);
        json!({
            "name": self.name,
            "definitionId": self.definition_id,
            "displayName": def.as_ref().map(|d| d.display_name),
            "effect": self.effect.name(),
            "parameters": self.parameters,
            "created": self.created,
            "updated": self.updated,
        })
    }
}

/// Validates an assignment name: 1 to 64 characters of `0-9`, `a-z`, `A-Z`, `-`, `_` and `.`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::BadParameter(format!(
            "The policy assignment name '{name}' is invalid: use 1 to 64 characters of 0-9, a-z, A-Z, '-', '_' and '.'."
        )));
    }
    Ok(())
}

/// An assignment as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct AssignmentRequest {
    pub definition_id: String,
    pub effect: Option<String>,
    pub parameters: Option<Map<String, Value>>,
}

/// Validates a requested assignment: the definition exists, the effect is known, every parameter is known and
/// valid, and required parameters are given. Parameters may be plain values or Azure's `{"value": …}` form; an
/// `effect` parameter (Azure's form) is accepted when it agrees with the top-level `effect`.
/// Returns the definition, the effect and the parameters with defaults filled in.
pub fn validate(req: &AssignmentRequest) -> Result<(PolicyDefinition, Effect, Map<String, Value>), Error> {
    let def = definition(&req.definition_id).ok_or_else(|| {
        Error::BadParameter(format!(
            "The policy definition '{}' does not exist. GET /coffer/v1/policy-definitions lists them.",
            req.definition_id
        ))
    })?;
    let mut given = req.parameters.clone().unwrap_or_default();
    let param_effect = match given.remove("effect") {
        Some(v) => Some(
            unwrap_value(v)
                .as_str()
                .map(Effect::parse)
                .ok_or_else(|| Error::BadParameter("The parameter 'effect' must be a string.".into()))??,
        ),
        None => None,
    };
    let effect = match (req.effect.as_deref().map(Effect::parse).transpose()?, param_effect) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::BadParameter(
                "The effect is given twice with different values (effect and parameters.effect).".into(),
            ));
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => Effect::Audit,
    };
    let mut out = Map::new();
    for p in &def.parameters {
        let value = match given.remove(p.name) {
            Some(v) => normalize_param(&def, p, unwrap_value(v))?,
            None => p.default_value.clone().ok_or_else(|| {
                Error::BadParameter(format!(
                    "The policy definition '{}' requires the parameter '{}'.",
                    def.display_name, p.name
                ))
            })?,
        };
        out.insert(p.name.to_string(), value);
    }
    if let Some(unknown) = given.keys().next() {
        return Err(Error::BadParameter(format!(
            "The policy definition '{}' has no parameter '{unknown}'.",
            def.display_name
        )));
    }
    // The stored form must compile.
    Rule::compile(&def, &out)?;
    Ok((def, effect, out))
}

fn unwrap_value(v: Value) -> Value {
    match v {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("value") => m.remove("value").unwrap_or(Value::Null),
        other => other,
    }
}

fn normalize_param(def: &PolicyDefinition, p: &ParameterDefinition, v: Value) -> Result<Value, Error> {
    let bad = |why: String| {
        Error::BadParameter(format!(
            "The parameter '{}' of the policy definition '{}' is not valid: {why}",
            p.name, def.display_name
        ))
    };
    match p.param_type {
        ParameterType::Integer => {
            let n = v.as_i64().ok_or_else(|| bad("it must be an integer.".into()))?;
            if let Some(allowed) = &p.allowed_values
                && !allowed.iter().any(|a| a.as_i64() == Some(n))
            {
                return Err(bad(format!("{n} is not one of {}.", Value::Array(allowed.clone()))));
            }
            if p.min.is_some_and(|m| n < m) || p.max.is_some_and(|m| n > m) {
                return Err(bad(format!(
                    "{n} is outside {}..{}.",
                    p.min.unwrap_or(i64::MIN),
                    p.max.unwrap_or(i64::MAX)
                )));
            }
            Ok(n.into())
        }
        ParameterType::Array => {
            let items = v
                .as_array()
                .ok_or_else(|| bad("it must be an array of strings.".into()))?;
            if items.is_empty() {
                return Err(bad("give at least one value.".into()));
            }
            let allowed = p.allowed_values.clone().unwrap_or_default();
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                let s = item
                    .as_str()
                    .ok_or_else(|| bad("it must be an array of strings.".into()))?;
                let canonical = allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|a| a.eq_ignore_ascii_case(s))
                    .ok_or_else(|| bad(format!("'{s}' is not one of {}.", Value::Array(allowed.clone()))))?;
                if !out.iter().any(|o| o.as_str() == Some(canonical)) {
                    out.push(canonical.into());
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// A definition with its parameters, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    ExpirationSet,
    MaximumValidity { days: i64 },
    MinimumDaysBeforeExpiration { days: i64 },
    RsaMinimumKeySize { bits: i64 },
    AllowedCurves(Vec<String>),
    AllowedKeyTypes(Vec<String>),
    NotExportable,
}

impl Rule {
    /// Builds the rule from stored (validated) parameters.
    pub fn compile(def: &PolicyDefinition, params: &Map<String, Value>) -> Result<Self, Error> {
        let int = |name: &str| {
            params
                .get(name)
                .and_then(Value::as_i64)
                .ok_or_else(|| Error::Corrupt(format!("policy parameter {name}")))
        };
        let list = |name: &str| -> Result<Vec<String>, Error> {
            params
                .get(name)
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                .ok_or_else(|| Error::Corrupt(format!("policy parameter {name}")))
        };
        Ok(match def.rule {
            RuleKind::ExpirationSet => Self::ExpirationSet,
            RuleKind::MaximumValidity => Self::MaximumValidity {
                days: int("maximumValidityInDays")?,
            },
            RuleKind::MinimumDaysBeforeExpiration => Self::MinimumDaysBeforeExpiration {
                days: int("minimumDaysBeforeExpiration")?,
            },
            RuleKind::RsaMinimumKeySize => Self::RsaMinimumKeySize {
                bits: int("minimumRSAKeySize")?,
            },
            RuleKind::AllowedCurves => Self::AllowedCurves(list("allowedECNames")?),
            RuleKind::AllowedKeyTypes => Self::AllowedKeyTypes(list("allowedKeyTypes")?),
            RuleKind::NotExportable => Self::NotExportable,
        })
    }

    /// Why `rec` does not comply at time `now`, or `None` when it complies.
    pub fn violation(&self, rec: &KeyVersionRecord, now: i64) -> Option<String> {
        let a = &rec.attributes;
        match self {
            Self::ExpirationSet => a
                .expires
                .is_none()
                .then(|| "the key has no expiration date (exp)".to_string()),
            Self::MaximumValidity { days } => {
                let Some(exp) = a.expires else {
                    return Some(format!(
                        "the key has no expiration date, so its validity is unlimited (maximum {days} days)"
                    ));
                };
                let (start, from) = match a.not_before {
                    Some(nbf) => (nbf, "nbf"),
                    None => (a.created, "creation"),
                };
                let secs = exp.saturating_sub(start);
                (secs > days.saturating_mul(DAY)).then(|| {
                    format!(
                        "the key is valid for {} days (from {from} to exp), more than the maximum of {days} days",
                        secs.div_euclid(DAY) + i64::from(secs.rem_euclid(DAY) != 0)
                    )
                })
            }
            Self::MinimumDaysBeforeExpiration { days } => {
                let exp = a.expires?;
                if exp >= now.saturating_add(days.saturating_mul(DAY)) {
                    return None;
                }
                Some(if exp <= now {
                    format!("the key has expired; at least {days} days before expiration are required")
                } else {
                    format!(
                        "the key expires in {} days, fewer than the required {days} days",
                        (exp - now).div_euclid(DAY)
                    )
                })
            }
            Self::RsaMinimumKeySize { bits } => match rec.key_type {
                KeyType::Rsa(size) if i64::from(size) < *bits => Some(format!(
                    "the RSA key size is {size} bits, less than the minimum of {bits} bits"
                )),
                _ => None,
            },
            Self::AllowedCurves(allowed) => match rec.key_type {
                KeyType::Ec(c) if !allowed.iter().any(|n| n == c.name()) => Some(format!(
                    "the curve {} is not one of the allowed curves ({})",
                    c.name(),
                    allowed.join(", ")
                )),
                _ => None,
            },
            Self::AllowedKeyTypes(allowed) => {
                let kty = rec.key_type.kty();
                (!allowed.iter().any(|t| t == kty)).then(|| {
                    format!(
                        "the key type {kty} is not one of the allowed key types ({})",
                        allowed.join(", ")
                    )
                })
            }
            Self::NotExportable => a.exportable.then(|| "the key is exportable".to_string()),
        }
    }
}

/// One violation of one assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub assignment: String,
    pub definition_id: String,
    pub display_name: String,
    pub effect: Effect,
    pub reason: String,
}

impl Violation {
    /// The violation as audit records show it (`version`: the key version, when it exists).
    pub fn to_json(&self, key: &str, version: Option<&str>) -> Value {
        let mut v = json!({
            "assignment": self.assignment,
            "definitionId": self.definition_id,
            "displayName": self.display_name,
            "effect": self.effect.name(),
            "key": key,
            "reason": self.reason,
        });
        if let Some(version) = version {
            v["version"] = version.into();
        }
        v
    }
}

/// Evaluates every enabled assignment against `rec`.
pub fn evaluate(assignments: &[PolicyAssignment], rec: &KeyVersionRecord, now: i64) -> Result<Vec<Violation>, Error> {
    let mut out = Vec::new();
    for a in assignments.iter().filter(|a| a.effect != Effect::Disabled) {
        let def = definition(&a.definition_id)
            .ok_or_else(|| Error::Corrupt(format!("policy assignment {} names an unknown definition", a.name)))?;
        if let Some(reason) = Rule::compile(&def, &a.parameters)?.violation(rec, now) {
            out.push(Violation {
                assignment: a.name.clone(),
                definition_id: def.id.to_string(),
                display_name: def.display_name.to_string(),
                effect: a.effect,
                reason,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyAttributes, KeyName, KeyVersion};
    use coffer_crypto::keys::{Curve, PrivateKey};

    fn rec(key_type: KeyType, nbf: Option<i64>, exp: Option<i64>, exportable: bool) -> KeyVersionRecord {
        let key = match key_type {
            KeyType::Ec(c) => PrivateKey::generate_ec(c).unwrap(),
            _ => PrivateKey::generate_oct(256).unwrap(),
        };
        KeyVersionRecord {
            name: KeyName::parse("k").unwrap(),
            version: KeyVersion::generate().unwrap(),
            key_type,
            public_key: key.public_key(),
            key_ops: vec![],
            attributes: KeyAttributes {
                enabled: true,
                not_before: nbf,
                expires: exp,
                created: 1_000,
                updated: 1_000,
                exportable,
            },
            tags: Default::default(),
            release_policy: None,
            sealed_material: vec![],
            origin: None,
        }
    }

    fn assign(def: &str, effect: &str, params: Value) -> PolicyAssignment {
        let (d, effect, parameters) = validate(&AssignmentRequest {
            definition_id: def.into(),
            effect: Some(effect.into()),
            parameters: params.as_object().cloned(),
        })
        .unwrap();
        PolicyAssignment {
            name: format!("a-{}", d.name),
            definition_id: d.id.into(),
            effect,
            parameters,
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn definitions_have_unique_ids_and_names() {
        let defs = definitions();
        for (i, a) in defs.iter().enumerate() {
            for b in &defs[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.name, b.name);
                assert_ne!(a.display_name, b.display_name);
            }
            assert_eq!(definition(a.id).unwrap().id, a.id);
            assert_eq!(definition(&a.resource_id().to_uppercase()).unwrap().id, a.id);
            assert_eq!(definition(a.name).unwrap().id, a.id);
        }
        assert!(definition("00000000-0000-0000-0000-000000000000").is_none());
    }

    #[test]
    fn validation_fills_defaults_and_refuses_bad_input() {
        let (_, effect, p) = validate(&AssignmentRequest {
            definition_id: "mhsm-keys-ec-allowed-curves".into(),
            effect: None,
            parameters: None,
        })
        .unwrap();
        assert_eq!(effect, Effect::Audit);
        assert_eq!(p["allowedECNames"], json!(["P-256", "P-256K", "P-384", "P-521"]));
        let (_, effect, p) = validate(&AssignmentRequest {
            definition_id: "86810a98-8e91-4a44-8386-ec66d0de5d57".into(),
            effect: None,
            parameters: json!({"minimumRSAKeySize": {"value": 3072}, "effect": {"value": "Deny"}})
                .as_object()
                .cloned(),
        })
        .unwrap();
        assert_eq!((effect, p["minimumRSAKeySize"].as_i64()), (Effect::Deny, Some(3072)));
        let bad = |def: &str, effect: Option<&str>, params: Value| {
            validate(&AssignmentRequest {
                definition_id: def.into(),
                effect: effect.map(str::to_string),
                parameters: params.as_object().cloned(),
            })
            .is_err()
        };
        assert!(bad("nope", None, json!({})));
        assert!(bad("mhsm-keys-expiration-set", Some("Block"), json!({})));
        assert!(bad("mhsm-keys-expiration-set", None, json!({"extra": 1})));
        assert!(bad("mhsm-keys-maximum-validity", None, json!({})), "required parameter");
        assert!(bad(
            "mhsm-keys-maximum-validity",
            None,
            json!({"maximumValidityInDays": 0})
        ));
        assert!(bad(
            "mhsm-keys-maximum-validity",
            None,
            json!({"maximumValidityInDays": "30"})
        ));
        assert!(bad(
            "mhsm-keys-rsa-minimum-key-size",
            None,
            json!({"minimumRSAKeySize": 1024})
        ));
        assert!(bad("mhsm-keys-ec-allowed-curves", None, json!({"allowedECNames": []})));
        assert!(bad(
            "mhsm-keys-ec-allowed-curves",
            None,
            json!({"allowedECNames": ["P-192"]})
        ));
        assert!(bad(
            "mhsm-keys-expiration-set",
            Some("Deny"),
            json!({"effect": "Audit"})
        ));
        let (_, _, p) = validate(&AssignmentRequest {
            definition_id: "mhsm-keys-allowed-key-types".into(),
            effect: Some("deny".into()),
            parameters: json!({"allowedKeyTypes": ["rsa-hsm", "RSA-HSM", "EC-HSM"]})
                .as_object()
                .cloned(),
        })
        .unwrap();
        assert_eq!(p["allowedKeyTypes"], json!(["RSA-HSM", "EC-HSM"]));
    }

    #[test]
    fn rules_evaluate_key_versions() {
        let now = 10 * DAY;
        let ec = |c| KeyType::Ec(c);
        let expset = assign("mhsm-keys-expiration-set", "Deny", json!({}));
        let maxv = assign(
            "mhsm-keys-maximum-validity",
            "Audit",
            json!({"maximumValidityInDays": 30}),
        );
        let mind = assign(
            "mhsm-keys-minimum-days-before-expiration",
            "Deny",
            json!({"minimumDaysBeforeExpiration": 5}),
        );
        let curves = assign(
            "mhsm-keys-ec-allowed-curves",
            "Deny",
            json!({"allowedECNames": ["P-384"]}),
        );
        let types = assign(
            "mhsm-keys-allowed-key-types",
            "Deny",
            json!({"allowedKeyTypes": ["EC-HSM"]}),
        );
        let exp = assign("mhsm-keys-not-exportable", "Deny", json!({}));
        let off = assign("mhsm-keys-expiration-set", "Disabled", json!({}));
        let all = [expset, maxv, mind, curves, types, exp, off];
        let names = |r: &KeyVersionRecord| {
            evaluate(&all, r, now)
                .unwrap()
                .into_iter()
                .map(|v| v.assignment)
                .collect::<Vec<_>>()
        };
        // P-384, exp 20 days after creation, 11 days from now, not exportable: complies with everything.
        let good = rec(ec(Curve::P384), None, Some(1_000 + 20 * DAY), false);
        assert!(names(&good).is_empty(), "{:?}", names(&good));
        let v = names(&rec(ec(Curve::P256), None, None, true));
        assert_eq!(
            v,
            [
                "a-mhsm-keys-expiration-set",
                "a-mhsm-keys-maximum-validity",
                "a-mhsm-keys-ec-allowed-curves",
                "a-mhsm-keys-not-exportable"
            ]
        );
        // Validity counts from nbf when set.
        let long = rec(ec(Curve::P384), Some(0), Some(31 * DAY), false);
        assert_eq!(names(&long), ["a-mhsm-keys-maximum-validity"]);
        let soon = rec(ec(Curve::P384), None, Some(now + 2 * DAY), false);
        assert_eq!(names(&soon), ["a-mhsm-keys-minimum-days-before-expiration"]);
        let oct = rec(KeyType::Oct(256), None, Some(now + 6 * DAY), false);
        assert_eq!(names(&oct), ["a-mhsm-keys-allowed-key-types"]);
        let rsa = Rule::RsaMinimumKeySize { bits: 3072 };
        let mut small = rec(KeyType::Oct(256), None, None, false);
        small.key_type = KeyType::Rsa(2048);
        assert!(rsa.violation(&small, now).unwrap().contains("2048"));
        small.key_type = KeyType::Rsa(4096);
        assert!(rsa.violation(&small, now).is_none());
    }
}
