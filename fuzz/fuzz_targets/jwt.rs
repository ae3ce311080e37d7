//! JWTs: bearer tokens (external issuers), attestation tokens and client assertions as strings; and, behind the
//! signature, the claims: the input as a claims object signed with the fixture key, then verified.
#![no_main]
use coffer_crypto::jwt::{self, TokenValidation};
use coffer_fuzz::{AUDIENCE, ISSUER, NOW, fixtures};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: coffer_fuzz::init(), |data: &[u8]| {
    let f = fixtures();
    let audiences = [AUDIENCE.to_string()];
    let validation = TokenValidation {
        issuer: ISSUER,
        audiences: &audiences,
        now: NOW,
        leeway: 60,
    };
    let algs = ["ES256".to_string(), "RS256".to_string(), "PS256".to_string()];
    let certs = [f.officers[0].cert_der.clone()];
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = jwt::peek(token);
        let _ = jwt::verify(token, &f.jwks, &validation);
        let _ = jwt::verify_attestation(token, &f.jwks, &algs, NOW, 60);
        let _ = jwt::verify_client_assertion(token, &certs, AUDIENCE, "client", NOW);
    }
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(token) = f.signer.sign(&claims)
    {
        let _ = jwt::verify(&token, &f.jwks, &validation);
        let _ = jwt::verify_attestation(&token, &f.jwks, &algs, NOW, 60);
    }
});
