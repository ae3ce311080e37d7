//! Round trips and error paths of `keys::PrivateKey`, with independent cross-checks through aws-lc-rs's
//! message-level (not digest-level) verification.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: clippy.toml's test allowances cover only #[test] functions"
)]

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, RsaPublicKeyComponents, UnparsedPublicKey};
use coffer_crypto::keys::{
    CipherParams, Curve, EncryptionAlgorithm, KeyFamily, PrivateKey, PublicKey, RsaPrivateComponents,
    SignatureAlgorithm,
};
use coffer_crypto::{Error, SecretBytes, hash};
use serde_json::Value;

const CURVES: [Curve; 4] = [Curve::P256, Curve::P256K, Curve::P384, Curve::P521];
const RSA_ALGS: [SignatureAlgorithm; 6] = [
    SignatureAlgorithm::Rs256,
    SignatureAlgorithm::Rs384,
    SignatureAlgorithm::Rs512,
    SignatureAlgorithm::Ps256,
    SignatureAlgorithm::Ps384,
    SignatureAlgorithm::Ps512,
];

fn ec_alg(curve: Curve) -> SignatureAlgorithm {
    match curve {
        Curve::P256 => SignatureAlgorithm::Es256,
        Curve::P256K => SignatureAlgorithm::Es256K,
        Curve::P384 => SignatureAlgorithm::Es384,
        Curve::P521 => SignatureAlgorithm::Es512,
    }
}

fn digest(alg: SignatureAlgorithm, msg: &[u8]) -> Vec<u8> {
    match alg.digest_len() {
        32 => hash::sha256(msg).to_vec(),
        48 => hash::sha384(msg),
        _ => hash::sha512(msg),
    }
}

fn rsa_2048() -> PrivateKey {
    PrivateKey::generate_rsa(2048).unwrap()
}

/// The fixed RSA-2048 key (PKCS#1 v2.1 oaep-vect Example 10) stored with the PSS interop vectors.
fn fixed_rsa_components() -> RsaPrivateComponents {
    let path = format!("{}/tests/data/pyca_rsa_pss.json", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let k = &doc["key"];
    let h = |f: &str| hex::decode(k[f].as_str().unwrap()).unwrap();
    RsaPrivateComponents {
        n: h("n"),
        e: h("e"),
        d: SecretBytes::new(h("d")),
        p: SecretBytes::new(h("p")),
        q: SecretBytes::new(h("q")),
        dp: SecretBytes::new(h("dp")),
        dq: SecretBytes::new(h("dq")),
        qi: SecretBytes::new(h("qi")),
    }
}

fn no_params() -> CipherParams<'static> {
    CipherParams::default()
}

// ---- EC ----

#[test]
fn ec_generate_sign_verify_every_curve() {
    for curve in CURVES {
        let key = PrivateKey::generate_ec(curve).unwrap();
        let alg = ec_alg(curve);
        assert_eq!(key.family(), KeyFamily::Ec);
        assert_eq!(key.curve(), Some(curve));
        assert_eq!(
            key.size_bits(),
            [256, 256, 384, 521][CURVES.iter().position(|c| *c == curve).unwrap()]
        );
        let PublicKey::Ec { curve: c, x, y } = key.public_key() else {
            panic!("not EC")
        };
        assert_eq!(
            (c, x.len(), y.len()),
            (curve, curve.coordinate_len(), curve.coordinate_len())
        );

        let d = digest(alg, b"message");
        let sig = key.sign(alg, &d).unwrap();
        assert_eq!(sig.len(), 2 * curve.coordinate_len());
        assert!(key.verify(alg, &d, &sig).unwrap());
        // ECDSA is randomized; both signatures verify.
        let sig2 = key.sign(alg, &d).unwrap();
        assert_ne!(sig, sig2);
        assert!(key.verify(alg, &d, &sig2).unwrap());

        let mut bad = sig.clone();
        bad[5] ^= 0x01;
        assert!(!key.verify(alg, &d, &bad).unwrap());
        assert!(!key.verify(alg, &d, &sig[..sig.len() - 1]).unwrap());
        assert!(!key.verify(alg, &digest(alg, b"other"), &sig).unwrap());

        // Digest length must match the algorithm.
        assert!(matches!(
            key.sign(alg, &d[..d.len() - 1]),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            key.verify(alg, &[0u8; 20], &sig),
            Err(Error::InvalidParameter(_))
        ));

        // Every other signature algorithm is a mismatch for this key.
        for other in SignatureAlgorithm::ALL.into_iter().filter(|a| *a != alg) {
            let od = digest(other, b"message");
            assert!(
                matches!(key.sign(other, &od), Err(Error::AlgorithmMismatch { .. })),
                "{curve:?} {other:?}"
            );
            assert!(matches!(
                key.verify(other, &od, &sig),
                Err(Error::AlgorithmMismatch { .. })
            ));
        }
        // EC keys do not encrypt.
        for enc in EncryptionAlgorithm::ALL {
            assert!(matches!(
                key.encrypt(enc, b"x", &no_params()),
                Err(Error::AlgorithmMismatch { .. })
            ));
            assert!(matches!(
                key.decrypt(enc, b"x", &no_params()),
                Err(Error::AlgorithmMismatch { .. })
            ));
        }
    }
}

#[test]
fn ec_digest_signature_is_a_normal_signature_of_the_message() {
    let msg = b"pre-hashed signing must equal message signing";
    let params: [(Curve, &'static lc::EcdsaVerificationAlgorithm); 4] = [
        (Curve::P256, &lc::ECDSA_P256_SHA256_FIXED),
        (Curve::P256K, &lc::ECDSA_P256K1_SHA256_FIXED),
        (Curve::P384, &lc::ECDSA_P384_SHA384_FIXED),
        (Curve::P521, &lc::ECDSA_P521_SHA512_FIXED),
    ];
    for (curve, verification) in params {
        let key = PrivateKey::generate_ec(curve).unwrap();
        let alg = ec_alg(curve);
        let sig = key.sign(alg, &digest(alg, msg)).unwrap();
        let PublicKey::Ec { x, y, .. } = key.public_key() else {
            panic!()
        };
        let point = [&[0x04][..], &x, &y].concat();
        UnparsedPublicKey::new(verification, &point).verify(msg, &sig).unwrap();
        // Signing the digest as if it were the message (hashing twice) is not what we do.
        assert!(
            UnparsedPublicKey::new(verification, &point)
                .verify(&digest(alg, msg), &sig)
                .is_err()
        );
    }
}

/// d of a generated key, read back from its PKCS#8 storage form with aws-lc-rs.
fn ec_private_scalar(key: &PrivateKey, curve: Curve) -> SecretBytes {
    let alg = match curve {
        Curve::P256 => &lc::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P256K => &lc::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        Curve::P384 => &lc::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &lc::ECDSA_P521_SHA512_FIXED_SIGNING,
    };
    let pkcs8 = key.to_storage_bytes().unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.expose_secret()).unwrap();
    SecretBytes::new(pair.private_key().as_be_bytes().unwrap().as_ref().to_vec())
}

#[test]
fn ec_import_from_components_matches_public_key() {
    for curve in CURVES {
        let original = PrivateKey::generate_ec(curve).unwrap();
        let d = ec_private_scalar(&original, curve);
        assert_eq!(d.len(), curve.coordinate_len());
        let PublicKey::Ec { x, y, .. } = original.public_key() else {
            panic!()
        };
        let imported = PrivateKey::import_ec(curve, &d, &x, &y).unwrap();
        assert_eq!(imported.public_key(), original.public_key());
        let alg = ec_alg(curve);
        let dg = digest(alg, b"import");
        assert!(original.verify(alg, &dg, &imported.sign(alg, &dg).unwrap()).unwrap());

        // Leading zeros may be stripped (or added) by encoders.
        let mut long_d = vec![0, 0];
        long_d.extend_from_slice(d.expose_secret());
        assert!(PrivateKey::import_ec(curve, &SecretBytes::new(long_d), &x, &y).is_ok());
        // A different key's point does not match d.
        let other = PrivateKey::generate_ec(curve).unwrap();
        let PublicKey::Ec { x: ox, y: oy, .. } = other.public_key() else {
            panic!()
        };
        assert!(matches!(
            PrivateKey::import_ec(curve, &d, &ox, &oy),
            Err(Error::InvalidKey(_))
        ));
        // Too long for the curve.
        let mut too_long = vec![1];
        too_long.extend_from_slice(&x);
        assert!(matches!(
            PrivateKey::import_ec(curve, &d, &too_long, &y),
            Err(Error::InvalidKey(_))
        ));
        // The same scalar on another curve does not give this point.
        let wrong_curve = if curve == Curve::P256 {
            Curve::P256K
        } else {
            Curve::P256
        };
        if wrong_curve.coordinate_len() == curve.coordinate_len() {
            assert!(PrivateKey::import_ec(wrong_curve, &d, &x, &y).is_err());
        }
    }
}

// ---- RSA ----

#[test]
fn rsa_2048_sign_verify_every_algorithm() {
    let key = rsa_2048();
    assert_eq!(
        (key.family(), key.size_bits(), key.curve()),
        (KeyFamily::Rsa, 2048, None)
    );
    let PublicKey::Rsa { n, e } = key.public_key() else {
        panic!()
    };
    assert_eq!((n.len(), e.as_slice()), (256, &[1u8, 0, 1][..]));
    assert_ne!(n[0], 0);
    for alg in RSA_ALGS {
        let d = digest(alg, b"message");
        let sig = key.sign(alg, &d).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(key.verify(alg, &d, &sig).unwrap(), "{alg:?}");
        let mut bad = sig.clone();
        bad[100] ^= 0x01;
        assert!(!key.verify(alg, &d, &bad).unwrap());
        assert!(!key.verify(alg, &digest(alg, b"other"), &sig).unwrap());
        assert!(matches!(key.sign(alg, &d[1..]), Err(Error::InvalidParameter(_))));
        assert!(matches!(
            key.verify(alg, &[0; 31], &sig),
            Err(Error::InvalidParameter(_))
        ));
    }
    // PKCS#1 v1.5 is deterministic, PSS is not.
    let d = digest(SignatureAlgorithm::Rs256, b"m");
    assert_eq!(
        key.sign(SignatureAlgorithm::Rs256, &d).unwrap(),
        key.sign(SignatureAlgorithm::Rs256, &d).unwrap()
    );
    assert_ne!(
        key.sign(SignatureAlgorithm::Ps256, &d).unwrap(),
        key.sign(SignatureAlgorithm::Ps256, &d).unwrap()
    );
    for alg in [
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es256K,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::Es512,
    ] {
        let d = digest(alg, b"m");
        assert!(matches!(key.sign(alg, &d), Err(Error::AlgorithmMismatch { .. })));
        assert!(matches!(
            key.verify(alg, &d, &[0; 64]),
            Err(Error::AlgorithmMismatch { .. })
        ));
    }
}

#[test]
fn rsa_digest_signature_is_a_normal_signature_of_the_message() {
    let key = rsa_2048();
    let PublicKey::Rsa { n, e } = key.public_key() else {
        panic!()
    };
    let public = RsaPublicKeyComponents { n: &n, e: &e };
    let msg = b"pre-hashed RSA signing";
    let params: [(SignatureAlgorithm, &'static lc::RsaParameters); 6] = [
        (SignatureAlgorithm::Rs256, &lc::RSA_PKCS1_2048_8192_SHA256),
        (SignatureAlgorithm::Rs384, &lc::RSA_PKCS1_2048_8192_SHA384),
        (SignatureAlgorithm::Rs512, &lc::RSA_PKCS1_2048_8192_SHA512),
        (SignatureAlgorithm::Ps256, &lc::RSA_PSS_2048_8192_SHA256),
        (SignatureAlgorithm::Ps384, &lc::RSA_PSS_2048_8192_SHA384),
        (SignatureAlgorithm::Ps512, &lc::RSA_PSS_2048_8192_SHA512),
    ];
    for (alg, p) in params {
        let sig = key.sign(alg, &digest(alg, msg)).unwrap();
        public.verify(p, msg, &sig).unwrap();
        assert!(
            public.verify(p, &digest(alg, msg), &sig).is_err(),
            "{alg:?} must not double-hash"
        );
    }
}

/// A ciphertext whose padding is wrong: OAEP fails with `DecryptFailed`; RSA1_5 decrypts to a synthetic message
/// (implicit rejection): not the plaintext, at most k - 11 bytes, the same each time, different for another
/// ciphertext.
fn assert_bad_padding(key: &PrivateKey, alg: EncryptionAlgorithm, ct: &[u8], plaintext: &[u8]) {
    let out = key.decrypt(alg, ct, &no_params());
    if alg != EncryptionAlgorithm::Rsa1_5 {
        assert!(matches!(out, Err(Error::DecryptFailed)), "{alg:?}");
        return;
    }
    let synthetic = out.unwrap();
    assert_ne!(synthetic.expose_secret(), plaintext);
    assert!(synthetic.expose_secret().len() <= 245);
    let again = key.decrypt(alg, ct, &no_params()).unwrap();
    assert_eq!(synthetic.expose_secret(), again.expose_secret());
    let mut other = ct.to_vec();
    other[200] ^= 0x80;
    let other = key.decrypt(alg, &other, &no_params()).unwrap();
    assert_ne!(synthetic.expose_secret(), other.expose_secret());
}

#[test]
fn rsa_2048_encrypt_decrypt_all_algorithms() {
    let key = rsa_2048();
    let algs = [
        EncryptionAlgorithm::Rsa1_5,
        EncryptionAlgorithm::RsaOaep,
        EncryptionAlgorithm::RsaOaep256,
    ];
    // Largest plaintexts: k - 11, k - 2*20 - 2, k - 2*32 - 2.
    let max = [245, 214, 190];
    for (alg, max) in algs.into_iter().zip(max) {
        for len in [0, 1, 32, max] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let out = key.encrypt(alg, &pt, &no_params()).unwrap();
            assert_eq!(out.value.len(), 256);
            assert!(out.iv.is_none() && out.tag.is_none());
            assert_eq!(
                key.decrypt(alg, &out.value, &no_params()).unwrap().expose_secret(),
                pt.as_slice(),
                "{alg:?} {len}"
            );
        }
        let pt = vec![7u8; max + 1];
        assert!(
            matches!(key.encrypt(alg, &pt, &no_params()), Err(Error::InvalidParameter(_))),
            "{alg:?}"
        );
        // Randomized padding: two encryptions differ.
        let a = key.encrypt(alg, b"same", &no_params()).unwrap().value;
        let b = key.encrypt(alg, b"same", &no_params()).unwrap().value;
        assert_ne!(a, b);
        // Wrong length, tampering, or the wrong algorithm: all the same error.
        assert!(matches!(
            key.decrypt(alg, &a[1..], &no_params()),
            Err(Error::DecryptFailed)
        ));
        // A byte in the middle: flipping the first one could make the value exceed the modulus, which RSA1_5
        // rightly refuses (a public fact) instead of answering a synthetic message.
        let mut bad = a.clone();
        bad[100] ^= 0x01;
        assert_bad_padding(&key, alg, &bad, b"same");
        for other in algs.into_iter().filter(|o| *o != alg) {
            assert_bad_padding(&key, other, &a, b"same");
        }
        // RSA takes no iv/aad/tag.
        let iv = [0u8; 16];
        assert!(matches!(
            key.encrypt(
                alg,
                b"x",
                &CipherParams {
                    iv: Some(&iv),
                    ..Default::default()
                }
            ),
            Err(Error::InvalidParameter(_))
        ));
    }
    for alg in EncryptionAlgorithm::ALL
        .into_iter()
        .filter(|a| a.family() == KeyFamily::Oct)
    {
        assert!(matches!(
            key.encrypt(alg, &[0; 16], &no_params()),
            Err(Error::AlgorithmMismatch { .. })
        ));
    }
}

#[test]
fn rsa_4096_generation() {
    let key = PrivateKey::generate_rsa(4096).unwrap();
    assert_eq!(key.size_bits(), 4096);
    let PublicKey::Rsa { n, e } = key.public_key() else {
        panic!()
    };
    assert_eq!((n.len(), e), (512, vec![1, 0, 1]));
    let d = digest(SignatureAlgorithm::Ps512, b"4096");
    let sig = key.sign(SignatureAlgorithm::Ps512, &d).unwrap();
    assert_eq!(sig.len(), 512);
    assert!(key.verify(SignatureAlgorithm::Ps512, &d, &sig).unwrap());
    let ct = key
        .encrypt(EncryptionAlgorithm::RsaOaep256, b"k", &no_params())
        .unwrap()
        .value;
    assert_eq!(
        key.decrypt(EncryptionAlgorithm::RsaOaep256, &ct, &no_params())
            .unwrap()
            .expose_secret(),
        b"k"
    );
}

#[test]
fn rsa_generation_rejects_other_sizes() {
    for bits in [0, 1024, 2047, 2049, 8192] {
        assert!(
            matches!(PrivateKey::generate_rsa(bits), Err(Error::InvalidParameter(_))),
            "{bits}"
        );
    }
}

#[test]
fn rsa_import_from_components() {
    let c = fixed_rsa_components();
    let key = PrivateKey::import_rsa(&c).unwrap();
    assert_eq!(key.size_bits(), 2048);
    assert_eq!(
        key.public_key(),
        PublicKey::Rsa {
            n: c.n.clone(),
            e: c.e.clone()
        }
    );
    let d = digest(SignatureAlgorithm::Rs256, b"imported");
    let sig = key.sign(SignatureAlgorithm::Rs256, &d).unwrap();
    RsaPublicKeyComponents { n: &c.n, e: &c.e }
        .verify(&lc::RSA_PKCS1_2048_8192_SHA256, b"imported", &sig)
        .unwrap();

    // A leading zero byte on n (as some encoders emit) is tolerated.
    let mut padded = fixed_rsa_components();
    padded.n.insert(0, 0);
    assert_eq!(PrivateKey::import_rsa(&padded).unwrap().public_key(), key.public_key());

    // Inconsistent components are rejected.
    let mut bad = fixed_rsa_components();
    let mut dp = bad.dp.expose_secret().to_vec();
    dp[10] ^= 1;
    bad.dp = SecretBytes::new(dp);
    assert!(matches!(PrivateKey::import_rsa(&bad), Err(Error::InvalidKey(_))));
    let mut bad = fixed_rsa_components();
    bad.e = vec![3];
    assert!(matches!(PrivateKey::import_rsa(&bad), Err(Error::InvalidKey(_))));
    let mut bad = fixed_rsa_components();
    bad.n[255] ^= 2;
    assert!(matches!(PrivateKey::import_rsa(&bad), Err(Error::InvalidKey(_))));
}

// ---- Storage ----

#[test]
fn storage_bytes_round_trip() {
    // EC
    for curve in CURVES {
        let key = PrivateKey::generate_ec(curve).unwrap();
        let stored = key.to_storage_bytes().unwrap();
        let back = PrivateKey::from_storage_bytes(KeyFamily::Ec, Some(curve), stored.expose_secret()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let alg = ec_alg(curve);
        let d = digest(alg, b"stored");
        assert!(key.verify(alg, &d, &back.sign(alg, &d).unwrap()).unwrap());
        // The curve is part of what was stored.
        assert!(PrivateKey::from_storage_bytes(KeyFamily::Ec, None, stored.expose_secret()).is_err());
        let other = if curve == Curve::P384 { Curve::P521 } else { Curve::P384 };
        assert!(matches!(
            PrivateKey::from_storage_bytes(KeyFamily::Ec, Some(other), stored.expose_secret()),
            Err(Error::InvalidKey(_))
        ));
        assert!(PrivateKey::from_storage_bytes(KeyFamily::Rsa, None, stored.expose_secret()).is_err());
    }
    // RSA
    let key = rsa_2048();
    let stored = key.to_storage_bytes().unwrap();
    let back = PrivateKey::from_storage_bytes(KeyFamily::Rsa, None, stored.expose_secret()).unwrap();
    assert_eq!(back.public_key(), key.public_key());
    let ct = key
        .encrypt(EncryptionAlgorithm::RsaOaep, b"stored", &no_params())
        .unwrap()
        .value;
    assert_eq!(
        back.decrypt(EncryptionAlgorithm::RsaOaep, &ct, &no_params())
            .unwrap()
            .expose_secret(),
        b"stored"
    );
    assert!(matches!(
        PrivateKey::from_storage_bytes(KeyFamily::Rsa, None, &[0x30, 0x03, 1, 2, 3]),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        PrivateKey::from_storage_bytes(KeyFamily::Ec, Some(Curve::P256), stored.expose_secret()),
        Err(Error::InvalidKey(_))
    ));
    // AES
    for bits in [128, 192, 256] {
        let key = PrivateKey::generate_oct(bits).unwrap();
        let stored = key.to_storage_bytes().unwrap();
        assert_eq!(stored.len() * 8, bits as usize);
        let back = PrivateKey::from_storage_bytes(KeyFamily::Oct, None, stored.expose_secret()).unwrap();
        let wrapped = key
            .encrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, b"abc", &no_params())
            .unwrap()
            .value;
        assert_eq!(
            back.decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, &wrapped, &no_params())
                .unwrap()
                .expose_secret(),
            b"abc"
        );
    }
    assert!(matches!(
        PrivateKey::from_storage_bytes(KeyFamily::Oct, None, &[0; 20]),
        Err(Error::InvalidKey(_))
    ));
}

// ---- AES ----

fn aes_algs(bits: u32) -> [EncryptionAlgorithm; 4] {
    match bits {
        128 => [
            EncryptionAlgorithm::A128Cbc,
            EncryptionAlgorithm::A128CbcPad,
            EncryptionAlgorithm::A128Gcm,
            EncryptionAlgorithm::A128Kw,
        ],
        192 => [
            EncryptionAlgorithm::A192Cbc,
            EncryptionAlgorithm::A192CbcPad,
            EncryptionAlgorithm::A192Gcm,
            EncryptionAlgorithm::A192Kw,
        ],
        _ => [
            EncryptionAlgorithm::A256Cbc,
            EncryptionAlgorithm::A256CbcPad,
            EncryptionAlgorithm::A256Gcm,
            EncryptionAlgorithm::A256Kw,
        ],
    }
}

#[test]
fn aes_every_algorithm_round_trips() {
    let iv = [9u8; 16];
    let cbc = CipherParams {
        iv: Some(&iv),
        ..Default::default()
    };
    for bits in [128, 192, 256] {
        let key = PrivateKey::generate_oct(bits).unwrap();
        assert_eq!(
            (key.family(), key.size_bits(), key.public_key()),
            (KeyFamily::Oct, bits, PublicKey::Oct)
        );
        let [cbc_alg, pad_alg, gcm_alg, kw_alg] = aes_algs(bits);
        let data = [0x5au8; 48];

        for len in [0, 16, 48] {
            let out = key.encrypt(cbc_alg, &data[..len], &cbc).unwrap();
            assert_eq!(
                (out.value.len(), out.iv.as_deref(), out.tag.as_deref()),
                (len, Some(&iv[..]), None)
            );
            assert_eq!(
                key.decrypt(cbc_alg, &out.value, &cbc).unwrap().expose_secret(),
                &data[..len]
            );
        }

        for len in 0..=33 {
            let out = key.encrypt(pad_alg, &data[..len], &cbc).unwrap();
            assert_eq!(out.value.len(), (len / 16 + 1) * 16);
            assert_eq!(
                key.decrypt(pad_alg, &out.value, &cbc).unwrap().expose_secret(),
                &data[..len]
            );
        }

        for aad in [None, Some(&b"header"[..])] {
            for len in [0, 1, 16, 47] {
                let out = key
                    .encrypt(
                        gcm_alg,
                        &data[..len],
                        &CipherParams {
                            aad,
                            ..Default::default()
                        },
                    )
                    .unwrap();
                let (giv, tag) = (out.iv.unwrap(), out.tag.unwrap());
                assert_eq!((giv.len(), tag.len(), out.value.len()), (12, 16, len));
                let p = CipherParams {
                    iv: Some(&giv),
                    aad,
                    tag: Some(&tag),
                };
                assert_eq!(
                    key.decrypt(gcm_alg, &out.value, &p).unwrap().expose_secret(),
                    &data[..len]
                );
            }
        }

        for alg in [kw_alg, EncryptionAlgorithm::CkmAesKeyWrap] {
            let out = key.encrypt(alg, &data[..32], &no_params()).unwrap();
            assert_eq!(out.value.len(), 40);
            assert_eq!(
                key.decrypt(alg, &out.value, &no_params()).unwrap().expose_secret(),
                &data[..32]
            );
        }
        for len in [1, 7, 8, 9, 31] {
            let out = key
                .encrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, &data[..len], &no_params())
                .unwrap();
            assert_eq!(out.value.len(), len.div_ceil(8).max(1) * 8 + 8);
            let back = key
                .decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, &out.value, &no_params())
                .unwrap();
            assert_eq!(back.expose_secret(), &data[..len]);
        }
    }
}

#[test]
fn aes_key_size_must_match_the_algorithm() {
    let iv = [0u8; 16];
    for bits in [128, 192, 256] {
        let key = PrivateKey::generate_oct(bits).unwrap();
        for other in [128, 192, 256].into_iter().filter(|b| *b != bits) {
            for alg in aes_algs(other) {
                let p = CipherParams {
                    iv: Some(&iv),
                    ..Default::default()
                };
                assert!(
                    matches!(key.encrypt(alg, &[0; 16], &p), Err(Error::AlgorithmMismatch { .. })),
                    "{bits} with {alg:?}"
                );
                assert!(matches!(
                    key.decrypt(alg, &[0; 32], &p),
                    Err(Error::AlgorithmMismatch { .. })
                ));
            }
        }
        for alg in [
            EncryptionAlgorithm::Rsa1_5,
            EncryptionAlgorithm::RsaOaep,
            EncryptionAlgorithm::RsaOaep256,
        ] {
            assert!(matches!(
                key.encrypt(alg, b"x", &no_params()),
                Err(Error::AlgorithmMismatch { .. })
            ));
        }
        for alg in SignatureAlgorithm::ALL {
            assert!(matches!(
                key.sign(alg, &digest(alg, b"x")),
                Err(Error::AlgorithmMismatch { .. })
            ));
            assert!(matches!(
                key.verify(alg, &digest(alg, b"x"), &[0; 64]),
                Err(Error::AlgorithmMismatch { .. })
            ));
        }
    }
}

#[test]
fn aes_parameter_errors() {
    let key = PrivateKey::generate_oct(256).unwrap();
    let iv16 = [1u8; 16];
    let iv12 = [1u8; 12];
    let tag = [0u8; 16];
    macro_rules! invalid {
        ($e:expr) => {
            matches!($e, Err(Error::InvalidParameter(_)))
        };
    }

    // GCM: the service makes the IV; decrypt needs a 12-byte IV and a 16-byte tag.
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            iv: Some(&iv12),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            tag: Some(&tag),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            tag: Some(&tag),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            iv: Some(&iv12),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            iv: Some(&iv16),
            tag: Some(&tag),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256Gcm,
        b"x",
        &CipherParams {
            iv: Some(&iv12),
            tag: Some(&tag[..12]),
            ..Default::default()
        }
    )));

    // CBC: a 16-byte IV is required; no AAD, no tag; unpadded input must be whole blocks.
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Cbc,
        &[0; 16],
        &no_params()
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Cbc,
        &[0; 16],
        &CipherParams {
            iv: Some(&iv12),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Cbc,
        &[0; 15],
        &CipherParams {
            iv: Some(&iv16),
            ..Default::default()
        }
    )));
    // CBC ignores `aad`, as the service does (the SDK's recorded tests send it for every AES algorithm).
    let with_aad = key
        .encrypt(
            EncryptionAlgorithm::A256CbcPad,
            &[0; 15],
            &CipherParams {
                iv: Some(&iv16),
                aad: Some(b"aad"),
                tag: None,
            },
        )
        .unwrap();
    let without = key
        .encrypt(
            EncryptionAlgorithm::A256CbcPad,
            &[0; 15],
            &CipherParams {
                iv: Some(&iv16),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(with_aad.value, without.value);
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256Cbc,
        &[0; 17],
        &CipherParams {
            iv: Some(&iv16),
            ..Default::default()
        }
    )));
    assert!(invalid!(key.decrypt(
        EncryptionAlgorithm::A256CbcPad,
        &[0; 16],
        &no_params()
    )));

    // CBCPAD: bad padding or a partial block is a decryption failure.
    let cbc = CipherParams {
        iv: Some(&iv16),
        ..Default::default()
    };
    let raw = key
        .encrypt(EncryptionAlgorithm::A256Cbc, &[0u8; 16], &cbc)
        .unwrap()
        .value; // last byte 0: bad PKCS#7
    assert!(matches!(
        key.decrypt(EncryptionAlgorithm::A256CbcPad, &raw, &cbc),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(
        key.decrypt(EncryptionAlgorithm::A256CbcPad, &raw[..15], &cbc),
        Err(Error::DecryptFailed)
    ));

    // Key wrap: RFC 3394 needs whole 64-bit blocks, at least two; RFC 5649 needs at least one byte; no params.
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Kw,
        &[0; 8],
        &no_params()
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Kw,
        &[0; 20],
        &no_params()
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::CkmAesKeyWrapPad,
        &[],
        &no_params()
    )));
    assert!(invalid!(key.encrypt(
        EncryptionAlgorithm::A256Kw,
        &[0; 16],
        &CipherParams {
            iv: Some(&iv16),
            ..Default::default()
        }
    )));
    assert!(matches!(
        key.decrypt(EncryptionAlgorithm::A256Kw, &[0; 20], &no_params()),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(
        key.decrypt(EncryptionAlgorithm::A256Kw, &[0; 24], &no_params()),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(
        key.decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, &[0; 16], &no_params()),
        Err(Error::DecryptFailed)
    ));
    let k192 = PrivateKey::generate_oct(192).unwrap();
    assert!(invalid!(k192.encrypt(
        EncryptionAlgorithm::A192Kw,
        &[0; 12],
        &no_params()
    )));
    assert!(matches!(
        k192.decrypt(EncryptionAlgorithm::A192Kw, &[0; 24], &no_params()),
        Err(Error::DecryptFailed)
    ));
    assert!(matches!(
        k192.decrypt(EncryptionAlgorithm::CkmAesKeyWrapPad, &[0; 16], &no_params()),
        Err(Error::DecryptFailed)
    ));

    // Key creation.
    assert!(invalid!(PrivateKey::generate_oct(64)));
    assert!(invalid!(PrivateKey::generate_oct(512)));
    for len in [0, 15, 17, 31, 33, 64] {
        assert!(matches!(
            PrivateKey::import_oct(SecretBytes::new(vec![0; len])),
            Err(Error::InvalidKey(_))
        ));
    }
}

#[test]
fn debug_output_shows_no_material() {
    let key = PrivateKey::import_oct(SecretBytes::new(vec![0xab; 16])).unwrap();
    assert_eq!(format!("{key:?}"), "PrivateKey(..)");
    let c = fixed_rsa_components();
    assert!(!format!("{c:?}").contains("ab"));
}

#[test]
fn public_key_verify_matches_private_verify() {
    for curve in CURVES {
        let key = PrivateKey::generate_ec(curve).unwrap();
        let alg = ec_alg(curve);
        let d = digest(alg, b"public");
        let sig = key.sign(alg, &d).unwrap();
        let public = key.public_key();
        assert!(public.verify(alg, &d, &sig).unwrap());
        assert!(!public.verify(alg, &digest(alg, b"other"), &sig).unwrap());
        assert!(matches!(
            public.verify(SignatureAlgorithm::Rs256, &[0; 32], &sig),
            Err(Error::AlgorithmMismatch { .. })
        ));
        let PublicKey::Ec { x, y, .. } = public else { panic!() };
        let too_long = PublicKey::Ec {
            curve,
            x: [vec![1], x].concat(),
            y,
        };
        assert!(matches!(too_long.verify(alg, &d, &sig), Err(Error::InvalidKey(_))));
    }
    let key = rsa_2048();
    let d = digest(SignatureAlgorithm::Ps384, b"public");
    let sig = key.sign(SignatureAlgorithm::Ps384, &d).unwrap();
    assert!(key.public_key().verify(SignatureAlgorithm::Ps384, &d, &sig).unwrap());
    assert!(!key.public_key().verify(SignatureAlgorithm::Rs384, &d, &sig).unwrap());
    let short = PublicKey::Rsa {
        n: vec![0xc5; 128],
        e: vec![1, 0, 1],
    };
    assert!(
        !short
            .verify(SignatureAlgorithm::Rs256, &[0; 32], &[0; 128])
            .unwrap_or(false)
    );
    assert!(matches!(
        PublicKey::Oct.verify(SignatureAlgorithm::Es256, &[0; 32], &[0; 64]),
        Err(Error::AlgorithmMismatch { .. })
    ));
}
