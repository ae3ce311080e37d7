//! Rotation policies, rotate, and settings over HTTP.
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";

#[tokio::test]
async fn rotation_policy_round_trip_validation_and_rotate() {
    let s = TestServer::builder().start().await.unwrap();
    let (_, v1) = s
        .call(
            Method::POST,
            &format!("/keys/rot/create?{V}"),
            Some(json!({"kty":"RSA","key_size":3072,"key_ops":["sign","verify"],"tags":{"t":"1"}})),
        )
        .await
        .unwrap();
    // No policy yet: an empty one, and rotate is refused.
    let (st, p) = s
        .call(Method::GET, &format!("/keys/rot/rotationpolicy?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(p["lifetimeActions"], json!([]));
    assert_eq!(p["id"], format!("{}/keys/rot/rotationpolicy", s.url()));
    let (st, _) = s
        .call(Method::POST, &format!("/keys/rot/rotate?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 400);
    // Invalid policies change nothing.
    for (body, why) in [
        (
            json!({"lifetimeActions":[{"trigger":{"timeAfterCreate":"P7D"},"action":{"type":"Rotate"}}]}),
            "below 28 days",
        ),
        (
            json!({"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}]}),
            "Notify",
        ),
        (
            json!({"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D","timeBeforeExpiry":"P30D"},"action":{"type":"Rotate"}}]}),
            "two triggers",
        ),
        (
            json!({"lifetimeActions":[],"attributes":{"expiryTime":"P10D"}}),
            "expiry below 28 days",
        ),
        (
            json!({"lifetimeActions":[{"trigger":{"timeBeforeExpiry":"P40D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P56D"}}),
            "before-expiry too long",
        ),
        (
            json!({"lifetimeActions":[{"trigger":{"timeAfterCreate":"90 days"},"action":{"type":"Rotate"}}]}),
            "not ISO-8601",
        ),
    ] {
        let (st, b) = s
            .call(Method::PUT, &format!("/keys/rot/rotationpolicy?{V}"), Some(body))
            .await
            .unwrap();
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (400, Some("BadParameter")),
            "{why}: {b}"
        );
    }
    // Durations come back exactly as sent; created/updated are set.
    let policy = json!({"lifetimeActions":[{"action":{"type":"rotate"},"trigger":{"timeAfterCreate":"P2M","timeBeforeExpiry":null}}],"attributes":{"expiryTime":"P1Y10D"}});
    let (st, p) = s
        .call(Method::PUT, &format!("/keys/rot/rotationpolicy?{V}"), Some(policy))
        .await
        .unwrap();
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["lifetimeActions"][0]["trigger"]["timeAfterCreate"], "P2M");
    assert_eq!(p["lifetimeActions"][0]["action"]["type"], "Rotate");
    assert!(p["lifetimeActions"][0]["trigger"].get("timeBeforeExpiry").is_none());
    assert_eq!(p["attributes"]["expiryTime"], "P1Y10D");
    assert!(p["attributes"]["updated"].as_i64().is_some());
    let (_, again) = s
        .call(Method::GET, &format!("/keys/rot/rotationpolicy?{V}"), None)
        .await
        .unwrap();
    assert_eq!(again["lifetimeActions"], p["lifetimeActions"]);
    // Rotate: a new version with new material of the same kind, ops and tags copied, exp from the policy.
    let (st, v2) = s
        .call(Method::POST, &format!("/keys/rot/rotate?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{v2}");
    assert_ne!(v2["key"]["kid"], v1["key"]["kid"]);
    assert_ne!(v2["key"]["n"], v1["key"]["n"]);
    assert_eq!(
        v2["key"]["n"].as_str().unwrap().len(),
        v1["key"]["n"].as_str().unwrap().len(),
        "same RSA size"
    );
    assert_eq!(v2["key"]["key_ops"], json!(["sign", "verify"]));
    assert_eq!(v2["tags"], json!({"t":"1"}));
    let created = v2["attributes"]["created"].as_i64().unwrap();
    let exp = v2["attributes"]["exp"].as_i64().unwrap();
    let days = (exp - created) / 86_400;
    assert!((375..=376).contains(&days), "P1Y10D is 375 or 376 days, got {days}");
    let (_, latest) = s.call(Method::GET, &format!("/keys/rot/?{V}"), None).await.unwrap();
    assert_eq!(latest["key"]["kid"], v2["key"]["kid"]);
    // Clearing the policy.
    let (st, p) = s
        .call(
            Method::PUT,
            &format!("/keys/rot/rotationpolicy?{V}"),
            Some(json!({"lifetimeActions":[],"attributes":{}})),
        )
        .await
        .unwrap();
    assert_eq!((st, p["lifetimeActions"].clone()), (200, json!([])));
    let (st, _) = s
        .call(Method::GET, &format!("/keys/nokey/rotationpolicy?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 404);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn settings_and_purge_protection_switch() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, list) = s.call(Method::GET, &format!("/settings?{V}"), None).await.unwrap();
    assert_eq!(st, 200);
    let names: Vec<&str> = list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(names.contains(&"AllowKeyManagementOperationsThroughARM") && names.contains(&"PurgeProtection"));
    assert!(
        list["settings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["type"] == "boolean")
    );
    let (st, b) = s
        .call(
            Method::PATCH,
            &format!("/settings/AllowKeyManagementOperationsThroughARM?{V}"),
            Some(json!({"value":"true"})),
        )
        .await
        .unwrap();
    assert_eq!((st, b["value"].as_str()), (200, Some("true")));
    let (_, one) = s
        .call(
            Method::GET,
            &format!("/settings/AllowKeyManagementOperationsThroughARM?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(one["value"], "true");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/settings/AllowKeyManagementOperationsThroughARM?{V}"),
            Some(json!({"value":"maybe"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    let (st, _) = s
        .call(Method::GET, &format!("/settings/NoSuchSetting?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 404);
    // Purge protection: on is allowed later, off never.
    s.call(Method::POST, &format!("/keys/pp/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    s.call(Method::DELETE, &format!("/keys/pp?{V}"), None).await.unwrap();
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/settings/PurgeProtection?{V}"),
            Some(json!({"value":"true"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, _) = s
        .call(Method::DELETE, &format!("/deletedkeys/pp?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 403, "purge refused under purge protection");
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/settings/PurgeProtection?{V}"),
            Some(json!({"value":"false"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    let mut s = s;
    s.restart().await.unwrap();
    let (_, pp) = s
        .call(Method::GET, &format!("/settings/PurgeProtection?{V}"), None)
        .await
        .unwrap();
    assert_eq!(pp["value"], "true", "survives a restart");
    s.stop().await.unwrap();
}
