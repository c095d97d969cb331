//! Big-integer arithmetic modulo the SRP group prime, over aws-lc's `BIGNUM`.
//!
//! **This is the single audited `unsafe` module of `cognate-crypto`.** The
//! crate root denies `unsafe_code` everywhere else; only this module is
//! allowed to use it, and every `unsafe` block carries a `// SAFETY:` comment
//! stating why the call is sound. Everything exported from here is safe Rust
//! over big-endian byte strings.
//!
//! # Why FFI
//!
//! SRP needs `g^b mod N` and `(A·v^u)^b mod N` with secret exponents on a
//! 3072-bit modulus. aws-lc (already linked through `aws-lc-rs`) has a
//! constant-time Montgomery exponentiation with assembly back ends that is
//! about twice as fast as the pure-Rust alternatives, and `aws-lc-rs` does not
//! expose it, so this module calls `aws-lc-sys` directly.
//!
//! # Resource handling
//!
//! Each aws-lc object is owned by a small RAII wrapper that frees it on
//! `Drop` (`Bn` with `BN_clear_free`, `Ctx`, `Mont`). aws-lc's
//! `OPENSSL_free` (default allocator) also wipes every buffer it releases, so scratch values
//! inside a `BN_CTX` do not outlive the call either.
//!
//! # Constant time
//!
//! * [`Group::mod_exp_secret`] uses `BN_mod_exp_mont_consttime`: its running
//!   time depends on the *length* of the exponent byte string (it processes
//!   every bit of it, leading zeros included), never on its value. Callers
//!   pass secrets with a fixed length (SRP's `b` is always 32 bytes).
//! * [`Group::mod_mul`], [`Group::mod_add`] and [`Group::mod_sub`] use
//!   Montgomery multiplication and aws-lc's constant-time modular add/sub.
//! * Inputs are reduced modulo `N` first. Values below `N` (everything this
//!   crate produces, and every honest peer's value) go through a
//!   constant-time comparison only; a value at or above `N` is reduced with
//!   `BN_nnmod`, which is not constant time — only a public value chosen by a
//!   peer (such as a malformed `SRP_A`) can take that path.
//!
//! # Thread safety
//!
//! [`Group`] builds `N`, `g` and the Montgomery context for `N` once and then
//! only ever passes them to aws-lc as `const` pointers. aws-lc (like
//! BoringSSL) guarantees that functions taking `const` objects do not modify
//! them, so one `Group` is shared by all threads (see the `Send`/`Sync`
//! impls). Every operation creates its own `BN_CTX` scratch pool, which is
//! never shared; a `BN_CTX_new`/`BN_CTX_free` pair costs well under a
//! microsecond against ~640 µs for one exponentiation.

use std::os::raw::c_int;
use std::ptr::NonNull;
use std::sync::OnceLock;

use aws_lc_sys as sys;

/// RFC 3526 group 15: the 3072-bit MODP prime that Cognito's SRP uses.
const RFC3526_3072_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64",
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B",
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31",
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// Panics unless an aws-lc call reported success (1).
///
/// Every call made through this module has its preconditions (reduced,
/// non-negative inputs; an odd modulus) established by the wrapper, so the
/// only way left for aws-lc to fail is running out of memory, which the
/// standard library treats as fatal too.
fn check(ret: c_int, what: &str) {
    assert!(ret == 1, "aws-lc {what} failed (out of memory?)");
}

/// An owned aws-lc `BIGNUM`, erased and freed on drop.
struct Bn(NonNull<sys::BIGNUM>);

impl Bn {
    /// A new `BIGNUM` holding zero.
    #[allow(
        clippy::expect_used,
        reason = "aws-lc fails here only when out of memory, where Rust's allocator aborts as well"
    )]
    fn new() -> Bn {
        // SAFETY: BN_new has no preconditions; it returns an owned,
        // initialised BIGNUM or NULL (checked by NonNull::new).
        let p = unsafe { sys::BN_new() };
        Bn(NonNull::new(p).expect("aws-lc BN_new failed (out of memory?)"))
    }

    /// The big-endian unsigned integer in `bytes`, with exactly
    /// `ceil(len / 8)` words: leading zero bytes are kept as width, which is
    /// what makes exponent lengths (and so running times) independent of the
    /// value.
    fn from_be(bytes: &[u8]) -> Bn {
        let bn = Bn::new();
        // SAFETY: `bytes` is a valid slice for `bytes.len()` bytes (a
        // dangling-but-aligned pointer with length 0 is never read), and
        // `bn` is an owned BIGNUM; BN_bin2bn writes into it and returns it,
        // or NULL on allocation failure.
        let ret = unsafe { sys::BN_bin2bn(bytes.as_ptr(), bytes.len(), bn.0.as_ptr()) };
        assert!(!ret.is_null(), "aws-lc BN_bin2bn failed (out of memory?)");
        bn
    }

    /// The value as exactly `len` big-endian bytes (constant time).
    ///
    /// Panics if the value does not fit, which cannot happen for values
    /// reduced modulo `N` and `len` = the byte length of `N`.
    fn to_be_padded(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        // SAFETY: `out` is a writable buffer of exactly `len` bytes and
        // `self` is a valid BIGNUM, only read.
        let ok = unsafe { sys::BN_bn2bin_padded(out.as_mut_ptr(), len, self.as_ptr()) };
        check(ok, "BN_bn2bin_padded");
        out
    }

    fn is_zero(&self) -> bool {
        // SAFETY: `self` is a valid BIGNUM, only read.
        unsafe { sys::BN_is_zero(self.as_ptr()) == 1 }
    }

    fn as_ptr(&self) -> *const sys::BIGNUM {
        self.0.as_ptr()
    }

    fn as_mut_ptr(&mut self) -> *mut sys::BIGNUM {
        self.0.as_ptr()
    }
}

impl Drop for Bn {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from BN_new, is owned by this wrapper alone
        // and is freed exactly once, here.
        unsafe { sys::BN_clear_free(self.0.as_ptr()) }
    }
}

/// An owned `BN_CTX` (aws-lc's scratch pool for temporaries), freed on drop.
struct Ctx(NonNull<sys::BN_CTX>);

impl Ctx {
    #[allow(
        clippy::expect_used,
        reason = "aws-lc fails here only when out of memory, where Rust's allocator aborts as well"
    )]
    fn new() -> Ctx {
        // SAFETY: BN_CTX_new has no preconditions; NULL is checked.
        let p = unsafe { sys::BN_CTX_new() };
        Ctx(NonNull::new(p).expect("aws-lc BN_CTX_new failed (out of memory?)"))
    }

    fn as_mut_ptr(&mut self) -> *mut sys::BN_CTX {
        self.0.as_ptr()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from BN_CTX_new, is owned by this wrapper
        // alone and is freed exactly once, here.
        unsafe { sys::BN_CTX_free(self.0.as_ptr()) }
    }
}

/// An owned Montgomery context for one modulus, freed on drop.
struct Mont(NonNull<sys::BN_MONT_CTX>);

impl Mont {
    /// The context for the odd, public modulus `n`.
    #[allow(
        clippy::expect_used,
        reason = "aws-lc fails here only when out of memory, where Rust's allocator aborts as well"
    )]
    fn for_modulus(n: &Bn) -> Mont {
        let mut ctx = Ctx::new();
        // SAFETY: `n` is a valid BIGNUM (only read) and `ctx` a valid,
        // exclusively borrowed BN_CTX; the result is an owned BN_MONT_CTX or
        // NULL (checked), e.g. for an even modulus.
        let p = unsafe { sys::BN_MONT_CTX_new_for_modulus(n.as_ptr(), ctx.as_mut_ptr()) };
        Mont(NonNull::new(p).expect("aws-lc BN_MONT_CTX_new_for_modulus failed"))
    }

    fn as_ptr(&self) -> *const sys::BN_MONT_CTX {
        self.0.as_ptr()
    }
}

impl Drop for Mont {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from BN_MONT_CTX_new_for_modulus, is owned by
        // this wrapper alone and is freed exactly once, here.
        unsafe { sys::BN_MONT_CTX_free(self.0.as_ptr()) }
    }
}

/// A multiplicative group modulo a prime `N` with generator `g`: the SRP
/// group, with `N`'s Montgomery context computed once.
///
/// All inputs are big-endian unsigned byte strings of any length (leading
/// zeros allowed) and are reduced modulo `N`; all outputs are exactly
/// [`Group::byte_len`] bytes, big-endian, zero-padded on the left.
pub struct Group {
    n: Bn,
    g: Bn,
    mont: Mont,
    n_bytes: Vec<u8>,
    g_bytes: Vec<u8>,
}

// SAFETY: a Group owns its BIGNUMs and BN_MONT_CTX outright (no aliases
// exist outside it), and aws-lc objects have no affinity to the thread that
// created them, so moving a Group to another thread is sound.
unsafe impl Send for Group {}

// SAFETY: after `Group::new` returns, `n`, `g` and `mont` are never mutated:
// every method takes `&self` and hands them to aws-lc only as `const`
// pointers, and aws-lc guarantees that functions taking `const` objects do not
// modify them (its thread-compatibility convention: concurrent calls on
// `const` objects are safe). Each call allocates its own `BN_CTX` and result
// BIGNUMs, which are never shared.
unsafe impl Sync for Group {}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("bits", &(self.n_bytes.len() * 8))
            .field("g", &hex::encode(&self.g_bytes))
            .finish()
    }
}

/// The group Cognito's SRP uses: the 3072-bit prime of RFC 3526 (group 15)
/// with generator 2. Built on first use and shared for the life of the
/// process.
#[allow(clippy::expect_used, reason = "a constant of this file, checked by its tests")]
pub fn rfc3526_3072() -> &'static Group {
    static GROUP: OnceLock<Group> = OnceLock::new();
    GROUP.get_or_init(|| {
        let n = hex::decode(RFC3526_3072_HEX).expect("the group prime is valid hex");
        Group::new(&n, &[2])
    })
}

impl Group {
    /// A group for the odd modulus `n` and generator `g` (both big-endian).
    ///
    /// Panics if `n` is even or not larger than `g`, which would be a
    /// programming error: groups are compile-time constants.
    pub fn new(n: &[u8], g: &[u8]) -> Group {
        // Lets aws-lc detect the CPU's features (for its assembly paths)
        // before the first arithmetic call. Idempotent and cheap.
        aws_lc_rs::init();
        let n_bytes = strip_leading_zeros(n).to_vec();
        assert!(n_bytes.last().is_some_and(|b| b & 1 == 1), "SRP group modulus must be odd");
        let n_bn = Bn::from_be(&n_bytes);
        let mont = Mont::for_modulus(&n_bn);
        let g_bytes = strip_leading_zeros(g).to_vec();
        let mut group = Group { g: Bn::new(), n: n_bn, mont, n_bytes, g_bytes };
        let g_reduced = group.reduce_bn(&group.g_bytes);
        assert!(
            group.g_bytes.len() <= group.n_bytes.len() && !g_reduced.is_zero(),
            "SRP generator must be a non-zero value below the modulus"
        );
        group.g = g_reduced;
        group
    }

    /// `N`, big-endian, without leading zeros (384 bytes for Cognito's group).
    pub fn modulus(&self) -> &[u8] {
        &self.n_bytes
    }

    /// `g`, big-endian, without leading zeros.
    pub fn generator(&self) -> &[u8] {
        &self.g_bytes
    }

    /// The length in bytes of `N`, and of every value this group returns.
    pub fn byte_len(&self) -> usize {
        self.n_bytes.len()
    }

    /// `x mod N`, as [`Group::byte_len`] bytes.
    pub fn reduce(&self, x: &[u8]) -> Vec<u8> {
        self.reduce_bn(x).to_be_padded(self.byte_len())
    }

    /// Whether `x ≡ 0 (mod N)` (SRP's check on the peer's public value).
    pub fn is_zero_mod_n(&self, x: &[u8]) -> bool {
        self.reduce_bn(x).is_zero()
    }

    /// `base^exp mod N`, in time independent of the values of `base` and
    /// `exp` (it depends only on `exp.len()`: pass secret exponents with a
    /// fixed length, leading zeros included).
    pub fn mod_exp_secret(&self, base: &[u8], exp: &[u8]) -> Vec<u8> {
        let base = self.reduce_bn(base);
        self.exp_bn(&base, exp).to_be_padded(self.byte_len())
    }

    /// `g^exp mod N`, constant time like [`Group::mod_exp_secret`].
    pub fn g_pow_secret(&self, exp: &[u8]) -> Vec<u8> {
        self.exp_bn(&self.g, exp).to_be_padded(self.byte_len())
    }

    /// `a · b mod N` (Montgomery multiplication, constant time for reduced
    /// inputs).
    pub fn mod_mul(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        let a = self.reduce_bn(a);
        let b = self.reduce_bn(b);
        let mut ctx = Ctx::new();
        let mut a_mont = Bn::new();
        let mut out = Bn::new();
        // SAFETY: all BIGNUMs are valid and distinct (outputs are exclusively
        // borrowed, inputs only read); `a` and `b` are reduced below N as
        // both functions require; `self.mont` is only read; `ctx` is
        // exclusively borrowed.
        unsafe {
            check(
                sys::BN_to_montgomery(a_mont.as_mut_ptr(), a.as_ptr(), self.mont.as_ptr(), ctx.as_mut_ptr()),
                "BN_to_montgomery",
            );
            // (a·R) · b · R⁻¹ = a · b: one operand in the Montgomery domain
            // and one outside it gives the plain product.
            check(
                sys::BN_mod_mul_montgomery(
                    out.as_mut_ptr(),
                    a_mont.as_ptr(),
                    b.as_ptr(),
                    self.mont.as_ptr(),
                    ctx.as_mut_ptr(),
                ),
                "BN_mod_mul_montgomery",
            );
        }
        out.to_be_padded(self.byte_len())
    }

    /// `a + b mod N` (constant time for reduced inputs).
    pub fn mod_add(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        let a = self.reduce_bn(a);
        let b = self.reduce_bn(b);
        let mut out = Bn::new();
        // SAFETY: valid, distinct BIGNUMs; `a` and `b` are reduced below N as
        // BN_mod_add_quick requires; `self.n` is only read.
        let ok = unsafe { sys::BN_mod_add_quick(out.as_mut_ptr(), a.as_ptr(), b.as_ptr(), self.n.as_ptr()) };
        check(ok, "BN_mod_add_quick");
        out.to_be_padded(self.byte_len())
    }

    /// `a − b mod N`, in `[0, N)` (constant time for reduced inputs).
    pub fn mod_sub(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        let a = self.reduce_bn(a);
        let b = self.reduce_bn(b);
        let mut out = Bn::new();
        // SAFETY: valid, distinct BIGNUMs; `a` and `b` are reduced below N as
        // BN_mod_sub_quick requires; `self.n` is only read.
        let ok = unsafe { sys::BN_mod_sub_quick(out.as_mut_ptr(), a.as_ptr(), b.as_ptr(), self.n.as_ptr()) };
        check(ok, "BN_mod_sub_quick");
        out.to_be_padded(self.byte_len())
    }

    /// `x mod N` as a BIGNUM.
    ///
    /// Inputs are brought to exactly `N`'s length first (left-padded, or
    /// stripped of leading zero bytes), so all reduced values have the same
    /// word width (aws-lc then takes its
    /// fixed-width Montgomery paths). The comparison with `N` is constant
    /// time; only inputs at or above `N` (peer-chosen, public values) are
    /// reduced with the variable-time `BN_nnmod`.
    fn reduce_bn(&self, x: &[u8]) -> Bn {
        let len = self.byte_len();
        // Longer inputs may still be below N (a padHex'd value carries a
        // leading 00 byte): drop leading zeros so they get N's width too.
        let x = if x.len() > len { strip_leading_zeros(x) } else { x };
        let x = if x.len() < len {
            let mut padded = vec![0u8; len];
            padded[len - x.len()..].copy_from_slice(x);
            let bn = Bn::from_be(&padded);
            zeroize::Zeroize::zeroize(&mut padded);
            bn
        } else {
            Bn::from_be(x)
        };
        // SAFETY: both BIGNUMs are valid and only read.
        let below_n = unsafe { sys::BN_ucmp(x.as_ptr(), self.n.as_ptr()) } < 0;
        if below_n {
            return x;
        }
        let mut ctx = Ctx::new();
        let mut out = Bn::new();
        // SAFETY: valid, distinct BIGNUMs (`out` exclusively borrowed, `x`
        // and `self.n` only read); N is non-zero; `ctx` is exclusively
        // borrowed.
        let ok = unsafe { sys::BN_nnmod(out.as_mut_ptr(), x.as_ptr(), self.n.as_ptr(), ctx.as_mut_ptr()) };
        check(ok, "BN_nnmod");
        out
    }

    /// `base^exp mod N` for a reduced `base`, constant time.
    fn exp_bn(&self, base: &Bn, exp: &[u8]) -> Bn {
        let exp = Bn::from_be(exp);
        let mut ctx = Ctx::new();
        let mut out = Bn::new();
        // SAFETY: valid, distinct BIGNUMs (`out` exclusively borrowed; `base`,
        // `exp`, `self.n` only read); `base` is reduced below N as required;
        // N is odd (checked in `Group::new`) and `self.mont` is N's
        // Montgomery context, only read; `ctx` is exclusively borrowed.
        let ok = unsafe {
            sys::BN_mod_exp_mont_consttime(
                out.as_mut_ptr(),
                base.as_ptr(),
                exp.as_ptr(),
                self.n.as_ptr(),
                ctx.as_mut_ptr(),
                self.mont.as_ptr(),
            )
        };
        check(ok, "BN_mod_exp_mont_consttime");
        out
    }
}

/// `bytes` without its leading zero bytes (empty for zero).
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests;
