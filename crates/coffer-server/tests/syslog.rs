//! The syslog audit sink against a real rsyslogd (8.x): UDP, TCP (octet counting) and a unix datagram socket.
//!
//! Every test starts its own rsyslogd (`rsyslogd -n -f <conf> -i <pidfile>` in a temporary directory, on loopback
//! ports picked free at start) with one ruleset per input, each writing the parsed RFC 5424 fields and `%msg%` of
//! every message as one line to its own file. The system rsyslog service and /etc/rsyslog.conf are not used.
//!
//! Needs rsyslogd (`/usr/sbin/rsyslogd`, or `COFFER_RSYSLOGD`). Without it every test fails, unless
//! `COFFER_SKIP_RSYSLOG=1` says to skip them.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions may panic"
)]
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer_core::audit::chain::{ChainHead, chain_line};
use coffer_core::audit::{AuditSink as _, ChainedRecord};
use coffer_crypto::SecretBytes;
use coffer_server::audit_sinks::syslog::SyslogSink;
use coffer_server::config::{AuditConfig, FileSinkConfig, SyslogConfig};
use coffer_testkit::TestServer;

/// Field separator of the output template (in no header field of these tests; the message comes last).
const SEP: char = '|';

/// A private rsyslogd, killed on drop.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    udp_port: u16,
    tcp_port: u16,
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    pri: u16,
    facility: String,
    severity: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    structured_data: String,
    timestamp: String,
    msg: String,
}

fn rsyslogd() -> Option<PathBuf> {
    let path = std::env::var_os("COFFER_RSYSLOGD").map_or_else(|| PathBuf::from("/usr/sbin/rsyslogd"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("COFFER_SKIP_RSYSLOG").is_ok_and(|v| v == "1") {
        eprintln!("rsyslogd not found and COFFER_SKIP_RSYSLOG=1: skipping");
        return None;
    }
    panic!(
        "{} not found (install rsyslog, set COFFER_RSYSLOGD, or COFFER_SKIP_RSYSLOG=1 to skip)",
        path.display()
    );
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether something is bound to 127.0.0.1:`port` over UDP (from /proc/net/udp).
fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
}

impl Rsyslog {
    /// Starts rsyslogd on free ports; `None` when rsyslogd is missing and the tests are to be skipped.
    fn start() -> Option<Self> {
        let bin = rsyslogd()?;
        let dir = tempfile::tempdir().unwrap();
        let (udp_port, tcp_port) = (free_udp_port(), free_tcp_port());
        let child = spawn(&bin, dir.path(), udp_port, tcp_port);
        let mut me = Self {
            child,
            dir,
            udp_port,
            tcp_port,
        };
        me.wait_ready();
        Some(me)
    }

    /// Kills rsyslogd (SIGKILL: its connections and socket file are left as a crash leaves them).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills rsyslogd and starts a new one with the same directory, ports and socket path.
    fn restart(&mut self) {
        self.kill();
        let bin = rsyslogd().unwrap();
        self.child = spawn(&bin, self.dir.path(), self.udp_port, self.tcp_port);
        self.wait_ready();
    }
}

/// Writes the configuration into `d` and starts rsyslogd on it.
fn spawn(bin: &Path, d: &Path, udp_port: u16, tcp_port: u16) -> Child {
    let sock = d.join("log.sock");
    let _ = std::fs::remove_file(&sock);
    let fields = [
        "%pri%",
        "%syslogfacility-text%",
        "%syslogseverity-text%",
        "%hostname%",
        "%app-name%",
        "%procid%",
        "%msgid%",
        "%structured-data%",
        "%timereported:::date-rfc3339%",
        "%msg%",
    ]
    .join(&SEP.to_string());
    let out = |name: &str| d.join(format!("{name}.log")).display().to_string();
    let conf = format!(
        r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
template(name="fields" type="string" string="{fields}\n")
ruleset(name="udp") {{ action(type="omfile" file="{udp_out}" template="fields") }}
ruleset(name="tcp") {{ action(type="omfile" file="{tcp_out}" template="fields") }}
ruleset(name="unix") {{ action(type="omfile" file="{unix_out}" template="fields") }}
input(type="imudp" address="127.0.0.1" port="{udp_port}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="tcp")
input(type="imuxsock" socket="{sock}" useSpecialParser="off" parseHostname="on" ignoreTimestamp="off" ruleset="unix")
"#,
        work = d.display(),
        udp_out = out("udp"),
        tcp_out = out("tcp"),
        unix_out = out("unix"),
        sock = sock.display(),
    );
    let conf_path = d.join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let stderr = std::fs::File::create(d.join("rsyslogd.stderr")).unwrap();
    Command::new(bin)
        .arg("-n")
        .arg("-f")
        .arg(&conf_path)
        .arg("-i")
        .arg(d.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

impl Rsyslog {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rsyslogd exited ({status}): {}", self.stderr());
            }
            let tcp = TcpStream::connect(("127.0.0.1", self.tcp_port)).is_ok();
            if tcp && udp_bound(self.udp_port) && self.socket_path().exists() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not get ready: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.stderr")).unwrap_or_default()
    }

    fn socket_path(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    /// The sink configuration for `transport` pointing at this rsyslogd.
    fn sink_config(&self, transport: &str) -> SyslogConfig {
        let address = match transport {
            "udp" => format!("127.0.0.1:{}", self.udp_port),
            "tcp" => format!("127.0.0.1:{}", self.tcp_port),
            _ => self.socket_path().display().to_string(),
        };
        SyslogConfig {
            transport: transport.into(),
            address,
            facility: "authpriv".into(),
            app_name: "coffer".into(),
            hostname: Some("hsm1.example.net".into()),
        }
    }

    /// What the ruleset of `input` wrote so far.
    fn received(&self, input: &str) -> Vec<Received> {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{input}.log"))).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(10, SEP).collect();
                assert_eq!(f.len(), 10, "unexpected output line {l:?}");
                Received {
                    pri: f[0].parse().unwrap(),
                    facility: f[1].into(),
                    severity: f[2].into(),
                    hostname: f[3].into(),
                    app_name: f[4].into(),
                    procid: f[5].into(),
                    msgid: f[6].into(),
                    structured_data: f[7].into(),
                    timestamp: f[8].into(),
                    msg: f[9].into(),
                }
            })
            .collect()
    }

    /// Waits until `input` received at least `n` messages matching `pred`, and returns all of them.
    fn wait_for(&self, input: &str, n: usize, pred: impl Fn(&Received) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got: Vec<Received> = self.received(input).into_iter().filter(&pred).collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd received {} of {n} messages on {input}: {got:#?}\nstderr: {}",
                got.len(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A batch of realistically shaped, properly chained audit records.
fn records(first_seq: u64) -> Vec<ChainedRecord> {
    let key = SecretBytes::new(vec![7u8; 32]);
    let mut head = ChainHead {
        next_seq: first_seq,
        prev: [0x5a; 32],
    };
    let specs = [
        ("KeyCreate", "Informational", "OK", 200, String::new()),
        (
            "KeyGet",
            "Warning",
            "Forbidden",
            403,
            "Caller is not authorized: ü/é, 100% \"quoted\" | piped".into(),
        ),
        ("KeySign", "Error", "Internal Server Error", 500, "x".repeat(30_000)),
        ("KeyList", "Informational", "OK", 200, String::new()),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (op, level, sig, status, desc))| {
            let time = format!("2026-11-22T08:05:4{i}.123456{i}Z");
            let mut rec = serde_json::json!({
                "time": time,
                "resourceId": "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/COFFER/PROVIDERS/MICROSOFT.KEYVAULT/MANAGEDHSMS/HSM1",
                "TenantId": "11111111-2222-3333-4444-555555555555",
                "operationName": op,
                "operationVersion": "7.5",
                "category": "AuditEvent",
                "resultType": "Success",
                "resultSignature": sig,
                "durationMs": "12",
                "callerIpAddress": "127.0.0.1",
                "correlationId": format!("aaaaaaaa-bbbb-4ccc-8ddd-00000000000{i}"),
                "identity": {"claim": {"oid": "0f0f0f0f-0000-4000-8000-000000000001", "appid": "coffer-admin"}},
                "properties": {"id": "https://hsm1.example.net/keys/k1", "httpStatusCode": status, "requestUri": "https://hsm1.example.net/keys/k1?api-version=7.5"},
                "level": level,
                "PoolName": "hsm1",
                "resourceType": "managedHSMs",
            });
            if !desc.is_empty() {
                rec["resultDescription"] = serde_json::Value::String(desc.clone());
            }
            let body = serde_json::to_vec(&rec).unwrap();
            let (line, next) = chain_line(&head, &key, &body);
            let out = ChainedRecord {
                seq: head.next_seq,
                time,
                level: (*level).to_string(),
                line,
            };
            head = next;
            out
        })
        .collect()
}

fn check_sink_against_rsyslog(transport: &str) {
    let Some(mut rs) = Rsyslog::start() else { return };
    let mut sink = SyslogSink::new(&rs.sink_config(transport)).unwrap();
    let batch = records(40);
    sink.write(&batch).unwrap();
    let got = rs.wait_for(transport, batch.len(), |_| true);
    assert_eq!(got.len(), batch.len(), "{got:#?}");
    for (r, g) in batch.iter().zip(&got) {
        assert_eq!(g.msg.as_bytes(), &r.line[..], "%msg% must be exactly the JSON line");
        let v: serde_json::Value = serde_json::from_str(&g.msg).unwrap();
        assert_eq!(v["cofferChain"]["seq"], r.seq);
        let (pri, severity) = match r.level.as_str() {
            "Informational" => (86, "info"),
            "Warning" => (84, "warning"),
            "Error" => (83, "err"),
            other => panic!("level {other}"),
        };
        assert_eq!(g.pri, pri);
        assert_eq!(g.facility, "authpriv");
        assert_eq!(g.severity, severity);
        assert_eq!(g.hostname, "hsm1.example.net");
        assert_eq!(g.app_name, "coffer");
        assert_eq!(g.procid, std::process::id().to_string());
        assert_eq!(g.msgid, "AuditEvent");
        assert_eq!(g.structured_data, "-");
        // The 7-digit fraction of the record, cut to the 6 digits RFC 5424 allows.
        assert_eq!(g.timestamp, r.time.get(..26).unwrap().to_string() + "Z");
    }

    // A second batch after rsyslogd restarted (new process, same port or socket path) arrives too: the sink
    // notices the dead TCP connection / recreated socket and reconnects. (UDP has no connection to notice.)
    rs.restart();
    let second = records(44);
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = sink.write(&second) {
        assert!(Instant::now() < deadline, "writes kept failing after the restart: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = rs.wait_for(transport, batch.len() * 2, |_| true);
    let msgs: Vec<&str> = got.iter().map(|g| g.msg.as_str()).collect();
    for r in &second {
        assert!(
            msgs.contains(&std::str::from_utf8(&r.line).unwrap()),
            "record {} missing after the restart",
            r.seq
        );
    }
}

#[test]
fn udp_records_reach_rsyslog() {
    check_sink_against_rsyslog("udp");
}

#[test]
fn tcp_records_reach_rsyslog() {
    check_sink_against_rsyslog("tcp");
}

#[test]
fn unix_socket_records_reach_rsyslog() {
    check_sink_against_rsyslog("unix");
}

#[test]
fn writes_fail_while_rsyslog_is_down() {
    let Some(rs) = Rsyslog::start() else { return };
    let mut tcp = SyslogSink::new(&rs.sink_config("tcp")).unwrap();
    let mut unix = SyslogSink::new(&rs.sink_config("unix")).unwrap();
    drop(rs);
    std::thread::sleep(Duration::from_millis(200));
    assert!(tcp.write(&records(0)).is_err());
    assert!(unix.write(&records(0)).is_err());
}

/// Starts a server whose audit records go to `rs` over TCP (`file` keeps the file sink as well or not).
async fn server_with_syslog(rs: &Rsyslog, file: bool) -> TestServer {
    TestServer::builder()
        .audit(AuditConfig {
            syslog: Some(rs.sink_config("tcp")),
            file: FileSinkConfig {
                enabled: file,
                ..FileSinkConfig::default()
            },
            ..AuditConfig::default()
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_audit_records_reach_rsyslog() {
    let Some(rs) = Rsyslog::start() else { return };
    let server = server_with_syslog(&rs, true).await;
    for _ in 0..2 {
        let (status, _) = server
            .call(reqwest::Method::GET, "/keys?api-version=7.5", None)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let is_key_list = |g: &Received| g.msg.contains(r#""operationName":"KeyList""#);
    let got = tokio::task::spawn_blocking(move || {
        let got = rs.wait_for("tcp", 2, is_key_list);
        (got, rs.received("tcp"))
    })
    .await
    .unwrap();
    let (key_lists, all) = got;
    for g in &key_lists {
        let v: serde_json::Value = serde_json::from_str(&g.msg).unwrap();
        assert_eq!(v["category"], "AuditEvent");
        assert_eq!(v["operationName"], "KeyList");
        assert!(v["cofferChain"]["hash"].is_string(), "{v}");
        assert_eq!(g.app_name, "coffer");
        assert_eq!(g.msgid, "AuditEvent");
        assert_eq!(g.facility, "authpriv");
    }
    // Every record of the chain arrived, in order, without gaps.
    let seqs: Vec<u64> = all
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_str(&g.msg).unwrap();
            v["cofferChain"]["seq"].as_u64().unwrap()
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_as_the_only_sink_fails_closed_while_rsyslog_is_down() {
    let Some(rs) = Rsyslog::start() else { return };
    let server = server_with_syslog(&rs, false).await;
    let (status, _) = server
        .call(reqwest::Method::GET, "/keys?api-version=7.5", None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    // rsyslogd goes away: nothing can record requests, so they are refused (503; the token request made by
    // `call` may be the one refused).
    let mut rs = rs;
    rs.kill();
    match server.call(reqwest::Method::GET, "/keys?api-version=7.5", None).await {
        Ok((status, _)) => assert_eq!(status, 503, "requests must be refused while no sink can record them"),
        Err(e) => assert!(e.to_string().contains("503"), "{e}"),
    }

    // rsyslogd is back: after the sink's reconnect backoff, requests succeed again and are recorded.
    let rs = tokio::task::spawn_blocking(move || {
        rs.restart();
        rs
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok((200, _)) = server.call(reqwest::Method::GET, "/keys?api-version=7.5", None).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests still refused after rsyslogd came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let got =
        tokio::task::spawn_blocking(move || rs.wait_for("tcp", 1, |g| g.msg.contains(r#""operationName":"KeyList""#)))
            .await
            .unwrap();
    assert!(!got.is_empty());
    server.stop().await.unwrap();
}
