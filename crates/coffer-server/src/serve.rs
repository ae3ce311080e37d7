//! Starting and stopping the server: open the data directory, create or unseal the instance, issue the TLS
//! certificate, bind, serve until SIGTERM/SIGINT, then shut down gracefully.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use coffer_core::Hsm;
use coffer_core::clock::SystemClock;
use coffer_core::hsm::HsmConfig;
use coffer_core::instance::CreateOptions;
use coffer_core::store_metrics::CountingStore;

use crate::config::ServeConfig;
use crate::datadir::{DataDir, write_private};
use crate::state::AppState;

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The public base URL.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The data directory (canonical path).
    pub data_dir: PathBuf,
    /// The metrics listener's address, when one is configured.
    pub metrics_addr: Option<SocketAddr>,
    audit: Arc<coffer_core::audit::AuditLog>,
    hsm: Arc<Hsm>,
    checkpoints: tokio::task::JoinHandle<()>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    jobs: tokio::task::JoinHandle<()>,
    /// Following other nodes' changes (PostgreSQL only).
    follow: Option<tokio::task::JoinHandle<()>>,
    tls: Arc<crate::tls::TlsManager>,
    tls_watch: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to 10 s), and waits for the server task.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.jobs.abort();
        if let Some(f) = &self.follow {
            f.abort();
        }
        if let Some(w) = &self.tls_watch {
            w.abort();
        }
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        self.task.await.context("server task")?.context("server")?;
        // Everything answered has been recorded; stop the writer (it writes what is still queued), then store the
        // final checkpoint of the chain head.
        self.checkpoints.abort();
        self.audit.shutdown();
        self.hsm
            .save_audit_checkpoint()
            .await
            .context("storing the audit checkpoint")?;
        Ok(())
    }

    /// Re-reads the TLS certificate and key files (`tls_cert`/`tls_key`) and the client CA file now, as SIGHUP
    /// does for `coffer serve`. New connections get the new certificate. On failure the current one stays and the
    /// error is logged and returned. Returns whether anything was reloaded (false with a generated certificate).
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        self.tls.reload(true)
    }
}

/// Makes the process harder to read secrets out of: no core dumps, not ptrace-attachable by other users.
fn harden_process() {
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
}

/// Starts the server in the background and returns once it is listening.
pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    config.validate()?;
    harden_process();
    let dir = DataDir::open(&config.data_dir)?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url_for(addr.port());
    let resource = config
        .resource
        .clone()
        .unwrap_or_else(|| public_url.clone())
        .trim_end_matches('/')
        .to_string();
    // The Graph subset's tokens are for `{public URL}/graph` and must not be data-plane tokens.
    anyhow::ensure!(
        resource != format!("{}/graph", public_url.trim_end_matches('/')),
        "the resource {resource} is the Graph subset's resource: choose another --resource"
    );

    // Every store call is counted, from the first one on (`coffer_store_queries_total`).
    tracing::info!(database = %config.database.describe(&dir), "opening the store");
    let sql = Arc::new(config.database.open(&dir).await?);
    // PostgreSQL: other nodes may share the database; their changes are followed (`follow_changes`).
    let feed_listener = sql.change_listener().await?;
    let store = CountingStore::new(sql);
    let store_queries = Arc::clone(store.counters());
    let fresh = coffer_core::store::InstanceStore::instance(&store).await?.is_none();
    if !fresh && config.recovery {
        tracing::warn!(
            "--recovery only applies to a new instance: {} already holds one",
            dir.root.display()
        );
    }
    let seal = crate::seal::provider(&config.seal, &dir, fresh)?;
    let hsm_config = HsmConfig {
        public_url: public_url.clone(),
        resource: resource.clone(),
        token_lifetime_secs: config.token_lifetime_secs,
        key_cache_capacity: 10_000,
        external_issuers: config
            .issuers
            .iter()
            .map(|i| i.to_core())
            .collect::<anyhow::Result<Vec<_>>>()?,
        attestation_authorities: config
            .attestation_authorities
            .iter()
            .map(|a| a.to_core())
            .collect::<anyhow::Result<Vec<_>>>()?,
        separation_of_duties: coffer_core::rbac::SeparationOfDuties::parse(&config.separation_of_duties)
            .context("separation_of_duties must be off, warn or deny")?,
        audit_resource_id: config.audit.resource_id.clone(),
        security_domain_redownload_without_quorum: config.security_domain_redownload_without_quorum,
    };
    let create = CreateOptions {
        instance_name: config.instance_name.clone(),
        dev: config.dev,
        soft_delete_retention_days: config.soft_delete_retention_days,
        purge_protection: config.purge_protection,
        administrators: config.administrators.clone(),
        recovery: config.recovery,
    };
    let (mut hsm, credentials) =
        Hsm::open_or_create(Arc::new(store), Arc::new(SystemClock), seal, hsm_config, &create).await?;
    hsm.set_key_set_fetcher(Arc::new(crate::jwks::HttpsKeySetFetcher::default()));
    hsm.set_backup_storage(Arc::new(crate::backup_storage::BlobBackupStorage::new(
        config.backup.policy()?,
    )?));

    let checkpoint = hsm.audit_checkpoint().await?;
    let audit_log = start_audit(&config, &dir, &mut hsm, checkpoint)?;
    let acl_source = hsm.init_network_acls(config.network.to_doc()).await?;
    let acls = hsm.network_acls();
    tracing::info!(
        source = acl_source,
        default_action = %acls.doc().default_action,
        public_network_access = %acls.doc().public_network_access,
        ip_rules = acls.doc().ip_rules.len(),
        "network ACLs"
    );

    let (cert_pem, key_pem) = crate::tls::certificate(&config, &dir)?;
    let metrics = Arc::new(crate::metrics::Metrics::new(
        &config.seal.provider,
        crate::tls::not_after(&cert_pem),
    ));
    let tls = Arc::new(crate::tls::TlsManager::new(
        &config,
        &cert_pem,
        &key_pem,
        Arc::clone(&metrics),
    )?);

    let created = credentials.is_some();
    if let Some(c) = credentials {
        let ca_cert = if config.tls_cert.is_some() {
            None
        } else {
            Some(dir.ca_cert().display().to_string())
        };
        let secret = String::from_utf8(c.client_secret.expose_secret().to_vec()).context("client secret encoding")?;
        let doc = serde_json::json!({
            "url": public_url,
            "tenant_id": c.tenant_id,
            "authority": public_url,
            "client_id": c.client_id,
            "client_secret": secret,
            "object_id": c.object_id,
            "ca_cert": ca_cert,
        });
        let text = zeroize::Zeroizing::new(serde_json::to_vec_pretty(&doc)?);
        write_private(&dir.admin_credentials(), &text)?;
        tracing::info!(path = %dir.admin_credentials().display(), "wrote bootstrap administrator credentials");
    }
    if created && config.dev {
        let (file, officers) = hsm.dev_security_domain().await?;
        let sd_dir = dir.root.join("dev-security-domain");
        std::fs::create_dir_all(&sd_dir)?;
        write_private(&sd_dir.join("security-domain.json"), file.as_bytes())?;
        for (i, o) in officers.iter().enumerate() {
            let n = i + 1;
            write_private(&sd_dir.join(format!("officer{n}.pem")), o.key_pem().expose_secret())?;
            crate::datadir::write_public(&sd_dir.join(format!("officer{n}.cer")), o.cert_pem().as_bytes())?;
        }
        tracing::warn!(
            dir = %sd_dir.display(),
            "DEVELOPMENT INSTANCE: activated with a generated security domain whose three wrapping keys (quorum 2) \
             are stored next to it in the data directory. Anyone who reads that directory can recover every key. \
             Never use --dev for real keys."
        );
    }
    if hsm.instance().dev {
        tracing::warn!("this is a development instance (--dev): its security-domain keys are in the data directory");
    }
    match hsm.state() {
        coffer_core::store::LifecycleState::Provisioned => tracing::warn!(
            "the HSM is not activated: an Administrator must download its security domain (coffer sd download)"
        ),
        coffer_core::store::LifecycleState::Recovery => {
            tracing::warn!("the HSM is in recovery mode: upload a security domain restore blob (coffer sd upload)")
        }
        coffer_core::store::LifecycleState::Active => {}
    }

    let hsm = Arc::new(hsm);
    let hsm_for_jobs = Arc::clone(&hsm);
    let state = Arc::new(AppState {
        hsm,
        public_url: public_url.clone(),
        resource,
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: Duration::from_secs(config.connections.body_read_timeout_secs),
        metrics,
        store_queries,
        tls: Arc::clone(&tls),
        facts: crate::state::ServerFacts {
            data_dir: dir.root.clone(),
            seal_provider: config.seal.provider.clone(),
            tls_min_version: config.tls.min_version.clone(),
            client_auth: config.tls.client_auth.clone(),
        },
        throttle: config
            .throttling
            .enabled
            .then(|| Arc::new(coffer_core::throttle::Throttle::new(config.throttling.limits()))),
        principal_slots: config
            .throttling
            .principal_slots()
            .map(|cap| Arc::new(crate::principal_slots::PrincipalSlots::new(cap))),
    });
    // Connection caps and deadlines; trusted reverse proxies (from the network ACLs in force) are exempt from the
    // per-address cap.
    let connections = |hsm: &Arc<Hsm>| {
        let hsm = Arc::clone(hsm);
        crate::connections::Connections::new(
            config.connections.limits(),
            Arc::new(move |ip| hsm.network_acls().is_trusted_proxy(ip)),
        )
    };
    let handle = axum_server::Handle::new();
    let metrics_addr = match config.metrics.listen {
        Some(addr) => {
            let l =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding the metrics listener {addr}"))?;
            l.set_nonblocking(true)?;
            let bound = l.local_addr()?;
            let server = axum_server::from_tcp(l)?
                .acceptor(tls.acceptor(connections(&hsm_for_jobs)))
                .handle(handle.clone());
            let app = crate::metrics::router(Arc::clone(&state));
            tokio::spawn(server.serve(app.into_make_service()));
            tracing::info!(addr = %bound, "metrics listener (GET /metrics)");
            Some(bound)
        }
        None => None,
    };
    let app = crate::routes::router(state);
    let server = axum_server::from_tcp(listener)?
        .acceptor(tls.acceptor(connections(&hsm_for_jobs)))
        .handle(handle.clone());
    let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    let checkpoints = tokio::spawn(save_audit_checkpoints(Arc::clone(&hsm_for_jobs)));
    let jobs = tokio::spawn(run_jobs(Arc::clone(&hsm_for_jobs), config.jobs_interval_secs));
    let follow = feed_listener.map(|l| tokio::spawn(follow_changes(Arc::clone(&hsm_for_jobs), l)));
    let tls_watch = (config.tls.reload_interval_secs > 0 && tls.watches_files())
        .then(|| tokio::spawn(Arc::clone(&tls).watch(Duration::from_secs(config.tls.reload_interval_secs))));
    tracing::info!(url = %public_url, %addr, "coffer is listening");
    Ok(Running {
        url: public_url,
        addr,
        metrics_addr,
        audit: audit_log,
        hsm: hsm_for_jobs,
        checkpoints,
        data_dir: dir.root,
        handle,
        task,
        jobs,
        follow,
        tls,
        tls_watch,
    })
}

/// Applies other nodes' changes to this node's view: woken by PostgreSQL's notification, and at least every second
/// (a notification lost with a dropped connection costs at most that). Old feed entries are pruned now and then.
async fn follow_changes(hsm: Arc<Hsm>, mut listener: coffer_store::ChangeListener) {
    /// Without a successful read of the feed for this long, decisions are refused (fail closed) until the database
    /// is back and the whole state has been rebuilt.
    const FEED_LOST_AFTER: Duration = Duration::from_secs(5);
    let mut follower = hsm.follower();
    let mut pruned = std::time::Instant::now();
    let mut last_ok = std::time::Instant::now();
    loop {
        listener.wait(Duration::from_secs(1)).await;
        if hsm.state_is_stale() {
            // Rebuild from the store, then follow from where the rebuild started.
            let start = hsm.follower_from_now().await;
            match (start, hsm.reload_state().await) {
                (Ok(f), Ok(_)) => {
                    follower = f;
                    last_ok = std::time::Instant::now();
                    tracing::info!("state rebuilt from the store: serving again");
                }
                (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "could not rebuild the state yet"),
            }
            continue;
        }
        match hsm.catch_up(&mut follower).await {
            Ok(n) => {
                last_ok = std::time::Instant::now();
                if n > 0 {
                    tracing::debug!(changes = n, "applied changes from the feed");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not apply the change feed; retrying");
                if last_ok.elapsed() > FEED_LOST_AFTER {
                    hsm.feed_lost();
                }
            }
        }
        if pruned.elapsed() > Duration::from_secs(600) {
            pruned = std::time::Instant::now();
            if let Err(e) = hsm.prune_change_feed().await {
                tracing::warn!(error = %e, "could not prune the change feed");
            }
        }
    }
}

/// Opens the audit sinks, continues the chain where the newest file ends, and starts the audit writer.
fn start_audit(
    config: &ServeConfig,
    dir: &DataDir,
    hsm: &mut Hsm,
    checkpoint: Option<Result<coffer_core::audit::Checkpoint, String>>,
) -> anyhow::Result<Arc<coffer_core::audit::AuditLog>> {
    use coffer_core::audit::{AuditLog, AuditSink, ChainHead};
    let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
    let mut head = ChainHead::genesis();
    if config.audit.file.enabled {
        let (sink, h) = crate::audit_sinks::file::FileSink::open(&config.audit.file, &dir.root)?;
        head = h;
        if let Some(cp) = checkpoint {
            let checked = cp.and_then(|cp| crate::audit_sinks::file::check_checkpoint(sink.dir(), &head, &cp));
            if let Err(why) = checked {
                if !config.audit.accept_truncation {
                    anyhow::bail!(
                        "audit log truncated, refusing to start: {why}. Run `coffer audit verify --data-dir` on the \
                         audit directory, restore the missing files if they can be found, and once the loss is \
                         understood start once with --accept-audit-truncation (docs/AUDIT.md, \"Truncation\")"
                    );
                }
                tracing::error!(
                    reason = %why,
                    "AUDIT LOG TRUNCATED: starting anyway (accept_truncation); the chain continues from the last \
                     record left"
                );
            }
        }
        hsm.set_audit_reader(Arc::new(crate::audit_sinks::file::FileAuditReader::new(
            sink.dir().to_path_buf(),
        )));
        tracing::info!(dir = %sink.dir().display(), next_seq = head.next_seq, "audit file sink");
        sinks.push(Box::new(sink));
    }
    if config.audit.stdout {
        sinks.push(Box::new(crate::audit_sinks::stdout::StdoutSink));
    }
    if let Some(syslog) = &config.audit.syslog {
        sinks.push(Box::new(crate::audit_sinks::syslog::SyslogSink::new(syslog)?));
    }
    if sinks.is_empty() {
        tracing::warn!("no audit sink is configured: requests are not recorded");
    }
    if !config.audit.fail_closed {
        tracing::warn!("auditing is fail-open: requests are served even when they cannot be recorded");
    }
    let log = Arc::new(AuditLog::start(
        sinks,
        head,
        hsm.audit_mac_key(),
        config.audit.fail_closed,
    )?);
    hsm.set_audit_log(Arc::clone(&log));
    Ok(log)
}

/// Stores the audit checkpoint (`coffer_core::audit::checkpoint`) once a second when the chain moved: not per
/// request, so a crash can leave up to a second of records uncovered (the chain still covers them).
async fn save_audit_checkpoints(hsm: Arc<Hsm>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = hsm.save_audit_checkpoint().await {
            tracing::warn!(error = %e, "could not store the audit checkpoint");
        }
    }
}

/// The background jobs (purge of expired deleted keys, scheduled rotation), every `interval` seconds.
async fn run_jobs(hsm: Arc<Hsm>, interval: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(interval.max(1)));
    loop {
        tick.tick().await;
        match hsm.run_jobs().await {
            Ok(r) if !r.purged.is_empty() || !r.rotated.is_empty() || !r.failed.is_empty() => {
                tracing::info!(
                    purged = r.purged.len(),
                    rotated = r.rotated.len(),
                    failed = r.failed.len(),
                    "jobs ran"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background jobs failed"),
        }
    }
}

/// Runs until SIGTERM or SIGINT, then shuts down gracefully. SIGHUP reloads the TLS certificate files.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before starting, so that an early SIGHUP does not terminate the process.
    let mut hup = signal(SignalKind::hangup())?;
    let running = start(config).await?;
    let mut term = signal(SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM received, shutting down");
                break;
            }
            _ = &mut ctrl_c => {
                tracing::info!("SIGINT received, shutting down");
                break;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP received, reloading the TLS files");
                // A failure is logged by the reload; the current certificate stays.
                let _ = running.reload_tls();
            }
        }
    }
    running.shutdown().await
}
