//! The audit record: the Key Vault `AuditEvent` layout that SIEM parsers read, plus the Managed HSM extras
//! (`TenantId`, `PoolName`, `resourceType`). Field names and types follow audit-log.md §2 and §5: `durationMs`
//! is a string, `identity` an object, `resultType` the processing result (`Success` even for 4xx, as Key Vault
//! writes it) and `resultSignature` the HTTP reason phrase. Nothing secret goes in: identity claims only, never
//! the token; the request URI (Key Vault URLs carry no secrets) but never a body.
use serde::{Deserialize, Serialize};

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: String,
    pub resource_id: String,
    #[serde(rename = "TenantId")]
    pub tenant_id: String,
    pub operation_name: String,
    pub operation_version: String,
    pub category: String,
    pub result_type: String,
    pub result_signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_description: Option<String>,
    pub duration_ms: String,
    pub caller_ip_address: String,
    pub correlation_id: String,
    pub identity: Identity,
    pub properties: Properties,
    pub level: String,
    #[serde(rename = "PoolName")]
    pub pool_name: String,
    pub resource_type: String,
}

/// `identity`: claims of the caller's token (never the token).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    pub claim: Claims,
}

/// The identity claims that are logged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// `properties`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    /// The object acted on (key URI, deleted-key URI, or the HSM URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The caller's User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status_code: Option<u16>,
    /// Full request URL with its query string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// The RBAC decision, when the request got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_rbac_authorized: Option<bool>,
    /// The network ACLs' decision on the client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_address_authorized: Option<bool>,
    /// The role assignment that granted the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_assignment_id: Option<String>,
    /// The dataAction the request needed (Coffer's addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// Key facts for key operations (`type`, `size`, `curve`, `operations`, `attributes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_properties: Option<serde_json::Value>,
    /// Extra facts of Coffer's own (background jobs, long-running operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// The generation of the in-memory state the decision used (a write: the generation it published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_generation: Option<u64>,
}

/// What a record needs that does not change per request.
#[derive(Debug, Clone)]
pub struct RecordDefaults {
    pub resource_id: String,
    pub tenant_id: String,
    pub pool_name: String,
}

impl RecordDefaults {
    /// The default `resourceId` for an instance name: the Azure layout, upper case, with a zero subscription.
    pub fn default_resource_id(pool_name: &str) -> String {
        format!(
            "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/COFFER/PROVIDERS/MICROSOFT.KEYVAULT/MANAGEDHSMS/{}",
            pool_name.to_ascii_uppercase()
        )
    }

    /// A record with the constant fields filled in and the rest empty.
    pub fn record(&self, time: String, operation_name: &str) -> AuditRecord {
        AuditRecord {
            time,
            resource_id: self.resource_id.clone(),
            tenant_id: self.tenant_id.clone(),
            operation_name: operation_name.to_string(),
            operation_version: String::new(),
            category: "AuditEvent".into(),
            result_type: "Success".into(),
            result_signature: String::new(),
            result_description: None,
            duration_ms: "0".into(),
            caller_ip_address: String::new(),
            correlation_id: String::new(),
            identity: Identity::default(),
            properties: Properties::default(),
            level: "Informational".into(),
            pool_name: self.pool_name.clone(),
            resource_type: "managedHSMs".into(),
        }
    }
}

/// The HTTP reason phrase Key Vault writes as `resultSignature`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// `time` in the Key Vault form: UTC, 7 fractional digits, `Z`.
pub fn format_time(unix_nanos: i128) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let frac = unix_nanos.rem_euclid(1_000_000_000) / 100;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i128) -> (i128, i128, i128) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a `time` written by [`format_time`] (or any `YYYY-MM-DDTHH:MM:SS[.f]Z`) to unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        // 2024-04-04T06:47:34.7178619Z
        let t: i128 = 1_712_213_254_717_861_900;
        let s = format_time(t);
        assert_eq!(s, "2024-04-04T06:47:34.7178619Z");
        assert_eq!(parse_time(&s), Some(1_712_213_254));
        assert_eq!(format_time(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(parse_time("2000-02-29T23:59:59Z"), Some(951_868_799));
    }
}
