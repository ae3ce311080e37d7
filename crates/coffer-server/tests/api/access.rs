//! Just-in-time administration, time-bound assignments, separation of duties, access review and conditional
//! access (client address ranges).
use coffer_testkit::{CRYPTO_OFFICER, CRYPTO_USER, TestServer};
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";
const AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";
const ADMIN: &str = "a290e904-7015-4bba-90c8-60543313cdb4";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn principal(s: &TestServer, name: &str) -> (String, String) {
    let (st, p) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName": name})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201);
    let token = s
        .token_for(
            p["clientId"].as_str().unwrap(),
            p["clientSecret"].as_str().unwrap(),
            &format!("{}/.default", s.url()),
        )
        .await
        .unwrap();
    (p["objectId"].as_str().unwrap().to_string(), token)
}

async fn status(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = s
        .client
        .request(method, format!("{}{path}", s.url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let st = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        st,
        if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

fn assignment_body(role: &str, principal: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut props = json!({"roleDefinitionId": format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"), "principalId": principal});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({ "properties": props })
}

#[tokio::test]
async fn time_bound_assignments_stop_granting_without_a_restart() {
    let s = TestServer::builder().start().await.unwrap();
    s.call(Method::POST, &format!("/keys/tb/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    let (oid, token) = principal(&s, "temp").await;
    let name = coffer_testkit::uuid_like();
    let path = format!("/providers/Microsoft.Authorization/roleAssignments/{name}?{V}");
    let (st, a) = s
        .call(
            Method::PUT,
            &path,
            Some(assignment_body(AUDITOR, &oid, json!({"expiresOn": now() + 2}))),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{a}");
    assert!(a["properties"]["expiresOn"].as_i64().is_some());
    assert_eq!(
        status(&s, &token, Method::GET, &format!("/keys/tb/?{V}"), None).await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        status(&s, &token, Method::GET, &format!("/keys/tb/?{V}"), None).await.0,
        403,
        "expired"
    );
    // An expiry in the past is refused.
    let (st, _) = s
        .call(
            Method::PUT,
            &format!(
                "/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
                coffer_testkit::uuid_like()
            ),
            Some(assignment_body(AUDITOR, &oid, json!({"expiresOn": now() - 5}))),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn eligible_assignments_are_activated_with_a_justification() {
    let s = TestServer::builder().start().await.unwrap();
    s.call(
        Method::POST,
        &format!("/keys/jit/create?{V}"),
        Some(json!({"kty":"EC"})),
    )
    .await
    .unwrap();
    let (oid, token) = principal(&s, "oncall").await;
    let (_, other_token) = principal(&s, "other").await;
    let (st, e) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/eligible-assignments?{V}"),
            Some(json!({
            "scope": "/keys", "roleDefinitionId": CRYPTO_OFFICER, "principalId": oid, "maxDurationSeconds": 3600})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{e}");
    let name = e["name"].as_str().unwrap().to_string();
    // Eligible is not active.
    let deleted = format!("/deletedkeys?{V}");
    assert_eq!(status(&s, &token, Method::GET, &deleted, None).await.0, 403);
    // The principal sees its own eligibility; another principal cannot activate it.
    let (st, mine) = status(
        &s,
        &token,
        Method::GET,
        &format!("/coffer/v1/eligible-assignments?{V}"),
        None,
    )
    .await;
    assert_eq!((st, mine["value"].as_array().unwrap().len()), (200, 1));
    let activate = format!("/coffer/v1/eligible-assignments/{name}/activate?{V}");
    let (st, _) = status(
        &s,
        &other_token,
        Method::POST,
        &activate,
        Some(json!({"durationSeconds": 600, "justification": "incident 42"})),
    )
    .await;
    assert_eq!(st, 403);
    // No justification, or too long a duration: refused.
    let (st, _) = status(
        &s,
        &token,
        Method::POST,
        &activate,
        Some(json!({"durationSeconds": 600, "justification": ""})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = status(
        &s,
        &token,
        Method::POST,
        &activate,
        Some(json!({"durationSeconds": 7200, "justification": "incident 42"})),
    )
    .await;
    assert_eq!(st, 400);
    let (st, a) = status(
        &s,
        &token,
        Method::POST,
        &activate,
        Some(json!({"durationSeconds": 600, "justification": "incident 42"})),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(a["properties"]["scope"], "/keys");
    assert_eq!(a["properties"]["justification"], "incident 42");
    let until = a["properties"]["expiresOn"].as_i64().unwrap();
    assert!((until - now() - 600).abs() <= 5);
    assert_eq!(
        status(&s, &token, Method::GET, &deleted, None).await.0,
        200,
        "active after activation"
    );
    let (st, acts) = s
        .call(Method::GET, &format!("/coffer/v1/activations?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(acts["value"][0]["justification"], "incident 42");
    assert_eq!(acts["value"][0]["principalId"], oid.as_str());
    s.stop().await.unwrap();
}

#[tokio::test]
async fn separation_of_duties_warn_and_deny() {
    let warn = TestServer::builder()
        .bare()
        .separation_of_duties("warn")
        .start()
        .await
        .unwrap();
    let oid = warn.cred("object_id"); // holds Administrator at /
    let path = format!(
        "/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
        coffer_testkit::uuid_like()
    );
    let token = warn.token().await.unwrap();
    let resp = warn
        .client
        .put(format!("{}{path}", warn.url()))
        .bearer_auth(&token)
        .json(&assignment_body(CRYPTO_USER, &oid, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let w = resp
        .headers()
        .get("x-coffer-warning")
        .expect("a warning")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        w.contains("Managed HSM Administrator") && w.contains("Managed HSM Crypto User"),
        "{w}"
    );
    let (_, review) = warn
        .call(
            Method::GET,
            &format!("/coffer/v1/access-review?{V}&unusedDays=30"),
            None,
        )
        .await
        .unwrap();
    assert!(
        review["separationOfDutiesConflicts"][oid.as_str()].is_array(),
        "{review}"
    );
    warn.stop().await.unwrap();

    let deny = TestServer::builder()
        .bare()
        .separation_of_duties("deny")
        .start()
        .await
        .unwrap();
    let oid = deny.cred("object_id");
    let (st, b) = deny
        .call(Method::PUT, &path, Some(assignment_body(CRYPTO_USER, &oid, json!({}))))
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (400, Some("BadParameter")), "{b}");
    let (_, list) = deny
        .call(
            Method::GET,
            &format!("/providers/Microsoft.Authorization/roleAssignments?{V}"),
            None,
        )
        .await
        .unwrap();
    assert!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| !a["properties"]["roleDefinitionId"]
                .as_str()
                .unwrap()
                .ends_with(CRYPTO_USER)),
        "nothing was written"
    );
    // A non-conflicting role is fine under deny.
    let (st, _) = deny
        .call(Method::PUT, &path, Some(assignment_body(AUDITOR, &oid, json!({}))))
        .await
        .unwrap();
    assert_eq!(st, 201);
    deny.stop().await.unwrap();
}

#[tokio::test]
async fn access_review_reports_use_roles_and_individual_admins() {
    let s = TestServer::builder().start().await.unwrap();
    s.call(Method::POST, &format!("/keys/ar/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    let (oid, token) = principal(&s, "reviewed").await;
    let used = s.assign(AUDITOR, "/", &oid).await.unwrap();
    let unused = s.assign(ADMIN, "/", &oid).await.unwrap();
    assert_eq!(
        status(&s, &token, Method::GET, &format!("/keys/ar/?{V}"), None).await.0,
        200
    );
    let (st, r) = s
        .call(
            Method::GET,
            &format!("/coffer/v1/access-review?{V}&unusedDays=30"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let find = |name: &str| {
        r["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap()
    };
    assert!(
        find(&used)["lastUsed"].as_i64().is_some(),
        "the auditor assignment was used"
    );
    assert!(find(&unused)["lastUsed"].is_null());
    assert_eq!(find(&used)["principalType"], "principal");
    let unused_list: Vec<&str> = r["unusedAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(unused_list.contains(&unused.as_str()) && !unused_list.contains(&used.as_str()));
    let admins: Vec<&str> = r["individualAdministrators"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(admins.contains(&oid.as_str()) && admins.contains(&s.cred("object_id").as_str()));
    assert_eq!(
        r["principalsWithSeveralRoles"][oid.as_str()].as_array().unwrap().len(),
        2
    );
    // Only holders of roleAssignments/read get the review.
    assert_eq!(
        status(&s, &token, Method::GET, &format!("/coffer/v1/access-review?{V}"), None)
            .await
            .0,
        200
    );
    let (_, stranger) = principal(&s, "stranger").await;
    assert_eq!(
        status(
            &s,
            &stranger,
            Method::GET,
            &format!("/coffer/v1/access-review?{V}"),
            None
        )
        .await
        .0,
        403
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn conditional_access_limits_principals_and_assignments_to_networks() {
    let s = TestServer::builder().start().await.unwrap();
    s.call(Method::POST, &format!("/keys/ca/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    let (oid, token) = principal(&s, "net").await;
    // An assignment limited to 10.0.0.0/8 does not grant to a caller on 127.0.0.1.
    let name = coffer_testkit::uuid_like();
    let path = format!("/providers/Microsoft.Authorization/roleAssignments/{name}?{V}");
    let (st, _) = s
        .call(
            Method::PUT,
            &path,
            Some(assignment_body(
                AUDITOR,
                &oid,
                json!({"allowedNetworks": ["10.0.0.0/8"]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(st, 201);
    let get = format!("/keys/ca/?{V}");
    assert_eq!(status(&s, &token, Method::GET, &get, None).await.0, 403);
    s.call(Method::DELETE, &path, None).await.unwrap();
    let (st, _) = s
        .call(
            Method::PUT,
            &path,
            Some(assignment_body(
                AUDITOR,
                &oid,
                json!({"allowedNetworks": ["127.0.0.0/8"]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(st, 201);
    assert_eq!(status(&s, &token, Method::GET, &get, None).await.0, 200);
    // The principal itself limited to another network: denied even with the assignment.
    let nets = format!("/coffer/v1/principals/{oid}/networks?{V}");
    let (st, _) = s
        .call(
            Method::PUT,
            &nets,
            Some(json!({"allowedNetworks": ["192.168.0.0/16", "2001:db8::/32"]})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(status(&s, &token, Method::GET, &get, None).await.0, 403);
    let (st, _) = s
        .call(Method::PUT, &nets, Some(json!({"allowedNetworks": []})))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(status(&s, &token, Method::GET, &get, None).await.0, 200);
    // Bad ranges are refused.
    let (st, _) = s
        .call(Method::PUT, &nets, Some(json!({"allowedNetworks": ["10.0.0.0/33"]})))
        .await
        .unwrap();
    assert_eq!(st, 400);
    s.stop().await.unwrap();
}
