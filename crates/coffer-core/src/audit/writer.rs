//! The audit writer: requests hand their record to one thread, which chains records in arrival order, writes
//! each batch to every sink, and tells each request whether its record was written (group commit: one write and
//! one fsync per batch, however many requests are waiting).
//!
//! Fail-closed rule: a batch counts as recorded when at least one sink wrote it. When no sink could, the
//! records stay queued (unchained, so the chain has no hole), the log is marked unhealthy, and every waiting
//! request is told "not recorded". The queue is retried on the next record, on [`AuditLog::ensure_ready`] and
//! once a second.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use coffer_crypto::SecretBytes;

use super::chain::{ChainHead, chain_line};
use super::checkpoint::Checkpoint;
use super::record::AuditRecord;

/// One chained record as the sinks receive it.
#[derive(Debug, Clone)]
pub struct ChainedRecord {
    /// Position in the chain (0-based, gapless).
    pub seq: u64,
    /// The record's `time` (RFC 3339 UTC, 7 fractional digits).
    pub time: String,
    /// The record's `level` (`Informational`, `Warning`, `Error`).
    pub level: String,
    /// The complete JSON line, without the trailing newline.
    pub line: Vec<u8>,
}

/// Where audit records go. Implementations do blocking I/O; they run on the audit writer thread only.
pub trait AuditSink: Send {
    /// A short name for metrics and messages (`file`, `stdout`, `syslog`).
    fn name(&self) -> &str;
    /// Writes a batch in order. `Ok` means every record of the batch was handed over as durably as the sink
    /// promises (the file sink: written, and fsynced when its policy says so). On `Err` the sink must not leave
    /// a partial record behind where it can (the file sink truncates back).
    fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()>;
    /// Periodic work (about once a second): time-based rotation, retention, interval fsync, reconnects.
    fn tick(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records written by at least one sink.
    pub records: AtomicU64,
    /// Records given up (the queue of unwritten records overflowed).
    pub dropped: AtomicU64,
    /// Failed writes per sink name.
    pub sink_errors: Mutex<HashMap<String, u64>>,
}

impl AuditStats {
    /// Failed writes per sink name.
    pub fn sink_errors(&self) -> Vec<(String, u64)> {
        match self.sink_errors.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            Err(p) => p.into_inner().iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
    fn sink_error(&self, name: &str) {
        let mut m = match self.sink_errors.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        *m.entry(name.to_string()).or_insert(0) += 1;
    }
}

/// Most records kept in memory while no sink can write them.
const MAX_QUEUED: usize = 100_000;
/// Most records written in one batch.
const MAX_BATCH: usize = 1024;

enum Cmd {
    Record(Pending),
    Flush(tokio::sync::oneshot::Sender<bool>),
    SetKey(SecretBytes),
}

struct Pending {
    body: Vec<u8>,
    time: String,
    level: String,
    ack: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// The audit log: a handle to the writer thread.
pub struct AuditLog {
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    healthy: Arc<AtomicBool>,
    stats: Arc<AuditStats>,
    fail_closed: bool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    sink_names: Vec<String>,
    checkpoint: Arc<Mutex<Option<Checkpoint>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("sinks", &self.sink_names)
            .field("fail_closed", &self.fail_closed)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer thread. `head` continues an existing chain (from the newest file), `mac_key` is derived
    /// from the domain secret.
    pub fn start(
        sinks: Vec<Box<dyn AuditSink>>,
        head: ChainHead,
        mac_key: SecretBytes,
        fail_closed: bool,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let stats = Arc::new(AuditStats::default());
        let sink_names = sinks.iter().map(|s| s.name().to_string()).collect();
        let checkpoint = Arc::new(Mutex::new(None));
        let mut w = Writer {
            checkpoint: Arc::clone(&checkpoint),
            sinks,
            head,
            key: mac_key,
            queue: Vec::new(),
            healthy: Arc::clone(&healthy),
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("coffer-audit".into())
            .spawn(move || w.run(&rx))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            healthy,
            stats,
            fail_closed,
            thread: Mutex::new(Some(thread)),
            sink_names,
            checkpoint,
        })
    }

    fn send(&self, cmd: Cmd) -> bool {
        let guard = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.as_ref().is_some_and(|tx| tx.send(cmd).is_ok())
    }

    /// Records `rec` and waits until a sink wrote it. Returns whether the caller may answer normally: `true`
    /// when it was recorded, or when auditing is fail-open.
    pub async fn record(&self, rec: &AuditRecord) -> bool {
        let body = match serde_json::to_vec(rec) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be serialized");
                return !self.fail_closed;
            }
        };
        let (ack, done) = tokio::sync::oneshot::channel();
        let sent = self.send(Cmd::Record(Pending {
            body,
            time: rec.time.clone(),
            level: rec.level.clone(),
            ack: Some(ack),
        }));
        let ok = sent && done.await.unwrap_or(false);
        ok || !self.fail_closed
    }

    /// Records `rec` without waiting (for records of requests that are refused anyway).
    pub fn record_detached(&self, rec: &AuditRecord) {
        if let Ok(body) = serde_json::to_vec(rec) {
            self.send(Cmd::Record(Pending {
                body,
                time: rec.time.clone(),
                level: rec.level.clone(),
                ack: None,
            }));
        }
    }

    /// Whether a request may run: the log is healthy, or a retry of the queued records just succeeded, or
    /// auditing is fail-open.
    pub async fn ensure_ready(&self) -> bool {
        if !self.fail_closed || self.healthy.load(Ordering::SeqCst) {
            return true;
        }
        let (ack, done) = tokio::sync::oneshot::channel();
        self.send(Cmd::Flush(ack)) && done.await.unwrap_or(false)
    }

    /// Whether the last write reached a sink.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Whether requests are refused when they cannot be recorded.
    pub fn fail_closed(&self) -> bool {
        self.fail_closed
    }

    /// The configured sinks' names.
    pub fn sink_names(&self) -> &[String] {
        &self.sink_names
    }

    /// Counters.
    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }

    /// The checkpoint of the chain head made since the last call, if the head moved (or the key changed): the
    /// server stores it about once a second and after [`AuditLog::shutdown`] (see `checkpoint.rs`).
    pub fn take_checkpoint(&self) -> Option<Checkpoint> {
        match self.checkpoint.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    /// Switches the MAC key (after the domain secret changed).
    pub fn set_mac_key(&self, key: SecretBytes) {
        self.send(Cmd::SetKey(key));
    }

    /// Writes what is queued and stops the writer thread.
    pub fn shutdown(&self) {
        let tx = match self.tx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(tx);
        let thread = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = thread
            && t.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Writer {
    checkpoint: Arc<Mutex<Option<Checkpoint>>>,
    sinks: Vec<Box<dyn AuditSink>>,
    head: ChainHead,
    key: SecretBytes,
    queue: Vec<Pending>,
    healthy: Arc<AtomicBool>,
    stats: Arc<AuditStats>,
}

impl Writer {
    fn run(&mut self, rx: &mpsc::Receiver<Cmd>) {
        // The head the chain continues from is the first checkpoint (after an accepted truncation it replaces the
        // stored one, which the files no longer reach).
        self.publish_checkpoint();
        let mut flush_acks = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(cmd) => {
                    self.take(cmd, &mut flush_acks);
                    while self.queue.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(cmd) => self.take(cmd, &mut flush_acks),
                            Err(_) => break,
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    for s in &mut self.sinks {
                        if let Err(e) = s.tick() {
                            tracing::warn!(sink = s.name(), error = %e, "audit sink maintenance failed");
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.write_queue();
                    if !self.queue.is_empty() {
                        tracing::error!(
                            records = self.queue.len(),
                            "audit records could not be written before shutdown"
                        );
                    }
                    return;
                }
            }
            let ok = self.write_queue();
            for ack in flush_acks.drain(..) {
                let _ = ack.send(ok);
            }
        }
    }

    fn take(&mut self, cmd: Cmd, flush_acks: &mut Vec<tokio::sync::oneshot::Sender<bool>>) {
        match cmd {
            Cmd::Record(p) => {
                if self.queue.len() >= MAX_QUEUED {
                    let mut dropped = self.queue.remove(0);
                    if let Some(a) = dropped.ack.take() {
                        let _ = a.send(false);
                    }
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                self.queue.push(p);
            }
            Cmd::Flush(ack) => flush_acks.push(ack),
            Cmd::SetKey(k) => {
                self.key = k;
                // The stored checkpoint must verify under the new key, also if no record follows before a stop.
                self.publish_checkpoint();
            }
        }
    }

    /// Writes the queue, in chunks of at most [`MAX_BATCH`]; returns whether the log is healthy afterwards. While
    /// the log is unhealthy the first attempt is a single record, so a retry against a broken sink costs one record's
    /// work however long the queue has grown.
    fn write_queue(&mut self) -> bool {
        if self.sinks.is_empty() {
            // Nothing can record: the records are not kept (the configuration allows this only fail-open).
            for mut p in self.queue.drain(..) {
                if let Some(a) = p.ack.take() {
                    let _ = a.send(false);
                }
            }
            return false;
        }
        let mut healthy = self.healthy.load(Ordering::SeqCst);
        while !self.queue.is_empty() {
            let n = if healthy { self.queue.len().min(MAX_BATCH) } else { 1 };
            let ok = self.write_chunk(n);
            // The health flag changes before anyone is answered: a client told "not recorded" that retries at once
            // must find the log unhealthy (and be refused before running), not healthy.
            if self.healthy.swap(ok, Ordering::SeqCst) != ok {
                if ok {
                    tracing::warn!("audit log recovered: records are written again");
                } else {
                    tracing::error!("no audit sink can write: requests are refused until one can (fail-closed)");
                }
            }
            healthy = ok;
            if ok {
                for mut p in self.queue.drain(..n) {
                    if let Some(a) = p.ack.take() {
                        let _ = a.send(true);
                    }
                }
            } else {
                for p in &mut self.queue {
                    if let Some(a) = p.ack.take() {
                        let _ = a.send(false);
                    }
                }
                return false;
            }
        }
        healthy
    }

    /// Chains the first `n` queued records and hands them to every sink; on success the chain head moves on.
    fn write_chunk(&mut self, n: usize) -> bool {
        let mut head = self.head.clone();
        let batch: Vec<ChainedRecord> = self
            .queue
            .iter()
            .take(n)
            .map(|p| {
                let (line, next) = chain_line(&head, &self.key, &p.body);
                let rec = ChainedRecord {
                    seq: head.next_seq,
                    time: p.time.clone(),
                    level: p.level.clone(),
                    line,
                };
                head = next;
                rec
            })
            .collect();
        let mut any = false;
        for s in &mut self.sinks {
            match s.write(&batch) {
                Ok(()) => any = true,
                Err(e) => {
                    self.stats.sink_error(s.name());
                    tracing::error!(sink = s.name(), error = %e, "audit sink write failed");
                }
            }
        }
        if any {
            self.head = head;
            self.stats.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.publish_checkpoint();
        }
        any
    }

    /// Makes the checkpoint of the current head available to [`AuditLog::take_checkpoint`] (one HMAC per batch).
    fn publish_checkpoint(&self) {
        if let Some(cp) = Checkpoint::of(&self.head, &self.key) {
            match self.checkpoint.lock() {
                Ok(mut g) => *g = Some(cp),
                Err(p) => *p.into_inner() = Some(cp),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails while `broken` is set and remembers the size of every batch it was given.
    struct Flaky {
        broken: Arc<AtomicBool>,
        sizes: Arc<Mutex<Vec<usize>>>,
        lines: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl AuditSink for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
            self.sizes.lock().unwrap().push(batch.len());
            if self.broken.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("broken"));
            }
            self.lines.lock().unwrap().extend(batch.iter().map(|r| r.line.clone()));
            Ok(())
        }
    }

    fn record(n: usize) -> AuditRecord {
        let d = super::super::record::RecordDefaults {
            resource_id: "r".into(),
            tenant_id: "t".into(),
            pool_name: "p".into(),
        };
        d.record(format!("2026-11-22T08:00:00.{n:07}Z"), "KeyGet")
    }

    #[tokio::test]
    async fn an_outage_queues_records_retries_cheaply_and_writes_them_in_order_afterwards() {
        let broken = Arc::new(AtomicBool::new(false));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky {
            broken: Arc::clone(&broken),
            sizes: Arc::clone(&sizes),
            lines: Arc::clone(&lines),
        };
        let key = SecretBytes::new(vec![3; 32]);
        let log = AuditLog::start(vec![Box::new(sink)], ChainHead::genesis(), key.duplicate(), true).unwrap();
        assert!(log.record(&record(0)).await);
        broken.store(true, Ordering::SeqCst);
        assert!(!log.record(&record(1)).await, "fail-closed: not recorded");
        assert!(!log.healthy());
        for i in 2..50 {
            log.record_detached(&record(i));
        }
        assert!(!log.ensure_ready().await);
        // While broken, every retry tried one record, not the whole queue.
        let tries = sizes.lock().unwrap().clone();
        assert!(tries.iter().skip(2).all(|n| *n == 1), "{tries:?}");
        broken.store(false, Ordering::SeqCst);
        assert!(log.ensure_ready().await);
        assert!(log.healthy());
        log.shutdown();
        let written = lines.lock().unwrap().clone();
        assert_eq!(written.len(), 50);
        let mut v = super::super::chain::Verifier::new(Some(key)).from_genesis();
        for l in &written {
            v.check(l).unwrap();
        }
        assert_eq!(
            log.stats().sink_errors(),
            vec![("flaky".to_string(), tries.len() as u64 - 1)]
        );
    }
}
