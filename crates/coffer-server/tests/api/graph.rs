//! The Graph subset the Azure CLI calls to show principal names (`/graph/v1.0/…`): answers from Coffer's
//! principals and groups, Graph tokens and HSM tokens each refused where the other belongs, `roleAssignments/read`
//! enforced and audited, everything else refused in Graph's error shape.
use coffer_testkit::{CRYPTO_USER, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const BACKUP_USER: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const GET_BY_IDS: &str = "/graph/v1.0/directoryObjects/getByIds";

async fn graph_token(s: &TestServer, client_id: &str, secret: &str) -> String {
    // The Azure CLI asks for `{microsoftGraphResourceId}/.default` with a trailing slash in the resource.
    s.token_for(client_id, secret, &format!("{}/graph//.default", s.url()))
        .await
        .unwrap()
}

fn ids(v: &Value) -> Vec<&str> {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn names_of_principals_and_groups() {
    let s = TestServer::builder().start().await.unwrap();
    let admin = graph_token(&s, &s.cred("client_id"), &s.cred("client_secret")).await;
    let app = s.new_principal("payments-app").await.unwrap();
    let (st, group) = s
        .call(
            Method::POST,
            "/coffer/v1/groups?api-version=7.6",
            Some(json!({"displayName": "key-ops"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{group}");
    let gid = group["objectId"].as_str().unwrap();
    let me = s.cred("object_id");

    let body = json!({"ids": [gid, "00000000-0000-0000-0000-000000000000", app.object_id, me],
                      "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]});
    let (st, v) = s.call_as(&admin, Method::POST, GET_BY_IDS, Some(body)).await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        ids(&v),
        [gid, app.object_id.as_str(), me.as_str()],
        "asked order, unknown ids left out"
    );
    assert_eq!(v["value"][0]["@odata.type"], "#microsoft.graph.group");
    assert_eq!(v["value"][0]["displayName"], "key-ops");
    let sp = &v["value"][1];
    assert_eq!(sp["@odata.type"], "#microsoft.graph.servicePrincipal");
    assert_eq!(sp["displayName"], "payments-app");
    assert_eq!(sp["appId"], app.client_id.as_str());
    assert_eq!(sp["servicePrincipalNames"], json!([app.client_id]));
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/graph/v1.0/$metadata#directoryObjects")
    );

    let body = json!({"ids": [gid, app.object_id], "types": ["group"]});
    let (_, v) = s.call_as(&admin, Method::POST, GET_BY_IDS, Some(body)).await.unwrap();
    assert_eq!(ids(&v), [gid], "types filter");

    // `--assignee <client id>`: the service-principal-name filter the CLI sends (percent-encoded).
    let filter = |f: String| format!("/graph/v1.0/servicePrincipals?$filter={}", urlencoding(&f));
    let (st, v) = s
        .call_as(
            &admin,
            Method::GET,
            &filter(format!("servicePrincipalNames/any(c:c eq '{}')", app.client_id)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v), [app.object_id.as_str()]);
    let (_, v) = s
        .call_as(
            &admin,
            Method::GET,
            &filter("servicePrincipalNames/any(c:c eq 'nobody')".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&v), Vec::<&str>::new());
    let (st, v) = s
        .call_as(
            &admin,
            Method::GET,
            &filter("displayName eq 'payments-app'".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery")),
        "{v}"
    );
    let users = format!(
        "/graph/v1.0/users?$filter={}",
        urlencoding("userPrincipalName eq 'a@b.example'")
    );
    let (st, v) = s.call_as(&admin, Method::GET, &users, None).await.unwrap();
    assert_eq!((st, ids(&v).len()), (200, 0), "Coffer has no users: {v}");

    // Everything else of Graph is refused, in Graph's error shape.
    for (m, p) in [
        (Method::GET, "/graph/v1.0/me"),
        (Method::GET, "/graph/v1.0/groups"),
        (Method::DELETE, "/graph/v1.0/users"),
        (Method::POST, "/graph/beta/directoryObjects/getByIds"),
    ] {
        let (st, v) = s.call_as(&admin, m.clone(), p, Some(json!({}))).await.unwrap();
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (404, Some("Request_ResourceNotFound")),
            "{m} {p}: {v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().contains("getByIds"), "{v}");
    }
}

#[tokio::test]
async fn graph_and_hsm_tokens_are_not_interchangeable() {
    let s = TestServer::builder().start().await.unwrap();
    let graph = graph_token(&s, &s.cred("client_id"), &s.cred("client_secret")).await;
    let hsm = s.token().await.unwrap();
    let body = json!({"ids": [s.cred("object_id")]});

    // An HSM token at Graph: 401 in Graph's shape, without the Key Vault challenge.
    let resp = s
        .client
        .post(format!("{}{GET_BY_IDS}", s.url()))
        .bearer_auth(&hsm)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken", "{v}");

    // A Graph token at the data plane: 401 with the Key Vault challenge, as for any token it does not accept.
    let resp = s
        .client
        .get(format!("{}/keys?api-version=7.6", s.url()))
        .bearer_auth(&graph)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_some());
    let (st, _) = s
        .call_as(
            &graph,
            Method::GET,
            "/providers/Microsoft.Authorization/roleAssignments?api-version=7.6",
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 401);

    // Each where it belongs.
    let (st, v) = s.call_as(&graph, Method::POST, GET_BY_IDS, Some(body)).await.unwrap();
    assert_eq!(st, 200, "{v}");
    let (st, _) = s
        .call_as(&hsm, Method::GET, "/keys?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(st, 200);

    // Any other resource is still refused by the token service.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &s.cred("client_id")),
        ("client_secret", &s.cred("client_secret")),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let resp = s.client.post(s.token_endpoint()).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn looking_names_up_needs_role_assignments_read_and_is_audited() {
    let s = TestServer::builder().start().await.unwrap();
    // Backup User holds no roleAssignments/read; Crypto User does (as in Managed HSM: it can list assignments).
    let backup = s.new_principal("backup-operator").await.unwrap();
    s.assign(BACKUP_USER, "/", &backup.object_id).await.unwrap();
    let token = graph_token(&s, &backup.client_id, &backup.secret).await;
    let body = json!({"ids": [s.cred("object_id")]});
    let (st, v) = s
        .call_as(&token, Method::POST, GET_BY_IDS, Some(body.clone()))
        .await
        .unwrap();
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("roleAssignments/read"),
        "{v}"
    );

    let user = s.new_principal("crypto-user").await.unwrap();
    s.assign(CRYPTO_USER, "/", &user.object_id).await.unwrap();
    let token = graph_token(&s, &user.client_id, &user.secret).await;
    let (st, _) = s.call_as(&token, Method::POST, GET_BY_IDS, Some(body)).await.unwrap();
    assert_eq!(st, 200);

    let recs: Vec<Value> = s
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|r| r["operationName"] == "GraphDirectoryObjectsGetByIds")
        .collect();
    assert_eq!(recs.len(), 2, "{recs:?}");
    let decision = |r: &Value| {
        (
            r["properties"]["httpStatusCode"].as_u64(),
            r["properties"]["isRbacAuthorized"].as_bool(),
            r["properties"]["dataAction"].as_str().map(str::to_string),
        )
    };
    let action = Some("Microsoft.KeyVault/managedHsm/roleAssignments/read/action".to_string());
    assert_eq!(decision(&recs[0]), (Some(403), Some(false), action.clone()));
    assert_eq!(decision(&recs[1]), (Some(200), Some(true), action));
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
