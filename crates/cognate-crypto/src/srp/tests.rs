//! Unit tests of the SRP building blocks; the proof of interoperability is
//! `tests/golden_clients.rs`, against the real client libraries.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::*;

const POOL: &str = "us-east-1_Ab12Cd";
const USER: &str = "8f1c9a7e-1b2c-4d3e-9f00-123456789abc";
const PASSWORD: &str = "Correct horse battery staple 1!";

#[test]
fn pad_hex_rules() {
    assert_eq!(pad_hex(&[]), "00");
    assert_eq!(pad_hex(&[0]), "00");
    assert_eq!(pad_hex(&[0, 0]), "00");
    assert_eq!(pad_hex(&[0x01]), "01");
    assert_eq!(pad_hex(&[0x7f]), "7f");
    assert_eq!(pad_hex(&[0x80]), "0080");
    assert_eq!(pad_hex(&[0xff, 0x01]), "00ff01");
    assert_eq!(pad_hex(&[0, 0, 0x0a, 0xbc]), "0abc");
    assert_eq!(pad_hex(&[0, 0x80, 0]), "008000");
    assert_eq!(pad_bytes(&[0, 0, 0x90]), vec![0, 0x90]);
}

#[test]
fn hex_parsing_and_hashing() {
    assert_eq!(parse_hex("abc"), Some(vec![0x0a, 0xbc]));
    assert_eq!(parse_hex("0ABC"), Some(vec![0x0a, 0xbc]));
    assert_eq!(parse_hex("1"), Some(vec![1]));
    assert_eq!(parse_hex(""), None);
    assert_eq!(parse_hex("xyz"), None);
    assert_eq!(hex::encode(hex_hash("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(hex_hash("abc"), hex_hash("0abc"));
}

#[test]
fn k_is_cognitos_multiplier() {
    // SHA-256(00 ‖ N ‖ 02), the value every Cognito client computes.
    assert_eq!(hex::encode(multiplier()), "538282c4354742d7cbbde2359fcf67f9f5b3a6b08791e5011b43b8a5b66d9ee6");
}

#[test]
fn pool_names() {
    assert_eq!(pool_name("us-east-1_Ab12Cd"), "Ab12Cd");
    assert_eq!(pool_name("eu-west-2_x_y"), "x_y");
    assert_eq!(pool_name("nounderscore"), "nounderscore");
}

#[test]
fn salts_with_the_top_bit_set_gain_a_zero_byte() {
    let salt = loop {
        let s = new_salt();
        if s[0] & 0x80 != 0 {
            break s;
        }
    };
    let hex = salt_hex(&salt);
    assert_eq!(hex.len(), 34);
    assert!(hex.starts_with("00"));
    // The 00 byte is hashed: leaving it out gives a different verifier.
    let with_pad = compute_verifier("Ab12Cd", USER, PASSWORD, &salt);
    let x_unpadded = sha256(&[&salt, &sha256(&[b"Ab12Cd", USER.as_bytes(), b":", PASSWORD.as_bytes()])]);
    assert_ne!(with_pad, group().g_pow_secret(&x_unpadded));
    // Leading zero bytes of the salt are not part of the integer.
    assert_eq!(with_pad, compute_verifier("Ab12Cd", USER, PASSWORD, &[&[0, 0][..], &salt].concat()));

    let low = loop {
        let s = new_salt();
        if s[0] & 0x80 == 0 && s[0] != 0 {
            break s;
        }
    };
    assert_eq!(salt_hex(&low), hex::encode(low));
}

#[test]
fn client_and_server_agree() {
    let pool = pool_name(POOL);
    let salt = new_salt();
    let v = compute_verifier(pool, USER, PASSWORD, &salt);
    assert_eq!(v.len(), 384);
    check_verifier(&v).unwrap();

    let server = server_challenge(&v);
    let (a, a_pub) = client_ephemeral();
    let client_key = client_session_key(pool, USER, PASSWORD, &salt, &a, &a_pub, server.public()).unwrap();
    let server_key = session_key(&a_pub, &server, &v).unwrap();
    assert_eq!(client_key, server_key);
    // A verifier stored in padHex form (as ConfirmDevice sends device
    // verifiers, possibly with a leading 00 byte) is the same integer.
    assert_eq!(session_key(&a_pub, &server, &pad_bytes(&v)).unwrap(), server_key);

    // The claim round trip, with the SRP_A/SRP_B/SALT wire encodings.
    let a_wire = hex::encode(strip_leading_zeros(&a_pub)).trim_start_matches('0').to_owned();
    let a_parsed = parse_hex(&a_wire).unwrap();
    let restored = ServerEphemeral::from_parts(*server.secret(), parse_hex(&server.public_hex()).unwrap());
    assert_eq!(session_key(&a_parsed, &restored, &v).unwrap(), server_key);

    let block = b"sealed state";
    let ts = format_timestamp(SystemTime::now());
    let sig = password_claim_signature(&client_key, pool, USER, block, &ts);
    let sig_b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    let expected = password_claim_signature(&server_key, pool, USER, block, &ts);
    assert!(verify_claim(&expected, &sig_b64));
    assert!(!verify_claim(&expected, "not base64!"));
    assert!(!verify_claim(&expected, &sig_b64[..sig_b64.len() - 4]));
    let other_ts = password_claim_signature(&server_key, pool, USER, block, "Thu Jan 1 00:00:00 UTC 1970");
    assert!(!verify_claim(&other_ts, &sig_b64));
}

#[test]
fn wrong_password_gives_another_key() {
    let pool = pool_name(POOL);
    let salt = new_salt();
    let v = compute_verifier(pool, USER, PASSWORD, &salt);
    let server = server_challenge(&v);
    let (a, a_pub) = client_ephemeral();
    let client_key = client_session_key(pool, USER, "wrong", &salt, &a, &a_pub, server.public()).unwrap();
    assert_ne!(client_key, session_key(&a_pub, &server, &v).unwrap());
}

#[test]
fn illegal_public_values_are_refused() {
    let g = group();
    let v = compute_verifier("p", "u", "pw", &[1]);
    let server = server_challenge(&v);
    assert_eq!(session_key(&[], &server, &v), Err(SrpError::IllegalClientPublic));
    assert_eq!(session_key(&[0; 384], &server, &v), Err(SrpError::IllegalClientPublic));
    assert_eq!(session_key(g.modulus(), &server, &v), Err(SrpError::IllegalClientPublic));
    let (a, a_pub) = client_ephemeral();
    assert_eq!(client_session_key("p", "u", "pw", &[1], &a, &a_pub, g.modulus()), Err(SrpError::IllegalServerPublic));
    // A ≥ N but not ≡ 0 is hashed as sent and reduced for S.
    let big_a = [&[1u8][..], g.modulus()].concat(); // 2^3072 + N
    assert!(session_key(&big_a, &server, &v).is_ok());
}

#[test]
fn verifier_range_check() {
    let g = group();
    assert_eq!(check_verifier(&[]), Err(SrpError::IllegalVerifier));
    assert_eq!(check_verifier(&[0, 0]), Err(SrpError::IllegalVerifier));
    assert_eq!(check_verifier(g.modulus()), Err(SrpError::IllegalVerifier));
    assert_eq!(check_verifier(&[&[0u8][..], g.modulus()].concat()), Err(SrpError::IllegalVerifier));
    assert_eq!(check_verifier(&[0u8; 385]), Err(SrpError::IllegalVerifier));
    check_verifier(&[1]).unwrap();
    check_verifier(&[&[0u8][..], &g.mod_sub(g.modulus(), &[1])].concat()).unwrap();
}

#[test]
fn timestamps() {
    // 2025-05-07T00:09:40Z, a Wednesday.
    let t = UNIX_EPOCH + Duration::from_secs(1_746_576_580);
    assert_eq!(format_timestamp(t), "Wed May 7 00:09:40 UTC 2025");
    assert_eq!(parse_timestamp("Wed May 7 00:09:40 UTC 2025"), Some(t));
    assert_eq!(parse_timestamp("Wed May 07 00:09:40 UTC 2025"), Some(t));
    // The weekday is not checked against the date.
    assert_eq!(parse_timestamp("Tue May 7 00:09:40 UTC 2025"), Some(t));
    let t2 = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // 2024-12-31T23:59:59Z
    assert_eq!(format_timestamp(t2), "Tue Dec 31 23:59:59 UTC 2024");
    assert_eq!(parse_timestamp(&format_timestamp(t2)), Some(t2));
    for bad in [
        "",
        "Wed May 7 00:09:40 GMT 2025",
        "Wed May 7 0:09:40 UTC 2025",
        "Wed May 7 00:09:40 UTC 25",
        "Wed May 32 00:09:40 UTC 2025",
        "Wed Foo 7 00:09:40 UTC 2025",
        "Xyz May 7 00:09:40 UTC 2025",
        "Wed May 7 24:00:00 UTC 2025",
        "Wed May 7 00:09:40 UTC 2025 extra",
        "Wed May  7 00:09:40 UTC 2025",
        "Wed Feb 30 00:09:40 UTC 2025",
        "Wed May +7 00:09:40 UTC 2025",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad:?}");
    }
    // Formatting drops sub-second precision only.
    let now = SystemTime::now();
    let back = parse_timestamp(&format_timestamp(now)).unwrap();
    assert!(now.duration_since(back).unwrap() < Duration::from_secs(1));
}

#[test]
fn secret_hash_vector() {
    // base64(HMAC-SHA256("secret-abc", "alice" ‖ "client123")).
    let h = secret_hash("client123", "secret-abc", "alice");
    assert_eq!(h, "+fxv5aXkJx55S/b+JbCX0FgySxAFR+iUjBkhgPxA54o=");
    assert!(verify_secret_hash("client123", "secret-abc", "alice", &h));
    assert!(!verify_secret_hash("client123", "secret-abd", "alice", &h));
    assert!(!verify_secret_hash("client123", "secret-abc", "alice", ""));
}

#[test]
fn ephemeral_debug_hides_the_secret() {
    let e = ServerEphemeral::from_parts([7; 32], vec![1, 2]);
    let s = format!("{e:?}");
    assert!(s.contains("redacted") && s.contains("0102"));
    assert!(!s.contains("0707"));
}

/// Prints the server-side cost of one sign-in (both steps); run with
/// `--nocapture`. Release numbers: `cargo run --release --example srp_bench`.
#[test]
fn bench_server_side() {
    let pool = pool_name(POOL);
    let v = compute_verifier(pool, USER, PASSWORD, &new_salt());
    let (_, a_pub) = client_ephemeral();
    let _ = session_key(&a_pub, &server_challenge(&v), &v);
    let iters = 10u32;
    let (mut step1, mut step2) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iters {
        let t = Instant::now();
        let e = server_challenge(&v);
        step1 += t.elapsed();
        let t = Instant::now();
        std::hint::black_box(session_key(&a_pub, &e, &v).unwrap());
        step2 += t.elapsed();
    }
    println!(
        "srp server: step 1 (B) {:?}, step 2 (K) {:?}, both {:?}",
        step1 / iters,
        step2 / iters,
        (step1 + step2) / iters
    );
}
