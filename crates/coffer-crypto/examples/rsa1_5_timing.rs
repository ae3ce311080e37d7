//! Timing of RSA1_5 decryption (issue 12, item 4): are well-formed and badly padded ciphertexts distinguishable
//! by how long their decryption takes? A measurement, not a test: run it and read the figures.
//!
//! ```sh
//! cargo run --release -p coffer-crypto --example rsa1_5_timing -- [samples per class, default 20000]
//! ```
//!
//! Three classes of 2048-bit ciphertexts are decrypted in a random interleaved order (so drift in the machine's
//! speed hits every class alike): `valid` (PKCS#1 v1.5 encryptions of random 32-byte messages), `random` (random
//! values below the modulus: their padding is wrong in the first bytes) and `flipped` (a valid ciphertext with one
//! bit flipped). Each pair of classes is compared with Welch's t-test on all samples and on the samples below the
//! 90th percentile of the pair (the dudect crop, which removes interrupts and scheduling outliers), and with the
//! Mann-Whitney U test (normal approximation, z score). |t| or |z| above 4.5 means "distinguishable" (dudect's
//! threshold). For comparison the same is measured for aws-lc-rs's own PKCS#1 v1.5 decryption, which answers
//! bad padding with an error (the code before implicit rejection).
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a measurement program, not a request path"
)]

use std::time::Instant;

use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use coffer_crypto::keys::{CipherParams, EncryptionAlgorithm, PrivateKey};

const CLASSES: [&str; 3] = ["valid", "random", "flipped"];

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let key = PrivateKey::generate_rsa(2048).unwrap();
    let p = CipherParams::default();
    let coffer_crypto::keys::PublicKey::Rsa { n: modulus, .. } = key.public_key() else {
        unreachable!("an RSA key")
    };
    // A pool of inputs per class (fresh inputs defeat any caching of one input).
    let pool = 512;
    let valid: Vec<Vec<u8>> = (0..pool)
        .map(|_| {
            let m = coffer_crypto::random::bytes(32).unwrap();
            key.encrypt(EncryptionAlgorithm::Rsa1_5, &m, &p).unwrap().value
        })
        .collect();
    let random: Vec<Vec<u8>> = (0..pool)
        .map(|_| {
            let mut c = coffer_crypto::random::bytes(256).unwrap();
            c[0] %= modulus[0];
            c
        })
        .collect();
    let flipped: Vec<Vec<u8>> = valid
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c[100 + i % 100] ^= 1 << (i % 8);
            c
        })
        .collect();
    let inputs = [valid, random, flipped];
    let order: Vec<usize> = coffer_crypto::random::bytes(3 * n)
        .unwrap()
        .iter()
        .map(|b| usize::from(*b) % 3)
        .collect();

    println!("RSA1_5 decryption timing, 2048-bit key, {} samples in all", order.len());
    println!("\n== Coffer (implicit rejection) ==");
    let coffer = measure(&order, &inputs, |c| {
        std::hint::black_box(key.decrypt(EncryptionAlgorithm::Rsa1_5, c, &p).unwrap());
    });
    report(&coffer);

    println!("\n== aws-lc-rs Pkcs1PrivateDecryptingKey (the code before: bad padding is an error) ==");
    let der = key.to_storage_bytes().unwrap();
    let lc = Pkcs1PrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(der.expose_secret()).unwrap()).unwrap();
    let mut out = vec![0u8; 256];
    let errors = inputs
        .each_ref()
        .map(|pool| pool.iter().filter(|c| lc.decrypt(c, &mut out).is_err()).count());
    println!("errors per class (of {pool}): {errors:?} — the error itself is the oracle");
    let before = measure(&order, &inputs, |c| {
        let _ = std::hint::black_box(lc.decrypt(c, &mut out).map(|m| m.len()));
    });
    report(&before);
}

/// Times each decryption in `order`; returns the samples (nanoseconds) per class.
fn measure(order: &[usize], inputs: &[Vec<Vec<u8>>; 3], mut f: impl FnMut(&[u8])) -> [Vec<f64>; 3] {
    // Warm-up.
    for c in inputs[0].iter().take(200) {
        f(c);
    }
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut next = [0usize; 3];
    for &class in order {
        let pool = &inputs[class];
        let c = &pool[next[class] % pool.len()];
        next[class] += 1;
        let t = Instant::now();
        f(c);
        samples[class].push(t.elapsed().as_nanos() as f64);
    }
    samples
}

fn report(samples: &[Vec<f64>; 3]) {
    for (name, s) in CLASSES.iter().zip(samples) {
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{name:>8}: n={:>6} mean={:>9.0} ns median={:>9.0} ns p90={:>9.0} ns",
            s.len(),
            mean(s),
            sorted[sorted.len() / 2],
            sorted[sorted.len() * 9 / 10]
        );
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let (x, y) = (&samples[a], &samples[b]);
        let mut all: Vec<f64> = x.iter().chain(y).copied().collect();
        all.sort_by(f64::total_cmp);
        let crop = all[all.len() * 9 / 10];
        let cx: Vec<f64> = x.iter().copied().filter(|v| *v <= crop).collect();
        let cy: Vec<f64> = y.iter().copied().filter(|v| *v <= crop).collect();
        println!(
            "{:>8} vs {:<8} Welch t={:>7.2}  t(cropped p90)={:>7.2}  Mann-Whitney z={:>7.2}  mean diff={:>7.0} ns",
            CLASSES[a],
            CLASSES[b],
            welch_t(x, y),
            welch_t(&cx, &cy),
            mann_whitney_z(x, y),
            mean(x) - mean(y)
        );
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn var(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
}

fn welch_t(x: &[f64], y: &[f64]) -> f64 {
    (mean(x) - mean(y)) / (var(x) / x.len() as f64 + var(y) / y.len() as f64).sqrt()
}

/// The Mann-Whitney U statistic's z score (ties get their average rank; no tie correction of the variance).
fn mann_whitney_z(x: &[f64], y: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_x = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        rank_x += all[i..j].iter().filter(|e| e.1).count() as f64 * avg;
        i = j;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let u = rank_x - n1 * (n1 + 1.0) / 2.0;
    (u - n1 * n2 / 2.0) / (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()
}
