//! Full backup and restore (HSM level) and selective key restore, as long-running jobs.
//!
//! A backup is a folder `mhsm-{instance}-{timestamp}` with `manifest.json` (informational) and `state.bin`: every
//! key with all versions, deletion state and rotation policy, custom roles, role assignments, principals, groups,
//! settings and key policy assignments, serialised and sealed (AES-256-GCM) under the full-backup key derived from
//! the domain secret, with the folder name in the AAD. Each version's private material is additionally re-sealed under that key (bound to key
//! name and version), never stored in the clear. So a backup restores only into an instance holding the same
//! domain secret, and any tampering is detected before anything changes.
//!
//! The state is bound to the folder's own name (the last path segment): a backup folder renamed after the fact does
//! not restore. A pre-backup check writes one small marker blob (`{folder}-precheck/precheck`) to prove write access.
//!
//! A restore reads and verifies everything first, then writes it in one store transaction (all or nothing; a crash
//! in the middle leaves the instance as it was). One backup or restore job runs at a time; the data plane keeps
//! serving during a backup, and refuses other calls while a full restore runs.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::backup_storage::BackupLocation;
use crate::instance::{material_aad, new_uuid};
use crate::key::{Deletion, KeyAttributes, KeyName, KeyOperation, KeyType, KeyVersion, KeyVersionRecord};
use crate::rbac::{DataAction, Network, Permission, RoleAssignment, RoleDefinition, RoleType, Scope};
use crate::store::{ClientSecretRecord, GroupRecord, KeyDump, NewVersionMode, PrincipalRecord, RestoreSet};
use crate::{Error, Hsm, Principal};

/// What a full restore brings back besides keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Coffer extension (`restoreIdentities` in the request body): also add back the principals, credentials,
    /// groups, memberships and role assignments of the backup that the instance no longer has. Without it they are
    /// left as they are (an instance holding only its bootstrap principal gets them anyway).
    pub identities: bool,
}

/// Status of a job, as `*/pending` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub job_id: String,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: &'static str,
    pub status_details: Option<String>,
    /// (code, message) when failed.
    pub error: Option<(String, String)>,
    pub start_time: i64,
    pub end_time: Option<i64>,
    /// Backups: `{container}/{folder}`.
    pub container_uri: Option<String>,
    pub kind: JobKind,
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Backup,
    PreBackup,
    PreRestore,
    Restore,
    SelectiveRestore,
}

const STATE: &str = "state.bin";
const MANIFEST: &str = "manifest.json";

#[derive(Serialize, Deserialize)]
struct State {
    v: u32,
    instance_id: String,
    created: i64,
    keys: Vec<DumpKey>,
    custom_roles: Vec<DumpRole>,
    assignments: Vec<DumpAssignment>,
    principals: Vec<DumpPrincipal>,
    groups: Vec<DumpGroup>,
    settings: Vec<(String, String)>,
    /// Key policy assignments (absent in backups made before policies existed: a restore then keeps the current
    /// ones).
    #[serde(default)]
    policies: Option<Vec<crate::policy::PolicyAssignment>>,
}

#[derive(Serialize, Deserialize)]
struct DumpKey {
    name: String,
    deleted: Option<(i64, i64)>,
    rotation_policy: Option<(String, i64, i64)>,
    versions: Vec<DumpVersion>,
}

#[derive(Serialize, Deserialize)]
struct DumpVersion {
    version: String,
    kty: String,
    size: u32,
    crv: Option<String>,
    public: (Option<String>, Option<String>),
    key_ops: Vec<String>,
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
    exportable: bool,
    tags: std::collections::BTreeMap<String, String>,
    release_policy: Option<String>,
    /// The private material sealed under the full-backup key (AAD binds name and version).
    material: String,
    /// How the version came to be (absent in backups made before Coffer recorded it).
    #[serde(default)]
    origin: Option<String>,
}

/// actions, notActions, dataActions, notDataActions.
type PermissionLists = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

#[derive(Serialize, Deserialize)]
struct DumpRole {
    id: String,
    role_name: String,
    description: String,
    permissions: Vec<PermissionLists>,
    assignable_scopes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct DumpAssignment {
    name: String,
    scope: String,
    role: String,
    principal: String,
    created: i64,
    expires: Option<i64>,
    networks: Vec<String>,
    justification: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct DumpPrincipal {
    object_id: String,
    client_id: String,
    display_name: String,
    created: i64,
    secrets: Vec<(String, String, i64)>,
    certificates: Vec<String>,
    networks: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct DumpGroup {
    object_id: String,
    display_name: String,
    created: i64,
    members: Vec<String>,
}

fn corrupt_backup() -> Error {
    Error::BadParameter(
        "The backup is invalid, was tampered with, or was made by an HSM with another security domain.".into(),
    )
}

fn material_backup_aad(name: &str, version: &str) -> Vec<u8> {
    format!("coffer/backup-material/v1|{}|{version}", name.to_ascii_lowercase()).into_bytes()
}

fn state_aad(folder: &str) -> Vec<u8> {
    // Only the last path segment: clients may address the same folder through different container splits.
    let last = folder.trim_end_matches('/').rsplit('/').next().unwrap_or(folder);
    format!("coffer/full-backup/v1|{last}").into_bytes()
}

/// Formats a Unix time as `YYYYMMDDhhmmss` (UTC) for folder names.
fn stamp(ts: i64) -> String {
    // `2026-11-22T05:51:56.0000000Z` → `20261122055156`
    crate::audit::record::format_time(i128::from(ts) * 1_000_000_000)
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect()
}

/// The `meta` entry holding the time of the last successful full backup.
const LAST_BACKUP_SUCCESS: &str = "last_backup_success";

/// How long a full-restore lease holds the instance without renewal.
const RESTORE_LEASE_SECS: u64 = 120;

impl Hsm {
    fn storage(&self) -> Result<Arc<dyn crate::backup_storage::BackupStorage>, Error> {
        self.backup_storage
            .clone()
            .ok_or_else(|| Error::BadParameter("No backup storage is configured.".into()))
    }

    fn new_job(&self, kind: JobKind) -> Result<JobStatus, Error> {
        if self.job_running.swap(true, Ordering::SeqCst) {
            return Err(Error::Conflict(
                "A backup or restore job is already running; try again when it ends.".into(),
            ));
        }
        let job = JobStatus {
            job_id: new_uuid()?.replace('-', ""),
            status: "InProgress",
            status_details: None,
            error: None,
            start_time: self.clock.now(),
            end_time: None,
            container_uri: None,
            kind,
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job.job_id.clone(), job.clone());
        }
        Ok(job)
    }

    fn finish_job(&self, id: &str, result: Result<Option<String>, Error>) {
        let end = self.clock.now();
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(j) = jobs.get_mut(id)
        {
            // endTime > startTime, as the old SDK tests assert.
            j.end_time = Some(end.max(j.start_time + 1));
            match result {
                Ok(uri) => {
                    j.status = "Succeeded";
                    j.container_uri = uri;
                }
                Err(e) => {
                    tracing::warn!(job = id, error = %e, "backup/restore job failed");
                    let (code, msg) = match &e {
                        Error::NotFound { code, message } => ((*code).to_string(), message.clone()),
                        Error::BadParameter(m) | Error::Conflict(m) => ("BadParameter".to_string(), m.clone()),
                        other => ("InternalError".to_string(), format!("The job failed: {other}")),
                    };
                    j.status = "Failed";
                    j.status_details = Some(msg.clone());
                    j.error = Some((code, msg));
                }
            }
        }
        self.job_running.store(false, Ordering::SeqCst);
    }

    /// After a job ended: remembers the time of a successful full backup (for metrics and the posture report)
    /// and writes the job's outcome to the audit log (`BackupComplete`, `RestoreComplete`, …; Coffer's names).
    async fn after_job(&self, id: &str) {
        let job = match self.jobs.lock() {
            Ok(jobs) => jobs.get(id).cloned(),
            Err(_) => None,
        };
        let Some(job) = job else { return };
        let ok = job.status == "Succeeded";
        if ok && job.kind == JobKind::Backup {
            let now = self.clock.now();
            if let Err(e) = self.store.put_meta(LAST_BACKUP_SUCCESS, &now.to_string(), now).await {
                tracing::warn!(error = %e, "could not record the time of the successful backup");
            }
        }
        let name = match job.kind {
            JobKind::Backup => "BackupComplete",
            JobKind::PreBackup => "PreBackupComplete",
            JobKind::PreRestore => "PreRestoreComplete",
            JobKind::Restore => "RestoreComplete",
            JobKind::SelectiveRestore => "SelectiveKeyRestoreComplete",
        };
        let details = serde_json::json!({
            "jobId": job.job_id,
            "status": job.status,
            "statusDetails": job.status_details,
            "folderUri": job.container_uri,
        });
        self.audit_internal(name, self.config.public_url.clone(), details, ok)
            .await;
    }

    /// Unix time of the last successful full backup, if any.
    pub async fn last_successful_backup(&self) -> Result<Option<i64>, Error> {
        Ok(self.store.meta(LAST_BACKUP_SUCCESS).await?.and_then(|v| v.parse().ok()))
    }

    /// Status of a job (`GET /backup/{id}/pending`, `GET /restore/{id}/pending`).
    pub async fn job_status(&self, caller: &Principal, id: &str, restore: bool) -> Result<JobStatus, Error> {
        let action = if restore {
            DataAction::RestoreStatus
        } else {
            DataAction::BackupStatus
        };
        self.authorize(caller, action, &Scope::Root).await?;
        let jobs: HashMap<String, JobStatus> = self.jobs.lock().map(|j| j.clone()).unwrap_or_default();
        jobs.get(id).cloned().ok_or_else(|| Error::NotFound {
            code: "JobNotFound",
            message: format!("Job '{id}' was not found."),
        })
    }

    /// POST /backup (or /prebackup with `check_only`): starts a job writing a full backup into `container`.
    pub async fn start_backup(
        self: &Arc<Self>,
        caller: &Principal,
        container_uri: String,
        sas_token: Option<String>,
        check_only: bool,
    ) -> Result<JobStatus, Error> {
        self.authorize(caller, DataAction::BackupStart, &Scope::Root).await?;
        let storage = self.storage()?;
        let folder = format!("mhsm-{}-{}", self.instance.instance_name, stamp(self.clock.now()));
        // Checked (allowed destination) and stripped of a SAS token in its query before anything is kept.
        let mut location = storage.prepare(BackupLocation {
            container_uri,
            sas_token,
            folder,
        })?;
        location.container_uri = location.container_uri.trim_end_matches('/').to_string();
        let job = self.new_job(if check_only {
            JobKind::PreBackup
        } else {
            JobKind::Backup
        })?;
        let hsm = Arc::clone(self);
        let id = job.job_id.clone();
        tokio::spawn(async move {
            let result = if check_only {
                let probe = BackupLocation {
                    folder: format!("{}-precheck", location.folder),
                    ..location.clone()
                };
                storage
                    .put(&probe, "precheck", b"coffer backup pre-check".to_vec())
                    .await
                    .map(|()| None)
            } else {
                hsm.write_backup(storage.as_ref(), &location).await
            };
            hsm.finish_job(&id, result);
            hsm.after_job(&id).await;
        });
        Ok(job)
    }

    async fn write_backup(
        &self,
        storage: &dyn crate::backup_storage::BackupStorage,
        location: &BackupLocation,
    ) -> Result<Option<String>, Error> {
        let backup_key = &self.derived().full_backup;
        let mut keys = Vec::new();
        for dump in self.store.dump_keys().await? {
            let mut versions = Vec::with_capacity(dump.versions.len());
            let Some(first) = dump.versions.first() else { continue };
            let name = first.name.to_string();
            for v in &dump.versions {
                let aad = material_aad(&self.instance.instance_id, &v.name, &v.version, v.key_type);
                let plain = coffer_crypto::seal::open(&self.derived().material, &aad, &v.sealed_material)?;
                let resealed = coffer_crypto::seal::seal(
                    backup_key,
                    &material_backup_aad(&name, v.version.as_str()),
                    plain.expose_secret(),
                )?;
                let (size, crv) = match v.key_type {
                    KeyType::Rsa(b) | KeyType::Oct(b) => (b, None),
                    KeyType::Ec(c) => (0, Some(c.name().to_string())),
                };
                let public = match &v.public_key {
                    coffer_crypto::keys::PublicKey::Rsa { n, e } => (Some(B64.encode(n)), Some(B64.encode(e))),
                    coffer_crypto::keys::PublicKey::Ec { x, y, .. } => (Some(B64.encode(x)), Some(B64.encode(y))),
                    coffer_crypto::keys::PublicKey::Oct => (None, None),
                };
                versions.push(DumpVersion {
                    version: v.version.as_str().to_string(),
                    kty: v.key_type.storage_tag().to_string(),
                    size,
                    crv,
                    public,
                    key_ops: v.key_ops.iter().map(|o| o.name().to_string()).collect(),
                    enabled: v.attributes.enabled,
                    nbf: v.attributes.not_before,
                    exp: v.attributes.expires,
                    created: v.attributes.created,
                    updated: v.attributes.updated,
                    exportable: v.attributes.exportable,
                    tags: v.tags.clone(),
                    release_policy: v.release_policy.clone(),
                    material: B64.encode(resealed),
                    origin: v.origin.map(|o| o.name().to_string()),
                });
            }
            keys.push(DumpKey {
                name,
                deleted: dump.deletion.map(|d| (d.deleted_date, d.scheduled_purge_date)),
                rotation_policy: dump.rotation_policy,
                versions,
            });
        }
        let state = State {
            v: 1,
            instance_id: self.instance.instance_id.clone(),
            created: self.clock.now(),
            custom_roles: self.store.custom_roles().await?.into_iter().map(dump_role).collect(),
            assignments: self
                .store
                .role_assignments(None)
                .await?
                .into_iter()
                .map(dump_assignment)
                .collect(),
            principals: self
                .store
                .list_principals()
                .await?
                .into_iter()
                .map(dump_principal)
                .collect(),
            groups: self
                .store
                .list_groups()
                .await?
                .into_iter()
                .map(|g| DumpGroup {
                    object_id: g.object_id,
                    display_name: g.display_name,
                    created: g.created,
                    members: g.members,
                })
                .collect(),
            settings: self.store.settings().await?,
            policies: Some(self.store.policy_assignments().await?),
            keys,
        };
        let count = state.keys.len();
        let json = serde_json::to_vec(&state).map_err(|e| Error::Corrupt(e.to_string()))?;
        let sealed = coffer_crypto::seal::seal(backup_key, &state_aad(&location.folder), &json)?;
        let manifest = serde_json::json!({
            "format": "coffer-full-backup", "version": 1, "instance": self.instance.instance_name,
            "created": state.created, "keys": count,
            "sha256": coffer_crypto::hash::sha256(&sealed).iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        storage.put(location, STATE, sealed).await?;
        storage
            .put(location, MANIFEST, manifest.to_string().into_bytes())
            .await?;
        tracing::info!(folder = %location.folder, keys = count, "full backup written");
        Ok(Some(format!("{}/{}", location.container_uri, location.folder)))
    }

    async fn read_state(
        &self,
        storage: &dyn crate::backup_storage::BackupStorage,
        location: &BackupLocation,
    ) -> Result<State, Error> {
        let sealed = storage.get(location, STATE).await?;
        let json = coffer_crypto::seal::open(&self.derived().full_backup, &state_aad(&location.folder), &sealed)
            .map_err(|_| corrupt_backup())?;
        parse_state(json.expose_secret())
    }

    /// Rebuilds one key's versions from a backup, re-sealing the material for this instance.
    fn load_dump_key(&self, k: &DumpKey) -> Result<KeyDump, Error> {
        let name = KeyName::parse(&k.name).map_err(|_| corrupt_backup())?;
        let mut versions = Vec::with_capacity(k.versions.len());
        for v in &k.versions {
            let curve = match &v.crv {
                Some(c) => Some(coffer_crypto::keys::Curve::parse(c).ok_or_else(corrupt_backup)?),
                None => None,
            };
            let key_type = match (v.kty.as_str(), curve) {
                ("RSA", None) => KeyType::Rsa(v.size),
                ("EC", Some(c)) => KeyType::Ec(c),
                ("oct", None) => KeyType::Oct(v.size),
                _ => return Err(corrupt_backup()),
            };
            let version = KeyVersion::parse(&v.version).ok_or_else(corrupt_backup)?;
            let sealed = B64.decode(&v.material).map_err(|_| corrupt_backup())?;
            let plain = coffer_crypto::seal::open(
                &self.derived().full_backup,
                &material_backup_aad(&k.name, &v.version),
                &sealed,
            )
            .map_err(|_| corrupt_backup())?;
            let key =
                coffer_crypto::keys::PrivateKey::from_storage_bytes(key_type.family(), curve, plain.expose_secret())
                    .map_err(|_| corrupt_backup())?;
            let key_ops = v
                .key_ops
                .iter()
                .map(|o| KeyOperation::parse(o))
                .collect::<Result<Vec<_>, _>>()?;
            let mut rec = KeyVersionRecord {
                name: name.clone(),
                version,
                key_type,
                public_key: key.public_key(),
                key_ops,
                attributes: KeyAttributes {
                    enabled: v.enabled,
                    not_before: v.nbf,
                    expires: v.exp,
                    created: v.created,
                    updated: v.updated,
                    exportable: v.exportable,
                },
                tags: v.tags.clone(),
                release_policy: v.release_policy.clone(),
                sealed_material: Vec::new(),
                origin: v.origin.as_deref().and_then(crate::key::KeyOrigin::parse),
            };
            let _ = &v.public;
            rec.sealed_material = self.seal_material(&key, &rec)?;
            versions.push(rec);
        }
        Ok(KeyDump {
            versions,
            deletion: k.deleted.map(|(d, p)| Deletion {
                deleted_date: d,
                scheduled_purge_date: p,
            }),
            rotation_policy: k.rotation_policy.clone(),
        })
    }

    /// PUT /restore (or /prerestore with `check_only`): starts a full restore from `location`. A restore never
    /// erases a key or version, and brings identities back only when `options` asks (see [`RestoreOptions`]).
    pub async fn start_restore(
        self: &Arc<Self>,
        caller: &Principal,
        location: BackupLocation,
        check_only: bool,
        options: RestoreOptions,
    ) -> Result<JobStatus, Error> {
        self.authorize(caller, DataAction::RestoreStart, &Scope::Root).await?;
        if options.identities {
            // Bringing identities back re-grants whatever the backup's principals held, credentials included: only a
            // caller holding every protected right may (no escalation, rbac::escalation).
            let all: Vec<_> = crate::rbac::escalation::PROTECTED
                .iter()
                .map(|a| crate::rbac::escalation::Conferred {
                    action: *a,
                    scope: Scope::Root,
                    until: None,
                })
                .collect();
            self.check_no_escalation(caller, &all, "restore identities")?;
        }
        let storage = self.storage()?;
        let location = storage.prepare(location)?;
        let job = self.new_job(if check_only {
            JobKind::PreRestore
        } else {
            JobKind::Restore
        })?;
        if !check_only {
            self.restoring.store(true, Ordering::SeqCst);
        }
        if !check_only && let Err(e) = self.set_restore_lease(true).await {
            self.restoring.store(false, Ordering::SeqCst);
            self.finish_job(
                &job.job_id,
                Err(Error::Corrupt(format!("could not take the restore lease: {e}"))),
            );
            return Err(e);
        }
        let hsm = Arc::clone(self);
        let id = job.job_id.clone();
        tokio::spawn(async move {
            let result = if check_only {
                hsm.run_restore(storage.as_ref(), &location, true, options).await
            } else {
                // The lease (in the store, so every node honours it) is renewed while the restore runs; a node
                // that dies mid-restore stops renewing it and the instance is released when it runs out.
                let renew = async {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(RESTORE_LEASE_SECS / 4)).await;
                        if let Err(e) = hsm.set_restore_lease(true).await {
                            tracing::warn!(error = %e, "could not renew the restore lease");
                        }
                    }
                };
                let r = tokio::select! {
                    r = hsm.run_restore(storage.as_ref(), &location, false, options) => r,
                    () = renew => Ok(()),
                };
                if let Err(e) = hsm.set_restore_lease(false).await {
                    tracing::error!(error = %e, "could not release the restore lease");
                }
                hsm.restoring.store(false, Ordering::SeqCst);
                r
            };
            hsm.finish_job(&id, result.map(|()| None));
            hsm.after_job(&id).await;
        });
        Ok(job)
    }

    /// Takes (for [`RESTORE_LEASE_SECS`] from now) or releases the full-restore lease.
    async fn set_restore_lease(&self, take: bool) -> Result<(), Error> {
        let now = self.clock.now();
        let until = if take { now + RESTORE_LEASE_SECS as i64 } else { 0 };
        self.store
            .put_meta(crate::state::RESTORE_LEASE, &until.to_string(), now)
            .await
    }

    async fn run_restore(
        &self,
        storage: &dyn crate::backup_storage::BackupStorage,
        location: &BackupLocation,
        check_only: bool,
        options: RestoreOptions,
    ) -> Result<(), Error> {
        let state = self.read_state(storage, location).await?;
        let mut set = RestoreSet::default();
        for k in &state.keys {
            set.keys.push(self.load_dump_key(k)?);
        }
        if check_only {
            return Ok(());
        }
        set.custom_roles = state
            .custom_roles
            .into_iter()
            .map(load_role)
            .collect::<Result<_, _>>()?;
        set.assignments = state
            .assignments
            .into_iter()
            .map(load_assignment)
            .collect::<Result<_, _>>()?;
        set.principals = state
            .principals
            .into_iter()
            .map(load_principal)
            .collect::<Result<_, _>>()?;
        set.groups = state
            .groups
            .into_iter()
            .map(|g| GroupRecord {
                object_id: g.object_id,
                display_name: g.display_name,
                created: g.created,
                members: g.members,
            })
            .collect();
        set.settings = state.settings;
        set.policies = state.policies.map(load_policies).transpose()?;
        // Identities come back only when asked, or into an instance that holds nothing but its bootstrap principal
        // (an instance created in recovery mode): otherwise a restore would undo deletions and revocations made after the backup.
        let created_in_recovery = self.instance.exchange_cert.is_some();
        let fresh = created_in_recovery
            && self
                .store
                .list_principals()
                .await?
                .iter()
                .all(|p| p.object_id == self.instance.bootstrap_object_id)
            && self.store.list_groups().await?.is_empty();
        set.identities = options.identities || fresh;
        let now = self.clock.now();
        set.deletion_for_missing = Deletion {
            deleted_date: now,
            scheduled_purge_date: now + self.retention_days() * 86_400,
        };
        self.store.restore_full(&set).await?;
        self.cache.clear();
        if set.settings.iter().any(|(n, v)| n == "PurgeProtection" && v == "true") {
            self.store.enable_purge_protection().await?;
        }
        tracing::warn!(
            folder = %location.folder, keys = set.keys.len(), identities = set.identities,
            "full restore applied (nothing erased: keys the backup lacks are soft-deleted)"
        );
        Ok(())
    }

    /// PUT /keys/{name}/restore: starts a job restoring one key (all its versions) from a full backup. A live key
    /// of that name gains the backup's versions it lacks and keeps its own (its latest stays); a soft-deleted one is
    /// a conflict (recover it first).
    pub async fn start_selective_restore(
        self: &Arc<Self>,
        caller: &Principal,
        key_name: &str,
        location: BackupLocation,
    ) -> Result<JobStatus, Error> {
        let name = KeyName::parse(key_name)?;
        self.authorize(caller, DataAction::RestoreStart, &Scope::Key(name.to_string()))
            .await?;
        let storage = self.storage()?;
        let location = storage.prepare(location)?;
        let job = self.new_job(JobKind::SelectiveRestore)?;
        let hsm = Arc::clone(self);
        let id = job.job_id.clone();
        tokio::spawn(async move {
            let result = async {
                let state = hsm.read_state(storage.as_ref(), &location).await?;
                let k = state
                    .keys
                    .iter()
                    .find(|k| k.name.eq_ignore_ascii_case(name.as_str()))
                    .ok_or_else(|| Error::NotFound {
                        code: "KeyNotFound",
                        message: format!("The backup has no key named {name}."),
                    })?;
                let dump = hsm.load_dump_key(k)?;
                hsm.store
                    .insert_versions(&dump.versions, NewVersionMode::MergeFromBackup)
                    .await?;
                hsm.cache.invalidate(name.as_str());
                tracing::info!(key = %name, "key restored from a full backup");
                Ok(())
            }
            .await;
            hsm.finish_job(&id, result.map(|()| None));
            hsm.after_job(&id).await;
        });
        Ok(job)
    }
}

fn dump_role(r: RoleDefinition) -> DumpRole {
    DumpRole {
        id: r.id,
        role_name: r.role_name,
        description: r.description,
        permissions: r
            .permissions
            .into_iter()
            .map(|p| (p.actions, p.not_actions, p.data_actions, p.not_data_actions))
            .collect(),
        assignable_scopes: r.assignable_scopes,
    }
}

/// Checks restored policy assignments against the definitions this version knows (parameters re-validated).
/// The opened (decrypted) state document of a full backup.
fn parse_state(json: &[u8]) -> Result<State, Error> {
    let state: State = serde_json::from_slice(json).map_err(|_| corrupt_backup())?;
    if state.v != 1 {
        return Err(Error::BadParameter(format!(
            "Unsupported backup format version {}.",
            state.v
        )));
    }
    Ok(state)
}

/// Fuzzing entry (`fuzz/`): what a restore does with the opened state document before touching the store (keys'
/// names, versions and types; roles, assignments, principals, policies). Key material is sealed separately.
#[doc(hidden)]
pub fn fuzz_parse_opened_state(json: &[u8]) -> Result<(), Error> {
    let state = parse_state(json)?;
    for k in &state.keys {
        KeyName::parse(&k.name).map_err(|_| corrupt_backup())?;
        for v in &k.versions {
            KeyVersion::parse(&v.version).ok_or_else(corrupt_backup)?;
            if let Some(c) = &v.crv {
                coffer_crypto::keys::Curve::parse(c).ok_or_else(corrupt_backup)?;
            }
            B64.decode(&v.material).map_err(|_| corrupt_backup())?;
        }
    }
    for r in state.custom_roles {
        load_role(r)?;
    }
    for a in state.assignments {
        load_assignment(a)?;
    }
    for p in state.principals {
        load_principal(p)?;
    }
    if let Some(p) = state.policies {
        load_policies(p)?;
    }
    Ok(())
}

/// A sample opened state document (a fuzzing seed): one key version, custom role, assignment, principal, group.
#[doc(hidden)]
pub fn fuzz_sample_opened_state() -> Vec<u8> {
    let state = State {
        v: 1,
        instance_id: "00000000-0000-0000-0000-000000000001".into(),
        created: 1_700_000_000,
        keys: vec![DumpKey {
            name: "seed-key".into(),
            deleted: None,
            rotation_policy: Some(("P90D".into(), 0, 0)),
            versions: vec![DumpVersion {
                version: "0123456789abcdef0123456789abcdef".into(),
                kty: "EC".into(),
                size: 256,
                crv: Some("P-256".into()),
                public: (Some("eA".into()), Some("eQ".into())),
                key_ops: vec!["sign".into()],
                enabled: true,
                nbf: None,
                exp: None,
                created: 1_700_000_000,
                updated: 1_700_000_000,
                exportable: false,
                tags: std::collections::BTreeMap::new(),
                release_policy: None,
                material: B64.encode(b"sealed material"),
                origin: Some("generated".into()),
            }],
        }],
        custom_roles: vec![DumpRole {
            id: "11111111-1111-1111-1111-111111111111".into(),
            role_name: "seed role".into(),
            description: "d".into(),
            permissions: vec![(
                vec![],
                vec![],
                vec!["Microsoft.KeyVault/managedHsm/keys/read/action".into()],
                vec![],
            )],
            assignable_scopes: vec!["/".into()],
        }],
        assignments: vec![DumpAssignment {
            name: "22222222-2222-2222-2222-222222222222".into(),
            scope: "/keys".into(),
            role: "11111111-1111-1111-1111-111111111111".into(),
            principal: "33333333-3333-3333-3333-333333333333".into(),
            created: 1_700_000_000,
            expires: Some(1_800_000_000),
            networks: vec!["10.0.0.0/8".into()],
            justification: Some("seed".into()),
        }],
        principals: vec![DumpPrincipal {
            object_id: "33333333-3333-3333-3333-333333333333".into(),
            client_id: "44444444-4444-4444-4444-444444444444".into(),
            display_name: "seed".into(),
            created: 1_700_000_000,
            secrets: vec![("id".into(), "hash".into(), 0)],
            certificates: vec![],
            networks: vec![],
        }],
        groups: vec![DumpGroup {
            object_id: "55555555-5555-5555-5555-555555555555".into(),
            display_name: "g".into(),
            created: 1_700_000_000,
            members: vec!["33333333-3333-3333-3333-333333333333".into()],
        }],
        settings: vec![("AllowKeyManagementOperationsThroughARM".into(), "false".into())],
        policies: Some(vec![]),
    };
    serde_json::to_vec(&state).unwrap_or_default()
}

fn load_policies(list: Vec<crate::policy::PolicyAssignment>) -> Result<Vec<crate::policy::PolicyAssignment>, Error> {
    list.into_iter()
        .map(|a| {
            let req = crate::policy::AssignmentRequest {
                definition_id: a.definition_id.clone(),
                effect: Some(a.effect.name().to_string()),
                parameters: Some(a.parameters.clone()),
            };
            let (def, effect, parameters) = crate::policy::validate(&req)
                .and_then(|v| crate::policy::validate_name(&a.name).map(|()| v))
                .map_err(|e| Error::Corrupt(format!("policy assignment {} in the backup: {e}", a.name)))?;
            Ok(crate::policy::PolicyAssignment {
                definition_id: def.id.to_string(),
                effect,
                parameters,
                ..a
            })
        })
        .collect()
}

fn load_role(r: DumpRole) -> Result<RoleDefinition, Error> {
    Ok(RoleDefinition {
        id: r.id,
        role_name: r.role_name,
        description: r.description,
        role_type: RoleType::Custom,
        permissions: r
            .permissions
            .into_iter()
            .map(|(actions, not_actions, data_actions, not_data_actions)| Permission {
                actions,
                not_actions,
                data_actions,
                not_data_actions,
            })
            .collect(),
        assignable_scopes: r.assignable_scopes,
    })
}

fn dump_assignment(a: RoleAssignment) -> DumpAssignment {
    DumpAssignment {
        name: a.name,
        scope: a.scope.as_string(),
        role: a.role_definition_id,
        principal: a.principal_id,
        created: a.created,
        expires: a.expires,
        networks: a.allowed_networks.iter().map(ToString::to_string).collect(),
        justification: a.justification,
    }
}

fn load_assignment(a: DumpAssignment) -> Result<RoleAssignment, Error> {
    Ok(RoleAssignment {
        name: a.name,
        scope: Scope::parse(&a.scope).map_err(|_| corrupt_backup())?,
        role_definition_id: a.role,
        principal_id: a.principal,
        created: a.created,
        expires: a.expires,
        allowed_networks: a.networks.iter().map(|n| Network::parse(n)).collect::<Result<_, _>>()?,
        last_used: None,
        justification: a.justification,
    })
}

fn dump_principal(p: PrincipalRecord) -> DumpPrincipal {
    DumpPrincipal {
        object_id: p.object_id,
        client_id: p.client_id,
        display_name: p.display_name,
        created: p.created,
        secrets: p
            .secrets
            .into_iter()
            .map(|s| (s.id, B64.encode(s.hash), s.created))
            .collect(),
        certificates: p.certificates.iter().map(|c| B64.encode(c)).collect(),
        networks: p.allowed_networks.iter().map(ToString::to_string).collect(),
    }
}

fn load_principal(p: DumpPrincipal) -> Result<PrincipalRecord, Error> {
    Ok(PrincipalRecord {
        object_id: p.object_id,
        client_id: p.client_id,
        display_name: p.display_name,
        created: p.created,
        secrets: p
            .secrets
            .into_iter()
            .map(|(id, h, created)| {
                Ok(ClientSecretRecord {
                    id,
                    hash: B64.decode(h).map_err(|_| corrupt_backup())?,
                    created,
                })
            })
            .collect::<Result<_, Error>>()?,
        certificates: p
            .certificates
            .iter()
            .map(|c| B64.decode(c).map_err(|_| corrupt_backup()))
            .collect::<Result<_, _>>()?,
        allowed_networks: p.networks.iter().map(|n| Network::parse(n)).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn folder_stamps_are_utc() {
        assert_eq!(super::stamp(0), "19700101000000");
        assert_eq!(super::stamp(1_795_326_716), "20261122055156");
    }
}
