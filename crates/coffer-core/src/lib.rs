//! Coffer's rules. Core owns the key lifecycle (create, import, versions, update, soft-delete, recover, purge,
//! backup/restore), every crypto operation's preconditions (`key_ops`, `enabled`, `nbf`, `exp`), the sealing
//! policy (what the at-rest AAD binds), the token service, and authorization. It does no I/O of its own: storage
//! and time come in through the [`store::Store`] and [`clock::Clock`] ports, so no route can skip a rule.

pub mod assertion;
pub mod audit;
pub mod backup_storage;
pub mod cache;
pub mod clock;
pub mod duration;
pub mod error;
pub mod hsm;
pub mod identity;
pub mod instance;
pub mod issuers;
pub mod key;
pub mod network;
pub mod operation;
pub mod ops;
pub mod outbound;
pub mod policy;
pub mod principal;
pub mod rbac;
pub mod release_policy;
pub mod state;
pub mod store;
pub mod store_metrics;
pub mod throttle;

pub use error::Error;
pub use hsm::Hsm;
pub use principal::Principal;
