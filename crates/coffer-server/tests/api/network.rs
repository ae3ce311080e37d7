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

/// No token, a forged token, or a token request with a wrong secret, through `c` (with `X-Forwarded-For` when
/// given): (status, Retry-After present, error message).
async fn unauthenticated(s: &TestServer, c: &reqwest::Client, kind: usize, xff: Option<&str>) -> (u16, bool, String) {
    let keys = format!("{}/keys?{V}", s.url());
    let mut req = match kind % 3 {
        0 => c.get(&keys),
        1 => c.get(&keys).bearer_auth("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
        _ => c.post(s.token_endpoint()).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("client_secret", "y"),
        ]),
    };
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let r = req.send().await.unwrap();
    let st = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").is_some();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (
        st,
        retry_after,
        body["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// A token request for the bootstrap principal through `c`, from `xff` behind a trusted proxy: the status.
async fn token_request(s: &TestServer, c: &reqwest::Client, xff: &str) -> u16 {
    let scope = format!("{}/.default", s.url());
    c.post(s.token_endpoint())
        .header("x-forwarded-for", xff)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s.cred("client_id").as_str()),
            ("client_secret", s.cred("client_secret").as_str()),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_flood_without_tokens_causes_no_429_for_signed_in_principals() {
    let s = TestServer::builder()
        .configure(|c| {
            c.throttling.address_units_per_10s = 10;
            c.throttling.unauthenticated_units_per_10s = 40;
            c.throttling.token_address_units_per_10s = 10;
            c.throttling.token_units_per_10s = 40;
            // Less than the flood: charged to the instance, the flood alone would exhaust it.
            c.throttling.instance_units_per_10s = 100;
        })
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    // One address runs out of its own budget: the 429 blames the client address, not a principal.
    let one = client_from(&s, "127.0.0.2");
    let mut first = Vec::new();
    for i in 0..15 {
        first.push(unauthenticated(&s, &one, i % 2, None).await);
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
            flood.push(unauthenticated(&s, c, round % 2, None).await);
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
    // The token service has a pool of its own: the flooders (their budget for requests without a token spent)
    // still get answers from it, and so does the bootstrap principal.
    for c in &flooders {
        let (st, _, m) = unauthenticated(&s, c, 2, None).await;
        assert_eq!(st, 400, "{m}");
    }
    assert!(s.token().await.is_ok());
}

#[tokio::test]
async fn token_requests_have_their_own_pool_and_ipv6_clients_count_per_64() {
    let s = TestServer::builder()
        .configure(|c| {
            c.network.trusted_proxies = vec!["127.0.0.4".into()];
            c.throttling.address_units_per_10s = 10;
            c.throttling.unauthenticated_units_per_10s = 60;
            c.throttling.token_address_units_per_10s = 10;
            c.throttling.token_units_per_10s = 60;
        })
        .start()
        .await
        .unwrap();
    let proxy = client_from(&s, "127.0.0.4");
    // A client behind the proxy picks a new address in its /64 for every request: one budget all the same.
    let mut rotating = Vec::new();
    for i in 0..15 {
        let from = format!("2001:db8:1:2:{:x}:{i:x}::1", i * 4099 % 65_536);
        rotating.push(unauthenticated(&s, &proxy, i % 2, Some(&from)).await);
    }
    let refused: Vec<_> = rotating.iter().filter(|(st, ..)| *st == 429).collect();
    assert!(refused.len() >= 4, "{rotating:?}");
    assert!(
        refused
            .iter()
            .all(|(_, _, m)| m.contains("client address's budget for requests without a valid token")),
        "{refused:?}"
    );
    // Another /64 has its own budget.
    assert_eq!(unauthenticated(&s, &proxy, 0, Some("2001:db8:1:3::1")).await.0, 401);
    // The same for token requests, in the token service's pool.
    let mut rotating = Vec::new();
    for i in 0..15 {
        let from = format!("2001:db8:1:4:{:x}:{i:x}::1", i * 4099 % 65_536);
        rotating.push(unauthenticated(&s, &proxy, 2, Some(&from)).await);
    }
    let refused: Vec<_> = rotating.iter().filter(|(st, ..)| *st == 429).collect();
    assert!(refused.len() >= 4, "{rotating:?}");
    assert!(
        refused
            .iter()
            .all(|(_, _, m)| m.contains("client address's budget for token requests")),
        "{refused:?}"
    );
    // Requests without a valid token from many /64s spend all of their pool...
    let mut flood = Vec::new();
    for i in 0..150 {
        let from = format!("2001:db8:2:{i:x}::1");
        flood.push(unauthenticated(&s, &proxy, i % 2, Some(&from)).await.0);
    }
    assert!(flood.iter().filter(|st| **st == 429).count() >= 50, "{flood:?}");
    // ...and clients of those /64s, and of the one whose budget is spent, still get tokens.
    assert_eq!(token_request(&s, &proxy, "2001:db8:2:5::1").await, 200);
    assert_eq!(token_request(&s, &proxy, "2001:db8:1:2::77").await, 200);
}

/// A JWT naming this instance's issuer and the bootstrap principal, with a garbage signature (distinct for each
/// `n`, so that none is ever the same token twice).
fn forged_token(s: &TestServer, n: usize) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(&json!({"alg": "ES256", "typ": "JWT"}));
    let claims = b64(&json!({
        "iss": s.issuer(), "aud": s.url(), "oid": s.cred("object_id"), "exp": 4_000_000_000_u64, "n": n,
    }));
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64]);
    format!("{header}.{claims}.{sig}")
}

#[tokio::test]
async fn forged_tokens_are_throttled_per_address_before_they_are_verified() {
    let s = TestServer::builder()
        .configure(|c| {
            c.throttling.address_units_per_10s = 10;
            c.throttling.unauthenticated_units_per_10s = 10_000;
        })
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let token = s.token().await.unwrap();
    assert_eq!(get(&s.client, keys.clone(), &token, None).await.0, 200);
    // A principal whose token has not been used yet.
    let other = s.new_principal("other").await.unwrap();
    const VERIFIED: &str = "coffer_bearer_token_verifications_total";
    let before = s.metric(VERIFIED).await.unwrap();
    // 40 forged tokens from one address: only its budget's worth is verified, the rest is refused unverified.
    let attacker = client_from(&s, "127.0.0.2");
    let mut statuses = Vec::new();
    for n in 0..40 {
        statuses.push(get(&attacker, keys.clone(), &forged_token(&s, n), None).await.0);
    }
    let unauthorized = statuses.iter().filter(|st| **st == 401).count();
    assert!((1..=12).contains(&unauthorized), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|st| **st == 429).count(), 40 - unauthorized);
    let verified = s.metric(VERIFIED).await.unwrap() - before;
    assert_eq!(verified, unauthorized as f64);
    // A token already verified pays nothing, even from that address.
    for _ in 0..20 {
        assert_eq!(get(&attacker, keys.clone(), &token, None).await.0, 200);
    }
    assert_eq!(s.metric(VERIFIED).await.unwrap() - before, verified);
    // A new token is verified only once the address's budget admits it; from another address it is. (The budget
    // refills at one unit a second: drain it again first, so a slow machine does not make this a timing test.)
    let mut drained = false;
    for n in 100..140 {
        if get(&attacker, keys.clone(), &forged_token(&s, n), None).await.0 == 429 {
            drained = true;
            break;
        }
    }
    assert!(drained, "the address's budget never ran out");
    assert_eq!(get(&attacker, keys.clone(), &other.token, None).await.0, 429);
    let st = get(&client_from(&s, "127.0.0.3"), keys.clone(), &other.token, None)
        .await
        .0;
    assert_eq!(st, 403, "authenticated, without a role");
}

/// With one slot per principal, principal A's request that is suspended in its handler (an RSA-4096 key
/// generation on the blocking pool) makes A's further requests wait for A's slot, without a 429, while principal
/// B's requests are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_principal_over_its_slots_waits_while_another_goes_ahead() {
    let s = TestServer::builder()
        .configure(|c| c.throttling.concurrent_requests_per_principal = Some(1))
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let b = s.new_principal("b").await.unwrap();
    s.assign(coffer_testkit::CRYPTO_USER, "/", &b.object_id).await.unwrap();
    let a = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    assert_eq!(get(&s.client, keys.clone(), &a, None).await.0, 200);
    assert_eq!(get(&s.client, keys.clone(), &b.token, None).await.0, 200);
    const WAITING: &str = "coffer_principal_requests_waiting";
    const IN_PROGRESS: &str = "coffer_principal_requests_in_progress";
    let until = |series: &'static str, value: f64| {
        let s = &s;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while s.metric(series).await.unwrap() != value {
                assert!(std::time::Instant::now() < deadline, "{series} never reached {value}");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    // A's slot: a key generation.
    let create = {
        let (c, url, a) = (s.client.clone(), format!("{}/keys/big/create?{V}", s.url()), a.clone());
        tokio::spawn(async move {
            let r = c
                .post(url)
                .bearer_auth(a)
                .json(&json!({"kty": "RSA-HSM", "key_size": 4096}))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        })
    };
    until(IN_PROGRESS, 1.0).await;
    // Five more requests of A wait for it.
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let (c, keys, a) = (s.client.clone(), keys.clone(), a.clone());
            tokio::spawn(async move { get(&c, keys, &a, None).await.0 })
        })
        .collect();
    until(WAITING, 5.0).await;
    // B is answered meanwhile, and A's requests are still waiting.
    for _ in 0..10 {
        assert_eq!(get(&s.client, keys.clone(), &b.token, None).await.0, 200);
    }
    assert_eq!(s.metric(WAITING).await.unwrap(), 5.0);
    assert!(queued.iter().all(|q| !q.is_finished()));
    // Then A's requests go through, none refused.
    assert_eq!(create.await.unwrap(), 200);
    for q in queued {
        assert_eq!(q.await.unwrap(), 200);
    }
    assert!(s.metric("coffer_principal_requests_waited_total").await.unwrap() >= 5.0);
    assert_eq!(s.metric(WAITING).await.unwrap(), 0.0);
    assert_eq!(s.metric(IN_PROGRESS).await.unwrap(), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_client_with_many_connections_gets_no_429_with_the_defaults() {
    let s = TestServer::builder()
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let keys = format!("{}/keys?{V}", s.url());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (c, keys, token) = (s.client.clone(), keys.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..20 {
                statuses.push(get(&c, keys.clone(), &token, None).await.0);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    assert_eq!(statuses.len(), 1280);
    assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    assert_eq!(
        s.metric("coffer_throttled_requests_total{operation=\"KeyList\"}")
            .await
            .ok(),
        None
    );
    // Nothing is left in a slot.
    assert_eq!(s.metric("coffer_principal_requests_in_progress").await.unwrap(), 0.0);
}
