//! Audit sinks (implementations of `coffer_core::audit::AuditSink`): JSON Lines files, standard output, syslog.
pub mod file;
pub mod stdout;
pub mod syslog;
