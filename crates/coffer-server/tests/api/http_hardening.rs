//! HTTP hardening found by an API fuzzer (issue 12, item 2b): every path answers a method it does not serve with
//! 405 and an `Allow` header; an oversized body gets 413 over HTTP/2 as over HTTP/1.1; a body not declared as JSON
//! is refused with 415 (the Azure SDKs always declare `application/json`; requests without a body need no
//! Content-Type; the token endpoint takes `application/x-www-form-urlencoded`).
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::Value;

const V: &str = "api-version=7.6";

#[tokio::test]
async fn every_path_answers_an_unserved_method_with_405_and_allow() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let tenant = s.cred("tenant_id");
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::DELETE, format!("/keys?{V}"), "GET"),
        (Method::PUT, format!("/keys?{V}"), "GET"),
        (Method::PATCH, format!("/keys?{V}"), "GET"),
        (Method::POST, format!("/keys?{V}"), "GET"),
        (Method::TRACE, format!("/keys?{V}"), "GET"),
        (Method::POST, format!("/keys/k1?{V}"), "GET, PUT, PATCH, DELETE"),
        (Method::PUT, format!("/deletedkeys?{V}"), "GET"),
        (Method::GET, format!("/rng?{V}"), "POST"),
        (Method::DELETE, format!("/settings?{V}"), "GET"),
        (Method::DELETE, format!("/coffer/v1/network-acls?{V}"), "GET, PUT"),
        (Method::DELETE, "/healthz".to_string(), "GET"),
        (Method::POST, "/healthz".to_string(), "GET"),
        // the token service (no bearer token needed)
        (Method::GET, format!("/{tenant}/oauth2/v2.0/token"), "POST"),
        (Method::DELETE, format!("/{tenant}/oauth2/v2.0/token"), "POST"),
        (Method::POST, format!("/{tenant}/discovery/v2.0/keys"), "GET"),
        (
            Method::PUT,
            format!("/{tenant}/v2.0/.well-known/openid-configuration"),
            "GET",
        ),
        (Method::GET, "/adfs/oauth2/token".to_string(), "POST"),
    ];
    let mut wrong = Vec::new();
    for (method, path, allow) in cases {
        let r = s
            .client
            .request(method.clone(), format!("{}{path}", s.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let got_allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let shaped = body["error"]["code"].is_string() && body["error"]["message"].is_string();
        if st != 405 || got_allow.as_deref() != Some(allow) || !shaped {
            wrong.push(format!(
                "{method} {path}: {st}, Allow {got_allow:?} (want {allow}), {body}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `curl --http2` (HTTP/2 over TLS by ALPN) with `args`; (status, body).
async fn curl_h2(s: &TestServer, args: &[&str]) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args(["--http2", "-sS", "--cacert"])
        .arg(s.ca_path())
        .args(["-o", "-", "-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut it = tail.split(' ');
    let status = it.next().unwrap_or("0").parse().unwrap_or(0);
    assert_eq!(
        it.next(),
        Some("2"),
        "not HTTP/2: {tail} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (status, body.to_string())
}

#[tokio::test]
async fn an_oversized_body_gets_413_over_http2_too() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // A JSON document larger than the 1 MiB default limit.
    std::fs::write(
        &big,
        format!(
            "{{\"kty\":\"EC\",\"tags\":{{\"a\":\"{}\"}}}}",
            "x".repeat(2 * 1024 * 1024)
        ),
    )
    .unwrap();
    let url = format!("{}/keys/big/create?{V}", s.url());
    let auth = format!("Authorization: Bearer {token}");
    let data = format!("@{}", big.display());
    for extra in [
        &[][..],
        &["-H", "Content-Length:"][..],
        &["-H", "Transfer-Encoding: chunked"][..],
    ] {
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &data,
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        let (status, body) = curl_h2(&s, &args).await;
        assert_eq!(status, 413, "{extra:?}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], "RequestTooLarge", "{extra:?}: {body}");
    }
    // The connection and the server are fine afterwards.
    let (status, _) = curl_h2(&s, &["-H", &auth, &format!("{}/keys?{V}", s.url())]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_body_not_declared_as_json_gets_415() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let post = |ct: Option<&'static str>, name: &'static str| {
        let mut r = s
            .client
            .post(format!("{}/keys/{name}/create?{V}", s.url()))
            .bearer_auth(&token)
            .body(r#"{"kty":"EC","crv":"P-256"}"#);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r
    };
    for (ct, name) in [
        (None, "none"),
        (Some("text/plain"), "text"),
        (Some("application/x-www-form-urlencoded"), "form"),
        (Some("application/jsonx"), "jsonx"),
        (Some("application/json; charset=latin1"), "latin"),
    ] {
        let r = post(ct, name).send().await.unwrap();
        let st = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(st, 415, "{ct:?}: {body}");
        assert_eq!(body["error"]["code"], "UnsupportedMediaType", "{ct:?}: {body}");
    }
    // Nothing was created.
    let (_, list) = s.call(Method::GET, &format!("/keys?{V}"), None).await.unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 0, "{list}");
    // What the SDKs send is accepted, with or without a charset.
    for (ct, name) in [
        (Some("application/json"), "plain"),
        (Some("application/json; charset=utf-8"), "utf8"),
        (Some("Application/JSON;charset=UTF-8"), "upper"),
    ] {
        let st = post(ct, name).send().await.unwrap().status().as_u16();
        assert_eq!(st, 200, "{ct:?}");
    }
    // Requests without a body need no Content-Type (GET, DELETE, and POSTs such as a key backup).
    let st = s
        .client
        .post(format!("{}/keys/plain/backup?{V}", s.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 200);
    let st = s
        .client
        .get(format!("{}/keys/plain?{V}", s.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 200);
    // The token endpoint takes a form; JSON there is refused.
    let r = s
        .client
        .post(s.token_endpoint())
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert!(s.token().await.is_ok());
}
