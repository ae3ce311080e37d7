//! JWT issuing and validation, client assertions (RFC 7523) and the local CA / server certificates.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: clippy.toml's test allowances cover only #[test] functions"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_crypto::jwt::{self, TokenSigningKey, TokenValidation};
use coffer_crypto::{Error, x509};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://coffer.local/token";
const AUDIENCE: &str = "https://managedhsm.azure.net";

fn audiences() -> Vec<String> {
    vec!["https://other.example".to_owned(), AUDIENCE.to_owned()]
}

fn validation(audiences: &[String], now: u64, leeway: u64) -> TokenValidation<'_> {
    TokenValidation {
        issuer: ISSUER,
        audiences,
        now,
        leeway,
    }
}

fn claims(exp: u64) -> Value {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "principal-1", "iat": NOW, "exp": exp, "oid": "abc" })
}

fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

fn rejected<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::TokenRejected(reason)) => reason,
        other => panic!("expected TokenRejected, got {other:?}"),
    }
}

/// Replaces the payload of a compact JWS, keeping header and signature.
fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

// ---- Token service key ----

#[test]
fn token_key_sign_verify_round_trip() {
    let key = TokenSigningKey::generate().unwrap();
    let token = key.sign(&claims(NOW + 3600)).unwrap();
    let auds = audiences();
    let got = jwt::verify(&token, &jwks(&[key.public_jwk()]), &validation(&auds, NOW, 0)).unwrap();
    assert_eq!(got, claims(NOW + 3600));

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        (header.alg, header.typ.as_deref(), header.kid.as_deref()),
        (Algorithm::ES256, Some("JWT"), Some(key.kid()))
    );
    assert_eq!(format!("{key:?}"), "TokenSigningKey(..)");
    assert!(matches!(
        key.sign(&json!("not an object")),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn token_key_jwk_and_thumbprint() {
    let key = TokenSigningKey::generate().unwrap();
    let jwk = key.public_jwk();
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["use"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("sig"), Some("ES256"))
    );
    assert_eq!(jwk["kid"].as_str(), Some(key.kid()));
    for c in ["x", "y"] {
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap().len(), 32);
    }
    assert!(jwk.get("d").is_none());
    // The kid is the RFC 7638 thumbprint, as jsonwebtoken computes it independently.
    let parsed: Jwk = serde_json::from_value(jwk).unwrap();
    assert_eq!(parsed.thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
}

#[test]
fn token_key_pkcs8_round_trip() {
    let key = TokenSigningKey::generate().unwrap();
    let restored = TokenSigningKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
    assert_eq!(restored.kid(), key.kid());
    assert_eq!(restored.public_jwk(), key.public_jwk());
    let token = restored.sign(&claims(NOW + 60)).unwrap();
    let auds = audiences();
    jwt::verify(&token, &jwks(&[key.public_jwk()]), &validation(&auds, NOW, 0)).unwrap();
    assert!(matches!(
        TokenSigningKey::from_pkcs8(&coffer_crypto::SecretBytes::new(vec![0x30, 0x00])),
        Err(Error::InvalidKey(_))
    ));
    // A P-384 key is not a token signing key.
    let p384 = coffer_crypto::keys::PrivateKey::generate_ec(coffer_crypto::keys::Curve::P384).unwrap();
    assert!(TokenSigningKey::from_pkcs8(&p384.to_storage_bytes().unwrap()).is_err());
}

// ---- Bearer token validation ----

#[test]
fn verify_checks_time_issuer_audience() {
    let key = TokenSigningKey::generate().unwrap();
    let set = jwks(&[key.public_jwk()]);
    let auds = audiences();

    // exp: rejected from exp on, unless within leeway.
    let token = key.sign(&claims(NOW - 10)).unwrap();
    assert_eq!(
        rejected(jwt::verify(&token, &set, &validation(&auds, NOW, 0))),
        "token expired"
    );
    assert!(jwt::verify(&token, &set, &validation(&auds, NOW, 60)).is_ok());
    let token = key.sign(&claims(NOW)).unwrap();
    assert!(jwt::verify(&token, &set, &validation(&auds, NOW, 0)).is_err());
    assert!(jwt::verify(&token, &set, &validation(&auds, NOW - 1, 0)).is_ok());

    // exp is required, and must be a number.
    let mut c = claims(0);
    c.as_object_mut().unwrap().remove("exp");
    assert!(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0)).is_err());
    c["exp"] = json!("tomorrow");
    assert!(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0)).is_err());

    // nbf in the future is rejected unless within leeway.
    let mut c = claims(NOW + 3600);
    c["nbf"] = json!(NOW + 100);
    let token = key.sign(&c).unwrap();
    assert_eq!(
        rejected(jwt::verify(&token, &set, &validation(&auds, NOW, 0))),
        "token not yet valid"
    );
    assert!(jwt::verify(&token, &set, &validation(&auds, NOW, 100)).is_ok());
    assert!(jwt::verify(&token, &set, &validation(&auds, NOW + 100, 0)).is_ok());

    // Audience.
    let token = key.sign(&claims(NOW + 60)).unwrap();
    let wrong = vec!["https://vault.azure.net".to_owned()];
    assert!(rejected(jwt::verify(&token, &set, &validation(&wrong, NOW, 0))).contains("audience"));
    assert!(jwt::verify(&token, &set, &validation(&[], NOW, 0)).is_err());
    let mut c = claims(NOW + 60);
    c["aud"] = json!(["https://x.example", AUDIENCE]);
    assert!(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0)).is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert!(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0)).is_err());

    // Issuer: exact match, required.
    let mut c = claims(NOW + 60);
    c["iss"] = json!("https://coffer.local/token/");
    assert!(rejected(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0))).contains("issuer"));
    c.as_object_mut().unwrap().remove("iss");
    assert!(jwt::verify(&key.sign(&c).unwrap(), &set, &validation(&auds, NOW, 0)).is_err());
}

#[test]
fn verify_rejects_forgeries() {
    let key = TokenSigningKey::generate().unwrap();
    let set = jwks(&[key.public_jwk()]);
    let auds = audiences();
    let v = validation(&auds, NOW, 0);
    let token = key.sign(&claims(NOW + 60)).unwrap();

    // Changed payload, changed signature.
    let mut forged = claims(NOW + 60);
    forged["sub"] = json!("admin");
    assert_eq!(
        rejected(jwt::verify(&with_payload(&token, &forged), &set, &v)),
        "invalid signature"
    );
    let mut sig = URL_SAFE_NO_PAD.decode(token.rsplit('.').next().unwrap()).unwrap();
    sig[10] ^= 1;
    let head = token.rsplit_once('.').unwrap().0;
    assert!(jwt::verify(&format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig)), &set, &v).is_err());

    // alg "none".
    let none_header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": key.kid() }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims(NOW + 60).to_string());
    assert!(jwt::verify(&format!("{none_header}.{body}."), &set, &v).is_err());

    // HS256 "signed" with the public key as the HMAC secret (algorithm confusion), and a symmetric JWK.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(key.kid().to_owned());
    let secret = key.public_jwk()["x"].as_str().unwrap().to_owned();
    let hs = jsonwebtoken::encode(&h, &claims(NOW + 60), &EncodingKey::from_secret(secret.as_bytes())).unwrap();
    assert_eq!(rejected(jwt::verify(&hs, &set, &v)), "algorithm not allowed");
    let oct_set = jwks(&[json!({ "kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret.as_bytes()), "kid": key.kid() })]);
    assert!(jwt::verify(&hs, &oct_set, &v).is_err());

    // Signed by another key with the same kid.
    let other = TokenSigningKey::generate().unwrap();
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(key.kid().to_owned());
    let der = other.to_pkcs8().unwrap();
    let t = jsonwebtoken::encode(&h, &claims(NOW + 60), &EncodingKey::from_ec_der(der.expose_secret())).unwrap();
    assert_eq!(rejected(jwt::verify(&t, &set, &v)), "invalid signature");

    // Garbage.
    assert!(jwt::verify("a.b.c", &set, &v).is_err());
    assert!(jwt::verify("", &set, &v).is_err());
    assert!(jwt::verify(&token, &json!({}), &v).is_err());
}

#[test]
fn verify_selects_keys_by_kid() {
    let a = TokenSigningKey::generate().unwrap();
    let b = TokenSigningKey::generate().unwrap();
    let auds = audiences();
    let v = validation(&auds, NOW, 0);
    let both = jwks(&[a.public_jwk(), b.public_jwk()]);
    assert!(jwt::verify(&a.sign(&claims(NOW + 60)).unwrap(), &both, &v).is_ok());
    assert!(jwt::verify(&b.sign(&claims(NOW + 60)).unwrap(), &both, &v).is_ok());
    assert!(
        rejected(jwt::verify(
            &a.sign(&claims(NOW + 60)).unwrap(),
            &jwks(&[b.public_jwk()]),
            &v
        ))
        .contains("kid")
    );

    // No kid: accepted only when the set holds exactly one key.
    let der = a.to_pkcs8().unwrap();
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims(NOW + 60),
        &EncodingKey::from_ec_der(der.expose_secret()),
    )
    .unwrap();
    assert!(jwt::verify(&no_kid, &jwks(&[a.public_jwk()]), &v).is_ok());
    assert!(jwt::verify(&no_kid, &both, &v).is_err());

    // A JWK whose alg or use does not allow the token is not used.
    let mut wrong_alg = a.public_jwk();
    wrong_alg["alg"] = json!("ES384");
    assert!(jwt::verify(&a.sign(&claims(NOW + 60)).unwrap(), &jwks(&[wrong_alg]), &v).is_err());
    let mut enc_use = a.public_jwk();
    enc_use["use"] = json!("enc");
    assert!(jwt::verify(&a.sign(&claims(NOW + 60)).unwrap(), &jwks(&[enc_use]), &v).is_err());
    // Unparseable keys in the set are skipped, not fatal.
    let set = jwks(&[json!({ "kty": "weird", "kid": "x" }), a.public_jwk()]);
    assert!(jwt::verify(&a.sign(&claims(NOW + 60)).unwrap(), &set, &v).is_ok());
}

/// An RSA key made by rcgen (aws-lc-rs), as an issuer like Entra would hold it.
fn rsa_issuer() -> (rcgen::KeyPair, EncodingKey) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let enc = EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap();
    (key, enc)
}

#[test]
fn verify_rsa_bearer_tokens_from_a_jwks() {
    let (_, enc) = rsa_issuer();
    let auds = audiences();
    let v = validation(&auds, NOW, 0);
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&enc, alg).unwrap()).unwrap();
        jwk["kid"] = json!("rsa-1");
        let mut h = Header::new(alg);
        h.kid = Some("rsa-1".to_owned());
        let token = jsonwebtoken::encode(&h, &claims(NOW + 60), &enc).unwrap();
        let got = jwt::verify(&token, &jwks(&[jwk.clone()]), &v).unwrap();
        assert_eq!(got["oid"], "abc", "{alg:?}");
        assert!(jwt::verify(&with_payload(&token, &claims(NOW + 7200)), &jwks(&[jwk]), &v).is_err());
    }
    // The JWK must be of the algorithm's type and curve.
    let key = TokenSigningKey::generate().unwrap();
    let es256 = key.sign(&claims(NOW + 60)).unwrap();
    let mut wrong_curve = key.public_jwk();
    wrong_curve["crv"] = json!("P-384");
    wrong_curve.as_object_mut().unwrap().remove("alg");
    assert!(rejected(jwt::verify(&es256, &jwks(&[wrong_curve]), &v)).contains("curve"));
    let mut rsa_jwk = serde_json::to_value(Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap()).unwrap();
    rsa_jwk["kid"] = json!(key.kid());
    rsa_jwk.as_object_mut().unwrap().remove("alg");
    assert!(rejected(jwt::verify(&es256, &jwks(&[rsa_jwk]), &v)).contains("key type"));
}

// ---- Client assertions (RFC 7523) ----

struct Client {
    cert_der: Vec<u8>,
    encoding: EncodingKey,
}

fn client_with_certificate() -> Client {
    let (key, encoding) = rsa_issuer();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Client {
        cert_der: cert.der().to_vec(),
        encoding,
    }
}

const CLIENT_ID: &str = "00000000-1111-2222-3333-444444444444";
const TOKEN_URL: &str = "https://coffer.local/tenant/oauth2/v2.0/token";

fn assertion_claims(exp: u64) -> Value {
    json!({ "aud": TOKEN_URL, "iss": CLIENT_ID, "sub": CLIENT_ID, "jti": "j1", "nbf": NOW - 5, "exp": exp })
}

fn assertion(client: &Client, alg: Algorithm, x5t: Option<String>, x5t_s256: Option<String>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.x5t = x5t;
    h.x5t_s256 = x5t_s256;
    jsonwebtoken::encode(&h, claims, &client.encoding).unwrap()
}

#[test]
fn client_assertion_rs256_with_x5t_and_ps256_with_x5t_s256() {
    let client = client_with_certificate();
    let unrelated = client_with_certificate();
    let certs = vec![unrelated.cert_der.clone(), client.cert_der.clone()];
    let sha1 = x509::thumbprint_sha1(&client.cert_der);
    let sha256 = x509::thumbprint_sha256(&client.cert_der);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&sha1).unwrap(),
        coffer_crypto::hash::sha1(&client.cert_der)
    );

    let t = assertion(
        &client,
        Algorithm::RS256,
        Some(sha1.clone()),
        None,
        &assertion_claims(NOW + 600),
    );
    let got = jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).unwrap();
    assert_eq!(got["jti"], "j1");
    let t = assertion(
        &client,
        Algorithm::PS256,
        None,
        Some(sha256.clone()),
        &assertion_claims(NOW + 600),
    );
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_ok());
    // Both thumbprints naming the same certificate is fine; naming different ones is not.
    let t = assertion(
        &client,
        Algorithm::RS256,
        Some(sha1),
        Some(sha256.clone()),
        &assertion_claims(NOW + 600),
    );
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_ok());
    let t = assertion(
        &client,
        Algorithm::RS256,
        Some(x509::thumbprint_sha1(&unrelated.cert_der)),
        Some(sha256),
        &assertion_claims(NOW + 600),
    );
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());
    // Standard-alphabet padded base64 thumbprints are accepted too.
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(coffer_crypto::hash::sha1(&client.cert_der));
    let t = assertion(
        &client,
        Algorithm::RS256,
        Some(std_b64),
        None,
        &assertion_claims(NOW + 600),
    );
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_ok());
}

#[test]
fn client_assertion_rejections() {
    let client = client_with_certificate();
    let unrelated = client_with_certificate();
    let certs = vec![client.cert_der.clone()];
    let x5t = Some(x509::thumbprint_sha1(&client.cert_der));
    let ok = |c: &Value| assertion(&client, Algorithm::RS256, x5t.clone(), None, c);

    // Thumbprint of a certificate that is not registered; no thumbprint at all; signed by another key.
    let t = assertion(
        &client,
        Algorithm::RS256,
        Some(x509::thumbprint_sha1(&unrelated.cert_der)),
        None,
        &assertion_claims(NOW + 600),
    );
    assert!(rejected(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW)).contains("thumbprint"));
    let t = assertion(&client, Algorithm::RS256, None, None, &assertion_claims(NOW + 600));
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());
    let t = assertion(
        &unrelated,
        Algorithm::RS256,
        x5t.clone(),
        None,
        &assertion_claims(NOW + 600),
    );
    assert_eq!(
        rejected(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW)),
        "invalid signature"
    );

    // Claims.
    assert!(
        jwt::verify_client_assertion(
            &ok(&assertion_claims(NOW + 600)),
            &certs,
            "https://elsewhere",
            CLIENT_ID,
            NOW
        )
        .is_err()
    );
    assert!(
        jwt::verify_client_assertion(
            &ok(&assertion_claims(NOW + 600)),
            &certs,
            TOKEN_URL,
            "another-client",
            NOW
        )
        .is_err()
    );
    let mut c = assertion_claims(NOW + 600);
    c["sub"] = json!("someone-else");
    assert!(rejected(jwt::verify_client_assertion(&ok(&c), &certs, TOKEN_URL, CLIENT_ID, NOW)).contains("subject"));
    let mut c = assertion_claims(NOW + 600);
    c.as_object_mut().unwrap().remove("sub");
    assert!(jwt::verify_client_assertion(&ok(&c), &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());
    let mut c = assertion_claims(NOW + 600);
    c.as_object_mut().unwrap().remove("exp");
    assert!(jwt::verify_client_assertion(&ok(&c), &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());

    // exp/nbf with the fixed 300 s leeway.
    let t = ok(&assertion_claims(NOW - 200));
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_ok());
    let t = ok(&assertion_claims(NOW - 301));
    assert_eq!(
        rejected(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW)),
        "token expired"
    );
    let mut c = assertion_claims(NOW + 3600);
    c["nbf"] = json!(NOW + 400);
    assert!(jwt::verify_client_assertion(&ok(&c), &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());

    // Only RS256 and PS256.
    let t = assertion(
        &client,
        Algorithm::RS512,
        x5t.clone(),
        None,
        &assertion_claims(NOW + 600),
    );
    assert!(jwt::verify_client_assertion(&t, &certs, TOKEN_URL, CLIENT_ID, NOW).is_err());

    // A certificate with an EC key cannot be a client credential.
    let ec_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&ec_key)
        .unwrap();
    let ec_der = ec_cert.der().to_vec();
    let ec_enc = EncodingKey::from_ec_der(&ec_key.serialize_der());
    let mut h = Header::new(Algorithm::ES256);
    h.x5t = Some(x509::thumbprint_sha1(&ec_der));
    let t = jsonwebtoken::encode(&h, &assertion_claims(NOW + 600), &ec_enc).unwrap();
    assert!(jwt::verify_client_assertion(&t, std::slice::from_ref(&ec_der), TOKEN_URL, CLIENT_ID, NOW).is_err());
    assert!(matches!(
        x509::check_client_certificate(&ec_der),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn check_client_certificate_returns_subject() {
    let (key, _) = rsa_issuer();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "coffer-test-client");
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let subject = x509::check_client_certificate(&der).unwrap();
    assert!(subject.contains("CN=coffer-test-client"), "{subject}");
    assert!(x509::check_client_certificate(&der[..der.len() - 1]).is_err());
    assert!(x509::check_client_certificate(&[der, vec![0]].concat()).is_err());
    assert!(x509::check_client_certificate(b"not a certificate").is_err());
}

// ---- Certificates ----

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

fn key_ids(cert: &X509Certificate<'_>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut ski, mut aki) = (None, None);
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => aki = a.key_identifier.as_ref().map(|k| k.0.to_vec()),
            _ => {}
        }
    }
    (ski, aki)
}

#[test]
fn local_ca_and_server_certificate() {
    let ca = x509::generate_ca_at("Coffer Local CA", NOW).unwrap();
    assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let ca_key_pem = std::str::from_utf8(ca.key_pem.expose_secret()).unwrap();
    assert!(ca_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{ca:?}").contains("PRIVATE"));
    let ca_der = x509::certificates_from_pem(&ca.cert_pem).unwrap().remove(0);
    let ca_cert = parse(&ca_der);

    assert_eq!(ca_cert.subject().to_string(), "CN=Coffer Local CA");
    assert_eq!(ca_cert.issuer(), ca_cert.subject());
    let bc = ca_cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = ca_cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
    let (ca_ski, ca_aki) = key_ids(&ca_cert);
    let ca_ski = ca_ski.expect("CA subject key identifier");
    assert_eq!(ca_aki.as_deref(), Some(ca_ski.as_slice()));
    ca_cert.verify_signature(None).unwrap();
    let validity = ca_cert.validity();
    assert!(validity.not_before.timestamp() <= NOW as i64);
    assert!(validity.not_after.timestamp() >= (NOW + 9 * 365 * 86400) as i64);
    assert_eq!(
        ca_cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    ); // id-ecPublicKey
    assert_eq!(
        ca_cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    ); // ecdsa-with-SHA256

    let dns = vec!["localhost".to_owned(), "coffer.local".to_owned()];
    let ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let server = x509::issue_server_certificate_at(&ca, &dns, &ips, NOW).unwrap();
    let server_der = x509::certificates_from_pem(&server.cert_pem).unwrap().remove(0);
    let cert = parse(&server_der);
    assert_eq!(cert.subject().to_string(), "CN=localhost");
    assert_eq!(cert.issuer(), ca_cert.subject());
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    assert!(
        cert.verify_signature(None).is_err(),
        "server certificate must not be self-signed"
    );

    let sans = cert.subject_alternative_name().unwrap().unwrap();
    let mut dns_found = Vec::new();
    let mut ips_found = Vec::new();
    for name in &sans.value.general_names {
        match name {
            GeneralName::DNSName(d) => dns_found.push(d.to_string()),
            GeneralName::IPAddress(ip) => ips_found.push(ip.to_vec()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert_eq!(dns_found, dns);
    assert_eq!(
        ips_found,
        vec![vec![127, 0, 0, 1], Ipv6Addr::LOCALHOST.octets().to_vec()]
    );
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth && !eku.value.any);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.value.digital_signature() && !ku.value.key_cert_sign());
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    let (ski, aki) = key_ids(&cert);
    assert!(ski.is_some());
    assert_eq!(aki, Some(ca_ski));
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert!(lifetime > 300 * 86400 && lifetime <= 397 * 86400, "{lifetime}");
    assert_ne!(cert.raw_serial(), ca_cert.raw_serial());

    // The server key is a P-256 PKCS#8 key that matches the certificate.
    let server_key = rcgen::KeyPair::from_pem(std::str::from_utf8(server.key_pem.expose_secret()).unwrap()).unwrap();
    assert_eq!(
        server_key.public_key_raw(),
        cert.public_key().subject_public_key.data.as_ref()
    );

    // PEM bundle with both certificates.
    let bundle = format!("{}{}", server.cert_pem, ca.cert_pem);
    assert_eq!(
        x509::certificates_from_pem(&bundle).unwrap(),
        vec![server_der.clone(), ca_der.clone()]
    );
}

#[test]
fn server_certificate_inputs() {
    let ca = x509::generate_ca("Coffer Test CA").unwrap();
    // The clock-reading variants work too.
    let only_ip = x509::issue_server_certificate(&ca, &[], &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]).unwrap();
    let der = x509::certificates_from_pem(&only_ip.cert_pem).unwrap().remove(0);
    assert_eq!(parse(&der).subject().to_string(), "CN=10.0.0.1");
    assert!(matches!(
        x509::issue_server_certificate(&ca, &[], &[]),
        Err(Error::InvalidParameter(_))
    ));
    assert!(x509::issue_server_certificate(&ca, &["bücher.example".to_owned()], &[]).is_err());
    assert!(x509::generate_ca("").is_err());
    let broken = x509::CertifiedKey {
        cert_pem: ca.cert_pem,
        key_pem: coffer_crypto::SecretBytes::new(b"nope".to_vec()),
    };
    assert!(x509::issue_server_certificate(&broken, &["localhost".to_owned()], &[]).is_err());
}

#[test]
fn pem_and_thumbprints() {
    assert!(x509::certificates_from_pem("").is_err());
    assert!(x509::certificates_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    // SHA-1("abc") = a9993e36..., base64url without padding.
    assert_eq!(x509::thumbprint_sha1(b"abc"), "qZk-NkcGgWq6PiVxeFDCbJzQ2J0");
}
