//! Network ACLs and throttling over real sockets: clients connect from 127.0.0.2 / 127.0.0.3 / 127.0.0.4 (the
//! loopback range) to a server on 127.0.0.1; refused addresses get 403 ForbiddenByFirewall and an audit record;
//! X-Forwarded-For counts only from trusted proxies; changes apply without a restart and survive one. Throttling
//! answers 429 with Retry-After per principal, and traffic without a valid token has budgets of its own.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";

/// A client trusting the server's CA whose connections come from `from`.
fn client_from(s: &TestServer, from: &str) -> reqwest::Client {
    let ca = std::fs::read(s.ca_path()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: String, token: &str, xff: Option<&str>) -> (u16, Value) {
    let mut req = c.get(url).bearer_auth(token);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn put_acls(s: &TestServer, body: Value, force: bool) -> (u16, Value) {
    let q = if force { "&force=true" } else { "" };
    s.call(Method::PUT, &format!("/coffer/v1/network-acls?{V}{q}"), Some(body))
        .await
        .unwrap()
}

#[tokio::test]
async fn acls_admit_chosen_addresses_refuse_others_and_apply_without_restart() {
    let mut s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let two = client_from(&s, "127.0.0.2");
    let three = client_from(&s, "127.0.0.3");
    assert_eq!(get(&three, keys.clone(), &token, None).await.0, 200, "Allow by default");
    let (st, acls) = s
        .call(Method::GET, &format!("/coffer/v1/network-acls?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(acls["defaultAction"], "Allow");

    // An ACL that would shut out the caller's own address (127.0.0.1) is refused unless forced.
    let only_two = json!({"defaultAction": "Deny", "ipRules": [{"value": "127.0.0.2/32"}]});
    let (st, body) = put_acls(&s, only_two.clone(), false).await;
    assert_eq!(st, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("127.0.0.1"));
    let (st, body) = put_acls(
        &s,
        json!({"defaultAction": "Deny", "ipRules": [{"value": "127.0.0.1"}, {"value": "127.0.0.2/32"}]}),
        false,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(get(&two, keys.clone(), &token, None).await.0, 200);
    let (st, body) = get(&three, keys.clone(), &token, None).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["error"]["code"], "ForbiddenByFirewall");
    assert!(body["error"]["message"].as_str().unwrap().contains("127.0.0.3"));
    // The token service is behind the firewall too.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "x"),
        ("client_secret", "y"),
        ("scope", "z"),
    ];
    let st = three
        .post(s.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 403);
    // The refusal is audited with the address and the decision.
    let refused: Vec<Value> = s
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|r| r["properties"]["isAddressAuthorized"] == false)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| r["callerIpAddress"] == "127.0.0.3" && r["resultSignature"] == "Forbidden")
    );
    assert_eq!(refused[1]["operationName"], "TokenIssue");

    // Forced: even the caller's own address is shut out; an administrator on 127.0.0.2 undoes it.
    let (st, _) = put_acls(&s, only_two, true).await;
    assert_eq!(st, 200);
    assert_eq!(get(&s.client, keys.clone(), &token, None).await.0, 403);
    // Survives a restart (stored, not from coffer.toml).
    s.restart().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let two = client_from(&s, "127.0.0.2");
    let token = s.token_for_via(&two).await.unwrap();
    assert_eq!(get(&two, keys.clone(), &token, None).await.0, 200);
    assert_eq!(get(&s.client, keys.clone(), &token, None).await.0, 403);
    let r = two
        .put(format!("{}/coffer/v1/network-acls?{V}", s.url()))
        .bearer_auth(&token)
        .json(&json!({"defaultAction": "Allow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&s.client, keys, &token, None).await.0, 200);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies_and_public_access_can_be_disabled() {
    let s = TestServer::builder()
        .configure(|c| {
            c.network.trusted_proxies = vec!["127.0.0.4".into()];
            c.network.public_network_access = "Disabled".into();
        })
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let proxy = client_from(&s, "127.0.0.4");
    let other = client_from(&s, "127.0.0.3");
    // Public access disabled: a public client behind the trusted proxy is refused, a private one admitted.
    assert_eq!(get(&proxy, keys.clone(), &token, Some("203.0.113.7")).await.0, 403);
    assert_eq!(get(&proxy, keys.clone(), &token, Some("10.1.2.3")).await.0, 200);
    // Only the right-most untrusted hop counts: a forged left part does not help.
    assert_eq!(
        get(&proxy, keys.clone(), &token, Some("10.9.9.9, 203.0.113.7")).await.0,
        403
    );
    // Not a trusted proxy: its X-Forwarded-For is ignored and the loopback peer is judged (private: admitted).
    assert_eq!(get(&other, keys.clone(), &token, Some("203.0.113.7")).await.0, 200);
    // The audit record names the forwarded client.
    let recs = s.audit_records().unwrap();
    assert!(
        recs.iter()
            .any(|r| r["callerIpAddress"] == "203.0.113.7" && r["properties"]["httpStatusCode"] == 403)
    );
    assert!(
        recs.iter()
            .any(|r| r["callerIpAddress"] == "10.1.2.3" && r["properties"]["httpStatusCode"] == 200)
    );
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_per_principal() {
    let s = TestServer::builder()
        .configure(|c| {
            c.throttling.units_per_10s = 20;
            c.throttling.instance_units_per_10s = 10_000;
        })
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    // A second principal, made before the burst (making it costs the bootstrap principal units too).
    let (st, p) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName": "other"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{p}");
    s.assign(
        "21dbd100-6940-42c2-9190-5d6cb909625b",
        "/",
        p["objectId"].as_str().unwrap(),
    )
    .await
    .unwrap();
    let other = s
        .token_for(
            p["clientId"].as_str().unwrap(),
            p["clientSecret"].as_str().unwrap(),
            &format!("{}/.default", s.url()),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..30 {
        let r = s.client.get(&keys).bearer_auth(&token).send().await.unwrap();
        let st = r.status().as_u16();
        if st == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "Throttled");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("calling principal's budget"),
                "{body}"
            );
        }
        statuses.push(st);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    // 20 units, less what the test kit spent on its role assignments, plus what refilled meanwhile.
    assert!((12..=22).contains(&ok), "{statuses:?}");
    assert!(statuses.contains(&429));
    let wait = retry_after.expect("Retry-After on 429");
    assert!((1..=10).contains(&wait), "Retry-After {wait}");
    // Another principal has its own budget.
    assert_eq!(get(&s.client, keys.clone(), &other, None).await.0, 200);
    // After Retry-After the first principal is served again.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(get(&s.client, keys.clone(), &token, None).await.0, 200);
    let text = s
        .client
        .get(s.metrics_url().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("coffer_throttled_requests_total{operation=\"KeyList\"}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_flood_without_tokens_causes_no_429_for_signed_in_principals() {
    let s = TestServer::builder()
        .configure(|c| {
            c.throttling.address_units_per_10s = 10;
            c.throttling.unauthenticated_units_per_10s = 40;
            // Less than the flood: charged to the instance, the flood alone would exhaust it.
            c.throttling.instance_units_per_10s = 100;
        })
        .start()
        .await
        .unwrap();
    // The token first: the token endpoint draws on the unauthenticated budgets too.
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let send = |c: reqwest::Client, kind: usize| {
        let (keys, endpoint) = (keys.clone(), s.token_endpoint());
        async move {
            // No token, a forged token, or a token request with a wrong secret.
            let r = match kind % 3 {
                0 => c.get(&keys).send().await.unwrap(),
                1 => c
                    .get(&keys)
                    .bearer_auth("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
                    .send()
                    .await
                    .unwrap(),
                _ => c
                    .post(endpoint)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", "x"),
                        ("client_secret", "y"),
                    ])
                    .send()
                    .await
                    .unwrap(),
            };
            let st = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").is_some();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (
                st,
                retry_after,
                body["error"]["message"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    // One address runs out of its own budget: the 429 blames the client address, not a principal.
    let one = client_from(&s, "127.0.0.2");
    let mut first = Vec::new();
    for i in 0..15 {
        first.push(send(one.clone(), i).await);
    }
    let refused: Vec<_> = first.iter().filter(|(st, ..)| *st == 429).collect();
    assert!(refused.len() >= 4, "{first:?}");
    assert!(
        refused
            .iter()
            .all(|(_, retry, m)| *retry && m.contains("client address") && !m.contains("principal")),
        "{refused:?}"
    );
    // Four more addresses flood until all unauthenticated traffic's budget is spent, while a signed-in principal
    // keeps working.
    let flooders: Vec<_> = ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
        .iter()
        .map(|a| client_from(&s, a))
        .collect();
    let mut flood = Vec::new();
    let mut signed_in = Vec::new();
    for round in 0..30 {
        for c in &flooders {
            flood.push(send(c.clone(), round).await);
        }
        signed_in.push(get(&s.client, keys.clone(), &token, None).await.0);
    }
    assert!(signed_in.iter().all(|st| *st == 200), "{signed_in:?}");
    let refused: Vec<_> = flood.iter().filter(|(st, ..)| *st == 429).collect();
    assert!(refused.len() >= 60, "{flood:?}");
    assert!(
        refused.iter().all(|(_, retry, m)| *retry && !m.contains("principal")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|(.., m)| m.contains("all requests without a valid token")),
        "{refused:?}"
    );
}
