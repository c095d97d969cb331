//! Cognito's SRP-6a variant (USER_SRP_AUTH, DEVICE_SRP_AUTH), as the real
//! clients (amazon-cognito-identity-js, Amplify, pycognito) implement it.
//!
//! The server keeps no state between its two steps here: the caller stores
//! what [`server_challenge`] returns (sealed into `SECRET_BLOCK`, say) and
//! passes it back to [`session_key`].
//!
//! # The variant
//!
//! * Group: the 3072-bit prime `N` of RFC 3526 with `g = 2` ([`bn::rfc3526_3072`]);
//!   hash `H` = SHA-256.
//! * Integers are hashed in **padHex** form ([`pad_hex`]): minimal big-endian,
//!   with a `00` byte in front when the top bit is set. Not padded to the
//!   length of `N`, which is why a generic SRP crate does not interoperate.
//! * `k = H(padHex(N) ‖ padHex(g))`, `u = H(padHex(A) ‖ padHex(B))`.
//! * `x = H(padHex(salt) ‖ H(P ‖ user ‖ ":" ‖ password))` where `P` is the pool
//!   name ([`pool_name`]), `v = g^x`.
//! * `B = k·v + g^b`, `S = (A·v^u)^b`, and the 16-byte session key
//!   `K = HMAC(HMAC(padHex(u), padHex(S)), "Caldera Derived Key" ‖ 0x01)[..16]`
//!   (one HKDF-SHA256 block with `u` as the salt).
//! * The client proves `K` with `PASSWORD_CLAIM_SIGNATURE =
//!   base64(HMAC(K, P ‖ user ‖ secret block ‖ TIMESTAMP))`
//!   ([`password_claim_signature`]).
//!
//! # Remembered devices
//!
//! Device SRP is the same protocol with `P := DeviceGroupKey`,
//! `user := DeviceKey` and `password :=` the device's random password, in the
//! verifier ([`compute_verifier`]), the key and the claim signature alike.
//! The device verifier and salt are made by the client (`ConfirmDevice`);
//! check them with [`check_verifier`] before storing.
//!
//! # Wire encodings the clients force
//!
//! * Emit `SALT` as [`salt_hex`] (= padHex), never as plain hex of the salt
//!   bytes: pycognito hashes the `SALT` string as received, while the JS
//!   client re-encodes the parsed integer, and only the padHex form makes the
//!   two agree (a salt starting with a zero byte would otherwise split them).
//! * Parse `SRP_A` with [`parse_hex`]: clients send it unpadded, so it can
//!   have an odd number of digits.

use std::sync::OnceLock;
use std::time::SystemTime;

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use zeroize::{Zeroize, Zeroizing};

use crate::bn::{self, strip_leading_zeros, Group};
use crate::ct;
use crate::ids::random_bytes;

/// The HKDF info string of Cognito's session key derivation.
const INFO: &[u8] = b"Caldera Derived Key";

/// Why an SRP step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrpError {
    /// The client's public value is 0 mod N (it would force S = 0).
    #[error("SRP_A is 0 mod N")]
    IllegalClientPublic,
    /// The server's public value is 0 mod N.
    #[error("SRP_B is 0 mod N")]
    IllegalServerPublic,
    /// `u = H(A, B)` came out as zero.
    #[error("SRP scrambling parameter u is zero")]
    ZeroScrambler,
    /// A verifier is 0 mod N or not below N (only a client-made device
    /// verifier can be).
    #[error("SRP verifier is out of range")]
    IllegalVerifier,
}

fn group() -> &'static Group {
    bn::rfc3526_3072()
}

/// `k = H(padHex(N) ‖ padHex(g))`, computed once.
pub fn multiplier() -> &'static [u8; 32] {
    static K: OnceLock<[u8; 32]> = OnceLock::new();
    K.get_or_init(|| {
        let g = group();
        sha256(&[&pad_bytes(g.modulus()), &pad_bytes(g.generator())])
    })
}

// ---------------------------------------------------------------------------
// Encodings and hashes

/// The padHex byte form of a non-negative big-endian integer: leading zero
/// bytes removed, then one `0x00` added if the top bit is set (the minimal
/// two's-complement form). Zero is `[0x00]`.
pub fn pad_bytes(bytes_be: &[u8]) -> Vec<u8> {
    let minimal = strip_leading_zeros(bytes_be);
    match minimal.first() {
        None => vec![0],
        Some(&first) if first & 0x80 != 0 => [&[0u8][..], minimal].concat(),
        Some(_) => minimal.to_vec(),
    }
}

/// Cognito's `padHex`: lower-case hex of [`pad_bytes`].
///
/// This is exactly what the clients produce: hex of the integer, a `0`
/// prepended when the digit count is odd, then `00` prepended when the first
/// digit is 8–f. Examples: `[]` → `"00"`, `[0x7f]` → `"7f"`,
/// `[0x80]` → `"0080"`, `[0, 0, 0x0a, 0xbc]` → `"0abc"`.
pub fn pad_hex(bytes_be: &[u8]) -> String {
    hex::encode(pad_bytes(bytes_be))
}

/// SHA-256 of the bytes that the hex string `hex` encodes (the clients'
/// `hexHash`). An odd number of digits is read with an implied leading `0`.
///
/// # Panics
/// If `hex` contains a non-hex character. This takes strings built from
/// [`pad_hex`] output, never peer input.
#[allow(clippy::expect_used, reason = "callers pass pad_hex output, never peer input (see Panics)")]
pub fn hex_hash(hex: &str) -> [u8; 32] {
    let bytes = if hex.is_empty() { Vec::new() } else { parse_hex(hex).expect("hex_hash takes a hex string") };
    sha256(&[&bytes])
}

/// Parses a hex integer as clients send it (`SRP_A`, `SRP_B`, `SALT`):
/// upper or lower case, any number of digits including an odd number (as
/// JavaScript's `toString(16)` and Python's `'%x'` produce). Returns the
/// big-endian bytes, or `None` if the string is empty or not hex.
pub fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() {
        return None;
    }
    if hex.len() % 2 == 1 {
        hex::decode(format!("0{hex}")).ok()
    } else {
        hex::decode(hex).ok()
    }
}

#[allow(clippy::expect_used, reason = "SHA-256 output is always 32 bytes")]
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[allow(clippy::expect_used, reason = "HMAC-SHA256 output is always 32 bytes")]
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    ctx.sign().as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
}

/// The pool name that SRP hashes: the user pool id without its region
/// prefix, i.e. everything after the first `_` (`us-east-1_Ab12Cd` →
/// `Ab12Cd`). An id without `_` is returned whole.
pub fn pool_name(user_pool_id: &str) -> &str {
    user_pool_id.split_once('_').map_or(user_pool_id, |(_, name)| name)
}

// ---------------------------------------------------------------------------
// Verifiers

/// A fresh random 16-byte salt.
///
/// Send it as [`salt_hex`]. About half of all salts have the top bit set and
/// so gain a `00` byte in padHex form; that is part of what is hashed.
pub fn new_salt() -> [u8; 16] {
    random_bytes()
}

/// The `SALT` challenge parameter for `salt`: its padHex form (see the
/// module documentation for why plain hex is not enough).
pub fn salt_hex(salt: &[u8]) -> String {
    pad_hex(salt)
}

/// `x = H(padHex(salt) ‖ H(prefix ‖ user ‖ ":" ‖ password))`.
fn compute_x(prefix: &str, user: &str, password: &str, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let inner = Zeroizing::new(sha256(&[prefix.as_bytes(), user.as_bytes(), b":", password.as_bytes()]));
    Zeroizing::new(sha256(&[&pad_bytes(salt), inner.as_slice()]))
}

/// The password verifier `v = g^x mod N` (384 bytes, big-endian) for
/// `user_id_for_srp` in the pool named `pool_name` (see [`pool_name`]).
///
/// The salt is taken as an integer: leading zero bytes do not matter.
///
/// The same function makes device verifiers: pass the `DeviceGroupKey` as
/// `pool_name`, the `DeviceKey` as the user and the device password.
pub fn compute_verifier(pool_name: &str, user_id_for_srp: &str, password: &str, salt: &[u8]) -> Vec<u8> {
    let x = compute_x(pool_name, user_id_for_srp, password, salt);
    group().g_pow_secret(x.as_slice())
}

/// Checks a verifier made elsewhere (a client's device verifier): it must be
/// in `[1, N)`. Anything else cannot have come from `g^x`.
pub fn check_verifier(verifier: &[u8]) -> Result<(), SrpError> {
    let v = strip_leading_zeros(verifier);
    let g = group();
    let below_n = v.len() < g.byte_len() || (v.len() == g.byte_len() && v < g.modulus());
    if v.is_empty() || !below_n {
        return Err(SrpError::IllegalVerifier);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Server side

/// The server's ephemeral key pair for one sign-in: the secret `b` (256
/// random bits, wiped on drop) and the public `B = (k·v + g^b) mod N`.
pub struct ServerEphemeral {
    secret: Zeroizing<[u8; 32]>,
    public: Vec<u8>,
}

impl ServerEphemeral {
    /// Rebuilds the pair from stored parts (e.g. unsealed from
    /// `SECRET_BLOCK`), without recomputing `B`.
    pub fn from_parts(secret: [u8; 32], public: Vec<u8>) -> ServerEphemeral {
        ServerEphemeral { secret: Zeroizing::new(secret), public }
    }

    /// The secret exponent `b`, to be stored only sealed.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// `B`, big-endian (384 bytes when made by [`server_challenge`]).
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// `B` as the `SRP_B` challenge parameter: lower-case hex, 768 digits
    /// (leading zeros kept, as real Cognito's are).
    pub fn public_hex(&self) -> String {
        hex::encode(&self.public)
    }
}

impl std::fmt::Debug for ServerEphemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEphemeral").field("secret", &"<redacted>").field("public", &self.public_hex()).finish()
    }
}

/// Server step 1 (answering `SRP_A`): a fresh `b` and
/// `B = (k·v + g^b) mod N` for the stored `verifier`.
pub fn server_challenge(verifier: &[u8]) -> ServerEphemeral {
    let g = group();
    let kv = g.mod_mul(multiplier(), verifier);
    loop {
        let secret = Zeroizing::new(random_bytes::<32>());
        if secret.iter().all(|&b| b == 0) {
            continue;
        }
        let g_b = Zeroizing::new(g.g_pow_secret(secret.as_slice()));
        let public = g.mod_add(&kv, &g_b);
        // B ≡ 0 would need g^b ≡ −k·v: never in practice, but the client
        // would reject it, so draw again rather than fail the sign-in.
        if !g.is_zero_mod_n(&public) {
            return ServerEphemeral { secret, public };
        }
    }
}

/// `u = H(padHex(A) ‖ padHex(B))`.
fn compute_u(a_pub: &[u8], b_pub: &[u8]) -> [u8; 32] {
    sha256(&[&pad_bytes(a_pub), &pad_bytes(b_pub)])
}

/// Cognito's key derivation: the first 16 bytes of
/// `HMAC(HMAC(padHex(u), padHex(S)), "Caldera Derived Key" ‖ 0x01)`.
fn derive_key(s: &[u8], u: &[u8; 32]) -> [u8; 16] {
    let s_padded = Zeroizing::new(pad_bytes(s));
    let prk = Zeroizing::new(hmac_sha256(&pad_bytes(u), &[&s_padded]));
    let mut okm = hmac_sha256(prk.as_slice(), &[INFO, &[1]]);
    let mut key = [0u8; 16];
    key.copy_from_slice(&okm[..16]);
    okm.zeroize();
    key
}

/// Server step 2: the 16-byte session key for the client's `SRP_A`
/// (`a_pub`, parsed with [`parse_hex`]), the server's ephemeral pair and the
/// user's verifier. `S = (A · v^u)^b mod N`.
///
/// Refuses `A ≡ 0 (mod N)` and `u = 0`.
pub fn session_key(a_pub: &[u8], b: &ServerEphemeral, verifier: &[u8]) -> Result<[u8; 16], SrpError> {
    let g = group();
    if g.is_zero_mod_n(a_pub) {
        return Err(SrpError::IllegalClientPublic);
    }
    let u = compute_u(a_pub, b.public());
    if u.iter().all(|&x| x == 0) {
        return Err(SrpError::ZeroScrambler);
    }
    let v_u = Zeroizing::new(g.mod_exp_secret(verifier, &u));
    let base = Zeroizing::new(g.mod_mul(a_pub, &v_u));
    let s = Zeroizing::new(g.mod_exp_secret(&base, b.secret().as_slice()));
    Ok(derive_key(&s, &u))
}

/// `HMAC-SHA256(K, pool_name ‖ user ‖ secret_block ‖ timestamp)`: the raw
/// `PASSWORD_CLAIM_SIGNATURE` (the client sends it base64-encoded).
///
/// `secret_block` is the base64-*decoded* `SECRET_BLOCK`; `timestamp` is the
/// client's `TIMESTAMP` exactly as received. For devices pass the
/// `DeviceGroupKey` and `DeviceKey` as `pool_name` and user.
pub fn password_claim_signature(
    key: &[u8; 16],
    pool_name: &str,
    user_id_for_srp: &str,
    secret_block: &[u8],
    timestamp: &str,
) -> [u8; 32] {
    hmac_sha256(key, &[pool_name.as_bytes(), user_id_for_srp.as_bytes(), secret_block, timestamp.as_bytes()])
}

/// Whether the client's base64 `PASSWORD_CLAIM_SIGNATURE` equals `expected`,
/// compared in constant time. Anything that is not standard, padded base64
/// of 32 bytes is simply unequal.
pub fn verify_claim(expected: &[u8; 32], claim_b64: &str) -> bool {
    match base64::engine::general_purpose::STANDARD.decode(claim_b64) {
        Ok(claim) => ct::eq(expected, &claim),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// TIMESTAMP

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `t` in Cognito's `TIMESTAMP` format, UTC: `Wed May 7 00:09:40 UTC 2025`
/// (English names, day of month not zero-padded, time zero-padded).
pub fn format_timestamp(t: SystemTime) -> String {
    let dt = OffsetDateTime::from(t);
    format!(
        "{} {} {} {:02}:{:02}:{:02} UTC {}",
        WEEKDAYS[usize::from(dt.weekday().number_days_from_monday())],
        MONTHS[usize::from(u8::from(dt.month())) - 1],
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.year()
    )
}

/// Parses a client's `TIMESTAMP` (`Wed May 7 00:09:40 UTC 2025`; a
/// zero-padded day such as `07` is accepted too).
///
/// The weekday must be one of the English abbreviations but is not checked
/// against the date: the clients' signature covers the string as sent, and
/// the caller only needs the instant to check clock skew.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let mut parts = s.split(' ');
    let (weekday, month, day, hms, zone, year) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || zone != "UTC" || !WEEKDAYS.contains(&weekday) {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == month)?;
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let day = digits(day, 1, 2)?;
    let year = i32::try_from(digits(year, 4, 4)?).ok()?;
    let mut hms = hms.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let time = Time::from_hms(
        u8::try_from(digits(h, 2, 2)?).ok()?,
        u8::try_from(digits(m, 2, 2)?).ok()?,
        u8::try_from(digits(sec, 2, 2)?).ok()?,
    )
    .ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().into())
}

/// `s` as a decimal number of `min..=max` ASCII digits.
fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------
// Client side (for tests and test tools)

/// A client's ephemeral pair: `a` (128 random bytes, as the JS client draws
/// it; wiped on drop) and `A = g^a mod N` (384 bytes).
pub fn client_ephemeral() -> (Zeroizing<Vec<u8>>, Vec<u8>) {
    loop {
        let a = Zeroizing::new(random_bytes::<128>().to_vec());
        let a_pub = client_public(&a);
        if !group().is_zero_mod_n(&a_pub) {
            return (a, a_pub);
        }
    }
}

/// `A = g^a mod N` for a given client secret `a`.
pub fn client_public(a: &[u8]) -> Vec<u8> {
    group().g_pow_secret(a)
}

/// The client's session key: `S = (B − k·g^x)^(a + u·x) mod N`, computed as
/// `base^a · (base^u)^x` so no wide integer arithmetic is needed.
///
/// Refuses `B ≡ 0 (mod N)` and `u = 0`, as the real clients do.
pub fn client_session_key(
    pool_name: &str,
    user_id_for_srp: &str,
    password: &str,
    salt: &[u8],
    a: &[u8],
    a_pub: &[u8],
    b_pub: &[u8],
) -> Result<[u8; 16], SrpError> {
    let g = group();
    if g.is_zero_mod_n(b_pub) {
        return Err(SrpError::IllegalServerPublic);
    }
    let u = compute_u(a_pub, b_pub);
    if u.iter().all(|&x| x == 0) {
        return Err(SrpError::ZeroScrambler);
    }
    let x = compute_x(pool_name, user_id_for_srp, password, salt);
    let g_x = Zeroizing::new(g.g_pow_secret(x.as_slice()));
    let k_g_x = Zeroizing::new(g.mod_mul(multiplier(), &g_x));
    let base = Zeroizing::new(g.mod_sub(b_pub, &k_g_x));
    let base_a = Zeroizing::new(g.mod_exp_secret(&base, a));
    let base_u = Zeroizing::new(g.mod_exp_secret(&base, &u));
    let base_ux = Zeroizing::new(g.mod_exp_secret(&base_u, x.as_slice()));
    let s = Zeroizing::new(g.mod_mul(&base_a, &base_ux));
    Ok(derive_key(&s, &u))
}

// ---------------------------------------------------------------------------
// SECRET_HASH

/// `SECRET_HASH` for an app client with a secret:
/// `base64(HMAC-SHA256(key = client secret, username ‖ client id))`.
pub fn secret_hash(client_id: &str, client_secret: &str, username: &str) -> String {
    let mac = hmac_sha256(client_secret.as_bytes(), &[username.as_bytes(), client_id.as_bytes()]);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Whether a request's `SECRET_HASH` is the one for this client secret and
/// username, compared in constant time.
pub fn verify_secret_hash(client_id: &str, client_secret: &str, username: &str, provided: &str) -> bool {
    ct::eq(secret_hash(client_id, client_secret, username).as_bytes(), provided.as_bytes())
}

#[cfg(test)]
mod tests;
