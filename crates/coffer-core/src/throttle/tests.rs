//! Unit tests of the parent module.
use std::net::Ipv4Addr;

use super::*;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn ip(n: u32) -> Who<'static> {
    Who::Address(v4(n))
}

/// An address in its own /64.
fn net64(n: u64) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | (u128::from(n) << 64) | 1))
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
    // The free 900; the two principals' shares of the reserve start empty.
    assert_eq!(ok, 900);
    // A newcomer finds the newcomers' share.
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
    // The free 900 (its share of the reserve starts empty).
    assert_eq!(ok, 900);
    // Asking 10 times a millisecond for 10 s, it gets the full rate (1,000 units per 10 s) and its share of the
    // reserve.
    let mut ok = 0;
    for ms in 1..=10_000u64 {
        for _ in 0..10 {
            ok += usize::from(
                t.admit_at(Who::Principal("app"), 1, t0 + Duration::from_millis(ms))
                    .is_ok(),
            );
        }
    }
    assert!((1000..=1050).contains(&ok), "{ok}");
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
        ..ThrottleLimits::DEFAULT
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
fn the_token_service_has_its_own_pool() {
    let t = Throttle::new(ThrottleLimits {
        per_address: 20,
        unauthenticated: 200,
        per_address_tokens: 20,
        token_service: 200,
        ..ThrottleLimits::DEFAULT
    });
    let t0 = Instant::now();
    // Requests with bad tokens from many addresses spend all of the unauthenticated pool...
    let mut refused = None;
    for n in 0..2000 {
        if let Err(r) = t.admit_at(ip(n), 1, t0) {
            refused = Some(r.budget);
        }
    }
    assert_eq!(refused, Some(Budget::Unauthenticated));
    // ...and each of those addresses still gets its tokens.
    for n in 0..100 {
        assert_eq!(t.admit_at(Who::TokenClient(v4(n)), 1, t0), Ok(()), "{n}");
    }
    // A token client has its own budget there, which the 429 names.
    let ok = (0..50)
        .filter(|_| t.admit_at(Who::TokenClient(v4(5000)), 1, t0).is_ok())
        .count();
    assert_eq!(ok, 20);
    let r = t.admit_at(Who::TokenClient(v4(5000)), 1, t0).unwrap_err();
    assert_eq!(r.budget, Budget::TokenClientAddress);
    assert!(r.budget.describe().contains("token requests"));
    // A flood of token requests does not touch the pool of requests without a valid token in turn.
    let mut last = None;
    for n in 10_000..12_000 {
        if let Err(r) = t.admit_at(Who::TokenClient(v4(n)), 1, t0) {
            last = Some(r.budget);
        }
    }
    assert_eq!(last, Some(Budget::TokenService));
    let later = t0 + Duration::from_secs(1);
    assert_eq!(t.admit_at(ip(1), 1, later), Ok(()));
}

#[test]
fn ipv6_addresses_are_throttled_by_their_64_prefix() {
    let a: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
    assert_eq!(address_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    assert_eq!(
        address_key("::ffff:192.0.2.7".parse().unwrap()),
        "192.0.2.7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(address_key(v4(7)), v4(7));
    let t = Throttle::new(ThrottleLimits {
        per_address: 20,
        unauthenticated: 1000,
        per_address_tokens: 20,
        token_service: 1000,
        ..ThrottleLimits::DEFAULT
    });
    let t0 = Instant::now();
    for who in [Who::Address, Who::TokenClient] {
        // A new address for every request, all in one /64: one budget of 20.
        let ok = (0..100u128)
            .filter(|i| {
                let addr = IpAddr::V6(Ipv6Addr::from((0x2001_0db8_0001_0002_u128 << 64) | (i * 7919 + 1)));
                t.admit_at(who(addr), 1, t0).is_ok()
            })
            .count();
        assert_eq!(ok, 20);
        // Another /64 has its own.
        assert_eq!(t.admit_at(who(net64(9)), 1, t0), Ok(()));
    }
}

#[test]
fn rotating_addresses_cannot_drain_the_reserve() {
    let t = Throttle::new(ThrottleLimits {
        per_address: 20,
        unauthenticated: 200,
        ..ThrottleLimits::DEFAULT
    });
    let t0 = Instant::now();
    // A client known to the pool, and the pool spent down to its reserve by others.
    assert!(t.admit_at(ip(1), 1, t0).is_ok());
    for n in 100..1000 {
        let _ = t.admit_at(ip(n), 1, t0);
    }
    // For 10 s a flood sends 10 requests a millisecond, each from a /64 never used before (100,000 of them);
    // the known client asks every 100 ms, and a second one, unknown to the pool, every second from 3 s on.
    let (mut flood_ok, mut known_ok, mut newcomer) = (0u64, 0u64, Vec::new());
    let mut fresh = 0u64;
    for ms in 1..=10_000u64 {
        let now = t0 + Duration::from_millis(ms);
        for _ in 0..10 {
            fresh += 1;
            flood_ok += u64::from(t.admit_at(Who::Address(net64(fresh)), 1, now).is_ok());
        }
        if ms % 100 == 0 {
            known_ok += u64::from(t.admit_at(ip(1), 1, now).is_ok());
        }
        if ms >= 3000 && ms % 1000 == 0 {
            newcomer.push(t.admit_at(ip(2), 1, now).is_ok());
        }
        let (members, noted) = t.tracked()[1];
        assert!(members <= 1000 && noted <= MAX_MEMBERS, "{members} {noted}");
    }
    // The flood got no more than the pool's rate (it takes the free part, and the newcomers' share).
    assert!(flood_ok <= 210, "{flood_ok}");
    // The known client kept getting its share (about 1/40 of the rate, with the flood's recently admitted
    // addresses as members); when every fresh address started with a full share, the flood drained the
    // reserve and it got nothing (nor did the newcomer).
    assert!(known_ok >= 3, "{known_ok}");
    // The newcomer is admitted once it has come back and its share has filled.
    assert!(newcomer[..4].contains(&true), "{newcomer:?}");
}

#[test]
fn pools_stay_bounded_under_a_flood_of_new_addresses() {
    let t0 = Instant::now();
    let mut pool: Pool<IpAddr> = Pool::new(20, 1_000_000, 100, t0);
    for n in 0..100_000u64 {
        let _ = pool.admit(&net64(n), 1, t0 + Duration::from_micros(n));
        assert!(pool.members.len() <= 100 && pool.noted.len() <= 100);
        assert!(pool.noted_order.len() <= 100);
    }
    // At the bound, newcomers are still served (from the free part of the budget).
    assert!(pool.admit(&net64(1 << 40), 1, t0 + Duration::from_millis(200)).is_ok());
    assert!(pool.members.len() <= 100);
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
    assert!(!Budget::Unauthenticated.describe().contains("principal"));
    assert!(Budget::TokenClientAddress.describe().contains("client address"));
    assert!(!Budget::TokenClientAddress.describe().contains("principal"));
    assert!(Budget::TokenService.describe().contains("token requests"));
    assert!(!Budget::TokenService.describe().contains("principal"));
    assert!(Budget::Principal.describe().contains("principal"));
    assert!(Budget::Instance.describe().contains("instance"));
}
