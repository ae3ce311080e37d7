//! The HTTPS front end of Coffer. It parses requests, authenticates the caller (401 challenge before anything
//! else is looked at), calls `coffer_core::Hsm`, and maps results and errors to the Azure wire format. It never
//! reaches storage except through core.

pub mod audit_sinks;
pub mod backup_storage;
pub mod config;
pub mod connections;
pub mod convert;
pub mod database;
pub mod datadir;
pub mod error;
pub mod jwks;
pub mod metrics;
pub mod principal_slots;
pub mod request_audit;
pub mod routes;
pub mod seal;
pub mod serve;
pub mod state;
pub mod tls;

pub use config::ServeConfig;
pub use serve::{Running, serve, start};
