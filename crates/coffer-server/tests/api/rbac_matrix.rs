//! The authorization matrix: for every built-in role and every operation of the keys, RBAC and identity APIs,
//! the expected allow or deny through HTTP. The expectations are written from builtin-roles.md (the dataActions a
//! real Managed HSM returns for each role), not from the server's code.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";
const DIGEST: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";

/// (operation, method, path, body). `{r}` is replaced by the role's short name, for operations that create.
fn operations() -> Vec<(&'static str, Method, String, Option<serde_json::Value>)> {
    let rnd = uuid_for("rd");
    vec![
        (
            "create",
            Method::POST,
            "/keys/new-{r}/create".into(),
            Some(json!({"kty":"EC"})),
        ),
        (
            "import",
            Method::PUT,
            "/keys/imp-{r}".into(),
            Some(json!({"key":{"kty":"oct-HSM","k":"AAAA"}})),
        ),
        ("get", Method::GET, "/keys/mx/".into(), None),
        ("list", Method::GET, "/keys".into(), None),
        ("versions", Method::GET, "/keys/mx/versions".into(), None),
        ("update", Method::PATCH, "/keys/mx/".into(), Some(json!({}))),
        ("delete", Method::DELETE, "/keys/absent-{r}".into(), None),
        ("backup", Method::POST, "/keys/mx/backup".into(), None),
        (
            "restore",
            Method::POST,
            "/keys/restore".into(),
            Some(json!({"value":"AAAA"})),
        ),
        (
            "encrypt",
            Method::POST,
            "/keys/mx//encrypt".into(),
            Some(json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ),
        (
            "decrypt",
            Method::POST,
            "/keys/mx//decrypt".into(),
            Some(json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ),
        (
            "wrap",
            Method::POST,
            "/keys/mx//wrapkey".into(),
            Some(json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ),
        (
            "unwrap",
            Method::POST,
            "/keys/mx//unwrapkey".into(),
            Some(json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ),
        (
            "sign",
            Method::POST,
            "/keys/mx//sign".into(),
            Some(json!({"alg":"RS256","value":DIGEST})),
        ),
        (
            "verify",
            Method::POST,
            "/keys/mx//verify".into(),
            Some(json!({"alg":"RS256","digest":DIGEST,"value":"AAAA"})),
        ),
        ("rng", Method::POST, "/rng".into(), Some(json!({"count":8}))),
        ("deleted-list", Method::GET, "/deletedkeys".into(), None),
        ("deleted-get", Method::GET, "/deletedkeys/absent".into(), None),
        ("recover", Method::POST, "/deletedkeys/absent/recover".into(), None),
        ("purge", Method::DELETE, "/deletedkeys/absent".into(), None),
        (
            "roledef-list",
            Method::GET,
            "/providers/Microsoft.Authorization/roleDefinitions".into(),
            None,
        ),
        (
            "roledef-put",
            Method::PUT,
            format!("/providers/Microsoft.Authorization/roleDefinitions/{rnd}"),
            Some(
                json!({"properties":{"roleName":"custom-{r}","permissions":[{"dataActions":["Microsoft.KeyVault/managedHsm/keys/read/action"]}]}}),
            ),
        ),
        (
            "roledef-delete",
            Method::DELETE,
            "/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-0000-0000-00000000dead".into(),
            None,
        ),
        (
            "assign-list",
            Method::GET,
            "/providers/Microsoft.Authorization/roleAssignments".into(),
            None,
        ),
        (
            "assign-put",
            Method::PUT,
            format!(
                "/keys/providers/Microsoft.Authorization/roleAssignments/{}",
                uuid_for("ra")
            ),
            Some(
                json!({"properties":{"roleDefinitionId":"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b","principalId":"11111111-1111-1111-1111-111111111111"}}),
            ),
        ),
        (
            "assign-delete",
            Method::DELETE,
            "/providers/Microsoft.Authorization/roleAssignments/00000000-0000-0000-0000-00000000dead".into(),
            None,
        ),
        (
            "principal-create",
            Method::POST,
            "/coffer/v1/principals".into(),
            Some(json!({"displayName":"p-{r}"})),
        ),
        ("principal-list", Method::GET, "/coffer/v1/principals".into(), None),
        ("policy-list", Method::GET, "/coffer/v1/policies".into(), None),
        (
            "policy-put",
            Method::PUT,
            "/coffer/v1/policies/pol-{r}".into(),
            Some(json!({"definitionId":"1d478a74-21ba-4b9f-9d8f-8e6fced0eec5","effect":"Disabled"})),
        ),
        ("compliance", Method::GET, "/coffer/v1/compliance".into(), None),
    ]
}

fn uuid_for(_tag: &str) -> String {
    coffer_testkit::uuid_like()
}

/// Role GUID, short name, and the operations it allows (from builtin-roles.md).
fn roles() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let role_admin = vec![
        "roledef-list",
        "roledef-put",
        "roledef-delete",
        "assign-list",
        "assign-put",
        "assign-delete",
    ];
    let mut officer = role_admin.clone();
    officer.extend(["deleted-list", "deleted-get", "recover", "purge"]);
    vec![
        ("a290e904-7015-4bba-90c8-60543313cdb4", "admin", role_admin.clone()),
        ("515eb02d-2335-4d2d-92f2-b1cbdf9c3778", "officer", officer),
        (
            "21dbd100-6940-42c2-9190-5d6cb909625b",
            "user",
            vec![
                "create",
                "import",
                "get",
                "list",
                "versions",
                "update",
                "delete",
                "backup",
                "restore",
                "encrypt",
                "decrypt",
                "wrap",
                "unwrap",
                "sign",
                "verify",
                "rng",
                "roledef-list",
                "assign-list",
            ],
        ),
        (
            "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
            "policy",
            [role_admin, vec!["policy-list", "policy-put", "compliance"]].concat(),
        ),
        (
            "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
            "auditor",
            vec![
                "get",
                "list",
                "versions",
                "deleted-list",
                "deleted-get",
                "roledef-list",
                "assign-list",
                "policy-list",
                "compliance",
            ],
        ),
        (
            "33413926-3206-4cdd-b39a-83574fe37a17",
            "svc-enc",
            vec!["get", "list", "versions", "wrap", "unwrap"],
        ),
        ("21dbd100-6940-42c2-9190-5d6cb909625c", "svc-release", vec![]),
        ("7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8", "backup", vec!["backup"]),
        ("6efe6056-5259-49d2-8b3d-d3d73544b20b", "restore", vec!["restore"]),
        (
            "c0ffe700-1d00-4a00-8000-00000000a001",
            "identity",
            vec!["principal-create", "principal-list"],
        ),
    ]
}

async fn token_for(s: &TestServer, client_id: &str, secret: &str) -> String {
    s.token_for(client_id, secret, &format!("{}/.default", s.url()))
        .await
        .unwrap()
}

#[tokio::test]
async fn every_builtin_role_against_every_operation() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/mx/create?{V}"),
            Some(json!({"kty":"RSA","key_size":2048})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let mut failures = Vec::new();
    for (guid, short, allowed) in roles() {
        let (st, p) = s
            .call(
                Method::POST,
                &format!("/coffer/v1/principals?{V}"),
                Some(json!({"displayName": short})),
            )
            .await
            .unwrap();
        assert_eq!(st, 201, "{p}");
        s.assign(guid, "/", p["objectId"].as_str().unwrap()).await.unwrap();
        let token = token_for(&s, p["clientId"].as_str().unwrap(), p["clientSecret"].as_str().unwrap()).await;
        for (op, method, path, body) in operations() {
            let path = path.replace("{r}", short);
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut req = s
                .client
                .request(method, format!("{}{path}{sep}{V}", s.url()))
                .bearer_auth(&token);
            if let Some(b) = body {
                let text = b.to_string().replace("{r}", short);
                req = req.header("content-type", "application/json").body(text);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let expect_allowed = allowed.contains(&op);
            let got_allowed = status != 403;
            assert_ne!(status, 401, "{short} {op}: authentication failed");
            if expect_allowed != got_allowed {
                failures.push(format!(
                    "{short} {op}: expected {}, got {status}",
                    if expect_allowed { "allow" } else { "deny" }
                ));
            }
            if status == 403 {
                let body: serde_json::Value = resp.json().await.unwrap();
                assert_eq!(body["error"]["code"], "Forbidden", "{short} {op}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn scoped_group_and_revoked_grants() {
    let s = TestServer::builder().start().await.unwrap();
    for k in ["k1", "k2"] {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/{k}/create?{V}"),
                Some(json!({"kty":"EC"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    let (_, p) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"scoped"})),
        )
        .await
        .unwrap();
    let (oid, cid, secret) = (
        p["objectId"].as_str().unwrap(),
        p["clientId"].as_str().unwrap(),
        p["clientSecret"].as_str().unwrap(),
    );
    let get = |token: String, key: &'static str| {
        let s = &s;
        async move {
            s.client
                .get(format!("{}/keys/{key}/?{V}", s.url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let t = token_for(&s, cid, secret).await;
    assert_eq!(get(t.clone(), "k1").await, 403, "no assignment yet");
    // A grant at /keys/k1 reaches k1 only (names are case-insensitive).
    let name = s
        .assign("21dbd100-6940-42c2-9190-5d6cb909625b", "/keys/K1", oid)
        .await
        .unwrap();
    assert_eq!(get(t.clone(), "k1").await, 200);
    assert_eq!(get(t.clone(), "k2").await, 403);
    let list = s
        .client
        .get(format!("{}/keys?{V}", s.url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(list, 403, "listing is at /keys");
    // Revocation applies at once, to the same token.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/keys/k1/providers/Microsoft.Authorization/roleAssignments/{name}?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(get(t.clone(), "k1").await, 403);
    // A group assignment grants its members (in tokens issued after they join).
    let (st, g) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/groups?{V}"),
            Some(json!({"displayName":"readers"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201);
    let gid = g["objectId"].as_str().unwrap();
    s.assign("2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "/keys", gid)
        .await
        .unwrap();
    let (st, _) = s
        .call(Method::PUT, &format!("/coffer/v1/groups/{gid}/members/{oid}?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 204);
    let t2 = token_for(&s, cid, secret).await;
    assert_eq!(get(t2.clone(), "k2").await, 200);
    let create = s
        .client
        .post(format!("{}/keys/k3/create?{V}", s.url()))
        .bearer_auth(&t2)
        .json(&json!({"kty":"EC"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(create, 403, "Crypto Auditor cannot create");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/coffer/v1/groups/{gid}/members/{oid}?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 204);
    let t3 = token_for(&s, cid, secret).await;
    assert_eq!(get(t3, "k2").await, 403, "membership removed");
    // Deleting the principal ends its ability to get tokens.
    let (st, _) = s
        .call(Method::DELETE, &format!("/coffer/v1/principals/{oid}?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 204);
    let form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", cid.to_string()),
        ("client_secret", secret.to_string()),
        ("scope", format!("{}/.default", s.url())),
    ];
    let st = s
        .client
        .post(s.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(st, 401);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn custom_roles_and_bad_rbac_input() {
    let s = TestServer::builder().start().await.unwrap();
    let rd = "/providers/Microsoft.Authorization/roleDefinitions";
    let ra = "/providers/Microsoft.Authorization/roleAssignments";
    let id = coffer_testkit::uuid_like();
    // A custom role that grants read and sign but excludes sign in the same block: read only.
    let body = json!({"properties":{"roleName":"reader-ish","permissions":[{"dataActions":[
        "Microsoft.KeyVault/managedHsm/keys/read/action","Microsoft.KeyVault/managedHsm/keys/sign/action"],
        "notDataActions":["Microsoft.KeyVault/managedHsm/keys/sign/action"]}]}});
    let (st, def) = s
        .call(Method::PUT, &format!("{rd}/{id}?{V}"), Some(body))
        .await
        .unwrap();
    assert_eq!(st, 201, "{def}");
    assert_eq!(def["properties"]["type"], "CustomRole");
    assert_eq!(
        def["id"],
        format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{id}")
    );
    let (_, list) = s
        .call(Method::GET, &format!("///{}?{V}", rd.trim_start_matches('/')), None)
        .await
        .unwrap();
    assert!(
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == id.as_str()),
        "///providers form lists it"
    );
    for (body, want) in [
        (
            json!({"properties":{"permissions":[{"dataActions":["Microsoft.KeyVault/managedHsm/keys/fly/action"]}]}}),
            400,
        ),
        (json!({"nope": 1}), 400),
        (json!({"properties":{"roleName":"x"}}), 400),
    ] {
        let path = if want == 400 && body.get("properties").is_some_and(|p| p.get("roleName").is_some()) {
            format!("{rd}/a290e904-7015-4bba-90c8-60543313cdb4?{V}")
        } else {
            format!("{rd}/{}?{V}", coffer_testkit::uuid_like())
        };
        let (st, b) = s.call(Method::PUT, &path, Some(body)).await.unwrap();
        assert_eq!((st, b["error"]["code"].as_str()), (want, Some("BadParameter")), "{b}");
    }
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("{rd}/a290e904-7015-4bba-90c8-60543313cdb4?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 400, "built-in roles cannot be deleted");
    // Assign the custom role; it cannot be deleted while assigned.
    let (_, p) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/principals?{V}"),
            Some(json!({"displayName":"c"})),
        )
        .await
        .unwrap();
    let name = s.assign(&id, "/", p["objectId"].as_str().unwrap()).await.unwrap();
    let (st, _) = s.call(Method::DELETE, &format!("{rd}/{id}?{V}"), None).await.unwrap();
    assert_eq!(st, 409);
    s.call(Method::POST, &format!("/keys/ck/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    let t = token_for(&s, p["clientId"].as_str().unwrap(), p["clientSecret"].as_str().unwrap()).await;
    let get = s
        .client
        .get(format!("{}/keys/ck/?{V}", s.url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(get.as_u16(), 200);
    let sign = s
        .client
        .post(format!("{}/keys/ck//sign?{V}", s.url()))
        .bearer_auth(&t)
        .json(&json!({"alg":"ES256","value":DIGEST}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(sign.as_u16(), 403, "notDataActions removes sign");
    // Bad assignments: unknown role, duplicate name, bad scope, missing one.
    let assignment = |role: &str| json!({"properties":{"roleDefinitionId": format!("/Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"),"principalId":"22222222-2222-2222-2222-222222222222"}});
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("{ra}/{}?{V}", coffer_testkit::uuid_like()),
            Some(assignment("00000000-0000-0000-0000-000000000000")),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    let (st, b) = s
        .call(
            Method::PUT,
            &format!("{ra}/{name}?{V}"),
            Some(assignment("2c18b078-7c48-4d3a-af88-5a3a1b3f82b3")),
        )
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (409, Some("Conflict")));
    let (st, _) = s
        .call(
            Method::PUT,
            &format!(
                "/secrets/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
                coffer_testkit::uuid_like()
            ),
            Some(assignment("2c18b078-7c48-4d3a-af88-5a3a1b3f82b3")),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    let (st, b) = s
        .call(
            Method::DELETE,
            &format!("{ra}/{}?{V}", coffer_testkit::uuid_like()),
            None,
        )
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (404, Some("RoleAssignmentNotFound")));
    // Filters.
    let oid = p["objectId"].as_str().unwrap();
    let (_, mine) = s
        .call(
            Method::GET,
            &format!("{ra}?{V}&$filter=principalId%20eq%20'{oid}'"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    assert_eq!(mine["value"][0]["properties"]["principalId"], oid);
    s.stop().await.unwrap();
}
