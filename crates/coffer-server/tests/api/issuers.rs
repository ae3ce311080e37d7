//! External OIDC issuers: a second Coffer instance's token service plays the external identity provider (its
//! JWKS served over HTTPS under its own CA). Tokens from a trusted issuer are accepted and authorized through role
//! assignments naming their object ids (or their groups); tokens from untrusted issuers, wrong audiences or
//! disallowed algorithms are not.
use coffer_server::config::IssuerConfig;
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";

fn trust(idp: &TestServer, algorithms: &[&str]) -> IssuerConfig {
    IssuerConfig {
        issuer: idp.issuer(),
        audiences: vec![idp.url()],
        jwks_url: Some(idp.jwks_url()),
        jwks_file: None,
        object_id_claim: "oid".into(),
        groups_claim: "groups".into(),
        algorithms: algorithms.iter().map(|a| (*a).to_string()).collect(),
        ca_cert: Some(idp.ca_path()),
    }
}

#[tokio::test]
async fn tokens_from_a_trusted_external_issuer_are_accepted() {
    let idp = TestServer::builder().start().await.unwrap();
    let untrusted = TestServer::builder().start().await.unwrap();
    let hsm = TestServer::builder()
        .trust_issuer(trust(&idp, &["ES256"]))
        .start()
        .await
        .unwrap();
    hsm.call(
        Method::POST,
        &format!("/keys/ext/create?{V}"),
        Some(json!({"kty":"EC"})),
    )
    .await
    .unwrap();

    // A workload identity at the IdP.
    let (st, w) = idp
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"workload"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201);
    let (oid, cid, secret) = (
        w["objectId"].as_str().unwrap(),
        w["clientId"].as_str().unwrap(),
        w["clientSecret"].as_str().unwrap(),
    );
    let ext_token = idp
        .token_for(cid, secret, &format!("{}/.default", idp.url()))
        .await
        .unwrap();
    let get = |token: String| {
        let hsm = &hsm;
        async move {
            hsm.client
                .get(format!("{}/keys/ext/?{V}", hsm.url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Authenticated (not 401) but not yet authorized.
    assert_eq!(get(ext_token.clone()).await, 403);
    hsm.assign("21dbd100-6940-42c2-9190-5d6cb909625b", "/keys/ext", oid)
        .await
        .unwrap();
    assert_eq!(get(ext_token.clone()).await, 200);

    // Group claims from the external issuer work too.
    let (_, g) = idp
        .call(
            Method::POST,
            &format!("/coffer/v1/groups?{V}"),
            Some(json!({"displayName":"ops"})),
        )
        .await
        .unwrap();
    let gid = g["objectId"].as_str().unwrap();
    let (_, w2) = idp
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"w2"})),
        )
        .await
        .unwrap();
    idp.call(
        Method::PUT,
        &format!(
            "/coffer/v1/groups/{gid}/members/{}?{V}",
            w2["objectId"].as_str().unwrap()
        ),
        None,
    )
    .await
    .unwrap();
    hsm.assign("2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "/", gid)
        .await
        .unwrap();
    let t2 = idp
        .token_for(
            w2["clientId"].as_str().unwrap(),
            w2["clientSecret"].as_str().unwrap(),
            &format!("{}/.default", idp.url()),
        )
        .await
        .unwrap();
    assert_eq!(get(t2).await, 200);

    // An issuer that is not configured: 401 with the challenge.
    let (_, u) = untrusted
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"u"})),
        )
        .await
        .unwrap();
    let bad = untrusted
        .token_for(
            u["clientId"].as_str().unwrap(),
            u["clientSecret"].as_str().unwrap(),
            &format!("{}/.default", untrusted.url()),
        )
        .await
        .unwrap();
    let resp = hsm
        .client
        .get(format!("{}/keys/ext/?{V}", hsm.url()))
        .bearer_auth(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    // The IdP's token for its own resource is not accepted by the IdP-trusting HSM under another audience.
    let hsm2 = TestServer::builder()
        .trust_issuer(IssuerConfig {
            audiences: vec!["https://other.example".into()],
            ..trust(&idp, &["ES256"])
        })
        .start()
        .await
        .unwrap();
    let resp = hsm2
        .client
        .get(format!("{}/keys?{V}", hsm2.url()))
        .bearer_auth(&ext_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "wrong audience");
    // An allow-list without ES256 refuses the IdP's ES256 tokens.
    let hsm3 = TestServer::builder()
        .trust_issuer(trust(&idp, &["RS256"]))
        .start()
        .await
        .unwrap();
    let resp = hsm3
        .client
        .get(format!("{}/keys?{V}", hsm3.url()))
        .bearer_auth(&ext_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "algorithm not allowed");
    for s in [hsm, hsm2, hsm3, idp, untrusted] {
        s.stop().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    let idp = TestServer::builder().start().await.unwrap();
    let cfg = IssuerConfig {
        jwks_url: Some("https://127.0.0.1:9/keys".into()),
        ..trust(&idp, &["ES256"])
    };
    let hsm = TestServer::builder().trust_issuer(cfg).start().await.unwrap();
    let (_, w) = idp
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"w"})),
        )
        .await
        .unwrap();
    let t = idp
        .token_for(
            w["clientId"].as_str().unwrap(),
            w["clientSecret"].as_str().unwrap(),
            &format!("{}/.default", idp.url()),
        )
        .await
        .unwrap();
    let resp = hsm
        .client
        .get(format!("{}/keys?{V}", hsm.url()))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    hsm.stop().await.unwrap();
    idp.stop().await.unwrap();
}
