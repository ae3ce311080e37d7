//! In-memory cache of unsealed private keys, so crypto operations do not read storage and unseal per request.
//! Entries zeroize when dropped (evicted, invalidated, or the last in-flight operation ends). Lookups take a
//! read lock and allocate nothing (a map of names to maps of versions, looked up by `&str`). Eviction is CLOCK
//! (second chance): a key used since the hand last passed it stays, so a hot working set survives a stream of
//! new keys (key creation caches every new key).
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use coffer_crypto::keys::PrivateKey;

#[derive(Debug)]
struct Entry {
    key: Arc<PrivateKey>,
    used: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, HashMap<String, Entry>>,
    len: usize,
    /// The clock: (name, version) in insertion order; entries no longer in `map` are skipped.
    clock: VecDeque<(String, String)>,
}

impl Inner {
    fn remove(&mut self, name: &str, version: &str) -> bool {
        let Some(versions) = self.map.get_mut(name) else {
            return false;
        };
        let gone = versions.remove(version).is_some();
        if versions.is_empty() {
            self.map.remove(name);
        }
        if gone {
            self.len -= 1;
        }
        gone
    }
    /// Evicts one entry not used since the hand last passed it.
    fn evict_one(&mut self) {
        // Each entry is passed at most twice (once to clear its bit, once to evict it).
        let mut budget = 2 * self.clock.len() + 1;
        while budget > 0 {
            budget -= 1;
            let Some((n, v)) = self.clock.pop_front() else { return };
            let used = match self.map.get(&n).and_then(|m| m.get(&v)) {
                None => continue,
                Some(e) => e.used.swap(false, Ordering::Relaxed),
            };
            if used {
                self.clock.push_back((n, v));
            } else {
                self.remove(&n, &v);
                return;
            }
        }
    }
}

/// A bounded map from (name, version) to unsealed key material.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    inner: RwLock<Inner>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: RwLock::new(Inner::default()),
        }
    }
    /// A cached key.
    pub fn get(&self, name: &str, version: &str) -> Option<Arc<PrivateKey>> {
        let inner = self.inner.read().ok()?;
        let e = inner.map.get(name)?.get(version)?;
        if !e.used.load(Ordering::Relaxed) {
            e.used.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(&e.key))
    }
    /// Caches a key, evicting one not used recently when full.
    pub fn insert(&self, name: &str, version: &str, key: Arc<PrivateKey>) {
        let Ok(mut inner) = self.inner.write() else { return };
        if let Some(e) = inner.map.get_mut(name).and_then(|m| m.get_mut(version)) {
            e.key = key;
            return;
        }
        while inner.len >= self.capacity {
            let before = inner.len;
            inner.evict_one();
            if inner.len == before {
                break;
            }
        }
        inner.map.entry(name.to_string()).or_default().insert(
            version.to_string(),
            Entry {
                key,
                used: AtomicBool::new(false),
            },
        );
        inner.len += 1;
        inner.clock.push_back((name.to_string(), version.to_string()));
        if inner.clock.len() > 2 * self.capacity {
            // Drop the clock's references to invalidated entries.
            let Inner { map, clock, .. } = &mut *inner;
            clock.retain(|(n, v)| map.get(n).is_some_and(|m| m.contains_key(v)));
        }
    }
    /// Drops every cached key (the domain secret changed).
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            *inner = Inner::default();
        }
    }
    /// Drops every cached version of a key (on delete, purge, restore). Names are case-insensitive: the caller may
    /// spell the key differently from its stored name.
    pub fn invalidate(&self, name: &str) {
        if let Ok(mut inner) = self.inner.write() {
            let names: Vec<String> = inner
                .map
                .keys()
                .filter(|n| n.eq_ignore_ascii_case(name))
                .cloned()
                .collect();
            for n in names {
                if let Some(gone) = inner.map.remove(&n) {
                    inner.len -= gone.len();
                }
            }
        }
    }
    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |i| i.len)
    }
    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<PrivateKey> {
        Arc::new(PrivateKey::generate_oct(128).unwrap())
    }

    #[test]
    fn cache_is_bounded_and_invalidates_by_name() {
        let cache = KeyCache::new(2);
        cache.insert("a", "1", key());
        cache.insert("a", "2", key());
        assert!(cache.get("a", "1").is_some() && cache.get("a", "2").is_some());
        cache.insert("b", "1", key());
        assert_eq!(cache.len(), 2, "one entry was evicted to stay within capacity");
        assert!(cache.get("b", "1").is_some());
        cache.invalidate("A");
        assert!(cache.get("a", "1").is_none() && cache.get("a", "2").is_none());
        assert!(cache.get("b", "1").is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_hot_working_set_survives_a_stream_of_new_keys() {
        let cache = KeyCache::new(100);
        for i in 0..10 {
            cache.insert(&format!("hot{i}"), "v", key());
        }
        for round in 0..50 {
            for i in 0..10 {
                assert!(
                    cache.get(&format!("hot{i}"), "v").is_some(),
                    "hot{i} evicted in round {round}"
                );
            }
            for j in 0..20 {
                cache.insert(&format!("new{round}-{j}"), "v", key());
            }
            assert!(cache.len() <= 100);
        }
    }
}
