//! TOTP (RFC 6238 over RFC 4226): SHA-1, 30-second steps, six digits, as authenticator apps
//! and Cognito use. Secrets are 20 random bytes shown as 32 base32 characters.

use aws_lc_rs::hmac;

const STEP_SECS: i64 = 30;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn new_secret() -> String {
    base32(&cognate_crypto::ids::random_bytes::<20>())
}

pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = BASE32.iter().position(|&b| b == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The code for time step `step`.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The step (current, one before or one after) whose code matches, compared in constant
/// time; `None` if none does. The caller refuses a step it has already accepted.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let now = step_at(unix_secs);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        if cognate_crypto::ct::eq(code_at(secret, step).as_bytes(), code.trim().as_bytes()) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890" (8-digit values; the last six).
        let key = b"12345678901234567890";
        assert_eq!(code_at(key, step_at(59)), "287082");
        assert_eq!(code_at(key, step_at(1_111_111_109)), "081804");
        assert_eq!(code_at(key, step_at(1_234_567_890)), "005924");
        assert_eq!(code_at(key, step_at(2_000_000_000)), "279037");
    }

    #[test]
    fn base32_round_trips_and_secrets_are_32_chars() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let bytes = base32_decode(&secret).expect("decode");
        assert_eq!(bytes.len(), 20);
        assert_eq!(base32(&bytes), secret);
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn adjacent_steps_match_and_others_do_not() {
        let secret = b"abcdefghijabcdefghij";
        let now = 1_700_000_000;
        let step = step_at(now);
        assert_eq!(matching_step(secret, &code_at(secret, step - 1), now), Some(step - 1));
        assert_eq!(matching_step(secret, &code_at(secret, step + 1), now), Some(step + 1));
        assert_eq!(matching_step(secret, &code_at(secret, step + 3), now), None);
    }
}
