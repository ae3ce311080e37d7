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
    /// Azure's behaviour: a new security-domain download of an active instance needs no quorum proof.
    pub security_domain_redownload_without_quorum: bool,
}

/// The Managed HSM service.
pub struct Hsm {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) instance: InstanceRecord,
    pub(crate) keys: RwLock<Arc<DerivedKeys>>,
    pub(crate) token_key: RwLock<Arc<TokenSigningKey>>,
    pub(crate) seal: Arc<dyn SealProvider>,
    pub(crate) sealed_domain_secret: RwLock<Vec<u8>>,
    pub(crate) backup_storage: Option<Arc<dyn crate::backup_storage::BackupStorage>>,
    pub(crate) jobs: std::sync::Mutex<std::collections::HashMap<String, crate::ops::full_backup::JobStatus>>,
    pub(crate) job_running: std::sync::atomic::AtomicBool,
    /// This process runs a full restore (ORed with the store lease, which other nodes see, so that a lease the
    /// restore's own long transaction keeps from being renewed never lets requests in mid-restore).
    pub(crate) restoring: std::sync::atomic::AtomicBool,
    pub(crate) cache: KeyCache,
    pub(crate) config: HsmConfig,
    pub(crate) key_sets: crate::issuers::KeySetCache,
    pub(crate) fetcher: Option<Arc<dyn crate::issuers::KeySetFetcher>>,
    /// When each assignment last granted a request (flushed to the store by the jobs, off the request path),
    /// and whether that time is not stored yet.
    pub(crate) last_use: std::sync::Mutex<std::collections::HashMap<String, (i64, bool)>>,
    pub(crate) audit: Option<Arc<crate::audit::AuditLog>>,
    pub(crate) audit_defaults: crate::audit::record::RecordDefaults,
    pub(crate) audit_reader: Option<Arc<dyn crate::audit::query::AuditReader>>,
    /// The in-memory state request decisions read (`state/`).
    pub(crate) view: Arc<crate::state::StateCell>,
    /// This instance's token issuer (`{url}/{tenant}/v2.0`).
    pub(crate) issuer: String,
    /// Verified bearer tokens (`identity.rs`).
    pub(crate) tokens: crate::identity::TokenCache,
    /// The change feed's position when the view was built: other nodes' changes are followed from there.
    pub(crate) feed_start: i64,
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
        // Read before the view is built, and from a while back: changes recorded since then are read again (a
        // re-read is harmless), so neither a change committed meanwhile nor one of a transaction still running (its
        // position below later ones) is missed.
        let feed_start = store
            .last_change_before(clock.now() - crate::state::follow::GAP_PATIENCE_SECS)
            .await?;
        let view = Arc::new(
            crate::state::StateCell::load(
                store.as_ref(),
                Arc::new(crate::network::NetworkAcls::parse(
                    crate::network::NetworkAclsDoc::default(),
                )?),
            )
            .await?,
        );
        let store: Arc<dyn Store> = Arc::new(crate::state::publishing::PublishingStore::new(store, Arc::clone(&view)));
        if view.view().restore_lease_until != 0 {
            // One process serves a database today, so a lease found at start belongs to a process that stopped
            // mid-restore (the restore's transaction rolled back with it). With several nodes (the
            // high-availability issue) the lease must name its node and be released only when that node is gone.
            tracing::warn!("a full restore was interrupted when the server stopped: releasing its lease");
            store.put_meta(crate::state::RESTORE_LEASE, "0", clock.now()).await?;
        }
        let issuer = format!("{}/{}/v2.0", config.public_url, record.tenant_id);
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
                sealed_domain_secret: RwLock::new(record.sealed_domain_secret.clone()),
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
                view,
                issuer,
                tokens: crate::identity::TokenCache::default(),
                feed_start,
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
        self.view.view().lifecycle
    }

    /// Publishes a new lifecycle state (the security-domain operations, once the keys it needs are installed).
    pub(crate) async fn set_state(&self, state: LifecycleState) {
        self.view.publish_with(|v| v.lifecycle = state).await;
    }

    /// The current in-memory state (one load per request; no lock, no I/O).
    pub fn view(&self) -> Arc<crate::state::View> {
        self.view.view()
    }

    /// A follower of the change feed from where this node's view was built (see [`Hsm::catch_up`]).
    pub fn follower(&self) -> crate::state::follow::Follower {
        crate::state::follow::Follower::after(self.feed_start)
    }

    /// A follower starting from the feed's position as of now (less the gap window), read before a rebuild.
    pub async fn follower_from_now(&self) -> Result<crate::state::follow::Follower, Error> {
        let seq = self
            .store
            .last_change_before(self.clock.now() - crate::state::follow::GAP_PATIENCE_SECS)
            .await?;
        Ok(crate::state::follow::Follower::after(seq))
    }

    /// Applies what other nodes committed since `follower` last caught up: reads the change feed, re-reads the
    /// entities it names and publishes them (and drops their cached key material). Returns how many changes were
    /// new. The server calls it when PostgreSQL notifies a change and every second (docs/DATABASE.md).
    pub async fn catch_up(&self, follower: &mut crate::state::follow::Follower) -> Result<usize, Error> {
        const BATCH: usize = 10_000;
        let mut total = 0;
        let mut after = follower.watermark();
        loop {
            let rows = self.store.changes_after(after, BATCH).await?;
            // Marked applied only once published: a failed read leaves the batch to the next call.
            let mut next = follower.clone();
            // This node's own writes were published when they were made.
            let new: Vec<_> = next
                .take_new(&rows, self.clock.now())
                .into_iter()
                .filter(|c| !c.own)
                .collect();
            if !new.is_empty() {
                let store = Arc::clone(&self.store);
                let changes = new.clone();
                self.view
                    .publish(|mut v| async move {
                        crate::state::follow::apply(store.as_ref(), &mut v, &changes).await?;
                        Ok(v)
                    })
                    .await?;
                if new.iter().any(|c| c.kind == "full") {
                    self.cache.clear();
                } else {
                    for c in new.iter().filter(|c| c.kind == "key") {
                        self.cache.invalidate(&c.id);
                    }
                }
                total += new.len();
            }
            *follower = next;
            // A full batch: read on after it (not from the watermark, which a pending gap may hold back).
            match rows.last() {
                Some(last) if rows.len() == BATCH => after = last.seq,
                _ => return Ok(total),
            }
        }
    }

    /// The change feed could not be read for too long: this node can no longer vouch that its view is current (a
    /// revocation on another node might not have reached it), so decisions are refused until a full rebuild
    /// succeeds (see [`Hsm::reload_state`]).
    pub fn feed_lost(&self) {
        if !self.view.is_stale() {
            tracing::error!("the change feed is unreadable: refusing requests until the state is rebuilt");
        }
        self.view.mark_stale();
    }

    /// Whether requests are refused because the view may be behind the store.
    pub fn state_is_stale(&self) -> bool {
        self.view.is_stale()
    }

    /// Forgets feed entries older than an hour (any node may do it; every node applies changes within seconds).
    pub async fn prune_change_feed(&self) -> Result<u64, Error> {
        self.store.prune_changes(self.clock.now() - 3600).await
    }

    /// Rebuilds the in-memory state from the store (another process over the same database changed it).
    /// Returns the new generation.
    pub async fn reload_state(&self) -> Result<u64, Error> {
        let g = self.view.reload(self.store.as_ref()).await?;
        self.cache.clear();
        Ok(g)
    }

    /// Refuses what the lifecycle state does not allow: before activation only the security-domain download and
    /// RBAC reads; in recovery mode only the transfer key, the upload and RBAC reads.
    fn check_state(&self, view: &crate::state::View, action: DataAction) -> Result<(), Error> {
        use DataAction as D;
        let restoring = view.restoring(self.clock.now()) || self.restoring.load(std::sync::atomic::Ordering::SeqCst);
        if restoring && !matches!(action, D::RestoreStatus | D::BackupStatus) {
            return Err(Error::NotActivated(
                "A full restore is running; try again when it ends.".into(),
            ));
        }
        let state = view.lifecycle;
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
        if self.view.is_stale() {
            // Fail closed: a write committed that the view may not show. Try to catch up once.
            if let Err(e) = self.view.reload(self.store.as_ref()).await {
                crate::audit::context::authorization(action, false, None);
                return Err(e);
            }
        }
        let view = self.view.view();
        crate::audit::context::generation(view.generation);
        if let Err(e) = self.check_state(&view, action) {
            crate::audit::context::authorization(action, false, None);
            return Err(e);
        }
        if let Some(assignment) = self.granting_assignment(&view, caller, action, scope) {
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
        Ok(self
            .granting_assignment(&self.view.view(), caller, action, scope)
            .is_some())
    }

    /// The name of an assignment that grants `caller` `action` at `scope`, if any: decided on `view` alone.
    fn granting_assignment(
        &self,
        view: &crate::state::View,
        caller: &Principal,
        action: DataAction,
        scope: &Scope,
    ) -> Option<String> {
        if !self.is_trusted_issuer(&caller.issuer) {
            return None;
        }
        let now = self.clock.now();
        let own = caller.issuer == self.issuer;
        if own {
            // Conditional access on the principal itself (own identities only). A deleted principal grants nothing.
            let p = view.principals.get(&caller.object_id)?;
            if !crate::rbac::network_allows(&p.networks, caller.client_ip) {
                tracing::info!(object_id = %caller.object_id, ip = ?caller.client_ip, "outside the principal's networks");
                return None;
            }
        }
        let ids = std::iter::once(&caller.object_id).chain(caller.groups.iter());
        for id in ids {
            for a in view
                .assignments_of(id, scope)
                .filter(|a| a.scope.covers(scope) && a.active(now, caller.client_ip))
            {
                let grants = match crate::rbac::builtin::get(&a.role_definition_id) {
                    Some(d) => d.grants(action),
                    None => view
                        .custom_role(&a.role_definition_id)
                        .is_some_and(|d| d.grants(action)),
                };
                if grants {
                    self.note_use(&a.name, now);
                    return Some(a.name.clone());
                }
            }
        }
        None
    }

    /// Remembers in memory that an assignment granted a request; [`Hsm::flush_assignment_use`] stores it (at most
    /// once a minute per assignment), off the request path.
    fn note_use(&self, name: &str, now: i64) {
        if let Ok(mut m) = self.last_use.lock() {
            match m.get_mut(name) {
                Some(e) if now - e.0 < 60 => {}
                Some(e) => *e = (now, true),
                None => {
                    m.insert(name.to_string(), (now, true));
                }
            }
        }
    }

    /// Writes the assignment-use times noted since the last flush (the jobs call this; access review first).
    pub async fn flush_assignment_use(&self) {
        let now = self.clock.now();
        let due: Vec<(String, i64)> = match self.last_use.lock() {
            Ok(mut m) => {
                // Entries only rate-limit the writes to one a minute: stored ones older than that are dropped, so
                // the map holds the assignments used in the last minute or two, not every one ever used.
                m.retain(|_, e| e.1 || now - e.0 < 120);
                m.iter_mut()
                    .filter(|(_, e)| e.1)
                    .map(|(k, e)| {
                        e.1 = false;
                        (k.clone(), e.0)
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for (name, at) in due {
            if let Err(e) = self.store.touch_role_assignment(&name, at).await {
                tracing::warn!(error = %e, "could not record assignment use: retrying at the next flush");
                if let Ok(mut m) = self.last_use.lock()
                    && let Some(entry) = m.get_mut(&name)
                    && entry.0 == at
                {
                    entry.1 = true;
                }
            }
        }
    }

    /// Issuers whose tokens this instance accepts.
    pub fn is_trusted_issuer(&self, issuer: &str) -> bool {
        issuer == self.issuer || self.config.external_issuers.iter().any(|i| i.issuer == issuer)
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

    /// The stored audit checkpoint (`audit/checkpoint.rs`), checked against the current audit MAC key.
    /// `Ok(None)`: none stored yet (a new instance, or one from before checkpoints).
    pub async fn audit_checkpoint(&self) -> Result<Option<Result<crate::audit::Checkpoint, String>>, Error> {
        let Some(value) = self.store.meta(crate::audit::checkpoint::META_NAME).await? else {
            return Ok(None);
        };
        Ok(Some(crate::audit::Checkpoint::decode(&value, &self.audit_mac_key())))
    }

    /// Stores the audit log's newest checkpoint, if the chain moved since the last call (the server calls this
    /// about once a second and at shutdown).
    pub async fn save_audit_checkpoint(&self) -> Result<(), Error> {
        let Some(cp) = self.audit.as_ref().and_then(|log| log.take_checkpoint()) else {
            return Ok(());
        };
        self.store
            .put_meta(crate::audit::checkpoint::META_NAME, &cp.encode(), self.clock.now())
            .await
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

    /// The unsealed private key of a version, from the cache or by unsealing it (the sealed material is read
    /// from the store when `rec` came from the in-memory state, which does not hold it).
    pub(crate) async fn private_key(&self, rec: &KeyVersionRecord) -> Result<Arc<PrivateKey>, Error> {
        if let Some(k) = self.cache.get(rec.name.as_str(), rec.version.as_str()) {
            return Ok(k);
        }
        let stored;
        let sealed = if rec.sealed_material.is_empty() {
            stored = self
                .store
                .key_version(&rec.name, Some(&rec.version))
                .await?
                .ok_or_else(|| crate::ops::read::not_found(rec.name.as_str()))?;
            &stored.sealed_material
        } else {
            &rec.sealed_material
        };
        let aad = material_aad(&self.instance.instance_id, &rec.name, &rec.version, rec.key_type);
        let bytes = coffer_crypto::seal::open(&self.derived().material, &aad, sealed)?;
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
        self.view.view().purge_protection
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
