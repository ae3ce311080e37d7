//! In-memory cache of unsealed private keys, so crypto operations do not read storage and unseal per request.
//! Entries zeroize when dropped (evicted, invalidated, or the last in-flight operation ends). Lookups take a
//! read lock and allocate nothing (a map of names to maps of versions, looked up by `&str`).
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use coffer_crypto::keys::PrivateKey;

type Versions = HashMap<String, Arc<PrivateKey>>;

/// A bounded map from (name, version) to unsealed key material.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    entries: RwLock<(HashMap<String, Versions>, usize)>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new((HashMap::new(), 0)),
        }
    }
    /// A cached key.
    pub fn get(&self, name: &str, version: &str) -> Option<Arc<PrivateKey>> {
        let map = self.entries.read().ok()?;
        map.0.get(name)?.get(version).cloned()
    }
    /// Caches a key, evicting an arbitrary entry when full.
    pub fn insert(&self, name: &str, version: &str, key: Arc<PrivateKey>) {
        if let Ok(mut guard) = self.entries.write() {
            let (map, len) = &mut *guard;
            if *len >= self.capacity
                && let Some(victim) = map.keys().next().cloned()
                && let Some(gone) = map.remove(&victim)
            {
                *len -= gone.len();
            }
            if map
                .entry(name.to_string())
                .or_default()
                .insert(version.to_string(), key)
                .is_none()
            {
                *len += 1;
            }
        }
    }
    /// Drops every cached key (the domain secret changed).
    pub fn clear(&self) {
        if let Ok(mut guard) = self.entries.write() {
            guard.0.clear();
            guard.1 = 0;
        }
    }
    /// Drops every cached version of a key (on delete, purge, restore).
    pub fn invalidate(&self, name: &str) {
        if let Ok(mut guard) = self.entries.write() {
            let (map, len) = &mut *guard;
            if let Some(gone) = map.remove(name) {
                *len -= gone.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_invalidates_by_name() {
        let cache = KeyCache::new(2);
        let key = || Arc::new(PrivateKey::generate_oct(128).unwrap());
        cache.insert("a", "1", key());
        cache.insert("a", "2", key());
        assert!(cache.get("a", "1").is_some() && cache.get("a", "2").is_some());
        cache.insert("b", "1", key());
        let present = ["1", "2"].iter().filter(|v| cache.get("a", v).is_some()).count();
        assert!(present <= 1, "entries were evicted to stay within capacity");
        assert!(cache.get("b", "1").is_some());
        cache.invalidate("a");
        assert!(cache.get("a", "1").is_none() && cache.get("a", "2").is_none());
        assert!(cache.get("b", "1").is_some());
    }
}
