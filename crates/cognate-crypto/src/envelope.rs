//! Encryption of secrets at rest under a server master key.
//!
//! Secrets that Cognate must be able to read back (app client secrets,
//! private signing keys, ...) are stored sealed with AES-256-GCM under a
//! 32-byte master key that lives outside the database. Each sealed value is
//! text:
//!
//! ```text
//! v1.<key id>.<base64url-no-pad(nonce || ciphertext || tag)>
//! ```
//!
//! * The key id names the master key that sealed the value, so a
//!   [`Keyring`] can hold the active key plus retired ones: new values are
//!   sealed under the active key, and old values keep opening until they are
//!   re-sealed. The id is a hash of the key, so it reveals nothing about it.
//! * The nonce is 96 fresh random bits for every seal. With random nonces
//!   AES-GCM stays safe for far more than 2^32 seals per key, which is more
//!   than a Cognito-like server will ever make before rotating.
//! * The caller's `context` (for example
//!   `client-secret:us-east-1_abc:clientid`) is authenticated as associated
//!   data but not stored: a ciphertext copied into another row, where the
//!   context differs, fails to open instead of silently yielding another
//!   row's secret.
//!
//! A [`Keyring`] also derives secrets for other purposes from the active
//! master key ([`Keyring::derive_key`]), e.g. the key one-time code hashes
//! are made with, so that no second secret has to be configured or stored.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// Length of a master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Version tag of the sealed text format.
const VERSION: &str = "v1";
/// Length of the GCM authentication tag appended to the ciphertext.
const TAG_LEN: usize = 16;
/// Domain separator for key ids, so a key id can never coincide with a hash
/// of the same bytes computed for some other purpose.
const KEY_ID_DOMAIN: &[u8] = b"cognate-master-key-id";
/// Domain separator of derived keys, so a derived key can never coincide
/// with an HMAC of the same label computed by the master key elsewhere.
const DERIVE_DOMAIN: &[u8] = b"cognate-derived-key-v1";

/// Errors of this module. None of the messages contain key material or
/// plaintext; key ids and file paths are not secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A master key was not exactly [`KEY_LEN`] bytes.
    #[error("master key must be {KEY_LEN} bytes, got {0}")]
    InvalidKeyLength(usize),
    /// A master key's text form was not valid base64.
    #[error("master key is not valid base64")]
    InvalidKeyEncoding,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Encryption failed inside the crypto library.
    #[error("encryption failed")]
    Seal,
    /// The sealed text is not in the `v1.<key id>.<payload>` format.
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    /// The sealed value names a key that is not in the keyring.
    #[error("sealed value was made with master key {0}, which is not configured")]
    UnknownKey(String),
    /// Authentication failed: the value was tampered with, moved to a
    /// different context, or sealed under a different key with the same id.
    #[error("sealed value failed authentication (tampered, wrong context or wrong key)")]
    Open,
    /// Reading or writing a key file failed.
    #[error("master key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file exists but does not hold a valid key.
    #[error("master key file {path} does not hold a base64-encoded {KEY_LEN}-byte key")]
    InvalidKeyFile {
        /// The key file.
        path: PathBuf,
    },
}

/// A 32-byte master key.
///
/// `Debug` shows only the key id. The bytes are overwritten when the key is
/// dropped (best effort: copies the compiler made along the way are out of
/// reach without `unsafe`).
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
    id: String,
}

impl MasterKey {
    /// A new key from the system CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Random)?;
        Ok(Self::from_array(bytes))
    }

    /// A key from exactly [`KEY_LEN`] raw bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let bytes: [u8; KEY_LEN] = b.try_into().map_err(|_| Error::InvalidKeyLength(b.len()))?;
        Ok(Self::from_array(bytes))
    }

    /// The key as standard (padded) base64, the form kept in key files and
    /// configuration.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// Parses [`MasterKey::to_base64`]'s output. Surrounding whitespace is
    /// ignored (key files usually end with a newline).
    pub fn from_base64(s: &str) -> Result<Self, Error> {
        let raw = STANDARD.decode(s.trim()).map_err(|_| Error::InvalidKeyEncoding)?;
        Self::from_bytes(&raw)
    }

    /// The key id: the first 16 hex characters of
    /// SHA-256(`cognate-master-key-id` || key).
    pub fn key_id(&self) -> String {
        self.id.clone()
    }

    fn from_array(bytes: [u8; KEY_LEN]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(KEY_ID_DOMAIN);
        ctx.update(&bytes);
        let mut id = hex::encode(ctx.finish().as_ref());
        id.truncate(16);
        Self { bytes, id }
    }

    /// HMAC-SHA256(key, `cognate-derived-key-v1` || 0 || label): the
    /// master key is uniformly random, so HMAC keyed by it is a PRF and the
    /// output is a fresh 32-byte key per label (this is HKDF-Expand's single
    /// block with the master key as the pseudorandom key). A derived key
    /// reveals nothing about the master key or about keys of other labels.
    fn derive(&self, label: &str) -> DerivedKey {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(DERIVE_DOMAIN);
        ctx.update(&[0]);
        ctx.update(label.as_bytes());
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(ctx.sign().as_ref());
        DerivedKey { bytes }
    }

    fn aead_key(&self) -> Result<LessSafeKey, Error> {
        // Building the AES key schedule per operation keeps `MasterKey`
        // plain data (cheap to clone, infallible to construct); the cost is
        // negligible next to a database round trip.
        let unbound = UnboundKey::new(&AES_256_GCM, &self.bytes).map_err(|_| Error::Seal)?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("key_id", &self.id).finish_non_exhaustive()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.fill(0);
        // Keeps the compiler from treating the zeroing as a dead store.
        std::hint::black_box(&self.bytes);
    }
}

/// A 32-byte secret derived from a master key for one purpose (see
/// [`Keyring::derive_key`]). `Debug` shows nothing of it; the bytes are
/// overwritten on drop (best effort, as for [`MasterKey`]).
pub struct DerivedKey {
    bytes: [u8; KEY_LEN],
}

impl DerivedKey {
    /// HMAC-SHA256 of `message` under this key.
    pub fn hmac_sha256(&self, message: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.bytes), message);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(<redacted>)")
    }
}

impl Drop for DerivedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

/// The active master key plus older keys that may still have sealed values
/// in storage.
#[derive(Clone)]
pub struct Keyring {
    active: MasterKey,
    older: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring that seals under `active` and opens values sealed under
    /// `active` or any of `older`.
    pub fn new(active: MasterKey, older: Vec<MasterKey>) -> Self {
        Self { active, older }
    }

    /// The id of the key new values are sealed under.
    pub fn active_key_id(&self) -> &str {
        &self.active.id
    }

    /// A secret for `label` derived from the active key (see
    /// [`MasterKey`]'s `derive`): the same label gives the same key for as
    /// long as the active key stays; different labels give unrelated keys.
    /// Values keyed with it (e.g. code hashes) change when the active key is
    /// rotated, so only short-lived values should depend on it.
    pub fn derive_key(&self, label: &str) -> DerivedKey {
        self.active.derive(label)
    }

    /// Encrypts `plaintext` under the active key, binding it to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, Error> {
        let key = self.active.aead_key()?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce_bytes).map_err(|_| Error::Random)?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        buf.extend_from_slice(&nonce_bytes);
        buf.extend_from_slice(plaintext);
        // Encrypt the tail of the buffer in place so nonce, ciphertext and
        // tag end up contiguous without another copy.
        let mut body = buf.split_off(NONCE_LEN);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(context.as_bytes()),
            &mut body,
        )
        .map_err(|_| Error::Seal)?;
        buf.extend_from_slice(&body);
        Ok(format!("{VERSION}.{}.{}", self.active.id, URL_SAFE_NO_PAD.encode(&buf)))
    }

    /// Decrypts a value made by [`Keyring::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, Error> {
        let mut parts = sealed.split('.');
        let (Some(version), Some(key_id), Some(payload), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("expected three dot-separated parts"));
        };
        if version != VERSION {
            return Err(Error::Malformed("unsupported version"));
        }
        let key = std::iter::once(&self.active)
            .chain(self.older.iter())
            .find(|k| k.id == key_id)
            .ok_or_else(|| Error::UnknownKey(key_id.to_owned()))?;
        let mut raw = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Error::Malformed("payload is not base64url"))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Malformed("payload too short"));
        }
        let mut body = raw.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw).map_err(|_| Error::Malformed("bad nonce length"))?;
        let plain =
            key.aead_key()?.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map_err(|_| Error::Open)?;
        Ok(plain.to_vec())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("active", &self.active).field("older", &self.older).finish()
    }
}

/// The key id a sealed value names, without opening it; lets a rotation job
/// find values that are not yet under the active key.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.split('.');
    match (parts.next(), parts.next()) {
        (Some(VERSION), Some(id)) => Some(id),
        _ => None,
    }
}

/// Loads the master key from `path`, or creates the file with a new key
/// when it does not exist. Returns the key and whether it was created.
///
/// The file holds the key as base64 (surrounding whitespace ignored). A new
/// file is written with mode 0600 to a temporary file in the same directory,
/// flushed to disk, then linked into place, so a crash never leaves a
/// truncated key behind. The link does not overwrite: if another process
/// created the file first, its key is loaded instead, so two servers
/// starting together cannot end up with different keys. The parent
/// directory must already exist.
pub fn load_or_create_key_file(path: &Path) -> Result<(MasterKey, bool), Error> {
    let io_err = |source: io::Error| Error::Io { path: path.to_path_buf(), source };
    match read_key_file(path) {
        Ok(key) => return Ok((key, false)),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }

    let key = MasterKey::generate()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| io_err(io::Error::other("path has no file name")))?;
    let suffix: [u8; 8] = crate::ids::random_bytes();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
    let tmp = dir.join(tmp_name);

    let result = write_new_key_file(&tmp, &key).and_then(|()| link_into_place(&tmp, path));
    // The temporary name is only a staging area: remove it whether the link
    // worked (the key now lives under `path` too) or not.
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Lost a race with another process: use the key it wrote.
            return read_key_file(path).map(|k| (k, false));
        }
        Err(e) => return Err(io_err(e)),
    }
    sync_dir(&dir).map_err(io_err)?;
    Ok((key, true))
}

fn read_key_file(path: &Path) -> Result<MasterKey, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    MasterKey::from_base64(&text).map_err(|_| Error::InvalidKeyFile { path: path.to_path_buf() })
}

fn write_new_key_file(tmp: &Path, key: &MasterKey) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Set at creation, so the key is never readable by others even
        // for an instant.
        opts.mode(0o600);
    }
    let mut f = opts.open(tmp)?;
    f.write_all(key.to_base64().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Moves `tmp` to `path` without replacing an existing `path`.
fn link_into_place(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // Some filesystems have no hard links; a rename is still atomic,
        // only without the no-overwrite guarantee, so check first.
        Err(_) => {
            if path.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(tmp, path)
        }
    }
}

/// Flushes the directory entry so the new file survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate().unwrap(), vec![])
    }

    #[test]
    fn roundtrip() {
        let kr = ring();
        let sealed = kr.seal(b"top secret", "client-secret:p:c").unwrap();
        assert!(sealed.starts_with(&format!("v1.{}.", kr.active_key_id())));
        assert_eq!(kr.open(&sealed, "client-secret:p:c").unwrap(), b"top secret");
        // Empty plaintext works too.
        let sealed = kr.seal(b"", "ctx").unwrap();
        assert_eq!(kr.open(&sealed, "ctx").unwrap(), b"");
    }

    #[test]
    fn fresh_nonce_each_time() {
        let kr = ring();
        assert_ne!(kr.seal(b"x", "c").unwrap(), kr.seal(b"x", "c").unwrap());
    }

    #[test]
    fn wrong_context_fails() {
        let kr = ring();
        let sealed = kr.seal(b"secret", "client-secret:pool:a").unwrap();
        assert!(matches!(kr.open(&sealed, "client-secret:pool:b"), Err(Error::Open)));
    }

    #[test]
    fn tampering_fails() {
        let kr = ring();
        let sealed = kr.seal(b"secret value", "ctx").unwrap();
        let (head, payload) = sealed.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(payload).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let t = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw));
            assert!(matches!(kr.open(&t, "ctx"), Err(Error::Open)), "byte {i}");
            raw[i] ^= 1;
        }
        // Truncation.
        let t = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert!(matches!(kr.open(&t, "ctx"), Err(Error::Open)));
        let t = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw[..NONCE_LEN]));
        assert!(matches!(kr.open(&t, "ctx"), Err(Error::Malformed(_))));
        // Format damage.
        for bad in ["", "v1", "v1.x", "v2.a.b", "v1.a.b.c"] {
            assert!(kr.open(bad, "ctx").is_err(), "{bad}");
        }
        let t = format!("{head}.{payload}!");
        assert!(matches!(kr.open(&t, "ctx"), Err(Error::Malformed(_))));
    }

    #[test]
    fn unknown_key() {
        let sealed = ring().seal(b"s", "c").unwrap();
        let other = ring();
        assert!(matches!(other.open(&sealed, "c"), Err(Error::UnknownKey(_))));
    }

    #[test]
    fn rotation() {
        let old = MasterKey::generate().unwrap();
        let old_ring = Keyring::new(old.clone(), vec![]);
        let sealed = old_ring.seal(b"legacy", "ctx").unwrap();
        assert_eq!(sealed_key_id(&sealed), Some(old.key_id().as_str()));

        let new = MasterKey::generate().unwrap();
        let rotated = Keyring::new(new.clone(), vec![old]);
        assert_eq!(rotated.active_key_id(), new.key_id());
        assert_eq!(rotated.open(&sealed, "ctx").unwrap(), b"legacy");
        let resealed = rotated.seal(b"legacy", "ctx").unwrap();
        assert_eq!(sealed_key_id(&resealed), Some(new.key_id().as_str()));
        // The old-only ring cannot read values under the new key.
        assert!(matches!(old_ring.open(&resealed, "ctx"), Err(Error::UnknownKey(_))));
    }

    #[test]
    fn key_encoding_and_id() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let again = MasterKey::from_base64(&format!(" {}\n", k.to_base64())).unwrap();
        assert_eq!(again.key_id(), k.key_id());
        assert_eq!(k.key_id().len(), 16);
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"cognate-master-key-id");
        ctx.update(&[7u8; 32]);
        assert_eq!(k.key_id(), hex::encode(ctx.finish().as_ref())[..16]);
        assert!(matches!(MasterKey::from_bytes(&[0u8; 31]), Err(Error::InvalidKeyLength(31))));
        assert!(matches!(MasterKey::from_base64("not base64!"), Err(Error::InvalidKeyEncoding)));
        assert!(matches!(MasterKey::from_base64(&STANDARD.encode([1u8; 16])), Err(Error::InvalidKeyLength(16))));
        assert_ne!(MasterKey::generate().unwrap().key_id(), MasterKey::generate().unwrap().key_id());
    }

    #[test]
    fn debug_does_not_leak() {
        let k = MasterKey::from_bytes(&[0xAB; 32]).unwrap();
        let kr = Keyring::new(k.clone(), vec![k.clone()]);
        for s in [format!("{k:?}"), format!("{kr:?}"), format!("{k:#?}")] {
            assert!(s.contains(&k.key_id()), "{s}");
            assert!(!s.contains(&k.to_base64()), "{s}");
            assert!(!s.to_lowercase().contains("abab"), "{s}");
            assert!(!s.contains("171, 171"), "{s}");
        }
    }

    #[test]
    fn derived_keys_are_stable_per_label_and_key() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let kr = Keyring::new(k.clone(), vec![]);
        let mac = |ring: &Keyring, label: &str| ring.derive_key(label).hmac_sha256(b"message");
        assert_eq!(mac(&kr, "a"), mac(&Keyring::new(k.clone(), vec![]), "a"));
        assert_ne!(mac(&kr, "a"), mac(&kr, "b"));
        let other = Keyring::new(MasterKey::from_bytes(&[8u8; 32]).unwrap(), vec![k.clone()]);
        assert_ne!(mac(&kr, "a"), mac(&other, "a"), "derived from the active key only");
        // The documented construction: HMAC(HMAC(master, domain || 0 || label), message).
        let mut label = b"cognate-derived-key-v1\0".to_vec();
        label.extend_from_slice(b"a");
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]), &label);
        let want = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()), b"message");
        assert_eq!(mac(&kr, "a").as_slice(), want.as_ref());
        // Not the master key itself, nor a plain hash of the label.
        assert_ne!(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]), b"message").as_ref(), want.as_ref());
        assert_eq!(format!("{:?}", kr.derive_key("a")), "DerivedKey(<redacted>)");
    }

    #[test]
    fn key_file_create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, created) = load_or_create_key_file(&path).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.key_id(), k2.key_id());
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim(), k1.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No staging files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);
    }

    #[test]
    fn key_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.key");
        fs::write(&bad, "garbage").unwrap();
        assert!(matches!(load_or_create_key_file(&bad), Err(Error::InvalidKeyFile { .. })));
        let missing_parent = dir.path().join("nope").join("k");
        assert!(matches!(load_or_create_key_file(&missing_parent), Err(Error::Io { .. })));
        // An existing key written by someone else is used as is.
        let k = MasterKey::generate().unwrap();
        let given = dir.path().join("given.key");
        fs::write(&given, format!("{}\n", k.to_base64())).unwrap();
        let (loaded, created) = load_or_create_key_file(&given).unwrap();
        assert!(!created);
        assert_eq!(loaded.key_id(), k.key_id());
    }
}
