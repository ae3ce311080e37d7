//! Key policies over HTTPS: definitions, assignments, Deny/Audit/Disabled on create, import, update and rotation,
//! the compliance report, the audit record's policy violations, who may manage policies, and bad input.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

/// A valid release policy (base64url of `{"version":"1.0.0","anyOf":[{"authority":"https://attest.example","allOf":[{"claim":"x","equals":true}]}]}`).
const RELEASE_POLICY: &str = "eyJ2ZXJzaW9uIjoiMS4wLjAiLCJhbnlPZiI6W3siYXV0aG9yaXR5IjoiaHR0cHM6Ly9hdHRlc3QuZXhhbXBsZSIsImFsbE9mIjpbeyJjbGFpbSI6IngiLCJlcXVhbHMiOnRydWV9XX1dfQ";
const V: &str = "api-version=7.6";
const POLICY_ADMINISTRATOR: &str = "4bd23610-cdcf-4971-bdee-bdc562cc28e4";
const CRYPTO_AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";
const EXPIRATION_SET: &str = "1d478a74-21ba-4b9f-9d8f-8e6fced0eec5";
const EXPIRATION_SET_NAME: &str = "[Preview]: Azure Key Vault Managed HSM keys should have an expiration date";
const DAY: i64 = 86_400;

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A server whose bootstrap principal also holds Managed HSM Policy Administrator.
async fn server() -> TestServer {
    let s = TestServer::builder().start().await.unwrap();
    s.assign(POLICY_ADMINISTRATOR, "/", &s.cred("object_id")).await.unwrap();
    s
}

async fn put_policy(s: &TestServer, name: &str, body: Value) -> (u16, Value) {
    s.call(Method::PUT, &format!("/coffer/v1/policies/{name}?{V}"), Some(body))
        .await
        .unwrap()
}

async fn assign_policy(s: &TestServer, name: &str, definition: &str, effect: &str, parameters: Value) {
    let (st, b) = put_policy(
        s,
        name,
        json!({"definitionId": definition, "effect": effect, "parameters": parameters}),
    )
    .await;
    assert!(st == 200 || st == 201, "{st} {b}");
}

async fn create(s: &TestServer, name: &str, body: Value) -> (u16, Value) {
    s.call(Method::POST, &format!("/keys/{name}/create?{V}"), Some(body))
        .await
        .unwrap()
}

/// Asserts a 403 ForbiddenByPolicy naming the assignment (and, when given, the definition's display name).
fn assert_denied(st: u16, b: &Value, assignment: &str, display: Option<&str>) {
    assert_eq!(st, 403, "{b}");
    assert_eq!(b["error"]["code"], "ForbiddenByPolicy", "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("'{assignment}'")), "{msg}");
    if let Some(d) = display {
        assert!(msg.contains(d), "{msg}");
    }
}

async fn compliance(s: &TestServer) -> Value {
    let (st, c) = s
        .call(Method::GET, &format!("/coffer/v1/compliance?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{c}");
    c
}

/// Names of the keys the compliance report lists for `assignment`.
fn non_compliant(c: &Value, assignment: &str) -> Vec<String> {
    c["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["assignment"] == assignment)
        .map(|e| {
            e["nonCompliant"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["key"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every audit record of the server, in order.
fn records(s: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for f in coffer_server::audit_sinks::file::list_files(&s.audit_dir()).unwrap() {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// A new principal holding `role` at `/`: its token.
async fn principal_with(s: &TestServer, name: &str, role: &str) -> String {
    let p = s.new_principal(name).await.unwrap();
    s.assign(role, "/", &p.object_id).await.unwrap();
    p.token
}

async fn call_as(s: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    s.call_as(token, method, path, body).await.unwrap()
}

#[tokio::test]
async fn expiration_policy_deny_audit_disabled_and_compliance() {
    let s = TestServer::builder().start().await.unwrap();
    // The administrator and crypto roles do not manage policies (the bootstrap principal also holds Policy
    // Administrator: a principal with those roles alone).
    let p = s.new_principal("admin-and-crypto").await.unwrap();
    for role in [
        "a290e904-7015-4bba-90c8-60543313cdb4",
        coffer_testkit::CRYPTO_USER,
        coffer_testkit::CRYPTO_OFFICER,
    ] {
        s.assign(role, "/", &p.object_id).await.unwrap();
    }
    let (st, b) = call_as(
        &s,
        &p.token,
        Method::PUT,
        &format!("/coffer/v1/policies/require-exp?{V}"),
        Some(json!({"definitionId": EXPIRATION_SET, "effect": "Deny"})),
    )
    .await;
    assert_eq!((st, b["error"]["code"].as_str()), (403, Some("Forbidden")), "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Coffer/policies/write/action")
    );
    s.assign(POLICY_ADMINISTRATOR, "/", &s.cred("object_id")).await.unwrap();

    // The built-in definitions.
    let (st, defs) = s
        .call(Method::GET, &format!("/coffer/v1/policy-definitions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{defs}");
    let defs = defs["value"].as_array().unwrap();
    assert_eq!(defs.len(), 7);
    let exp_def = defs.iter().find(|d| d["id"] == EXPIRATION_SET).unwrap();
    assert_eq!(exp_def["displayName"], EXPIRATION_SET_NAME);
    assert_eq!(
        exp_def["parameters"]["effect"]["allowedValues"],
        json!(["Audit", "Deny", "Disabled"])
    );
    let rsa_def = defs
        .iter()
        .find(|d| d["id"] == "86810a98-8e91-4a44-8386-ec66d0de5d57")
        .unwrap();
    assert_eq!(
        rsa_def["parameters"]["minimumRSAKeySize"]["allowedValues"],
        json!([2048, 3072, 4096])
    );

    // A key made before the policy exists.
    let (st, _) = create(&s, "old-no-exp", json!({"kty":"EC"})).await;
    assert_eq!(st, 200);

    // Deny: creation without exp is refused and nothing is written.
    let (st, a) = put_policy(
        &s,
        "require-exp",
        json!({"definitionId": EXPIRATION_SET, "effect": "Deny"}),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(
        (a["name"].as_str(), a["effect"].as_str(), a["displayName"].as_str()),
        (Some("require-exp"), Some("Deny"), Some(EXPIRATION_SET_NAME))
    );
    let (st, b) = create(&s, "no-exp", json!({"kty":"EC"})).await;
    assert_denied(st, &b, "require-exp", Some(EXPIRATION_SET_NAME));
    let (st, _) = s.call(Method::GET, &format!("/keys/no-exp?{V}"), None).await.unwrap();
    assert_eq!(st, 404, "a denied create writes nothing");
    let exp = now() + 30 * DAY;
    let (st, b) = create(&s, "with-exp", json!({"kty":"EC","attributes":{"exp": exp}})).await;
    assert_eq!(st, 200, "{b}");
    // The refusal is in the audit record, with the violation.
    let rec = records(&s)
        .into_iter()
        .rev()
        .find(|r| r["operationName"] == "KeyCreate" && r["properties"]["httpStatusCode"] == 403)
        .unwrap();
    let v = &rec["properties"]["details"]["policyViolations"][0];
    assert_eq!(
        (v["assignment"].as_str(), v["effect"].as_str(), v["key"].as_str()),
        (Some("require-exp"), Some("Deny"), Some("no-exp")),
        "{rec}"
    );

    // Update: the resulting attributes are evaluated. A change that leaves the old key without exp is refused;
    // setting exp is allowed.
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/old-no-exp/?{V}"),
            Some(json!({"tags":{"a":"b"}})),
        )
        .await
        .unwrap();
    assert_denied(st, &b, "require-exp", Some(EXPIRATION_SET_NAME));
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/old-no-exp/?{V}"),
            Some(json!({"attributes":{"exp": exp}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    let (st, b) = create(&s, "old2-no-exp", json!({"kty":"EC"})).await;
    assert_eq!(st, 403, "{b}");

    // Audit: creation goes through, the record notes the violation, and the compliance report lists the key.
    let (st, a) = put_policy(
        &s,
        "require-exp",
        json!({"definitionId": "mhsm-keys-expiration-set", "effect": "Audit"}),
    )
    .await;
    assert_eq!((st, a["effect"].as_str()), (200, Some("Audit")), "{a}");
    let (st, created) = create(&s, "audited", json!({"kty":"EC"})).await;
    assert_eq!(st, 200, "{created}");
    let version = created["key"]["kid"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let rec = records(&s)
        .into_iter()
        .rev()
        .find(|r| r["operationName"] == "KeyCreate" && r["properties"]["httpStatusCode"] == 200)
        .unwrap();
    let v = &rec["properties"]["details"]["policyViolations"];
    assert_eq!(v.as_array().unwrap().len(), 1, "{rec}");
    assert_eq!(
        (
            v[0]["assignment"].as_str(),
            v[0]["effect"].as_str(),
            v[0]["version"].as_str()
        ),
        (Some("require-exp"), Some("Audit"), Some(version.as_str()))
    );
    let c = compliance(&s).await;
    assert_eq!(non_compliant(&c, "require-exp"), ["audited"], "{c}");
    let entry = &c["value"][0];
    assert_eq!(entry["definitionId"], EXPIRATION_SET);
    assert_eq!(entry["displayName"], EXPIRATION_SET_NAME);
    assert_eq!(entry["effect"], "Audit");
    assert_eq!(entry["nonCompliant"][0]["version"], version.as_str());
    assert!(
        entry["nonCompliant"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("expiration")
    );
    assert_eq!(c["summary"]["keysEvaluated"], 3);
    assert_eq!(c["summary"]["nonCompliantKeys"], 1);
    // A deleted key is not listed.
    let (st, _) = s
        .call(Method::DELETE, &format!("/keys/audited?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert!(non_compliant(&compliance(&s).await, "require-exp").is_empty());

    // Disabled: nothing is evaluated or reported.
    assign_policy(&s, "require-exp", EXPIRATION_SET, "Disabled", json!({})).await;
    let (st, _) = create(&s, "free", json!({"kty":"EC"})).await;
    assert_eq!(st, 200);
    let c = compliance(&s).await;
    assert_eq!(c["value"], json!([]), "{c}");
    assert_eq!(c["summary"]["assignmentsEvaluated"], 0);

    // List, get, delete.
    let (st, list) = s
        .call(Method::GET, &format!("/coffer/v1/policies?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (st, one) = s
        .call(Method::GET, &format!("/coffer/v1/policies/REQUIRE-EXP?{V}"), None)
        .await
        .unwrap();
    assert_eq!(
        (st, one["name"].as_str()),
        (200, Some("require-exp")),
        "names are case-insensitive"
    );
    let (st, _) = s
        .call(Method::DELETE, &format!("/coffer/v1/policies/require-exp?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 204);
    for m in [Method::GET, Method::DELETE] {
        let (st, b) = s
            .call(m, &format!("/coffer/v1/policies/require-exp?{V}"), None)
            .await
            .unwrap();
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (404, Some("PolicyAssignmentNotFound"))
        );
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn key_type_size_curve_and_exportable_policies() {
    let s = server().await;
    assign_policy(
        &s,
        "rsa-3072",
        "mhsm-keys-rsa-minimum-key-size",
        "Deny",
        json!({"minimumRSAKeySize": 3072}),
    )
    .await;
    let (st, b) = create(&s, "rsa2k", json!({"kty":"RSA","key_size":2048})).await;
    assert_denied(
        st,
        &b,
        "rsa-3072",
        Some(
            "[Preview]: Azure Key Vault Managed HSM keys using RSA cryptography should have a specified minimum key size",
        ),
    );
    assert!(b["error"]["message"].as_str().unwrap().contains("2048"));
    let (st, _) = create(&s, "rsa3k", json!({"kty":"RSA","key_size":3072})).await;
    assert_eq!(st, 200);
    let (st, _) = create(&s, "ec-any", json!({"kty":"EC","crv":"P-256"})).await;
    assert_eq!(st, 200, "the RSA rule does not touch EC keys");

    assign_policy(
        &s,
        "curves",
        "e58fd0c1-feac-4d12-92db-0a7e9421f53e",
        "Deny",
        json!({"allowedECNames": {"value": ["P-384", "P-521"]}}),
    )
    .await;
    let (st, b) = create(&s, "p256", json!({"kty":"EC","crv":"P-256"})).await;
    assert_denied(st, &b, "curves", None);
    assert!(b["error"]["message"].as_str().unwrap().contains("P-256"));
    let (st, _) = create(&s, "p384", json!({"kty":"EC","crv":"P-384"})).await;
    assert_eq!(st, 200);

    assign_policy(
        &s,
        "types",
        "/providers/Microsoft.Authorization/policyDefinitions/1fd3b2cc-9904-40fa-b8da-050c02612da9",
        "Deny",
        json!({"allowedKeyTypes": ["RSA-HSM", "EC-HSM"]}),
    )
    .await;
    let (st, b) = create(&s, "aes", json!({"kty":"oct-HSM","key_size":256})).await;
    assert_denied(st, &b, "types", None);
    // Import goes through the same rules.
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/keys/aes-imp?{V}"),
            Some(json!({"key":{"kty":"oct-HSM","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}})),
        )
        .await
        .unwrap();
    assert_denied(st, &b, "types", None);

    assign_policy(&s, "no-export", "mhsm-keys-not-exportable", "Deny", json!({})).await;
    let (st, b) = create(
        &s,
        "exp-rsa",
        json!({"kty":"RSA","key_size":3072,"attributes":{"exportable":true},"release_policy":{"data":RELEASE_POLICY}}),
    )
    .await;
    assert_denied(st, &b, "no-export", Some("Managed HSM keys should not be exportable"));

    // Several Deny violations at once: each is named.
    let (st, b) = create(
        &s,
        "bad-all",
        json!({"kty":"oct-HSM","attributes":{"exportable":true},"release_policy":{"data":RELEASE_POLICY}}),
    )
    .await;
    assert_denied(st, &b, "types", None);
    assert_denied(st, &b, "no-export", None);
    // Audit switches let everything through and the report lists what fails.
    for (name, def, params) in [
        (
            "rsa-3072",
            "mhsm-keys-rsa-minimum-key-size",
            json!({"minimumRSAKeySize": 4096}),
        ),
        (
            "curves",
            "mhsm-keys-ec-allowed-curves",
            json!({"allowedECNames": ["P-521"]}),
        ),
    ] {
        assign_policy(&s, name, def, "Audit", params).await;
    }
    let c = compliance(&s).await;
    assert_eq!(non_compliant(&c, "rsa-3072"), ["rsa3k"], "{c}");
    assert_eq!(non_compliant(&c, "curves"), ["ec-any", "p384"], "{c}");
    assert!(non_compliant(&c, "types").is_empty());
    assert_eq!(c["summary"]["nonCompliantKeys"], 3);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn validity_policies_and_rotation() {
    let s = server().await;
    assign_policy(
        &s,
        "max-30d",
        "mhsm-keys-maximum-validity",
        "Deny",
        json!({"maximumValidityInDays": 30}),
    )
    .await;
    let t = now();
    let (st, b) = create(&s, "long", json!({"kty":"EC","attributes":{"exp": t + 40 * DAY}})).await;
    assert_denied(
        st,
        &b,
        "max-30d",
        Some("Managed HSM keys should have the specified maximum validity period"),
    );
    let (st, b) = create(&s, "none", json!({"kty":"EC"})).await;
    assert_denied(st, &b, "max-30d", None);
    let (st, _) = create(&s, "short", json!({"kty":"EC","attributes":{"exp": t + 20 * DAY}})).await;
    assert_eq!(st, 200);
    // Validity counts from nbf when one is set.
    let (st, b) = create(
        &s,
        "later",
        json!({"kty":"EC","attributes":{"nbf": t + 15 * DAY, "exp": t + 40 * DAY}}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    // Extending exp by update is evaluated too.
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/short/?{V}"),
            Some(json!({"attributes":{"exp": t + 45 * DAY}})),
        )
        .await
        .unwrap();
    assert_denied(st, &b, "max-30d", None);

    assign_policy(
        &s,
        "min-10d",
        "mhsm-keys-minimum-days-before-expiration",
        "Deny",
        json!({"minimumDaysBeforeExpiration": 10}),
    )
    .await;
    let (st, b) = create(&s, "soon", json!({"kty":"EC","attributes":{"exp": t + 5 * DAY}})).await;
    assert_denied(st, &b, "min-10d", None);
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/keys/short/?{V}"),
            Some(json!({"attributes":{"exp": t + 2 * DAY}})),
        )
        .await
        .unwrap();
    assert_denied(st, &b, "min-10d", None);

    // Rotation: the new version gets exp = now + expiryTime (60 days), more than 30: refused.
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("/keys/short/rotationpolicy?{V}"),
            Some(json!({"lifetimeActions":[],"attributes":{"expiryTime":"P60D"}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .call(Method::POST, &format!("/keys/short/rotate?{V}"), None)
        .await
        .unwrap();
    assert_denied(st, &b, "max-30d", None);
    let (_, versions) = s
        .call(Method::GET, &format!("/keys/short/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 1, "no version was added");
    // With a 90-day maximum the rotation is allowed.
    assign_policy(
        &s,
        "max-30d",
        "mhsm-keys-maximum-validity",
        "Deny",
        json!({"maximumValidityInDays": 90}),
    )
    .await;
    let (st, b) = s
        .call(Method::POST, &format!("/keys/short/rotate?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    let exp = b["attributes"]["exp"].as_i64().unwrap();
    assert!((t + 59 * DAY..=now() + 61 * DAY).contains(&exp), "{b}");
    // A rotation policy without expiryTime makes versions without exp: refused under "expiration date".
    assign_policy(&s, "require-exp", EXPIRATION_SET, "Deny", json!({})).await;
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/keys/short/rotationpolicy?{V}"),
            Some(json!({"lifetimeActions":[]})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, b) = s
        .call(Method::POST, &format!("/keys/short/rotate?{V}"), None)
        .await
        .unwrap();
    assert_denied(st, &b, "require-exp", Some(EXPIRATION_SET_NAME));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn who_may_read_and_manage_policies() {
    let s = TestServer::builder().start().await.unwrap();
    let admin = principal_with(&s, "pol-admin", POLICY_ADMINISTRATOR).await;
    let auditor = principal_with(&s, "pol-auditor", CRYPTO_AUDITOR).await;
    let user = principal_with(&s, "pol-user", coffer_testkit::CRYPTO_USER).await;
    let body = json!({"definitionId": EXPIRATION_SET, "effect": "Audit"});
    let path = format!("/coffer/v1/policies/p1?{V}");
    // Crypto User: nothing.
    for (m, p, b) in [
        (Method::GET, format!("/coffer/v1/policies?{V}"), None),
        (Method::PUT, path.clone(), Some(body.clone())),
        (Method::GET, format!("/coffer/v1/compliance?{V}"), None),
        (Method::GET, format!("/coffer/v1/policy-definitions?{V}"), None),
    ] {
        let (st, r) = call_as(&s, &user, m, &p, b).await;
        assert_eq!((st, r["error"]["code"].as_str()), (403, Some("Forbidden")), "{p}: {r}");
    }
    // Policy Administrator: manages them.
    let (st, r) = call_as(&s, &admin, Method::PUT, &path, Some(body.clone())).await;
    assert_eq!(st, 201, "{r}");
    // Crypto Auditor: reads them and the report, cannot change them.
    for p in [
        format!("/coffer/v1/policies?{V}"),
        path.clone(),
        format!("/coffer/v1/compliance?{V}"),
        format!("/coffer/v1/policy-definitions?{V}"),
    ] {
        let (st, r) = call_as(&s, &auditor, Method::GET, &p, None).await;
        assert_eq!(st, 200, "{p}: {r}");
    }
    for (m, b) in [(Method::PUT, Some(body.clone())), (Method::DELETE, None)] {
        let (st, r) = call_as(&s, &auditor, m, &path, b).await;
        assert_eq!(st, 403, "{r}");
    }
    let (st, _) = call_as(&s, &admin, Method::DELETE, &path, None).await;
    assert_eq!(st, 204);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn bad_policy_assignments_are_refused() {
    let s = server().await;
    let cases = [
        (
            "p",
            json!({"definitionId": "00000000-0000-0000-0000-000000000000"}),
            "unknown definition",
        ),
        (
            "p",
            json!({"definitionId": EXPIRATION_SET, "effect": "Block"}),
            "unknown effect",
        ),
        ("p", json!({"effect": "Deny"}), "no definition"),
        (
            "p",
            json!({"definitionId": "mhsm-keys-maximum-validity", "effect": "Deny"}),
            "required parameter missing",
        ),
        (
            "p",
            json!({"definitionId": "mhsm-keys-maximum-validity", "parameters": {"maximumValidityInDays": -1}}),
            "out of range",
        ),
        (
            "p",
            json!({"definitionId": "mhsm-keys-rsa-minimum-key-size", "parameters": {"minimumRSAKeySize": 1024}}),
            "not an allowed value",
        ),
        (
            "p",
            json!({"definitionId": "mhsm-keys-ec-allowed-curves", "parameters": {"allowedECNames": ["P-192"]}}),
            "unknown curve",
        ),
        (
            "p",
            json!({"definitionId": "mhsm-keys-allowed-key-types", "parameters": {"allowedKeyTypes": "RSA-HSM"}}),
            "not an array",
        ),
        (
            "p",
            json!({"definitionId": EXPIRATION_SET, "parameters": {"minimumRSAKeySize": 2048}}),
            "unknown parameter",
        ),
        (
            "p",
            json!({"definitionId": EXPIRATION_SET, "effect": "Deny", "parameters": {"effect": "Audit"}}),
            "conflicting effects",
        ),
        ("bad!name", json!({"definitionId": EXPIRATION_SET}), "invalid name"),
    ];
    for (name, body, why) in cases {
        let (st, b) = put_policy(&s, name, body).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (400, Some("BadParameter")),
            "{why}: {b}"
        );
    }
    let (st, b) = s
        .call(Method::PUT, &format!("/coffer/v1/policies/p?{V}"), None)
        .await
        .unwrap();
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (400, Some("BadParameter")),
        "no body: {b}"
    );
    let (st, list) = s
        .call(Method::GET, &format!("/coffer/v1/policies?{V}"), None)
        .await
        .unwrap();
    assert_eq!((st, list["value"].clone()), (200, json!([])), "nothing was stored");
    let (st, _) = s
        .call(Method::POST, &format!("/coffer/v1/policies/p?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 405);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn policy_assignments_travel_with_a_full_backup() {
    const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
    const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";
    let dir = tempfile::tempdir().unwrap();
    let container = format!("file://{}", dir.path().display());
    let original = server().await;
    original.assign(BACKUP, "/", &original.cred("object_id")).await.unwrap();
    assign_policy(
        &original,
        "Min-RSA",
        "mhsm-keys-rsa-minimum-key-size",
        "Deny",
        json!({"minimumRSAKeySize": 4096}),
    )
    .await;
    let done = original
        .run_job(
            Method::POST,
            &format!("/backup?{V}"),
            json!({"storageResourceUri": container, "token": null}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "Succeeded", "{done}");
    let folder_url = done["azureStorageBlobContainerUri"].as_str().unwrap().to_string();
    let folder = folder_url.strip_prefix(&format!("{container}/")).unwrap().to_string();

    let rec = original.recover_into_new_instance().await.unwrap();
    for role in [RESTORE, POLICY_ADMINISTRATOR] {
        rec.assign(role, "/", &rec.cred("object_id")).await.unwrap();
    }
    assign_policy(&rec, "to-be-replaced", EXPIRATION_SET, "Audit", json!({})).await;
    let done = rec
        .run_job(
            Method::PUT,
            &format!("/restore?{V}"),
            json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": folder}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "Succeeded", "{done}");
    let (st, list) = rec
        .call(Method::GET, &format!("/coffer/v1/policies?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    let list = list["value"].as_array().unwrap();
    // The backup's policy is added; the one the instance already had stays (a restore never loosens protection).
    assert_eq!(list.len(), 2, "{list:?}");
    let min_rsa = list.iter().find(|p| p["name"] == "Min-RSA").unwrap();
    assert_eq!(min_rsa["effect"], "Deny");
    assert_eq!(min_rsa["parameters"]["minimumRSAKeySize"], 4096);
    assert!(list.iter().any(|p| p["name"] == "to-be-replaced"), "{list:?}");
    let (st, b) = create(&rec, "rsa3k", json!({"kty":"RSA","key_size":3072})).await;
    assert_denied(st, &b, "Min-RSA", None);
    let (st, _) = create(&rec, "ec", json!({"kty":"EC"})).await;
    assert_eq!(st, 200, "the instance's own expiration policy only audits");
    original.stop().await.unwrap();
    rec.stop().await.unwrap();
}
