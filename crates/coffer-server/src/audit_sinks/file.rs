//! The audit file sink: JSON Lines files `audit-{first seq, 12 digits}-{UTC start}.jsonl` in one directory, so
//! that the shell's sort order is the chain order. A new file starts when the current one reaches
//! `max_file_bytes`, when the hour (or day) changes, at every server start, and when the current file was moved
//! or removed from under the server (external log shipping). Files older than `retention_days` are deleted.
//!
//! A batch is written with one `write` and, under `fsync = "always"`, one `fdatasync` before any request in it is
//! answered. A failed write is truncated back so no partial record stays behind.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use coffer_core::audit::record::parse_time;
use coffer_core::audit::{AuditSink, ChainHead, ChainedRecord};

use crate::config::FileSinkConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fsync {
    Always,
    Interval,
    Never,
}

#[derive(Debug)]
struct Current {
    file: File,
    path: PathBuf,
    size: u64,
    period: i64,
    dev: u64,
    ino: u64,
}

/// The file sink.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    max_bytes: u64,
    period_secs: Option<i64>,
    retention: Option<Duration>,
    fsync: Fsync,
    current: Option<Current>,
    unsynced: bool,
    last_retention: Option<Instant>,
}

/// The directory the file sink writes to, for a configuration and data directory.
pub fn audit_dir(cfg: &FileSinkConfig, data_dir: &Path) -> PathBuf {
    if cfg.dir.is_absolute() {
        cfg.dir.clone()
    } else {
        data_dir.join(&cfg.dir)
    }
}

/// The audit files in `dir`, in chain order.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The first sequence number in a file's name.
pub fn first_seq_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("audit-")?.split('-').next()?.parse().ok()
}

/// The chain hash of the record with sequence number `seq` in the audit files of `dir` (`None`: not there). Reads
/// the one file whose name says it holds `seq` (the newest whose first sequence number is not above it).
pub fn hash_at(dir: &Path, seq: u64) -> std::io::Result<Option<[u8; 32]>> {
    let files = list_files(dir)?;
    let Some(path) = files
        .iter()
        .rev()
        .find(|p| first_seq_of(p).is_some_and(|first| first <= seq))
    else {
        return Ok(None);
    };
    let text = std::fs::read(path)?;
    Ok(text
        .split(|b| *b == b'\n')
        .filter_map(ChainHead::after_line)
        .find(|h| h.next_seq == seq.saturating_add(1))
        .map(|h| h.prev))
}

/// Checks the audit files of `dir`, whose chain ends at `head`, against the stored checkpoint (`checkpoint.rs`).
pub fn check_checkpoint(dir: &Path, head: &ChainHead, cp: &coffer_core::audit::Checkpoint) -> Result<(), String> {
    cp.check(head, |seq| hash_at(dir, seq).ok().flatten())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYYMMDDTHHMMSSZ`.
fn stamp(ts: i64) -> String {
    let t = coffer_core::audit::record::format_time(i128::from(ts) * 1_000_000_000);
    // 2026-11-22T08:05:42.0000000Z
    let digits: String = t.chars().take(19).filter(char::is_ascii_digit).collect();
    format!("{}T{}Z", digits.get(..8).unwrap_or(""), digits.get(8..).unwrap_or(""))
}

/// The last complete line of a file (up to 1 MiB back from its end).
fn last_complete_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let take = len.min(1024 * 1024);
    f.seek(SeekFrom::Start(len - take))?;
    let mut buf = Vec::with_capacity(usize::try_from(take).unwrap_or(0));
    f.read_to_end(&mut buf)?;
    // Drop an incomplete last line (a crash during a write: that record was never acknowledged).
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Ok(None);
    };
    let body = buf.get(..end).unwrap_or(&[]);
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    Ok(body.get(start..).map(<[u8]>::to_vec))
}

impl FileSink {
    /// Opens the sink on its directory (creating it, mode 0700) and finds where the chain continues.
    pub fn open(cfg: &FileSinkConfig, data_dir: &Path) -> anyhow::Result<(Self, ChainHead)> {
        let dir = audit_dir(cfg, data_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating the audit directory {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        let mut head = ChainHead::genesis();
        for path in list_files(&dir)?.iter().rev() {
            if let Some(line) = last_complete_line(path)? {
                head = ChainHead::after_line(&line).with_context(|| {
                    format!(
                        "the last record of {} is not a chained audit record; run `coffer audit verify` on the \
                         directory and move damaged files away",
                        path.display()
                    )
                })?;
                break;
            }
        }
        let sink = Self {
            dir,
            max_bytes: cfg.max_file_bytes,
            period_secs: match cfg.rotate.as_str() {
                "hourly" => Some(3600),
                "daily" => Some(86_400),
                _ => None,
            },
            retention: (cfg.retention_days > 0).then(|| Duration::from_secs(cfg.retention_days * 86_400)),
            fsync: match cfg.fsync.as_str() {
                "interval" => Fsync::Interval,
                "never" => Fsync::Never,
                _ => Fsync::Always,
            },
            current: None,
            unsynced: false,
            last_retention: None,
        };
        Ok((sink, head))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn period_of(&self, ts: i64) -> i64 {
        self.period_secs.map_or(0, |p| ts.div_euclid(p))
    }

    /// Whether the current file can take more: same period, below the size limit, still at its path.
    fn current_usable(&self, period: i64) -> bool {
        let Some(c) = &self.current else { return false };
        if c.period != period || c.size >= self.max_bytes {
            return false;
        }
        match std::fs::metadata(&c.path) {
            Ok(m) => m.dev() == c.dev && m.ino() == c.ino,
            Err(_) => false,
        }
    }

    fn open_new(&mut self, first_seq: u64, now: i64) -> std::io::Result<()> {
        if let Some(old) = self.current.take()
            && self.fsync != Fsync::Never
        {
            let _ = old.file.sync_data();
        }
        let path = self.dir.join(format!("audit-{first_seq:012}-{}.jsonl", stamp(now)));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        if self.fsync != Fsync::Never {
            File::open(&self.dir)?.sync_all()?;
        }
        let m = file.metadata()?;
        self.current = Some(Current {
            file,
            path,
            size: 0,
            period: self.period_of(now),
            dev: m.dev(),
            ino: m.ino(),
        });
        Ok(())
    }

    fn delete_expired(&mut self) {
        let Some(retention) = self.retention else { return };
        let Ok(files) = list_files(&self.dir) else { return };
        let current = self.current.as_ref().map(|c| c.path.clone());
        for path in files {
            if Some(&path) == current.as_ref() {
                continue;
            }
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > retention);
            if old {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(file = %path.display(), "audit file past retention deleted"),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "could not delete an expired audit file")
                    }
                }
            }
        }
    }
}

impl AuditSink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        let Some(first) = batch.first() else { return Ok(()) };
        let now = parse_time(&first.time).unwrap_or_else(now_unix);
        if !self.current_usable(self.period_of(now)) {
            self.open_new(first.seq, now)?;
        }
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.line.len() + 1).sum());
        for r in batch {
            buf.extend_from_slice(&r.line);
            buf.push(b'\n');
        }
        let fsync = self.fsync;
        let Some(c) = self.current.as_mut() else {
            return Err(std::io::Error::other("no audit file open"));
        };
        let result = c.file.write_all(&buf).and_then(|()| {
            if fsync == Fsync::Always {
                c.file.sync_data()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                c.size += buf.len() as u64;
                self.unsynced = fsync == Fsync::Interval;
                Ok(())
            }
            Err(e) => {
                // Take back a partial batch; if even that fails, the next batch starts a new file.
                if c.file.set_len(c.size).is_err() {
                    self.current = None;
                }
                Err(e)
            }
        }
    }

    fn tick(&mut self) -> std::io::Result<()> {
        if self.unsynced
            && let Some(c) = &self.current
        {
            c.file.sync_data()?;
            self.unsynced = false;
        }
        if self
            .last_retention
            .is_none_or(|t| t.elapsed() > Duration::from_secs(3600))
        {
            self.last_retention = Some(Instant::now());
            self.delete_expired();
        }
        Ok(())
    }
}

/// Reads the file sink's directory for audit queries.
#[derive(Debug)]
pub struct FileAuditReader {
    dir: PathBuf,
}

impl FileAuditReader {
    /// A reader of `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

/// The UTC start time in a file's name, Unix seconds.
fn start_of(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stamp = name.strip_prefix("audit-")?.split('-').nth(1)?.strip_suffix(".jsonl")?;
    let d = stamp.replace(['T', 'Z'], "");
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        d.get(0..4)?,
        d.get(4..6)?,
        d.get(6..8)?,
        d.get(8..10)?,
        d.get(10..12)?,
        d.get(12..14)?
    );
    parse_time(&iso)
}

impl coffer_core::audit::query::AuditReader for FileAuditReader {
    fn query(
        &self,
        q: &coffer_core::audit::query::AuditQuery,
    ) -> Result<coffer_core::audit::query::AuditPage, coffer_core::Error> {
        use std::io::BufRead;
        let io = |e: std::io::Error| coffer_core::Error::Storage(Box::new(e));
        let files = list_files(&self.dir).map_err(io)?;
        let mut page = coffer_core::audit::query::AuditPage::default();
        for (i, path) in files.iter().enumerate() {
            // Skip files that end before the continuation point or start after the time range.
            if let (Some(after), Some(next)) = (q.after_seq, files.get(i + 1).and_then(|n| first_seq_of(n)))
                && next <= after.saturating_add(1)
            {
                continue;
            }
            if let (Some(to), Some(start)) = (q.to, start_of(path))
                && start > to
            {
                break;
            }
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted by retention meanwhile
                Err(e) => return Err(io(e)),
            };
            for line in std::io::BufReader::new(file).split(b'\n') {
                let line = line.map_err(io)?;
                let Ok(rec) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                let seq = rec
                    .get("cofferChain")
                    .and_then(|c| c.get("seq"))
                    .and_then(serde_json::Value::as_u64);
                let Some(seq) = seq else { continue };
                if q.after_seq.is_some_and(|a| seq <= a) || !q.matches(&rec) {
                    continue;
                }
                if page.records.len() == q.max {
                    return Ok(page);
                }
                page.records.push(rec);
                page.next_after = Some(seq);
            }
        }
        page.next_after = None;
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::audit::chain::chain_line;
    use coffer_crypto::SecretBytes;

    fn batch(head: &mut ChainHead, n: usize, time: &str) -> Vec<ChainedRecord> {
        let key = SecretBytes::new(vec![1; 32]);
        (0..n)
            .map(|i| {
                let body = format!("{{\"time\":\"{time}\",\"i\":{i}}}");
                let (line, next) = chain_line(head, &key, body.as_bytes());
                let rec = ChainedRecord {
                    seq: head.next_seq,
                    time: time.to_string(),
                    level: "Informational".into(),
                    line,
                };
                *head = next;
                rec
            })
            .collect()
    }

    #[test]
    fn rotates_by_size_and_hour_and_continues_the_chain_after_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = FileSinkConfig {
            max_file_bytes: 4096,
            ..FileSinkConfig::default()
        };
        let (mut sink, mut head) = FileSink::open(&cfg, tmp.path()).unwrap();
        assert_eq!(head, ChainHead::genesis());
        for _ in 0..10 {
            sink.write(&batch(&mut head, 10, "2026-11-22T08:10:00.0000000Z"))
                .unwrap();
        }
        let by_size = list_files(sink.dir()).unwrap().len();
        assert!(by_size > 1, "size rotation made {by_size} files");
        sink.write(&batch(&mut head, 1, "2026-11-22T09:00:00.0000000Z"))
            .unwrap();
        let files = list_files(sink.dir()).unwrap();
        assert_eq!(files.len(), by_size + 1, "the new hour starts a new file");
        assert_eq!(first_seq_of(files.last().unwrap()), Some(100));
        drop(sink);
        let (_, reopened) = FileSink::open(&cfg, tmp.path()).unwrap();
        assert_eq!(reopened, head);
        // Every line of every file verifies as one chain.
        let mut v = coffer_core::audit::Verifier::new(Some(SecretBytes::new(vec![1; 32]))).from_genesis();
        for f in files {
            for line in std::fs::read(f)
                .unwrap()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
            {
                v.check(line).unwrap();
            }
        }
        assert_eq!(v.checked(), 101);
    }

    #[test]
    fn a_file_moved_away_is_followed_by_a_new_one_and_a_broken_directory_fails_the_write() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut sink, mut head) = FileSink::open(&FileSinkConfig::default(), tmp.path()).unwrap();
        let t = "2026-11-22T08:10:00.0000000Z";
        sink.write(&batch(&mut head, 2, t)).unwrap();
        let first = list_files(sink.dir()).unwrap().remove(0);
        std::fs::rename(&first, tmp.path().join("shipped.jsonl")).unwrap();
        sink.write(&batch(&mut head, 2, t)).unwrap();
        assert_eq!(first_seq_of(&list_files(sink.dir()).unwrap()[0]), Some(2));
        let dir = sink.dir().to_path_buf();
        std::fs::rename(&dir, tmp.path().join("moved")).unwrap();
        std::fs::write(&dir, b"not a directory").unwrap();
        assert!(sink.write(&batch(&mut head.clone(), 1, t)).is_err());
    }
}
