//! `coffer_store_queries_total{method}` on the metrics listener: a series for every store method from the start,
//! and a call moves its own series only.
use coffer_core::store_metrics::StoreCounters;
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=2025-07-01";

fn series(method: &str) -> String {
    format!("coffer_store_queries_total{{method=\"{method}\"}}")
}

#[tokio::test]
async fn store_queries_are_counted_per_method() {
    let s = TestServer::builder()
        .metrics("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    // One counter family, with every method of the port present (most still at 0).
    let text = s
        .client
        .get(s.metrics_url().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("# TYPE coffer_store_queries counter"), "{text}");
    for (method, _) in StoreCounters::default().snapshot() {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{} ", series(method)))),
            "no series for {method}"
        );
    }

    let created = s.metric(&series("insert_versions")).await.unwrap();
    let deleted = s.metric(&series("soft_delete")).await.unwrap();
    for i in 0..3 {
        let (st, b) = s
            .call(
                Method::POST,
                &format!("/keys/sq{i}/create?{V}"),
                Some(json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200, "{b}");
    }
    let (st, b) = s.call(Method::DELETE, &format!("/keys/sq0?{V}"), None).await.unwrap();
    assert_eq!(st, 200, "{b}");
    // One write per create and one per delete, nothing else.
    assert_eq!(s.metric(&series("insert_versions")).await.unwrap(), created + 3.0);
    assert_eq!(s.metric(&series("soft_delete")).await.unwrap(), deleted + 1.0);
    // Methods nothing here calls stay at 0.
    for method in [
        "restore_full",
        "purge",
        "delete_policy_assignment",
        "reseal_domain_secret",
    ] {
        assert_eq!(s.metric(&series(method)).await.unwrap(), 0.0, "{method}");
    }
}
