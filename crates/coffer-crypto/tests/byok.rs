//! BYOK (`CKM_RSA_AES_KEY_WRAP`): `byok_unwrap` against RFC 5649 vectors, round trips with `byok_wrap`, the
//! failure modes (AIV, length, padding, OAEP hash, garbage), and `PrivateKey::from_pkcs8` for every supported key
//! type, including keys OpenSSL makes at test time (no key is committed). Blobs made by an independent
//! implementation (pyca/cryptography) are opened in tests/conformance/python/test_byok.py.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: clippy.toml's test allowances cover only #[test] functions"
)]

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use coffer_crypto::byok::{byok_unwrap, byok_wrap};
use coffer_crypto::keys::{CipherParams, Curve, EncryptionAlgorithm, KeyFamily, PrivateKey, PublicKey};
use coffer_crypto::{Error, SecretBytes};

/// Runs `openssl ARGS` with `input` on stdin; returns stdout.
fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new private key made by `openssl genpkey GENPKEY_ARGS`, as PKCS#8 DER (converted explicitly).
fn openssl_pkcs8(genpkey: &[&str]) -> Vec<u8> {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    let pem = openssl(&args, b"");
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], &pem)
}

/// The SubjectPublicKeyInfo DER of a PKCS#8 key, by OpenSSL.
fn openssl_spki(pkcs8: &[u8]) -> Vec<u8> {
    openssl(&["pkey", "-inform", "DER", "-pubout", "-outform", "DER"], pkcs8)
}

fn no_params() -> CipherParams<'static> {
    CipherParams::default()
}

/// `C1` for a chosen transport key: RSA-OAEP with SHA-1 under the KEK's public key (the `RSA-OAEP` algorithm).
fn oaep_sha1(kek: &PrivateKey, transport: &[u8]) -> Vec<u8> {
    kek.encrypt(EncryptionAlgorithm::RsaOaep, transport, &no_params())
        .unwrap()
        .value
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

fn modulus_len(kek: &PrivateKey) -> usize {
    usize::try_from(kek.size_bits() / 8).unwrap()
}

#[test]
fn rfc5649_vectors_through_the_byok_path() {
    // RFC 5649 §6 (also in byok.md §4): a 192-bit transport key.
    let kek = PrivateKey::generate_rsa(2048).unwrap();
    let transport = hex::decode("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8").unwrap();
    let cases = [
        (
            "c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
        ),
        ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
    ];
    for (key, wrapped) in cases {
        let ct = join(&oaep_sha1(&kek, &transport), &hex::decode(wrapped).unwrap());
        let pt = byok_unwrap(&kek, &ct).unwrap();
        assert_eq!(hex::encode(pt.expose_secret()), key);
    }
}

#[test]
fn wrap_unwrap_round_trips_for_every_transport_key_and_kek_size() {
    let target = PrivateKey::generate_ec(Curve::P256).unwrap();
    let pkcs8 = target.to_storage_bytes().unwrap();
    for bits in [2048, 3072, 4096] {
        let kek = PrivateKey::generate_rsa(bits).unwrap();
        let n = modulus_len(&kek);
        for transport_len in [16, 24, 32] {
            let ct = byok_wrap(&kek.public_key(), transport_len, pkcs8.expose_secret()).unwrap();
            assert_eq!(ct.len(), n + 8 + pkcs8.len().div_ceil(8) * 8, "KEK {bits}");
            // The layout is C1 || C2: C1 opens with plain RSA-OAEP (SHA-1) to the transport key, C2 with RFC 5649.
            let (c1, c2) = ct.split_at(n);
            let transport = kek.decrypt(EncryptionAlgorithm::RsaOaep, c1, &no_params()).unwrap();
            assert_eq!(transport.len(), transport_len);
            assert!(
                kek.decrypt(EncryptionAlgorithm::RsaOaep256, c1, &no_params()).is_err(),
                "C1 must be SHA-1 OAEP"
            );
            let aes = PrivateKey::import_oct(transport).unwrap();
            let inner = aes
                .decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, c2, &no_params())
                .unwrap();
            assert_eq!(inner.expose_secret(), pkcs8.expose_secret());
            // And the server side gives the same plaintext.
            let pt = byok_unwrap(&kek, &ct).unwrap();
            assert_eq!(pt.expose_secret(), pkcs8.expose_secret());
        }
    }
    // Raw AES key bytes (oct targets) and a 4096-bit KEK with a P-256 target: 512 + 152 bytes (byok.md §4).
    let kek = PrivateKey::generate_rsa(4096).unwrap();
    for len in [16, 24, 32] {
        let raw = vec![0x5a; len];
        let ct = byok_wrap(&kek.public_key(), 32, &raw).unwrap();
        assert_eq!(byok_unwrap(&kek, &ct).unwrap().expose_secret(), raw.as_slice());
    }
    assert!(byok_wrap(&kek.public_key(), 20, b"x").is_err());
    assert!(byok_wrap(&PublicKey::Oct, 32, b"x").is_err());
}

/// One RFC 5649 block for a plaintext of at most 8 bytes: AES-ECB(K, AIV || MLI || P padded), with every field
/// chosen by the test so that each integrity check can be broken on its own.
fn kwp_single_block(transport: &[u8], aiv: [u8; 4], mli: u32, padded: [u8; 8]) -> Vec<u8> {
    let mut block = Vec::with_capacity(16);
    block.extend_from_slice(&aiv);
    block.extend_from_slice(&mli.to_be_bytes());
    block.extend_from_slice(&padded);
    let key = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, transport).unwrap()).unwrap();
    key.less_safe_encrypt(&mut block, EncryptionContext::None).unwrap();
    block
}

#[test]
fn every_integrity_failure_is_one_generic_error() {
    let kek = PrivateKey::generate_rsa(2048).unwrap();
    let other_kek = PrivateKey::generate_rsa(2048).unwrap();
    let transport = [7u8; 16];
    let c1 = oaep_sha1(&kek, &transport);
    let aiv = [0xa6, 0x59, 0x59, 0xa6];
    let unwrap_err = |ct: &[u8]| byok_unwrap(&kek, ct).map(|_| ()).unwrap_err();

    // The hand-built block is right when every field is: 5 bytes of key, 3 zero bytes of padding.
    let good = kwp_single_block(&transport, aiv, 5, *b"hello\0\0\0");
    assert_eq!(byok_unwrap(&kek, &join(&c1, &good)).unwrap().expose_secret(), b"hello");

    let broken = [
        (
            "RFC 3394 AIV",
            kwp_single_block(&transport, [0xa6; 4], 5, *b"hello\0\0\0"),
        ),
        (
            "length beyond the block",
            kwp_single_block(&transport, aiv, 9, *b"hello\0\0\0"),
        ),
        ("length zero", kwp_single_block(&transport, aiv, 0, [0; 8])),
        (
            "non-zero padding",
            kwp_single_block(&transport, aiv, 5, *b"hello\0\0\x01"),
        ),
    ];
    for (what, c2) in broken {
        assert!(matches!(unwrap_err(&join(&c1, &c2)), Error::DecryptFailed), "{what}");
    }

    // The PKCS#11 "PKCS#7 then RFC 3394" reading of CKM_AES_KEY_WRAP_PAD (byok.md §4) fails the AIV check.
    let mut pkcs7 = b"0123456789".to_vec();
    pkcs7.extend_from_slice(&[6; 6]);
    let kw = PrivateKey::import_oct(SecretBytes::new(transport.to_vec()))
        .unwrap()
        .encrypt(EncryptionAlgorithm::CkmAesKeyWrap, &pkcs7, &no_params())
        .unwrap()
        .value;
    assert!(matches!(unwrap_err(&join(&c1, &kw)), Error::DecryptFailed));

    // Tampering with either half, the wrong KEK, SHA-256 OAEP, a transport key of a bad size, garbage.
    let ct = byok_wrap(&kek.public_key(), 32, b"a key of twenty-four b..").unwrap();
    for i in [0, 100, 255, 256, 263, 264, ct.len() - 1] {
        let mut t = ct.clone();
        t[i] ^= 0x01;
        assert!(matches!(unwrap_err(&t), Error::DecryptFailed), "flip at {i}");
    }
    assert!(matches!(byok_unwrap(&other_kek, &ct), Err(Error::DecryptFailed)));
    let sha256_c1 = kek
        .encrypt(EncryptionAlgorithm::RsaOaep256, &transport, &no_params())
        .unwrap()
        .value;
    assert!(matches!(unwrap_err(&join(&sha256_c1, &good)), Error::DecryptFailed));
    let odd_transport = oaep_sha1(&kek, &[7u8; 20]);
    assert!(matches!(unwrap_err(&join(&odd_transport, &good)), Error::DecryptFailed));
    let garbage = coffer_crypto::random::bytes(256 + 40).unwrap();
    assert!(matches!(unwrap_err(&garbage), Error::DecryptFailed));
}

#[test]
fn lengths_that_cannot_be_c1_c2_are_rejected_before_decrypting() {
    let kek = PrivateKey::generate_rsa(2048).unwrap();
    let ct = byok_wrap(&kek.public_key(), 32, &[1u8; 32]).unwrap();
    for len in [0, 100, 255, 256, 256 + 8, 256 + 12, ct.len() - 1] {
        let e = byok_unwrap(&kek, &ct[..len]).map(|_| ()).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter(_)), "length {len}: {e:?}");
    }
    let mut longer = ct.clone();
    longer.extend_from_slice(&[0; 3]);
    assert!(matches!(byok_unwrap(&kek, &longer), Err(Error::InvalidParameter(_))));
    // A KEK that is not RSA.
    let ec = PrivateKey::generate_ec(Curve::P256).unwrap();
    assert!(matches!(byok_unwrap(&ec, &ct), Err(Error::AlgorithmMismatch { .. })));
}

#[test]
fn from_pkcs8_finds_family_curve_and_public_part() {
    for curve in [Curve::P256, Curve::P256K, Curve::P384, Curve::P521] {
        let key = PrivateKey::generate_ec(curve).unwrap();
        let parsed = PrivateKey::from_pkcs8(key.to_storage_bytes().unwrap().expose_secret()).unwrap();
        assert_eq!((parsed.family(), parsed.curve()), (KeyFamily::Ec, Some(curve)));
        assert_eq!(parsed.public_key(), key.public_key());
    }
    for bits in [2048, 3072, 4096] {
        let key = PrivateKey::generate_rsa(bits).unwrap();
        let parsed = PrivateKey::from_pkcs8(key.to_storage_bytes().unwrap().expose_secret()).unwrap();
        assert_eq!((parsed.family(), parsed.size_bits()), (KeyFamily::Rsa, bits));
        assert_eq!(parsed.public_key(), key.public_key());
    }
    // Keys made by OpenSSL at test time.
    let rsa_der = openssl_pkcs8(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
    let rsa = PrivateKey::from_pkcs8(&rsa_der).unwrap();
    let PublicKey::Rsa { n, .. } = rsa.public_key() else {
        panic!("not RSA")
    };
    let modulus = String::from_utf8(openssl(&["rsa", "-inform", "DER", "-noout", "-modulus"], &rsa_der)).unwrap();
    assert_eq!(hex::encode_upper(&n), modulus.trim().trim_start_matches("Modulus="));
    let k1_der = openssl_pkcs8(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"]);
    let k1 = PrivateKey::from_pkcs8(&k1_der).unwrap();
    let PublicKey::Ec { curve, x, y } = k1.public_key() else {
        panic!("not EC")
    };
    assert_eq!(curve, Curve::P256K);
    // The SPKI ends with the uncompressed point 04 || x || y.
    assert!(openssl_spki(&k1_der).ends_with(&[&[4u8][..], &x, &y].concat()));
    let refused = [
        (
            openssl_pkcs8(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]),
            "rsa1024",
            "2048, 3072 or 4096",
        ),
        (
            openssl_pkcs8(&["-algorithm", "ED25519"]),
            "ed25519",
            "neither an RSA nor an EC",
        ),
        (
            openssl_pkcs8(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp224r1"]),
            "secp224r1",
            "unsupported EC curve",
        ),
    ];
    for (der, name, why) in refused {
        match PrivateKey::from_pkcs8(&der) {
            Err(Error::InvalidKey(m)) => assert!(m.contains(why), "{name}: {m}"),
            other => panic!("{name}: {:?}", other.map(|k| k.family())),
        }
    }
    for garbage in [&b""[..], b"\x30\x03\x02\x01", &[0x5a; 32]] {
        assert!(matches!(PrivateKey::from_pkcs8(garbage), Err(Error::InvalidKey(_))));
    }
}

#[test]
fn from_pkcs8_accepts_an_ec_key_without_its_public_point() {
    // PKCS#8 { v0, {id-ecPublicKey, prime256v1}, ECPrivateKey { 1, d } }: the optional publicKey is left out.
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let d = pair.private_key().as_be_bytes().unwrap();
    let mut der = hex::decode("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420").unwrap();
    der.extend_from_slice(d.as_ref());
    let key = PrivateKey::from_pkcs8(&der).unwrap();
    let public = pair.public_key().as_ref();
    assert_eq!(
        key.public_key(),
        PublicKey::Ec {
            curve: Curve::P256,
            x: public[1..33].to_vec(),
            y: public[33..65].to_vec(),
        }
    );
}
