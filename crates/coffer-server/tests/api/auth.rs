//! Authentication: the 401 challenge comes before any other check; the token endpoint refuses bad clients;
//! tokens from another instance are refused.
use coffer_testkit::TestServer;
use reqwest::Method;

fn assert_challenge(resp: &reqwest::Response, url: &str, tenant: &str) {
    assert_eq!(resp.status().as_u16(), 401);
    let h = resp
        .headers()
        .get("www-authenticate")
        .expect("challenge header")
        .to_str()
        .unwrap();
    assert_eq!(
        h,
        format!("Bearer authorization=\"{url}/{tenant}\", resource=\"{url}\"")
    );
}

#[tokio::test]
async fn unauthenticated_requests_get_the_challenge_before_validation() {
    let s = TestServer::builder().start().await.unwrap();
    let (url, tenant) = (s.url(), s.cred("tenant_id"));
    // No body, no api-version, unknown route, garbage token: all 401 + challenge.
    for (method, path, auth) in [
        (Method::POST, "/keys/k1/create?api-version=2025-07-01", None),
        (Method::POST, "/keys/k1/create", None),
        (Method::GET, "/no/such/route?api-version=bogus", None),
        (Method::GET, "/keys?api-version=7.4", Some("Bearer not-a-token")),
        (Method::GET, "/keys?api-version=7.4", Some("Basic dXNlcjpwYXNz")),
    ] {
        let mut req = s
            .client
            .request(method, format!("{url}{path}"))
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_challenge(&resp, &url, &tenant);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "Unauthorized");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn token_endpoint_refuses_bad_clients() {
    let s = TestServer::builder().start().await.unwrap();
    let scope = format!("{}/.default", s.url());
    let cases = [
        (
            vec![
                ("client_id", s.cred("client_id")),
                ("client_secret", "wrong".to_string()),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("client_id", "00000000-0000-0000-0000-000000000000".into()),
                ("client_secret", "x".into()),
            ],
            401,
            "invalid_client",
        ),
        (vec![("client_id", s.cred("client_id"))], 400, "invalid_request"),
    ];
    for (fields, status, code) in cases {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", scope.clone()),
        ];
        form.extend(fields);
        let resp = s.client.post(s.token_endpoint()).form(&form).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], code);
        assert!(body["access_token"].is_null());
    }
    // Wrong grant type and a resource that is not served here.
    let form = [
        ("grant_type", "password".to_string()),
        ("client_id", s.cred("client_id")),
        ("client_secret", s.cred("client_secret")),
        ("scope", scope.clone()),
    ];
    let resp = s.client.post(s.token_endpoint()).form(&form).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", s.cred("client_id")),
        ("client_secret", s.cred("client_secret")),
        ("scope", "https://managedhsm.azure.net/.default".to_string()),
    ];
    let resp = s.client.post(s.token_endpoint()).form(&form).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn discovery_document_and_jwks() {
    let s = TestServer::builder().start().await.unwrap();
    let tenant = s.cred("tenant_id");
    let doc: serde_json::Value = s
        .client
        .get(format!("{}/{tenant}/v2.0/.well-known/openid-configuration", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["token_endpoint"], s.token_endpoint());
    assert_eq!(doc["issuer"], format!("{}/{tenant}/v2.0", s.url()));
    assert!(doc["authorization_endpoint"].as_str().unwrap().starts_with(&s.url()));
    let jwks: serde_json::Value = s
        .client
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert!(
        jwks["keys"][0]["d"].is_null(),
        "the JWKS must not publish private material"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_token_from_another_instance_is_refused() {
    let a = TestServer::builder().start().await.unwrap();
    let b = TestServer::builder().start().await.unwrap();
    let foreign = b.token().await.unwrap();
    let resp = a
        .client
        .get(format!("{}/keys?api-version=7.4", a.url()))
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_challenge(&resp, &a.url(), &a.cred("tenant_id"));
    // The instance's own token works.
    let own = a.token().await.unwrap();
    let resp = a
        .client
        .get(format!("{}/keys?api-version=7.4", a.url()))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // A tampered token (signature byte flipped) is refused.
    let mut bytes = own.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let resp = a
        .client
        .get(format!("{}/keys?api-version=7.4", a.url()))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Every token path the Azure identity libraries build, for the tenant and the `adfs` alias, v2.0 and v1 (v1 with
/// `resource` instead of `scope`): each issues a token the data plane accepts.
#[tokio::test]
async fn every_token_path_the_identity_libraries_build_issues_a_usable_token() {
    let s = TestServer::builder().start().await.unwrap();
    let tenant = s.cred("tenant_id");
    for (first, path) in [
        (tenant.as_str(), "oauth2/v2.0/token"),
        (tenant.as_str(), "oauth2/token"),
        ("adfs", "oauth2/token"),
        ("adfs", "oauth2/v2.0/token"),
    ] {
        for (k, v) in [("scope", format!("{}/.default", s.url())), ("resource", s.url())] {
            let form = [
                ("grant_type", "client_credentials".to_string()),
                ("client_id", s.cred("client_id")),
                ("client_secret", s.cred("client_secret")),
                (k, v),
            ];
            let url = format!("{}/{first}/{path}", s.url());
            let resp = s.client.post(&url).form(&form).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{url} with {k}");
            let body: serde_json::Value = resp.json().await.unwrap();
            let token = body["access_token"].as_str().unwrap();
            let (st, b) = s
                .call_as(token, Method::GET, "/keys?api-version=7.6", None)
                .await
                .unwrap();
            assert_eq!(st, 200, "{url} with {k}: {b}");
        }
    }
    let resp = s
        .client
        .post(format!("{}/adfs/oauth2/v3.0/token", s.url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "other paths stay unknown");
    s.stop().await.unwrap();
}
