//! Storage adapters for coffer-core's [`Store`](coffer_core::store::Store) port. SQLite (WAL, synchronous FULL)
//! is the embedded default. Queries are runtime `sqlx::query` calls with `$n` placeholders and portable SQL, so a
//! PostgreSQL adapter can share them; every `Store` method is one transaction.

mod assertions;
mod identities;
mod migrate;
mod rows;
pub mod sqlite;

pub use sqlite::SqliteStore;
