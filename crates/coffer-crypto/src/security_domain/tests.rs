//! End-to-end tests of the security-domain file and restore blob. The Azure CLI interop run is
//! tests/interop/run.sh (it drives examples/sd_fixture.rs).
use std::sync::OnceLock;

use super::*;

/// Officer keys and two exchange keys, generated once (RSA key generation is the slow part).
struct Keys {
    officers: Vec<RsaCertified>,
    exchange: RsaCertified,
    other_exchange: RsaCertified,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        officers: (0..4)
            .map(|i| generate_rsa_certified(2048, &format!("officer {i}")).unwrap())
            .collect(),
        exchange: generate_rsa_certified(2048, "exchange").unwrap(),
        other_exchange: generate_rsa_certified(2048, "other exchange").unwrap(),
    })
}

fn officer_copy(i: usize) -> RsaCertified {
    let o = &keys().officers[i];
    RsaCertified {
        key_pkcs8_der: o.key_pkcs8_der.duplicate(),
        cert_der: o.cert_der.clone(),
    }
}

fn certs(n: usize) -> Vec<Vec<u8>> {
    keys().officers[..n].iter().map(|o| o.cert_der.clone()).collect()
}

const HSM_BACKUP: &[u8] = b"{\"v\":1,\"domain_secret\":\"not really\"}";

fn items() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("hsm_backup", HSM_BACKUP),
        ("base_enclave_backup", b"second blob"),
        ("kmsp_enclave_backup", b""),
    ]
}

fn assert_items(got: &[(String, SecretBytes)]) {
    let want = items();
    assert_eq!(got.len(), want.len());
    for ((tag, value), (want_tag, want_value)) in got.iter().zip(want) {
        assert_eq!(tag, want_tag);
        assert_eq!(value.expose_secret(), want_value);
    }
}

fn sd_message(e: Error) -> String {
    match e {
        Error::SecurityDomain(m) => m,
        other => panic!("expected Error::SecurityDomain, got {other:?}"),
    }
}

#[test]
fn file_has_the_documented_shape() {
    let file = build_security_domain(&items(), &certs(3), 2).unwrap();
    // Key order of the real files.
    let pos = |s: &str| file.find(s).unwrap();
    assert!(pos("\"EncData\"") < pos("\"SharedKeys\"") && pos("\"SharedKeys\"") < pos("\"version\""));
    assert!(pos("\"enc_shares\"") < pos("\"key_algorithm\"") && pos("\"key_algorithm\"") < pos("\"required\""));
    let v: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(v["version"], serde_json::json!(2));
    assert!(v["version"].is_u64(), "version is an integer");
    assert_eq!(v["EncData"]["kdf"], "sp108_kdf");
    assert_eq!(v["SharedKeys"]["key_algorithm"], "shamir_share");
    assert_eq!(v["SharedKeys"]["required"], serde_json::json!(2));
    let data = v["EncData"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (d, (tag, _)) in data.iter().zip(items()) {
        assert_eq!(d["tag"], tag);
        let jwe = d["compact_jwe"].as_str().unwrap();
        let header = jwe_header(jwe).unwrap();
        assert_eq!((header.alg.as_str(), header.enc.as_str()), ("dir", "A256CBC-HS512"));
        assert_eq!(header.kid.as_deref(), Some(tag));
        let header_text = B64URL.decode(jwe.split('.').next().unwrap()).unwrap();
        assert_eq!(
            header_text,
            format!(r#"{{"alg":"dir","enc":"A256CBC-HS512","kid":"{tag}"}}"#).into_bytes()
        );
    }
    let shares = v["SharedKeys"]["enc_shares"].as_array().unwrap();
    assert_eq!(shares.len(), 3);
    for (s, officer) in shares.iter().zip(&keys().officers) {
        assert_eq!(s["x5t_256"], x5t_s256(&officer.cert_der));
        let jwe = s["enc_key"].as_str().unwrap();
        let header_text = B64URL.decode(jwe.split('.').next().unwrap()).unwrap();
        assert_eq!(
            header_text,
            br#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","kid":"not used"}"#
        );
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(B64URL.decode(parts[1]).unwrap().len(), 256, "RSA-2048 encrypted CEK");
        assert_eq!(
            B64URL.decode(parts[3]).unwrap().len(),
            80,
            "64-byte share + a full padding block"
        );
    }
}

/// The share in `enc_shares[i]` is x = i + 1 and the shares rebuild a 32-byte master key that opens the items.
#[test]
fn shares_are_in_certificate_order_and_rebuild_the_master_key() {
    let file = build_security_domain(&items(), &certs(4), 3).unwrap();
    let v: Value = serde_json::from_str(&file).unwrap();
    let mut shares = Vec::new();
    for (i, s) in v["SharedKeys"]["enc_shares"].as_array().unwrap().iter().enumerate() {
        let share = jwe_decrypt_rsa_oaep256(s["enc_key"].as_str().unwrap(), &keys().officers[i].key_pkcs8_der)
            .unwrap()
            .plaintext;
        assert_eq!(share.len(), 64);
        for word in share.expose_secret().chunks_exact(2) {
            let w = u16::from_le_bytes([word[0], word[1]]);
            assert_eq!(usize::from(w >> 9), i + 1);
            assert!(w & 0x1ff <= 256);
        }
        shares.push(share);
    }
    let master = shamir_combine(&[
        shares[3].expose_secret(),
        shares[0].expose_secret(),
        shares[2].expose_secret(),
    ])
    .unwrap();
    assert_eq!(master.len(), 32);
    let jwe = v["EncData"]["data"][0]["compact_jwe"].as_str().unwrap();
    let key = sp800_108_hmac_sha512(master.expose_secret(), b"hsm_backup", b"", 512).unwrap();
    assert_eq!(
        jwe_decrypt_dir(jwe, &key).unwrap().plaintext.expose_secret(),
        HSM_BACKUP
    );
}

#[test]
fn recover_with_every_pair_of_three_officers_but_not_one() {
    let file = build_security_domain(&items(), &certs(3), 2).unwrap();
    for (a, b) in [(0, 1), (0, 2), (1, 2), (1, 0), (2, 0), (2, 1)] {
        let got = recover_items(&file, &[officer_copy(a), officer_copy(b)]).unwrap();
        assert_items(&got);
    }
    // Every officer, and an extra unrelated one, are fine.
    assert_items(
        &recover_items(
            &file,
            &[officer_copy(3), officer_copy(2), officer_copy(0), officer_copy(1)],
        )
        .unwrap(),
    );
    for i in 0..3 {
        let m = sd_message(recover_items(&file, &[officer_copy(i)]).unwrap_err());
        assert!(m.contains("only 1 of the 2 required shares"), "{m}");
        // The same officer twice is still one share.
        let m = sd_message(recover_items(&file, &[officer_copy(i), officer_copy(i)]).unwrap_err());
        assert!(m.contains("only 1 of the 2"), "{m}");
    }
    // An officer whose certificate is not in the file does not count.
    let m = sd_message(recover_items(&file, &[officer_copy(0), officer_copy(3)]).unwrap_err());
    assert!(m.contains("only 1 of the 2"), "{m}");
    assert!(recover_items(&file, &[]).is_err());
}

#[test]
fn quorum_three_of_four() {
    let file = build_security_domain(&items(), &certs(4), 3).unwrap();
    for trio in [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [3, 1, 0]] {
        let officers: Vec<_> = trio.iter().map(|&i| officer_copy(i)).collect();
        assert_items(&recover_items(&file, &officers).unwrap());
    }
    assert!(recover_items(&file, &[officer_copy(0), officer_copy(3)]).is_err());
}

#[test]
fn build_validates_its_input() {
    let c = certs(4);
    let bad = |certificates: &[Vec<u8>], quorum| build_security_domain(&items(), certificates, quorum).is_err();
    assert!(bad(&c[..2], 2), "two certificates");
    assert!(bad(&c[..3], 1), "quorum 1");
    assert!(bad(&c[..3], 4), "quorum above N");
    assert!(bad(&c[..3], 0), "quorum 0");
    let eleven: Vec<Vec<u8>> = (0..11).map(|i| c[i % 4].clone()).collect();
    assert!(bad(&eleven, 2), "eleven certificates");
    let dup = vec![c[0].clone(), c[1].clone(), c[0].clone()];
    assert!(bad(&dup, 2), "duplicate certificate");
    let small = x509::certificates_from_pem(&openssl_fixture("rsa1024").1).unwrap();
    assert!(bad(&[c[0].clone(), c[1].clone(), small[0].clone()], 2), "RSA-1024");
    let ec = x509::certificates_from_pem(&x509::generate_ca("ec").unwrap().cert_pem).unwrap();
    assert!(bad(&[c[0].clone(), c[1].clone(), ec[0].clone()], 2), "EC certificate");
    assert!(
        bad(&[c[0].clone(), c[1].clone(), b"junk".to_vec()], 2),
        "not a certificate"
    );
    let mut trailing = c[2].clone();
    trailing.push(0);
    assert!(bad(&[c[0].clone(), c[1].clone(), trailing], 2), "trailing data");
    // Items: none, empty tag, duplicate tag.
    assert!(build_security_domain(&[], &c[..3], 2).is_err());
    assert!(build_security_domain(&[("", b"x")], &c[..3], 2).is_err());
    assert!(build_security_domain(&[("a", b"x"), ("a", b"y")], &c[..3], 2).is_err());
    // The bounds themselves are fine.
    let ten: Vec<Vec<u8>> = (0..10)
        .map(|i| generate_rsa_certified(2048, &format!("o{i}")).unwrap().cert_der)
        .collect();
    assert!(build_security_domain(&items(), &ten, 10).is_ok());
    assert!(build_security_domain(&items(), &c[..3], 3).is_ok());
}

#[test]
fn check_wrapping_certificate_limits() {
    assert!(check_wrapping_certificate(&keys().officers[0].cert_der).is_ok());
    let small = x509::certificates_from_pem(&openssl_fixture("rsa1024").1).unwrap();
    assert!(check_wrapping_certificate(&small[0]).is_err());
    assert!(check_wrapping_certificate(b"").is_err());
    let big = generate_rsa_certified(4096, "big").unwrap();
    assert!(check_wrapping_certificate(&big.cert_der).is_ok());
}

#[test]
fn restore_blob_round_trip() {
    let k = keys();
    let file = build_security_domain(&items(), &certs(3), 2).unwrap();
    let recovered = recover_items(&file, &[officer_copy(2), officer_copy(1)]).unwrap();
    let blob = make_restore_blob(&recovered, &k.exchange.cert_der).unwrap();
    let v: Value = serde_json::from_str(&blob).unwrap();
    assert!(blob.find("\"EncData\"").unwrap() < blob.find("\"WrappedKey\"").unwrap());
    assert_eq!(v["WrappedKey"]["x5t_256"], x5t_s256(&k.exchange.cert_der));
    assert_eq!(v["EncData"]["kdf"], "sp108_kdf");
    assert!(v.get("SharedKeys").is_none());
    let opened = open_restore_blob(&blob, &k.exchange).unwrap();
    assert_items(&opened);
    // The blob's items are under a new master key: the file's item JWEs differ from the blob's.
    let file_v: Value = serde_json::from_str(&file).unwrap();
    assert_ne!(file_v["EncData"]["data"][0], v["EncData"]["data"][0]);
}

#[test]
fn restore_blob_for_another_exchange_key_fails() {
    let k = keys();
    let recovered = recover_items(
        &build_security_domain(&items(), &certs(3), 2).unwrap(),
        &[officer_copy(0), officer_copy(1)],
    )
    .unwrap();
    let blob = make_restore_blob(&recovered, &k.other_exchange.cert_der).unwrap();
    let m = sd_message(open_restore_blob(&blob, &k.exchange).unwrap_err());
    assert!(m.contains("another exchange key"), "{m}");
    // Even with the thumbprint rewritten to ours, the wrapped key does not open.
    let mut v: Value = serde_json::from_str(&blob).unwrap();
    v["WrappedKey"]["x5t_256"] = Value::String(x5t_s256(&k.exchange.cert_der));
    let m = sd_message(open_restore_blob(&v.to_string(), &k.exchange).unwrap_err());
    assert!(m.contains("cannot be decrypted with the exchange key"), "{m}");
}

#[test]
fn security_domain_file_given_as_blob_fails_clearly() {
    let file = build_security_domain(&items(), &certs(3), 2).unwrap();
    let e = open_restore_blob(&file, &keys().exchange).unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("security domain: this is a security-domain file, not a restore blob"),
        "{m}"
    );
    // And the other way round.
    let blob = make_restore_blob(
        &[("t".to_owned(), SecretBytes::new(b"x".to_vec()))],
        &keys().exchange.cert_der,
    )
    .unwrap();
    let m = sd_message(recover_items(&blob, &[officer_copy(0), officer_copy(1)]).unwrap_err());
    assert!(m.contains("restore blob, not a security-domain file"), "{m}");
    // Garbage.
    for text in [
        "",
        "[]",
        "{}",
        "null",
        "{\"WrappedKey\":{}}",
        "{\"EncData\":{\"data\":[]}}",
    ] {
        assert!(
            matches!(open_restore_blob(text, &keys().exchange), Err(Error::SecurityDomain(_))),
            "{text}"
        );
    }
}

fn blob_value() -> Value {
    let items: Vec<(String, SecretBytes)> = items()
        .into_iter()
        .map(|(t, p)| (t.to_owned(), SecretBytes::new(p.to_vec())))
        .collect();
    serde_json::from_str(&make_restore_blob(&items, &keys().exchange.cert_der).unwrap()).unwrap()
}

fn flip_char(s: &str, index: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A named change to a restore blob.
type Edit = (&'static str, Box<dyn Fn(&mut Value)>);

#[test]
fn tampered_restore_blobs_fail() {
    let exchange = &keys().exchange;
    assert_items(&open_restore_blob(&blob_value().to_string(), exchange).unwrap());
    let edits: Vec<Edit> = vec![
        (
            "item ciphertext",
            Box::new(|v| {
                let jwe = v["EncData"]["data"][0]["compact_jwe"].as_str().unwrap().to_owned();
                let at = jwe.rfind('.').unwrap() - 3;
                v["EncData"]["data"][0]["compact_jwe"] = Value::String(flip_char(&jwe, at));
            }),
        ),
        (
            "item tag",
            Box::new(|v| {
                let jwe = v["EncData"]["data"][1]["compact_jwe"].as_str().unwrap().to_owned();
                let at = jwe.len() - 5;
                v["EncData"]["data"][1]["compact_jwe"] = Value::String(flip_char(&jwe, at));
            }),
        ),
        (
            "wrapped key ciphertext",
            Box::new(|v| {
                let jwe = v["WrappedKey"]["enc_key"].as_str().unwrap().to_owned();
                let at = jwe.rfind('.').unwrap() - 3;
                v["WrappedKey"]["enc_key"] = Value::String(flip_char(&jwe, at));
            }),
        ),
        (
            "swapped tags",
            Box::new(|v| {
                let t0 = v["EncData"]["data"][0]["tag"].clone();
                v["EncData"]["data"][0]["tag"] = v["EncData"]["data"][1]["tag"].clone();
                v["EncData"]["data"][1]["tag"] = t0;
            }),
        ),
        (
            "duplicate item",
            Box::new(|v| {
                let d = v["EncData"]["data"][0].clone();
                v["EncData"]["data"].as_array_mut().unwrap().push(d);
            }),
        ),
        ("no items", Box::new(|v| v["EncData"]["data"] = serde_json::json!([]))),
        (
            "no EncData",
            Box::new(|v| drop(v.as_object_mut().unwrap().remove("EncData"))),
        ),
        (
            "enc_key not a string",
            Box::new(|v| v["WrappedKey"]["enc_key"] = serde_json::json!(5)),
        ),
        (
            "enc_key garbage",
            Box::new(|v| v["WrappedKey"]["enc_key"] = serde_json::json!("abc")),
        ),
    ];
    for (name, edit) in edits {
        let mut v = blob_value();
        edit(&mut v);
        assert!(
            matches!(
                open_restore_blob(&v.to_string(), exchange),
                Err(Error::SecurityDomain(_))
            ),
            "{name}"
        );
    }
}

/// An item whose JWE carries a kid other than its tag, correctly encrypted under K_tag, is refused.
#[test]
fn restore_blob_kid_must_equal_tag() {
    let exchange = &keys().exchange;
    let master = random::secret(32).unwrap();
    let key = item_key(&master, "hsm_backup").unwrap();
    let blob = serde_json::json!({
        "EncData": {"data": [{"compact_jwe": jwe_encrypt_dir(&key, "other", b"x").unwrap(), "tag": "hsm_backup"}],
                    "kdf": "sp108_kdf"},
        "WrappedKey": {"enc_key": jwe_encrypt_rsa_oaep256(&exchange.cert_der, "not used", master.expose_secret()).unwrap(),
                       "x5t_256": x5t_s256(&exchange.cert_der)},
    });
    let m = sd_message(open_restore_blob(&blob.to_string(), exchange).unwrap_err());
    assert!(m.contains("kid does not match"), "{m}");
}

/// The old CLI wrapped compact_jwe and enc_key in one more base64url layer.
#[test]
fn restore_blob_tolerates_the_legacy_base64_layer() {
    let mut v = blob_value();
    for d in v["EncData"]["data"].as_array_mut().unwrap() {
        let jwe = d["compact_jwe"].as_str().unwrap().to_owned();
        d["compact_jwe"] = Value::String(B64URL.encode(jwe));
    }
    let enc_key = v["WrappedKey"]["enc_key"].as_str().unwrap().to_owned();
    v["WrappedKey"]["enc_key"] = Value::String(B64URL.encode(enc_key));
    assert_items(&open_restore_blob(&v.to_string(), &keys().exchange).unwrap());
}

#[test]
fn transfer_key_jwk_fields() {
    let ex = &keys().exchange;
    for base in ["https://hsm.example:8443", "https://hsm.example:8443/"] {
        let jwk = transfer_key_jwk(&ex.cert_der, base).unwrap();
        assert_eq!(jwk["kid"], "https://hsm.example:8443/transfer_key");
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["key_ops"], serde_json::json!(["encrypt", "wrapKey"]));
        assert_eq!(jwk["alg"], "RSA-OAEP-256");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["x5c"][0], STANDARD.encode(&ex.cert_der));
        assert_eq!(jwk["x5t"], x509::thumbprint_sha1(&ex.cert_der));
        assert_eq!(jwk["x5t#S256"], x5t_s256(&ex.cert_der));
        let n = B64URL.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        let pair = RsaKeyPair::from_pkcs8(ex.key_pkcs8_der.expose_secret()).unwrap();
        assert_eq!(n, pair.public_key().modulus().big_endian_without_leading_zero());
        assert_eq!(jwk.as_object().unwrap().len(), 9);
    }
    assert!(transfer_key_jwk(b"junk", "https://x").is_err());
}

#[test]
fn rsa_certified_pem_round_trip_and_checks() {
    let o = &keys().officers[0];
    let key_pem = o.key_pem();
    let key_text = std::str::from_utf8(key_pem.expose_secret()).unwrap();
    assert!(key_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(key_text.ends_with("-----END PRIVATE KEY-----\n"));
    assert!(key_text.lines().all(|l| l.len() <= 64));
    let cert_pem = o.cert_pem();
    assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    let back = RsaCertified::from_pem(key_pem.expose_secret(), &cert_pem).unwrap();
    assert!(back.key_pkcs8_der.ct_eq(o.key_pkcs8_der.expose_secret()));
    assert_eq!(back.cert_der, o.cert_der);
    // Key and certificate of different officers.
    let other = &keys().officers[1];
    assert!(matches!(
        RsaCertified::from_pem(key_pem.expose_secret(), &other.cert_pem()),
        Err(Error::InvalidKey(_))
    ));
    // Wrong blocks.
    assert!(RsaCertified::from_pem(cert_pem.as_bytes(), &cert_pem).is_err());
    assert!(RsaCertified::from_pem(key_pem.expose_secret(), key_text).is_err());
    assert!(
        RsaCertified::from_pem(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            &cert_pem
        )
        .is_err()
    );
    // Debug shows no key.
    let debug = format!("{o:?}");
    assert!(debug.starts_with("RsaCertified"));
    assert!(!debug.contains("key_pkcs8_der"));
    // PKCS#1 ("RSA PRIVATE KEY") keys, as older OpenSSL writes them, are accepted and converted to PKCS#8.
    let (pkcs1_key, pkcs1_cert) = openssl_fixture("pkcs1");
    assert!(pkcs1_key.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"));
    let pkcs1 = RsaCertified::from_pem(&pkcs1_key, &pkcs1_cert).unwrap();
    assert!(
        pkcs1
            .key_pem()
            .expose_secret()
            .starts_with(b"-----BEGIN PRIVATE KEY-----")
    );
    // ... and work as officers.
    let mut c = certs(2);
    c.push(pkcs1.cert_der.clone());
    let file = build_security_domain(&items(), &c, 2).unwrap();
    assert_items(&recover_items(&file, &[pkcs1, officer_copy(1)]).unwrap());
}

#[test]
fn generated_certificates() {
    assert!(generate_rsa_certified(1024, "x").is_err());
    assert!(generate_rsa_certified(2047, "x").is_err());
    assert!(generate_rsa_certified(8192, "x").is_err());
    assert!(generate_rsa_certified(2048, "").is_err());
    let o = &keys().officers[0];
    let (_, cert) = x509_parser::parse_x509_certificate(&o.cert_der).unwrap();
    assert_eq!(cert.subject().to_string(), "CN=officer 0");
    assert_eq!(cert.subject(), cert.issuer());
    let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!(life >= 3650 * 86400, "{life}");
    // Self-signed with the key itself.
    assert!(cert.verify_signature(None).is_ok());
    assert_eq!(x5t_s256(&o.cert_der).len(), 43);
}

/// Legacy fixtures made at test time with the `openssl` command (scripts/setup-system installs it): `rsa1024` (a
/// certificate whose key is too small) or `pkcs1` (a 2048-bit key in the old `RSA PRIVATE KEY` form). Returns
/// (key PEM, certificate PEM). Nothing is committed.
fn openssl_fixture(kind: &str) -> (Vec<u8>, String) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("coffer-sd-fixture-{}-{kind}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl command is needed for these fixtures (scripts/setup-system installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (bits, traditional) = if kind == "rsa1024" {
        ("1024", false)
    } else {
        ("2048", true)
    };
    let key_s = key.to_str().unwrap();
    let mut genrsa = vec!["genrsa", "-out", key_s];
    if traditional {
        genrsa.insert(1, "-traditional");
    }
    genrsa.push(bits);
    run(&genrsa);
    run(&[
        "req",
        "-x509",
        "-key",
        key_s,
        "-subj",
        &format!("/CN={kind}"),
        "-days",
        "3650",
        "-out",
        cert.to_str().unwrap(),
    ]);
    let out = (std::fs::read(&key).unwrap(), std::fs::read_to_string(&cert).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    out
}
