//! Slow and idle connections (issue 12, item 2b): connections that trickle a request head or body at one byte per
//! second, or say nothing after the TLS handshake (HTTP/1.1 and HTTP/2) or after a response, are closed after the
//! configured timeouts, connections beyond the per-address cap are refused at once, and other clients are served
//! all the while.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_server::config::ConnectionsConfig;
use coffer_testkit::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::client::TlsStream;

const V: &str = "api-version=7.6";
/// How long the test waits for the server to close a connection before calling it held open.
const PATIENCE: Duration = Duration::from_secs(12);

fn tls_config(s: &TestServer, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(s.ca_path()).unwrap();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

/// A TLS connection from `from` (HTTP/1.1 or, with `alpn` `h2`, HTTP/2); `None` when the server refuses it.
async fn connect(s: &TestServer, from: &str, alpn: &[u8]) -> Option<TlsStream<tokio::net::TcpStream>> {
    let addr: SocketAddr = s.addr().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(addr).await.ok()?;
    let connector = tokio_rustls::TlsConnector::from(tls_config(s, alpn));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.ok()
}

/// Reads until the server closes the connection; what it sent, or `None` if still open after `PATIENCE`.
async fn wait_closed<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all).await.ok().map(|()| got)
}

/// Writes `bytes` one per second until the connection fails (or all are written).
async fn trickle<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) {
    for b in bytes {
        if w.write_all(&[*b]).await.is_err() || w.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// GET /keys from another address, as a normal client.
async fn served(s: &TestServer, client: &reqwest::Client, token: &str) -> u16 {
    client
        .get(format!("{}/keys?{V}", s.url()))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn client_from(s: &TestServer, from: &str) -> reqwest::Client {
    let ca = std::fs::read(s.ca_path()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_while_other_clients_are_served() {
    let s = TestServer::builder()
        .configure(|c| {
            c.connections = ConnectionsConfig {
                header_read_timeout_secs: 2,
                body_read_timeout_secs: 2,
                idle_timeout_secs: 3,
                max_connections: 64,
                max_connections_per_address: 4,
            };
        })
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let other = client_from(&s, "127.0.0.3");
    let started = Instant::now();

    // 1. Idle after the handshake, HTTP/1.1 and HTTP/2 (the preface and SETTINGS, then nothing).
    let idle_h1 = connect(&s, "127.0.0.2", b"http/1.1").await.unwrap();
    let mut idle_h2 = connect(&s, "127.0.0.2", b"h2").await.unwrap();
    idle_h2
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // 2. A request head at one byte per second.
    let slow_head = connect(&s, "127.0.0.2", b"http/1.1").await.unwrap();
    let head = format!("GET /keys?{V} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    // 3. A body at one byte per second after a complete head.
    let mut slow_body = connect(&s, "127.0.0.2", b"http/1.1").await.unwrap();
    slow_body
        .write_all(
            format!(
                "POST /keys/slow/create?{V} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 64\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();

    let idle_h1_task = tokio::spawn(async move {
        let mut c = idle_h1;
        wait_closed(&mut c).await
    });
    let idle_h2_task = tokio::spawn(async move { wait_closed(&mut idle_h2).await });
    let slow_head_task = tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(slow_head);
        let head = head.into_bytes();
        tokio::spawn(async move { trickle(&mut w, &head).await });
        wait_closed(&mut r).await
    });
    let slow_body_task = tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(slow_body);
        tokio::spawn(async move { trickle(&mut w, &[b' '; 64]).await });
        wait_closed(&mut r).await
    });

    // Meanwhile another client is served, again and again.
    for _ in 0..5 {
        assert_eq!(served(&s, &other, &token).await, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let idle_h1 = idle_h1_task.await.unwrap();
    assert!(idle_h1.is_some(), "an idle HTTP/1.1 connection was held open");
    assert!(
        idle_h2_task.await.unwrap().is_some(),
        "an idle HTTP/2 connection was held open"
    );
    let head = slow_head_task.await.unwrap();
    assert!(head.is_some(), "a request head at 1 byte/s was held open");
    let body = slow_body_task
        .await
        .unwrap()
        .expect("a request body at 1 byte/s was held open");
    let body = String::from_utf8_lossy(&body);
    assert!(body.starts_with("HTTP/1.1 408"), "{body}");
    assert!(body.contains("RequestTimeout"), "{body}");
    assert!(started.elapsed() < PATIENCE, "closing took {:?}", started.elapsed());

    // Keep-alive: after a response, an idle connection is closed after the idle timeout, not before the header
    // timeout.
    let mut ka = connect(&s, "127.0.0.2", b"http/1.1").await.unwrap();
    ka.write_all(
        format!("GET /keys?{V} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    let got = wait_closed(&mut ka)
        .await
        .expect("an idle keep-alive connection was held open");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() >= Duration::from_secs(3), "closed after {:?}", t.elapsed());

    // The per-address cap: four connections from 127.0.0.4 are held, the fifth is refused at once; another address
    // is still served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&s, "127.0.0.4", b"http/1.1").await.expect("below the cap"));
    }
    assert!(
        connect(&s, "127.0.0.4", b"http/1.1").await.is_none(),
        "a fifth connection from one address"
    );
    assert_eq!(served(&s, &other, &token).await, 200);
    drop(held);
}
