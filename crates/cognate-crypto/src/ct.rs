//! Constant-time comparison.

/// Compares two byte strings in time that depends only on their lengths, never
/// on where they first differ, so comparing a caller-supplied MAC or secret
/// against the real one does not let the caller recover it byte by byte.
///
/// Slices of different lengths compare unequal; lengths are not secret for
/// any value this crate compares (they are fixed by the algorithm).
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::eq;

    #[test]
    fn equal_and_unequal() {
        assert!(eq(b"", b""));
        assert!(eq(b"abc", b"abc"));
        assert!(!eq(b"abc", b"abd"));
        assert!(!eq(b"abc", b"ab"));
        assert!(!eq(b"", b"a"));
    }
}
