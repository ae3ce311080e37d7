//! No escalation (issue 13, item 2) and separation of duties through groups (item 4), tried through the real
//! server as an attacker holding each built-in role would.
use coffer_testkit::{CRYPTO_OFFICER, CRYPTO_USER, NewPrincipal, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const ADMIN: &str = "a290e904-7015-4bba-90c8-60543313cdb4";
const POLICY_ADMIN: &str = "4bd23610-cdcf-4971-bdee-bdc562cc28e4";
const AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";
const SERVICE_ENCRYPTION: &str = "33413926-3206-4cdd-b39a-83574fe37a17";
const SERVICE_RELEASE: &str = "21dbd100-6940-42c2-9190-5d6cb909625c";
const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";
const IDENTITY_ADMIN: &str = "c0ffe700-1d00-4a00-8000-00000000a001";
const SD_DOWNLOAD: &str = "Microsoft.KeyVault/managedHsm/securitydomain/download/action";
const KEYS_READ: &str = "Microsoft.KeyVault/managedHsm/keys/read/action";
const RD_WRITE: &str = "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action";
const RD_READ: &str = "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action";

fn assignment_path(scope: &str) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}?{V}",
        scope.trim_end_matches('/'),
        coffer_testkit::uuid_like()
    )
}

fn assignment_body(role: &str, principal: &str, expires: Option<i64>) -> Value {
    let mut p = json!({
        "roleDefinitionId": format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal});
    if let Some(e) = expires {
        p["expiresOn"] = json!(e);
    }
    json!({ "properties": p })
}

async fn assign_as(s: &TestServer, token: &str, role: &str, principal: &str, expires: Option<i64>) -> (u16, Value) {
    s.call_as(
        token,
        Method::PUT,
        &assignment_path("/"),
        Some(assignment_body(role, principal, expires)),
    )
    .await
    .unwrap()
}

async fn write_role_as(s: &TestServer, token: &str, id: &str, actions: &[&str]) -> (u16, Value) {
    let body = json!({"properties":{"roleName": format!("custom-{id}"),
        "permissions":[{"dataActions": actions}], "assignableScopes":["/"]}});
    s.call_as(
        token,
        Method::PUT,
        &format!("/providers/Microsoft.Authorization/roleDefinitions/{id}?{V}"),
        Some(body),
    )
    .await
    .unwrap()
}

async fn add_secret_as(s: &TestServer, token: &str, oid: &str) -> (u16, Value) {
    s.call_as(
        token,
        Method::POST,
        &format!("/coffer/v1/principals/{oid}/secrets?{V}"),
        None,
    )
    .await
    .unwrap()
}

async fn add_member_as(s: &TestServer, token: &str, group: &str, member: &str) -> (u16, Value) {
    s.call_as(
        token,
        Method::PUT,
        &format!("/coffer/v1/groups/{group}/members/{member}?{V}"),
        None,
    )
    .await
    .unwrap()
}

async fn group(s: &TestServer, name: &str) -> String {
    let (st, g) = s
        .call(
            Method::POST,
            &format!("/coffer/v1/groups?{V}"),
            Some(json!({"displayName": name})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{g}");
    g["objectId"].as_str().unwrap().to_string()
}

async fn holder(s: &TestServer, name: &str, role: &str) -> NewPrincipal {
    let p = s.new_principal(name).await.unwrap();
    s.assign(role, "/", &p.object_id).await.unwrap();
    p
}

fn ok(st: u16) -> bool {
    (200..300).contains(&st)
}

/// For each built-in role: may its holder (a) assign itself Administrator, (b) assign Crypto User to an
/// application, (c) write a custom role that grants the security-domain download, (d) write a custom role that grants
/// key reads, (e) add a credential to the bootstrap Administrator, (f) add a credential to an application holding
/// only key roles, (g) add an application to a group holding Administrator, (h) add an application to a group
/// holding only key roles? Expectations follow the rule (docs/ACCESS.md, "No escalation"), not the code.
#[tokio::test]
async fn escalation_matrix_for_every_built_in_role() {
    let s = TestServer::builder().start().await.unwrap();
    let app = holder(&s, "key-app", CRYPTO_USER).await;
    let admins = group(&s, "admins").await;
    s.assign(ADMIN, "/", &admins).await.unwrap();
    let users = group(&s, "users").await;
    s.assign(CRYPTO_USER, "/", &users).await.unwrap();
    let bootstrap = s.cred("object_id");
    //          role,            a      b      c      d      e      f      g      h
    let table: [(&str, &str, [bool; 8]); 10] = [
        (
            "Administrator",
            ADMIN,
            [true, true, true, true, false, false, false, false],
        ),
        (
            "Crypto Officer",
            CRYPTO_OFFICER,
            [false, true, false, true, false, false, false, false],
        ),
        ("Crypto User", CRYPTO_USER, [false; 8]),
        (
            "Policy Administrator",
            POLICY_ADMIN,
            [false, true, false, true, false, false, false, false],
        ),
        ("Crypto Auditor", AUDITOR, [false; 8]),
        ("Service Encryption User", SERVICE_ENCRYPTION, [false; 8]),
        ("Service Release User", SERVICE_RELEASE, [false; 8]),
        ("Backup User", BACKUP, [false; 8]),
        ("Restore", RESTORE, [false; 8]),
        (
            "Identity Administrator",
            IDENTITY_ADMIN,
            [false, false, false, false, false, true, false, true],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (name, role, expected)) in table.iter().enumerate() {
        let h = holder(&s, &format!("holder-{i}"), role).await;
        let t = &h.token;
        let target = s.new_principal(&format!("target-{i}")).await.unwrap();
        let got = [
            assign_as(&s, t, ADMIN, &h.object_id, None).await,
            assign_as(&s, t, CRYPTO_USER, &target.object_id, None).await,
            write_role_as(&s, t, &coffer_testkit::uuid_like(), &[SD_DOWNLOAD]).await,
            write_role_as(&s, t, &coffer_testkit::uuid_like(), &[KEYS_READ]).await,
            add_secret_as(&s, t, &bootstrap).await,
            add_secret_as(&s, t, &app.object_id).await,
            add_member_as(&s, t, &admins, &target.object_id).await,
            add_member_as(&s, t, &users, &target.object_id).await,
        ];
        for (j, ((st, body), want)) in got.iter().zip(expected).enumerate() {
            if ok(*st) != *want {
                failures.push(format!("{name} / {}: {st} {body}", (b'a' + j as u8) as char));
            } else if !ok(*st) {
                assert_eq!(*st, 403, "{name} / {j}: refused with 403: {body}");
                assert_eq!(body["error"]["code"], "Forbidden", "{body}");
            }
        }
    }
    assert!(failures.is_empty(), "unexpected outcomes:\n{}", failures.join("\n"));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn crypto_officer_and_policy_administrator_cannot_make_themselves_administrator() {
    let s = TestServer::builder().start().await.unwrap();
    for role in [CRYPTO_OFFICER, POLICY_ADMIN] {
        let p = holder(&s, "officer", role).await;
        let (st, body) = assign_as(&s, &p.token, ADMIN, &p.object_id, None).await;
        assert_eq!(st, 403, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(SD_DOWNLOAD),
            "the message names what the caller lacks: {body}"
        );
        // Nor through a group it could assign Administrator to.
        let (st, _) = s
            .call_as(&p.token, Method::GET, &format!("/keys?{V}"), None)
            .await
            .unwrap();
        assert_eq!(st, 403, "still no key rights");
        let (st, _) = s
            .call_as(
                &p.token,
                Method::POST,
                &format!("/securitydomain/download?{V}"),
                Some(json!({"certificates": [], "required": 2})),
            )
            .await
            .unwrap();
        assert_eq!(st, 403, "no security-domain download");
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_custom_role_cannot_be_widened_by_its_own_holder() {
    let s = TestServer::builder().start().await.unwrap();
    let id = coffer_testkit::uuid_like();
    let (st, b) = write_role_as(&s, &s.token().await.unwrap(), &id, &[RD_WRITE, RD_READ]).await;
    assert_eq!(st, 201, "{b}");
    let p = holder(&s, "role-writer", &id).await;
    let (st, b) = write_role_as(&s, &p.token, &id, &[RD_WRITE, RD_READ, SD_DOWNLOAD]).await;
    assert_eq!(st, 403, "widening its own role: {b}");
    let (st, b) = write_role_as(&s, &p.token, &id, &[RD_WRITE, RD_READ, KEYS_READ]).await;
    assert!(ok(st), "adding an unprotected action stays possible: {st} {b}");
    let (_, def) = s
        .call(
            Method::GET,
            &format!("/providers/Microsoft.Authorization/roleDefinitions/{id}?{V}"),
            None,
        )
        .await
        .unwrap();
    let actions = def["properties"]["permissions"][0]["dataActions"].to_string();
    assert!(!actions.contains("securitydomain"), "{def}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn identity_administrator_cannot_take_over_an_administrator() {
    let s = TestServer::builder().start().await.unwrap();
    let ia = holder(&s, "identity-admin", IDENTITY_ADMIN).await;
    let bootstrap = s.cred("object_id");
    let (st, b) = add_secret_as(&s, &ia.token, &bootstrap).await;
    assert_eq!(st, 403, "a secret for the bootstrap Administrator: {b}");
    let pem = coffer_crypto::security_domain::generate_rsa_certified(2048, "attacker")
        .unwrap()
        .cert_pem();
    let (st, b) = s
        .call_as(
            &ia.token,
            Method::POST,
            &format!("/coffer/v1/principals/{bootstrap}/certificates?{V}"),
            Some(json!({"certificate": pem})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a certificate for the bootstrap Administrator: {b}");
    // An administrator held through a group is protected just the same.
    let admins = group(&s, "admins").await;
    s.assign(ADMIN, "/", &admins).await.unwrap();
    let member = s.new_principal("group-admin").await.unwrap();
    let (st, _) = add_member_as(&s, &s.token().await.unwrap(), &admins, &member.object_id).await;
    assert!(ok(st));
    let (st, b) = add_secret_as(&s, &ia.token, &member.object_id).await;
    assert_eq!(st, 403, "a secret for an administrator through a group: {b}");
    let (st, b) = add_member_as(&s, &ia.token, &admins, &ia.object_id).await;
    assert_eq!(st, 403, "joining the administrators' group: {b}");
    // The bootstrap principal, which holds every protected right, may.
    let (st, b) = add_secret_as(&s, &s.token().await.unwrap(), &member.object_id).await;
    assert_eq!(st, 201, "{b}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_time_bound_administrator_cannot_grant_a_lasting_one() {
    let s = TestServer::builder().start().await.unwrap();
    let p = s.new_principal("temporary-admin").await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (st, b) = assign_as(&s, &s.token().await.unwrap(), ADMIN, &p.object_id, Some(now + 3600)).await;
    assert_eq!(st, 201, "{b}");
    let other = s.new_principal("other").await.unwrap();
    let (st, b) = assign_as(&s, &p.token, ADMIN, &other.object_id, None).await;
    assert_eq!(st, 403, "a permanent Administrator from a one-hour one: {b}");
    let (st, b) = assign_as(&s, &p.token, ADMIN, &other.object_id, Some(now + 3600 * 2)).await;
    assert_eq!(st, 403, "longer than its own grant: {b}");
    let (st, b) = assign_as(&s, &p.token, ADMIN, &other.object_id, Some(now + 1800)).await;
    assert_eq!(st, 201, "within its own grant: {b}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn separation_of_duties_counts_roles_held_through_groups() {
    let s = TestServer::builder()
        .separation_of_duties("deny")
        .bare()
        .start()
        .await
        .unwrap();
    let users = group(&s, "users").await;
    s.assign(CRYPTO_USER, "/", &users).await.unwrap();
    let officer = holder(&s, "officer", CRYPTO_OFFICER).await;
    // Joining a group that holds Crypto User while holding Crypto Officer.
    let (st, b) = add_member_as(&s, &s.token().await.unwrap(), &users, &officer.object_id).await;
    assert_eq!(st, 400, "membership breaks separation of duties: {b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("separation of duties"),
        "{b}"
    );
    // Holding Crypto User through a group, then being assigned Crypto Officer directly.
    let member = s.new_principal("member").await.unwrap();
    let (st, _) = add_member_as(&s, &s.token().await.unwrap(), &users, &member.object_id).await;
    assert!(ok(st));
    let (st, b) = assign_as(&s, &s.token().await.unwrap(), CRYPTO_OFFICER, &member.object_id, None).await;
    assert_eq!(st, 400, "direct role conflicting with a group's: {b}");
    // Assigning Crypto Officer to the group itself, whose member holds... only Crypto User through it.
    let officers = group(&s, "officers").await;
    s.assign(CRYPTO_OFFICER, "/", &officers).await.unwrap();
    let (st, b) = add_member_as(&s, &s.token().await.unwrap(), &officers, &member.object_id).await;
    assert_eq!(st, 400, "two groups whose roles conflict: {b}");
    let (st, b) = assign_as(&s, &s.token().await.unwrap(), CRYPTO_OFFICER, &users, None).await;
    assert_eq!(st, 400, "a role given to a group conflicts for its members: {b}");
    s.stop().await.unwrap();
}

/// Review findings: eligibility counts as holding (an Identity Administrator cannot join, or take over, someone
/// eligible for Administrator and activate it), removals are guarded like grants (no locking the Administrators
/// out), and narrowing a custom role's assignable scopes cannot widen what its existing assignments grant.
#[tokio::test]
async fn eligibility_removals_and_existing_assignments_count() {
    let s = TestServer::builder().start().await.unwrap();
    let boot = s.token().await.unwrap();
    let ia = holder(&s, "identity-admin", IDENTITY_ADMIN).await;
    // A group and a principal eligible (just in time) for Administrator.
    let standby = group(&s, "standby-admins").await;
    let p = s.new_principal("standby").await.unwrap();
    for who in [&standby, &p.object_id] {
        let (st, b) = s
            .call_as(
                &boot,
                Method::POST,
                &format!("/coffer/v1/eligible-assignments?{V}"),
                Some(json!({"scope":"/","roleDefinitionId": ADMIN,"principalId": who,"maxDurationSeconds": 3600})),
            )
            .await
            .unwrap();
        assert_eq!(st, 201, "{b}");
    }
    let (st, b) = add_member_as(&s, &ia.token, &standby, &ia.object_id).await;
    assert_eq!(st, 403, "joining a group eligible for Administrator: {b}");
    let (st, b) = add_secret_as(&s, &ia.token, &p.object_id).await;
    assert_eq!(st, 403, "a credential for a principal eligible for Administrator: {b}");

    // Removals: not the bootstrap Administrator, not its credentials, not the Administrators' group's members.
    let bootstrap = s.cred("object_id");
    let (st, b) = s
        .call_as(
            &ia.token,
            Method::DELETE,
            &format!("/coffer/v1/principals/{bootstrap}?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "deleting the bootstrap Administrator: {b}");
    let admins = group(&s, "admins").await;
    s.assign(ADMIN, "/", &admins).await.unwrap();
    let member = s.new_principal("admin-member").await.unwrap();
    let (st, _) = add_member_as(&s, &boot, &admins, &member.object_id).await;
    assert!(ok(st));
    let (st, b) = s
        .call_as(
            &ia.token,
            Method::DELETE,
            &format!("/coffer/v1/groups/{admins}/members/{}?{V}", member.object_id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "removing an Administrator from the Administrators' group: {b}");
    let (st, b) = s
        .call_as(
            &ia.token,
            Method::DELETE,
            &format!("/coffer/v1/groups/{admins}?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "deleting the Administrators' group: {b}");
    // A key-only application is still the Identity Administrator's to manage.
    let app = holder(&s, "app", CRYPTO_USER).await;
    let (st, b) = s
        .call_as(
            &ia.token,
            Method::DELETE,
            &format!("/coffer/v1/principals/{}?{V}", app.object_id),
            None,
        )
        .await
        .unwrap();
    assert!(ok(st), "{st} {b}");

    // X: Administrator at /keys only, and a custom role R (role-definition reads) at /. Rewriting R, through the
    // /keys scope, to grant the security-domain download "only at /keys" would grant it at / through the existing
    // assignment.
    let r = coffer_testkit::uuid_like();
    let (st, b) = write_role_as(&s, &boot, &r, &[RD_READ]).await;
    assert_eq!(st, 201, "{b}");
    let x = s.new_principal("x").await.unwrap();
    s.assign(&r, "/", &x.object_id).await.unwrap();
    s.assign(ADMIN, "/keys", &x.object_id).await.unwrap();
    let body = json!({"properties":{"roleName": format!("custom-{r}"),
        "permissions":[{"dataActions": [RD_READ, SD_DOWNLOAD]}], "assignableScopes":["/keys"]}});
    let (st, b) = s
        .call_as(
            &x.token,
            Method::PUT,
            &format!("/keys/providers/Microsoft.Authorization/roleDefinitions/{r}?{V}"),
            Some(body),
        )
        .await
        .unwrap();
    assert_eq!(
        st, 403,
        "narrowing the scopes widened the existing assignment at /: {b}"
    );
    s.stop().await.unwrap();
}
