// A benchmark binary, not a request path: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Measures the big-integer and SRP costs (median of many runs):
//! `cargo run --release -p cognate-crypto --example srp_bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cognate_crypto::bn::{rfc3526_3072, Group};
use cognate_crypto::ids::random_bytes;
use cognate_crypto::srp;

/// Median wall time of `f` over `iters` runs, after a warm-up run.
fn median<T>(iters: usize, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[iters / 2]
}

fn main() {
    let g = rfc3526_3072();
    let base = g.reduce(&random_bytes::<384>());
    let other = g.reduce(&random_bytes::<384>());
    let exp = random_bytes::<32>();
    println!("modexp, 3072-bit modulus, 256-bit exponent: {:?}", median(200, || g.mod_exp_secret(&base, &exp)));
    println!("g^e, 256-bit exponent:                      {:?}", median(200, || g.g_pow_secret(&exp)));
    println!(
        "Group::new (parse N, Montgomery context):   {:?}",
        median(200, || Group::new(g.modulus(), g.generator()))
    );
    println!("mod_mul:                                    {:?}", median(2000, || g.mod_mul(&base, &other)));
    println!("mod_add:                                    {:?}", median(2000, || g.mod_add(&base, &other)));

    let pool = srp::pool_name("us-east-1_Ab12Cd");
    let salt = srp::new_salt();
    let v = srp::compute_verifier(pool, "user", "password", &salt);
    let (_, a_pub) = srp::client_ephemeral();
    let eph = srp::server_challenge(&v);
    let step1 = median(200, || srp::server_challenge(&v));
    let step2 = median(200, || srp::session_key(&a_pub, &eph, &v).unwrap());
    println!("SRP server step 1 (b, B):                   {step1:?}");
    println!("SRP server step 2 (u, S, K):                {step2:?}");
    println!("SRP server, both steps:                     {:?}", step1 + step2);
    println!(
        "verifier (g^x, x 256-bit):                  {:?}",
        median(200, || srp::compute_verifier(pool, "user", "password", &salt))
    );
}
