//! Shamir secret sharing over GF(257), in the share format the Azure clients decode (security-domain.md §6.5).
//!
//! One polynomial of degree `quorum - 1` per secret byte, constant term = the byte, the other coefficients drawn
//! uniformly from 0..=256. Share `i` (0-based) is the polynomials evaluated at x = i + 1. Each value becomes the
//! 16-bit word `(x << 9) | f(x)` (7 bits of x, 9 bits of value), serialised little-endian, in secret-byte order,
//! so a share is twice as long as the secret.
//!
//! The arithmetic is branch-free on secret values (reduction by `256 = -1 mod 257` with a mask, inversion by a
//! fixed exponentiation `x^255`); only the public x values and the lengths steer control flow.
use zeroize::Zeroizing;

use crate::{Error, SecretBytes, random};

/// The field modulus.
const P: u32 = 257;
/// The largest x (7 bits in the share word; the clients cap the share count at 126).
pub const MAX_SHARES: u8 = 126;

// ---- GF(257) arithmetic on values 0..=256 ----

/// Reduces `x <= 65791` into 0..=256: `x = lo + 256*hi = lo - hi (mod 257)`, then adds 257 when negative.
fn reduce(x: u32) -> u32 {
    let lo = (x & 0xff) as i32;
    let hi = (x >> 8) as i32;
    let t = lo - hi;
    (t + ((t >> 31) & P as i32)) as u32
}

fn mul(a: u32, b: u32) -> u32 {
    reduce(a * b)
}

fn add(a: u32, b: u32) -> u32 {
    reduce(a + b)
}

fn sub(a: u32, b: u32) -> u32 {
    reduce(a + P - b)
}

/// `x^255 = x^-1` (Fermat), by a fixed square-and-multiply chain; 0 maps to 0.
fn inv(x: u32) -> u32 {
    let mut r = x;
    for _ in 0..7 {
        r = mul(r, r);
        r = mul(r, x);
    }
    r
}

/// `b + a1*x + ... + a_k*x^k` with `coefficients = [a1, ..., a_k]` (Horner).
fn eval(coefficients: &[u16], b: u8, x: u32) -> u32 {
    let mut v = 0;
    for &a in coefficients.iter().rev() {
        v = add(mul(v, x), u32::from(a));
    }
    add(mul(v, x), u32::from(b))
}

// ---- splitting ----

/// Splits `secret` into `shares` shares, any `quorum` of which rebuild it.
///
/// Share `i` carries x = i + 1. Requires a non-empty secret and 2 <= quorum <= shares <= 126.
pub fn shamir_split(secret: &[u8], shares: u8, quorum: u8) -> Result<Vec<SecretBytes>, Error> {
    check_split_params(secret, shares, quorum)?;
    let per_byte = usize::from(quorum - 1);
    let coefficients = random_coefficients(secret.len() * per_byte)?;
    split_with_coefficients(secret, shares, quorum, &coefficients)
}

fn check_split_params(secret: &[u8], shares: u8, quorum: u8) -> Result<(), Error> {
    if secret.is_empty() {
        return Err(Error::InvalidParameter("Shamir: the secret must not be empty"));
    }
    if shares > MAX_SHARES {
        return Err(Error::InvalidParameter("Shamir: at most 126 shares"));
    }
    if quorum < 2 || quorum > shares {
        return Err(Error::InvalidParameter(
            "Shamir: the quorum must be between 2 and the share count",
        ));
    }
    Ok(())
}

/// The split with given coefficients: `quorum - 1` per secret byte, `[a1, ..., a_{quorum-1}]` for byte 0, then
/// byte 1, and so on. Every value must be at most 256.
fn split_with_coefficients(
    secret: &[u8],
    shares: u8,
    quorum: u8,
    coefficients: &[u16],
) -> Result<Vec<SecretBytes>, Error> {
    check_split_params(secret, shares, quorum)?;
    let per_byte = usize::from(quorum - 1);
    if coefficients.len() != secret.len() * per_byte || coefficients.iter().any(|&c| u32::from(c) >= P) {
        return Err(Error::InvalidParameter("Shamir: bad coefficient list"));
    }
    let mut out = Vec::with_capacity(usize::from(shares));
    for x in 1..=u32::from(shares) {
        let mut share = SecretBytes::new(vec![0u8; secret.len() * 2]);
        let bytes = share.expose_secret_mut().chunks_exact_mut(2);
        for ((dst, &b), coeffs) in bytes.zip(secret).zip(coefficients.chunks_exact(per_byte)) {
            // x <= 126 and v <= 256, so the word fits 16 bits.
            let word = ((x << 9) | eval(coeffs, b, x)) as u16;
            for (d, s) in dst.iter_mut().zip(word.to_le_bytes()) {
                *d = s;
            }
        }
        out.push(share);
    }
    Ok(out)
}

/// `count` values drawn uniformly from 0..=256 (rejection sampling on 9 random bits).
fn random_coefficients(count: usize) -> Result<Zeroizing<Vec<u16>>, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(count));
    while out.len() < count {
        // About half of the 9-bit candidates are accepted; ask for twice what is needed, plus some.
        let pool = random::secret((count - out.len()) * 4 + 16)?;
        for pair in pool.expose_secret().chunks_exact(2) {
            if out.len() == count {
                break;
            }
            if let [lo, hi] = pair {
                let candidate = u16::from_le_bytes([*lo, *hi]) & 0x1ff;
                if u32::from(candidate) < P {
                    out.push(candidate);
                }
            }
        }
    }
    Ok(out)
}

// ---- combining ----

/// Rebuilds the secret from shares by Lagrange interpolation at 0 over **all** the shares given.
///
/// Needs at least 2 shares of equal, even length whose words carry one x each (non-zero, distinct between
/// shares) and values <= 256. Fewer shares than the quorum give a wrong secret or an error (a rebuilt value of
/// 256 is not a byte); this function cannot tell the quorum.
pub fn shamir_combine(shares: &[&[u8]]) -> Result<SecretBytes, Error> {
    let first = shares.first().ok_or(Error::InvalidParameter("Shamir: no shares"))?;
    if shares.len() < 2 {
        return Err(Error::InvalidParameter("Shamir: at least 2 shares are needed"));
    }
    let len = first.len();
    if len == 0 || !len.is_multiple_of(2) || shares.iter().any(|s| s.len() != len) {
        return Err(Error::InvalidParameter(
            "Shamir: shares must be non-empty, of even length and all of the same length",
        ));
    }
    // The x of each share (public), checked to be the same in every word of that share.
    let mut xs = Vec::with_capacity(shares.len());
    for share in shares {
        let mut x = None;
        for word in share.chunks_exact(2) {
            let (wx, _) = decode_word(word);
            if *x.get_or_insert(wx) != wx {
                return Err(Error::InvalidParameter("Shamir: a share mixes different x values"));
            }
        }
        let x = x.ok_or(Error::InvalidParameter("Shamir: empty share"))?;
        if x == 0 || xs.contains(&x) {
            return Err(Error::InvalidParameter(
                "Shamir: share x values must be non-zero and distinct",
            ));
        }
        xs.push(x);
    }
    // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i).
    let mut basis = Vec::with_capacity(xs.len());
    for (i, &xi) in xs.iter().enumerate() {
        let (mut num, mut den) = (1, 1);
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                num = mul(num, xj);
                den = mul(den, sub(xj, xi));
            }
        }
        basis.push(mul(num, inv(den)));
    }
    let mut out = SecretBytes::new(vec![0u8; len / 2]);
    let mut bad_value = 0u32;
    for (k, dst) in out.expose_secret_mut().iter_mut().enumerate() {
        let mut acc = 0;
        for (share, &l) in shares.iter().zip(&basis) {
            let (_, v) = share
                .get(2 * k..2 * k + 2)
                .map(decode_word)
                .ok_or(Error::InvalidParameter("Shamir: short share"))?;
            // Values above 256 are not field elements; fold them into the error flag without branching.
            bad_value |= u32::from(v > 256);
            acc = add(acc, mul(l, v.min(256)));
        }
        // 256 is a field element but not a byte: remember it, keep the low byte.
        bad_value |= acc >> 8;
        *dst = (acc & 0xff) as u8;
    }
    if bad_value != 0 {
        return Err(Error::InvalidParameter(
            "Shamir: the shares do not rebuild a byte string (too few shares, or corrupt shares)",
        ));
    }
    Ok(out)
}

/// `(x, v)` of a little-endian share word.
fn decode_word(word: &[u8]) -> (u32, u32) {
    let mut w = 0u32;
    for (i, b) in word.iter().take(2).enumerate() {
        w |= u32::from(*b) << (8 * i);
    }
    (w >> 9, w & 0x1ff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(share: &SecretBytes) -> Vec<u16> {
        share
            .expose_secret()
            .chunks_exact(2)
            .map(|w| u16::from_le_bytes([w[0], w[1]]))
            .collect()
    }

    #[test]
    fn field_arithmetic() {
        for a in 0..P {
            for b in 0..P {
                assert_eq!(mul(a, b), a * b % P, "{a}*{b}");
                assert_eq!(add(a, b), (a + b) % P);
                assert_eq!(sub(a, b), (a + P - b) % P);
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            }
        }
        assert_eq!(inv(0), 0);
    }

    /// security-domain.md §6.5, first vector: b = 0x41, a1 = 5.
    #[test]
    fn vector_0x41() {
        let shares = split_with_coefficients(&[0x41], 3, 2, &[5]).unwrap();
        assert_eq!(words(&shares[0]), [0x0246]);
        assert_eq!(words(&shares[1]), [0x044B]);
        assert_eq!(words(&shares[2]), [0x0650]);
        assert_eq!(shares[0].expose_secret(), [0x46, 0x02]);
        assert_eq!(shares[1].expose_secret(), [0x4b, 0x04]);
        assert_eq!(shares[2].expose_secret(), [0x50, 0x06]);
        for (i, j) in [(0, 1), (0, 2), (1, 2), (2, 0), (2, 1)] {
            let s = shamir_combine(&[shares[i].expose_secret(), shares[j].expose_secret()]).unwrap();
            assert_eq!(s.expose_secret(), [0x41]);
        }
    }

    /// security-domain.md §6.5, second vector: b = 0xFE, a1 = 2, exercising v = 256.
    #[test]
    fn vector_0xfe_value_256() {
        let shares = split_with_coefficients(&[0xFE], 3, 2, &[2]).unwrap();
        assert_eq!(words(&shares[0]), [0x0300]);
        assert_eq!(shares[0].expose_secret(), [0x00, 0x03]);
        assert_eq!(words(&shares[2]), [0x0603]);
        let s = shamir_combine(&[shares[0].expose_secret(), shares[2].expose_secret()]).unwrap();
        assert_eq!(s.expose_secret(), [0xFE]);
        // The literal bytes from the document, not only our own encoder's output.
        let s = shamir_combine(&[&[0x00, 0x03], &[0x03, 0x06]]).unwrap();
        assert_eq!(s.expose_secret(), [0xFE]);
    }

    /// The CLI decoder's reading of a word: x = w >> 9, v = w & 0x1FF.
    #[test]
    fn word_layout_is_x_shifted_by_nine() {
        let shares = split_with_coefficients(&[0, 0, 0], 126, 2, &[0, 0, 0]).unwrap();
        for (i, share) in shares.iter().enumerate() {
            for w in words(share) {
                assert_eq!(usize::from(w >> 9), i + 1);
                assert_eq!(w & 0x1ff, 0);
            }
        }
    }

    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        if k == 0 {
            return vec![vec![]];
        }
        if n < k {
            return vec![];
        }
        let mut with_last = subsets(n - 1, k - 1);
        for s in &mut with_last {
            s.push(n - 1);
        }
        let mut all = subsets(n - 1, k);
        all.extend(with_last);
        all
    }

    /// Property-style: random secrets, every (n, k) the security domain allows; every k-subset (in forward and
    /// reverse order) rebuilds the secret, and every (k-1)-subset does not.
    #[test]
    fn all_quorum_subsets_recombine_and_smaller_ones_do_not() {
        for round in 0..3 {
            for n in 3u8..=10 {
                for k in 2..=n {
                    let secret = random::bytes(32).unwrap();
                    let shares = shamir_split(&secret, n, k).unwrap();
                    assert_eq!(shares.len(), usize::from(n));
                    for subset in subsets(usize::from(n), usize::from(k)) {
                        let mut picked: Vec<&[u8]> = subset.iter().map(|&i| shares[i].expose_secret()).collect();
                        let s = shamir_combine(&picked).unwrap();
                        assert_eq!(
                            s.expose_secret(),
                            secret.as_slice(),
                            "round {round} n={n} k={k} {subset:?}"
                        );
                        picked.reverse();
                        assert_eq!(shamir_combine(&picked).unwrap().expose_secret(), secret.as_slice());
                    }
                    if k > 2 {
                        for subset in subsets(usize::from(n), usize::from(k - 1)) {
                            let picked: Vec<&[u8]> = subset.iter().map(|&i| shares[i].expose_secret()).collect();
                            match shamir_combine(&picked) {
                                Ok(s) => assert_ne!(s.expose_secret(), secret.as_slice(), "n={n} k={k} {subset:?}"),
                                Err(e) => assert!(matches!(e, Error::InvalidParameter(_))),
                            }
                        }
                    } else {
                        // k - 1 = 1 share: refused outright.
                        assert!(shamir_combine(&[shares[0].expose_secret()]).is_err());
                    }
                }
            }
        }
    }

    /// The coefficient draw covers the whole field, including 0 and 256, and is roughly uniform.
    #[test]
    fn coefficients_are_uniform_over_the_field() {
        let draws = random_coefficients(257 * 200).unwrap();
        let mut counts = [0u32; 257];
        for &c in draws.iter() {
            counts[usize::from(c)] += 1;
        }
        // Expected 200 per value; a fair draw stays far inside these bounds.
        assert!(counts.iter().all(|&c| (100..=320).contains(&c)), "{counts:?}");
    }

    #[test]
    fn rejects_bad_parameters_and_shares() {
        assert!(shamir_split(&[], 3, 2).is_err());
        assert!(shamir_split(&[1], 3, 1).is_err());
        assert!(shamir_split(&[1], 3, 4).is_err());
        assert!(shamir_split(&[1], 127, 2).is_err());
        assert!(shamir_split(&[1], 126, 126).is_ok());
        let shares = shamir_split(&[1, 2, 3, 4], 3, 2).unwrap();
        let a = shares[0].expose_secret();
        let b = shares[1].expose_secret();
        // Duplicate x.
        assert!(shamir_combine(&[a, a]).is_err());
        // Length mismatch and odd length.
        assert!(shamir_combine(&[a, &b[..6]]).is_err());
        assert!(shamir_combine(&[&a[..3], &b[..3]]).is_err());
        // x = 0.
        assert!(shamir_combine(&[&[1, 0], &[1, 2]]).is_err());
        // Mixed x inside one share.
        let mut mixed = a.to_vec();
        mixed[3] = b[3];
        assert!(shamir_combine(&[&mixed, b]).is_err());
        // A value above 256 (v = 0x1ff).
        let mut big = a.to_vec();
        big[0] = 0xff;
        big[1] |= 0x01;
        assert!(shamir_combine(&[&big, b]).is_err());
    }
}
