//! Random identifiers in the shapes Cognito uses.
//!
//! Every identifier comes from the operating system's CSPRNG (through
//! `aws-lc-rs`). Identifiers such as client secrets are credentials, and the
//! others (pool ids, client ids) must not be guessable either, because
//! several Cognito APIs are callable with nothing more than a client id.
//!
//! Characters are drawn by rejection sampling: a random value is only used
//! when it falls below the largest multiple of the alphabet size, so every
//! character of the alphabet is exactly equally likely (a plain `byte % n`
//! would favour the first `256 % n` characters).
//!
//! # Why these functions return plain values
//!
//! The system RNG (`getrandom` on Linux) does not fail once the process is
//! running; if it ever did, the machine could not produce secrets at all, and
//! handing out a predictable client secret or key would be far worse than
//! stopping. So a failure aborts the process with a message instead of being
//! returned, which keeps every caller free of an error path that cannot be
//! exercised.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Digits, upper- then lower-case letters: the alphabet of user pool id suffixes.
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Lower-case letters and digits: the alphabet of app client ids and secrets.
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` from the system CSPRNG, aborting if it fails (see the module
/// documentation for why aborting is the safe choice).
fn fill(buf: &mut [u8]) {
    if SystemRandom::new().fill(buf).is_err() {
        eprintln!("cognate-crypto: the system random number generator failed; aborting");
        std::process::abort();
    }
}

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A string of `len` characters, each drawn uniformly from `alphabet`.
///
/// The alphabet is taken byte by byte and each byte becomes the `char` with
/// that code point, so it should be ASCII. Duplicated bytes are allowed and
/// simply make that character more likely. An empty alphabet yields an empty
/// string (there is nothing to draw from).
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    if alphabet.is_empty() || len == 0 {
        return out;
    }
    let n = alphabet.len() as u64;
    // Values are drawn as u32; anything at or above `zone` would make the
    // low indices more likely and is thrown away. For any alphabet shorter
    // than 2^32 at least half of all values are accepted, so this terminates
    // quickly.
    let space = 1u64 << 32;
    let zone = space - space % n;
    // Draw in batches to make few RNG calls; a batch sized for the remaining
    // characters plus a margin usually suffices.
    let mut buf = vec![0u8; (len + 8) * 4];
    while out.len() < len {
        fill(&mut buf);
        for chunk in buf.chunks_exact(4) {
            if out.len() == len {
                break;
            }
            let v = u64::from(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
            if v < zone {
                // `v % n` is below `alphabet.len()`, so the index is in bounds.
                let idx = (v % n) as usize;
                if let Some(&b) = alphabet.get(idx) {
                    out.push(char::from(b));
                }
            }
        }
    }
    out
}

/// A user pool id: `{region}_` followed by 9 characters of `[0-9A-Za-z]`,
/// e.g. `us-east-1_Ab3dE5gH1`.
pub fn user_pool_id(region: &str) -> String {
    format!("{region}_{}", random_string(ALNUM, 9))
}

/// An app client id: 26 characters of `[a-z0-9]`.
pub fn app_client_id() -> String {
    random_string(LOWER_ALNUM, 26)
}

/// An app client secret: 51 characters of `[a-z0-9]` (about 263 bits).
pub fn client_secret() -> String {
    random_string(LOWER_ALNUM, 51)
}

/// A random (version 4) UUID in lower-case hyphenated form,
/// e.g. `0f8fad5b-d9cb-469f-a165-70867728950e`.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = random_bytes();
    // RFC 9562: version 4 in the high nibble of byte 6, variant 0b10 in the
    // top two bits of byte 8; the other 122 bits stay random.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn user_pool_id_shape() {
        let id = user_pool_id("us-east-1");
        let suffix = id.strip_prefix("us-east-1_").unwrap();
        assert_eq!(suffix.len(), 9);
        assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn client_id_and_secret_shape() {
        let id = app_client_id();
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let secret = client_secret();
        assert_eq!(secret.len(), 51);
        assert!(secret.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(app_client_id(), id);
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert!(u.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let many: HashSet<String> = (0..1000).map(|_| uuid_v4()).collect();
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn random_bytes_differ() {
        let a: [u8; 32] = random_bytes();
        let b: [u8; 32] = random_bytes();
        assert_ne!(a, b);
        let empty: [u8; 0] = random_bytes();
        assert!(empty.is_empty());
    }

    #[test]
    fn random_string_edge_cases() {
        assert_eq!(random_string(b"", 5), "");
        assert_eq!(random_string(b"abc", 0), "");
        assert_eq!(random_string(b"x", 4), "xxxx");
        // More than 256 symbols still works (indices beyond a byte).
        let big: Vec<u8> = (0..300).map(|i| b"ab"[i % 2]).collect();
        assert_eq!(random_string(&big, 10).len(), 10);
    }

    #[test]
    fn random_string_is_roughly_uniform() {
        // 3 symbols: a biased `byte % 3` would give 'a' 86/256 vs 85/256,
        // too small to detect; this only checks every symbol appears with a
        // sane frequency (each expected 20_000, sd ~115).
        let s = random_string(b"abc", 60_000);
        for c in ['a', 'b', 'c'] {
            let count = s.chars().filter(|&x| x == c).count();
            assert!((19_000..=21_000).contains(&count), "{c}: {count}");
        }
    }
}
