//! Audit: one record per request (and per background job action) in the Managed HSM `AuditEvent` shape
//! (Key Vault field layout plus the Managed HSM extras, see `../shared/docs/audit-log.md`), hash-chained and
//! MAC'd under a key derived from the domain secret, written by one writer thread to every configured sink.
//!
//! * [`record`]: the record type (never a token, secret or key material in it).
//! * [`chain`]: the hash chain / MAC line format and the verifier behind `coffer audit verify`.
//! * [`writer`]: the [`AuditSink`] port and [`AuditLog`], the group-committing writer with the fail-closed rule.
//! * [`context`]: per-request notes (dataAction, RBAC decision, key facts) that core fills in while it works.
//! * The `operationName` of a request comes from the operation table, [`crate::operation`].

pub mod chain;
pub mod checkpoint;
pub mod context;
pub mod query;
pub mod record;
pub mod writer;

pub use chain::{ChainHead, Verifier};
pub use checkpoint::Checkpoint;
pub use record::AuditRecord;
pub use writer::{AuditLog, AuditSink, AuditStats, ChainedRecord};
