//! Security domain: activation by download, the lifecycle gate, disaster recovery by upload into a
//! recovery-mode instance, and bad input.
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_crypto::security_domain::{self as sd, RsaCertified};
use coffer_testkit::{CRYPTO_USER, TestServer};
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.5";
const DIGEST: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";

fn jwk(cert_der: &[u8]) -> serde_json::Value {
    json!({"kty": "RSA", "key_ops": ["verify", "encrypt", "wrapKey"], "alg": "RSA-OAEP-256",
           "x5c": [STANDARD.encode(cert_der)], "x5t#S256": sd::x5t_s256(cert_der)})
}

fn officers(n: usize) -> Vec<RsaCertified> {
    (0..n)
        .map(|i| sd::generate_rsa_certified(2048, &format!("officer {i}")).unwrap())
        .collect()
}

/// The exchange certificate (DER) an active instance offers for a quorum proof.
async fn exchange_cert(s: &TestServer) -> Vec<u8> {
    let (st, tk) = s
        .call(Method::GET, &format!("/securitydomain/upload?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{tk}");
    let jwk: serde_json::Value = serde_json::from_str(tk["transfer_key"].as_str().unwrap()).unwrap();
    STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn azure_behaviour_is_a_configuration_choice_that_the_posture_report_flags() {
    let s = TestServer::builder()
        .configure(|c| c.security_domain_redownload_without_quorum = true)
        .start()
        .await
        .unwrap();
    let o = officers(3);
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": o.iter().map(|x| jwk(&x.cert_der)).collect::<Vec<_>>(), "required": 2})),
        )
        .await
        .unwrap();
    assert_eq!(st, 202, "no proof needed when configured: {b}");
    let (st, report) = s
        .call(Method::GET, "/coffer/v1/posture?api-version=7.6", None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{report}");
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "security-domain-custody")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "Fail", "{check}");
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_provisioned_instance_serves_nothing_but_activation_until_downloaded() {
    let s = TestServer::builder().provisioned().start().await.unwrap();
    let (st, b) = s
        .call(Method::POST, &format!("/keys/k/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (409, Some("HsmNotActivated")), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("not activated"));
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/providers/Microsoft.Authorization/roleDefinitions?{V}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "RBAC reads work before activation");
    let (st, _) = s
        .call(Method::GET, &format!("/securitydomain/upload?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 409, "no transfer key outside recovery mode");

    // Bad downloads change nothing.
    let o = officers(4);
    let certs = |n: usize| o.iter().take(n).map(|x| jwk(&x.cert_der)).collect::<Vec<_>>();
    for (body, why) in [
        (json!({"certificates": certs(2), "required": 2}), "two certificates"),
        (json!({"certificates": certs(3), "required": 1}), "quorum 1"),
        (json!({"certificates": certs(3), "required": 4}), "quorum above N"),
        (
            json!({"certificates": [jwk(&o[0].cert_der), jwk(&o[0].cert_der), jwk(&o[1].cert_der)], "required": 2}),
            "duplicate",
        ),
        (
            json!({"certificates": [jwk(b"not a certificate"), jwk(&o[1].cert_der), jwk(&o[2].cert_der)], "required": 2}),
            "malformed",
        ),
        (
            json!({"certificates": [{"kty":"RSA"}, jwk(&o[1].cert_der), jwk(&o[2].cert_der)], "required": 2}),
            "no x5c",
        ),
    ] {
        let (st, b) = s
            .call(Method::POST, &format!("/securitydomain/download?{V}"), Some(body))
            .await
            .unwrap();
        assert_eq!(st, 400, "{why}: {b}");
        assert!(b["error"]["message"].is_string());
    }
    let (st, _) = s
        .call(Method::POST, &format!("/keys/k/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    assert_eq!(st, 409, "still not activated");

    // The real download: 202, the file in the body, the status URL without api-version ending in Success.
    let token = s.token().await.unwrap();
    let resp = s
        .client
        .post(format!("{}/securitydomain/download?{V}", s.url()))
        .bearer_auth(&token)
        .json(&json!({"certificates": certs(3), "required": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let pending = resp.headers()["azure-asyncoperation"].to_str().unwrap().to_string();
    assert_eq!(pending, format!("{}/securitydomain/download/pending", s.url()));
    let body: serde_json::Value = resp.json().await.unwrap();
    let file: serde_json::Value = serde_json::from_str(body["value"].as_str().unwrap()).unwrap();
    assert_eq!(file["version"], 2);
    assert_eq!(file["SharedKeys"]["key_algorithm"], "shamir_share");
    assert_eq!(file["SharedKeys"]["required"], 2);
    assert_eq!(file["SharedKeys"]["enc_shares"].as_array().unwrap().len(), 3);
    let status: serde_json::Value = s
        .client
        .get(&pending)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "Success");
    // Every pair of officers recovers the same item; one officer alone cannot.
    let text = body["value"].as_str().unwrap();
    let mut recovered = Vec::new();
    for pair in [[0, 1], [0, 2], [1, 2]] {
        let ks: Vec<RsaCertified> = pair
            .iter()
            .map(|&i| RsaCertified::from_pem(o[i].key_pem().expose_secret(), &o[i].cert_pem()).unwrap())
            .collect();
        let items = sd::recover_items(text, &ks).unwrap();
        recovered.push(items[0].1.expose_secret().to_vec());
    }
    assert!(recovered.windows(2).all(|w| w[0] == w[1]));
    let one = RsaCertified::from_pem(o[0].key_pem().expose_secret(), &o[0].cert_pem()).unwrap();
    assert!(sd::recover_items(text, &[one]).is_err());

    // Activated: keys work once a crypto role is assigned.
    s.assign(CRYPTO_USER, "/", &s.cred("object_id")).await.unwrap();
    let (st, _) = s
        .call(Method::POST, &format!("/keys/k/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    assert_eq!(st, 200);
    // A second download re-wraps the same domain secret for new officers, but only with a quorum of the current
    // officers' consent: an Administrator alone is refused (it could otherwise take the domain to keys of its own).
    let o2 = officers(3);
    let certs2: Vec<_> = o2.iter().map(|x| jwk(&x.cert_der)).collect();
    let (st, refused) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 3})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("quorum"),
        "the refusal says why: {refused}"
    );
    // The quorum proof: officers 0 and 1 recover the domain offline and wrap it for the instance's exchange key.
    let proof_for = |exchange: &[u8], file: &str, who: &[&RsaCertified]| {
        let ks: Vec<RsaCertified> = who
            .iter()
            .map(|o| RsaCertified::from_pem(o.key_pem().expose_secret(), &o.cert_pem()).unwrap())
            .collect();
        sd::make_restore_blob(&sd::recover_items(file, &ks).unwrap(), exchange).unwrap()
    };
    // The refused request is now the pending proposal; its exchange certificate names the proposal's hash, which
    // the officers compute from the certificates and quorum they agreed to.
    let exchange = exchange_cert(&s).await;
    let ders2: Vec<Vec<u8>> = o2.iter().map(|x| x.cert_der.clone()).collect();
    let hash = coffer_core::ops::sd_custody::proposal_hash(&ders2, 3);
    assert!(
        coffer_crypto::x509::subject(&exchange).unwrap().contains(&hash[..32]),
        "the exchange certificate names the proposal"
    );
    let proof = proof_for(&exchange, text, &[&o[0], &o[1]]);
    // The proof approves these certificates and this quorum only.
    let o3 = officers(3);
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(
                json!({"certificates": o3.iter().map(|x| jwk(&x.cert_der)).collect::<Vec<_>>(), "required": 2,
                        "quorumProof": proof}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a proof for other certificates: {b}");
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 2, "quorumProof": proof})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a proof for another quorum: {b}");
    let (st, again) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 3, "quorumProof": proof})),
        )
        .await
        .unwrap();
    assert_eq!(st, 202, "{again}");
    // The same proof again: its exchange key is spent.
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 3, "quorumProof": proof})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a replayed proof: {b}");
    let (st, _) = s
        .call(Method::GET, &format!("/securitydomain/upload?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 409, "no proposal pending once it is spent");
    // A new proposal gets a new exchange key.
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 3})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403);
    assert_ne!(
        exchange_cert(&s).await,
        exchange,
        "a new exchange key for the new proposal"
    );
    // A proof made from another instance's security domain (here: the dev domain of a stranger) is refused.
    let stranger = TestServer::builder().start().await.unwrap();
    let dir = stranger.data_dir().join("dev-security-domain");
    let sfile = std::fs::read_to_string(dir.join("security-domain.json")).unwrap();
    let officer = |i: u32| {
        RsaCertified::from_pem(
            &std::fs::read(dir.join(format!("officer{i}.pem"))).unwrap(),
            &std::fs::read_to_string(dir.join(format!("officer{i}.cer"))).unwrap(),
        )
        .unwrap()
    };
    let foreign = proof_for(&exchange_cert(&s).await, &sfile, &[&officer(1), &officer(2)]);
    let (st, b) = s
        .call(
            Method::POST,
            &format!("/securitydomain/download?{V}"),
            Some(json!({"certificates": certs2, "required": 3, "quorumProof": foreign})),
        )
        .await
        .unwrap();
    assert_eq!(st, 403, "a proof from another security domain: {b}");
    stranger.stop().await.unwrap();
    let items = sd::recover_items(again["value"].as_str().unwrap(), &o2).unwrap();
    assert_eq!(
        items[0].1.expose_secret(),
        recovered[0].as_slice(),
        "same secret, new protection"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn disaster_recovery_restores_key_backups_of_the_original_instance() {
    // The original instance (dev: activated with a generated security domain and three officer keys).
    let original = TestServer::builder().start().await.unwrap();
    let (_, key) = original
        .call(
            Method::POST,
            &format!("/keys/survivor/create?{V}"),
            Some(json!({"kty":"EC","crv":"P-256"})),
        )
        .await
        .unwrap();
    let (_, backup) = original
        .call(Method::POST, &format!("/keys/survivor/backup?{V}"), None)
        .await
        .unwrap();
    let sd_dir = original.data_dir().join("dev-security-domain");
    let file = std::fs::read_to_string(sd_dir.join("security-domain.json")).unwrap();
    let officer = |i: u32| {
        RsaCertified::from_pem(
            &std::fs::read(sd_dir.join(format!("officer{i}.pem"))).unwrap(),
            &std::fs::read_to_string(sd_dir.join(format!("officer{i}.cer"))).unwrap(),
        )
        .unwrap()
    };

    // A new instance in recovery mode: only the transfer key and the upload work.
    let rec = TestServer::builder().recovery().start().await.unwrap();
    let (st, b) = rec
        .call(Method::POST, &format!("/keys/x/create?{V}"), Some(json!({"kty":"EC"})))
        .await
        .unwrap();
    assert_eq!((st, b["error"]["code"].as_str()), (409, Some("HsmNotActivated")));
    let (st, tk) = rec
        .call(Method::GET, &format!("/securitydomain/upload?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    assert_eq!(tk["key_format"], "jwk");
    let jwk: serde_json::Value =
        serde_json::from_str(tk["transfer_key"].as_str().expect("transfer_key is a JSON string")).unwrap();
    let exchange = STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        jwk["x5t#S256"],
        URL_SAFE_NO_PAD.encode(coffer_crypto::hash::sha256(&exchange))
    );

    // Bad uploads change nothing: the SD file itself, a blob for another exchange key, garbage.
    let items = sd::recover_items(&file, &[officer(3), officer(2)]).unwrap();
    let other = sd::generate_rsa_certified(2048, "someone else").unwrap();
    for (value, why) in [
        (file.clone(), "the security-domain file instead of a blob"),
        (
            sd::make_restore_blob(&items, &other.cert_der).unwrap(),
            "blob for another exchange key",
        ),
        ("{}".to_string(), "empty blob"),
    ] {
        let (st, b) = rec
            .call(
                Method::POST,
                &format!("/securitydomain/upload?{V}"),
                Some(json!({"value": value})),
            )
            .await
            .unwrap();
        assert_eq!(st, 400, "{why}: {b}");
    }
    let (_, pending) = rec
        .call(Method::GET, "/securitydomain/upload/pending", None)
        .await
        .unwrap();
    assert_eq!(pending["status"], "InProgress");

    // The real upload: a quorum of officers (2 and 3) wraps the domain for the exchange key.
    let blob = sd::make_restore_blob(&items, &exchange).unwrap();
    let token = rec.token().await.unwrap();
    let resp = rec
        .client
        .post(format!("{}/securitydomain/upload?{V}", rec.url()))
        .bearer_auth(&token)
        .json(&json!({ "value": blob }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let pending = resp.headers()["azure-asyncoperation"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "InProgress");
    let st: serde_json::Value = rec
        .client
        .get(&pending)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "Success");
    // A second upload to the now activated instance is refused.
    let (st, _) = rec
        .call(
            Method::POST,
            &format!("/securitydomain/upload?{V}"),
            Some(json!({"value": blob})),
        )
        .await
        .unwrap();
    assert_eq!(st, 409);

    // The original instance's key backup restores here and signs; the signature verifies on the original.
    rec.assign(CRYPTO_USER, "/", &rec.cred("object_id")).await.unwrap();
    let (st, restored) = rec
        .call(Method::POST, &format!("/keys/restore?{V}"), Some(backup))
        .await
        .unwrap();
    assert_eq!(st, 200, "{restored}");
    assert_eq!(restored["key"]["x"], key["key"]["x"]);
    let (st, sig) = rec
        .call(
            Method::POST,
            &format!("/keys/survivor//sign?{V}"),
            Some(json!({"alg":"ES256","value":DIGEST})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    let (_, ok) = original
        .call(
            Method::POST,
            &format!("/keys/survivor//verify?{V}"),
            Some(json!({"alg":"ES256","digest":DIGEST,"value":sig["value"]})),
        )
        .await
        .unwrap();
    assert_eq!(ok["value"], true);
    // The recovered instance restarts with the recovered secret.
    let mut rec = rec;
    rec.restart().await.unwrap();
    let (st, _) = rec
        .call(
            Method::POST,
            &format!("/keys/survivor//sign?{V}"),
            Some(json!({"alg":"ES256","value":DIGEST})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);
    rec.stop().await.unwrap();
    original.stop().await.unwrap();
}
