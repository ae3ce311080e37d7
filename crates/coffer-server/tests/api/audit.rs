//! Audit log, end to end over HTTPS: one record per request with the Managed HSM AuditEvent fields, nothing
//! secret in it, a hash chain and MACs that verify, fail-closed 503 while the file sink cannot write and
//! recovery afterwards, the auditor's query API, and the Prometheus metrics listener.
use std::collections::HashMap;

use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const AUDITOR: &str = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3";

/// Every record in the audit directory, in chain order.
fn records(s: &TestServer) -> Vec<Value> {
    s.audit_records().unwrap()
}

/// Checks every line of the audit directory with the instance's MAC key; returns the number of records.
async fn verify_all(s: &TestServer) -> u64 {
    let key = coffer_server::seal::audit_mac_key(
        &s.data_dir(),
        &coffer_server::database::DatabaseConfig::default(),
        &coffer_server::config::SealConfig::default(),
    )
    .await
    .unwrap();
    let mut v = coffer_core::audit::Verifier::new(Some(key)).from_genesis();
    for f in coffer_server::audit_sinks::file::list_files(&s.audit_dir()).unwrap() {
        for (i, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            v.check(line.as_bytes())
                .unwrap_or_else(|e| panic!("{}:{}: {e}", f.display(), i + 1));
        }
    }
    v.checked()
}

/// A new principal with no roles: (object id, client id, secret, token).
async fn principal(s: &TestServer, name: &str) -> (String, String, String, String) {
    let p = s.new_principal(name).await.unwrap();
    (p.object_id, p.client_id, p.secret, p.token)
}

/// One request of the scripted session.
struct Step {
    id: String,
    op: &'static str,
    status: u16,
    oid: Option<String>,
    rbac: Option<bool>,
}

struct Session<'a> {
    s: &'a TestServer,
    steps: Vec<Step>,
}

impl Session<'_> {
    /// Sends a request with a fresh correlation id and records what its audit record must say.
    async fn send(
        &mut self,
        token: Option<&str>,
        oid: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: (&'static str, u16, Option<bool>),
    ) -> Value {
        let id = format!("audit-test-{}", self.steps.len());
        let mut req = self
            .s
            .client
            .request(method.clone(), format!("{}{path}", self.s.url()))
            .header("x-ms-client-request-id", &id)
            .header("user-agent", "coffer-audit-test/1.0");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert_eq!(
            resp.headers()
                .get("x-ms-client-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(id.as_str()),
            "the correlation id is echoed"
        );
        let text = resp.text().await.unwrap();
        assert_eq!(status, expect.1, "{method} {path}: {text}");
        self.steps.push(Step {
            id,
            op: expect.0,
            status,
            oid: oid.map(str::to_string),
            rbac: expect.2,
        });
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

#[tokio::test]
async fn a_scripted_session_yields_exactly_one_faithful_record_per_request() {
    let s = TestServer::builder().start().await.unwrap();
    let admin = s.token().await.unwrap();
    let admin_oid = s.cred("object_id");
    let (nobody_oid, _, nobody_secret, nobody) = principal(&s, "nobody").await;
    let a = Some(admin.as_str());
    let ao = Some(admin_oid.as_str());
    let n = Some(nobody.as_str());
    let no = Some(nobody_oid.as_str());
    let mut x = Session {
        s: &s,
        steps: Vec::new(),
    };
    let ec = json!({"kty": "EC-HSM", "crv": "P-256"});
    for i in 0..5 {
        x.send(
            a,
            ao,
            Method::POST,
            &format!("/keys/k{i}/create?{V}"),
            Some(ec.clone()),
            ("KeyCreate", 200, Some(true)),
        )
        .await;
    }
    let k0 = x
        .send(
            a,
            ao,
            Method::GET,
            &format!("/keys/k0?{V}"),
            None,
            ("KeyGet", 200, Some(true)),
        )
        .await;
    let kid = k0["key"]["kid"].as_str().unwrap().to_string();
    let version = kid.rsplit('/').next().unwrap().to_string();
    for i in 1..5 {
        x.send(
            a,
            ao,
            Method::GET,
            &format!("/keys/k{i}?{V}"),
            None,
            ("KeyGet", 200, Some(true)),
        )
        .await;
    }
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/keys?{V}"),
        None,
        ("KeyList", 200, Some(true)),
    )
    .await;
    let digest = json!({"alg": "ES256", "value": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"});
    for _ in 0..5 {
        x.send(
            a,
            ao,
            Method::POST,
            &format!("/keys/k0/{version}/sign?{V}"),
            Some(digest.clone()),
            ("KeySign", 200, Some(true)),
        )
        .await;
    }
    // Denied: a principal without roles.
    for i in 0..5 {
        x.send(
            n,
            no,
            Method::GET,
            &format!("/keys/k{i}?{V}"),
            None,
            ("KeyGet", 403, Some(false)),
        )
        .await;
    }
    x.send(
        n,
        no,
        Method::POST,
        "/keys/kx/create?api-version=7.6",
        Some(ec.clone()),
        ("KeyCreate", 403, Some(false)),
    )
    .await;
    x.send(
        n,
        no,
        Method::DELETE,
        &format!("/deletedkeys/k0?{V}"),
        None,
        ("KeyPurge", 403, Some(false)),
    )
    .await;
    x.send(
        n,
        no,
        Method::POST,
        &format!("/securitydomain/download?{V}"),
        Some(json!({"certificates": [], "required": 2})),
        ("SecurityDomainBackup", 403, Some(false)),
    )
    .await;
    // Unauthenticated: no token, a forged token.
    for _ in 0..4 {
        x.send(
            None,
            None,
            Method::GET,
            &format!("/keys?{V}"),
            None,
            ("Authentication", 401, None),
        )
        .await;
    }
    for _ in 0..3 {
        x.send(
            Some("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"),
            None,
            Method::GET,
            &format!("/keys/k0?{V}"),
            None,
            ("Authentication", 401, None),
        )
        .await;
    }
    // Failing: missing key, bad api-version, bad body, unknown path, wrong algorithm.
    for _ in 0..3 {
        x.send(
            a,
            ao,
            Method::GET,
            &format!("/keys/missing?{V}"),
            None,
            ("KeyGet", 404, Some(true)),
        )
        .await;
    }
    x.send(
        a,
        ao,
        Method::GET,
        "/keys?api-version=1.0",
        None,
        ("KeyList", 400, None),
    )
    .await;
    x.send(a, ao, Method::GET, "/keys", None, ("KeyList", 400, None)).await;
    x.send(
        a,
        ao,
        Method::POST,
        &format!("/keys/bad/create?{V}"),
        Some(json!({"kty": "DSA"})),
        ("KeyCreate", 400, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/nothing/here?{V}"),
        None,
        ("RequestNotFound", 404, None),
    )
    .await;
    x.send(
        a,
        ao,
        Method::POST,
        &format!("/keys/k0/{version}/sign?{V}"),
        Some(json!({"alg": "RS256", "value": "AA"})),
        ("KeySign", 400, Some(true)),
    )
    .await;
    // Lifecycle and HSM-level operations.
    x.send(
        a,
        ao,
        Method::DELETE,
        &format!("/keys/k4?{V}"),
        None,
        ("KeyDelete", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/deletedkeys/k4?{V}"),
        None,
        ("KeyGetDeleted", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::DELETE,
        &format!("/deletedkeys/k4?{V}"),
        None,
        ("KeyPurge", 204, Some(true)),
    )
    .await;
    for _ in 0..2 {
        x.send(
            a,
            ao,
            Method::POST,
            &format!("/rng?{V}"),
            Some(json!({"count": 16})),
            ("RandomBytesGet", 200, Some(true)),
        )
        .await;
    }
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/providers/Microsoft.Authorization/roleDefinitions?{V}"),
        None,
        ("RoleDefinitionList", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/settings?{V}"),
        None,
        ("SettingList", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/keys/k1/versions?{V}"),
        None,
        ("KeyListVersions", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::PATCH,
        &format!("/keys/k1?{V}"),
        Some(json!({"tags": {"team": "audit"}})),
        ("KeyUpdate", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::POST,
        &format!("/keys/k1/backup?{V}"),
        None,
        ("KeyBackup", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/keys/k1/rotationpolicy?{V}"),
        None,
        ("KeyRotationPolicyGet", 200, Some(true)),
    )
    .await;
    x.send(
        a,
        ao,
        Method::GET,
        &format!("/providers/Microsoft.Authorization/roleAssignments?{V}"),
        None,
        ("RoleAssignmentList", 200, Some(true)),
    )
    .await;
    assert!(x.steps.len() >= 50, "{} requests", x.steps.len());

    let all = records(&s);
    let mut by_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for r in &all {
        if let Some(c) = r["correlationId"].as_str() {
            by_id.entry(c).or_default().push(r);
        }
    }
    for step in &x.steps {
        let recs = by_id.get(step.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(recs.len(), 1, "{}: {} records", step.id, recs.len());
        let r = recs[0];
        let what = format!("{} ({}): {r}", step.id, step.op);
        assert_eq!(r["operationName"], step.op, "{what}");
        assert_eq!(r["category"], "AuditEvent", "{what}");
        assert_eq!(r["properties"]["httpStatusCode"], step.status, "{what}");
        let phrase = match step.status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            other => panic!("unexpected status {other}"),
        };
        assert_eq!(r["resultSignature"], phrase, "{what}");
        assert_eq!(
            r["resultType"], "Success",
            "Key Vault writes Success for 4xx too: {what}"
        );
        assert_eq!(r["callerIpAddress"], "127.0.0.1", "{what}");
        assert_eq!(r["properties"]["clientInfo"], "coffer-audit-test/1.0", "{what}");
        assert!(r["durationMs"].is_string(), "{what}");
        assert!(
            r["time"].as_str().unwrap().len() == 28 && r["time"].as_str().unwrap().ends_with('Z'),
            "{what}"
        );
        assert!(
            r["resourceId"]
                .as_str()
                .unwrap()
                .contains("/PROVIDERS/MICROSOFT.KEYVAULT/MANAGEDHSMS/"),
            "{what}"
        );
        assert_eq!(r["resourceType"], "managedHSMs");
        assert!(
            r["properties"]["requestUri"].as_str().unwrap().starts_with(&s.url()),
            "{what}"
        );
        assert_eq!(r["identity"]["claim"]["oid"].as_str(), step.oid.as_deref(), "{what}");
        assert_eq!(r["properties"]["isRbacAuthorized"].as_bool(), step.rbac, "{what}");
        if step.rbac == Some(true) {
            assert!(r["properties"]["appliedAssignmentId"].is_string(), "{what}");
        }
        if step.status >= 400 {
            assert!(r["resultDescription"].is_string(), "the error message is kept: {what}");
        } else {
            assert!(r.get("resultDescription").is_none(), "{what}");
        }
        assert!(r["cofferChain"]["seq"].is_u64(), "{what}");
    }
    // Key facts on key operations, the key id on the sign records.
    let sign = all
        .iter()
        .find(|r| r["operationName"] == "KeySign" && r["properties"]["httpStatusCode"] == 200)
        .unwrap();
    assert_eq!(sign["properties"]["keyProperties"]["type"], "EC-HSM");
    assert_eq!(sign["properties"]["keyProperties"]["curve"], "P-256");
    assert_eq!(sign["properties"]["id"], kid);
    assert_eq!(sign["operationVersion"], "7.6");
    // Token requests are recorded too (issued and refused) without the secret.
    assert!(
        all.iter()
            .any(|r| r["operationName"] == "TokenIssue" && r["properties"]["httpStatusCode"] == 200)
    );
    // Never a token or a secret in the log.
    let text: String = coffer_server::audit_sinks::file::list_files(&s.audit_dir())
        .unwrap()
        .into_iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for secret in [
        admin.as_str(),
        nobody.as_str(),
        nobody_secret.as_str(),
        &s.cred("client_secret"),
    ] {
        assert!(!text.contains(secret), "a token or secret leaked into the audit log");
    }
    assert_eq!(verify_all(&s).await, all.len() as u64);
}

#[tokio::test]
async fn an_unwritable_file_sink_refuses_requests_until_it_is_writable_again() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let get = |path: String| {
        let req = s.client.get(format!("{}{path}", s.url())).bearer_auth(&token);
        async move {
            let r = req.send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, _) = get(format!("/keys?{V}")).await;
    assert_eq!(st, 200);
    let dir = s.audit_dir();
    let moved = s.data_dir().join("audit.moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    // Every request now gets 503. The first one ran (nothing could tell the sink was broken before its record
    // was written); the client gets 503 all the same, and its record keeps the operation's own outcome.
    for _ in 0..3 {
        let (st, body) = get(format!("/keys?{V}")).await;
        assert_eq!(st, 503, "{body}");
        assert_eq!(body["error"]["code"], "ServiceUnavailable");
    }
    // A create is refused before it runs.
    let (st, _) = s
        .client
        .post(format!("{}/keys/during-outage/create?{V}", s.url()))
        .bearer_auth(&token)
        .json(&json!({"kty": "EC-HSM"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(st, 503);
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&moved, &dir).unwrap();
    let (st, _) = get(format!("/keys/during-outage?{V}")).await;
    assert_eq!(st, 404, "the create refused with 503 did not run");
    let (st, _) = get(format!("/keys?{V}")).await;
    assert_eq!(st, 200);
    // The refused requests were recorded after the sink came back, in order, and the chain is whole.
    let all = records(&s);
    let refused: Vec<_> = all
        .iter()
        .filter(|r| r["properties"]["httpStatusCode"] == 503)
        .collect();
    assert_eq!(
        refused.len(),
        3,
        "two reads and the create were refused before running: {:?}",
        all.iter()
            .map(|r| format!(
                "{} {} {}",
                r["operationName"], r["properties"]["httpStatusCode"], r["cofferChain"]["seq"]
            ))
            .collect::<Vec<_>>()
    );
    assert!(refused.iter().any(|r| r["operationName"] == "KeyCreate"));
    let in_flight = &all[all.len() - refused.len() - 3];
    assert_eq!(in_flight["operationName"], "KeyList");
    assert_eq!(in_flight["properties"]["httpStatusCode"], 200, "{in_flight}");
    assert_eq!(
        all.len() as u64,
        all.last().unwrap()["cofferChain"]["seq"].as_u64().unwrap() + 1
    );
    assert_eq!(verify_all(&s).await, all.len() as u64);
}

#[tokio::test]
async fn auditors_query_the_log_and_others_may_not() {
    let s = TestServer::builder().start().await.unwrap();
    let (auditor_oid, _, _, auditor) = principal(&s, "auditor").await;
    s.assign(AUDITOR, "/", &auditor_oid).await.unwrap();
    for i in 0..3 {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/q{i}/create?{V}"),
                Some(json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    let (st, _) = s
        .call(Method::DELETE, &format!("/deletedkeys/q0?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 404, "q0 is not deleted");
    let q = |token: String, query: String| {
        let req = s
            .client
            .get(format!("{}/coffer/v1/audit?{V}&{query}", s.url()))
            .bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    // The Administrator role holds no audit-read dataAction (the bootstrap principal also holds Crypto Auditor).
    let admin = s.new_principal("admin-only").await.unwrap();
    s.assign("a290e904-7015-4bba-90c8-60543313cdb4", "/", &admin.object_id)
        .await
        .unwrap();
    let (st, body) = q(admin.token.clone(), String::new()).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Coffer/audit/read/action")
    );
    let (st, body) = q(auditor.clone(), "operation=KeyCreate".into()).await;
    assert_eq!(st, 200, "{body}");
    let creates = body["value"].as_array().unwrap();
    assert_eq!(creates.len(), 3);
    assert!(creates.iter().all(|r| r["operationName"] == "KeyCreate"));
    // Paging keeps the filters.
    let (_, page1) = q(auditor.clone(), "operation=KeyCreate&maxresults=2".into()).await;
    assert_eq!(page1["value"].as_array().unwrap().len(), 2);
    let next = page1["nextLink"].as_str().unwrap();
    let page2: Value = s
        .client
        .get(next)
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["value"].as_array().unwrap().len(), 1);
    assert!(page2.get("nextLink").is_none());
    assert_eq!(page2["value"][0]["properties"]["id"], format!("{}/keys/q2", s.url()));
    // By result and principal.
    let (_, failures) = q(auditor.clone(), "result=404".into()).await;
    assert!(
        failures["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["properties"]["httpStatusCode"] == 404)
    );
    assert_eq!(failures["value"].as_array().unwrap().len(), 1);
    let (_, mine) = q(auditor.clone(), format!("principal={auditor_oid}")).await;
    let mine = mine["value"].as_array().unwrap();
    assert!(
        !mine.is_empty()
            && mine
                .iter()
                .all(|r| r["identity"]["claim"]["oid"] == auditor_oid.as_str())
    );
    // A time range in the future is empty; a bad time is refused.
    let (_, empty) = q(auditor.clone(), "from=2999-01-01T00:00:00Z".into()).await;
    assert_eq!(empty["value"].as_array().unwrap().len(), 0);
    let (st, bad) = q(auditor.clone(), "from=yesterday".into()).await;
    assert_eq!(st, 400, "{bad}");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().split(' ').next()?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

#[tokio::test]
async fn metrics_count_requests_failures_and_instance_facts() {
    let s = TestServer::builder()
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let url = s.metrics_url().unwrap();
    for i in 0..2 {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/m{i}/create?{V}"),
                Some(json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/m2/create?{V}"),
            Some(json!({"kty": "RSA-HSM", "key_size": 2048})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    for _ in 0..3 {
        let st = s
            .client
            .get(format!("{}/keys?{V}", s.url()))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st.as_u16(), 401);
    }
    let (_, _, _, nobody) = principal(&s, "nobody").await;
    for _ in 0..2 {
        let st = s
            .client
            .get(format!("{}/keys/m0?{V}", s.url()))
            .bearer_auth(&nobody)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st.as_u16(), 403);
    }
    let text = s.client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        metric(&text, "coffer_requests_total{operation=\"KeyCreate\",status=\"200\"}"),
        3.0
    );
    assert_eq!(metric(&text, "coffer_authentication_failures_total"), 3.0);
    assert_eq!(
        metric(&text, "coffer_authorization_denials_total{operation=\"KeyGet\"}"),
        2.0
    );
    assert_eq!(metric(&text, "coffer_keys{kty=\"EC-HSM\"}"), 2.0);
    assert_eq!(metric(&text, "coffer_keys{kty=\"RSA-HSM\"}"), 1.0);
    assert_eq!(metric(&text, "coffer_keys{kty=\"oct-HSM\"}"), 0.0);
    assert_eq!(metric(&text, "coffer_activated"), 1.0);
    assert_eq!(metric(&text, "coffer_seal_provider_info{provider=\"file\"}"), 1.0);
    assert_eq!(metric(&text, "coffer_audit_healthy"), 1.0);
    assert_eq!(metric(&text, "coffer_audit_sink_errors_total{sink=\"file\"}"), 0.0);
    assert!(metric(&text, "coffer_audit_records_total") >= 8.0);
    assert_eq!(metric(&text, "coffer_last_successful_backup_timestamp_seconds"), 0.0);
    let not_after = metric(&text, "coffer_tls_certificate_not_after_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(not_after > now + 86_400.0, "certificate expiry {not_after}");
    assert!(metric(&text, "coffer_request_duration_seconds_count{operation=\"KeyCreate\"}") >= 3.0);
    // Prometheus' own checker accepts the exposition.
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/setup-system installs Debian's prometheus package)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // promtool lints in the classic text format, where a counter's HELP names `x_total`; OpenMetrics names the
    // family `x`. That one complaint is expected for every counter; anything else (a parse error, a bad name) fails.
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        let family = line
            .strip_suffix(" no help text")
            .and_then(|n| n.strip_suffix("_total"))
            .unwrap_or_else(|| panic!("promtool check metrics: {line}\n{report}"));
        assert!(text.contains(&format!("# HELP {family} ")), "promtool: {line}");
        assert!(text.contains(&format!("# TYPE {family} counter")), "promtool: {line}");
    }
    // Only /metrics on that listener, and it is HTTPS.
    let st = s
        .client
        .get(url.replace("/metrics", "/keys"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st.as_u16(), 404);
    assert!(reqwest::get(url.replace("https://", "http://")).await.is_err());
}
