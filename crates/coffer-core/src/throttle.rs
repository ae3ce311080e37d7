//! Throttling as Key Vault does it: weighted transactions per 10 seconds, enforced on their sum, answered with
//! 429 and `Retry-After`; sized for a dedicated HSM rather than a shared multi-tenant service.
//!
//! Two pools that never draw on each other:
//! * **signed-in traffic**: each principal has a budget (default: as large as the instance's, so a lone client
//!   is limited only by the instance) and all principals together draw on the instance budget;
//! * **traffic without a valid token and the token service**: each client address has a budget, and all of it
//!   together draws on the unauthenticated budget. A flood without tokens therefore cannot make the instance
//!   refuse signed-in callers.
//!
//! Fair share: the last tenth of a pool's budget is a reserve. While a request would dip into it ("the pool is
//! short"), each member may take only its share of the reserve, which refills at its share of the pool's rate
//! (with n members active in the last moments, a share is 1/(n+1): one share stays free for a newcomer); a member
//! that has used its share waits and the others keep getting through. A lone client can burst to 95% of the
//! pool's budget and keeps the pool's full rate, so it is never refused below the budget's rate. Members have
//! a budget of their own only when it is configured below the pool's. Budgets are token buckets that refill
//! continuously.
//!
//! Weights follow the ratios of the Key Vault limits table (per 10 s for HSM keys: 2,000 RSA-2048 or EC or AES
//! operations, 500 RSA-3072, 250 RSA-4096, 10 key creations): an RSA-2048, EC or AES operation and every other
//! call cost 1 unit, RSA-3072 4, RSA-4096 8, a key creation, import, rotation or restore 200 (the operation
//! table, [`crate::operation`], says which). A key operation is charged 1 up front and the rest when the key's
//! type is known (after the request), so an RSA-4096 caller runs into its limit eight times sooner.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::operation::Operation;

/// Budgets in units per 10 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Each signed-in principal (capped at `instance`).
    pub per_principal: u64,
    /// All signed-in principals together.
    pub instance: u64,
    /// Each client address, for requests without a valid token and token-service requests (capped at
    /// `unauthenticated`).
    pub per_address: u64,
    /// All requests without a valid token and token-service requests together.
    pub unauthenticated: u64,
}

impl ThrottleLimits {
    /// Signed-in traffic: 1,000,000 units per 10 s (100,000 cheap operations a second, far above what one
    /// machine serves, so the default never refuses a client below the machine's capacity), for the instance and
    /// for each principal. Unauthenticated traffic: 20,000 per 10 s overall and 2,000 per client address (a
    /// client fetches a token about once an hour; the limit keeps a flood without tokens from taking the
    /// machine).
    pub const DEFAULT: Self = Self {
        per_principal: 1_000_000,
        instance: 1_000_000,
        per_address: 2_000,
        unauthenticated: 20_000,
    };
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whose budget a request is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    /// A signed-in principal (its object id).
    Principal(&'a str),
    /// A client without a valid token, or calling the token service.
    Address(IpAddr),
}

/// The budget that was short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The principal's own.
    Principal,
    /// The client address's own.
    ClientAddress,
    /// The instance's (all signed-in principals).
    Instance,
    /// All traffic without a valid token and token-service traffic.
    Unauthenticated,
}

impl Budget {
    /// For the 429 message.
    pub fn describe(self) -> &'static str {
        match self {
            Budget::Principal => "the calling principal's budget",
            Budget::ClientAddress => "the client address's budget for requests without a valid token",
            Budget::Instance => {
                "the instance's budget, shared by all principals (while it is short, principals that used more \
                 than their fair share wait)"
            }
            Budget::Unauthenticated => "the budget of all requests without a valid token and token requests",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Which budget was short.
    pub budget: Budget,
    /// When to try again (at least one second, as `Retry-After` is in seconds).
    pub retry_after: Duration,
}

/// The extra units a key operation costs once the key's type and size are known (RSA-3072: 3, RSA-4096: 7).
pub fn key_surcharge(operation: &Operation<'_>, key_properties: Option<&serde_json::Value>) -> u64 {
    let spec = operation.spec();
    if !spec.key_weighted {
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

/// The throttle.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    principals: Mutex<Pool<String>>,
    addresses: Mutex<Pool<IpAddr>>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        let now = Instant::now();
        Self {
            limits,
            principals: Mutex::new(Pool::new(limits.per_principal, limits.instance, now)),
            addresses: Mutex::new(Pool::new(limits.per_address, limits.unauthenticated, now)),
        }
    }

    /// The limits.
    pub fn limits(&self) -> ThrottleLimits {
        self.limits
    }

    /// Takes `cost` units from `who`'s budget and its pool's.
    pub fn admit(&self, who: Who<'_>, cost: u64) -> Result<(), Refusal> {
        self.admit_at(who, cost, Instant::now())
    }

    /// [`Throttle::admit`] at a given time (tests).
    pub fn admit_at(&self, who: Who<'_>, cost: u64, now: Instant) -> Result<(), Refusal> {
        let (short, retry_after) = match who {
            Who::Principal(id) => match lock(&self.principals).admit(id, cost, now) {
                Ok(()) => return Ok(()),
                Err((Short::Member, w)) => (Budget::Principal, w),
                Err((Short::Pool, w)) => (Budget::Instance, w),
            },
            Who::Address(ip) => match lock(&self.addresses).admit(&ip, cost, now) {
                Ok(()) => return Ok(()),
                Err((Short::Member, w)) => (Budget::ClientAddress, w),
                Err((Short::Pool, w)) => (Budget::Unauthenticated, w),
            },
        };
        Err(Refusal {
            budget: short,
            retry_after,
        })
    }

    /// Charges units after the fact (the key-type surcharge); the balance may go below zero.
    pub fn charge(&self, who: Who<'_>, cost: u64) {
        if cost == 0 {
            return;
        }
        match who {
            Who::Principal(id) => lock(&self.principals).charge(id, cost),
            Who::Address(ip) => lock(&self.addresses).charge(&ip, cost),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const WINDOW_SECS: f64 = 10.0;
/// The share of a pool's budget kept for fair sharing.
const RESERVE: f64 = 0.1;
/// Idle members are forgotten at least this often (and every [`PRUNE_CALLS`] calls).
const PRUNE_EVERY: Duration = Duration::from_secs(1);
const PRUNE_CALLS: u64 = 1024;

/// Which bucket was short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Short {
    Member,
    Pool,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    /// The member's own bucket.
    own: f64,
    /// Its share of the pool's reserve.
    share: f64,
    at: Instant,
}

/// Members with their own budgets drawing on one pool budget.
#[derive(Debug)]
struct Pool<K> {
    /// `None`: members have no budget of their own below the pool's.
    member_cap: Option<f64>,
    pool_cap: f64,
    members: HashMap<K, Member>,
    level: f64,
    at: Instant,
    calls: u64,
    pruned_at: Instant,
}

/// Time until a bucket refilling at `per_sec` gains `units` (whole seconds, at least one).
fn wait(units: f64, per_sec: f64) -> Duration {
    Duration::from_secs_f64((units / per_sec).ceil().clamp(1.0, 86_400.0))
}

impl<K: Hash + Eq> Pool<K> {
    fn new(member_cap: u64, pool_cap: u64, now: Instant) -> Self {
        let pool_cap = pool_cap.max(1) as f64;
        Self {
            member_cap: Some(member_cap.max(1) as f64).filter(|m| *m < pool_cap),
            pool_cap,
            members: HashMap::new(),
            level: pool_cap,
            at: now,
            calls: 0,
            pruned_at: now,
        }
    }

    fn reserve(&self) -> f64 {
        self.pool_cap * RESERVE
    }

    /// (share cap, share refill per second) with the members known now. One share more than there are members
    /// stays free, so that a newcomer always finds some of the reserve left.
    fn share(&self) -> (f64, f64) {
        let parts = (self.members.len() + 1) as f64;
        (self.reserve() / parts, self.pool_cap / WINDOW_SECS / parts)
    }

    fn refill_member(m: &mut Member, now: Instant, member_cap: Option<f64>, (share_cap, share_rate): (f64, f64)) {
        let dt = now.saturating_duration_since(m.at).as_secs_f64();
        if let Some(cap) = member_cap {
            m.own = (m.own + dt * cap / WINDOW_SECS).min(cap);
        }
        m.share = (m.share + dt * share_rate).min(share_cap);
        m.at = now;
    }

    /// Forgets members whose buckets are full again.
    fn prune(&mut self, now: Instant) {
        let member_cap = self.member_cap;
        let share = self.share();
        self.members.retain(|_, m| {
            Self::refill_member(m, now, member_cap, share);
            member_cap.is_some_and(|cap| m.own < cap) || m.share < share.0
        });
        self.pruned_at = now;
    }

    fn admit<Q>(&mut self, key: &Q, cost: u64, now: Instant) -> Result<(), (Short, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(PRUNE_CALLS) || now.saturating_duration_since(self.pruned_at) >= PRUNE_EVERY {
            self.prune(now);
        }
        let rate = self.pool_cap / WINDOW_SECS;
        self.level = (self.level + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(self.pool_cap);
        self.at = now;
        let new = !self.members.contains_key(key);
        if new {
            let member = Member {
                own: self.member_cap.unwrap_or(0.0),
                share: 0.0,
                at: now,
            };
            self.members.insert(key.to_owned(), member);
        }
        let share = self.share();
        let (member_cap, pool_cap, reserve) = (self.member_cap, self.pool_cap, self.reserve());
        let Some(m) = self.members.get_mut(key) else {
            return Err((Short::Pool, wait(1.0, rate)));
        };
        if new {
            m.share = share.0;
        }
        Self::refill_member(m, now, member_cap, share);
        let cost = cost as f64;
        if let Some(cap) = member_cap {
            let need = cost.min(cap);
            if m.own < need {
                return Err((Short::Member, wait(need - m.own, cap / WINDOW_SECS)));
            }
        }
        let need = cost.min(pool_cap);
        if self.level < need {
            return Err((Short::Pool, wait(need - self.level, rate)));
        }
        if self.level - cost < reserve {
            // Short: only members within their share of the reserve.
            let (share_cap, share_rate) = share;
            let need = cost.min(share_cap);
            if m.share < need {
                let until_share = wait(need - m.share, share_rate);
                let until_free = wait(reserve + cost - self.level, rate);
                return Err((Short::Pool, until_share.min(until_free)));
            }
            m.share = (m.share - cost).max(-share_cap);
        }
        m.own -= cost;
        self.level -= cost;
        Ok(())
    }

    fn charge<Q>(&mut self, key: &Q, cost: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cost = cost as f64;
        if let Some(m) = self.members.get_mut(key) {
            m.own -= cost;
        }
        self.level -= cost;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(n: u32) -> Who<'static> {
        Who::Address(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
    }

    #[test]
    fn budgets_are_per_principal_and_refill() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 10,
            instance: 1000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(t.admit_at(Who::Principal("a"), 1, t0).is_ok());
        }
        let r = t.admit_at(Who::Principal("a"), 1, t0).unwrap_err();
        assert_eq!(
            r,
            Refusal {
                budget: Budget::Principal,
                retry_after: Duration::from_secs(1)
            }
        );
        // Another principal is not affected.
        assert!(t.admit_at(Who::Principal("b"), 1, t0).is_ok());
        // One second refills one unit (10 per 10 s).
        assert!(t.admit_at(Who::Principal("a"), 1, t0 + Duration::from_secs(1)).is_ok());
        assert!(t.admit_at(Who::Principal("a"), 1, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_instance_budget_caps_the_sum() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 1000,
            instance: 1000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        let mut ok = 0;
        for i in 0..2000 {
            let who = if i % 2 == 0 { "c" } else { "d" };
            ok += usize::from(t.admit_at(Who::Principal(who), 1, t0).is_ok());
        }
        // The free 900 and the two principals' shares of the reserve (100 / 3 each).
        assert_eq!(ok, 966);
        // A newcomer still finds its share.
        assert!(t.admit_at(Who::Principal("e"), 1, t0).is_ok());
        ok += 1;
        // Never more than the budget, however many principals ask.
        let names: Vec<String> = (0..200).map(|i| format!("p{i}")).collect();
        let mut last = None;
        for n in &names {
            match t.admit_at(Who::Principal(n), 1, t0) {
                Ok(()) => ok += 1,
                Err(r) => last = Some(r.budget),
            }
        }
        assert!(ok <= 1000, "{ok}");
        assert_eq!(last, Some(Budget::Instance));
    }

    #[test]
    fn a_lone_client_at_full_load_is_never_refused_with_defaults() {
        let t = Throttle::new(ThrottleLimits::default());
        let t0 = Instant::now();
        // 100,000 cheap operations and 100 key creations in 10 simulated seconds, then 400,000 more in the next 10.
        for i in 0..500_000u64 {
            let now = t0 + Duration::from_micros(i * 40);
            let cost = if i % 1000 == 0 && i < 100_000 { 200 } else { 1 };
            assert_eq!(t.admit_at(Who::Principal("app"), cost, now), Ok(()), "call {i}");
        }
    }

    #[test]
    fn a_lone_client_gets_the_whole_rate() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 1000,
            instance: 1000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        let ok = (0..1500)
            .filter(|_| t.admit_at(Who::Principal("app"), 1, t0).is_ok())
            .count();
        // The free 900 and half the reserve (the other half waits for a newcomer).
        assert_eq!(ok, 950);
        // Asking 10 times a millisecond for 10 s, it gets the full rate (1,000 units per 10 s) less the 50 that
        // refill the newcomer's half of the reserve.
        let mut ok = 0;
        for ms in 1..=10_000u64 {
            for _ in 0..10 {
                ok += usize::from(
                    t.admit_at(Who::Principal("app"), 1, t0 + Duration::from_millis(ms))
                        .is_ok(),
                );
            }
        }
        assert!((940..=1000).contains(&ok), "{ok}");
    }

    #[test]
    fn a_flooding_principal_does_not_starve_another() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 1000,
            instance: 1000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        let (mut flood_ok, mut flood_refused) = (0u64, 0u64);
        let mut quiet = Vec::new();
        // The flood asks 10 times a millisecond (100 times the instance's rate) for 20 s; the quiet principal
        // starts after 2 s and asks every 50 ms (a fifth of the rate).
        for ms in 0..20_000u64 {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..10 {
                match t.admit_at(Who::Principal("flood"), 1, now) {
                    Ok(()) => flood_ok += 1,
                    Err(r) => {
                        assert_eq!(r.budget, Budget::Instance);
                        flood_refused += 1;
                    }
                }
            }
            if ms >= 2000 && ms % 50 == 0 {
                quiet.push(t.admit_at(Who::Principal("quiet"), 1, now));
            }
        }
        assert!(quiet.iter().all(Result::is_ok), "{quiet:?}");
        assert_eq!(quiet.len(), 360);
        // The flood got the rest: the budget (1,000) plus 20 s of refill (2,000) minus the quiet one's 360.
        assert!((2500..=3000).contains(&flood_ok), "{flood_ok}");
        assert!(flood_refused > 190_000);
    }

    #[test]
    fn several_quiet_principals_keep_their_share_under_a_flood() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 10_000,
            instance: 10_000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let mut refused = 0;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            for _ in 0..20 {
                let _ = t.admit_at(Who::Principal("flood"), 1, now);
            }
            // 20 principals, each at 2 units/s (40 in all, against the instance's 1,000 per second).
            if ms >= 1000 && ms % 500 == 0 {
                for n in &names {
                    refused += usize::from(t.admit_at(Who::Principal(n), 1, now).is_err());
                }
            }
        }
        assert_eq!(refused, 0);
    }

    #[test]
    fn unauthenticated_traffic_has_its_own_budget() {
        let t = Throttle::new(ThrottleLimits {
            per_principal: 1000,
            instance: 1000,
            per_address: 20,
            unauthenticated: 200,
        });
        let t0 = Instant::now();
        // One address: its own 20 units.
        let ok = (0..50).filter(|_| t.admit_at(ip(1), 1, t0).is_ok()).count();
        assert_eq!(ok, 20);
        assert_eq!(t.admit_at(ip(1), 1, t0).unwrap_err().budget, Budget::ClientAddress);
        // Many addresses: all of them together 200 units.
        let mut refusals = Vec::new();
        for n in 2..1000 {
            for _ in 0..5 {
                if let Err(r) = t.admit_at(ip(n), 1, t0) {
                    refusals.push(r.budget);
                }
            }
        }
        assert!(refusals.contains(&Budget::Unauthenticated));
        // Signed-in principals still have the whole instance budget (its free 900 units).
        for p in ["a", "b"] {
            let ok = (0..450)
                .filter(|_| t.admit_at(Who::Principal(p), 1, t0).is_ok())
                .count();
            assert_eq!(ok, 450);
        }
        // And a flood without tokens over the next 10 s never refuses a principal.
        for ms in 1..=10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            for n in 0..10 {
                let _ = t.admit_at(ip(n), 1, now);
            }
            if ms % 20 == 0 {
                assert!(t.admit_at(Who::Principal("a"), 1, now).is_ok(), "at {ms} ms");
            }
        }
    }

    #[test]
    fn weights() {
        use crate::operation::CryptoVerb;
        let rsa = |size: u64| serde_json::json!({"type": "RSA-HSM", "size": size});
        let sign = Operation::KeyCrypto {
            name: "k",
            version: "",
            verb: CryptoVerb::Sign,
        };
        let decrypt = Operation::KeyCrypto {
            name: "k",
            version: "",
            verb: CryptoVerb::Decrypt,
        };
        let get = Operation::KeyGet {
            name: "k",
            version: None,
        };
        let create = Operation::KeyCreate { name: "k" };
        assert_eq!(sign.upfront_cost() + key_surcharge(&sign, Some(&rsa(4096))), 8);
        assert_eq!(decrypt.upfront_cost() + key_surcharge(&decrypt, Some(&rsa(3072))), 4);
        assert_eq!(get.upfront_cost() + key_surcharge(&get, Some(&rsa(2048))), 1);
        assert_eq!(key_surcharge(&sign, Some(&serde_json::json!({"type": "EC-HSM"}))), 0);
        assert_eq!(create.upfront_cost(), 200);
        assert_eq!(key_surcharge(&create, Some(&rsa(4096))), 0);
        assert_eq!(key_surcharge(&Operation::RandomBytes, Some(&rsa(4096))), 0);
        // A surcharge can push the balance below zero: the next call waits longer.
        let t = Throttle::new(ThrottleLimits {
            per_principal: 10,
            instance: 1000,
            ..ThrottleLimits::DEFAULT
        });
        let t0 = Instant::now();
        assert!(t.admit_at(Who::Principal("a"), 1, t0).is_ok());
        t.charge(Who::Principal("a"), 15);
        assert_eq!(
            t.admit_at(Who::Principal("a"), 1, t0).unwrap_err().retry_after,
            Duration::from_secs(7)
        );
    }

    #[test]
    fn refusals_name_their_budget() {
        assert!(Budget::ClientAddress.describe().contains("client address"));
        assert!(!Budget::ClientAddress.describe().contains("principal"));
        assert!(Budget::Unauthenticated.describe().contains("without a valid token"));
        assert!(Budget::Principal.describe().contains("principal"));
        assert!(Budget::Instance.describe().contains("instance"));
    }
}
