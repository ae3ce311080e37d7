//! Bad input gets the Azure error shape with the right status, and changes nothing.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

fn assert_error(status: u16, body: &serde_json::Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn malformed_requests_are_rejected_without_side_effects() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let url = s.url();
    let send_raw = |method: Method, path: &str, body: &'static str| {
        s.client
            .request(method, format!("{url}{path}"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body, code) in [
        ("/keys/bad1/create?api-version=7.4", "{not json", "BadParameter"),
        ("/keys/bad1/create?api-version=7.4", "", "BadParameter"),
        ("/keys/bad1/create?api-version=7.4", r#"{"kty":"DSA"}"#, "BadParameter"),
        (
            "/keys/bad1/create?api-version=7.4",
            r#"{"kty":"RSA","key_size":1024}"#,
            "BadParameter",
        ),
        (
            "/keys/bad1/create?api-version=7.4",
            r#"{"kty":"EC","crv":"P-192"}"#,
            "BadParameter",
        ),
        (
            "/keys/bad1/create?api-version=7.4",
            r#"{"kty":"oct","key_size":512}"#,
            "BadParameter",
        ),
        (
            "/keys/bad1/create?api-version=7.4",
            r#"{"kty":"EC","key_ops":["encrypt"]}"#,
            "BadParameter",
        ),
        (
            "/keys/bad_name/create?api-version=7.4",
            r#"{"kty":"EC"}"#,
            "BadParameter",
        ),
        ("/keys/bad1/create?api-version=1.0", r#"{"kty":"EC"}"#, "BadParameter"),
        ("/keys/bad1/create", r#"{"kty":"EC"}"#, "BadParameter"),
    ] {
        let resp = send_raw(Method::POST, path, body).await.unwrap();
        let status = resp.status().as_u16();
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_error(status, &json, 400, code);
    }
    // Nothing was created by any of them.
    let (status, list) = s.call(Method::GET, "/keys?api-version=7.4", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 0);

    // Oversize body: 413.
    let big = "x".repeat(2 * 1024 * 1024);
    let resp = s
        .client
        .post(format!("{url}/keys/big/create?api-version=7.4"))
        .bearer_auth(&token)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn crypto_input_errors() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, _) = s
        .call(
            Method::POST,
            "/keys/ec1/create?api-version=7.5",
            Some(json!({"kty":"EC-HSM","crv":"P-256"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let cases = [
        (json!({"alg":"ES256","value":"!!!"}), "BadParameter"),
        (json!({"alg":"HS256","value":"AAAA"}), "BadParameter"),
        (
            json!({"alg":"ES384","value":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}),
            "BadParameter",
        ),
        (json!({"alg":"ES256","value":"AAAA"}), "BadParameter"),
        (
            json!({"alg":"RS256","value":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}),
            "BadParameter",
        ),
    ];
    for (body, code) in cases {
        let (st, b) = s
            .call(Method::POST, "/keys/ec1//sign?api-version=7.5", Some(body))
            .await
            .unwrap();
        assert_error(st, &b, 400, code);
    }
    let (st, b) = s
        .call(
            Method::POST,
            "/keys/ec1//encrypt?api-version=7.5",
            Some(json!({"alg":"RSA-OAEP","value":"AAAA"})),
        )
        .await
        .unwrap();
    assert_error(st, &b, 400, "BadParameter");
    let (st, b) = s
        .call(
            Method::POST,
            "/keys/nope//sign?api-version=7.5",
            Some(json!({"alg":"ES256","value":"AAAA"})),
        )
        .await
        .unwrap();
    assert_error(st, &b, 404, "KeyNotFound");
    for count in [0, 129, -1] {
        let (st, b) = s
            .call(Method::POST, "/rng?api-version=7.5", Some(json!({ "count": count })))
            .await
            .unwrap();
        assert_error(st, &b, 400, "BadParameter");
    }
    let (st, b) = s
        .call(Method::POST, "/rng?api-version=7.5", Some(json!({"count": 128})))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(coffer_b64_len(b["value"].as_str().unwrap()), 128);
    s.stop().await.unwrap();
}

fn coffer_b64_len(s: &str) -> usize {
    // unpadded base64url length → byte length
    s.len() * 3 / 4
}

#[tokio::test]
async fn api_version_forms() {
    let s = TestServer::builder().start().await.unwrap();
    for v in ["7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"] {
        let (st, _) = s
            .call(Method::GET, &format!("/keys?api-version={v}"), None)
            .await
            .unwrap();
        assert_eq!(st, 200, "api-version {v}");
    }
    // JS percent-encodes the parameter name.
    let (st, _) = s
        .call(Method::GET, "/keys?api%2Dversion=2025-07-01", None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_method_the_path_does_not_support_gets_405_with_allow() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    for (method, path, allow) in [
        (Method::POST, "/keys/k1?api-version=7.6", "GET, PUT, PATCH, DELETE"),
        (Method::GET, "/keys/k1/v1/sign?api-version=7.6", "POST"),
        (Method::DELETE, "/rng?api-version=7.6", "POST"),
        (Method::PATCH, "/coffer/v1/principals?api-version=7.6", "GET, POST"),
        (
            Method::POST,
            "/providers/Microsoft.Authorization/roleAssignments/a?api-version=7.6",
            "GET, PUT, DELETE",
        ),
    ] {
        let r = s
            .client
            .request(method.clone(), format!("{}{path}", s.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_error(405, &body, 405, "MethodNotAllowed");
    }
    // Audited like an unknown request.
    let recs = s.audit_records().unwrap();
    let refused: Vec<_> = recs
        .iter()
        .filter(|r| r["properties"]["httpStatusCode"] == 405)
        .collect();
    assert_eq!(refused.len(), 5);
    assert!(refused.iter().all(|r| r["operationName"] == "RequestNotFound"));
}
