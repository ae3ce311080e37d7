//! Release policies (the JSON grammar) and their evaluation against attestation claims; the input's first line
//! is the policy, the rest the claims (attestation tokens themselves are in the `jwt` target).
#![no_main]
use coffer_core::release_policy::{ReleasePolicy, normalize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let (policy, claims) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    if let Ok(p) = ReleasePolicy::parse(policy) {
        let _ = p.to_json();
        if let Ok(c) = serde_json::from_slice::<serde_json::Value>(claims) {
            let issuer = c.get("iss").and_then(|v| v.as_str()).unwrap_or("https://attest.fuzz");
            let _ = p.evaluate(issuer, &c);
        }
    }
    if let Ok(s) = std::str::from_utf8(policy) {
        let _ = normalize(s);
    }
});
