//! `bn` checked against `crypto-bigint` (pure Rust, independent code) as an
//! oracle, on random inputs.
#![deny(unsafe_code)]

use std::time::Instant;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd};

use super::{rfc3526_3072, strip_leading_zeros, Group};
use crate::ids::random_bytes;

const BITS: u32 = 3072;

struct Oracle {
    n: NonZero<BoxedUint>,
    params: BoxedMontyParams,
}

impl Oracle {
    fn new(group: &Group) -> Oracle {
        let n = BoxedUint::from_be_slice(group.modulus(), BITS).unwrap();
        Oracle { params: BoxedMontyParams::new(Odd::new(n.clone()).unwrap()), n: NonZero::new(n).unwrap() }
    }

    /// `x mod N` for any length of `x`.
    fn reduce(&self, x: &[u8]) -> BoxedUint {
        let bits = (x.len() as u32 * 8).max(BITS).next_multiple_of(64);
        let wide = BoxedUint::from_be_slice(x, bits).unwrap();
        let r = wide.rem(&self.n);
        BoxedUint::from_be_slice(&r.to_be_bytes(), BITS).unwrap()
    }

    fn mod_exp(&self, base: &[u8], exp: &[u8]) -> Vec<u8> {
        let exp_bits = (exp.len() as u32 * 8).max(64).next_multiple_of(64);
        let e = BoxedUint::from_be_slice(exp, exp_bits).unwrap();
        let b = BoxedMontyForm::new(self.reduce(base), &self.params);
        b.pow(&e).retrieve().to_be_bytes().to_vec()
    }

    fn mod_mul(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        self.reduce(a).mul_mod(&self.reduce(b), &self.n).to_be_bytes().to_vec()
    }

    fn mod_add(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        self.reduce(a).add_mod(&self.reduce(b), &self.n).to_be_bytes().to_vec()
    }

    fn mod_sub(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        self.reduce(a).sub_mod(&self.reduce(b), &self.n).to_be_bytes().to_vec()
    }
}

/// A random value of one of several shapes: short, N-sized (some above N),
/// wider than N, with leading zeros.
fn random_value(i: usize) -> Vec<u8> {
    let full: [u8; 384] = random_bytes();
    match i % 7 {
        0 => full[..32].to_vec(),
        1 => full.to_vec(),
        // Above N: N starts with 64 one bits, so this almost surely is.
        2 => {
            let mut v = full.to_vec();
            v[..8].fill(0xff);
            v
        }
        3 => [full.as_slice(), &random_bytes::<40>()].concat(),
        4 => [&[0u8, 0, 0][..], &full[..100]].concat(),
        // padHex form of an N-sized value below N: 385 bytes, leading 00.
        5 => {
            let mut v = full.to_vec();
            v[0] = 0x80 | (v[0] & 0x3f);
            [&[0u8][..], &v].concat()
        }
        _ => full[..1].to_vec(),
    }
}

#[test]
fn modulus_is_the_rfc3526_3072_bit_prime() {
    let g = rfc3526_3072();
    assert_eq!(g.byte_len(), 384);
    assert_eq!(g.generator(), &[2]);
    let hex = hex::encode(g.modulus());
    assert!(hex.starts_with("ffffffffffffffffc90fdaa22168c234"));
    assert!(hex.ends_with("a93ad2caffffffffffffffff"));
}

#[test]
fn mod_exp_matches_crypto_bigint() {
    let g = rfc3526_3072();
    let oracle = Oracle::new(g);
    for i in 0..24 {
        let base = random_value(i);
        let exp: Vec<u8> = match i % 4 {
            0 => random_bytes::<32>().to_vec(),
            1 => random_bytes::<128>().to_vec(),
            2 => [&[0u8; 16][..], &random_bytes::<16>()].concat(),
            _ => random_bytes::<384>().to_vec(),
        };
        assert_eq!(g.mod_exp_secret(&base, &exp), oracle.mod_exp(&base, &exp), "case {i}");
        assert_eq!(g.g_pow_secret(&exp), oracle.mod_exp(&[2], &exp), "g^e, case {i}");
    }
}

#[test]
fn mod_exp_edge_cases() {
    let g = rfc3526_3072();
    let n = g.modulus().to_vec();
    let mut one = vec![0u8; 384];
    one[383] = 1;
    let zero = vec![0u8; 384];
    // x^0 = 1, including 0^0 (the usual convention, and aws-lc's).
    assert_eq!(g.mod_exp_secret(&[5], &[]), one);
    assert_eq!(g.mod_exp_secret(&[5], &[0, 0, 0, 0]), one);
    // 0^e = 0 and N ≡ 0.
    assert_eq!(g.mod_exp_secret(&[], &[3]), zero);
    assert_eq!(g.mod_exp_secret(&n, &[3]), zero);
    // (N−1)^2 = 1.
    let n_minus_1 = g.mod_sub(&n, &one);
    assert_eq!(g.mod_exp_secret(&n_minus_1, &[2]), one);
    // Fermat: g^(N−1) = 1 since N is prime.
    assert_eq!(g.g_pow_secret(strip_leading_zeros(&n_minus_1)), one);
}

#[test]
fn mod_mul_add_sub_match_crypto_bigint() {
    let g = rfc3526_3072();
    let oracle = Oracle::new(g);
    for i in 0..36 {
        let a = random_value(i);
        let b = random_value(i / 6 + i);
        assert_eq!(g.mod_mul(&a, &b), oracle.mod_mul(&a, &b), "mul {i}");
        assert_eq!(g.mod_add(&a, &b), oracle.mod_add(&a, &b), "add {i}");
        assert_eq!(g.mod_sub(&a, &b), oracle.mod_sub(&a, &b), "sub {i}");
        assert_eq!(g.reduce(&a), oracle.reduce(&a).to_be_bytes().to_vec(), "reduce {i}");
    }
}

#[test]
fn zero_mod_n() {
    let g = rfc3526_3072();
    let n = g.modulus().to_vec();
    assert!(g.is_zero_mod_n(&[]));
    assert!(g.is_zero_mod_n(&[0, 0]));
    assert!(g.is_zero_mod_n(&n));
    // 2N and 3N (wider than N).
    assert!(g.is_zero_mod_n(&g_times_small(&[&[0u8][..], &n].concat(), 2)));
    assert!(g.is_zero_mod_n(&g_times_small(&[&[0u8][..], &n].concat(), 3)));
    assert!(!g.is_zero_mod_n(&[1]));
    let n_plus_1 = g.reduce(&add_one(&[&[0u8][..], &n].concat()));
    assert_eq!(strip_leading_zeros(&n_plus_1), &[1]);
    assert!(!g.is_zero_mod_n(&n_plus_1));
}

/// Schoolbook `x · k` on big-endian bytes (x has room for the carry).
fn g_times_small(x: &[u8], k: u16) -> Vec<u8> {
    let mut out = x.to_vec();
    let mut carry = 0u32;
    for b in out.iter_mut().rev() {
        let v = u32::from(*b) * u32::from(k) + carry;
        *b = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn add_one(x: &[u8]) -> Vec<u8> {
    let mut out = x.to_vec();
    for b in out.iter_mut().rev() {
        let (v, overflow) = b.overflowing_add(1);
        *b = v;
        if !overflow {
            break;
        }
    }
    out
}

#[test]
fn group_is_shared_across_threads() {
    let g = rfc3526_3072();
    let exp = random_bytes::<32>();
    let expected = g.g_pow_secret(&exp);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| rfc3526_3072().g_pow_secret(&exp))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
}

/// Prints the cost of one modexp with a 256-bit exponent (run with
/// `--nocapture` to see it; `cargo run --release --example srp_bench` for
/// release numbers).
#[test]
fn bench_modexp_256_bit_exponent() {
    let g = rfc3526_3072();
    let base = g.reduce(&random_bytes::<384>());
    let exp = random_bytes::<32>();
    let _ = g.mod_exp_secret(&base, &exp); // warm up
    let iters = 20u32;
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(g.mod_exp_secret(&base, &exp));
    }
    let per = start.elapsed() / iters;
    println!("bn: one 3072-bit modexp, 256-bit exponent: {per:?}");
}
