//! Two `Hsm`s over one SQLite file (the seam the high-availability issue feeds): the second one decides on its own
//! in-memory state, so a change made through the first reaches it only when it reloads that state, and every
//! reload publishes a higher generation.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use coffer_core::clock::FixedClock;
use coffer_core::hsm::HsmConfig;
use coffer_core::identity::TokenRequest;
use coffer_core::instance::{CreateOptions, KeySealProvider};
use coffer_core::ops::KeyProperties;
use coffer_core::ops::create_import::CreateKeyRequest;
use coffer_core::ops::role_assignments::AssignmentOptions;
use coffer_core::rbac::{Scope, builtin};
use coffer_core::{Error, Hsm, Principal};
use coffer_crypto::SecretBytes;
use coffer_store::SqlStore;

const T0: i64 = 1_800_000_000;
const URL: &str = "https://127.0.0.1:1";
/// SHA-256 of "".
const DIGEST: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Opens (creating it the first time) the instance in `dir/coffer.db`; the bootstrap credentials when created.
async fn open(dir: &std::path::Path, clock: Arc<FixedClock>) -> (Hsm, Option<(String, SecretBytes)>) {
    let store = SqlStore::open_sqlite(&dir.join("coffer.db")).await.unwrap();
    let seal = Arc::new(KeySealProvider::new(SecretBytes::new(vec![7u8; 32])).unwrap());
    let config = HsmConfig {
        security_domain_redownload_without_quorum: false,
        public_url: URL.into(),
        resource: URL.into(),
        token_lifetime_secs: 3600,
        key_cache_capacity: 100,
        external_issuers: Vec::new(),
        attestation_authorities: Vec::new(),
        separation_of_duties: coffer_core::rbac::SeparationOfDuties::Off,
        audit_resource_id: None,
    };
    let create = CreateOptions {
        instance_name: "t".into(),
        dev: true,
        soft_delete_retention_days: 90,
        purge_protection: false,
        administrators: Vec::new(),
        recovery: false,
    };
    let (hsm, creds) = Hsm::open_or_create(Arc::new(store), clock, seal, config, &create)
        .await
        .unwrap();
    (hsm, creds.map(|c| (c.client_id, c.client_secret)))
}

/// A client-credentials token from `hsm`'s token service.
async fn token(hsm: &Hsm, client_id: &str, secret: &SecretBytes) -> String {
    hsm.issue_token(
        TokenRequest {
            grant_type: Some("client_credentials".into()),
            client_id: Some(client_id.to_string()),
            client_secret: Some(secret.duplicate()),
            scope: Some(format!("{URL}/.default")),
            ..TokenRequest::default()
        },
        "",
    )
    .await
    .unwrap()
    .access_token
}

fn ec(name: &str) -> CreateKeyRequest {
    CreateKeyRequest {
        name: name.into(),
        kty: "EC".into(),
        key_size: None,
        public_exponent: None,
        curve: Some("P-256".into()),
        properties: KeyProperties::default(),
    }
}

async fn assign(hsm: &Hsm, admin: &Principal, name: &str, role: &str, to: &str) {
    hsm.create_role_assignment(admin, &Scope::Root, name, role, to, AssignmentOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_second_hsm_over_the_same_database_sees_changes_after_it_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let (first, creds) = open(dir.path(), Arc::clone(&clock)).await;
    let (client_id, secret) = creds.unwrap();
    let admin_token = token(&first, &client_id, &secret).await;
    let admin = first.authenticate(&admin_token).await.unwrap();
    assign(
        &first,
        &admin,
        "00000000-0000-0000-0000-000000000001",
        builtin::CRYPTO_OFFICER,
        &admin.object_id,
    )
    .await;
    assign(
        &first,
        &admin,
        "00000000-0000-0000-0000-000000000002",
        builtin::CRYPTO_USER,
        &admin.object_id,
    )
    .await;

    // The second process: it loads what is stored now (the admin and its assignments).
    let (second, none) = open(dir.path(), Arc::clone(&clock)).await;
    assert!(none.is_none(), "the instance exists: no new bootstrap credentials");
    let admin2 = second.authenticate(&admin_token).await.unwrap();
    let g0 = second.view().generation;

    // A key created through the first is unknown to the second until it reloads.
    let created = first.create_key(&admin, ec("k")).await.unwrap();
    assert!(
        first.view().key(&created.name).is_some(),
        "the writer publishes at once"
    );
    assert!(
        matches!(second.get_key(&admin2, "k", None).await, Err(Error::KeyNotFound(_))),
        "not reloaded yet"
    );
    assert!(matches!(
        second.sign(&admin2, "k", None, "ES256", &DIGEST).await,
        Err(Error::KeyNotFound(_))
    ));
    assert_eq!(second.view().generation, g0, "nothing was published in the second");
    let g1 = second.reload_state().await.unwrap();
    assert!(g1 > g0, "{g1} > {g0}");
    assert_eq!(second.view().generation, g1);
    let got = second.get_key(&admin2, "k", None).await.unwrap();
    assert_eq!(got.version, created.version);
    // Its material is read from the shared store (the second's key cache never held it).
    let signed = second.sign(&admin2, "k", None, "ES256", &DIGEST).await.unwrap();
    assert_eq!(signed.version, created.version.as_str());

    // A principal and a role assignment created through the first.
    let app = first.create_principal(&admin, "app").await.unwrap();
    let app_token = token(&first, &app.record.client_id, &app.client_secret).await;
    assert!(
        matches!(second.authenticate(&app_token).await, Err(Error::Unauthenticated)),
        "the second does not know the principal yet"
    );
    assert_eq!(second.reload_state().await.unwrap(), g1 + 1);
    let app2 = second.authenticate(&app_token).await.unwrap();
    assert!(matches!(
        second.get_key(&app2, "k", None).await,
        Err(Error::Forbidden(_))
    ));
    assign(
        &first,
        &admin,
        "00000000-0000-0000-0000-000000000003",
        builtin::CRYPTO_USER,
        &app.record.object_id,
    )
    .await;
    assert!(first.get_key(&admin, "k", None).await.is_ok());
    assert!(
        matches!(second.get_key(&app2, "k", None).await, Err(Error::Forbidden(_))),
        "the assignment is not in the second's state before it reloads"
    );
    let g3 = second.reload_state().await.unwrap();
    assert!(g3 > g1 + 1);
    assert_eq!(second.get_key(&app2, "k", None).await.unwrap().version, created.version);

    // A deletion through the first: the second still decides on its old state until it reloads.
    first.delete_key(&admin, "k").await.unwrap();
    assert!(matches!(
        first.get_key(&admin, "k", None).await,
        Err(Error::KeyNotFound(_))
    ));
    assert!(second.get_key(&app2, "k", None).await.is_ok(), "stale until reloaded");
    let g4 = second.reload_state().await.unwrap();
    assert!(g4 > g3);
    assert!(matches!(
        second.get_key(&app2, "k", None).await,
        Err(Error::KeyNotFound(_))
    ));
    // And a principal deleted through the first: its token ends in the second once it reloads.
    first.delete_principal(&admin, &app.record.object_id).await.unwrap();
    second.reload_state().await.unwrap();
    assert!(matches!(
        second.authenticate(&app_token).await,
        Err(Error::Unauthenticated)
    ));
}

#[tokio::test]
async fn a_write_through_a_stale_hsm_does_not_undo_a_change_made_through_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let (first, creds) = open(dir.path(), Arc::clone(&clock)).await;
    let (client_id, secret) = creds.unwrap();
    let admin_token = token(&first, &client_id, &secret).await;
    let admin = first.authenticate(&admin_token).await.unwrap();
    for (i, role) in [builtin::CRYPTO_OFFICER, builtin::CRYPTO_USER].iter().enumerate() {
        assign(
            &first,
            &admin,
            &format!("00000000-0000-0000-0000-00000000000{i}"),
            role,
            &admin.object_id,
        )
        .await;
    }
    first.create_key(&admin, ec("k")).await.unwrap();
    let (second, _) = open(dir.path(), Arc::clone(&clock)).await;
    let admin2 = second.authenticate(&admin_token).await.unwrap();
    // The first disables the key; the second, not reloaded yet, changes only its tags.
    let disable = KeyProperties {
        enabled: Some(false),
        ..KeyProperties::default()
    };
    first.update_key(&admin, "k", None, disable).await.unwrap();
    let tags = KeyProperties {
        tags: Some([("a".to_string(), "b".to_string())].into_iter().collect()),
        ..KeyProperties::default()
    };
    let r = second.update_key(&admin2, "k", None, tags).await;
    // Either the stale write is refused, or it changes only what it was asked to: never re-enables the key.
    if r.is_ok() {
        first.reload_state().await.unwrap();
        let k = first.get_key(&admin, "k", None).await.unwrap();
        assert!(
            !k.attributes.enabled,
            "a tags-only update through a stale Hsm re-enabled a key the other Hsm had disabled"
        );
    }
}
