//! In-memory cache of unsealed private keys, so crypto operations do not read storage and unseal per request.
//! Entries zeroize when dropped (evicted, invalidated, or the last in-flight operation ends).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coffer_crypto::keys::PrivateKey;

/// A bounded map from (name, version) to unsealed key material.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    entries: Mutex<HashMap<(String, String), Arc<PrivateKey>>>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }
    /// A cached key.
    pub fn get(&self, name: &str, version: &str) -> Option<Arc<PrivateKey>> {
        let map = self.entries.lock().ok()?;
        map.get(&(name.to_string(), version.to_string())).cloned()
    }
    /// Caches a key, evicting an arbitrary entry when full.
    pub fn insert(&self, name: &str, version: &str, key: Arc<PrivateKey>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= self.capacity
                && let Some(victim) = map.keys().next().cloned()
            {
                map.remove(&victim);
            }
            map.insert((name.to_string(), version.to_string()), key);
        }
    }
    /// Drops every cached key (the domain secret changed).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
    /// Drops every cached version of a key (on delete, purge, restore).
    pub fn invalidate(&self, name: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.retain(|(n, _), _| n != name);
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
        assert_eq!(present, 1, "one entry was evicted to stay within capacity");
        assert!(cache.get("b", "1").is_some());
        cache.invalidate("a");
        assert!(cache.get("a", "1").is_none() && cache.get("a", "2").is_none());
        assert!(cache.get("b", "1").is_some());
    }
}
