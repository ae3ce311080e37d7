//! Key lifecycle over HTTP: versions, update, soft-delete, recover, purge, backup/restore, and the rules that
//! guard crypto operations (key_ops, enabled, nbf, exp).
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=2025-07-01";
const DIGEST: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"; // SHA-256 of ""

#[tokio::test]
async fn lifecycle_versions_delete_recover_purge() {
    let s = TestServer::builder().retention_days(7).start().await.unwrap();
    let (st, v1) = s
        .call(
            Method::POST,
            &format!("/keys/Life/create?{V}"),
            Some(json!({"kty":"RSA","key_size":2048,"tags":{"a":"1"}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v1}");
    assert_eq!(v1["key"]["kty"], "RSA-HSM");
    assert_eq!(v1["attributes"]["recoverableDays"], 7);
    assert_eq!(v1["attributes"]["recoveryLevel"], "CustomizedRecoverable+Purgeable");
    assert_eq!(v1["tags"]["a"], "1");
    let (_, v2) = s
        .call(
            Method::POST,
            &format!("/keys/life/create?{V}"),
            Some(json!({"kty":"RSA-HSM"})),
        )
        .await
        .unwrap();
    assert_ne!(v1["key"]["kid"], v2["key"]["kid"]);
    // Names are case-insensitive; the latest version is served for the empty version segment.
    let (st, latest) = s.call(Method::GET, &format!("/keys/LIFE/?{V}"), None).await.unwrap();
    assert_eq!(st, 200);
    assert_eq!(latest["key"]["kid"], v2["key"]["kid"]);
    // A version created under another spelling of the name is usable (its sealed material opens).
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/LiFe//sign?{V}"),
            Some(json!({"alg":"RS256","value":DIGEST})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let v1_version = v1["key"]["kid"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (st, got1) = s
        .call(Method::GET, &format!("/keys/life/{v1_version}?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(got1["key"]["n"], v1["key"]["n"]);
    // Versions list, one per page.
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/keys/life/versions?{V}&maxresults=1", s.url()));
    while let Some(link) = next {
        let path = link.strip_prefix(&s.url()).unwrap().to_string();
        let (st, page) = s.call(Method::GET, &path, None).await.unwrap();
        assert_eq!(st, 200);
        for item in page["value"].as_array().unwrap() {
            seen.push(item["kid"].as_str().unwrap().to_string());
        }
        next = page["nextLink"].as_str().map(str::to_string);
    }
    seen.sort();
    let mut want = vec![
        v1["key"]["kid"].as_str().unwrap().to_string(),
        v2["key"]["kid"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(seen, want);
    // Update the old version only.
    let (st, up) = s
        .call(
            Method::PATCH,
            &format!("/keys/life/{v1_version}?{V}"),
            Some(json!({"attributes":{"enabled":false},"tags":{"b":"2"}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(up["attributes"]["enabled"], false);
    assert_eq!(up["tags"], json!({"b":"2"}));
    let (_, latest) = s.call(Method::GET, &format!("/keys/life?{V}"), None).await.unwrap();
    assert_eq!(latest["attributes"]["enabled"], true);
    // Soft delete.
    let (st, del) = s.call(Method::DELETE, &format!("/keys/life?{V}"), None).await.unwrap();
    assert_eq!(st, 200);
    assert_eq!(del["recoveryId"], format!("{}/deletedkeys/Life", s.url()));
    let days = (del["scheduledPurgeDate"].as_i64().unwrap() - del["deletedDate"].as_i64().unwrap()) / 86_400;
    assert_eq!(days, 7);
    let (st, b) = s.call(Method::GET, &format!("/keys/life?{V}"), None).await.unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (404, Some("KeyNotFound")));
    let (st, _) = s
        .call(Method::GET, &format!("/deletedkeys/life?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (_, dl) = s.call(Method::GET, &format!("/deletedkeys?{V}"), None).await.unwrap();
    assert_eq!(dl["value"].as_array().unwrap().len(), 1);
    // The name cannot be reused while deleted.
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/keys/life/create?{V}"),
            Some(json!({"kty":"EC"})),
        )
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (409, Some("Conflict")));
    // Recover brings back both versions.
    let (st, rec) = s
        .call(Method::POST, &format!("/deletedkeys/life/recover?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(rec["key"]["kid"], v2["key"]["kid"]);
    let (st, _) = s
        .call(Method::GET, &format!("/keys/life/{v1_version}?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    // Delete and purge: gone for good, name free again.
    s.call(Method::DELETE, &format!("/keys/life?{V}"), None).await.unwrap();
    let (st, b) = s
        .call(Method::DELETE, &format!("/deletedkeys/life?{V}"), None)
        .await
        .unwrap();
    assert_eq!((st, b), (204, serde_json::Value::Null));
    let (st, _) = s
        .call(Method::GET, &format!("/deletedkeys/life?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/life/create?{V}"),
            Some(json!({"kty":"EC"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn purge_is_refused_under_purge_protection() {
    let s = TestServer::builder().purge_protection().start().await.unwrap();
    s.call(Method::POST, &format!("/keys/pp/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    let (_, del) = s.call(Method::DELETE, &format!("/keys/pp?{V}"), None).await.unwrap();
    assert_eq!(del["attributes"]["recoveryLevel"], "Recoverable");
    let (st, b) = s
        .call(Method::DELETE, &format!("/deletedkeys/pp?{V}"), None)
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (403, Some("Forbidden")));
    let (st, _) = s
        .call(Method::GET, &format!("/deletedkeys/pp?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "the key must still be there");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn backup_restore_and_foreign_or_tampered_blobs() {
    let s = TestServer::builder().start().await.unwrap();
    s.call(
        Method::POST,
        &format!("/keys/bk/create?{V}"),
        Some(json!({"kty":"EC","crv":"P-384"})),
    )
    .await
    .unwrap();
    let (_, v2) = s
        .call(
            Method::POST,
            &format!("/keys/bk/create?{V}"),
            Some(json!({"kty":"EC","crv":"P-256K"})),
        )
        .await
        .unwrap();
    let (st, sig) = s
        .call(
            Method::POST,
            &format!("/keys/bk//sign?{V}"),
            Some(json!({"alg":"ES256K","value":DIGEST})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (st, blob) = s
        .call(Method::POST, &format!("/keys/bk/backup?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    // Restore onto an existing name is a conflict.
    let (st, _) = s
        .call(Method::POST, &format!("/keys/restore?{V}"), Some(blob.clone()))
        .await
        .unwrap();
    assert_eq!(st, 409);
    s.call(Method::DELETE, &format!("/keys/bk?{V}"), None).await.unwrap();
    let (st, _) = s
        .call(Method::POST, &format!("/keys/restore?{V}"), Some(blob.clone()))
        .await
        .unwrap();
    assert_eq!(st, 409, "a soft-deleted name is also a conflict");
    s.call(Method::DELETE, &format!("/deletedkeys/bk?{V}"), None)
        .await
        .unwrap();
    // A tampered blob is refused and nothing appears.
    let mut chars: Vec<char> = blob["value"].as_str().unwrap().chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/keys/restore?{V}"),
            Some(json!({"value": tampered})),
        )
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (400, Some("BadParameter")));
    let (st, _) = s.call(Method::GET, &format!("/keys/bk?{V}"), None).await.unwrap();
    assert_eq!(st, 404);
    // Another instance (another domain secret) cannot open the blob.
    let other = TestServer::builder().start().await.unwrap();
    let (st, _) = other
        .call(Method::POST, &format!("/keys/restore?{V}"), Some(blob.clone()))
        .await
        .unwrap();
    assert_eq!(st, 400);
    other.stop().await.unwrap();
    // The real restore brings back every version, and the old signature still verifies.
    let (st, restored) = s
        .call(Method::POST, &format!("/keys/restore?{V}"), Some(blob))
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(restored["key"]["kid"], v2["key"]["kid"]);
    let (_, versions) = s
        .call(Method::GET, &format!("/keys/bk/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 2);
    let (st, ok) = s
        .call(
            Method::POST,
            &format!("/keys/bk//verify?{V}"),
            Some(json!({"alg":"ES256K","digest":DIGEST,"value":sig["value"]})),
        )
        .await
        .unwrap();
    assert_eq!((st, ok["value"].as_bool()), (200, Some(true)));
    s.stop().await.unwrap();
}

#[tokio::test]
async fn key_ops_enabled_nbf_and_exp_are_enforced() {
    let s = TestServer::builder().start().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sign = |name: &'static str| {
        let path = format!("/keys/{name}//sign?{V}");
        let s = &s;
        async move {
            s.call(Method::POST, &path, Some(json!({"alg":"ES256","value":DIGEST})))
                .await
                .unwrap()
        }
    };
    s.call(
        Method::POST,
        &format!("/keys/verifyonly/create?{V}"),
        Some(json!({"kty":"EC","key_ops":["verify"]})),
    )
    .await
    .unwrap();
    let (st, b) = sign("verifyonly").await;
    assert_eq!((st, b["error"]["code"].as_str()), (403, Some("Forbidden")));
    s.call(
        Method::POST,
        &format!("/keys/off/create?{V}"),
        Some(json!({"kty":"EC","attributes":{"enabled":false}})),
    )
    .await
    .unwrap();
    assert_eq!(sign("off").await.0, 403);
    s.call(
        Method::POST,
        &format!("/keys/future/create?{V}"),
        Some(json!({"kty":"EC","attributes":{"nbf": now + 3600}})),
    )
    .await
    .unwrap();
    assert_eq!(sign("future").await.0, 403);
    s.call(
        Method::POST,
        &format!("/keys/expired/create?{V}"),
        Some(json!({"kty":"EC","attributes":{"exp": now - 60}})),
    )
    .await
    .unwrap();
    assert_eq!(sign("expired").await.0, 403);
    // Verify stays possible after expiry (data signed earlier can still be checked).
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/keys/expired//verify?{V}"),
            Some(json!({"alg":"ES256","digest":DIGEST,"value":"AAAA"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    // Re-enabling a key through update makes it usable again.
    s.call(
        Method::PATCH,
        &format!("/keys/off/?{V}"),
        Some(json!({"attributes":{"enabled":true}})),
    )
    .await
    .unwrap();
    assert_eq!(sign("off").await.0, 200);
    s.stop().await.unwrap();
}

/// `POST /keys/{name}/{op}` (no version segment, any letter case) is the latest version, as the service serves it:
/// Vault's and OpenBao's `azurekeyvault` seal calls `POST /keys/{name}/wrapkey?api-version=7.4`.
#[tokio::test]
async fn versionless_key_operations_use_the_latest_version() {
    let s = TestServer::builder().start().await.unwrap();
    let create = || {
        s.call(
            Method::POST,
            "/keys/seal/create?api-version=7.6",
            Some(json!({"kty":"RSA"})),
        )
    };
    let (_, first) = create().await.unwrap();
    let (_, second) = create().await.unwrap();
    assert_ne!(first["key"]["kid"], second["key"]["kid"]);
    let (st, wrapped) = s
        .call(
            Method::POST,
            "/keys/seal/wrapkey?api-version=7.4",
            Some(json!({"alg":"RSA-OAEP-256","value":"AAECAwQFBgcICQoLDA0ODw"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{wrapped}");
    assert_eq!(wrapped["kid"], second["key"]["kid"], "the latest version wrapped");
    let (st, unwrapped) = s
        .call(
            Method::POST,
            "/keys/seal/UnwrapKey?api-version=7.4",
            Some(json!({"alg":"RSA-OAEP-256","value": wrapped["value"]})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{unwrapped}");
    assert_eq!(unwrapped["value"], "AAECAwQFBgcICQoLDA0ODw");
    let (st, _) = s
        .call(Method::GET, "/keys/seal/wrapkey?api-version=7.4", None)
        .await
        .unwrap();
    assert_eq!(st, 404, "GET of a verb is a version lookup, which does not exist");
    s.stop().await.unwrap();
}

/// CBC ignores `aad`, as the service does.
#[tokio::test]
async fn cbc_encryption_ignores_aad() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, _) = s
        .call(
            Method::POST,
            "/keys/aes/create?api-version=7.6",
            Some(json!({"kty":"oct-HSM","key_size":256})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let iv = "AAECAwQFBgcICQoLDA0ODw";
    let mut out = Vec::new();
    for aad in [None, Some("aGVhZGVy")] {
        let mut body = json!({"alg":"A256CBCPAD","value":"c2VjcmV0","iv": iv});
        if let Some(a) = aad {
            body["aad"] = json!(a);
        }
        let (st, r) = s
            .call(Method::POST, "/keys/aes//encrypt?api-version=7.6", Some(body))
            .await
            .unwrap();
        assert_eq!(st, 200, "{r}");
        out.push(r["value"].clone());
    }
    assert_eq!(out[0], out[1]);
    let (st, r) = s
        .call(
            Method::POST,
            "/keys/aes//decrypt?api-version=7.6",
            Some(json!({"alg":"A256CBCPAD","value": out[0],"iv": iv,"aad":"aGVhZGVy"})),
        )
        .await
        .unwrap();
    assert_eq!((st, r["value"].as_str()), (200, Some("c2VjcmV0")), "{r}");
    s.stop().await.unwrap();
}

/// GetKeyAttestation at `/keys/{name}/attestation` and `/keys/{name}/{version}/attestation`: the key bundle with
/// `attributes.attestation`, signed by the instance's attestation key (the same certificate across requests and
/// restarts, not the token or TLS key); it needs keys/read like GetKey.
#[tokio::test]
async fn key_attestation_of_latest_and_older_versions_under_one_certificate() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let mut s = TestServer::builder().start().await.unwrap();
    let (_, v1) = s
        .call(
            Method::POST,
            "/keys/a/create?api-version=7.6",
            Some(json!({"kty":"RSA"})),
        )
        .await
        .unwrap();
    let (_, v2) = s
        .call(
            Method::POST,
            "/keys/a/create?api-version=7.6",
            Some(json!({"kty":"RSA"})),
        )
        .await
        .unwrap();
    let text = |v: &serde_json::Value| String::from_utf8(B64.decode(v.as_str().unwrap()).unwrap()).unwrap();
    let claims = |bundle: &serde_json::Value| {
        let att = &bundle["attributes"]["attestation"];
        let cert = coffer_crypto::x509::certificates_from_pem(&text(&att["certificatePemFile"]))
            .unwrap()
            .remove(0);
        (
            coffer_crypto::attestation::verify_statement(&text(&att["privateKeyAttestation"]), &cert).unwrap(),
            cert,
        )
    };
    let (st, latest) = s
        .call(Method::GET, "/keys/a/attestation?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{latest}");
    assert_eq!(latest["key"]["kid"], v2["key"]["kid"]);
    assert_eq!(
        latest["attributes"]["attestation"]["version"],
        "coffer-key-attestation/1"
    );
    assert!(latest["attributes"]["attestation"]["publicKeyAttestation"].is_string());
    let (c2, cert) = claims(&latest);
    assert_eq!(c2["kid"], v2["key"]["kid"]);
    assert_eq!(c2["publicKey"]["n"], v2["key"]["n"]);
    let version1 = v1["key"]["kid"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (st, older) = s
        .call(
            Method::GET,
            &format!("/keys/a/{version1}/attestation?api-version=7.6"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{older}");
    let (c1, cert1) = claims(&older);
    assert_eq!(c1["kid"], v1["key"]["kid"]);
    assert_eq!(cert1, cert, "one attestation certificate");
    // Not the TLS certificate.
    let tls = coffer_crypto::x509::certificates_from_pem(&std::fs::read_to_string(s.ca_path()).unwrap()).unwrap();
    assert!(!tls.contains(&cert));
    let (st, _) = s
        .call(Method::POST, "/keys/a/attestation?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(st, 405);
    // keys/read is needed.
    let nobody = s.new_principal("nobody").await.unwrap();
    let (st, _) = s
        .call_as(&nobody.token, Method::GET, "/keys/a/attestation?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(st, 403);
    s.restart().await.unwrap();
    let (_, again) = s
        .call(Method::GET, "/keys/a/attestation?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(claims(&again).1, cert, "the same certificate after a restart");
    s.stop().await.unwrap();
}

/// `public_exponent` (a Managed HSM feature): 65537 is accepted (and is what the key has); anything else is
/// refused with a message naming the reason, since aws-lc-rs generates RSA keys with e = 65537 only.
#[tokio::test]
async fn rsa_public_exponent_65537_is_accepted_and_others_explained() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, b) = s
        .call(
            Method::POST,
            "/keys/e/create?api-version=7.6",
            Some(json!({"kty":"RSA-HSM","key_size":2048,"public_exponent":65537})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["key"]["e"], "AQAB");
    for e in [3, 17] {
        let (st, b) = s
            .call(
                Method::POST,
                "/keys/e3/create?api-version=7.6",
                Some(json!({"kty":"RSA-HSM","key_size":2048,"public_exponent":e})),
            )
            .await
            .unwrap();
        assert_eq!(st, 400, "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains("65537"), "{b}");
    }
    s.stop().await.unwrap();
}
