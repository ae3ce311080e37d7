//! Storage adapters for coffer-core's [`Store`](coffer_core::store::Store) port: [`SqlStore`] on SQLite (WAL,
//! synchronous FULL: the embedded default) or PostgreSQL (serializable transactions, retried on conflict). One
//! implementation serves both: runtime `sqlx::query` calls through sqlx's `Any` driver with `$n` placeholders and
//! portable SQL; every `Store` method is one transaction. One file per aggregate of the port.

mod assertions;
mod backup;
mod changes;
pub mod copy;
mod identities;
mod instance;
mod keys;
pub mod migrate;
mod policy;
mod postgres;
mod rbac;
mod rows;
mod sql;

pub use changes::ChangeListener;
pub use postgres::{PasswordSource, PostgresConfig};
pub use sql::{Dialect, SqlStore};
