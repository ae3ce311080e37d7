//! The fast path (issue 11): request decisions read one in-memory state, so
//! - crypto on a key whose material is cached never reaches the store (`coffer_store_queries_total` stays put for
//!   1,000 sign/encrypt requests), while an uncached key and a token request do reach it;
//! - every kind of change takes effect on the very next request, for a bearer token obtained before the change
//!   (the token cache does not hide a revocation);
//! - a request started after a write's response decided on a state generation at least that write's.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use coffer_testkit::{CRYPTO_USER, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const DIGEST: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"; // SHA-256 of ""
const PLAIN: &str = "c2VjcmV0";
const CRYPTO_AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";
const POLICY_ADMINISTRATOR: &str = "4bd23610-cdcf-4971-bdee-bdc562cc28e4";
const EXPIRATION_SET: &str = "1d478a74-21ba-4b9f-9d8f-8e6fced0eec5";
const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";
const READ_ACTION: &str = "Microsoft.KeyVault/managedHsm/keys/read/action";
const SIGN_ACTION: &str = "Microsoft.KeyVault/managedHsm/keys/sign/action";
/// The response header naming the state generation a request's decision used.
const GENERATION_HEADER: &str = "x-coffer-state-generation";

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A reply, with the state generation of the response header (when the server sends it) and the correlation id
/// its audit record carries.
struct Reply {
    status: u16,
    body: Value,
    generation: Option<u64>,
    correlation: String,
}

/// Sends a request with `token` through `client`, tagged with a fresh `x-ms-client-request-id`.
async fn send(
    s: &TestServer,
    client: &reqwest::Client,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let correlation = coffer_testkit::uuid_like();
    let mut req = client
        .request(method, format!("{}{path}", s.url()))
        .bearer_auth(token)
        .header("x-ms-client-request-id", &correlation);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let generation = resp
        .headers()
        .get(GENERATION_HEADER)
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        generation,
        correlation,
    }
}

async fn call(s: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let r = send(s, &s.client, token, method, path, body).await;
    (r.status, r.body)
}

/// As the bootstrap principal (a new token each time), asserting the status.
async fn admin(s: &TestServer, method: Method, path: &str, body: Option<Value>, want: &[u16]) -> Value {
    let (st, b) = s.call(method.clone(), path, body).await.unwrap();
    assert!(want.contains(&st), "{method} {path}: {st} {b}");
    b
}

async fn create_key(s: &TestServer, name: &str, body: Value) -> Value {
    admin(s, Method::POST, &format!("/keys/{name}/create?{V}"), Some(body), &[200]).await
}

async fn sign(s: &TestServer, token: &str, key: &str) -> (u16, Value) {
    call(
        s,
        token,
        Method::POST,
        &format!("/keys/{key}//sign?{V}"),
        Some(json!({"alg":"ES256","value":DIGEST})),
    )
    .await
}

async fn encrypt(s: &TestServer, token: &str) -> (u16, Value) {
    call(
        s,
        token,
        Method::POST,
        &format!("/keys/aes//encrypt?{V}"),
        Some(json!({"alg":"A256GCM","value":PLAIN})),
    )
    .await
}

async fn get_key(s: &TestServer, token: &str, key: &str) -> (u16, Value) {
    call(s, token, Method::GET, &format!("/keys/{key}/?{V}"), None).await
}

/// The version part of a `kid`.
fn version_of(kid: &Value) -> String {
    kid.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// A principal made through the API: (object id, client id, secret id, secret).
async fn principal(s: &TestServer, name: &str) -> (String, String, String, String) {
    let p = admin(
        s,
        Method::POST,
        &format!("/coffer/v1/principals?{V}"),
        Some(json!({ "displayName": name })),
        &[201],
    )
    .await;
    let f = |k: &str| p[k].as_str().unwrap().to_string();
    (f("objectId"), f("clientId"), f("secretId"), f("clientSecret"))
}

async fn token_for(s: &TestServer, client_id: &str, secret: &str) -> String {
    s.token_for(client_id, secret, &format!("{}/.default", s.url()))
        .await
        .unwrap()
}

fn assignment_body(role: &str, principal: &str, extra: Value) -> Value {
    let mut props = json!({
        "roleDefinitionId": format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "properties": props })
}

/// A client trusting the server's CA whose connections come from `from` (a loopback address).
fn client_from(s: &TestServer, from: &str) -> reqwest::Client {
    let ca = std::fs::read(s.ca_path()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Cached keys never reach the store.

/// Every `coffer_store_queries_total` series of one scrape.
async fn store_queries(s: &TestServer) -> BTreeMap<String, f64> {
    let text = s
        .client
        .get(s.metrics_url().unwrap())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: BTreeMap<String, f64> = text
        .lines()
        .filter(|l| l.starts_with("coffer_store_queries_total{"))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect();
    assert!(series.len() > 40, "one series per store method:\n{text}");
    series
}

/// What each series moved from `a` to `b` (series that did not move are left out).
fn moved(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    b.iter()
        .filter_map(|(k, v)| {
            let d = v - a.get(k).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Scrapes until two scrapes in a row cost the same (start-up work such as the first run of the jobs is over);
/// returns the last scrape and what one scrape costs (a scrape's own store reads are in its own output).
async fn quiet_baseline(s: &TestServer) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut prev = store_queries(s).await;
    let mut cost = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let next = store_queries(s).await;
        let c = moved(&prev, &next);
        if cost.as_ref() == Some(&c) {
            return (next, c);
        }
        cost = Some(c);
        prev = next;
    }
    panic!("the store counters do not settle: {cost:?}");
}

fn series(method: &str) -> String {
    format!("coffer_store_queries_total{{method=\"{method}\"}}")
}

#[tokio::test]
async fn crypto_on_cached_keys_never_reaches_the_store() {
    let mut s = TestServer::builder()
        .metrics("127.0.0.1:0".parse().unwrap())
        .configure(|c| {
            // Nothing in the background during the measurement, and no 429 for 1,000 quick requests.
            c.jobs_interval_secs = 3600;
            c.throttling.enabled = false;
        })
        .start()
        .await
        .unwrap();
    create_key(&s, "ec", json!({"kty":"EC-HSM","crv":"P-256"})).await;
    create_key(&s, "aes", json!({"kty":"oct-HSM","key_size":256})).await;
    let token = s.token().await.unwrap();
    // The first request of each key (and of the token) happens before the measurement.
    assert_eq!(sign(&s, &token, "ec").await.0, 200);
    assert_eq!(encrypt(&s, &token).await.0, 200);

    let (before, scrape) = quiet_baseline(&s).await;
    let started = Instant::now();
    for i in 0..500 {
        let (st, b) = sign(&s, &token, "ec").await;
        assert_eq!(st, 200, "sign {i}: {b}");
        let (st, b) = encrypt(&s, &token).await;
        assert_eq!(st, 200, "encrypt {i}: {b}");
    }
    let elapsed = started.elapsed();
    let after = store_queries(&s).await;
    // The audit checkpoint (docs/AUDIT.md, "Truncation") is stored in the background about once a second while
    // records are written (`put_meta`): that write belongs to no request, so it is left out here.
    let mut moved_by_requests = moved(&before, &after);
    moved_by_requests.remove(&series("put_meta"));
    assert_eq!(
        moved_by_requests, scrape,
        "1,000 sign/encrypt requests of cached keys reached the store (beyond the scrape's own reads)"
    );
    eprintln!("1,000 cached sign/encrypt requests in {elapsed:?}");

    // A token request reads the store (the counter works) ...
    let fresh = s.token().await.unwrap();
    let issued = store_queries(&s).await;
    let by_token = moved(&after, &issued);
    assert!(
        by_token.get(&series("principal_by_client_id")).copied().unwrap_or(0.0) >= 1.0,
        "{by_token:?}"
    );
    // ... but the first request of the new token is verified without it.
    assert_eq!(sign(&s, &fresh, "ec").await.0, 200);
    let used = store_queries(&s).await;
    assert_eq!(
        moved(&issued, &used),
        scrape,
        "the first request of a fresh token reached the store"
    );

    // After a restart nothing is cached: the first use of each key reads its material, once.
    s.restart().await.unwrap();
    let token = s.token().await.unwrap();
    let (before, scrape) = quiet_baseline(&s).await;
    assert_eq!(sign(&s, &token, "ec").await.0, 200);
    let after = store_queries(&s).await;
    let d = moved(&before, &after);
    let key_version = series("key_version");
    assert_ne!(d, scrape, "the first request of an uncached key reached the store");
    assert_eq!(
        d.get(&key_version).copied().unwrap_or(0.0),
        scrape.get(&key_version).copied().unwrap_or(0.0) + 1.0,
        "one material read: {d:?}"
    );
    assert_eq!(sign(&s, &token, "ec").await.0, 200);
    let again = store_queries(&s).await;
    assert_eq!(moved(&after, &again), scrape, "cached from the first request on");
    assert_eq!(encrypt(&s, &token).await.0, 200);
    let aes = store_queries(&s).await;
    let d = moved(&again, &aes);
    assert_eq!(
        d.get(&key_version).copied().unwrap_or(0.0),
        scrape.get(&key_version).copied().unwrap_or(0.0) + 1.0,
        "the other key's material is read once too: {d:?}"
    );
    s.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Every change takes effect on the very next request, for a token obtained before it.

#[tokio::test]
async fn role_assignments_added_removed_and_expired_apply_to_the_same_token() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let (oid, cid, _, secret) = principal(&s, "app").await;
    let token = token_for(&s, &cid, &secret).await;
    assert_eq!(sign(&s, &token, "k").await.0, 403, "no assignment yet");
    // Added.
    let name = s.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    assert_eq!(sign(&s, &token, "k").await.0, 200, "assignment added");
    // Removed.
    admin(
        &s,
        Method::DELETE,
        &format!("/providers/Microsoft.Authorization/roleAssignments/{name}?{V}"),
        None,
        &[200],
    )
    .await;
    assert_eq!(sign(&s, &token, "k").await.0, 403, "assignment removed");
    // Added at the key's scope, then removed there.
    let name = s.assign(CRYPTO_USER, "/keys/k", &oid).await.unwrap();
    assert_eq!(sign(&s, &token, "k").await.0, 200, "key-scoped assignment added");
    admin(
        &s,
        Method::DELETE,
        &format!("/keys/k/providers/Microsoft.Authorization/roleAssignments/{name}?{V}"),
        None,
        &[200],
    )
    .await;
    assert_eq!(sign(&s, &token, "k").await.0, 403, "key-scoped assignment removed");
    // Expired: a time-bound assignment stops granting when it ends, with no write at all.
    let until = now() + 2;
    admin(
        &s,
        Method::PUT,
        &format!(
            "/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
            coffer_testkit::uuid_like()
        ),
        Some(assignment_body(CRYPTO_USER, &oid, json!({ "expiresOn": until }))),
        &[201],
    )
    .await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "time-bound assignment active");
    while now() <= until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 403, "time-bound assignment expired: {b}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn an_edited_custom_role_applies_to_the_same_token() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let id = coffer_testkit::uuid_like();
    let role =
        |actions: Vec<&str>| json!({"properties":{"roleName":"signer","permissions":[{"dataActions": actions}]}});
    let path = format!("/providers/Microsoft.Authorization/roleDefinitions/{id}?{V}");
    admin(
        &s,
        Method::PUT,
        &path,
        Some(role(vec![READ_ACTION, SIGN_ACTION])),
        &[201],
    )
    .await;
    let (oid, cid, _, secret) = principal(&s, "app").await;
    s.assign(&id, "/", &oid).await.unwrap();
    let token = token_for(&s, &cid, &secret).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200);
    assert_eq!(get_key(&s, &token, "k").await.0, 200);
    // The role loses sign.
    admin(&s, Method::PUT, &path, Some(role(vec![READ_ACTION])), &[200, 201]).await;
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 403, "sign removed from the role: {b}");
    assert_eq!(get_key(&s, &token, "k").await.0, 200, "read is still granted");
    // And gets it back.
    admin(
        &s,
        Method::PUT,
        &path,
        Some(role(vec![READ_ACTION, SIGN_ACTION])),
        &[200, 201],
    )
    .await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "sign granted again");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_deleted_principal_loses_its_tokens_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let (oid, cid, _, secret) = principal(&s, "app").await;
    s.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    let token = token_for(&s, &cid, &secret).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200);
    admin(
        &s,
        Method::DELETE,
        &format!("/coffer/v1/principals/{oid}?{V}"),
        None,
        &[204],
    )
    .await;
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 401, "the token of a deleted principal: {b}");
    assert_eq!(get_key(&s, &token, "k").await.0, 401);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_removed_client_secret_ends_only_the_tokens_it_obtained() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let (oid, cid, first_id, first) = principal(&s, "app").await;
    s.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    let added = admin(
        &s,
        Method::POST,
        &format!("/coffer/v1/principals/{oid}/secrets?{V}"),
        None,
        &[201],
    )
    .await;
    let second = added["clientSecret"].as_str().unwrap();
    let by_first = token_for(&s, &cid, &first).await;
    let by_second = token_for(&s, &cid, second).await;
    assert_eq!(sign(&s, &by_first, "k").await.0, 200);
    assert_eq!(sign(&s, &by_second, "k").await.0, 200);
    admin(
        &s,
        Method::DELETE,
        &format!("/coffer/v1/principals/{oid}/secrets/{first_id}?{V}"),
        None,
        &[204],
    )
    .await;
    let (st, b) = sign(&s, &by_first, "k").await;
    assert_eq!(st, 401, "token obtained with the removed secret: {b}");
    assert_eq!(
        sign(&s, &by_second, "k").await.0,
        200,
        "token obtained with the other secret"
    );
    assert!(
        s.token_for(&cid, &first, &format!("{}/.default", s.url()))
            .await
            .is_err(),
        "the removed secret obtains no token"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_removed_group_member_loses_the_group_grant_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let g = admin(
        &s,
        Method::POST,
        &format!("/coffer/v1/groups?{V}"),
        Some(json!({"displayName":"signers"})),
        &[201],
    )
    .await;
    let gid = g["objectId"].as_str().unwrap().to_string();
    s.assign(CRYPTO_USER, "/", &gid).await.unwrap();
    let (oid, cid, _, secret) = principal(&s, "member").await;
    let member = format!("/coffer/v1/groups/{gid}/members/{oid}?{V}");
    admin(&s, Method::PUT, &member, None, &[204]).await;
    // The token is issued while the principal is a member (its `groups` claim names the group).
    let token = token_for(&s, &cid, &secret).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "granted through the group");
    admin(&s, Method::DELETE, &member, None, &[204]).await;
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 403, "membership removed: {b}");
    // The claim counts again while the principal is a member again.
    admin(&s, Method::PUT, &member, None, &[204]).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "member again");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn network_acl_and_principal_network_changes_apply_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let (oid, cid, _, secret) = principal(&s, "app").await;
    s.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    let token = token_for(&s, &cid, &secret).await;
    let three = client_from(&s, "127.0.0.3");
    let get_from = |c: reqwest::Client| {
        let (s, token) = (&s, token.clone());
        async move {
            let r = send(s, &c, &token, Method::GET, &format!("/keys/k/?{V}"), None).await;
            (r.status, r.body)
        }
    };
    assert_eq!(get_from(three.clone()).await.0, 200);
    // The instance's ACLs: 127.0.0.3 shut out.
    let acls = format!("/coffer/v1/network-acls?{V}");
    admin(
        &s,
        Method::PUT,
        &acls,
        Some(json!({"defaultAction":"Deny","ipRules":[{"value":"127.0.0.1"}]})),
        &[200],
    )
    .await;
    let (st, b) = get_from(three.clone()).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (403, Some("ForbiddenByFirewall")),
        "{b}"
    );
    assert_eq!(get_from(s.client.clone()).await.0, 200, "127.0.0.1 is still admitted");
    admin(&s, Method::PUT, &acls, Some(json!({"defaultAction":"Allow"})), &[200]).await;
    assert_eq!(get_from(three.clone()).await.0, 200, "ACLs opened again");
    // The principal's own networks.
    let nets = format!("/coffer/v1/principals/{oid}/networks?{V}");
    admin(
        &s,
        Method::PUT,
        &nets,
        Some(json!({"allowedNetworks": ["127.0.0.3/32"]})),
        &[200],
    )
    .await;
    assert_eq!(
        get_from(s.client.clone()).await.0,
        403,
        "outside the principal's networks"
    );
    assert_eq!(get_from(three.clone()).await.0, 200, "inside the principal's networks");
    admin(
        &s,
        Method::PUT,
        &nets,
        Some(json!({"allowedNetworks": ["10.0.0.0/8"]})),
        &[200],
    )
    .await;
    assert_eq!(get_from(three.clone()).await.0, 403, "networks narrowed");
    admin(&s, Method::PUT, &nets, Some(json!({"allowedNetworks": []})), &[200]).await;
    assert_eq!(get_from(s.client.clone()).await.0, 200, "no network limit");
    assert_eq!(get_from(three).await.0, 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_policy_change_applies_to_the_next_create() {
    let s = TestServer::builder().start().await.unwrap();
    s.assign(POLICY_ADMINISTRATOR, "/", &s.cred("object_id")).await.unwrap();
    let token = s.token().await.unwrap();
    let create = |name: &'static str| {
        let (s, token) = (&s, token.clone());
        async move {
            call(
                s,
                &token,
                Method::POST,
                &format!("/keys/{name}/create?{V}"),
                Some(json!({"kty":"EC"})),
            )
            .await
        }
    };
    assert_eq!(create("before").await.0, 200);
    let policy = format!("/coffer/v1/policies/require-exp?{V}");
    let (st, b) = call(
        &s,
        &token,
        Method::PUT,
        &policy,
        Some(json!({"definitionId": EXPIRATION_SET, "effect": "Deny"})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = create("denied").await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (403, Some("ForbiddenByPolicy")),
        "{b}"
    );
    let (st, b) = call(
        &s,
        &token,
        Method::PUT,
        &policy,
        Some(json!({"definitionId": EXPIRATION_SET, "effect": "Audit"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(create("audited").await.0, 200, "Audit lets it through");
    let (st, b) = call(
        &s,
        &token,
        Method::PUT,
        &policy,
        Some(json!({"definitionId": EXPIRATION_SET, "effect": "Deny"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(create("denied2").await.0, 403);
    let (st, b) = call(&s, &token, Method::DELETE, &policy, None).await;
    assert!(st == 200 || st == 204, "{st} {b}");
    assert_eq!(create("after").await.0, 200, "policy removed");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn key_enabled_key_ops_and_expiry_changes_apply_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    create_key(&s, "k", json!({"kty":"EC"})).await;
    let token = s.token().await.unwrap();
    let patch = |key: &'static str, body: Value| {
        let s = &s;
        async move { admin(s, Method::PATCH, &format!("/keys/{key}/?{V}"), Some(body), &[200]).await }
    };
    let (st, sig) = sign(&s, &token, "k").await;
    assert_eq!(st, 200);
    // Disabled, enabled.
    patch("k", json!({"attributes":{"enabled":false}})).await;
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 403, "disabled: {b}");
    patch("k", json!({"attributes":{"enabled":true}})).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "enabled again");
    // key_ops without sign.
    patch("k", json!({"key_ops":["verify"]})).await;
    let (st, b) = sign(&s, &token, "k").await;
    assert_eq!(st, 403, "sign removed from key_ops: {b}");
    let (st, b) = call(
        &s,
        &token,
        Method::POST,
        &format!("/keys/k//verify?{V}"),
        Some(json!({"alg":"ES256","digest":DIGEST,"value":sig["value"]})),
    )
    .await;
    assert_eq!((st, b["value"].as_bool()), (200, Some(true)), "verify is still allowed");
    patch("k", json!({"key_ops":["sign","verify"]})).await;
    assert_eq!(sign(&s, &token, "k").await.0, 200, "sign back in key_ops");
    // Expired: encrypt refused, decrypt of earlier ciphertext still served.
    create_key(&s, "aes", json!({"kty":"oct-HSM","key_size":256})).await;
    let encrypt = format!("/keys/aes//encrypt?{V}");
    let (st, ct) = call(
        &s,
        &token,
        Method::POST,
        &encrypt,
        Some(json!({"alg":"A256GCM","value":PLAIN})),
    )
    .await;
    assert_eq!(st, 200, "{ct}");
    patch("aes", json!({"attributes":{"exp": now() - 60}})).await;
    let (st, b) = call(
        &s,
        &token,
        Method::POST,
        &encrypt,
        Some(json!({"alg":"A256GCM","value":PLAIN})),
    )
    .await;
    assert_eq!(st, 403, "expired: {b}");
    let (st, pt) = call(
        &s,
        &token,
        Method::POST,
        &format!("/keys/aes//decrypt?{V}"),
        Some(json!({"alg":"A256GCM","value":ct["value"],"iv":ct["iv"],"tag":ct["tag"]})),
    )
    .await;
    assert_eq!(
        (st, pt["value"].as_str()),
        (200, Some(PLAIN)),
        "decrypt after expiry: {pt}"
    );
    patch("aes", json!({"attributes":{"exp": now() + 3600}})).await;
    let (st, b) = call(
        &s,
        &token,
        Method::POST,
        &encrypt,
        Some(json!({"alg":"A256GCM","value":PLAIN})),
    )
    .await;
    assert_eq!(st, 200, "expiry moved out: {b}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotation_moves_the_versionless_key_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    let v1 = create_key(&s, "r", json!({"kty":"EC"})).await;
    let v1 = version_of(&v1["key"]["kid"]);
    let token = s.token().await.unwrap();
    let (st, b) = sign(&s, &token, "r").await;
    assert_eq!((st, version_of(&b["kid"])), (200, v1.clone()));
    admin(
        &s,
        Method::PUT,
        &format!("/keys/r/rotationpolicy?{V}"),
        Some(
            json!({"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],
            "attributes":{"expiryTime":"P2Y"}}),
        ),
        &[200],
    )
    .await;
    let rotated = admin(&s, Method::POST, &format!("/keys/r/rotate?{V}"), None, &[200]).await;
    let v2 = version_of(&rotated["key"]["kid"]);
    assert_ne!(v1, v2);
    let (st, b) = sign(&s, &token, "r").await;
    assert_eq!((st, version_of(&b["kid"])), (200, v2.clone()), "the latest moved");
    let (_, got) = get_key(&s, &token, "r").await;
    assert_eq!(version_of(&got["key"]["kid"]), v2);
    // The old version stays addressable.
    let (st, b) = call(
        &s,
        &token,
        Method::POST,
        &format!("/keys/r/{v1}/sign?{V}"),
        Some(json!({"alg":"ES256","value":DIGEST})),
    )
    .await;
    assert_eq!((st, version_of(&b["kid"])), (200, v1));
    // A new version by create moves it too.
    let v3 = create_key(&s, "r", json!({"kty":"EC"})).await;
    let v3 = version_of(&v3["key"]["kid"]);
    let (st, b) = sign(&s, &token, "r").await;
    assert_eq!((st, version_of(&b["kid"])), (200, v3));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn delete_recover_purge_and_recreate_apply_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    let first = create_key(&s, "d", json!({"kty":"EC"})).await;
    let token = s.token().await.unwrap();
    assert_eq!(sign(&s, &token, "d").await.0, 200);
    // Deleted.
    admin(&s, Method::DELETE, &format!("/keys/d?{V}"), None, &[200]).await;
    let (st, b) = sign(&s, &token, "d").await;
    assert_eq!((st, b["error"]["code"].as_str()), (404, Some("KeyNotFound")), "{b}");
    assert_eq!(get_key(&s, &token, "d").await.0, 404);
    // Recovered.
    admin(&s, Method::POST, &format!("/deletedkeys/d/recover?{V}"), None, &[200]).await;
    let (st, b) = sign(&s, &token, "d").await;
    assert_eq!((st, version_of(&b["kid"])), (200, version_of(&first["key"]["kid"])));
    // Deleted and purged: the name is free, and a new key of that name is served at once.
    admin(&s, Method::DELETE, &format!("/keys/d?{V}"), None, &[200]).await;
    admin(&s, Method::DELETE, &format!("/deletedkeys/d?{V}"), None, &[200, 204]).await;
    assert_eq!(sign(&s, &token, "d").await.0, 404, "purged");
    let (st, _) = call(&s, &token, Method::GET, &format!("/deletedkeys/d?{V}"), None).await;
    assert_eq!(st, 404, "purged, not deleted");
    let again = create_key(&s, "d", json!({"kty":"EC"})).await;
    assert_ne!(again["key"]["kid"], first["key"]["kid"]);
    let (st, b) = sign(&s, &token, "d").await;
    assert_eq!(
        (st, &b["kid"]),
        (200, &again["key"]["kid"]),
        "the new key, not the purged one"
    );
    // Purge protection switched on: the next purge is refused.
    admin(&s, Method::DELETE, &format!("/keys/d?{V}"), None, &[200]).await;
    let (st, b) = call(
        &s,
        &token,
        Method::PATCH,
        &format!("/settings/PurgeProtection?{V}"),
        Some(json!({"value":"true"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = call(&s, &token, Method::DELETE, &format!("/deletedkeys/d?{V}"), None).await;
    assert_eq!(st, 403, "purge under purge protection: {b}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_key_restored_from_its_backup_is_served_at_once() {
    let s = TestServer::builder().start().await.unwrap();
    let created = create_key(&s, "b", json!({"kty":"EC"})).await;
    let token = s.token().await.unwrap();
    let (st, sig) = sign(&s, &token, "b").await;
    assert_eq!(st, 200);
    let blob = admin(&s, Method::POST, &format!("/keys/b/backup?{V}"), None, &[200]).await;
    admin(&s, Method::DELETE, &format!("/keys/b?{V}"), None, &[200]).await;
    admin(&s, Method::DELETE, &format!("/deletedkeys/b?{V}"), None, &[200, 204]).await;
    assert_eq!(sign(&s, &token, "b").await.0, 404);
    let restored = admin(&s, Method::POST, &format!("/keys/restore?{V}"), Some(blob), &[200]).await;
    assert_eq!(restored["key"]["kid"], created["key"]["kid"]);
    let (st, b) = sign(&s, &token, "b").await;
    assert_eq!((st, &b["kid"]), (200, &created["key"]["kid"]), "restored: {b}");
    let (st, ok) = call(
        &s,
        &token,
        Method::POST,
        &format!("/keys/b//verify?{V}"),
        Some(json!({"alg":"ES256","digest":DIGEST,"value":sig["value"]})),
    )
    .await;
    assert_eq!((st, ok["value"].as_bool()), (200, Some(true)), "the same key material");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_restore_is_seen_by_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let container = format!("file://{}", dir.path().display());
    let original = TestServer::builder().start().await.unwrap();
    original.assign(BACKUP, "/", &original.cred("object_id")).await.unwrap();
    let kept = create_key(&original, "kept", json!({"kty":"EC"})).await;
    // A principal of the original instance, allowed to sign.
    let (oid, cid, _, secret) = principal(&original, "from-backup").await;
    original.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    let done = original
        .run_job(
            Method::POST,
            &format!("/backup?{V}"),
            json!({"storageResourceUri": container, "token": null}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "Succeeded", "{done}");
    let url = done["azureStorageBlobContainerUri"].as_str().unwrap();
    let folder = url.strip_prefix(&format!("{container}/")).unwrap().to_string();

    // An instance recovered with the same security domain, with keys of its own, used (so cached) before.
    let rec = original.recover_into_new_instance().await.unwrap();
    rec.assign(RESTORE, "/", &rec.cred("object_id")).await.unwrap();
    let own = create_key(&rec, "kept", json!({"kty":"EC"})).await;
    create_key(&rec, "later", json!({"kty":"EC"})).await;
    let token = rec.token().await.unwrap();
    let (st, b) = sign(&rec, &token, "kept").await;
    assert_eq!((st, &b["kid"]), (200, &own["key"]["kid"]));
    assert_eq!(sign(&rec, &token, "later").await.0, 200);
    assert!(
        rec.token_for(&cid, &secret, &format!("{}/.default", rec.url()))
            .await
            .is_err(),
        "the backup's principal is not in this instance yet"
    );

    let done = rec
        .run_job(
            Method::PUT,
            &format!("/restore?{V}"),
            json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": folder}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "Succeeded", "{done}");
    // The same token, the next request: the backup's keys replace the instance's.
    let (st, b) = sign(&rec, &token, "kept").await;
    let kept_version = version_of(&kept["key"]["kid"]);
    assert_eq!(
        (st, version_of(&b["kid"])),
        (200, kept_version.clone()),
        "the restored key, not the one cached before the restore: {b}"
    );
    let (st, got) = get_key(&rec, &token, "kept").await;
    assert_eq!((st, &got["key"]["x"]), (200, &kept["key"]["x"]));
    let (st, b) = sign(&rec, &token, "later").await;
    assert_eq!(st, 404, "a key made after the backup is gone: {b}");
    // The backup's principal and its assignment are in force at once.
    let restored = token_for(&rec, &cid, &secret).await;
    let (st, b) = sign(&rec, &restored, "kept").await;
    assert_eq!((st, version_of(&b["kid"])), (200, kept_version), "{b}");
    for s in [original, rec] {
        s.stop().await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. A request started after a write's response uses a generation at least that write's.

/// `properties.stateGeneration` of every audit record, by correlation id.
fn audited_generations(s: &TestServer) -> BTreeMap<String, Option<u64>> {
    s.audit_records()
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r["correlationId"].as_str().unwrap_or_default().to_string(),
                r["properties"]["stateGeneration"].as_u64(),
            )
        })
        .collect()
}

/// The generation a request used: its audit record's, which the response header (when sent) must repeat.
fn generation(audited: &BTreeMap<String, Option<u64>>, r: &Reply) -> u64 {
    let g = audited
        .get(&r.correlation)
        .unwrap_or_else(|| panic!("no audit record for {}", r.correlation))
        .unwrap_or_else(|| panic!("no stateGeneration in the audit record of {}", r.correlation));
    if let Some(h) = r.generation {
        assert_eq!(h, g, "the {GENERATION_HEADER} header and the audit record disagree");
    }
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_started_after_a_write_use_its_generation_or_a_later_one() {
    let s = TestServer::builder()
        .configure(|c| c.throttling.enabled = false)
        .start()
        .await
        .unwrap();
    create_key(&s, "c", json!({"kty":"EC"})).await;
    let admin_token = s.token().await.unwrap();
    let (oid, cid, _, secret) = principal(&s, "reader").await;
    s.assign(CRYPTO_USER, "/", &oid).await.unwrap();
    let reader = token_for(&s, &cid, &secret).await;
    const WRITES: usize = 40;
    let done = std::sync::atomic::AtomicBool::new(false);

    let writer = async {
        let mut out = Vec::new();
        for i in 0..WRITES {
            let r = if i % 2 == 0 {
                // Toggle the key (reads of it are still served: GET does not need it enabled).
                send(
                    &s,
                    &s.client,
                    &admin_token,
                    Method::PATCH,
                    &format!("/keys/c/?{V}"),
                    Some(json!({"attributes":{"enabled": i % 4 != 0}})),
                )
                .await
            } else {
                send(
                    &s,
                    &s.client,
                    &admin_token,
                    Method::PUT,
                    &format!(
                        "/keys/c/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
                        coffer_testkit::uuid_like()
                    ),
                    Some(assignment_body(CRYPTO_AUDITOR, &oid, json!({}))),
                )
                .await
            };
            let ended = Instant::now();
            assert!(r.status == 200 || r.status == 201, "write {i}: {} {}", r.status, r.body);
            out.push((ended, r));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    };
    let read = || {
        let (s, reader, done) = (&s, reader.clone(), &done);
        async move {
            let mut out = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let r = send(s, &s.client, &reader, Method::GET, &format!("/keys/c/?{V}"), None).await;
                assert_eq!(r.status, 200, "{}", r.body);
                out.push((started, r));
            }
            out
        }
    };
    let (writes, r1, r2, r3) = tokio::join!(writer, read(), read(), read());
    let audited = audited_generations(&s);
    let writes: Vec<(Instant, u64)> = writes.iter().map(|(t, r)| (*t, generation(&audited, r))).collect();
    for w in writes.windows(2) {
        assert!(w[1].1 > w[0].1, "each write publishes a later generation: {w:?}");
    }
    let mut checked = 0;
    let mut later_than_first_write = 0;
    for (started, r) in r1.iter().chain(&r2).chain(&r3) {
        let used = generation(&audited, r);
        // The latest write whose response had completed before this read started.
        if let Some((_, required)) = writes.iter().rev().find(|(ended, _)| ended < started) {
            assert!(
                used >= *required,
                "a read started after a write of generation {required} used generation {used}"
            );
            checked += 1;
            if *required > writes[0].1 {
                later_than_first_write += 1;
            }
        }
    }
    assert!(
        checked >= WRITES && later_than_first_write > 0,
        "too few reads overlapped the writes: {checked}"
    );
    eprintln!(
        "{checked} reads checked against {WRITES} writes ({GENERATION_HEADER} sent: {})",
        r1.first().is_some_and(|(_, r)| r.generation.is_some())
    );
    s.stop().await.unwrap();
}
