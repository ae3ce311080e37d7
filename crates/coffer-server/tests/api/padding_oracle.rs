//! RSA1_5 decryption is no padding oracle (issue 12, item 4): a ciphertext whose padding is wrong is answered
//! like any other, with a message derived from the key and the ciphertext (implicit rejection), never with an
//! error that tells it apart from a well-formed one.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";

#[tokio::test]
async fn rsa1_5_decrypt_and_unwrap_of_garbage_answer_like_success() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/oracle/create?{V}"),
            Some(json!({"kty":"RSA-HSM","key_size":2048})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);

    // A well-formed ciphertext still decrypts to its plaintext.
    let (st, ct) = s
        .call(
            Method::POST,
            &format!("/keys/oracle//encrypt?{V}"),
            Some(json!({"alg":"RSA1_5","value":"aGVsbG8"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{ct}");
    let (st, pt) = s
        .call(
            Method::POST,
            &format!("/keys/oracle//decrypt?{V}"),
            Some(json!({"alg":"RSA1_5","value":ct["value"]})),
        )
        .await
        .unwrap();
    assert_eq!((st, pt["value"].as_str()), (200, Some("aGVsbG8")), "{pt}");

    // 256 bytes that are (with overwhelming probability) not PKCS#1 v1.5 type 2: decrypt and unwrap both answer
    // 200 with a value, and the same value each time (deterministic), like a real plaintext.
    let garbage = B64.encode(
        (0u8..=255)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect::<Vec<u8>>(),
    );
    for op in ["decrypt", "unwrapkey"] {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (st, body) = s
                .call(
                    Method::POST,
                    &format!("/keys/oracle//{op}?{V}"),
                    Some(json!({"alg":"RSA1_5","value":garbage})),
                )
                .await
                .unwrap();
            assert_eq!(st, 200, "{op} of a badly padded ciphertext must not fail: {body}");
            assert!(body.get("error").is_none(), "{body}");
            assert!(body["value"].is_string(), "{body}");
            assert_eq!(body["kid"], pt["kid"], "{body}");
            seen.push(body["value"].clone());
        }
        assert_eq!(
            seen[0], seen[1],
            "{op}: the answer is a function of the key and the ciphertext"
        );
    }
}
