//! Concurrency slots per principal: each principal may have at most `cap` requests in the handler at once
//! (default 4 × the CPU cores). Its further requests wait for one of its own slots (no 429), in arrival order,
//! while other principals' requests go ahead. A slot covers the handler's work (authorization, crypto, state reads
//! and writes, waits for the store or for a key generation on the blocking pool), not the audit write after it,
//! so that group commit still batches every connection's record.
//!
//! What it bounds: the requests one principal can have suspended in handlers (store round trips, key generations
//! on the blocking pool, backups), so a principal flooding slow operations cannot occupy the store or the blocking
//! pool beyond its slots. What it does not do by itself: a cheap handler runs its CPU work (an RSA signature, say)
//! within one poll, so handlers in progress never outnumber the runtime's worker threads, and a cap at or above the
//! core count never makes a CPU-bound flood wait; requests are then served in the runtime's first-come order, one
//! per connection. A cap below the core count does hold a flooding principal to that many cores while others get
//! the rest, at the cost of a lone client's throughput (docs/NETWORK.md has the measurements). A lone client with
//! the default loses nothing: the slots are more than the cores.
//!
//! The map holds only principals with a request in the handler or waiting: an entry goes when its last request
//! does, so it is bounded by the requests in progress.
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-principal concurrency slots.
#[derive(Debug)]
pub struct PrincipalSlots {
    cap: usize,
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: AtomicI64,
    queued: AtomicI64,
    queued_total: AtomicU64,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a PrincipalSlots,
    key: &'a str,
    lane: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

/// Counts a waiting request while it waits (also when its future is dropped, e.g. the client went away).
struct Waiting<'a>(&'a AtomicI64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PrincipalSlots {
    /// `cap` slots per principal (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            lanes: Mutex::default(),
            in_flight: AtomicI64::new(0),
            queued: AtomicI64::new(0),
            queued_total: AtomicU64::new(0),
        }
    }

    /// The slots per principal.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Waits for one of `principal`'s slots.
    pub async fn acquire<'a>(&'a self, principal: &'a str) -> Slot<'a> {
        let lane = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            match lanes.get(principal) {
                Some(l) => Arc::clone(l),
                None => {
                    let l = Arc::new(Semaphore::new(self.cap));
                    lanes.insert(principal.to_string(), Arc::clone(&l));
                    l
                }
            }
        };
        let permit = match Arc::clone(&lane).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.queued_total.fetch_add(1, Ordering::Relaxed);
                let _waiting = Waiting(&self.queued);
                // The semaphore is never closed.
                Arc::clone(&lane).acquire_owned().await.ok()
            }
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot {
            slots: self,
            key: principal,
            lane,
            permit,
        }
    }

    /// Requests holding a slot.
    pub fn in_flight(&self) -> u64 {
        u64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Requests waiting for their principal's slot.
    pub fn queued(&self) -> u64 {
        u64::try_from(self.queued.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Requests that had to wait, since start.
    pub fn queued_total(&self) -> u64 {
        self.queued_total.load(Ordering::Relaxed)
    }

    /// Principals with a request in the handler or waiting.
    pub fn principals(&self) -> usize {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.slots.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The map's reference and ours: nobody else holds or waits for this principal's slots.
        if Arc::strong_count(&self.lane) == 2 {
            let mut lanes = self.slots.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            // Checked again under the lock, where new references are taken.
            if Arc::strong_count(&self.lane) == 2 && lanes.get(self.key).is_some_and(|l| Arc::ptr_eq(l, &self.lane)) {
                lanes.remove(self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_principal_waits_for_its_own_slots_while_others_go_ahead() {
        let slots = Arc::new(PrincipalSlots::new(2));
        let a1 = slots.acquire("a").await;
        let a2 = slots.acquire("a").await;
        assert_eq!((slots.in_flight(), slots.queued()), (2, 0));
        // A third request of "a" waits...
        let waiter = {
            let slots = Arc::clone(&slots);
            tokio::spawn(async move {
                let _s = slots.acquire("a").await;
            })
        };
        while slots.queued() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!waiter.is_finished());
        // ...while "b" goes ahead at once.
        let b = slots.acquire("b").await;
        assert_eq!((slots.in_flight(), slots.queued(), slots.principals()), (3, 1, 2));
        drop(b);
        assert_eq!(slots.principals(), 1);
        // A freed slot lets the waiter in.
        drop(a1);
        waiter.await.unwrap();
        assert_eq!((slots.queued(), slots.queued_total()), (0, 1));
        drop(a2);
        // No request left: the map is empty again.
        assert_eq!((slots.in_flight(), slots.principals()), (0, 0));
    }

    #[tokio::test]
    async fn a_waiter_that_goes_away_is_no_longer_counted() {
        let slots = PrincipalSlots::new(1);
        let held = slots.acquire("a").await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), slots.acquire("a")).await;
        assert!(gave_up.is_err());
        assert_eq!((slots.queued(), slots.queued_total(), slots.in_flight()), (0, 1, 1));
        drop(held);
        assert_eq!(slots.principals(), 0);
    }
}
