//! Prometheus metrics (OpenMetrics text, `prometheus-client`), served by a separate HTTPS listener
//! (`[metrics] listen`) at `GET /metrics`. Request counters are updated by the dispatcher; instance facts (keys by
//! type, activation, seal, last backup, audit health, certificate expiry) and the store-call counts are read at
//! scrape time.
use std::sync::Mutex;
use std::time::Duration;

use coffer_core::Hsm;
use coffer_core::store_metrics::StoreCounters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KtyLabel {
    kty: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms .. ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Audit counters last copied into the registry (the audit writer keeps its own totals).
#[derive(Debug, Default)]
struct AuditSeen {
    records: u64,
    dropped: u64,
    sink_errors: std::collections::HashMap<String, u64>,
}

/// The metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<OperationLabel, Histogram, fn() -> Histogram>,
    auth_failures: Counter,
    denials: Family<OperationLabel, Counter>,
    throttled: Family<OperationLabel, Counter>,
    keys: Family<KtyLabel, Gauge>,
    activated: Gauge,
    seal: Family<ProviderLabel, Gauge>,
    last_backup: Gauge,
    audit_records: Counter,
    audit_dropped: Counter,
    audit_sink_errors: Family<SinkLabel, Counter>,
    audit_healthy: Gauge,
    tls_not_after: Gauge,
    store_queries: Family<MethodLabel, Counter>,
    token_verifications: Counter,
    slots_in_flight: Gauge,
    slots_waiting: Gauge,
    slots_waited: Counter,
    audit_seen: Mutex<AuditSeen>,
    seal_provider: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric. `tls_not_after` is the serving certificate's expiry (Unix seconds).
    pub fn new(seal_provider: &str, tls_not_after: Option<i64>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "coffer_requests",
            "Requests by operationName and HTTP status",
            requests.clone(),
        );
        let duration = Family::<OperationLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "coffer_request_duration_seconds",
            "Request processing time by operationName",
            duration.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "coffer_authentication_failures",
            "Requests without a valid bearer token (401) and refused token requests",
            auth_failures.clone(),
        );
        let denials = Family::<OperationLabel, Counter>::default();
        registry.register(
            "coffer_authorization_denials",
            "Requests refused by local RBAC (403)",
            denials.clone(),
        );
        let throttled = Family::<OperationLabel, Counter>::default();
        registry.register("coffer_throttled_requests", "Requests answered 429", throttled.clone());
        let keys = Family::<KtyLabel, Gauge>::default();
        registry.register("coffer_keys", "Keys that are not deleted, by key type", keys.clone());
        let activated = Gauge::default();
        registry.register(
            "coffer_activated",
            "1 when the security domain is active, 0 when provisioned or in recovery",
            activated.clone(),
        );
        let seal = Family::<ProviderLabel, Gauge>::default();
        registry.register(
            "coffer_seal_provider_info",
            "The seal provider of the domain secret",
            seal.clone(),
        );
        let last_backup = Gauge::default();
        registry.register(
            "coffer_last_successful_backup_timestamp_seconds",
            "Unix time of the last successful full backup (0: never)",
            last_backup.clone(),
        );
        let audit_records = Counter::default();
        registry.register("coffer_audit_records", "Audit records written", audit_records.clone());
        let audit_dropped = Counter::default();
        registry.register(
            "coffer_audit_dropped_records",
            "Audit records given up after no sink could write them",
            audit_dropped.clone(),
        );
        let audit_sink_errors = Family::<SinkLabel, Counter>::default();
        registry.register(
            "coffer_audit_sink_errors",
            "Failed audit writes by sink",
            audit_sink_errors.clone(),
        );
        let audit_healthy = Gauge::default();
        registry.register(
            "coffer_audit_healthy",
            "1 when the last audit write reached a sink",
            audit_healthy.clone(),
        );
        let tls = Gauge::default();
        registry.register(
            "coffer_tls_certificate_not_after_timestamp_seconds",
            "Unix time when the serving TLS certificate expires",
            tls.clone(),
        );
        if let Some(t) = tls_not_after {
            tls.set(t);
        }
        let store_queries = Family::<MethodLabel, Counter>::default();
        registry.register(
            "coffer_store_queries",
            "Calls of each storage method (one transaction each)",
            store_queries.clone(),
        );
        let token_verifications = Counter::default();
        registry.register(
            "coffer_bearer_token_verifications",
            "Bearer tokens not in the verified-token cache whose signature was checked (after the client address's \
             throttling budget admitted them)",
            token_verifications.clone(),
        );
        let slots_in_flight = Gauge::default();
        registry.register(
            "coffer_principal_requests_in_progress",
            "Requests of signed-in principals holding one of their principal's concurrency slots",
            slots_in_flight.clone(),
        );
        let slots_waiting = Gauge::default();
        registry.register(
            "coffer_principal_requests_waiting",
            "Requests waiting for one of their principal's concurrency slots",
            slots_waiting.clone(),
        );
        let slots_waited = Counter::default();
        registry.register(
            "coffer_principal_requests_waited",
            "Requests that waited for one of their principal's concurrency slots",
            slots_waited.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            auth_failures,
            denials,
            throttled,
            keys,
            activated,
            seal,
            last_backup,
            audit_records,
            audit_dropped,
            audit_sink_errors,
            audit_healthy,
            tls_not_after: tls,
            store_queries,
            token_verifications,
            slots_in_flight,
            slots_waiting,
            slots_waited,
            audit_seen: Mutex::default(),
            seal_provider: seal_provider.to_string(),
        }
    }

    /// Counts a finished request.
    pub fn observe(&self, operation: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&OperationLabel {
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
        if status == 429 {
            self.throttled
                .get_or_create(&OperationLabel {
                    operation: operation.to_string(),
                })
                .inc();
        }
    }

    /// Counts an authentication failure.
    pub fn authentication_failure(&self) {
        self.auth_failures.inc();
    }

    /// Counts the verification of a bearer token that was not in the cache.
    pub fn token_verification(&self) {
        self.token_verifications.inc();
    }

    /// Copies the concurrency slots' counts (at scrape time).
    pub fn set_principal_slots(&self, slots: &crate::principal_slots::PrincipalSlots) {
        self.slots_in_flight
            .set(i64::try_from(slots.in_flight()).unwrap_or(i64::MAX));
        self.slots_waiting
            .set(i64::try_from(slots.queued()).unwrap_or(i64::MAX));
        self.slots_waited
            .inner()
            .fetch_max(slots.queued_total(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts an RBAC denial.
    pub fn denial(&self, operation: &str) {
        self.denials
            .get_or_create(&OperationLabel {
                operation: operation.to_string(),
            })
            .inc();
    }

    /// The serving certificate's expiry, when known.
    pub fn tls_not_after(&self) -> Option<i64> {
        let t = self.tls_not_after.get();
        (t > 0).then_some(t)
    }

    /// Sets the serving certificate's expiry.
    pub fn set_tls_not_after(&self, t: i64) {
        self.tls_not_after.set(t);
    }

    /// Reads the instance facts and the store-call counts and renders the exposition.
    pub async fn render(&self, hsm: &Hsm, store_queries: &StoreCounters) -> String {
        self.keys.clear();
        match hsm.key_counts().await {
            Ok(counts) => {
                for (kty, n) in counts {
                    self.keys.get_or_create(&KtyLabel { kty }).set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: key counts unavailable"),
        }
        for kty in ["RSA-HSM", "EC-HSM", "oct-HSM"] {
            let _ = self.keys.get_or_create(&KtyLabel { kty: kty.into() });
        }
        self.activated
            .set(i64::from(hsm.state() == coffer_core::store::LifecycleState::Active));
        self.seal
            .get_or_create(&ProviderLabel {
                provider: self.seal_provider.clone(),
            })
            .set(1);
        match hsm.last_successful_backup().await {
            Ok(t) => {
                self.last_backup.set(t.unwrap_or(0));
            }
            Err(e) => tracing::warn!(error = %e, "metrics: last backup time unavailable"),
        }
        if let Some(log) = hsm.audit_log() {
            let stats = log.stats();
            self.audit_healthy.set(i64::from(log.healthy()));
            let mut seen = match self.audit_seen.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            let records = stats.records.load(std::sync::atomic::Ordering::Relaxed);
            self.audit_records.inc_by(records.saturating_sub(seen.records));
            seen.records = records;
            let dropped = stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
            self.audit_dropped.inc_by(dropped.saturating_sub(seen.dropped));
            seen.dropped = dropped;
            for name in log.sink_names() {
                let _ = self.audit_sink_errors.get_or_create(&SinkLabel { sink: name.clone() });
            }
            for (sink, n) in stats.sink_errors() {
                let before = seen.sink_errors.get(&sink).copied().unwrap_or(0);
                self.audit_sink_errors
                    .get_or_create(&SinkLabel { sink: sink.clone() })
                    .inc_by(n.saturating_sub(before));
                seen.sink_errors.insert(sink, n);
            }
        }
        // After the reads above, so that this scrape's own store calls are included. `fetch_max`: the counters
        // only grow, and of two concurrent scrapes the older snapshot must not win.
        for (method, n) in store_queries.snapshot() {
            self.store_queries
                .get_or_create(&MethodLabel { method })
                .inner()
                .fetch_max(n, std::sync::atomic::Ordering::Relaxed);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// The router of the metrics listener.
pub fn router(state: std::sync::Arc<crate::state::AppState>) -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(app): axum::extract::State<std::sync::Arc<crate::state::AppState>>| async move {
                    if let Some(slots) = &app.principal_slots {
                        app.metrics.set_principal_slots(slots);
                    }
                    let body = app.metrics.render(&app.hsm, &app.store_queries).await;
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response()
                },
            ),
        )
        .with_state(state)
}
