//! `coffer key|role|backup` (the az-style commands) run as a child process against a real server: key lifecycle
//! (create, show, list, set-attributes, download checked by openssl, backup, delete, recover, purge, restore),
//! rotation, random bytes, role definitions and assignments (checked by what the assignee may then do), a failing
//! command's exit status and error code, and a full backup and restore through a `file://` container.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";
const CRYPTO_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625b";

/// A finished `coffer` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The JSON printed on stdout (Null when nothing was printed); the run must have succeeded.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.stdout).unwrap()
        }
    }
}

/// Runs `coffer ARGS --creds CREDS`.
fn coffer(creds: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .arg("--creds")
        .arg(creds)
        .env_remove("COFFER_CREDS")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(creds: &Path, args: &[&str]) -> Value {
    coffer(creds, args).json()
}

fn admin_creds(s: &TestServer) -> PathBuf {
    s.data_dir().join("admin-credentials.json")
}

fn b64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `openssl pkey -pubin -in FILE -noout -text` (DER when `der`).
fn openssl_text(file: &Path, der: bool) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["pkey", "-pubin", "-noout", "-text", "-in"]).arg(file);
    if der {
        cmd.args(["-inform", "DER"]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The hex dump openssl prints between the line starting with `from` and the next line starting with `to`.
fn openssl_hex(text: &str, from: &str, to: &str) -> String {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with(from))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with(to))
        .flat_map(|l| l.trim().split(':'))
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

// Multi-threaded: the CLI runs as a blocking child process while this runtime serves its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_through_the_cli() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    let tmp = tempfile::tempdir().unwrap();

    let rsa = ok(
        &creds,
        &[
            "key", "create", "--name", "rsa1", "--kty", "RSA", "--size", "2048", "--tags", "env=test",
        ],
    );
    assert_eq!(rsa["key"]["kty"], "RSA-HSM");
    assert_eq!(rsa["tags"]["env"], "test");
    let ec = ok(
        &creds,
        &[
            "key", "create", "-n", "ec1", "--kty", "EC-HSM", "--curve", "P-384", "--ops", "sign", "verify",
        ],
    );
    assert_eq!(ec["key"]["crv"], "P-384");
    assert_eq!(ec["key"]["key_ops"], json!(["sign", "verify"]));
    let aes = ok(
        &creds,
        &[
            "key",
            "create",
            "-n",
            "aes1",
            "--kty",
            "oct-HSM",
            "--size",
            "256",
            "--expires",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert_eq!(aes["key"]["kty"], "oct-HSM");
    assert_eq!(aes["attributes"]["exp"], 4_070_908_800_i64);

    // show (latest and by version) and list.
    assert_eq!(
        ok(&creds, &["key", "show", "--name", "rsa1"])["key"]["kid"],
        rsa["key"]["kid"]
    );
    let ec_version = ec["key"]["kid"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        ok(&creds, &["key", "show", "-n", "ec1", "--version", ec_version])["key"]["x"],
        ec["key"]["x"]
    );
    let listed = names(&ok(&creds, &["key", "list"]));
    for n in ["rsa1", "ec1", "aes1"] {
        assert!(listed.contains(&n.to_string()), "{listed:?}");
    }
    // Paging: one key per page still lists them all.
    assert_eq!(names(&ok(&creds, &["key", "list", "--maxresults", "1"])).len(), 3);

    // set-attributes: tags replaced, key disabled (crypto refused, metadata still readable).
    let updated = ok(
        &creds,
        &[
            "key",
            "set-attributes",
            "-n",
            "rsa1",
            "--tags",
            "team=blue",
            "--enabled",
            "false",
        ],
    );
    assert_eq!(updated["attributes"]["enabled"], false);
    assert_eq!(updated["tags"], json!({"team": "blue"}));
    let shown = ok(&creds, &["key", "show", "-n", "rsa1"]);
    assert_eq!(
        (shown["attributes"]["enabled"].clone(), shown["tags"].clone()),
        (json!(false), json!({"team": "blue"}))
    );
    let (st, _) = s
        .call(
            Method::POST,
            "/keys/rsa1//encrypt?api-version=7.6",
            Some(json!({"alg": "RSA-OAEP-256", "value": "c2VjcmV0"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a disabled key does not encrypt");

    // download: openssl reads the public keys, and they are the keys' n and (crv, x, y).
    let pem = tmp.path().join("rsa1.pem");
    assert_eq!(
        ok(
            &creds,
            &["key", "download", "-n", "rsa1", "--file", pem.to_str().unwrap()]
        ),
        Value::Null
    );
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    let text = openssl_text(&pem, false);
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("Exponent: 65537"), "{text}");
    let modulus = openssl_hex(&text, "Modulus:", "Exponent:");
    assert_eq!(modulus.trim_start_matches("00"), hex(&b64(&rsa["key"]["n"])));
    let der = tmp.path().join("ec1.der");
    ok(
        &creds,
        &[
            "key",
            "download",
            "-n",
            "ec1",
            "-f",
            der.to_str().unwrap(),
            "--encoding",
            "DER",
        ],
    );
    let text = openssl_text(&der, true);
    assert!(
        text.contains("NIST CURVE: P-384") && text.contains("secp384r1"),
        "{text}"
    );
    let point = openssl_hex(&text, "pub:", "ASN1 OID:");
    assert_eq!(
        point,
        format!("04{}{}", hex(&b64(&ec["key"]["x"])), hex(&b64(&ec["key"]["y"])))
    );
    let r = coffer(
        &creds,
        &[
            "key",
            "download",
            "-n",
            "aes1",
            "-f",
            tmp.path().join("aes.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "an AES key has no public key");
    assert!(r.stderr.contains("no public key"), "{}", r.stderr);

    // backup → delete → list-deleted → recover → delete → purge → restore.
    let blob = tmp.path().join("rsa1.blob");
    assert_eq!(
        ok(
            &creds,
            &["key", "backup", "-n", "rsa1", "--file", blob.to_str().unwrap()]
        ),
        Value::Null
    );
    assert!(std::fs::metadata(&blob).unwrap().len() > 100);
    let deleted = ok(&creds, &["key", "delete", "-n", "rsa1"]);
    assert!(
        deleted["recoveryId"].as_str().unwrap().ends_with("/deletedkeys/rsa1"),
        "{deleted}"
    );
    assert!(!names(&ok(&creds, &["key", "list"])).contains(&"rsa1".to_string()));
    assert_eq!(names(&ok(&creds, &["key", "list-deleted"])), ["rsa1"]);
    assert_eq!(
        ok(&creds, &["key", "show-deleted", "-n", "rsa1"])["key"]["n"],
        rsa["key"]["n"]
    );
    let recovered = ok(&creds, &["key", "recover", "-n", "rsa1"]);
    assert_eq!(recovered["key"]["n"], rsa["key"]["n"]);
    assert_eq!(ok(&creds, &["key", "show", "-n", "rsa1"])["tags"]["team"], "blue");
    ok(&creds, &["key", "delete", "-n", "rsa1"]);
    assert_eq!(ok(&creds, &["key", "purge", "-n", "rsa1"]), Value::Null);
    assert_eq!(coffer(&creds, &["key", "show-deleted", "-n", "rsa1"]).code, 1);
    assert_eq!(coffer(&creds, &["key", "show", "-n", "rsa1"]).code, 1);
    let restored = ok(&creds, &["key", "restore", "--file", blob.to_str().unwrap()]);
    assert_eq!(restored["key"]["n"], rsa["key"]["n"]);
    let shown = ok(&creds, &["key", "show", "-n", "rsa1"]);
    assert_eq!(shown["key"]["kid"], rsa["key"]["kid"]);
    assert_eq!(shown["tags"]["team"], "blue");

    // The credentials may also come from COFFER_CREDS.
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["key", "show", "-n", "ec1"])
        .env("COFFER_CREDS", &creds)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_1_with_the_azure_error_code() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    let r = coffer(&creds, &["key", "show", "--name", "missing"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("(KeyNotFound)"), "{}", r.stderr);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
    // A request the service refuses as malformed: its code too.
    let r = coffer(
        &creds,
        &["key", "create", "-n", "bad", "--kty", "RSA", "--size", "1000"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ERROR: (BadParameter)"), "{}", r.stderr);
    // An unsupported api-version.
    let r = coffer(&creds, &["key", "list", "--api-version", "1.0"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("1.0"), "{}", r.stderr);
    // No credentials at all.
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["key", "list"])
        .env_remove("COFFER_CREDS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--creds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_and_rotation() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    for n in ["1", "32", "128"] {
        let r = ok(&creds, &["key", "random", "--count", n]);
        assert_eq!(b64(&r["value"]).len(), n.parse::<usize>().unwrap());
    }
    let first = ok(
        &creds,
        &["key", "create", "-n", "rot", "--kty", "EC", "--curve", "P-256"],
    );
    // No policy yet: rotate is refused.
    let r = coffer(&creds, &["key", "rotate", "-n", "rot"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P2Y"}}"#,
    )
    .unwrap();
    let set = ok(
        &creds,
        &[
            "key",
            "rotation-policy",
            "update",
            "-n",
            "rot",
            "--value",
            policy.to_str().unwrap(),
        ],
    );
    assert_eq!(set["lifetimeActions"][0]["trigger"]["timeAfterCreate"], "P90D");
    let shown = ok(&creds, &["key", "rotation-policy", "show", "-n", "rot"]);
    assert_eq!(shown["attributes"]["expiryTime"], "P2Y");
    let rotated = ok(&creds, &["key", "rotate", "-n", "rot"]);
    assert_ne!(rotated["key"]["kid"], first["key"]["kid"]);
    assert_ne!(rotated["key"]["x"], first["key"]["x"]);
    let two_years = 2 * 365 * 86_400;
    let exp = rotated["attributes"]["exp"].as_i64().unwrap() - rotated["attributes"]["created"].as_i64().unwrap();
    assert!((two_years..=two_years + 2 * 86_400).contains(&exp), "{exp}");
    let versions = ok(&creds, &["key", "list-versions", "-n", "rot"]);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(
        ok(&creds, &["key", "show", "-n", "rot"])["key"]["kid"],
        rotated["key"]["kid"]
    );
    // An inline policy works too.
    let inline = ok(
        &creds,
        &[
            "key",
            "rotation-policy",
            "update",
            "-n",
            "rot",
            "--value",
            r#"{"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}"#,
        ],
    );
    assert_eq!(inline["lifetimeActions"][0]["trigger"]["timeBeforeExpiry"], "P30D");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_definitions_and_assignments() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    let tmp = tempfile::tempdir().unwrap();

    // Built-in definitions.
    let defs = ok(&creds, &["role", "definition", "list"]);
    let role_names: Vec<&str> = defs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["properties"]["roleName"].as_str().unwrap())
        .collect();
    for n in [
        "Managed HSM Administrator",
        "Managed HSM Crypto Officer",
        "Managed HSM Crypto User",
        "Managed HSM Crypto Auditor",
        "Managed HSM Policy Administrator",
    ] {
        assert!(role_names.contains(&n), "{role_names:?}");
    }
    assert_eq!(
        ok(&creds, &["role", "definition", "list", "--custom-role-only"]),
        json!([])
    );
    let user = ok(
        &creds,
        &["role", "definition", "show", "--name", "Managed HSM Crypto User"],
    );
    assert_eq!(user["name"], CRYPTO_USER);
    assert_eq!(
        ok(&creds, &["role", "definition", "show", "--name", CRYPTO_USER])["properties"]["roleName"],
        "Managed HSM Crypto User"
    );

    // A custom role (az's flat JSON shape, from a file), updated, then deleted.
    let def_file = tmp.path().join("role.json");
    std::fs::write(
        &def_file,
        r#"{"roleName": "Key Lister", "description": "lists keys",
            "dataActions": ["Microsoft.KeyVault/managedHsm/keys/read/action"]}"#,
    )
    .unwrap();
    let custom = ok(
        &creds,
        &[
            "role",
            "definition",
            "create",
            "--role-definition",
            def_file.to_str().unwrap(),
        ],
    );
    assert_eq!(custom["properties"]["type"], "CustomRole");
    let custom_name = custom["name"].as_str().unwrap().to_string();
    let listed = ok(&creds, &["role", "definition", "list", "--custom-role-only"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["properties"]["roleName"], "Key Lister");
    let update = json!({"name": custom_name, "description": "lists keys, nothing else"}).to_string();
    let updated = ok(&creds, &["role", "definition", "update", "--role-definition", &update]);
    assert_eq!(updated["properties"]["description"], "lists keys, nothing else");
    assert_eq!(
        updated["properties"]["permissions"][0]["dataActions"],
        json!(["Microsoft.KeyVault/managedHsm/keys/read/action"])
    );

    // A new principal: nothing allowed until a role is assigned by name.
    let (st, p) = s
        .call(
            Method::POST,
            "/coffer/v1/principals?api-version=7.6",
            Some(json!({"displayName": "app"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{p}");
    let oid = p["objectId"].as_str().unwrap().to_string();
    let mut app = s.creds.clone();
    app["client_id"] = p["clientId"].clone();
    app["client_secret"] = p["clientSecret"].clone();
    let app_creds = tmp.path().join("app.json");
    std::fs::write(&app_creds, app.to_string()).unwrap();
    ok(&creds, &["key", "create", "-n", "k1", "--kty", "EC"]);
    let r = coffer(&app_creds, &["key", "show", "-n", "k1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(Forbidden"), "{}", r.stderr);

    let a = ok(
        &creds,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "Managed HSM Crypto User",
            "--assignee-object-id",
            &oid,
            "--scope",
            "/keys/k1",
        ],
    );
    assert_eq!(a["properties"]["principalId"], oid);
    assert_eq!(a["properties"]["scope"], "/keys/k1");
    assert!(
        a["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with(CRYPTO_USER)
    );
    let mine = ok(&creds, &["role", "assignment", "list", "--assignee-object-id", &oid]);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["name"], a["name"]);
    let at_keys = ok(
        &creds,
        &[
            "role",
            "assignment",
            "list",
            "--scope",
            "/keys/k1",
            "--role",
            CRYPTO_USER,
        ],
    );
    assert!(at_keys.as_array().unwrap().iter().any(|x| x["name"] == a["name"]));
    assert_eq!(ok(&app_creds, &["key", "show", "-n", "k1"])["key"]["kty"], "EC-HSM");

    // Delete by name: the list no longer has it and the principal is refused again.
    let deleted = ok(
        &creds,
        &["role", "assignment", "delete", "--name", a["name"].as_str().unwrap()],
    );
    assert_eq!(deleted["name"], a["name"]);
    assert_eq!(
        ok(&creds, &["role", "assignment", "list", "--assignee-object-id", &oid]),
        json!([])
    );
    assert_eq!(coffer(&app_creds, &["key", "show", "-n", "k1"]).code, 1);

    // The custom role by name at /keys, deleted by (role, assignee, scope).
    ok(
        &creds,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "Key Lister",
            "--assignee-object-id",
            &oid,
            "--scope",
            "/keys",
        ],
    );
    assert_eq!(names(&ok(&app_creds, &["key", "list"])), ["k1"]);
    let r = coffer(&app_creds, &["key", "create", "-n", "k2", "--kty", "EC"]);
    assert_eq!(r.code, 1, "the custom role only reads");
    let gone = ok(
        &creds,
        &[
            "role",
            "assignment",
            "delete",
            "--role",
            "Key Lister",
            "--assignee-object-id",
            &oid,
            "--scope",
            "/keys",
        ],
    );
    assert_eq!(gone.as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&creds, &["role", "assignment", "list", "--assignee-object-id", &oid]),
        json!([])
    );
    let r = coffer(
        &creds,
        &[
            "role",
            "assignment",
            "delete",
            "--role",
            "Key Lister",
            "--assignee-object-id",
            &oid,
        ],
    );
    assert_eq!(r.code, 1, "nothing left to delete");

    ok(&creds, &["role", "definition", "delete", "--name", "Key Lister"]);
    assert_eq!(
        ok(&creds, &["role", "definition", "list", "--custom-role-only"]),
        json!([])
    );
    let r = coffer(&creds, &["role", "definition", "show", "--name", &custom_name]);
    assert_eq!(r.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_backup_and_restore_through_a_file_container() {
    let s = TestServer::builder().start().await.unwrap();
    let oid = s.cred("object_id");
    for role in [BACKUP, RESTORE] {
        s.assign(role, "/", &oid).await.unwrap();
    }
    let creds = admin_creds(&s);
    let dir = tempfile::tempdir().unwrap();
    let container = format!("file://{}", dir.path().display());
    let kept = ok(
        &creds,
        &["key", "create", "-n", "kept", "--kty", "RSA", "--tags", "a=b"],
    );
    let other = ok(&creds, &["key", "create", "-n", "other", "--kty", "EC"]);

    let done = ok(&creds, &["backup", "start", "--storage-url", &container]);
    assert_eq!(done["status"], "Succeeded", "{done}");
    let folder_url = done["folderUrl"].as_str().unwrap().to_string();
    let folder = folder_url.strip_prefix(&format!("{container}/")).unwrap().to_string();
    assert!(dir.path().join(&folder).is_dir(), "{folder_url}");

    // Both keys gone for good, then a full restore (by folder name) brings them back.
    for k in ["kept", "other"] {
        ok(&creds, &["key", "delete", "-n", k]);
        ok(&creds, &["key", "purge", "-n", k]);
    }
    assert_eq!(ok(&creds, &["key", "list"]), json!([]));
    let restored = ok(
        &creds,
        &["backup", "restore", "--storage-url", &container, "--folder", &folder],
    );
    assert_eq!(restored["status"], "Succeeded", "{restored}");
    let shown = ok(&creds, &["key", "show", "-n", "kept"]);
    assert_eq!(
        (shown["key"]["n"].clone(), shown["tags"]["a"].clone()),
        (kept["key"]["n"].clone(), json!("b"))
    );
    assert_eq!(
        ok(&creds, &["key", "show", "-n", "other"])["key"]["x"],
        other["key"]["x"]
    );

    // Selective restore of one key (the folder given as the folderUrl).
    ok(&creds, &["key", "delete", "-n", "other"]);
    ok(&creds, &["key", "purge", "-n", "other"]);
    let one = ok(
        &creds,
        &[
            "backup",
            "restore",
            "--storage-url",
            &container,
            "--folder",
            &folder_url,
            "--key",
            "other",
        ],
    );
    assert_eq!(one["status"], "Succeeded", "{one}");
    assert_eq!(
        ok(&creds, &["key", "show", "-n", "other"])["key"]["x"],
        other["key"]["x"]
    );

    // A folder that does not exist: the job fails, exit 1 with its error.
    let r = coffer(
        &creds,
        &[
            "backup",
            "restore",
            "--storage-url",
            &container,
            "--folder",
            "mhsm-nothing-here",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.starts_with("ERROR: ("), "{}", r.stderr);
}

/// A `.byok` file (what a vendor's BYOK tool writes) wrapping `plaintext` for the KEK `kek` (a KeyBundle).
fn byok_file(kek: &Value, plaintext: &[u8]) -> String {
    let public = coffer_crypto::keys::PublicKey::Rsa {
        n: b64(&kek["key"]["n"]),
        e: b64(&kek["key"]["e"]),
    };
    let ciphertext = coffer_crypto::byok::byok_wrap(&public, 32, plaintext).unwrap();
    json!({
        "schema_version": "1.0.0",
        "header": {"kid": kek["key"]["kid"], "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
        "ciphertext": URL_SAFE_NO_PAD.encode(ciphertext),
        "generator": "coffer cli test",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byok_import_of_an_openssl_key() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    let tmp = tempfile::tempdir().unwrap();
    let kek = ok(
        &creds,
        &[
            "key", "create", "-n", "kek", "--kty", "RSA-HSM", "--size", "2048", "--ops", "import",
        ],
    );
    // The target: a P-256 key made by openssl, as PKCS#8 DER.
    let pem = tmp.path().join("target.pem");
    let der = tmp.path().join("target.p8");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        pem.to_str().unwrap(),
    ]);
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let text = String::from_utf8(run(&["pkey", "-in", pem.to_str().unwrap(), "-noout", "-text"])).unwrap();
    let point = openssl_hex(&text, "pub:", "ASN1 OID:");
    let byok = tmp.path().join("target.byok");
    std::fs::write(&byok, byok_file(&kek, &std::fs::read(&der).unwrap())).unwrap();

    let imported = ok(
        &creds,
        &[
            "key",
            "import",
            "-n",
            "imported",
            "--byok-file",
            byok.to_str().unwrap(),
            "--kty",
            "EC",
            "--curve",
            "P-256",
            "--ops",
            "sign",
            "verify",
        ],
    );
    assert_eq!(imported["key"]["kty"], "EC-HSM");
    assert_eq!(imported["key"]["key_ops"], json!(["sign", "verify"]));
    assert_eq!(
        format!(
            "04{}{}",
            hex(&b64(&imported["key"]["x"])),
            hex(&b64(&imported["key"]["y"]))
        ),
        point
    );
    assert!(imported["key"].get("d").is_none());

    // An AES key, and a blob for the wrong type is refused with the service's error.
    let aes = tmp.path().join("aes.byok");
    std::fs::write(&aes, byok_file(&kek, &[7u8; 32])).unwrap();
    let imported = ok(
        &creds,
        &[
            "key",
            "import",
            "-n",
            "aes",
            "--byok-file",
            aes.to_str().unwrap(),
            "--kty",
            "oct",
        ],
    );
    assert_eq!(imported["key"]["kty"], "oct-HSM");
    let r = coffer(
        &creds,
        &[
            "key",
            "import",
            "-n",
            "wrong",
            "--byok-file",
            aes.to_str().unwrap(),
            "--kty",
            "RSA",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ERROR: (BadParameter)"), "{}", r.stderr);
}

/// Key attestation end to end: `get-attestation` saves the bundle, `verify-attestation` checks it offline (pinned
/// certificate, signature, the key it is about) and reports how the key came to be; tampering is detected; an
/// imported key is never attested as generated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_attestation_verifies_offline_and_tells_generated_from_imported() {
    let s = TestServer::builder().start().await.unwrap();
    let creds = admin_creds(&s);
    let tmp = tempfile::tempdir().unwrap();
    let (st, _) = s
        .call(
            Method::POST,
            "/keys/att/create?api-version=7.6",
            Some(serde_json::json!({"kty":"EC","crv":"P-256"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, _) = s
        .call(
            Method::PUT,
            "/keys/imp?api-version=7.6",
            Some(serde_json::json!({"key":{"kty":"oct-HSM","k":"AAECAwQFBgcICQoLDA0ODwABAgMEBQYHCAkKCwwNDg8"}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let file = tmp.path().join("att.json");
    let f = file.to_str().unwrap();
    let bundle = ok(&creds, &["key", "get-attestation", "-n", "att", "-f", f]);
    assert_eq!(
        bundle["attributes"]["attestation"]["version"],
        "coffer-key-attestation/1"
    );
    let first = ok(&creds, &["key", "verify-attestation", "-f", f]);
    assert_eq!(first["origin"], "generated");
    assert_eq!(first["generatedInHsm"], true);
    assert_eq!(first["exportable"], false);
    assert_eq!(first["certificatePinned"], false);
    assert_eq!(first["verified"], false, "not verified without a pinned certificate");
    assert_eq!(first["signatureValid"], true);
    let pin = first["certificateSha256"].as_str().unwrap().to_string();
    let pinned = ok(&creds, &["key", "verify-attestation", "-f", f, "--root-sha256", &pin]);
    assert_eq!(pinned["certificatePinned"], true);
    assert_eq!(pinned["verified"], true);
    let wrong_pin = coffer(
        &creds,
        &["key", "verify-attestation", "-f", f, "--root-sha256", &"0".repeat(64)],
    );
    assert_ne!(wrong_pin.code, 0, "another certificate than the pinned one");

    // Tampered: the statement's claims, or the bundle's key, changed.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let jws = String::from_utf8(b64(&doc["attributes"]["attestation"]["privateKeyAttestation"])).unwrap();
    let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["exportable"] = Value::Bool(true);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    doc["attributes"]["attestation"]["privateKeyAttestation"] = Value::String(URL_SAFE_NO_PAD.encode(parts.join(".")));
    let forged = tmp.path().join("forged.json");
    std::fs::write(&forged, doc.to_string()).unwrap();
    let r = coffer(&creds, &["key", "verify-attestation", "-f", forged.to_str().unwrap()]);
    assert_ne!(r.code, 0, "a changed statement: {}", r.stdout);
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    other["key"]["x"] = Value::String(URL_SAFE_NO_PAD.encode([7u8; 32]));
    std::fs::write(&forged, other.to_string()).unwrap();
    let r = coffer(&creds, &["key", "verify-attestation", "-f", forged.to_str().unwrap()]);
    assert_ne!(r.code, 0, "the statement about another public key: {}", r.stdout);

    // The imported key, attested by the same certificate.
    let imp = tmp.path().join("imp.json");
    ok(
        &creds,
        &["key", "get-attestation", "-n", "imp", "-f", imp.to_str().unwrap()],
    );
    let v = ok(
        &creds,
        &[
            "key",
            "verify-attestation",
            "-f",
            imp.to_str().unwrap(),
            "--root-sha256",
            &pin,
        ],
    );
    assert_eq!(v["origin"], "imported");
    assert_eq!(v["generatedInHsm"], false);
    s.stop().await.unwrap();
}
