//! Secure Key Release over HTTP (docs/KEY-RELEASE.md): a test attestation authority (an ES256 key made here, its
//! JWK Set in a file the server trusts), a TEE RSA key pair made here, attestation tokens with claims; the release
//! JWS is verified with its `x5c[0]`, `key_hsm` is opened with the TEE private key and the released key is used
//! against the HSM. Every refusal: claim mismatch, expiry, untrusted issuer, wrong signer, non-exportable key,
//! missing permission, bad target, bad `enc`, bad policies.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_core::rbac::builtin::{CRYPTO_AUDITOR, CRYPTO_SERVICE_RELEASE_USER};
use coffer_crypto::byok::byok_unwrap;
use coffer_crypto::hash;
use coffer_crypto::jwt::TokenSigningKey;
use coffer_crypto::keys::{CipherParams, EncryptionAlgorithm, PrivateKey, PublicKey, SignatureAlgorithm};
use coffer_crypto::release::verify_release_jws;
use coffer_crypto::x509::{self, CertifiedKey};
use coffer_server::config::AttestationAuthorityConfig;
use coffer_testkit::{TestServer, TestServerBuilder};
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const ISS: &str = "https://attest.coffer.test";

struct Fixture {
    server: TestServer,
    authority: TokenSigningKey,
    tee: PrivateKey,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(|b| b).await
}

/// [`fixture`] with more server options.
async fn fixture_with(configure: impl FnOnce(TestServerBuilder) -> TestServerBuilder) -> Fixture {
    let authority = TokenSigningKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("attest-jwks.json");
    std::fs::write(&jwks, json!({"keys": [authority.public_jwk()]}).to_string()).unwrap();
    let server = configure(TestServer::builder())
        .attestation_authority(AttestationAuthorityConfig {
            issuer: format!("{ISS}/"),
            jwks_url: None,
            jwks_file: Some(jwks),
            algorithms: vec!["ES256".into()],
            ca_cert: None,
        })
        .start()
        .await
        .unwrap();
    Fixture {
        server,
        authority,
        tee: PrivateKey::generate_rsa(2048).unwrap(),
        _dir: dir,
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn runtime_jwk(tee: &PrivateKey) -> Value {
    let PublicKey::Rsa { n, e } = tee.public_key() else {
        unreachable!()
    };
    json!({"kid": "TpmEphemeralEncryptionKey", "key_ops": ["encrypt"], "kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)})
}

/// Claims an SEV-SNP CVM attestation would carry, plus the SDK test's `sdk-test` claim.
fn claims(tee: &PrivateKey) -> Value {
    let t = now();
    json!({
        "iss": ISS, "iat": t, "nbf": t, "exp": t + 600,
        "sdk-test": true,
        "x-ms-isolation-tee": {"x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm",
            "x-ms-runtime": {"keys": [{"kid": "NotThisOne", "key_ops": ["encrypt"], "kty": "RSA", "n": "AQAB", "e": "AQAB"}]}},
        "x-ms-runtime": {"keys": [{"kid": "signing", "key_ops": ["sign"], "kty": "RSA", "n": "AQAB", "e": "AQAB"}, runtime_jwk(tee)]},
    })
}

fn policy() -> Value {
    let p = json!({"version": "1.0.0", "anyOf": [{"authority": format!("{ISS}/"), "allOf": [
        {"anyOf": [{"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
                   {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "tdxvm"}]},
        {"claim": "x-ms-isolation-tee.x-ms-compliance-status", "equals": "azure-compliant-cvm"},
        {"claim": "sdk-test", "equals": true}]}]});
    json!({"data": B64.encode(p.to_string())})
}

async fn create(s: &TestServer, name: &str, body: Value) -> (u16, Value) {
    s.call(Method::POST, &format!("/keys/{name}/create?{V}"), Some(body))
        .await
        .unwrap()
}

async fn release(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    s.call(Method::POST, &format!("{path}?{V}"), Some(body)).await.unwrap()
}

/// Opens `key_hsm` with the TEE key: `RSA-OAEP(H)` then RFC 5649 (what Microsoft's clients do).
fn open_key_hsm(tee: &PrivateKey, key_hsm: &str, expect_enc: &str) -> Vec<u8> {
    let blob: Value = serde_json::from_slice(&B64.decode(key_hsm).unwrap()).unwrap();
    assert_eq!(blob["schema_version"], "1.0");
    assert_eq!(blob["header"]["kid"], "TpmEphemeralEncryptionKey");
    assert_eq!(blob["header"]["alg"], "dir");
    assert_eq!(blob["header"]["enc"], expect_enc);
    let ct = B64.decode(blob["ciphertext"].as_str().unwrap()).unwrap();
    if expect_enc == "CKM_RSA_AES_KEY_WRAP" {
        return byok_unwrap(tee, &ct).unwrap().expose_secret().to_vec();
    }
    let alg = match expect_enc {
        "RSA_AES_KEY_WRAP_256" => EncryptionAlgorithm::RsaOaep256,
        other => panic!("no local unwrap for {other}"),
    };
    let (c1, c2) = ct.split_at(256);
    let k = tee.decrypt(alg, c1, &CipherParams::default()).unwrap();
    assert_eq!(k.len(), 32, "the transport key is AES-256");
    let aes = PrivateKey::import_oct(k).unwrap();
    aes.decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, c2, &CipherParams::default())
        .unwrap()
        .expose_secret()
        .to_vec()
}

#[tokio::test]
async fn released_ec_key_is_the_hsm_key_and_the_response_verifies() {
    let f = fixture().await;
    let s = &f.server;
    let (st, key) = create(
        s,
        "skr-ec",
        json!({"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},"release_policy":policy()}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    // The stored policy is canonical (JSON types kept) with the default content type.
    let rp = &key["release_policy"];
    assert_eq!(rp["contentType"], "application/json; charset=utf-8");
    assert_eq!(rp["immutable"], false);
    let stored: Value = serde_json::from_slice(&B64.decode(rp["data"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        stored["anyOf"][0]["allOf"][2],
        json!({"claim":"sdk-test","equals":true})
    );
    let kid = key["key"]["kid"].as_str().unwrap().to_string();
    let version = kid.rsplit('/').next().unwrap().to_string();

    let token = f.authority.sign(&claims(&f.tee)).unwrap();
    // The Python SDK's path form: empty version.
    let (st, r) = release(s, "/keys/skr-ec//release", json!({"target": token, "nonce": "n-123"})).await;
    assert_eq!(st, 200, "{r}");
    let (header, payload) = verify_release_jws(r["value"].as_str().unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(header["x5c"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(header["x5t#S256"], B64.encode(hash::sha256(&leaf)));
    assert_eq!(header["kid"].as_str().unwrap().len(), 40);
    assert_eq!(payload["request"]["enc"], "CKM_RSA_AES_KEY_WRAP");
    assert_eq!(payload["request"]["nonce"], "n-123");
    assert_eq!(payload["request"]["kid"], format!("{}/keys/skr-ec", s.url()));
    let released = &payload["response"]["key"];
    assert_eq!(released["key"]["kid"], kid.as_str());
    assert_eq!(released["attributes"]["exportable"], true);
    assert_eq!(released["release_policy"], key["release_policy"]);
    assert!(released["key"]["d"].is_null());
    let key_hsm = released["key"]["key_hsm"].as_str().unwrap().to_string();
    assert!(!key_hsm.is_empty());

    let pkcs8 = open_key_hsm(
        &f.tee,
        released["key"]["key_hsm"].as_str().unwrap(),
        "CKM_RSA_AES_KEY_WRAP",
    );
    let local = PrivateKey::from_pkcs8(&pkcs8).unwrap();
    let PublicKey::Ec { x, y, .. } = local.public_key() else {
        panic!("not EC")
    };
    assert_eq!(B64.encode(x), key["key"]["x"].as_str().unwrap());
    assert_eq!(B64.encode(y), key["key"]["y"].as_str().unwrap());
    // A signature made with the released key verifies with the HSM key.
    let digest = hash::sha256(b"released");
    let sig = local.sign(SignatureAlgorithm::Es256, &digest).unwrap();
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/keys/skr-ec/{version}/verify?{V}"),
            Some(json!({"alg":"ES256","digest":B64.encode(digest),"value":B64.encode(sig)})),
        )
        .await
        .unwrap();
    assert_eq!((st, &v["value"]), (200, &json!(true)), "{v}");

    // The versionless path form, with the versioned form as well.
    let (st, r) = release(
        s,
        "/keys/skr-ec/release",
        json!({"target": f.authority.sign(&claims(&f.tee)).unwrap()}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let (st, r) = release(
        s,
        &format!("/keys/skr-ec/{version}/release"),
        json!({"target": f.authority.sign(&claims(&f.tee)).unwrap()}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let (_, payload) = verify_release_jws(r["value"].as_str().unwrap()).unwrap();
    assert_eq!(payload["request"]["kid"], kid.as_str());
    assert!(payload["request"]["nonce"].is_null());

    // Audit: the release is recorded as KeyRelease, without the token or key_hsm.
    let records = s.audit_records().unwrap();
    let rel: Vec<&Value> = records.iter().filter(|r| r["operationName"] == "KeyRelease").collect();
    assert!(rel.len() >= 3, "{rel:?}");
    assert_eq!(
        rel[0]["properties"]["details"]["keyRelease"],
        json!({"attestationIssuer": ISS, "authority": format!("{ISS}/")})
    );
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(&token));
    assert!(!text.contains(&key_hsm), "the audit log holds the released key_hsm");
}

/// The leaf certificate (DER) a new TLS connection to `url` is served, trusting only `ca_pem`.
async fn served_leaf(url: &str, ca_pem: &str) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .tls_info(true)
        .build()
        .unwrap();
    let resp = client.get(format!("{url}/healthz")).send().await.unwrap();
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(reqwest::tls::TlsInfo::peer_certificate)
        .expect("no peer certificate")
        .to_vec()
}

/// The leaf certificate (DER) in a release JWS's `x5c[0]`, after checking the signature with it.
fn x5c_leaf(jws: &str) -> Vec<u8> {
    let (header, _) = verify_release_jws(jws).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(header["x5c"][0].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_release_jws_carries_the_served_certificate_across_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = x509::generate_ca("Coffer release test CA").unwrap();
    let ca_path = tmp.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let unix_now = u64::try_from(now()).unwrap();
    let install = |age_secs: u64| -> Vec<u8> {
        let leaf: CertifiedKey = x509::issue_server_certificate_at(
            &ca,
            &["localhost".to_string()],
            &[std::net::IpAddr::from([127, 0, 0, 1])],
            unix_now - age_secs,
        )
        .unwrap();
        std::fs::write(tmp.path().join("cert.pem"), format!("{}{}", leaf.cert_pem, ca.cert_pem)).unwrap();
        std::fs::write(tmp.path().join("key.pem"), leaf.key_pem.expose_secret()).unwrap();
        x509::certificates_from_pem(&leaf.cert_pem).unwrap().remove(0)
    };
    let leaf_a = install(86_400);
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let f = fixture_with(|b| b.tls_files(cert, key).trust_ca(ca_path.clone())).await;
    let s = &f.server;
    let (st, key) = create(
        s,
        "skr-reload",
        json!({"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},"release_policy":policy()}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    let release_jws = || async {
        let (st, r) = release(
            s,
            "/keys/skr-reload/release",
            json!({"target": f.authority.sign(&claims(&f.tee)).unwrap()}),
        )
        .await;
        assert_eq!(st, 200, "{r}");
        r["value"].as_str().unwrap().to_string()
    };

    assert_eq!(served_leaf(&s.url(), &ca.cert_pem).await, leaf_a);
    assert_eq!(
        x5c_leaf(&release_jws().await),
        leaf_a,
        "x5c[0] is the served certificate"
    );

    let leaf_b = install(0);
    assert_ne!(leaf_a, leaf_b);
    assert!(s.reload_tls().unwrap());
    assert_eq!(served_leaf(&s.url(), &ca.cert_pem).await, leaf_b);
    assert_eq!(
        x5c_leaf(&release_jws().await),
        leaf_b,
        "after a reload, x5c[0] is the new certificate"
    );
}

#[tokio::test]
async fn released_rsa_and_oct_keys_with_sha256_wrap() {
    let f = fixture().await;
    let s = &f.server;
    let (st, key) = create(
        s,
        "skr-rsa",
        json!({"kty":"RSA-HSM","key_size":2048,"attributes":{"exportable":true},"release_policy":policy()}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    let token = f.authority.sign(&claims(&f.tee)).unwrap();
    let (st, r) = release(
        s,
        "/keys/skr-rsa//release",
        json!({"target": token, "enc": "RSA_AES_KEY_WRAP_256"}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let (_, payload) = verify_release_jws(r["value"].as_str().unwrap()).unwrap();
    assert_eq!(payload["request"]["enc"], "RSA_AES_KEY_WRAP_256");
    let pkcs8 = open_key_hsm(
        &f.tee,
        payload["response"]["key"]["key"]["key_hsm"].as_str().unwrap(),
        "RSA_AES_KEY_WRAP_256",
    );
    let local = PrivateKey::from_pkcs8(&pkcs8).unwrap();
    let PublicKey::Rsa { n, .. } = local.public_key() else {
        panic!("not RSA")
    };
    assert_eq!(B64.encode(n), key["key"]["n"].as_str().unwrap());

    let (st, key) = create(
        s,
        "skr-aes",
        json!({"kty":"oct-HSM","key_size":256,"attributes":{"exportable":true},"release_policy":policy()}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    let (st, r) = release(
        s,
        "/keys/skr-aes//release",
        json!({"target": f.authority.sign(&claims(&f.tee)).unwrap(), "enc": "RSA_AES_KEY_WRAP_256"}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let (_, payload) = verify_release_jws(r["value"].as_str().unwrap()).unwrap();
    assert_eq!(payload["response"]["key"]["key"]["kty"], "oct-HSM");
    let raw = open_key_hsm(
        &f.tee,
        payload["response"]["key"]["key"]["key_hsm"].as_str().unwrap(),
        "RSA_AES_KEY_WRAP_256",
    );
    assert_eq!(raw.len(), 32);
    // The HSM encrypts; the released key decrypts.
    let (st, c) = s
        .call(
            Method::POST,
            &format!("/keys/skr-aes//encrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":B64.encode(b"secret data")})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{c}");
    let d = |k: &str| B64.decode(c[k].as_str().unwrap()).unwrap();
    let (iv, tag) = (d("iv"), d("tag"));
    let local = PrivateKey::import_oct(coffer_crypto::SecretBytes::new(raw)).unwrap();
    let params = CipherParams {
        iv: Some(&iv),
        aad: None,
        tag: Some(&tag),
    };
    let pt = local
        .decrypt(EncryptionAlgorithm::A256Gcm, &d("value"), &params)
        .unwrap();
    assert_eq!(pt.expose_secret(), b"secret data");
}

fn assert_err(st: u16, body: &Value, want_status: u16, msg: &str) {
    assert_eq!(st, want_status, "{body}");
    let m = body["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(msg), "message {m:?} should contain {msg:?}");
}

#[tokio::test]
async fn refusals() {
    let f = fixture().await;
    let s = &f.server;
    let (st, key) = create(
        s,
        "skr",
        json!({"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},"release_policy":policy()}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    let path = "/keys/skr//release";

    // A claim differs.
    let mut c = claims(&f.tee);
    c["x-ms-isolation-tee"]["x-ms-compliance-status"] = json!("not-compliant");
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_err(st, &b, 403, "do not satisfy the key's release policy");
    // A missing claim is not met; a stringified bool still matches ("true" vs true), a wrong one does not.
    let mut c = claims(&f.tee);
    c.as_object_mut().unwrap().remove("sdk-test");
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_err(st, &b, 403, "release policy");
    let mut c = claims(&f.tee);
    c["sdk-test"] = json!("true");
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_eq!(st, 200, "{b}");
    c["sdk-test"] = json!(false);
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_err(st, &b, 403, "release policy");

    // Expired token.
    let mut c = claims(&f.tee);
    c["exp"] = json!(now() - 3600);
    c["nbf"] = json!(now() - 7200);
    c["iat"] = json!(now() - 7200);
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_err(st, &b, 403, "token expired");

    // Untrusted issuer (its own key), and the trusted issuer's name with a foreign key.
    let other = TokenSigningKey::generate().unwrap();
    let mut c = claims(&f.tee);
    c["iss"] = json!("https://evil.example");
    let (st, b) = release(s, path, json!({"target": other.sign(&c).unwrap()})).await;
    assert_err(st, &b, 403, "is not trusted");
    let (st, b) = release(s, path, json!({"target": other.sign(&claims(&f.tee)).unwrap()})).await;
    assert_err(st, &b, 403, "attestation token was rejected");

    // No usable runtime key.
    let mut c = claims(&f.tee);
    c["x-ms-runtime"] = json!({"keys": []});
    let (st, b) = release(s, path, json!({"target": f.authority.sign(&c).unwrap()})).await;
    assert_err(st, &b, 400, "x-ms-runtime");

    // Malformed requests.
    let (st, b) = release(s, path, json!({"target": "not-a-jwt"})).await;
    assert_err(st, &b, 400, "not a valid attestation token");
    let (st, b) = release(s, path, json!({})).await;
    assert_err(st, &b, 400, "required");
    let token = f.authority.sign(&claims(&f.tee)).unwrap();
    let (st, b) = release(s, path, json!({"target": token, "enc": "RSA-OAEP"})).await;
    assert_err(st, &b, 400, "not supported");

    // A non-exportable key: no policy allowed, and no release.
    let (st, b) = create(
        s,
        "plain",
        json!({"kty":"EC-HSM","crv":"P-256","release_policy":policy()}),
    )
    .await;
    assert_err(st, &b, 400, "Non-exportable keys must not have release policy");
    let (st, _) = create(s, "plain", json!({"kty":"EC-HSM","crv":"P-256"})).await;
    assert_eq!(st, 200);
    let (st, b) = release(s, "/keys/plain//release", json!({"target": token})).await;
    assert_err(st, &b, 403, "not exportable");

    // A disabled key.
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/keys/skr/?{V}"),
            Some(json!({"attributes":{"enabled":false}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, b) = release(s, path, json!({"target": token})).await;
    assert_err(st, &b, 403, "disabled");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/keys/skr/?{V}"),
            Some(json!({"attributes":{"enabled":true}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);

    // Permissions: an auditor cannot release; a Crypto Service Release User can (and can do nothing else).
    let auditor = s.new_principal("auditor").await.unwrap();
    s.assign(CRYPTO_AUDITOR, "/", &auditor.object_id).await.unwrap();
    let (st, _) = s
        .call_as(
            &auditor.token,
            Method::POST,
            &format!("{path}?{V}"),
            Some(json!({"target": token})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403);
    let releaser = s.new_principal("releaser").await.unwrap();
    s.assign(CRYPTO_SERVICE_RELEASE_USER, "/keys/skr", &releaser.object_id)
        .await
        .unwrap();
    let (st, b) = s
        .call_as(
            &releaser.token,
            Method::POST,
            &format!("{path}?{V}"),
            Some(json!({"target": token})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    let (st, _) = s
        .call_as(&releaser.token, Method::GET, &format!("/keys/skr?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 403);
}

#[tokio::test]
async fn release_policy_validation() {
    let f = fixture().await;
    let s = &f.server;
    let enc = |p: Value| B64.encode(p.to_string());
    for (name, rp, msg) in [
        (
            "p1",
            json!({"data": enc(json!({"anyOf": []}))}),
            "Invalid release policy",
        ),
        (
            "p2",
            json!({"data": enc(json!({"anyOf": [{"authority": "x", "allOf": [{"claim": "c", "equals": {"a": 1}}]}]}))}),
            "Invalid release policy",
        ),
        (
            "p3",
            json!({"data": enc(json!({"anyOf": [{"authority": "x", "allOf": [{"claim": "c", "equals": 1}]}]})), "immutable": true}),
            "Immutable release policies are not supported",
        ),
        ("p4", json!({"data": "!!!"}), "Invalid release policy"),
    ] {
        let (st, b) = create(
            s,
            name,
            json!({"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},"release_policy":rp}),
        )
        .await;
        assert_err(st, &b, 400, msg);
    }
    // The legacy condition/value form and lower-case group names are accepted and stored canonically; a given
    // content type is echoed.
    let legacy =
        json!({"anyOf": [{"authority": ISS, "allof": [{"claim": "sdk-test", "condition": "equals", "value": true}]}]});
    let (st, key) = create(
        s,
        "legacy",
        json!({"kty":"EC-HSM","crv":"P-256","attributes":{"exportable":true},
               "release_policy":{"data": enc(legacy), "contentType": "application/json; charset=utf-8; version=1.0"}}),
    )
    .await;
    assert_eq!(st, 200, "{key}");
    assert_eq!(
        key["release_policy"]["contentType"],
        "application/json; charset=utf-8; version=1.0"
    );
    let stored: Value =
        serde_json::from_slice(&B64.decode(key["release_policy"]["data"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "sdk-test", "equals": true}]}]})
    );
    // The legacy policy releases.
    let (st, b) = release(
        s,
        "/keys/legacy//release",
        json!({"target": f.authority.sign(&claims(&f.tee)).unwrap()}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    // Update replaces the policy (validated the same way); a policy naming another authority refuses release.
    let other =
        json!({"anyOf": [{"authority": "https://other.example", "allOf": [{"claim": "sdk-test", "equals": true}]}]});
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/legacy/?{V}"),
            Some(json!({"release_policy": {"data": enc(other)}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    let (st, b) = release(
        s,
        "/keys/legacy//release",
        json!({"target": f.authority.sign(&claims(&f.tee)).unwrap()}),
    )
    .await;
    assert_err(st, &b, 403, "does not accept attestation authority");
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/legacy/?{V}"),
            Some(json!({"release_policy": {"data": "e30"}})),
        )
        .await
        .unwrap();
    assert_err(st, &b, 400, "Invalid release policy");
}
