//! Replay rules for client assertions (RFC 7523) at the built-in token service, applied after the signature,
//! audience, issuer, subject and times were verified (`coffer_crypto::jwt::verify_client_assertion`):
//!
//! - `iat` and `exp` are required, and the assertion may live at most [`MAX_LIFETIME_SECS`] (`exp - iat`; MSAL
//!   clients make them exactly 10 minutes long);
//! - `jti` is required, and each one is accepted once per client: the store remembers it until the assertion can no
//!   longer be accepted (`exp` plus the verification leeway), so the rule holds across restarts (and nodes sharing the
//!   store). Remembered ids whose assertions have expired are pruned on every write.
use serde_json::Value;

/// The longest accepted assertion lifetime (`exp - iat`), seconds.
pub const MAX_LIFETIME_SECS: i64 = 600;
/// The longest accepted `jti`, bytes.
pub const MAX_JTI_LEN: usize = 256;

/// What the replay check needs from verified assertion claims.
#[derive(Debug, PartialEq, Eq)]
pub struct AssertionId {
    /// The `jti`.
    pub jti: String,
    /// Until when (Unix seconds) the `jti` must be remembered: the last second the assertion is still accepted.
    pub remember_until: i64,
}

fn int_claim(claims: &Value, name: &str) -> Option<i64> {
    claims.get(name).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    })
}

/// Checks the claims of a verified assertion against the replay rules; the reason for a refusal (logged, never sent
/// to the client).
pub fn check(claims: &Value, now: i64) -> Result<AssertionId, &'static str> {
    let iat = int_claim(claims, "iat").ok_or("the assertion has no iat")?;
    let exp = int_claim(claims, "exp").ok_or("the assertion has no exp")?;
    let leeway = i64::try_from(coffer_crypto::jwt::CLIENT_ASSERTION_LEEWAY).unwrap_or(i64::MAX);
    if exp < iat {
        return Err("the assertion expires before it was issued");
    }
    if exp.checked_sub(iat).is_none_or(|l| l > MAX_LIFETIME_SECS) {
        return Err("the assertion lives longer than 10 minutes");
    }
    // Issued in the future (a long-lived assertion dressed up as a short one, whose jti would also be remembered
    // for as long).
    if iat > now.saturating_add(leeway) || exp > now.saturating_add(MAX_LIFETIME_SECS).saturating_add(leeway) {
        return Err("the assertion was issued in the future");
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or("the assertion has no jti")?;
    if jti.len() > MAX_JTI_LEN {
        return Err("the assertion's jti is too long");
    }
    Ok(AssertionId {
        jti: jti.to_string(),
        remember_until: exp.saturating_add(leeway),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iat_exp_lifetime_and_jti_are_required() {
        let ok = check(&json!({"iat": 1000, "exp": 1600, "jti": "a"}), 1000).unwrap();
        assert_eq!(ok.jti, "a");
        assert_eq!(ok.remember_until, 1600 + 300);
        for bad in [
            json!({"exp": 1600, "jti": "a"}),
            json!({"iat": 1000, "jti": "a"}),
            json!({"iat": 1000, "exp": 1601, "jti": "a"}),
            json!({"iat": 1000, "exp": 999, "jti": "a"}),
            json!({"iat": 1000, "exp": 1600}),
            json!({"iat": 1000, "exp": 1600, "jti": ""}),
            json!({"iat": 1000, "exp": 1600, "jti": 7}),
            json!({"iat": "1000", "exp": 1600, "jti": "a"}),
            json!({"iat": 1000, "exp": 1600, "jti": "x".repeat(257)}),
            // issued a year ahead, ten minutes long
            json!({"iat": 1000 + 31_536_000, "exp": 1600 + 31_536_000, "jti": "a"}),
            // a huge negative iat must not overflow
            json!({"iat": -9.0e18, "exp": 1600, "jti": "a"}),
        ] {
            assert!(check(&bad, 1000).is_err(), "{bad}");
        }
    }
}
