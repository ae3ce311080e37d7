//! `X-Forwarded-For` over several header lines (issue 12, item 2): a proxy that appends a line of its own instead
//! of extending the client's line must not let the client choose its apparent address. Every line counts, in order,
//! and the right-most hop that is not a trusted proxy is the client.
use coffer_testkit::TestServer;
use serde_json::Value;

const V: &str = "api-version=7.6";

/// A client trusting the server's CA whose connections come from `from`.
fn client_from(s: &TestServer, from: &str) -> reqwest::Client {
    let ca = std::fs::read(s.ca_path()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// GET /keys through the "proxy" client with one `X-Forwarded-For` header line per entry of `lines`.
async fn get_with_lines(c: &reqwest::Client, s: &TestServer, token: &str, lines: &[&str]) -> u16 {
    let mut req = c.get(format!("{}/keys?{V}", s.url())).bearer_auth(token);
    for l in lines {
        // (RequestBuilder::header appends: each call is a header line of its own)
        req = req.header("x-forwarded-for", *l);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_forwarded_for_line_counts_and_the_right_most_untrusted_hop_is_the_client() {
    let s = TestServer::builder()
        .configure(|c| {
            c.network.trusted_proxies = vec!["127.0.0.4".into(), "10.0.0.0/8".into()];
            c.network.default_action = "Deny".into();
            // the test's own admin client (127.0.0.1) and the private client 192.168.7.7 are admitted
            c.network.ip_rules = vec!["127.0.0.1".into(), "192.168.7.7".into()];
        })
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let proxy = client_from(&s, "127.0.0.4");

    // The attack: the client sends `X-Forwarded-For: 192.168.7.7` (an admitted address); the trusted proxy adds a
    // line of its own with the address it saw (203.0.113.7, refused by the firewall).
    let st = get_with_lines(&proxy, &s, &token, &["192.168.7.7", "203.0.113.7"]).await;
    assert_eq!(
        st, 403,
        "the client chose its apparent address through its own header line"
    );
    // The same in one line is refused as well.
    assert_eq!(
        get_with_lines(&proxy, &s, &token, &["192.168.7.7, 203.0.113.7"]).await,
        403
    );
    // Trusted hops on the right are skipped, across lines: the real client is admitted.
    assert_eq!(
        get_with_lines(&proxy, &s, &token, &["192.168.7.7", "10.1.1.1"]).await,
        200
    );
    assert_eq!(
        get_with_lines(
            &proxy,
            &s,
            &token,
            &["203.0.113.9", "192.168.7.7, 10.1.1.1", "10.2.2.2"]
        )
        .await,
        200
    );
    // Garbage in the right-most line: the client is unknown (0.0.0.0), not admitted.
    assert_eq!(
        get_with_lines(&proxy, &s, &token, &["192.168.7.7", "not-an-ip"]).await,
        403
    );

    // The audit record names the address taken from the proxy's own line.
    let recs: Vec<Value> = s.audit_records().unwrap();
    assert!(
        recs.iter()
            .any(|r| r["callerIpAddress"] == "203.0.113.7" && r["properties"]["httpStatusCode"] == 403),
        "no refusal recorded for 203.0.113.7"
    );
}

/// A client that sends bytes that are not text (or any garbage) in `X-Forwarded-For` must not be judged as the
/// trusted proxy itself, whose address the rules may admit: it is unknown (0.0.0.0) and refused. A hop the proxy
/// appended after the garbage is still the client.
#[tokio::test]
async fn garbage_in_forwarded_for_never_passes_as_the_proxy() {
    let s = TestServer::builder()
        .configure(|c| {
            c.network.trusted_proxies = vec!["127.0.0.4".into()];
            c.network.default_action = "Deny".into();
            // the admin client and the proxy's own address are admitted; 203.0.113.7 is not
            c.network.ip_rules = vec!["127.0.0.1".into(), "127.0.0.4".into()];
        })
        .start()
        .await
        .unwrap();
    let token = s.token().await.unwrap();
    let proxy = client_from(&s, "127.0.0.4");
    let send = |value: &'static [u8]| {
        let req = proxy.get(format!("{}/keys?{V}", s.url())).bearer_auth(&token).header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(b"\xff").await, 403, "a non-text line is not the proxy's address");
    assert_eq!(send(b"not-an-ip").await, 403);
    assert_eq!(
        send(b"\xff, 203.0.113.7").await,
        403,
        "the appended hop is the client (refused)"
    );
    assert_eq!(
        send(b"\xff, 127.0.0.1").await,
        200,
        "the appended hop is the client (admitted)"
    );
    let recs: Vec<Value> = s.audit_records().unwrap();
    assert!(
        recs.iter().any(|r| r["callerIpAddress"] == "0.0.0.0"),
        "the audit record shows the unknown client"
    );
    s.stop().await.unwrap();
}
