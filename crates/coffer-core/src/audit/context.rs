//! Per-request audit notes. The server runs each request inside [`scope`]; while it runs, core writes what it
//! learns into the notes (the dataAction and RBAC decision in `Hsm::authorize`, the key a request touched), and
//! the server reads them back when it writes the request's record. Outside a scope (background jobs) the notes
//! go nowhere.
use std::sync::{Arc, Mutex};

use crate::rbac::DataAction;

/// What core learned about a request.
#[derive(Debug, Clone, Default)]
pub struct Notes {
    /// The dataAction the request needed.
    pub action: Option<DataAction>,
    /// The RBAC decision.
    pub authorized: Option<bool>,
    /// The role assignment that granted it.
    pub assignment: Option<String>,
    /// Key facts (`type`, `size`, `curve`, `operations`, `attributes`).
    pub key_properties: Option<serde_json::Value>,
    /// Key policy violations the request met (`Audit` ones it passed, `Deny` ones that refused it).
    pub policy_violations: Vec<serde_json::Value>,
    /// Secure Key Release: the attestation token's `iss` and the trusted authority it matched (never the token).
    pub key_release: Option<serde_json::Value>,
    /// The generation of the in-memory state the request's decision used; a write raises it to the generation
    /// it published.
    pub generation: Option<u64>,
}

/// Shared notes of one request.
pub type SharedNotes = Arc<Mutex<Notes>>;

tokio::task_local! {
    static NOTES: SharedNotes;
}

/// Runs `f` with `notes` as the current request's notes.
pub async fn scope<F: Future>(notes: SharedNotes, f: F) -> F::Output {
    NOTES.scope(notes, f).await
}

fn with(f: impl FnOnce(&mut Notes)) {
    let _ = NOTES.try_with(|n| match n.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    });
}

/// Notes the RBAC decision.
pub(crate) fn authorization(action: DataAction, authorized: bool, assignment: Option<&str>) {
    with(|n| {
        // The first decision is the request's own; later ones (internal checks) do not overwrite a denial.
        if n.action.is_none() || n.authorized == Some(true) {
            n.action = Some(action);
            n.authorized = Some(authorized);
            n.assignment = assignment.map(str::to_string);
        }
    });
}

/// Notes the state generation a decision used, or that a write published (the highest is kept).
pub(crate) fn generation(g: u64) {
    with(|n| n.generation = Some(n.generation.map_or(g, |old| old.max(g))));
}

/// Notes the key version a request acted on.
pub(crate) fn key(rec: &crate::key::KeyVersionRecord) {
    with(|n| {
        if n.key_properties.is_none() {
            n.key_properties = Some(key_properties(rec));
        }
    });
}

/// Notes the key version a request produced (create, import, update, rotate): replaces what was noted before.
pub(crate) fn key_result(rec: &crate::key::KeyVersionRecord) {
    with(|n| n.key_properties = Some(key_properties(rec)));
}

/// Notes a key policy violation (no secrets: assignment, definition, effect, key name and version, reason).
pub(crate) fn policy_violation(v: serde_json::Value) {
    with(|n| n.policy_violations.push(v));
}

/// Notes the attestation facts of a release attempt.
pub(crate) fn key_release(v: serde_json::Value) {
    with(|n| n.key_release = Some(v));
}

/// `keyProperties` of a key version.
pub fn key_properties(rec: &crate::key::KeyVersionRecord) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), rec.key_type.kty().into());
    match rec.key_type {
        crate::key::KeyType::Rsa(bits) | crate::key::KeyType::Oct(bits) => {
            m.insert("size".into(), bits.into());
        }
        crate::key::KeyType::Ec(c) => {
            m.insert("curve".into(), c.name().into());
        }
    }
    m.insert(
        "operations".into(),
        serde_json::Value::Array(rec.key_ops.iter().map(|o| serde_json::Value::from(o.name())).collect()),
    );
    let mut attrs = serde_json::Map::new();
    attrs.insert("enabled".into(), rec.attributes.enabled.into());
    if let Some(exp) = rec.attributes.expires {
        attrs.insert("exp".into(), exp.into());
    }
    attrs.insert("exportable".into(), rec.attributes.exportable.into());
    m.insert("attributes".into(), attrs.into());
    serde_json::Value::Object(m)
}
