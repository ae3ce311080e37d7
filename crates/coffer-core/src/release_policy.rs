//! Secure Key Release policies (docs/KEY-RELEASE.md): the transport form (`contentType`, `immutable`, `data`),
//! the grammar (`version`, `anyOf` authorities, nested `allOf`/`anyOf` claim conditions), the canonical form that
//! is stored and echoed, and evaluation against verified attestation-token claims.
//!
//! Rules chosen here: `immutable: true` is refused (Managed HSM does not support immutable policies), so no stored
//! policy is ever immutable. `anyOf`/`allOf` and operator names are matched case-insensitively and emitted in
//! camelCase. The legacy `{"claim", "condition", "value"}` form is accepted and stored in the modern form. String
//! comparison is case-sensitive, except that two hex strings of 32 or more digits compare case-insensitively.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::Error;

/// `contentType` when the client sends none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Nesting limit for conditions.
const MAX_DEPTH: usize = 16;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Less,
    LessOrEquals,
    Greater,
    GreaterOrEquals,
    Exists,
}

const OPERATORS: [(&str, Operator); 7] = [
    ("equals", Operator::Equals),
    ("notEquals", Operator::NotEquals),
    ("less", Operator::Less),
    ("lessOrEquals", Operator::LessOrEquals),
    ("greater", Operator::Greater),
    ("greaterOrEquals", Operator::GreaterOrEquals),
    ("exists", Operator::Exists),
];

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        OPERATORS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, o)| *o)
    }
    fn name(self) -> &'static str {
        OPERATORS.iter().find(|(_, o)| *o == self).map_or("equals", |(n, _)| n)
    }
}

/// A condition: one claim test or a nested group.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Claim { claim: String, op: Operator, value: Value },
    AllOf(Vec<Condition>),
    AnyOf(Vec<Condition>),
}

/// One authority and its condition group (`allOf` or `anyOf`).
#[derive(Debug, Clone, PartialEq)]
pub struct Authority {
    pub authority: String,
    pub condition: Condition,
}

/// A parsed release policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasePolicy {
    pub version: Option<String>,
    pub authorities: Vec<Authority>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadParameter(format!("Invalid release policy: {}", msg.into()))
}

fn group_key(k: &str) -> Option<bool> {
    if k.eq_ignore_ascii_case("allOf") {
        Some(true)
    } else if k.eq_ignore_ascii_case("anyOf") {
        Some(false)
    } else {
        None
    }
}

fn parse_list(v: &Value, depth: usize) -> Result<Vec<Condition>, Error> {
    let list = v.as_array().ok_or_else(|| bad("allOf/anyOf must be an array"))?;
    if list.is_empty() {
        return Err(bad("allOf/anyOf must not be empty"));
    }
    list.iter().map(|c| parse_condition(c, depth + 1)).collect()
}

fn check_value(v: &Value) -> Result<(), Error> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err(bad("condition values must be a string, a number or a boolean")),
    }
}

fn parse_condition(v: &Value, depth: usize) -> Result<Condition, Error> {
    if depth > MAX_DEPTH {
        return Err(bad("conditions are nested too deeply"));
    }
    let obj = v.as_object().ok_or_else(|| bad("a condition must be an object"))?;
    let mut claim = None;
    let mut group = None;
    let mut op = None;
    let mut legacy_op = None;
    let mut legacy_value = None;
    for (k, val) in obj {
        if let Some(all) = group_key(k) {
            if group.is_some() {
                return Err(bad("a condition has both allOf and anyOf"));
            }
            group = Some((all, parse_list(val, depth)?));
        } else if k == "claim" {
            claim = Some(val.as_str().ok_or_else(|| bad("claim must be a string"))?.to_string());
        } else if k == "condition" {
            let name = val.as_str().ok_or_else(|| bad("condition must be a string"))?;
            legacy_op = Some(Operator::parse(name).ok_or_else(|| bad(format!("unknown operator '{name}'")))?);
        } else if k == "value" {
            check_value(val)?;
            legacy_value = Some(val.clone());
        } else if let Some(o) = Operator::parse(k) {
            if op.is_some() {
                return Err(bad("a claim condition has more than one operator"));
            }
            check_value(val)?;
            op = Some((o, val.clone()));
        } else {
            return Err(bad(format!("unknown member '{k}'")));
        }
    }
    if let (Some(o), Some(v)) = (legacy_op, legacy_value) {
        if op.is_some() {
            return Err(bad("a claim condition has more than one operator"));
        }
        op = Some((o, v));
    } else if legacy_op.is_some() {
        return Err(bad("'condition' needs a 'value'"));
    }
    match (claim, group, op) {
        (None, Some((true, l)), None) => Ok(Condition::AllOf(l)),
        (None, Some((false, l)), None) => Ok(Condition::AnyOf(l)),
        (Some(claim), None, Some((op, value))) => {
            if claim.is_empty() {
                return Err(bad("claim must not be empty"));
            }
            if op == Operator::Exists && !value.is_boolean() {
                return Err(bad("exists takes a boolean (true or false, not a string or a number)"));
            }
            Ok(Condition::Claim { claim, op, value })
        }
        _ => Err(bad(
            "a condition is either {\"claim\", <operator>: value} or {\"allOf\"|\"anyOf\": [...]}",
        )),
    }
}

impl ReleasePolicy {
    /// Parses the policy JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let v: Value = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
        let obj = v.as_object().ok_or_else(|| bad("the policy must be a JSON object"))?;
        let mut version = None;
        let mut authorities = None;
        for (k, val) in obj {
            if k == "version" {
                version = Some(val.as_str().ok_or_else(|| bad("version must be a string"))?.to_string());
            } else if k.eq_ignore_ascii_case("anyOf") {
                let list = val.as_array().ok_or_else(|| bad("anyOf must be an array"))?;
                if list.is_empty() {
                    return Err(bad("anyOf must name at least one authority"));
                }
                authorities = Some(list.iter().map(parse_authority).collect::<Result<Vec<_>, _>>()?);
            } else {
                return Err(bad(format!("unknown member '{k}'")));
            }
        }
        Ok(Self {
            version,
            authorities: authorities.ok_or_else(|| bad("anyOf is required"))?,
        })
    }

    /// The canonical JSON value (sorted members, camelCase groups, modern operator form).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "anyOf".into(),
            Value::Array(
                self.authorities
                    .iter()
                    .map(|a| {
                        let mut o = match condition_json(&a.condition) {
                            Value::Object(o) => o,
                            _ => Map::new(),
                        };
                        o.insert("authority".into(), Value::String(a.authority.clone()));
                        Value::Object(o)
                    })
                    .collect(),
            ),
        );
        if let Some(v) = &self.version {
            m.insert("version".into(), Value::String(v.clone()));
        }
        Value::Object(m)
    }

    /// The authorities whose `authority` matches `issuer` (normalised).
    pub fn authorities_for<'a>(&'a self, issuer: &str) -> impl Iterator<Item = &'a Authority> {
        let iss = normalize_issuer(issuer);
        self.authorities
            .iter()
            .filter(move |a| normalize_issuer(&a.authority) == iss)
    }

    /// Whether verified `claims` issued by `issuer` satisfy the policy: some authority object for that issuer
    /// has a passing condition.
    pub fn evaluate(&self, issuer: &str, claims: &Value) -> bool {
        self.authorities_for(issuer).any(|a| a.condition.eval(claims))
    }
}

fn parse_authority(v: &Value) -> Result<Authority, Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("an authority entry must be an object"))?;
    let mut authority = None;
    let mut group = None;
    for (k, val) in obj {
        if k == "authority" {
            let a = val.as_str().ok_or_else(|| bad("authority must be a string"))?;
            if a.is_empty() {
                return Err(bad("authority must not be empty"));
            }
            authority = Some(a.to_string());
        } else if let Some(all) = group_key(k) {
            if group.is_some() {
                return Err(bad("an authority has both allOf and anyOf"));
            }
            let l = parse_list(val, 0)?;
            group = Some(if all { Condition::AllOf(l) } else { Condition::AnyOf(l) });
        } else {
            return Err(bad(format!("unknown member '{k}' in an authority entry")));
        }
    }
    Ok(Authority {
        authority: authority.ok_or_else(|| bad("an authority entry needs 'authority'"))?,
        condition: group.ok_or_else(|| bad("an authority entry needs allOf or anyOf"))?,
    })
}

fn condition_json(c: &Condition) -> Value {
    match c {
        Condition::Claim { claim, op, value } => {
            let mut m = Map::new();
            m.insert("claim".into(), Value::String(claim.clone()));
            m.insert(op.name().into(), value.clone());
            Value::Object(m)
        }
        Condition::AllOf(l) => json!({"allOf": l.iter().map(condition_json).collect::<Vec<_>>()}),
        Condition::AnyOf(l) => json!({"anyOf": l.iter().map(condition_json).collect::<Vec<_>>()}),
    }
}

/// Lower-cases scheme and host and drops one trailing `/`.
pub fn normalize_issuer(s: &str) -> String {
    let s = s.strip_suffix('/').unwrap_or(s);
    match s.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => s.to_string(),
    }
}

fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, seg| v.as_object()?.get(seg))
}

fn looks_hex(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn equals(claim: &Value, want: &Value) -> bool {
    match (claim, want) {
        (Value::String(a), Value::String(b)) => a == b || (looks_hex(a) && looks_hex(b) && a.eq_ignore_ascii_case(b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(_), Value::Bool(_) | Value::Number(_))
        | (Value::Bool(_) | Value::Number(_), Value::String(_)) => scalar_text(claim) == scalar_text(want),
        _ => false,
    }
}

impl Condition {
    fn eval(&self, claims: &Value) -> bool {
        match self {
            Self::AllOf(l) => l.iter().all(|c| c.eval(claims)),
            Self::AnyOf(l) => l.iter().any(|c| c.eval(claims)),
            Self::Claim { claim, op, value } => {
                let found = lookup(claims, claim);
                if *op == Operator::Exists {
                    return found.is_some() == value.as_bool().unwrap_or(true);
                }
                let Some(found) = found else {
                    return false;
                };
                let ord = || found.as_f64()?.partial_cmp(&value.as_f64()?);
                use std::cmp::Ordering::{Equal, Greater, Less};
                match op {
                    Operator::Equals => equals(found, value),
                    Operator::NotEquals => !equals(found, value),
                    Operator::Less => ord() == Some(Less),
                    Operator::LessOrEquals => matches!(ord(), Some(Less | Equal)),
                    Operator::Greater => ord() == Some(Greater),
                    Operator::GreaterOrEquals => matches!(ord(), Some(Greater | Equal)),
                    Operator::Exists => false,
                }
            }
        }
    }
}

/// The stored transport form (`{"contentType", "immutable", "data"}`) of a policy given on create, import or
/// update: checked and rewritten with the canonical policy in `data` and the default `contentType`.
pub fn normalize(transport: &str) -> Result<String, Error> {
    let v: Value = serde_json::from_str(transport).map_err(|_| bad("release_policy is not an object"))?;
    let content_type = match v.get("contentType") {
        None | Some(Value::Null) => DEFAULT_CONTENT_TYPE.to_string(),
        Some(Value::String(s)) if s.trim().to_ascii_lowercase().starts_with("application/json") => s.clone(),
        Some(_) => return Err(bad("contentType must be application/json")),
    };
    if v.get("immutable").and_then(Value::as_bool) == Some(true) {
        return Err(Error::BadParameter(
            "Immutable release policies are not supported on Managed HSM.".into(),
        ));
    }
    let policy = parse_transport_data(&v)?;
    Ok(json!({
        "contentType": content_type,
        "immutable": false,
        "data": URL_SAFE_NO_PAD.encode(policy.to_json().to_string()),
    })
    .to_string())
}

fn parse_transport_data(v: &Value) -> Result<ReleasePolicy, Error> {
    let data = v
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("release_policy.data is required"))?;
    let bytes = crate::ops::byok::decode_base64_lenient(data).ok_or_else(|| bad("data is not base64url"))?;
    ReleasePolicy::parse(&bytes)
}

/// The policy of a stored transport form.
pub fn from_stored(transport: &str) -> Result<ReleasePolicy, Error> {
    let v: Value = serde_json::from_str(transport).map_err(|_| bad("stored release_policy is not an object"))?;
    parse_transport_data(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ReleasePolicy {
        ReleasePolicy::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn canonical_form_keeps_types_and_sorts_members() {
        let pol = p(
            r#"{"anyOf":[{"anyOf":[{"claim":"sdk-test","equals":true}],"authority":"https://a.example/"}],"version":"1.0.0"}"#,
        );
        assert_eq!(
            pol.to_json().to_string(),
            r#"{"anyOf":[{"anyOf":[{"claim":"sdk-test","equals":true}],"authority":"https://a.example/"}],"version":"1.0.0"}"#
        );
        let legacy = p(r#"{"AnyOf":[{"authority":"x","allof":[{"claim":"c","condition":"equals","value":"v"}]}]}"#);
        assert_eq!(
            legacy.to_json().to_string(),
            r#"{"anyOf":[{"allOf":[{"claim":"c","equals":"v"}],"authority":"x"}]}"#
        );
    }

    #[test]
    fn grammar_errors() {
        for bad in [
            r#"{"anyOf":[]}"#,
            r#"{}"#,
            r#"{"anyOf":[{"authority":"x"}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","equals":[1]}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","equals":1}],"anyOf":[{"claim":"c","equals":1}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","equals":1,"less":2}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","like":1}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","exists":"false"}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","condition":"exists","value":"true"}]}]}"#,
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","exists":1}]}]}"#,
        ] {
            assert!(ReleasePolicy::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let msg = |s: &str| ReleasePolicy::parse(s.as_bytes()).unwrap_err().to_string();
        // Both groups, each valid on its own: the both-groups check is what refuses it.
        let both = msg(
            r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","equals":1}],"anyOf":[{"claim":"c","equals":1}]}]}"#,
        );
        assert!(both.contains("both allOf and anyOf"), "{both}");
        let exists = msg(r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","exists":"false"}]}]}"#);
        assert!(exists.contains("exists takes a boolean"), "{exists}");
        // A boolean is accepted, either way round.
        let pol = p(r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","exists":false}]}]}"#);
        assert!(pol.evaluate("x", &json!({})));
        assert!(!pol.evaluate("x", &json!({"c": 1})));
        let pol = p(r#"{"anyOf":[{"authority":"x","allOf":[{"claim":"c","exists":true}]}]}"#);
        assert!(pol.evaluate("x", &json!({"c": 1})));
    }

    #[test]
    fn evaluation() {
        let pol = p(r#"{"anyOf":[{"authority":"https://MAA.example/","allOf":[
            {"anyOf":[{"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"sevsnpvm"},
                      {"claim":"x-ms-isolation-tee.x-ms-attestation-type","equals":"tdxvm"}]},
            {"claim":"debug","equals":"false"},
            {"claim":"svn","greaterOrEquals":3},
            {"claim":"hash","equals":"ABCDEF0123456789ABCDEF0123456789"}]}]}"#);
        let claims = json!({"x-ms-isolation-tee":{"x-ms-attestation-type":"tdxvm"},"debug":false,"svn":4,
            "hash":"abcdef0123456789abcdef0123456789"});
        assert!(pol.evaluate("https://maa.example", &claims));
        assert!(!pol.evaluate("https://other.example", &claims));
        let mut c2 = claims.clone();
        c2["svn"] = json!(2);
        assert!(!pol.evaluate("https://maa.example", &c2));
        let mut c3 = claims.clone();
        c3["x-ms-isolation-tee"] = json!({});
        assert!(!pol.evaluate("https://maa.example", &c3));
        let mut c4 = claims;
        c4["svn"] = json!("9");
        assert!(!pol.evaluate("https://maa.example", &c4), "ordering needs numbers");
    }

    #[test]
    fn transport() {
        let data = URL_SAFE_NO_PAD.encode(r#"{"anyOf":[{"authority":"a","allOf":[{"claim":"c","equals":1}]}]}"#);
        let n = normalize(&json!({"data": data}).to_string()).unwrap();
        let v: Value = serde_json::from_str(&n).unwrap();
        assert_eq!(v["contentType"], DEFAULT_CONTENT_TYPE);
        assert_eq!(v["immutable"], false);
        assert!(normalize(&json!({"data": data, "immutable": true}).to_string()).is_err());
        assert!(normalize(&json!({"data": data, "contentType": "text/plain"}).to_string()).is_err());
        assert!(normalize(&json!({"data": "e30"}).to_string()).is_err());
        assert_eq!(from_stored(&n).unwrap().authorities.len(), 1);
    }
}
