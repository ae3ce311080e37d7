//! Throttling as Key Vault does it: weighted transactions per 10 seconds, enforced on their sum, answered with
//! 429 and `Retry-After`; sized for a dedicated HSM rather than a shared multi-tenant service.
//!
//! Three pools that never draw on each other:
//! * **signed-in traffic**: each principal has a budget (default: as large as the instance's, so a lone client
//!   is limited only by the instance) and all principals together draw on the instance budget;
//! * **traffic without a valid token**: each client address has a budget, and all of it together draws on the
//!   unauthenticated budget. A request whose bearer token is not yet verified is charged here *before* its
//!   signature is checked, so a flood of forged tokens is throttled like a flood without tokens. Such a flood
//!   therefore cannot make the instance refuse signed-in callers;
//! * **the token service** (token requests and its metadata): each client address has a budget, and all of them
//!   together draw on the token service's budget, so that a flood of requests with bad tokens cannot keep clients
//!   from getting new ones.
//!
//! Client addresses are IPv4 addresses, or IPv6 /64 prefixes (one subscriber's network, in which a client can
//! pick any address: see [`address_key`]).
//!
//! Fair share: the last tenth of a pool's budget is a reserve. While a request would dip into it ("the pool is
//! short"), each member may take only its share of the reserve, which refills at its share of the pool's rate
//! (with n members, a share is 1/(n+1)); a member that has used its share waits and the others keep getting
//! through. A share starts empty and goes into debt when a request costs more than it holds, so no member gets
//! more than its share over time. The one remaining share belongs to the newcomers, all of them together: a
//! client the pool does not know yet is served from it, so an unseen client is let in at once, yet a stream of
//! fresh addresses (a rotating /64, a botnet) gets that one share in total and cannot drain the reserve. A
//! newcomer the pool refuses is only noted (in a bounded list); it becomes a member, with an empty share that
//! refills, if it comes back: addresses that never come back neither dilute the others' shares nor take memory
//! beyond that list. A member is forgotten a few seconds after its last request (or after the `Retry-After` it
//! was given) once it owes nothing. A lone client can burst to 90% of the pool's budget and keeps the pool's full rate, so it
//! is never refused below the budget's rate. Members have a budget of their own only when it is configured below
//! the pool's. Budgets are token buckets that refill continuously. Every map is bounded
//! ([`MAX_MEMBERS`] members and as many noted newcomers per pool).
//!
//! Weights follow the ratios of the Key Vault limits table (per 10 s for HSM keys: 2,000 RSA-2048 or EC or AES
//! operations, 500 RSA-3072, 250 RSA-4096, 10 key creations): an RSA-2048, EC or AES operation and every other
//! call cost 1 unit, RSA-3072 4, RSA-4096 8, a key creation, import, rotation or restore 200 (the operation
//! table, [`crate::operation`], says which). A key operation is charged 1 up front and the rest when the key's
//! type is known (after the request), so an RSA-4096 caller runs into its limit eight times sooner.
use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
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
    /// Each client address, for requests without a valid token (capped at `unauthenticated`).
    pub per_address: u64,
    /// All requests without a valid token together.
    pub unauthenticated: u64,
    /// Each client address, for token-service requests (capped at `token_service`).
    pub per_address_tokens: u64,
    /// All token-service requests together.
    pub token_service: u64,
}

impl ThrottleLimits {
    /// Signed-in traffic: 10,000,000 units per 10 s (1,000,000 cheap operations or 5,000 key creations a second,
    /// far above what one machine serves, so the default never refuses a client below the machine's capacity),
    /// for the instance and for each principal (the server's per-principal concurrency slots bound what one
    /// principal keeps in progress; docs/NETWORK.md says what they do for CPU fairness). Requests without a
    /// valid token: 20,000 per 10 s overall and 2,000 per client address.
    /// The token service: the same, separately (a client fetches a token about once an hour; the limits keep a
    /// flood from taking the machine).
    pub const DEFAULT: Self = Self {
        per_principal: 10_000_000,
        instance: 10_000_000,
        per_address: 2_000,
        unauthenticated: 20_000,
        per_address_tokens: 2_000,
        token_service: 20_000,
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
    /// A client without a valid token (or whose token is not verified yet).
    Address(IpAddr),
    /// A client calling the token service.
    TokenClient(IpAddr),
}

/// The budget that was short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The principal's own.
    Principal,
    /// The client address's own, for requests without a valid token.
    ClientAddress,
    /// The instance's (all signed-in principals).
    Instance,
    /// All traffic without a valid token.
    Unauthenticated,
    /// The client address's own, for token-service requests.
    TokenClientAddress,
    /// All token-service traffic.
    TokenService,
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
            Budget::Unauthenticated => {
                "the budget of all requests without a valid token (while it is short, client addresses that used \
                 more than their fair share wait)"
            }
            Budget::TokenClientAddress => "the client address's budget for token requests",
            Budget::TokenService => {
                "the budget of all token requests (while it is short, client addresses that used more than their \
                 fair share wait)"
            }
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

/// The key a client address is throttled by: an IPv4 address itself (also when written IPv4-mapped), an IPv6
/// address its /64 prefix (the lower 64 bits are the interface identifier, which a host picks freely).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The throttle.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    principals: Mutex<Pool<String>>,
    addresses: Mutex<Pool<IpAddr>>,
    token_clients: Mutex<Pool<IpAddr>>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: ThrottleLimits) -> Self {
        let now = Instant::now();
        Self {
            limits,
            principals: Mutex::new(Pool::new(limits.per_principal, limits.instance, MAX_MEMBERS, now)),
            addresses: Mutex::new(Pool::new(limits.per_address, limits.unauthenticated, MAX_MEMBERS, now)),
            token_clients: Mutex::new(Pool::new(
                limits.per_address_tokens,
                limits.token_service,
                MAX_MEMBERS,
                now,
            )),
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
        let (result, member, pool) = match who {
            Who::Principal(id) => (
                lock(&self.principals).admit(id, cost, now),
                Budget::Principal,
                Budget::Instance,
            ),
            Who::Address(ip) => (
                lock(&self.addresses).admit(&address_key(ip), cost, now),
                Budget::ClientAddress,
                Budget::Unauthenticated,
            ),
            Who::TokenClient(ip) => (
                lock(&self.token_clients).admit(&address_key(ip), cost, now),
                Budget::TokenClientAddress,
                Budget::TokenService,
            ),
        };
        result.map_err(|(short, retry_after)| Refusal {
            budget: match short {
                Short::Member => member,
                Short::Pool => pool,
            },
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
            Who::Address(ip) => lock(&self.addresses).charge(&address_key(ip), cost),
            Who::TokenClient(ip) => lock(&self.token_clients).charge(&address_key(ip), cost),
        }
    }

    /// Members and noted newcomers of each pool (principals, addresses without a valid token, token clients).
    pub fn tracked(&self) -> [(usize, usize); 3] {
        [
            lock(&self.principals).tracked(),
            lock(&self.addresses).tracked(),
            lock(&self.token_clients).tracked(),
        ]
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const WINDOW_SECS: f64 = 10.0;
/// The share of a pool's budget kept for fair sharing.
const RESERVE: f64 = 0.1;
/// Idle members are forgotten this often.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// A member is remembered at least this long after its last request (or after the `Retry-After` it was given),
/// and after that until it owes nothing.
const KEEP: Duration = Duration::from_secs(2);
/// The most members a pool remembers, and the most refused newcomers it notes. A member is remembered from its
/// first admitted request until a few seconds after its last one (see [`KEEP`]), so only a pool's admitted rate
/// fills the map; beyond the bound, newcomers are served (from the free part of the budget or the newcomers'
/// share) without being remembered, and the oldest noted newcomer is dropped for a new one.
pub const MAX_MEMBERS: usize = 65_536;
/// Rounding slack when a full share is needed.
const EPSILON: f64 = 1e-9;
/// How long a refused newcomer stays noted.
const NOTED_FOR: Duration = Duration::from_secs(30);

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
    /// Its share of the pool's reserve (below zero: a debt).
    share: f64,
    /// When the buckets were last refilled.
    at: Instant,
    /// Remembered at least until then.
    keep_until: Instant,
}

/// Members with their own budgets drawing on one pool budget.
#[derive(Debug)]
struct Pool<K> {
    /// `None`: members have no budget of their own below the pool's.
    member_cap: Option<f64>,
    pool_cap: f64,
    members: HashMap<K, Member>,
    /// The share of the reserve all newcomers (clients that are not members) draw on together.
    newcomers: Member,
    /// Refused newcomers, by when they were first refused; they become members when they come back.
    noted: HashMap<K, Instant>,
    /// `noted` in the order of insertion (entries whose time no longer matches are stale).
    noted_order: VecDeque<(K, Instant)>,
    max_members: usize,
    level: f64,
    at: Instant,
    pruned_at: Instant,
}

/// Time until a bucket refilling at `per_sec` gains `units` (whole seconds, at least one).
fn wait(units: f64, per_sec: f64) -> Duration {
    Duration::from_secs_f64((units / per_sec).ceil().clamp(1.0, 86_400.0))
}

impl<K: Hash + Eq + Clone> Pool<K> {
    fn new(member_cap: u64, pool_cap: u64, max_members: usize, now: Instant) -> Self {
        let pool_cap = pool_cap.max(1) as f64;
        Self {
            member_cap: Some(member_cap.max(1) as f64).filter(|m| *m < pool_cap),
            pool_cap,
            members: HashMap::new(),
            newcomers: Member {
                own: 0.0,
                share: pool_cap * RESERVE,
                at: now,
                keep_until: now,
            },
            noted: HashMap::new(),
            noted_order: VecDeque::new(),
            max_members,
            level: pool_cap,
            at: now,
            pruned_at: now,
        }
    }

    fn reserve(&self) -> f64 {
        self.pool_cap * RESERVE
    }

    /// (share cap, share refill per second) with the members known now: one share for each, and one for all
    /// newcomers together.
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

    /// Forgets members idle for a while that owe nothing, and newcomers noted too long ago. (Buckets are refilled
    /// only when their member asks, at the shares of that moment.)
    fn prune(&mut self, now: Instant) {
        let member_cap = self.member_cap;
        let (_, share_rate) = self.share();
        self.members.retain(|_, m| {
            let dt = now.saturating_duration_since(m.at).as_secs_f64();
            now < m.keep_until
                || member_cap.is_some_and(|cap| m.own + dt * cap / WINDOW_SECS < cap)
                || m.share + dt * share_rate < 0.0
        });
        while let Some((_, at)) = self.noted_order.front() {
            if now.saturating_duration_since(*at) < NOTED_FOR {
                break;
            }
            self.pop_noted();
        }
        self.pruned_at = now;
    }

    fn pop_noted(&mut self) {
        if let Some((k, at)) = self.noted_order.pop_front()
            && self.noted.get(&k) == Some(&at)
        {
            self.noted.remove(&k);
        }
    }

    fn note(&mut self, key: K, now: Instant) {
        while self.noted_order.len() >= self.max_members {
            self.pop_noted();
        }
        self.noted.insert(key.clone(), now);
        self.noted_order.push_back((key, now));
    }

    fn tracked(&self) -> (usize, usize) {
        (self.members.len(), self.noted.len())
    }

    fn admit<Q>(&mut self, key: &Q, cost: u64, now: Instant) -> Result<(), (Short, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if now.saturating_duration_since(self.pruned_at) >= PRUNE_EVERY {
            self.prune(now);
        }
        let rate = self.pool_cap / WINDOW_SECS;
        self.level = (self.level + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(self.pool_cap);
        self.at = now;
        let known = self.members.contains_key(key);
        let share = self.share();
        let (member_cap, pool_cap, reserve) = (self.member_cap, self.pool_cap, self.reserve());
        let mut fresh = Member {
            own: member_cap.unwrap_or(0.0),
            share: 0.0,
            at: now,
            keep_until: now + KEEP,
        };
        let m = if known {
            let Some(m) = self.members.get_mut(key) else {
                return Err((Short::Pool, wait(1.0, rate)));
            };
            Self::refill_member(m, now, member_cap, share);
            m
        } else {
            &mut fresh
        };
        let cost = cost as f64;
        if let Some(cap) = member_cap {
            let need = cost.min(cap);
            if m.own < need {
                let retry = wait(need - m.own, cap / WINDOW_SECS);
                m.keep_until = m.keep_until.max(now + retry + KEEP);
                return Err((Short::Member, retry));
            }
        }
        let need = cost.min(pool_cap);
        let refusal = if self.level < need {
            Some(wait(need - self.level, rate))
        } else if self.level - cost < reserve {
            // Short: a member takes from its share, a newcomer from the newcomers' share.
            let (share_cap, share_rate) = share;
            let bucket = if known {
                &mut *m
            } else {
                Self::refill_member(&mut self.newcomers, now, None, share);
                &mut self.newcomers
            };
            let need = cost.min(share_cap) - EPSILON;
            if bucket.share < need {
                let until_share = wait(need - bucket.share, share_rate);
                let until_free = wait(reserve + cost - self.level, rate);
                Some(until_share.min(until_free))
            } else {
                bucket.share -= cost;
                None
            }
        } else {
            None
        };
        if let Some(retry) = refusal {
            // Remembered until it may come back (a member waiting for its turn counts for the shares).
            m.keep_until = m.keep_until.max(now + retry + KEEP);
            if !known {
                // A refused newcomer that comes back becomes a member (with an empty share that refills); one
                // that does not is forgotten.
                if self.noted.remove(key).is_some() && self.members.len() < self.max_members {
                    self.members.insert(key.to_owned(), fresh);
                } else {
                    self.note(key.to_owned(), now);
                }
            }
            return Err((Short::Pool, retry));
        }
        m.own -= cost;
        m.keep_until = m.keep_until.max(now + KEEP);
        self.level -= cost;
        if !known && self.members.len() < self.max_members {
            self.noted.remove(key);
            self.members.insert(key.to_owned(), fresh);
        }
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
mod tests;
