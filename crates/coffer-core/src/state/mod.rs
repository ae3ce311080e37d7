//! The in-memory state every request decision reads: one immutable [`View`] behind an atomic pointer, replaced
//! (never edited in place) by each write. A request loads the current view once (no lock, no I/O) and decides
//! on it; every write goes to the store in one transaction and then publishes a new view built from the old one
//! with only the changed entries re-read from the store ([`publishing::PublishingStore`] does this for every
//! write method of the port, so no write can forget it). The maps are persistent (`imbl`): a new view shares
//! everything but the changed entries with the old one, so publishing costs in proportion to the change, not to
//! the state (100,000 keys and 10,000 assignments are normal).
//!
//! Each published view has a generation number, strictly increasing; every audit record carries the generation
//! its decision used. A second process over the same database catches up with [`StateCell::reload`], which
//! rebuilds the view from the store (the high-availability issue feeds this seam from PostgreSQL notifications).
//!
//! What is here: principals (networks, credential ids: whether they still exist), group memberships, role
//! assignments by assignee (incl. just-in-time and expiry, judged at request time), custom role definitions
//! (built-ins are statics in `rbac::builtin`), network ACLs, the lifecycle state, purge protection, the
//! full-restore lease, and the records crypto requests need for every live key (all versions, without their
//! sealed material, which stays in the store and the unsealed-key cache).
pub mod follow;
pub mod publishing;

use std::sync::Arc;

use arc_swap::ArcSwap;
use imbl::HashMap as PMap;

use crate::Error;
use crate::key::{KeyName, KeyVersionRecord};
use crate::network::NetworkAcls;
use crate::rbac::{Network, RoleAssignment, RoleDefinition, Scope};
use crate::store::{LifecycleState, PrincipalRecord, Store};

/// `meta` name of the full-restore lease (Unix seconds until which a restore holds the instance).
pub const RESTORE_LEASE: &str = "restore_lease_until";

/// A principal of the built-in token service, as request decisions need it.
#[derive(Debug, Clone)]
pub struct PrincipalEntry {
    /// Client address ranges the principal may call from (empty: any).
    pub networks: Vec<Network>,
    /// Ids of its current credentials: client-secret ids and `x5t#S256`-style SHA-256 hex of each certificate.
    pub credentials: Vec<String>,
}

impl PrincipalEntry {
    fn of(p: &PrincipalRecord) -> Self {
        let mut credentials: Vec<String> = p.secrets.iter().map(|s| s.id.clone()).collect();
        credentials.extend(p.certificates.iter().map(|der| certificate_credential_id(der)));
        Self {
            networks: p.allowed_networks.clone(),
            credentials,
        }
    }
}

/// The credential id of a certificate: the SHA-256 of its DER, hex.
pub fn certificate_credential_id(der: &[u8]) -> String {
    hex_lower(&coffer_crypto::hash::sha256(der))
}

fn hex_lower(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// A live key: its versions (without sealed material) and which is the latest.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// Latest version id.
    pub latest: String,
    /// Every version, by version id.
    pub versions: PMap<String, Arc<KeyVersionRecord>>,
}

impl KeyEntry {
    /// Builds the entry from all versions of a key, oldest first (the last is the latest).
    fn of(versions: Vec<KeyVersionRecord>) -> Option<Self> {
        let latest = versions.last()?.version.as_str().to_string();
        let versions = versions
            .into_iter()
            .map(|mut v| {
                v.sealed_material = Vec::new();
                (v.version.as_str().to_string(), Arc::new(v))
            })
            .collect();
        Some(Self { latest, versions })
    }
    /// A version (`None`: the latest).
    pub fn version(&self, version: Option<&str>) -> Option<&Arc<KeyVersionRecord>> {
        self.versions.get(version.unwrap_or(&self.latest))
    }
}

/// The role assignments naming one assignee, indexed by scope so that a decision looks at the assignments that
/// can cover its scope only (a principal with 10,000 per-key assignments costs one map lookup, not a scan).
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Assignments at `/` and `/keys`.
    pub broad: Vec<RoleAssignment>,
    /// Assignments at `/keys/{name}`, by lowercase key name (a persistent map: adding or removing one assignment
    /// copies one key's list, not the assignee's thousands of per-key assignments).
    pub by_key: PMap<String, Vec<RoleAssignment>>,
}

impl Grants {
    /// A copy with `a` added (replacing an assignment of the same name).
    fn with(&self, a: RoleAssignment) -> Self {
        let mut g = self.without(&a.name, &a.scope);
        match &a.scope {
            Scope::Key(name) => {
                let k = name.to_ascii_lowercase();
                let mut list = g.by_key.get(&k).cloned().unwrap_or_default();
                list.push(a);
                g.by_key.insert(k, list);
            }
            _ => g.broad.push(a),
        }
        g
    }
    /// A copy without the assignment `name` at `scope`.
    fn without(&self, name: &str, scope: &Scope) -> Self {
        let mut g = self.clone();
        match scope {
            Scope::Key(key) => {
                let k = key.to_ascii_lowercase();
                if let Some(list) = g.by_key.get(&k) {
                    let list: Vec<RoleAssignment> = list.iter().filter(|a| a.name != name).cloned().collect();
                    if list.is_empty() {
                        g.by_key.remove(&k);
                    } else {
                        g.by_key.insert(k, list);
                    }
                }
            }
            _ => g.broad.retain(|a| a.name != name),
        }
        g
    }
    /// Whether it holds no assignment.
    fn is_empty(&self) -> bool {
        self.broad.is_empty() && self.by_key.is_empty()
    }
    fn of(list: Vec<RoleAssignment>) -> Self {
        let mut g = Self::default();
        for a in list {
            match &a.scope {
                Scope::Key(name) => g.by_key.entry(name.to_ascii_lowercase()).or_default().push(a),
                _ => g.broad.push(a),
            }
        }
        g
    }
    /// The assignments whose scope may cover `scope` (the caller still checks `covers` and `active`).
    pub fn candidates<'a>(&'a self, scope: &Scope) -> impl Iterator<Item = &'a RoleAssignment> {
        let keyed = match scope {
            Scope::Key(name) if !self.by_key.is_empty() => {
                if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    self.by_key.get(&name.to_ascii_lowercase())
                } else {
                    self.by_key.get(name.as_str())
                }
            }
            _ => None,
        };
        self.broad.iter().chain(keyed.into_iter().flatten())
    }
}

/// One published state.
#[derive(Debug, Clone)]
pub struct View {
    /// Strictly increasing with each publication.
    pub generation: u64,
    pub lifecycle: LifecycleState,
    pub purge_protection: bool,
    /// A full restore holds the instance until this time (Unix seconds; 0: none).
    pub restore_lease_until: i64,
    pub network: Arc<NetworkAcls>,
    /// Principals of the built-in token service, by object id.
    pub principals: PMap<String, Arc<PrincipalEntry>>,
    /// Group object ids of each member (principals and groups), by member object id.
    pub groups_of: PMap<String, Arc<Vec<String>>>,
    /// Role assignments by lowercase assignee object id.
    pub assignments: PMap<String, Arc<Grants>>,
    /// Custom role definitions by lowercase GUID.
    pub custom_roles: PMap<String, Arc<RoleDefinition>>,
    /// Live keys by lowercase name.
    pub keys: PMap<String, Arc<KeyEntry>>,
}

impl View {
    /// A live key.
    pub fn key(&self, name: &KeyName) -> Option<&Arc<KeyEntry>> {
        let n = name.as_str();
        if n.bytes().any(|b| b.is_ascii_uppercase()) {
            self.keys.get(&n.to_ascii_lowercase())
        } else {
            self.keys.get(n)
        }
    }
    /// A custom role by GUID.
    pub fn custom_role(&self, id: &str) -> Option<&Arc<RoleDefinition>> {
        self.custom_roles.get(&id.to_ascii_lowercase())
    }
    /// Whether a full restore holds the instance at `now`.
    pub fn restoring(&self, now: i64) -> bool {
        now < self.restore_lease_until
    }
    /// Role assignments naming `id` (compared case-insensitively, as the store does) that may cover `scope`.
    pub fn assignments_of<'a>(&'a self, id: &str, scope: &Scope) -> impl Iterator<Item = &'a RoleAssignment> {
        let grants = if id.bytes().any(|b| b.is_ascii_uppercase()) {
            self.assignments.get(&id.to_ascii_lowercase())
        } else {
            self.assignments.get(id)
        };
        grants.into_iter().flat_map(|g| g.candidates(scope))
    }
    /// Every role assignment naming `id`, whatever its scope.
    pub fn all_assignments_of<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a RoleAssignment> {
        self.assignments
            .get(&id.to_ascii_lowercase())
            .into_iter()
            .flat_map(|g| g.broad.iter().chain(g.by_key.values().flatten()))
    }
    /// Groups `member` belongs to.
    pub fn groups_of(&self, member: &str) -> &[String] {
        self.groups_of.get(member).map_or(&[], |v| v.as_slice())
    }
}

/// The current view, and the lock that orders publications.
pub struct StateCell {
    current: ArcSwap<View>,
    publish: tokio::sync::Mutex<()>,
    /// A write committed but its publication and the rebuild after it failed: the view may be behind the store.
    stale: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for StateCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCell")
            .field("generation", &self.current.load().generation)
            .finish_non_exhaustive()
    }
}

impl StateCell {
    /// Builds the first view from the store.
    pub async fn load(store: &dyn Store, network: Arc<NetworkAcls>) -> Result<Self, Error> {
        let view = build(store, network, 1).await?;
        Ok(Self {
            current: ArcSwap::from_pointee(view),
            publish: tokio::sync::Mutex::new(()),
            stale: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The current view (a request loads it once and decides on it).
    pub fn view(&self) -> Arc<View> {
        self.current.load_full()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Whether the view may be behind the store (a publication and the rebuild after it failed); decisions are
    /// refused until [`StateCell::reload`] succeeds.
    pub fn is_stale(&self) -> bool {
        self.stale.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Rebuilds the whole view from the store (another process changed it; start-up of a second node).
    pub async fn reload(&self, store: &dyn Store) -> Result<u64, Error> {
        let _g = self.publish.lock().await;
        let old = self.current.load_full();
        let view = build(store, Arc::clone(&old.network), old.generation + 1).await?;
        let generation = view.generation;
        self.current.store(Arc::new(view));
        self.stale.store(false, std::sync::atomic::Ordering::SeqCst);
        crate::audit::context::generation(generation);
        Ok(generation)
    }

    /// Publishes a change: `change` reads what it needs from the store (under the publication lock, so a later
    /// publication always reads a later state) and edits a copy of the current view.
    pub async fn publish<F, Fut>(&self, change: F) -> Result<u64, Error>
    where
        F: FnOnce(View) -> Fut,
        Fut: Future<Output = Result<View, Error>>,
    {
        let _g = self.publish.lock().await;
        let old = self.current.load_full();
        let generation = old.generation + 1;
        let mut view = change(View::clone(&old)).await?;
        view.generation = generation;
        self.current.store(Arc::new(view));
        crate::audit::context::generation(generation);
        Ok(generation)
    }

    /// Publishes a change that needs no store read.
    pub async fn publish_with(&self, change: impl FnOnce(&mut View)) -> u64 {
        let r = self
            .publish(|mut v| {
                change(&mut v);
                async move { Ok(v) }
            })
            .await;
        r.unwrap_or_else(|_| self.generation())
    }
}

/// Builds a whole view from the store.
async fn build(store: &dyn Store, network: Arc<NetworkAcls>, generation: u64) -> Result<View, Error> {
    let instance = store
        .instance()
        .await?
        .ok_or_else(|| Error::Corrupt("no instance in the store".into()))?;
    let network = match store.meta(crate::network::META_KEY).await? {
        Some(json) => {
            let doc = serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("stored network ACLs: {e}")))?;
            Arc::new(NetworkAcls::parse(doc)?)
        }
        None => network,
    };
    let restore_lease_until = store
        .meta(RESTORE_LEASE)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let principals = store
        .list_principals()
        .await?
        .iter()
        .map(|p| (p.object_id.clone(), Arc::new(PrincipalEntry::of(p))))
        .collect();
    let mut groups_of: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for g in store.list_groups().await? {
        for m in g.members {
            groups_of.entry(m).or_default().push(g.object_id.clone());
        }
    }
    let mut assignments: std::collections::HashMap<String, Vec<RoleAssignment>> = std::collections::HashMap::new();
    for a in store.role_assignments(None).await? {
        assignments
            .entry(a.principal_id.to_ascii_lowercase())
            .or_default()
            .push(a);
    }
    let custom_roles = store
        .custom_roles()
        .await?
        .into_iter()
        .map(|r| (r.id.to_ascii_lowercase(), Arc::new(r)))
        .collect();
    let mut keys = PMap::new();
    for dump in store.dump_keys().await? {
        if dump.deletion.is_some() {
            continue;
        }
        let name = dump.versions.first().map(|v| v.name.as_str().to_ascii_lowercase());
        if let (Some(name), Some(entry)) = (name, KeyEntry::of(dump.versions)) {
            keys.insert(name, Arc::new(entry));
        }
    }
    Ok(View {
        generation,
        lifecycle: instance.state,
        purge_protection: instance.purge_protection,
        restore_lease_until,
        network,
        principals,
        groups_of: groups_of.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        assignments: assignments
            .into_iter()
            .map(|(k, v)| (k, Arc::new(Grants::of(v))))
            .collect(),
        custom_roles,
        keys,
    })
}

/// Re-reads one key from the store into `view` (removed when it is no longer live).
pub(crate) async fn refresh_key(store: &dyn Store, view: &mut View, name: &KeyName) -> Result<(), Error> {
    let versions = store.all_versions(name).await?;
    let k = name.as_str().to_ascii_lowercase();
    match KeyEntry::of(versions) {
        Some(e) => {
            view.keys.insert(k, Arc::new(e));
        }
        None => {
            view.keys.remove(&k);
        }
    }
    Ok(())
}

/// Re-reads one principal.
pub(crate) async fn refresh_principal(store: &dyn Store, view: &mut View, object_id: &str) -> Result<(), Error> {
    match store.principal(object_id).await? {
        Some(p) => {
            view.principals
                .insert(object_id.to_string(), Arc::new(PrincipalEntry::of(&p)));
        }
        None => {
            view.principals.remove(object_id);
        }
    }
    Ok(())
}

/// Re-reads the group memberships of one member.
pub(crate) async fn refresh_memberships(store: &dyn Store, view: &mut View, member: &str) -> Result<(), Error> {
    let groups = store.groups_of(member).await?;
    if groups.is_empty() {
        view.groups_of.remove(member);
    } else {
        view.groups_of.insert(member.to_string(), Arc::new(groups));
    }
    Ok(())
}

/// Re-reads the role assignments naming one assignee.
pub(crate) async fn refresh_assignments(store: &dyn Store, view: &mut View, assignee: &str) -> Result<(), Error> {
    let ids = [assignee.to_string()];
    let list = store.role_assignments(Some(&ids)).await?;
    let key = assignee.to_ascii_lowercase();
    if list.is_empty() {
        view.assignments.remove(&key);
    } else {
        view.assignments.insert(key, Arc::new(Grants::of(list)));
    }
    Ok(())
}

/// Adds (or replaces) one assignment, re-read by name from the store, to its assignee's grants: in proportion to
/// the change, however many assignments the assignee has.
pub(crate) async fn refresh_one_assignment(store: &dyn Store, view: &mut View, name: &str) -> Result<(), Error> {
    if let Some(a) = store.role_assignment(name).await? {
        let key = a.principal_id.to_ascii_lowercase();
        let grants = view
            .assignments
            .get(&key)
            .map_or_else(Grants::default, |g| Grants::clone(g));
        view.assignments.insert(key, Arc::new(grants.with(a)));
    }
    Ok(())
}

/// Removes one deleted assignment from its assignee's grants.
pub(crate) fn remove_one_assignment(view: &mut View, a: &RoleAssignment) {
    let key = a.principal_id.to_ascii_lowercase();
    if let Some(g) = view.assignments.get(&key) {
        let g = g.without(&a.name, &a.scope);
        if g.is_empty() {
            view.assignments.remove(&key);
        } else {
            view.assignments.insert(key, Arc::new(g));
        }
    }
}

/// Re-reads one custom role.
pub(crate) async fn refresh_custom_role(store: &dyn Store, view: &mut View, id: &str) -> Result<(), Error> {
    let k = id.to_ascii_lowercase();
    match store.custom_role(id).await? {
        Some(r) => {
            view.custom_roles.insert(k, Arc::new(r));
        }
        None => {
            view.custom_roles.remove(&k);
        }
    }
    Ok(())
}

/// Rebuilds everything but the process-held parts (after a full restore).
pub(crate) async fn rebuild(store: &dyn Store, view: View) -> Result<View, Error> {
    build(store, view.network, view.generation).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(name: &str, scope: Scope) -> RoleAssignment {
        RoleAssignment {
            name: name.into(),
            scope,
            role_definition_id: crate::rbac::builtin::CRYPTO_USER.into(),
            principal_id: "p".into(),
            created: 0,
            expires: None,
            allowed_networks: Vec::new(),
            last_used: None,
            justification: None,
        }
    }

    #[test]
    fn one_assignment_is_added_and_removed_without_touching_the_others() {
        let many: Vec<RoleAssignment> = (0..1000)
            .map(|i| assignment(&format!("a{i}"), Scope::Key(format!("k{i}"))))
            .collect();
        let g = Grants::of(many);
        let g2 = g.with(assignment("new", Scope::Key("K7".into())));
        assert_eq!(g2.candidates(&Scope::Key("k7".into())).count(), 2);
        assert_eq!(
            g.candidates(&Scope::Key("k7".into())).count(),
            1,
            "the old grants are unchanged"
        );
        let g3 = g2.with(assignment("root", Scope::Root));
        assert_eq!(
            g3.candidates(&Scope::Key("k1".into())).count(),
            2,
            "a broad one covers every key"
        );
        let g4 = g3
            .without("new", &Scope::Key("k7".into()))
            .without("root", &Scope::Root);
        assert_eq!(g4.candidates(&Scope::Key("k7".into())).count(), 1);
        assert_eq!(g4.broad.len(), 0);
        let g5 = g4.without("a7", &Scope::Key("k7".into()));
        assert!(!g5.by_key.contains_key("k7"), "an emptied key's list is dropped");
        // Replacing by name does not duplicate.
        let g6 = g5.with(assignment("a8", Scope::Key("k8".into())));
        assert_eq!(g6.candidates(&Scope::Key("k8".into())).count(), 1);
    }
}
