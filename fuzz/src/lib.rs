//! Fixtures shared by the fuzz targets: keys made at run time by `gen-seeds` (never committed) and loaded from
//! `$COFFER_FUZZ_WORK/fixtures` (default `work/fixtures`; [`init`] makes them and the seeds), so that seeds built for them (security-domain files,
//! restore blobs, `.byok` blobs, signed tokens) get past the decryption or signature step in the targets.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "fuzzing fixtures: a missing fixture is a setup error"
)]

use std::path::PathBuf;
use std::sync::OnceLock;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_crypto::keys::Curve;
use coffer_crypto::security_domain as sd;
use serde_json::json;

use coffer_crypto::SecretBytes;
use coffer_crypto::jwt::TokenSigningKey;
use coffer_crypto::keys::PrivateKey;
use coffer_crypto::security_domain::RsaCertified;

/// The work directory (fixtures, corpora, artifacts).
pub fn work_dir() -> PathBuf {
    std::env::var_os("COFFER_FUZZ_WORK").map_or_else(|| PathBuf::from("work"), PathBuf::from)
}

/// Keys the seeds were made with.
pub struct Fixtures {
    /// Three security-domain officers (quorum 2); the first is also the exchange key of restore blobs.
    pub officers: Vec<RsaCertified>,
    /// The key that signs seed tokens, and its JWKS.
    pub signer: TokenSigningKey,
    /// `{"keys":[signer's public JWK]}`.
    pub jwks: serde_json::Value,
    /// The RSA key-exchange key of `.byok` seeds.
    pub kek: PrivateKey,
    /// The direct-encryption key of JWE (`dir`) seeds.
    pub cek: SecretBytes,
}

fn read(name: &str) -> Vec<u8> {
    let p = work_dir().join("fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run gen-seeds first)", p.display()))
}

/// The fixtures (loaded once per process).
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let officers = (1..=3)
            .map(|i| {
                let key = read(&format!("officer{i}.key.pem"));
                let cert = String::from_utf8(read(&format!("officer{i}.cert.pem"))).unwrap();
                RsaCertified::from_pem(&key, &cert).unwrap()
            })
            .collect();
        let signer = TokenSigningKey::from_pkcs8(&SecretBytes::new(read("signer.pk8"))).unwrap();
        let jwks = serde_json::json!({"keys": [signer.public_jwk()]});
        let kek = PrivateKey::from_pkcs8(&read("kek.pk8")).unwrap();
        let cek = SecretBytes::new(read("cek.bin"));
        Fixtures {
            officers,
            signer,
            jwks,
            kek,
            cek,
        }
    })
}

/// Issuer and audience of seed tokens.
pub const ISSUER: &str = "https://coffer.fuzz";
/// Audience of seed tokens.
pub const AUDIENCE: &str = "https://coffer.fuzz";
/// "Now" for token checks (seed tokens are valid at this time).
pub const NOW: u64 = 1_800_000_000;

fn put(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

/// Makes the fixtures (keys, at run time: none is committed) and the seed corpora of every target under `work`,
/// with Coffer's own writers: real security-domain files and restore blobs, `.byok` blobs, key backup and
/// full-backup documents, signed tokens, policies, request bodies.
pub fn generate(work: &Path) {
    let fx = work.join("fixtures");
    let seeds = work.join("seeds");
    // Fixtures.
    let officers: Vec<_> = (1..=3)
        .map(|i| sd::generate_rsa_certified(2048, &format!("fuzz officer {i}")).unwrap())
        .collect();
    for (i, o) in officers.iter().enumerate() {
        put(&fx, &format!("officer{}.key.pem", i + 1), o.key_pem().expose_secret());
        put(&fx, &format!("officer{}.cert.pem", i + 1), o.cert_pem().as_bytes());
    }
    let signer = TokenSigningKey::generate().unwrap();
    put(&fx, "signer.pk8", signer.to_pkcs8().unwrap().expose_secret());
    let kek = PrivateKey::generate_rsa(2048).unwrap();
    put(&fx, "kek.pk8", kek.to_storage_bytes().unwrap().expose_secret());
    let cek = coffer_crypto::random::bytes(sd::CEK_LEN).unwrap();

    // Security domain: a file for both officers, a restore blob for officer 1, a `dir` JWE.
    let secret = SecretBytes::new(vec![7; 32]);
    let items = [("mhsm-sd-1", secret.expose_secret())];
    let certs: Vec<Vec<u8>> = officers.iter().map(|o| o.cert_der.clone()).collect();
    let sd_file = sd::build_security_domain(&items, &certs, 2).unwrap();
    let dir = seeds.join("security_domain");
    put(&dir, "file.json", sd_file.as_bytes());
    let recovered = sd::recover_items(&sd_file, &officers).unwrap();
    let blob = sd::make_restore_blob(&recovered, &officers[0].cert_der).unwrap();
    put(&dir, "restore-blob.json", blob.as_bytes());
    let cek_copy = cek.clone();
    let jwe = sd::jwe_encrypt_dir(&SecretBytes::new(cek), "kid", b"{\"a\":1}").unwrap();
    put(&dir, "dir.jwe", jwe.as_bytes());

    // .byok blobs for the KEK, of an RSA, an EC and an AES key.
    let dir = seeds.join("byok");
    let targets = [
        PrivateKey::generate_rsa(2048).unwrap(),
        PrivateKey::generate_ec(Curve::P256).unwrap(),
        PrivateKey::generate_oct(256).unwrap(),
    ];
    for (i, t) in targets.iter().enumerate() {
        let ct = coffer_crypto::byok::byok_wrap(&kek.public_key(), 32, t.to_storage_bytes().unwrap().expose_secret())
            .unwrap();
        let file = json!({"schema_version": "1.0.0",
            "header": {"kid": "https://hsm.fuzz/keys/kek/0123", "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
            "ciphertext": B64.encode(&ct), "generator": "coffer gen-seeds"});
        put(&dir, &format!("blob{i}.byok"), file.to_string().as_bytes());
    }

    // Key backups (opened) of each family, and a full-backup state document.
    let dir = seeds.join("key_backup");
    for (t, kty) in targets.iter().zip(["RSA", "EC", "oct"]) {
        let blob = coffer_core::ops::backup_restore::fuzz_sample_opened_blob(t, kty).unwrap();
        put(&dir, &format!("{kty}.json"), &blob);
    }
    put(
        &seeds.join("full_backup"),
        "state.json",
        &coffer_core::ops::full_backup::fuzz_sample_opened_state(),
    );

    // Tokens: a bearer token, an attestation-like token, claims objects.
    let dir = seeds.join("jwt");
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "oid": "o", "tid": "t",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600, "x-ms-attestation-type": "sevsnpvm",
        "x-ms-compliance-status": "azure-compliant-cvm", "x-ms-runtime": {"keys": [{"kid": "TpmEphemeralEncryptionKey"}]}});
    put(&dir, "token.jwt", signer.sign(&claims).unwrap().as_bytes());
    put(&dir, "claims.json", claims.to_string().as_bytes());
    put(
        &dir,
        "assertion.jwt",
        b"eyJhbGciOiJSUzI1NiIsIng1dCI6ImFiYyJ9.eyJhdWQiOiJ4In0.c2ln",
    );

    // $filter expressions.
    let dir = seeds.join("filter");
    for (i, f) in [
        "atScope()",
        "atScopeAndBelow()",
        "principalId eq 'abc'",
        "roleName eq 'Managed HSM Crypto User'",
        "/keys/k1",
    ]
    .iter()
    .enumerate()
    {
        put(&dir, &format!("f{i}"), f.as_bytes());
    }

    // Release policies (with claims after a newline).
    let dir = seeds.join("release_policy");
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": "https://attest.fuzz",
        "allOf": [{"claim": "x-ms-attestation-type", "equals": "sevsnpvm"},
                  {"claim": "x-ms-compliance-status", "equals": "azure-compliant-cvm"}]}]});
    let claims = json!({"iss": "https://attest.fuzz", "x-ms-attestation-type": "sevsnpvm",
        "x-ms-compliance-status": "azure-compliant-cvm"});
    put(&dir, "policy", format!("{policy}\n{claims}").as_bytes());
    let policy = json!({"version": "1.0.0", "anyOf": [{"authority": "https://a.fuzz", "anyOf": [
        {"claim": "sub", "equals": true}, {"claim": "x", "exists": true}]}]});
    put(&dir, "policy2", format!("{policy}\n{{}}").as_bytes());

    // Request bodies.
    let dir = seeds.join("request_bodies");
    let (rsa, ec) = (&targets[0], &targets[1]);
    let jwk_of = |k: &PrivateKey| match k.public_key() {
        coffer_crypto::keys::PublicKey::Rsa { n, e } => json!({"kty": "RSA", "n": B64.encode(n), "e": B64.encode(e)}),
        coffer_crypto::keys::PublicKey::Ec { x, y, .. } => {
            json!({"kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y)})
        }
        coffer_crypto::keys::PublicKey::Oct => json!({"kty": "oct"}),
    };
    let bodies = [
        json!({"kty": "RSA-HSM", "key_size": 2048, "key_ops": ["sign", "verify"], "attributes": {"enabled": true, "exp": 1900000000}, "tags": {"a": "b"}}),
        json!({"kty": "EC-HSM", "crv": "P-256", "release_policy": {"contentType": "application/json; charset=utf-8", "data": B64.encode(policy.to_string())}}),
        json!({"key": jwk_of(rsa), "Hsm": true}),
        json!({"key": jwk_of(ec)}),
        json!({"key": {"kty": "oct-HSM", "k": B64.encode([1u8; 32])}}),
        json!({"alg": "RSA-OAEP-256", "value": B64.encode([2u8; 256])}),
        json!({"alg": "A256GCM", "value": "aGVsbG8", "iv": B64.encode([0u8; 12]), "aad": "YQ", "tag": B64.encode([0u8; 16])}),
        json!({"alg": "ES256", "value": B64.encode([3u8; 32])}),
        json!({"alg": "PS256", "digest": B64.encode([3u8; 32]), "value": B64.encode([4u8; 256])}),
        json!({"target": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "enc": "CKM_RSA_AES_KEY_WRAP", "nonce": "n"}),
        json!({"count": 32}),
        json!({"properties": {"roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", "principalId": "33333333-3333-3333-3333-333333333333"}}),
        json!({"properties": {"roleName": "r", "description": "d", "type": "CustomRole", "permissions": [{"dataActions": ["Microsoft.KeyVault/managedHsm/keys/read/action"], "notDataActions": []}], "assignableScopes": ["/"]}}),
    ];
    for (i, b) in bodies.iter().enumerate() {
        put(&dir, &format!("body{i}.json"), b.to_string().as_bytes());
    }
    // Written last: its presence means the fixtures and seeds are complete.
    put(&fx, "cek.bin", &cek_copy);
}

/// Called at the start of every target (libFuzzer's initialize hook, before it reads the corpora): generates the
/// fixtures and seeds once, when the work directory has none.
pub fn init() {
    let work = work_dir();
    if !work.join("fixtures").join("cek.bin").exists() {
        generate(&work);
    }
}
