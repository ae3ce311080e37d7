//! A restart unseals the same domain secret and serves the same keys.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";

#[tokio::test]
async fn keys_created_before_a_restart_work_after_it() {
    let mut s = TestServer::builder().start().await.unwrap();
    s.call(
        Method::POST,
        &format!("/keys/rsa/create?{V}"),
        Some(json!({"kty":"RSA","key_size":2048})),
    )
    .await
    .unwrap();
    s.call(
        Method::POST,
        &format!("/keys/aes/create?{V}"),
        Some(json!({"kty":"oct-HSM","key_size":256})),
    )
    .await
    .unwrap();
    let digest = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
    let (st, sig) = s
        .call(
            Method::POST,
            &format!("/keys/rsa//sign?{V}"),
            Some(json!({"alg":"PS256","value":digest})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, ct) = s
        .call(
            Method::POST,
            &format!("/keys/rsa//encrypt?{V}"),
            Some(json!({"alg":"RSA-OAEP-256","value":"aGVsbG8"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, gcm) = s
        .call(
            Method::POST,
            &format!("/keys/aes//encrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":"aGVsbG8","aad":"YWFk"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let secret_before = s.cred("client_secret");

    s.restart().await.unwrap();

    assert_eq!(s.cred("client_secret"), secret_before);
    let (st, ok) = s
        .call(
            Method::POST,
            &format!("/keys/rsa//verify?{V}"),
            Some(json!({"alg":"PS256","digest":digest,"value":sig["value"]})),
        )
        .await
        .unwrap();
    assert_eq!((st, ok["value"].as_bool()), (200, Some(true)));
    let (st, pt) = s
        .call(
            Method::POST,
            &format!("/keys/rsa//decrypt?{V}"),
            Some(json!({"alg":"RSA-OAEP-256","value":ct["value"]})),
        )
        .await
        .unwrap();
    assert_eq!((st, pt["value"].as_str()), (200, Some("aGVsbG8")));
    let (st, pt) = s
        .call(
            Method::POST,
            &format!("/keys/aes//decrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":gcm["value"],"iv":gcm["iv"],"tag":gcm["tag"],"aad":"YWFk"})),
        )
        .await
        .unwrap();
    assert_eq!((st, pt["value"].as_str()), (200, Some("aGVsbG8")));
    // The wrong AAD fails authentication.
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/aes//decrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":gcm["value"],"iv":gcm["iv"],"tag":gcm["tag"],"aad":"eHh4"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    s.stop().await.unwrap();
}
