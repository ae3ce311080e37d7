//! BYOK import over HTTP (docs/BYOK.md): key exchange keys, `.byok` blobs built here the way a vendor tool builds
//! them (from the KEK's public key as GET returns it), imports of every key type, use of the imported keys checked
//! against the local private key, and every refusal.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_crypto::SecretBytes;
use coffer_crypto::byok::byok_wrap;
use coffer_crypto::keys::{CipherParams, Curve, EncryptionAlgorithm, PrivateKey, PublicKey, SignatureAlgorithm};
use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const UNWRAP_FAILED: &str = "The key could not be unwrapped with the key exchange key.";

fn b64d(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

/// A KEK created through the API: its versioned kid and its public key from GET (as `az keyvault key download`).
struct Kek {
    kid: String,
    public: PublicKey,
}

async fn create_kek(s: &TestServer, name: &str, bits: u32) -> Kek {
    let (st, created) = s
        .call(
            Method::POST,
            &format!("/keys/{name}/create?{V}"),
            Some(json!({"kty":"RSA-HSM","key_size":bits,"key_ops":["import"],"attributes":{"enabled":true}})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{created}");
    assert_eq!(created["key"]["key_ops"], json!(["import"]));
    let (st, got) = s.call(Method::GET, &format!("/keys/{name}?{V}"), None).await.unwrap();
    assert_eq!(st, 200);
    let public = PublicKey::Rsa {
        n: b64d(&got["key"]["n"]),
        e: b64d(&got["key"]["e"]),
    };
    let PublicKey::Rsa { n, .. } = &public else {
        unreachable!()
    };
    assert_eq!(n.len() * 8, bits as usize);
    Kek {
        kid: got["key"]["kid"].as_str().unwrap().to_string(),
        public,
    }
}

/// The `.byok` file (JSON text) for `ciphertext` under `kid`.
fn byok_file(kid: &str, alg: &str, enc: &str, ciphertext: &[u8]) -> String {
    json!({
        "schema_version": "1.0.0",
        "header": {"kid": kid, "alg": alg, "enc": enc},
        "ciphertext": B64.encode(ciphertext),
        "generator": "coffer api test; tool side = coffer_crypto::byok::byok_wrap",
    })
    .to_string()
}

/// `key.key_hsm` for `plaintext` wrapped for `kek`: base64url of the whole `.byok` file.
fn key_hsm(kek: &Kek, plaintext: &[u8]) -> String {
    let ct = byok_wrap(&kek.public, 32, plaintext).unwrap();
    B64.encode(byok_file(&kek.kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))
}

async fn import(s: &TestServer, name: &str, key: Value) -> (u16, Value) {
    s.call(
        Method::PUT,
        &format!("/keys/{name}?{V}"),
        Some(json!({"key": key, "attributes": {"enabled": true}, "Hsm": false})),
    )
    .await
    .unwrap()
}

/// Asserts a 400 BadParameter whose message contains `want`.
fn assert_bad(result: &(u16, Value), want: &str) {
    let (st, body) = result;
    assert_eq!(*st, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadParameter", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(want), "message {msg:?} does not contain {want:?}");
}

async fn op(s: &TestServer, kid: &str, op: &str, body: Value) -> (u16, Value) {
    let path = kid.strip_prefix(&s.url()).unwrap();
    s.call(Method::POST, &format!("{path}/{op}?{V}"), Some(body))
        .await
        .unwrap()
}

fn assert_no_private_members(bundle: &Value) {
    for member in ["key_hsm", "d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(bundle["key"].get(member).is_none(), "{member} echoed: {bundle}");
    }
}

fn digest(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i).unwrap()).collect()
}

#[tokio::test]
async fn imports_rsa_ec_and_oct_keys_and_uses_them() {
    let s = TestServer::builder().start().await.unwrap();
    let kek4096 = create_kek(&s, "kek4096", 4096).await;
    let kek2048 = create_kek(&s, "kek2048", 2048).await;

    // RSA 2048 and 3072: the response's n/e are the local key's; signatures verify locally, local encryption opens
    // on the server, the server's wrapKey opens locally.
    for (bits, kek) in [(2048, &kek4096), (3072, &kek2048)] {
        let local = PrivateKey::generate_rsa(bits).unwrap();
        let pkcs8 = local.to_storage_bytes().unwrap();
        let name = format!("byok-rsa-{bits}");
        // PowerShell may send unrelated n/e: they are ignored, the key comes from the blob.
        let (st, bundle) = import(
            &s,
            &name,
            json!({"kty":"RSA-HSM","key_hsm":key_hsm(kek, pkcs8.expose_secret()),"n":"AQAB","e":"AQAB"}),
        )
        .await;
        assert_eq!(st, 200, "{bundle}");
        assert_no_private_members(&bundle);
        assert_eq!(bundle["key"]["kty"], "RSA-HSM");
        let PublicKey::Rsa { n, e } = local.public_key() else {
            unreachable!()
        };
        assert_eq!((b64d(&bundle["key"]["n"]), b64d(&bundle["key"]["e"])), (n, e));
        let kid = bundle["key"]["kid"].as_str().unwrap().to_string();
        // Key attestation says how the key came to be: from a .byok blob, not generated here.
        let (st, att) = s
            .call(Method::GET, &format!("/keys/{name}/attestation?api-version=7.6"), None)
            .await
            .unwrap();
        assert_eq!(st, 200, "{att}");
        let statement = String::from_utf8(b64d(&att["attributes"]["attestation"]["privateKeyAttestation"])).unwrap();
        let pem = String::from_utf8(b64d(&att["attributes"]["attestation"]["certificatePemFile"])).unwrap();
        let cert = coffer_crypto::x509::certificates_from_pem(&pem).unwrap().remove(0);
        let claims = coffer_crypto::attestation::verify_statement(&statement, &cert).unwrap();
        assert_eq!(
            (claims["origin"].as_str(), claims["generatedInHsm"].as_bool()),
            (Some("byok"), Some(false))
        );

        let dg = digest(32);
        let (st, sig) = op(&s, &kid, "sign", json!({"alg":"PS256","value":B64.encode(&dg)})).await;
        assert_eq!(st, 200, "{sig}");
        assert!(
            local
                .public_key()
                .verify(SignatureAlgorithm::Ps256, &dg, &b64d(&sig["value"]))
                .unwrap()
        );

        let ct = local
            .encrypt(
                EncryptionAlgorithm::RsaOaep256,
                b"for the imported key",
                &CipherParams::default(),
            )
            .unwrap()
            .value;
        let (st, pt) = op(
            &s,
            &kid,
            "decrypt",
            json!({"alg":"RSA-OAEP-256","value":B64.encode(&ct)}),
        )
        .await;
        assert_eq!(st, 200, "{pt}");
        assert_eq!(b64d(&pt["value"]), b"for the imported key");

        let (st, wrapped) = op(
            &s,
            &kid,
            "wrapkey",
            json!({"alg":"RSA-OAEP","value":B64.encode([9u8; 32])}),
        )
        .await;
        assert_eq!(st, 200, "{wrapped}");
        let unwrapped = local
            .decrypt(
                EncryptionAlgorithm::RsaOaep,
                &b64d(&wrapped["value"]),
                &CipherParams::default(),
            )
            .unwrap();
        assert_eq!(unwrapped.expose_secret(), [9u8; 32]);
    }

    // EC on every curve, with and without crv; kty without -HSM; explicit key_ops.
    for (curve, alg, crv_sent) in [
        (Curve::P256, SignatureAlgorithm::Es256, Some("P-256")),
        (Curve::P384, SignatureAlgorithm::Es384, Some("P-384")),
        (Curve::P521, SignatureAlgorithm::Es512, None),
        (Curve::P256K, SignatureAlgorithm::Es256K, Some("P-256K")),
    ] {
        let local = PrivateKey::generate_ec(curve).unwrap();
        let pkcs8 = local.to_storage_bytes().unwrap();
        let name = format!("byok-ec-{}", curve.name().to_ascii_lowercase());
        let mut key =
            json!({"kty":"EC","key_hsm":key_hsm(&kek4096, pkcs8.expose_secret()),"key_ops":["sign","verify"]});
        if let Some(crv) = crv_sent {
            key["crv"] = json!(crv);
        }
        let (st, bundle) = import(&s, &name, key).await;
        assert_eq!(st, 200, "{bundle}");
        assert_no_private_members(&bundle);
        assert_eq!(bundle["key"]["kty"], "EC-HSM");
        assert_eq!(bundle["key"]["crv"], curve.name());
        assert_eq!(bundle["key"]["key_ops"], json!(["sign", "verify"]));
        let PublicKey::Ec { x, y, .. } = local.public_key() else {
            unreachable!()
        };
        assert_eq!((b64d(&bundle["key"]["x"]), b64d(&bundle["key"]["y"])), (x, y));
        let kid = bundle["key"]["kid"].as_str().unwrap().to_string();
        let dg = digest(alg.digest_len());
        let (st, sig) = op(&s, &kid, "sign", json!({"alg":alg.name(),"value":B64.encode(&dg)})).await;
        assert_eq!(st, 200, "{sig}");
        assert!(
            local.public_key().verify(alg, &dg, &b64d(&sig["value"])).unwrap(),
            "{}",
            curve.name()
        );
    }

    // AES 128/192/256 (raw bytes), through a KEK kid without version and with the host in upper case.
    let versionless = kek2048.kid.rsplit_once('/').unwrap().0.to_string();
    let (origin, _) = versionless.split_once("/keys/").unwrap();
    let shouting = format!("{}/keys/KEK2048", origin.to_ascii_uppercase());
    for (len, kid) in [(16, &kek2048.kid), (24, &versionless), (32, &shouting)] {
        let raw = coffer_crypto::random::bytes(len).unwrap();
        let ct = byok_wrap(&kek2048.public, 16, &raw).unwrap();
        let file = byok_file(kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct);
        // Standard base64 with padding is accepted too.
        let key_hsm = base64::engine::general_purpose::STANDARD.encode(file);
        let name = format!("byok-oct-{len}");
        let (st, bundle) = import(&s, &name, json!({"kty":"oct-HSM","key_hsm":key_hsm})).await;
        assert_eq!(st, 200, "{kid}: {bundle}");
        assert_no_private_members(&bundle);
        assert_eq!(bundle["key"]["kty"], "oct-HSM");
        let local = PrivateKey::import_oct(SecretBytes::new(raw)).unwrap();
        let kw = format!("A{}KW", len * 8);
        let kid = bundle["key"]["kid"].as_str().unwrap().to_string();
        let (st, wrapped) = op(&s, &kid, "wrapkey", json!({"alg":kw,"value":B64.encode([5u8; 24])})).await;
        assert_eq!(st, 200, "{wrapped}");
        let alg = EncryptionAlgorithm::parse(&kw).unwrap();
        let opened = local
            .decrypt(alg, &b64d(&wrapped["value"]), &CipherParams::default())
            .unwrap();
        assert_eq!(opened.expose_secret(), [5u8; 24]);
        let gcm = format!("A{}GCM", len * 8);
        let sealed = local
            .encrypt(
                EncryptionAlgorithm::parse(&gcm).unwrap(),
                b"aes secret",
                &CipherParams::default(),
            )
            .unwrap();
        let (st, pt) = op(
            &s,
            &kid,
            "decrypt",
            json!({"alg":gcm,"value":B64.encode(&sealed.value),"iv":B64.encode(sealed.iv.unwrap()),"tag":B64.encode(sealed.tag.unwrap())}),
        )
        .await;
        assert_eq!(st, 200, "{pt}");
        assert_eq!(b64d(&pt["value"]), b"aes secret");
    }

    // A second import under the same name is a new version, read back without key_hsm.
    let local = PrivateKey::generate_ec(Curve::P256).unwrap();
    let (st, v2) = import(
        &s,
        "byok-ec-p-256",
        json!({"kty":"EC-HSM","crv":"P-256","key_hsm":key_hsm(&kek2048, local.to_storage_bytes().unwrap().expose_secret())}),
    )
    .await;
    assert_eq!(st, 200, "{v2}");
    let (_, versions) = s
        .call(Method::GET, &format!("/keys/byok-ec-p-256/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 2);
    let (_, got) = s
        .call(Method::GET, &format!("/keys/byok-ec-p-256?{V}"), None)
        .await
        .unwrap();
    assert_eq!(got["key"]["kid"], v2["key"]["kid"]);
    assert_no_private_members(&got);
}

#[tokio::test]
async fn key_exchange_keys_are_import_only() {
    let s = TestServer::builder().start().await.unwrap();
    for ops in [
        json!(["import", "decrypt"]),
        json!(["unwrapKey", "import"]),
        json!(["import", "export"]),
    ] {
        let r = s
            .call(
                Method::POST,
                &format!("/keys/mixed/create?{V}"),
                Some(json!({"kty":"RSA-HSM","key_size":2048,"key_ops":ops})),
            )
            .await
            .unwrap();
        assert_bad(&r, "mutually exclusive");
    }
    let r = s
        .call(
            Method::POST,
            &format!("/keys/ec-kek/create?{V}"),
            Some(json!({"kty":"EC-HSM","key_ops":["import"]})),
        )
        .await
        .unwrap();
    assert_bad(&r, "'import' is not valid for a key of type EC-HSM");
    let policy =
        json!({"contentType":"application/json; charset=utf-8","data":B64.encode(r#"{"version":"1.0.0","anyOf":[]}"#)});
    let r = s
        .call(
            Method::POST,
            &format!("/keys/exportable-kek/create?{V}"),
            Some(
                json!({"kty":"RSA-HSM","key_ops":["import"],"attributes":{"exportable":true},"release_policy":policy}),
            ),
        )
        .await
        .unwrap();
    assert_bad(&r, "cannot be exportable");
    let kek = create_kek(&s, "kek", 2048).await;
    // Adding an operation later is refused as well.
    let r = s
        .call(
            Method::PATCH,
            &format!("/keys/kek?{V}"),
            Some(json!({"key_ops":["import","decrypt"]})),
        )
        .await
        .unwrap();
    assert_bad(&r, "mutually exclusive");
    // An exportable key cannot be turned into a KEK later (its private key could leave the HSM by release).
    let valid_policy = json!({"data": B64.encode(
        r#"{"version":"1.0.0","anyOf":[{"authority":"https://attest.example","allOf":[{"claim":"x","equals":true}]}]}"#
    )});
    let (st, body) = s
        .call(
            Method::POST,
            &format!("/keys/exportable-rsa/create?{V}"),
            Some(json!({"kty":"RSA-HSM","key_size":2048,"key_ops":["decrypt"],
                        "attributes":{"exportable":true},"release_policy":valid_policy})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
    let r = s
        .call(
            Method::PATCH,
            &format!("/keys/exportable-rsa?{V}"),
            Some(json!({"key_ops":["import"]})),
        )
        .await
        .unwrap();
    assert_bad(&r, "cannot be exportable");

    // The KEK does nothing but open blobs: every crypto operation is refused.
    let dg = B64.encode(digest(32));
    for (name, body) in [
        ("sign", json!({"alg":"RS256","value":dg})),
        ("encrypt", json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ("decrypt", json!({"alg":"RSA-OAEP","value":B64.encode([0u8; 256])})),
        ("wrapkey", json!({"alg":"RSA-OAEP","value":"AAAA"})),
        ("unwrapkey", json!({"alg":"RSA-OAEP","value":B64.encode([0u8; 256])})),
        (
            "verify",
            json!({"alg":"RS256","digest":dg,"value":B64.encode([0u8; 256])}),
        ),
    ] {
        let (st, body) = op(&s, &kek.kid, name, body).await;
        assert_eq!(st, 403, "{name}: {body}");
        assert_eq!(body["error"]["code"], "Forbidden", "{name}: {body}");
    }
}

#[tokio::test]
async fn refusals_have_distinct_messages_and_unwrap_failures_one() {
    let s = TestServer::builder().start().await.unwrap();
    let kek = create_kek(&s, "kek", 2048).await;
    let other_kek = create_kek(&s, "other-kek", 2048).await;
    let target = PrivateKey::generate_ec(Curve::P256).unwrap();
    let pkcs8 = target.to_storage_bytes().unwrap();
    let ct = byok_wrap(&kek.public, 32, pkcs8.expose_secret()).unwrap();
    let blob = |kid: &str, alg: &str, enc: &str, ct: &[u8]| B64.encode(byok_file(kid, alg, enc, ct));
    let ec = |key_hsm: String| json!({"kty":"EC-HSM","crv":"P-256","key_hsm":key_hsm});
    let good = blob(&kek.kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct);
    // (The good blob imports; every case below changes one thing.)
    assert_eq!(import(&s, "t-ok", ec(good.clone())).await.0, 200);

    // The KEK: a normal RSA key (not import-only), unknown name, unknown version, another HSM, a malformed kid.
    let (_, normal) = s
        .call(
            Method::POST,
            &format!("/keys/normal/create?{V}"),
            Some(json!({"kty":"RSA","key_size":2048})),
        )
        .await
        .unwrap();
    let normal_kid = normal["key"]["kid"].as_str().unwrap();
    let r = import(&s, "t1", ec(blob(normal_kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))).await;
    assert_bad(&r, "is not a key exchange key");
    let absent = format!("{}/keys/absent", s.url());
    assert_bad(
        &import(&s, "t2", ec(blob(&absent, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))).await,
        "was not found",
    );
    let (base, _) = kek.kid.rsplit_once('/').unwrap();
    let wrong_version = format!("{base}/{}", "0".repeat(32));
    let r = import(&s, "t3", ec(blob(&wrong_version, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))).await;
    assert_bad(&r, "was not found");
    let path = kek.kid.strip_prefix(&s.url()).unwrap();
    let elsewhere = format!("https://contoso.managedhsm.azure.net{path}");
    let r = import(&s, "t4", ec(blob(&elsewhere, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))).await;
    assert_bad(&r, "does not belong to this HSM");
    let r = import(
        &s,
        "t5",
        ec(blob(
            &format!("{}/secrets/kek", s.url()),
            "dir",
            "CKM_RSA_AES_KEY_WRAP",
            &ct,
        )),
    )
    .await;
    assert_bad(&r, "is not a key identifier");

    // The header: alg and enc.
    assert_bad(
        &import(&s, "t6", ec(blob(&kek.kid, "RSA-OAEP", "CKM_RSA_AES_KEY_WRAP", &ct))).await,
        "header.alg",
    );
    assert_bad(
        &import(&s, "t7", ec(blob(&kek.kid, "dir", "RSA_AES_KEY_WRAP_256", &ct))).await,
        "header.enc",
    );

    // The ciphertext: tampered in the RSA block or in the key wrap, or made for another KEK: one message.
    for i in [10, 300] {
        let mut t = ct.clone();
        t[i] ^= 0x80;
        let r = import(&s, "t8", ec(blob(&kek.kid, "dir", "CKM_RSA_AES_KEY_WRAP", &t))).await;
        assert_bad(&r, UNWRAP_FAILED);
        assert_eq!(r.1["error"]["message"], UNWRAP_FAILED);
    }
    let r = import(&s, "t9", ec(blob(&other_kek.kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct))).await;
    assert_eq!(r.1["error"]["message"], UNWRAP_FAILED, "{}", r.1);
    // A length that cannot be RSA block + key wrap says so.
    let r = import(
        &s,
        "t10",
        ec(blob(&kek.kid, "dir", "CKM_RSA_AES_KEY_WRAP", &ct[..ct.len() - 3])),
    )
    .await;
    assert_bad(&r, "length does not fit");

    // The key inside: kty and crv mismatches, an RSA-1024 key, a 20-byte AES key.
    assert_bad(
        &import(&s, "t11", json!({"kty":"RSA-HSM","key_hsm":good.clone()})).await,
        "holds an EC-HSM key",
    );
    assert_bad(
        &import(&s, "t12", json!({"kty":"oct-HSM","key_hsm":good.clone()})).await,
        "holds an EC-HSM key",
    );
    let r = import(&s, "t13", json!({"kty":"EC-HSM","crv":"P-384","key_hsm":good.clone()})).await;
    assert_bad(&r, "request's crv is P-384");
    // An RSA-1024 key made by OpenSSL at test time (PKCS#8 DER).
    let pem = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
        .output()
        .unwrap();
    assert!(pem.status.success());
    let mut conv = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut conv.stdin.take().unwrap(), &pem.stdout).unwrap();
    let rsa1024 = conv.wait_with_output().unwrap().stdout;
    assert!(!rsa1024.is_empty());
    let r = import(&s, "t14", json!({"kty":"RSA-HSM","key_hsm":key_hsm(&kek, &rsa1024)})).await;
    assert_bad(&r, "2048, 3072 or 4096");
    let r = import(&s, "t15", json!({"kty":"oct-HSM","key_hsm":key_hsm(&kek, &[1u8; 20])})).await;
    assert_bad(&r, "16, 24 or 32 bytes");
    let r = import(&s, "t16", json!({"kty":"RSA-HSM","key_hsm":key_hsm(&kek, &[1u8; 32])})).await;
    assert_bad(&r, "holds an oct-HSM (raw AES) key");

    // Not a blob at all.
    assert_bad(
        &import(&s, "t17", json!({"kty":"RSA-HSM","key_hsm":"***"})).await,
        "'key_hsm' is not valid base64url",
    );
    let compact_jwe = B64.encode("eyJhbGciOiJkaXIifQ..aaaa.bbbb.cccc");
    assert_bad(
        &import(&s, "t18", json!({"kty":"RSA-HSM","key_hsm":compact_jwe})).await,
        "not a BYOK transfer blob",
    );

    // A disabled KEK, then a KEK past its exp.
    let r = s
        .call(
            Method::PATCH,
            &format!("/keys/kek?{V}"),
            Some(json!({"attributes":{"enabled":false}})),
        )
        .await
        .unwrap();
    assert_eq!(r.0, 200, "{}", r.1);
    assert_bad(&import(&s, "t19", ec(good.clone())).await, "is disabled");
    let r = s
        .call(
            Method::PATCH,
            &format!("/keys/kek?{V}"),
            Some(json!({"attributes":{"enabled":true,"exp":1}})),
        )
        .await
        .unwrap();
    assert_eq!(r.0, 200, "{}", r.1);
    assert_bad(&import(&s, "t20", ec(good)).await, "has expired");

    // Nothing was created by any refused import.
    for i in 1..=20 {
        let (st, _) = s.call(Method::GET, &format!("/keys/t{i}?{V}"), None).await.unwrap();
        assert_eq!(st, 404, "t{i}");
    }
}
