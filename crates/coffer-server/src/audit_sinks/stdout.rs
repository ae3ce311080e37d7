//! Audit records as JSON Lines on standard output (for container log collectors). Logs (`tracing`) go to
//! standard error, so the two streams do not mix.
use std::io::Write;

use coffer_core::audit::{AuditSink, ChainedRecord};

/// The stdout sink.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl AuditSink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.line.len() + 1).sum());
        for r in batch {
            buf.extend_from_slice(&r.line);
            buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)?;
        out.flush()
    }
}
