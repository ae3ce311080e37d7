//! TLS policy against the real server on real sockets: protocol versions and cipher suites probed with
//! `openssl s_client`, client certificates (mutual TLS, with a client CA made at test time by the `openssl`
//! command), certificate reload without a restart (on demand and by polling), and the audit record's
//! `tlsVersion`.
//!
//! Needs the `openssl` command.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions may panic"
)]
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer_crypto::x509::{self, CertifiedKey};
use coffer_server::config::TlsPolicyConfig;
use coffer_testkit::TestServer;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// What `openssl s_client` reported.
#[derive(Debug)]
struct Probe {
    /// The protocol and cipher of the session (from `New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384`), if a
    /// handshake completed.
    session: Option<(String, String)>,
    /// The server answered `GET /healthz` over the session.
    answered: bool,
    /// Everything s_client printed (stdout and stderr).
    out: String,
}

/// Connects with `openssl s_client` and the given options, sends `GET /healthz` and reads until the server closes.
async fn s_client(port: u16, args: &[&str]) -> Probe {
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the openssl command is needed");
    let mut stdin = child.stdin.take().unwrap();
    // The server may have closed the connection already (failed handshake): ignore write errors.
    let _ = stdin
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("openssl s_client did not finish")
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let session = out.lines().find_map(|l| {
        let rest = l.strip_prefix("New, ")?;
        let (proto, cipher) = rest.split_once(", Cipher is ")?;
        (proto != "(NONE)").then(|| (proto.to_string(), cipher.trim().to_string()))
    });
    Probe {
        session,
        answered: out.contains("HTTP/1.1 200 OK"),
        out,
    }
}

fn port(s: &TestServer) -> u16 {
    s.addr().unwrap().port()
}

/// Runs the `openssl` command; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A client PKI made with the openssl command under `dir/{name}`: a P-256 CA and a client certificate
/// (EKU clientAuth) it signed.
struct ClientPki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl ClientPki {
    fn new(dir: &Path, name: &str) -> Self {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let ca_subj = format!("/CN=Coffer test client CA {name}");
        let mut args = vec!["req", "-x509", "-config", "openssl.cnf", "-extensions", "ca_ext"];
        args.extend(ec);
        args.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &ca_subj]);
        openssl(&d, &args);
        let mut args = vec!["req", "-new", "-config", "openssl.cnf"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=coffer-test-client",
        ]);
        openssl(&d, &args);
        openssl(
            &d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "4660",
                "-days",
                "2",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                "client_ext",
                "-out",
                "client.pem",
            ],
        );
        Self {
            ca: d.join("ca.pem"),
            cert: d.join("client.pem"),
            key: d.join("client.key"),
        }
    }

    /// The client certificate and key as one PEM (for `reqwest::Identity::from_pem`).
    fn identity_pem(&self) -> Vec<u8> {
        let mut pem = std::fs::read(&self.cert).unwrap();
        pem.extend(std::fs::read(&self.key).unwrap());
        pem
    }

    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(&self.identity_pem()).unwrap()
    }
}

/// A client trusting only the CA in `ca` (PEM file), with a fresh connection pool.
fn client_trusting(ca: &Path, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap()])
        .pool_max_idle_per_host(0);
    if let Some(i) = identity {
        b = b.identity(i);
    }
    b.build().unwrap()
}

fn mtls(client_auth: &str, ca: &Path) -> TlsPolicyConfig {
    TlsPolicyConfig {
        client_auth: client_auth.into(),
        client_ca: Some(ca.to_path_buf()),
        ..TlsPolicyConfig::default()
    }
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_with_aead_suites_are_negotiated() {
    let s = TestServer::builder().bare().start().await.unwrap();
    let p = port(&s);

    // TLS 1.1, offered for real (OpenSSL 3 only sends it at security level 0): the server answers the
    // ClientHello with an alert (rustls: handshake_failure), no session.
    let old = s_client(p, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]).await;
    assert_eq!(old.session, None, "{}", old.out);
    assert!(!old.answered, "{}", old.out);
    assert!(
        old.out.contains("Protocol  : TLSv1.1"),
        "the client offered TLS 1.1: {}",
        old.out
    );
    assert!(old.out.contains("alert handshake failure"), "{}", old.out);

    // CBC suites (RSA key exchange, and ECDHE with the server's ECDSA key): no suite in common.
    for cbc in ["AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"] {
        let r = s_client(p, &["-tls1_2", "-cipher", cbc]).await;
        assert_eq!(r.session, None, "{cbc}: {}", r.out);
        assert!(!r.answered, "{cbc}: {}", r.out);
        assert!(r.out.contains("alert handshake failure"), "{cbc}: {}", r.out);
    }

    // The generated certificate has a P-256 key: the ECDHE-ECDSA AEAD suites of TLS 1.2 are served.
    for aead in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let r = s_client(p, &["-tls1_2", "-cipher", aead]).await;
        assert_eq!(r.session, Some(("TLSv1.2".into(), aead.into())), "{}", r.out);
        assert!(r.answered, "{aead}: {}", r.out);
    }

    // TLS 1.3 with each of its suites; and without restrictions the client gets TLS 1.3.
    for suite in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let r = s_client(p, &["-tls1_3", "-ciphersuites", suite]).await;
        assert_eq!(r.session, Some(("TLSv1.3".into(), suite.into())), "{}", r.out);
        assert!(r.answered, "{suite}: {}", r.out);
    }
    let any = s_client(p, &[]).await;
    assert_eq!(
        any.session.as_ref().map(|s| s.0.as_str()),
        Some("TLSv1.3"),
        "{}",
        any.out
    );
    assert!(any.answered, "{}", any.out);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn min_version_1_3_refuses_tls_1_2() {
    let s = TestServer::builder()
        .bare()
        .tls_policy(TlsPolicyConfig {
            min_version: "1.3".into(),
            ..TlsPolicyConfig::default()
        })
        .start()
        .await
        .unwrap();
    let old = s_client(port(&s), &["-tls1_2"]).await;
    assert_eq!(old.session, None, "{}", old.out);
    assert!(!old.answered, "{}", old.out);
    assert!(old.out.contains("alert protocol version"), "{}", old.out);
    let new = s_client(port(&s), &["-tls1_3"]).await;
    assert_eq!(
        new.session.as_ref().map(|s| s.0.as_str()),
        Some("TLSv1.3"),
        "{}",
        new.out
    );
    assert!(new.answered, "{}", new.out);
    // reqwest (rustls) capped at TLS 1.2 cannot connect either; uncapped it can.
    let ca = s.data_dir().join("ca.pem");
    let capped = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap()])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(capped.get(format!("{}/healthz", s.url())).send().await.is_err());
    let ok = client_trusting(&ca, None)
        .get(format!("{}/healthz", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    s.stop().await.unwrap();
}

#[test]
fn bad_tls_policies_are_refused_at_start() {
    let with = |min: &str, auth: &str, ca: Option<&str>| coffer_server::ServeConfig {
        tls: TlsPolicyConfig {
            min_version: min.into(),
            client_auth: auth.into(),
            client_ca: ca.map(PathBuf::from),
            ..TlsPolicyConfig::default()
        },
        ..coffer_server::ServeConfig::default()
    };
    assert!(with("1.2", "off", None).validate().is_ok());
    assert!(with("1.3", "required", Some("/ca.pem")).validate().is_ok());
    assert!(with("1.1", "off", None).validate().is_err(), "TLS 1.1 is not a choice");
    assert!(with("1.2", "required", None).validate().is_err(), "mTLS needs a CA");
    assert!(with("1.2", "optional", None).validate().is_err(), "mTLS needs a CA");
    assert!(
        with("1.2", "off", Some("/ca.pem")).validate().is_err(),
        "a CA without client_auth is a mistake"
    );
    assert!(with("1.2", "sometimes", Some("/ca.pem")).validate().is_err());
}

#[tokio::test]
async fn required_client_certificates_gate_the_connection_and_the_token_still_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ClientPki::new(tmp.path(), "trusted");
    let rogue = ClientPki::new(tmp.path(), "rogue");
    // The testkit's own client presents the trusted certificate (it assigns the crypto roles at start).
    let s = TestServer::builder()
        .tls_policy(mtls("required", &pki.ca))
        .client_identity(pki.identity_pem())
        .start()
        .await
        .unwrap();
    let ca = s.data_dir().join("ca.pem");
    let keys = format!("{}/keys?api-version=7.6", s.url());

    // No certificate, or one from another CA: no connection, so no HTTP status at all.
    let none = client_trusting(&ca, None).get(&keys).send().await;
    assert!(none.is_err(), "{none:?}");
    let other = client_trusting(&ca, Some(rogue.identity())).get(&keys).send().await;
    assert!(other.is_err(), "{other:?}");

    // With the certificate: the bearer token is still required.
    let c = client_trusting(&ca, Some(pki.identity()));
    let anon = c.get(&keys).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers().contains_key("www-authenticate"));
    let token = s.token().await.unwrap();
    let ok = c.get(&keys).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(body["value"].is_array(), "{body}");

    // openssl s_client: without a certificate the server ends the handshake with a certificate_required alert
    // (s_client has sent its Finished by then, so it prints a session, but nothing is answered); with one it is
    // served.
    let p = port(&s);
    for v in ["-tls1_3", "-tls1_2"] {
        let bare = s_client(p, &[v]).await;
        assert!(!bare.answered, "{v}: {}", bare.out);
        assert!(bare.out.contains("alert certificate required"), "{v}: {}", bare.out);
    }
    let cert = pki.cert.to_str().unwrap();
    let key = pki.key.to_str().unwrap();
    for v in ["-tls1_3", "-tls1_2"] {
        let with = s_client(p, &[v, "-cert", cert, "-key", key]).await;
        assert!(with.session.is_some(), "{v}: {}", with.out);
        assert!(with.answered, "{v}: {}", with.out);
    }
    s.stop().await.unwrap();
}

#[tokio::test]
async fn optional_client_certificates_are_checked_when_presented() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ClientPki::new(tmp.path(), "trusted");
    let rogue = ClientPki::new(tmp.path(), "rogue");
    let s = TestServer::builder()
        .tls_policy(mtls("optional", &pki.ca))
        .start()
        .await
        .unwrap();
    let ca = s.data_dir().join("ca.pem");
    let keys = format!("{}/keys?api-version=7.6", s.url());
    let token = s.token().await.unwrap();
    for (what, identity) in [("no certificate", None), ("trusted certificate", Some(pki.identity()))] {
        let r = client_trusting(&ca, identity)
            .get(&keys)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{what}");
    }
    let other = client_trusting(&ca, Some(rogue.identity()))
        .get(&keys)
        .bearer_auth(&token)
        .send()
        .await;
    assert!(
        other.is_err(),
        "a certificate from an untrusted CA is refused: {other:?}"
    );
    s.stop().await.unwrap();
}

/// A server certificate for localhost/127.0.0.1 signed by a new CA named `name`, issued `age_days` ago (so
/// that certificates differ in expiry), written as `{name}-ca.pem`, `{name}-cert.pem` (chain) and `{name}-key.pem`.
struct ServerPki {
    ca: PathBuf,
    chain: String,
    key: Vec<u8>,
    not_after: i64,
}

fn server_pki(dir: &Path, name: &str, age_days: u64) -> ServerPki {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ca = x509::generate_ca(&format!("Coffer test server CA {name}")).unwrap();
    let leaf: CertifiedKey = x509::issue_server_certificate_at(
        &ca,
        &["localhost".to_string()],
        &[IpAddr::from([127, 0, 0, 1])],
        now - age_days * 86_400,
    )
    .unwrap();
    let ca_path = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let chain = format!("{}{}", leaf.cert_pem, ca.cert_pem);
    ServerPki {
        ca: ca_path,
        not_after: coffer_server::tls::not_after(&chain).unwrap(),
        chain,
        key: leaf.key_pem.expose_secret().to_vec(),
    }
}

/// Installs `pki` as `cert.pem`/`key.pem` in `dir` the way deployment tools do: write aside, then rename.
fn install(dir: &Path, pki: &ServerPki) {
    std::fs::write(dir.join("cert.pem.new"), &pki.chain).unwrap();
    std::fs::write(dir.join("key.pem.new"), &pki.key).unwrap();
    std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
}

/// Whether a new connection trusting only `ca` gets `GET /healthz` answered.
async fn served_by(url: &str, ca: &Path) -> bool {
    match client_trusting(ca, None).get(format!("{url}/healthz")).send().await {
        Ok(r) => r.status() == 200,
        Err(_) => false,
    }
}

async fn tls_not_after_metric(s: &TestServer, ca: &Path) -> i64 {
    let text = client_trusting(ca, None)
        .get(s.metrics_url().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("coffer_tls_certificate_not_after_timestamp_seconds ")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no TLS expiry metric in\n{text}")) as i64
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_a_bad_one_keeps_the_old() {
    let tmp = tempfile::tempdir().unwrap();
    let a = server_pki(tmp.path(), "a", 10);
    let b = server_pki(tmp.path(), "b", 0);
    assert_ne!(a.not_after, b.not_after);
    install(tmp.path(), &a);
    let s = TestServer::builder()
        .bare()
        .tls_files(tmp.path().join("cert.pem"), tmp.path().join("key.pem"))
        .trust_ca(a.ca.clone())
        .tls_policy(TlsPolicyConfig {
            reload_interval_secs: 0,
            ..TlsPolicyConfig::default()
        })
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let url = s.url();
    assert!(served_by(&url, &a.ca).await);
    assert!(!served_by(&url, &b.ca).await);
    assert_eq!(tls_not_after_metric(&s, &a.ca).await, a.not_after);

    // Nothing reloads by itself (reload_interval_secs = 0); the reload call does.
    install(tmp.path(), &b);
    assert!(served_by(&url, &a.ca).await, "no reload without a trigger");
    assert!(s.reload_tls().unwrap());
    assert!(served_by(&url, &b.ca).await, "new connections get certificate B");
    assert!(!served_by(&url, &a.ca).await, "certificate A is no longer served");
    assert_eq!(tls_not_after_metric(&s, &b.ca).await, b.not_after);
    // The metrics listener serves the new certificate too, the API still answers over it.
    let ping = client_trusting(&b.ca, None)
        .get(format!("{url}/keys?api-version=7.6"))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 401);

    // A broken certificate file, and a key that does not match: the reload fails, certificate B stays.
    std::fs::write(tmp.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    assert!(s.reload_tls().is_err());
    assert!(served_by(&url, &b.ca).await);
    std::fs::write(tmp.path().join("cert.pem"), &b.chain).unwrap();
    std::fs::write(tmp.path().join("key.pem"), &a.key).unwrap();
    let mismatch = s.reload_tls().unwrap_err();
    assert!(format!("{mismatch:#}").contains("does not match"), "{mismatch:#}");
    assert!(served_by(&url, &b.ca).await);
    assert_eq!(tls_not_after_metric(&s, &b.ca).await, b.not_after);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn changed_certificate_files_are_picked_up_by_polling() {
    let tmp = tempfile::tempdir().unwrap();
    let a = server_pki(tmp.path(), "a", 1);
    let b = server_pki(tmp.path(), "b", 0);
    install(tmp.path(), &a);
    let s = TestServer::builder()
        .bare()
        .tls_files(tmp.path().join("cert.pem"), tmp.path().join("key.pem"))
        .trust_ca(a.ca.clone())
        .tls_policy(TlsPolicyConfig {
            reload_interval_secs: 1,
            ..TlsPolicyConfig::default()
        })
        .start()
        .await
        .unwrap();
    let url = s.url();
    assert!(served_by(&url, &a.ca).await);
    install(tmp.path(), &b);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !served_by(&url, &b.ca).await {
        assert!(Instant::now() < deadline, "certificate B was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!served_by(&url, &a.ca).await);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_generated_certificate_has_nothing_to_reload() {
    let s = TestServer::builder().bare().start().await.unwrap();
    assert!(!s.reload_tls().unwrap());
    let ok = s.client.get(format!("{}/healthz", s.url())).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    s.stop().await.unwrap();
}

/// Every record in the audit directory.
fn audit_records(s: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    for f in coffer_server::audit_sinks::file::list_files(&s.audit_dir()).unwrap() {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn audit_records_carry_the_tls_version() {
    let s = TestServer::builder().start().await.unwrap();
    let token = s.token().await.unwrap();
    let ca = s.data_dir().join("ca.pem");
    let tls12 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap()])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    for (id, client) in [("tls-test-13", &s.client), ("tls-test-12", &tls12)] {
        let r = client
            .get(format!("{}/keys?api-version=7.6", s.url()))
            .bearer_auth(&token)
            .header("x-ms-client-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let records = audit_records(&s);
    let version = |id: &str| {
        let r = records
            .iter()
            .find(|r| r["correlationId"] == id)
            .unwrap_or_else(|| panic!("no record {id}"));
        assert_eq!(r["operationName"], "KeyList", "{r}");
        r["properties"]["tlsVersion"].clone()
    };
    assert_eq!(version("tls-test-13"), "TLS1_3");
    assert_eq!(version("tls-test-12"), "TLS1_2");
    // The other requests (role assignments, tokens) came over TLS 1.3 and say so too.
    let http: Vec<&Value> = records
        .iter()
        .filter(|r| r["properties"]["httpStatusCode"].is_number())
        .collect();
    assert!(http.len() >= 4, "{records:?}");
    assert!(
        http.iter()
            .all(|r| r["properties"]["tlsVersion"] == "TLS1_3" || r["correlationId"] == "tls-test-12"),
        "{records:?}"
    );
    s.stop().await.unwrap();
}
