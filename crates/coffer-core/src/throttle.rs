//! Throttling as Key Vault does it: weighted transactions per 10 seconds, enforced on their sum, answered with
//! 429 and `Retry-After`. Every principal has its own budget (so one noisy client cannot starve the others) and
//! the instance has an overall one. Budgets are token buckets that refill continuously.
//!
//! Weights follow the ratios of the Key Vault limits table (per 10 s for HSM keys: 2,000 RSA-2048 or EC or AES
//! operations, 500 RSA-3072, 250 RSA-4096, 10 key creations): an RSA-2048, EC or AES operation and every other
//! call cost 1 unit, RSA-3072 4, RSA-4096 8, a key creation, import or rotation 200. A key operation is charged 1
//! up front and the rest when the key's type is known (after the request), so an RSA-4096 caller runs into
//! its limit eight times sooner.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Units each principal (or unauthenticated client address) may spend per 10 seconds.
    pub per_principal: u64,
    /// Units the whole instance may spend per 10 seconds.
    pub instance: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, cap: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * cap / 10.0).min(cap);
        self.at = now;
    }
}

/// The throttle.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    buckets: Mutex<(HashMap<String, Bucket>, Bucket, u64)>,
}

/// The cost in units of an operation (before the key type is known).
pub fn upfront_cost(operation_name: &str) -> u64 {
    match operation_name {
        "KeyCreate" | "KeyImport" | "KeyRotate" | "KeyRestore" => 200,
        _ => 1,
    }
}

/// The extra units a key operation costs once the key's type and size are known.
pub fn key_surcharge(operation_name: &str, key_properties: Option<&serde_json::Value>) -> u64 {
    if upfront_cost(operation_name) > 1 || !operation_name.starts_with("Key") {
        return 0;
    }
    let Some(kp) = key_properties else { return 0 };
    if kp.get("type").and_then(serde_json::Value::as_str) != Some("RSA-HSM") {
        return 0;
    }
    match kp.get("size").and_then(serde_json::Value::as_u64) {
        Some(s) if s >= 4096 => 7,
        Some(s) if s >= 3072 => 3,
        _ => 0,
    }
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        let now = Instant::now();
        Self {
            limits,
            buckets: Mutex::new((
                HashMap::new(),
                Bucket {
                    level: limits.instance as f64,
                    at: now,
                },
                0,
            )),
        }
    }

    /// Takes `cost` units from `who`'s budget and the instance's; `Err(retry_after)` when either is short.
    pub fn admit(&self, who: &str, cost: u64) -> Result<(), Duration> {
        self.admit_at(who, cost, Instant::now())
    }

    /// [`Throttle::admit`] at a given time (tests).
    pub fn admit_at(&self, who: &str, cost: u64, now: Instant) -> Result<(), Duration> {
        let mut guard = match self.buckets.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (map, instance, calls) = &mut *guard;
        let cap_p = self.limits.per_principal as f64;
        let cap_i = self.limits.instance as f64;
        let cost = cost as f64;
        *calls += 1;
        if (*calls).is_multiple_of(4096) {
            // Forget principals whose bucket is full again.
            map.retain(|_, b| {
                b.refill(cap_p, now);
                b.level < cap_p
            });
        }
        let b = map.entry(who.to_string()).or_insert(Bucket { level: cap_p, at: now });
        b.refill(cap_p, now);
        instance.refill(cap_i, now);
        let wait = |level: f64, cap: f64| {
            // Time until the bucket holds `cost` again (at least one second, as Retry-After is in seconds).
            let need = cost.min(cap) - level;
            Duration::from_secs_f64((need * 10.0 / cap).ceil().max(1.0))
        };
        if b.level < cost.min(cap_p) {
            return Err(wait(b.level, cap_p));
        }
        if instance.level < cost.min(cap_i) {
            return Err(wait(instance.level, cap_i));
        }
        b.level -= cost;
        instance.level -= cost;
        Ok(())
    }

    /// Charges units after the fact (the key-type surcharge); the balance may go below zero.
    pub fn charge(&self, who: &str, cost: u64) {
        if cost == 0 {
            return;
        }
        let mut guard = match self.buckets.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (map, instance, _) = &mut *guard;
        if let Some(b) = map.get_mut(who) {
            b.level -= cost as f64;
        }
        instance.level -= cost as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_per_principal_and_refill() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 10,
            instance: 25,
        });
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(t.admit_at("a", 1, t0).is_ok());
        }
        let wait = t.admit_at("a", 1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Another principal is not affected.
        assert!(t.admit_at("b", 1, t0).is_ok());
        // One second refills one unit (10 per 10 s).
        assert!(t.admit_at("a", 1, t0 + Duration::from_secs(1)).is_ok());
        assert!(t.admit_at("a", 1, t0 + Duration::from_secs(1)).is_err());
        // The instance budget caps the sum.
        for p in ["c", "d"] {
            for _ in 0..10 {
                let _ = t.admit_at(p, 1, t0 + Duration::from_secs(1));
            }
        }
        assert!(
            t.admit_at("e", 1, t0 + Duration::from_secs(1)).is_err(),
            "instance budget spent"
        );
    }

    #[test]
    fn weights() {
        let rsa = |size: u64| serde_json::json!({"type": "RSA-HSM", "size": size});
        assert_eq!(1 + key_surcharge("KeySign", Some(&rsa(4096))), 8);
        assert_eq!(1 + key_surcharge("KeyDecrypt", Some(&rsa(3072))), 4);
        assert_eq!(1 + key_surcharge("KeyGet", Some(&rsa(2048))), 1);
        assert_eq!(
            key_surcharge("KeySign", Some(&serde_json::json!({"type": "EC-HSM"}))),
            0
        );
        assert_eq!(upfront_cost("KeyCreate"), 200);
        assert_eq!(key_surcharge("KeyCreate", Some(&rsa(4096))), 0);
        // A surcharge can push the balance below zero: the next call waits longer.
        let t = Throttle::new(ThrottleLimits {
            per_principal: 10,
            instance: 1000,
        });
        let t0 = Instant::now();
        assert!(t.admit_at("a", 1, t0).is_ok());
        t.charge("a", 15);
        assert_eq!(t.admit_at("a", 1, t0).unwrap_err(), Duration::from_secs(7));
    }
}
