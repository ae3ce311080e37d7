//! Client assertions (RFC 7523) at the built-in token service (issue 12, item 3): an assertion must carry `iat` and
//! `exp`, live at most 10 minutes, and each `jti` is accepted once, also after a restart (it is remembered in the
//! store until the assertion expires).
use coffer_testkit::TestServer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A certificate registered for the bootstrap principal, and its signing key.
struct Client {
    encoding: EncodingKey,
    x5t: String,
}

async fn register_certificate(s: &TestServer) -> Client {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let path = format!(
        "/coffer/v1/principals/{}/certificates?api-version=7.6",
        s.cred("object_id")
    );
    let (st, body) = s
        .call(reqwest::Method::POST, &path, Some(json!({"certificate": cert.pem()})))
        .await
        .unwrap();
    assert_eq!(st, 201, "{body}");
    let sha1 = coffer_crypto::hash::sha1(cert.der());
    Client {
        encoding: EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap(),
        x5t: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha1),
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

fn sign(c: &Client, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.x5t = Some(c.x5t.clone());
    jsonwebtoken::encode(&h, claims, &c.encoding).unwrap()
}

/// The claims an MSAL client sends (10-minute lifetime), with a fresh `jti`.
fn claims(s: &TestServer) -> Value {
    let t = now();
    json!({
        "aud": s.token_endpoint(), "iss": s.cred("client_id"), "sub": s.cred("client_id"),
        "jti": coffer_testkit::uuid_like(), "iat": t, "nbf": t, "exp": t + 600,
    })
}

/// Posts a client-credentials request with `assertion`; (status, body).
async fn token_request(s: &TestServer, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &s.cred("client_id")),
        ("scope", &format!("{}/.default", s.url())),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    let r = s.client.post(s.token_endpoint()).form(&form).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

fn assert_refused((st, body): &(u16, Value), what: &str) {
    assert_eq!(*st, 401, "{what}: {body}");
    assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    assert!(body.get("access_token").is_none(), "{what}: {body}");
}

#[tokio::test]
async fn client_assertions_need_iat_and_a_short_lifetime_and_are_accepted_once() {
    let mut s = TestServer::builder().start().await.unwrap();
    let c = register_certificate(&s).await;

    // Control: a well-formed assertion is accepted.
    let ok = sign(&c, &claims(&s));
    let (st, body) = token_request(&s, &ok).await;
    assert_eq!(st, 200, "{body}");
    assert!(body["access_token"].is_string());

    // Replay: the same assertion (same jti) a second time.
    assert_refused(&token_request(&s, &ok).await, "replayed assertion");
    // The same jti in a new assertion is a replay too.
    let mut again = claims(&s);
    again["jti"] = json!("fixed-jti-1");
    assert_eq!(token_request(&s, &sign(&c, &again)).await.0, 200);
    let mut replay = claims(&s);
    replay["jti"] = json!("fixed-jti-1");
    assert_refused(&token_request(&s, &sign(&c, &replay)).await, "reused jti");

    // No iat, no jti, an hour-long lifetime: refused.
    let mut no_iat = claims(&s);
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_refused(&token_request(&s, &sign(&c, &no_iat)).await, "no iat");
    let mut no_jti = claims(&s);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_refused(&token_request(&s, &sign(&c, &no_jti)).await, "no jti");
    let mut long = claims(&s);
    long["exp"] = json!(now() + 3600);
    assert_refused(&token_request(&s, &sign(&c, &long)).await, "one-hour lifetime");

    // The jti memory is in the store: a restart does not make the assertion usable again.
    s.restart().await.unwrap();
    let (st, body) = token_request(&s, &ok).await;
    assert_eq!(st, 401, "replay after a restart: {body}");
    // A fresh one still works.
    assert_eq!(token_request(&s, &sign(&c, &claims(&s))).await.0, 200);
}
