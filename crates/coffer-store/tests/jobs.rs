//! Background jobs against real SQLite with an injected clock (no sleeps): deleted keys are purged when their
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
//! retention ends, even under purge protection; keys rotate when their policy says so, and only then.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use coffer_core::audit::{AuditLog, AuditSink, ChainHead, ChainedRecord};
use coffer_core::clock::FixedClock;
use coffer_core::hsm::HsmConfig;
use coffer_core::identity::TokenRequest;
use coffer_core::instance::{CreateOptions, KeySealProvider};
use coffer_core::ops::KeyProperties;
use coffer_core::ops::create_import::CreateKeyRequest;
use coffer_core::ops::role_assignments::AssignmentOptions;
use coffer_core::ops::rotation::RotationPolicyRequest;
use coffer_core::rbac::{Scope, builtin};
use coffer_core::{Hsm, Principal};
use coffer_crypto::SecretBytes;
use coffer_store::SqlStore;

const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;

async fn hsm(
    dir: &std::path::Path,
    clock: Arc<FixedClock>,
    retention: i64,
    purge_protection: bool,
) -> (Hsm, Principal, Captured) {
    let store = SqlStore::open_sqlite(&dir.join("coffer.db")).await.unwrap();
    let seal = Arc::new(KeySealProvider::new(SecretBytes::new(vec![7u8; 32])).unwrap());
    let config = HsmConfig {
        security_domain_redownload_without_quorum: false,
        public_url: "https://127.0.0.1:1".into(),
        resource: "https://127.0.0.1:1".into(),
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
        soft_delete_retention_days: retention,
        purge_protection,
        administrators: Vec::new(),
        recovery: false,
    };
    let (mut hsm, creds) = Hsm::open_or_create(Arc::new(store), clock, seal, config, &create)
        .await
        .unwrap();
    let captured = Captured::default();
    let log = AuditLog::start(
        vec![Box::new(MemorySink(Arc::clone(&captured.0)))],
        ChainHead::genesis(),
        hsm.audit_mac_key(),
        true,
    )
    .unwrap();
    hsm.set_audit_log(Arc::new(log));
    let creds = creds.unwrap();
    let token = hsm
        .issue_token(
            TokenRequest {
                grant_type: Some("client_credentials".into()),
                client_id: Some(creds.client_id.clone()),
                client_secret: Some(creds.client_secret.duplicate()),
                scope: Some("https://127.0.0.1:1/.default".into()),
                ..TokenRequest::default()
            },
            "",
        )
        .await
        .unwrap();
    let admin = hsm.authenticate(&token.access_token).await.unwrap();
    for (i, role) in [builtin::CRYPTO_USER, builtin::CRYPTO_OFFICER].iter().enumerate() {
        let name = format!("00000000-0000-0000-0000-00000000000{i}");
        hsm.create_role_assignment(
            &admin,
            &Scope::Root,
            &name,
            role,
            &admin.object_id,
            AssignmentOptions::default(),
        )
        .await
        .unwrap();
    }
    (hsm, admin, captured)
}

/// Audit lines written by the jobs (an in-memory sink).
#[derive(Default, Clone)]
struct Captured(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Captured {
    /// Records of one operation, parsed.
    fn records(&self, operation: &str) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap())
            .filter(|r| r["operationName"] == operation)
            .collect()
    }
}

struct MemorySink(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl AuditSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }
    fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        self.0.lock().unwrap().extend(batch.iter().map(|r| r.line.clone()));
        Ok(())
    }
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

#[tokio::test]
async fn deleted_keys_are_purged_when_retention_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let (hsm, p, audit) = hsm(dir.path(), Arc::clone(&clock), 7, true).await;
    hsm.create_key(&p, ec("a")).await.unwrap();
    hsm.create_key(&p, ec("b")).await.unwrap();
    hsm.delete_key(&p, "a").await.unwrap();
    clock.0.store(T0 + 3 * DAY, Ordering::SeqCst);
    hsm.delete_key(&p, "b").await.unwrap();
    // Under purge protection, an explicit purge is refused...
    assert!(matches!(
        hsm.purge_key(&p, "a").await,
        Err(coffer_core::Error::Forbidden(_))
    ));
    // ...and the job purges nothing before the retention ends.
    clock.0.store(T0 + 7 * DAY - 1, Ordering::SeqCst);
    assert!(hsm.purge_expired().await.unwrap().is_empty());
    clock.0.store(T0 + 7 * DAY, Ordering::SeqCst);
    assert_eq!(hsm.purge_expired().await.unwrap(), vec!["a".to_string()]);
    assert!(hsm.get_deleted_key(&p, "a").await.is_err());
    assert!(
        hsm.get_deleted_key(&p, "b").await.is_ok(),
        "b's retention runs 3 days longer"
    );
    clock.0.store(T0 + 10 * DAY, Ordering::SeqCst);
    assert_eq!(hsm.purge_expired().await.unwrap(), vec!["b".to_string()]);
    // The name is free again.
    hsm.create_key(&p, ec("a")).await.unwrap();
    // Each purge by the job is in the audit log, as the service itself, with the deleted key's id.
    let purges = audit.records("KeyPurge");
    assert_eq!(purges.len(), 2, "{purges:?}");
    assert_eq!(purges[0]["properties"]["id"], "https://127.0.0.1:1/deletedkeys/a");
    assert_eq!(purges[1]["properties"]["id"], "https://127.0.0.1:1/deletedkeys/b");
    for r in &purges {
        assert_eq!(r["identity"]["claim"]["appid"], "coffer-background-jobs");
        assert_eq!(r["resultSignature"], "OK");
        assert_eq!(r["category"], "AuditEvent");
    }
}

#[tokio::test]
async fn keys_rotate_when_due_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock(AtomicI64::new(T0)));
    let (hsm, p, audit) = hsm(dir.path(), Arc::clone(&clock), 90, false).await;
    let v1 = hsm.create_key(&p, ec("r")).await.unwrap();
    let policy = RotationPolicyRequest {
        actions: vec![("Rotate".into(), Some("P30D".into()), None)],
        expiry_time: Some("P60D".into()),
    };
    hsm.put_rotation_policy(&p, "r", policy).await.unwrap();
    clock.0.store(T0 + 30 * DAY - 1, Ordering::SeqCst);
    assert!(hsm.rotate_due().await.unwrap().rotated.is_empty());
    clock.0.store(T0 + 30 * DAY, Ordering::SeqCst);
    assert_eq!(hsm.rotate_due().await.unwrap().rotated, vec!["r".to_string()]);
    let v2 = hsm.get_key(&p, "r", None).await.unwrap();
    assert_ne!(v2.version, v1.version);
    assert_eq!(v2.attributes.created, T0 + 30 * DAY);
    assert_eq!(v2.attributes.expires, Some(T0 + 90 * DAY), "exp = rotation time + P60D");
    // Re-armed from the new version: nothing more until 30 days after it.
    assert!(hsm.rotate_due().await.unwrap().rotated.is_empty());
    clock.0.store(T0 + 60 * DAY, Ordering::SeqCst);
    assert_eq!(hsm.rotate_due().await.unwrap().rotated.len(), 1);
    // A disabled key is not rotated automatically.
    let disable = KeyProperties {
        enabled: Some(false),
        ..KeyProperties::default()
    };
    hsm.update_key(&p, "r", None, disable).await.unwrap();
    clock.0.store(T0 + 200 * DAY, Ordering::SeqCst);
    assert!(hsm.rotate_due().await.unwrap().rotated.is_empty());
    // Two scheduled rotations, two KeyRotateIfDue records naming the new versions.
    let rotations = audit.records("KeyRotateIfDue");
    assert_eq!(rotations.len(), 2, "{rotations:?}");
    assert_eq!(
        rotations[0]["properties"]["id"],
        format!("https://127.0.0.1:1/keys/r/{}", v2.version.as_str())
    );
    assert_eq!(rotations[0]["properties"]["details"]["keyProperties"]["curve"], "P-256");
}
