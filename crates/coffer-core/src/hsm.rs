//! `Hsm`: the service object. It owns the unsealed root of trust, the key cache and the ports, and every
//! operation (in `ops/`) is a method on it that takes the caller as `&Principal`.
use std::sync::{Arc, RwLock};

use coffer_crypto::jwt::TokenSigningKey;
use coffer_crypto::keys::PrivateKey;

use crate::cache::KeyCache;
use crate::clock::Clock;
use crate::instance::{
    self, BootstrapCredentials, CreateOptions, DerivedKeys, SealProvider, domain_secret_aad, material_aad,
    token_key_aad,
};
use crate::key::KeyVersionRecord;
use crate::rbac::{DataAction, Scope};
use crate::store::{InstanceRecord, LifecycleState, Store};
use crate::{Error, Principal};

/// Settings that are not part of the stored instance.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// `https://host:port` as clients reach the server (no trailing slash): used in `kid`, issuer, links.
    pub public_url: String,
    /// The challenge `resource`, which is also the token audience.
    pub resource: String,
    /// Lifetime of issued tokens, seconds.
    pub token_lifetime_secs: i64,
    /// How many unsealed keys to keep in memory.
    pub key_cache_capacity: usize,
    /// Trusted external OIDC issuers.
    pub external_issuers: Vec<crate::issuers::ExternalIssuer>,
    /// Trusted attestation authorities for Secure Key Release (their `jwks`; `audiences` unused).
    pub attestation_authorities: Vec<crate::issuers::ExternalIssuer>,
    /// Separation-of-duties policy for new assignments.
    pub separation_of_duties: crate::rbac::SeparationOfDuties,
    /// `resourceId` of audit records (default: the Azure layout with the instance name).
    pub audit_resource_id: Option<String>,
}

/// The Managed HSM service.
pub struct Hsm {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) instance: InstanceRecord,
    pub(crate) keys: RwLock<Arc<DerivedKeys>>,
    pub(crate) token_key: RwLock<Arc<TokenSigningKey>>,
    pub(crate) state: RwLock<LifecycleState>,
    pub(crate) seal: Arc<dyn SealProvider>,
    pub(crate) sealed_domain_secret: RwLock<Vec<u8>>,
    pub(crate) purge_protection: std::sync::atomic::AtomicBool,
    pub(crate) backup_storage: Option<Arc<dyn crate::backup_storage::BackupStorage>>,
    pub(crate) jobs: std::sync::Mutex<std::collections::HashMap<String, crate::ops::full_backup::JobStatus>>,
    pub(crate) job_running: std::sync::atomic::AtomicBool,
    pub(crate) restoring: std::sync::atomic::AtomicBool,
    pub(crate) cache: KeyCache,
    pub(crate) config: HsmConfig,
    pub(crate) key_sets: crate::issuers::KeySetCache,
    pub(crate) fetcher: Option<Arc<dyn crate::issuers::KeySetFetcher>>,
    pub(crate) last_use: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    pub(crate) audit: Option<Arc<crate::audit::AuditLog>>,
    pub(crate) audit_defaults: crate::audit::record::RecordDefaults,
    pub(crate) audit_reader: Option<Arc<dyn crate::audit::query::AuditReader>>,
    pub(crate) network: RwLock<Arc<crate::network::NetworkAcls>>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("instance_id", &self.instance.instance_id)
            .finish_non_exhaustive()
    }
}

impl Hsm {
    /// Opens the instance in `store`, creating it first when the store is empty. On creation the bootstrap
    /// credentials are returned (once; they are not stored in the clear anywhere).
    pub async fn open_or_create(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        seal: Arc<dyn SealProvider>,
        config: HsmConfig,
        create: &CreateOptions,
    ) -> Result<(Self, Option<BootstrapCredentials>), Error> {
        let (record, credentials) = match store.instance().await? {
            Some(r) => (r, None),
            None => {
                let new = instance::new_instance(seal.as_ref(), create, clock.now())?;
                store
                    .create_instance(&new.record, &new.bootstrap, &new.assignments)
                    .await?;
                tracing::info!(instance_id = %new.record.instance_id, tenant_id = %new.record.tenant_id, "instance created");
                (new.record, Some(new.credentials))
            }
        };
        let domain_secret = seal.open(&domain_secret_aad(&record.instance_id), &record.sealed_domain_secret)?;
        let keys = DerivedKeys::derive(&domain_secret)?;
        drop(domain_secret);
        let token_pkcs8 = coffer_crypto::seal::open(
            &keys.token,
            &token_key_aad(&record.instance_id),
            &record.sealed_token_key,
        )?;
        let token_key = TokenSigningKey::from_pkcs8(&token_pkcs8)?;
        let cache = KeyCache::new(config.key_cache_capacity);
        let audit_defaults = crate::audit::record::RecordDefaults {
            resource_id: config
                .audit_resource_id
                .clone()
                .unwrap_or_else(|| crate::audit::record::RecordDefaults::default_resource_id(&record.instance_name)),
            tenant_id: record.tenant_id.clone(),
            pool_name: record.instance_name.clone(),
        };
        Ok((
            Self {
                store,
                clock,
                state: RwLock::new(record.state),
                sealed_domain_secret: RwLock::new(record.sealed_domain_secret.clone()),
                purge_protection: std::sync::atomic::AtomicBool::new(record.purge_protection),
                backup_storage: None,
                jobs: std::sync::Mutex::default(),
                job_running: std::sync::atomic::AtomicBool::new(false),
                restoring: std::sync::atomic::AtomicBool::new(false),
                instance: record,
                keys: RwLock::new(Arc::new(keys)),
                token_key: RwLock::new(Arc::new(token_key)),
                seal,
                cache,
                config,
                key_sets: crate::issuers::KeySetCache::default(),
                fetcher: None,
                last_use: std::sync::Mutex::default(),
                audit: None,
                audit_defaults,
                audit_reader: None,
                network: RwLock::new(Arc::new(crate::network::NetworkAcls::parse(
                    crate::network::NetworkAclsDoc::default(),
                )?)),
            },
            credentials,
        ))
    }

    /// The tenant this instance serves.
    pub fn tenant_id(&self) -> &str {
        &self.instance.tenant_id
    }

    /// The instance record (no secrets in the clear).
    pub fn instance(&self) -> &InstanceRecord {
        &self.instance
    }

    /// The configuration.
    pub fn config(&self) -> &HsmConfig {
        &self.config
    }

    /// The keys derived from the current domain secret.
    pub(crate) fn derived(&self) -> Arc<DerivedKeys> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The current token-signing key.
    pub(crate) fn token_key(&self) -> Arc<TokenSigningKey> {
        match self.token_key.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The security-domain lifecycle state.
    pub fn state(&self) -> LifecycleState {
        match self.state.read() {
            Ok(s) => *s,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub(crate) fn set_state(&self, state: LifecycleState) {
        match self.state.write() {
            Ok(mut s) => *s = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Refuses what the lifecycle state does not allow: before activation only the security-domain download and
    /// RBAC reads; in recovery mode only the transfer key, the upload and RBAC reads.
    fn check_state(&self, action: DataAction) -> Result<(), Error> {
        use DataAction as D;
        if self.restoring.load(std::sync::atomic::Ordering::SeqCst)
            && !matches!(action, D::RestoreStatus | D::BackupStatus)
        {
            return Err(Error::NotActivated(
                "A full restore is running; try again when it ends.".into(),
            ));
        }
        let state = self.state();
        let allowed = match state {
            LifecycleState::Active => return Ok(()),
            LifecycleState::Provisioned => matches!(
                action,
                D::SecurityDomainDownload
                    | D::SecurityDomainDownloadRead
                    | D::AuditRead
                    | D::NetworkRead
                    | D::NetworkWrite
                    | D::PostureRead
                    | D::RoleDefinitionsRead
                    | D::RoleAssignmentsRead
            ),
            LifecycleState::Recovery => matches!(
                action,
                D::SecurityDomainUpload
                    | D::SecurityDomainUploadRead
                    | D::AuditRead
                    | D::NetworkRead
                    | D::NetworkWrite
                    | D::PostureRead
                    | D::SecurityDomainTransferKeyRead
                    | D::RoleDefinitionsRead
                    | D::RoleAssignmentsRead
            ),
        };
        if allowed {
            Ok(())
        } else if state == LifecycleState::Recovery {
            Err(Error::NotActivated(
                "The HSM is in recovery mode: upload a security domain (POST /securitydomain/upload) to activate it."
                    .into(),
            ))
        } else {
            Err(Error::NotActivated(
                "The HSM is not activated: download its security domain (POST /securitydomain/download) to activate it."
                    .into(),
            ))
        }
    }

    /// Decides whether `caller` may perform `action` on `scope` (the rule is in [`crate::rbac`]).
    pub async fn authorize(&self, caller: &Principal, action: DataAction, scope: &Scope) -> Result<(), Error> {
        if let Err(e) = self.check_state(action) {
            crate::audit::context::authorization(action, false, None);
            return Err(e);
        }
        if let Some(assignment) = self.granting_assignment(caller, action, scope).await? {
            crate::audit::context::authorization(action, true, Some(&assignment));
            return Ok(());
        }
        crate::audit::context::authorization(action, false, None);
        tracing::info!(object_id = %caller.object_id, action = action.name(), scope = %scope.as_string(), "denied");
        Err(Error::Forbidden(format!(
            "Caller is not authorized to perform action on resource. Caller: oid={}; Action: '{}'; Resource: '{}'",
            caller.object_id,
            action.name(),
            scope.as_string()
        )))
    }

    /// Whether `caller` holds `action` at `scope`.
    pub async fn is_granted(&self, caller: &Principal, action: DataAction, scope: &Scope) -> Result<bool, Error> {
        Ok(self.granting_assignment(caller, action, scope).await?.is_some())
    }

    /// The name of an assignment that grants `caller` `action` at `scope`, if any.
    async fn granting_assignment(
        &self,
        caller: &Principal,
        action: DataAction,
        scope: &Scope,
    ) -> Result<Option<String>, Error> {
        if !self.is_trusted_issuer(&caller.issuer) {
            return Ok(None);
        }
        let now = self.clock.now();
        if caller.issuer == self.issuer() {
            // Conditional access on the principal itself (own identities only).
            if let Some(networks) = self.store.principal_networks(&caller.object_id).await?
                && !crate::rbac::network_allows(&networks, caller.client_ip)
            {
                tracing::info!(object_id = %caller.object_id, ip = ?caller.client_ip, "outside the principal's networks");
                return Ok(None);
            }
        }
        let ids = caller.assignee_ids();
        let assignments = self.store.role_assignments(Some(&ids)).await?;
        let mut custom: Option<Vec<crate::rbac::RoleDefinition>> = None;
        for a in assignments
            .iter()
            .filter(|a| a.scope.covers(scope) && a.active(now, caller.client_ip))
        {
            let def = match crate::rbac::builtin::by_id(&a.role_definition_id) {
                Some(d) => Some(d),
                None => {
                    if custom.is_none() {
                        custom = Some(self.store.custom_roles().await?);
                    }
                    custom.as_ref().and_then(|c| {
                        c.iter()
                            .find(|d| d.id.eq_ignore_ascii_case(&a.role_definition_id))
                            .cloned()
                    })
                }
            };
            if def.is_some_and(|d| d.grants(action)) {
                self.note_use(&a.name, now).await;
                return Ok(Some(a.name.clone()));
            }
        }
        Ok(None)
    }

    /// Records (at most once a minute per assignment) that an assignment granted a request, for access review.
    async fn note_use(&self, name: &str, now: i64) {
        let due = match self.last_use.lock() {
            Ok(mut m) => {
                let due = m.get(name).is_none_or(|t| now - t >= 60);
                if due {
                    m.insert(name.to_string(), now);
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = self.store.touch_role_assignment(name, now).await {
            tracing::warn!(error = %e, "could not record assignment use");
        }
    }

    /// Issuers whose tokens this instance accepts.
    pub fn is_trusted_issuer(&self, issuer: &str) -> bool {
        issuer == self.issuer() || self.config.external_issuers.iter().any(|i| i.issuer == issuer)
    }

    /// Sets where full backups are written and read.
    pub fn set_backup_storage(&mut self, storage: Arc<dyn crate::backup_storage::BackupStorage>) {
        self.backup_storage = Some(storage);
    }

    /// Sets the audit log (the server builds it with its sinks and [`Hsm::audit_mac_key`]).
    pub fn set_audit_log(&mut self, log: Arc<crate::audit::AuditLog>) {
        self.audit = Some(log);
    }

    /// Sets where `GET /coffer/v1/audit` reads records from (the file sink's directory).
    pub fn set_audit_reader(&mut self, reader: Arc<dyn crate::audit::query::AuditReader>) {
        self.audit_reader = Some(reader);
    }

    /// The audit log, when one is set.
    pub fn audit_log(&self) -> Option<&Arc<crate::audit::AuditLog>> {
        self.audit.as_ref()
    }

    /// The MAC key of audit records, derived from the current domain secret.
    pub fn audit_mac_key(&self) -> coffer_crypto::SecretBytes {
        self.derived().audit_mac_key()
    }

    /// A new audit record with this instance's constant fields, timestamped now.
    pub fn audit_record(&self, operation_name: &str) -> crate::audit::AuditRecord {
        self.audit_defaults.record(
            crate::audit::record::format_time(self.clock.now_nanos()),
            operation_name,
        )
    }

    /// Records an action the service took on its own (background jobs): no caller, the service's identity.
    pub(crate) async fn audit_internal(&self, operation_name: &str, id: String, details: serde_json::Value, ok: bool) {
        let Some(log) = &self.audit else { return };
        let mut rec = self.audit_record(operation_name);
        rec.operation_version = "internal".into();
        rec.result_type = if ok { "Success".into() } else { "Failure".into() };
        rec.result_signature = if ok {
            "OK".into()
        } else {
            "Internal Server Error".into()
        };
        rec.correlation_id = uuid::Uuid::new_v4().to_string();
        rec.identity.claim.appid = Some("coffer-background-jobs".into());
        rec.identity.claim.tid = Some(self.instance.tenant_id.clone());
        rec.identity.claim.idtyp = Some("app".into());
        rec.properties.id = Some(id);
        rec.properties.details = Some(details);
        if !ok {
            rec.level = "Error".into();
        }
        if !log.record(&rec).await {
            tracing::error!(
                operation = operation_name,
                "audit record of a background job could not be written"
            );
        }
    }

    /// Sets how external issuers' JWK Sets are fetched.
    pub fn set_key_set_fetcher(&mut self, fetcher: Arc<dyn crate::issuers::KeySetFetcher>) {
        self.fetcher = Some(fetcher);
    }

    /// Seals private material for a version.
    pub(crate) fn seal_material(&self, record_key: &PrivateKey, rec: &KeyVersionRecord) -> Result<Vec<u8>, Error> {
        let bytes = record_key.to_storage_bytes()?;
        let aad = material_aad(&self.instance.instance_id, &rec.name, &rec.version, rec.key_type);
        Ok(coffer_crypto::seal::seal(
            &self.derived().material,
            &aad,
            bytes.expose_secret(),
        )?)
    }

    /// The unsealed private key of a version, from the cache or by unsealing it.
    pub(crate) fn private_key(&self, rec: &KeyVersionRecord) -> Result<Arc<PrivateKey>, Error> {
        if let Some(k) = self.cache.get(rec.name.as_str(), rec.version.as_str()) {
            return Ok(k);
        }
        let aad = material_aad(&self.instance.instance_id, &rec.name, &rec.version, rec.key_type);
        let bytes = coffer_crypto::seal::open(&self.derived().material, &aad, &rec.sealed_material)?;
        let curve = match rec.key_type {
            crate::key::KeyType::Ec(c) => Some(c),
            _ => None,
        };
        let key = Arc::new(PrivateKey::from_storage_bytes(
            rec.key_type.family(),
            curve,
            bytes.expose_secret(),
        )?);
        self.cache
            .insert(rec.name.as_str(), rec.version.as_str(), Arc::clone(&key));
        Ok(key)
    }

    /// Keys that are not deleted, by `kty` (`RSA-HSM`, `EC-HSM`, `oct-HSM`), for metrics.
    pub async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        Ok(self
            .store
            .key_counts()
            .await?
            .into_iter()
            .map(|(tag, n)| {
                let kty = match tag.as_str() {
                    "RSA" => "RSA-HSM".to_string(),
                    "EC" => "EC-HSM".to_string(),
                    "oct" => "oct-HSM".to_string(),
                    other => other.to_string(),
                };
                (kty, n)
            })
            .collect())
    }

    /// Whether purge protection is on.
    pub fn purge_protection(&self) -> bool {
        self.purge_protection.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Soft-delete retention in days.
    pub fn retention_days(&self) -> i64 {
        self.instance.soft_delete_retention_days
    }

    /// The `recoveryLevel` keys report.
    pub fn recovery_level(&self) -> &'static str {
        let customized = self.instance.soft_delete_retention_days < 90;
        match (customized, self.purge_protection()) {
            (false, false) => "Recoverable+Purgeable",
            (false, true) => "Recoverable",
            (true, false) => "CustomizedRecoverable+Purgeable",
            (true, true) => "CustomizedRecoverable",
        }
    }
}
