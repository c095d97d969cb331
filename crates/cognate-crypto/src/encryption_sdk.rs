//! The AWS Encryption SDK's message format, with a raw AES keyring: what Cognito's custom
//! email and SMS sender triggers receive as `request.code`, so that a function written for
//! Cognito (decrypting with the Encryption SDK) decrypts Cognate's codes unchanged, given a
//! raw AES keyring with the same wrapping key, key namespace and key name.
//!
//! Written from the public specification (message format, algorithm suites, raw AES
//! keyring). Only what those codes need is implemented:
//!
//! * One algorithm suite, `0x0478` (AES-256-GCM, HKDF-SHA512 key derivation, key
//!   commitment, no signature): message format version 2. It is the committing suite the
//!   SDKs' default commitment policy (`REQUIRE_ENCRYPT_REQUIRE_DECRYPT`) decrypts, and being
//!   unsigned it has no footer (the SDKs' own default, `0x0578`, adds an ECDSA P-384 one).
//! * Framed content (content type 2, frames of 4096 bytes), as the SDKs write it.
//! * One encrypted data key, wrapped by the raw AES keyring: AES-256-GCM under the wrapping
//!   key, the serialized encryption context as AAD, key provider info = key name, tag length
//!   in bits (u32), IV length (u32), IV.
//!
//! [`RawAesKeyring::decrypt`] reads the same subset back (the tests check it against
//! messages the Python SDK wrote).

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{self, KeyType, Salt, HKDF_SHA512};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// An encryption context: bound to the message (authenticated, and stored in its header).
/// Keys sort by their UTF-8 bytes, the order the format serializes them in.
pub type EncryptionContext = BTreeMap<String, String>;

/// `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY`.
pub const SUITE_ID: u16 = 0x0478;
const FORMAT_VERSION: u8 = 0x02;
const FRAMED: u8 = 0x02;
const FRAME_LENGTH: u32 = 4096;
const KEY_LEN: usize = 32;
const MESSAGE_ID_LEN: usize = 32;
const COMMIT_KEY_LEN: usize = 32;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The final frame's marker where a regular frame has its sequence number.
const FINAL_FRAME: u32 = 0xFFFF_FFFF;
const REGULAR_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Final Frame";
/// The namespace the specification reserves for AWS KMS keyrings.
const KMS_NAMESPACE: &str = "aws-kms";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the wrapping key must be {KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
    #[error("the key namespace {0:?} is not allowed for a raw AES keyring")]
    Namespace(String),
    #[error("the system random number generator failed")]
    Random,
    #[error("encryption failed")]
    Seal,
    #[error("a field is too long for the message format: {0}")]
    TooLong(&'static str),
    #[error("the message is malformed: {0}")]
    Malformed(&'static str),
    #[error("unsupported message: {0}")]
    Unsupported(&'static str),
    #[error("no encrypted data key of the message is for this keyring")]
    NoMatchingKey,
    #[error("the message failed authentication")]
    Authentication,
}

/// A raw AES keyring: a 256-bit wrapping key known by a key namespace (the data key's key
/// provider id) and a key name.
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAesKeyring").field("namespace", &self.namespace).field("name", &self.name).finish()
    }
}

impl RawAesKeyring {
    pub fn new(namespace: &str, name: &str, key: &[u8]) -> Result<RawAesKeyring, Error> {
        let bytes: [u8; KEY_LEN] = key.try_into().map_err(|_| Error::KeyLength(key.len()))?;
        if namespace == KMS_NAMESPACE {
            return Err(Error::Namespace(namespace.to_owned()));
        }
        Ok(RawAesKeyring { namespace: namespace.to_owned(), name: name.to_owned(), key: Zeroizing::new(bytes) })
    }

    /// `plaintext` as an Encryption SDK message under a fresh data key wrapped by this keyring.
    pub fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<Vec<u8>, Error> {
        let data_key = Zeroizing::new(random::<KEY_LEN>()?);
        let message_id = random::<MESSAGE_ID_LEN>()?;
        let serialized_context = serialize_context(context)?;
        let wrapped = self.wrap(&data_key[..], &serialized_context)?;
        let keys = derive_keys(&data_key[..], &message_id)?;

        let mut header = vec![FORMAT_VERSION];
        header.extend_from_slice(&SUITE_ID.to_be_bytes());
        header.extend_from_slice(&message_id);
        put_sized(&mut header, &serialized_context, "encryption context")?;
        header.extend_from_slice(&1u16.to_be_bytes());
        put_sized(&mut header, self.namespace.as_bytes(), "key namespace")?;
        put_sized(&mut header, &wrapped.provider_info, "key provider info")?;
        put_sized(&mut header, &wrapped.ciphertext, "encrypted data key")?;
        header.push(FRAMED);
        header.extend_from_slice(&FRAME_LENGTH.to_be_bytes());
        header.extend_from_slice(&keys.commitment);
        // The header's authentication: a tag over it (as AAD) with an empty plaintext, IV 0.
        let tag = seal(&keys.encryption[..], [0; IV_LEN], &header, &mut [])?;
        header.extend_from_slice(&tag);

        let mut message = header;
        let chunks: Vec<&[u8]> =
            if plaintext.is_empty() { vec![&[]] } else { plaintext.chunks(FRAME_LENGTH as usize).collect() };
        let last = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            let sequence = u32::try_from(index + 1).map_err(|_| Error::TooLong("plaintext"))?;
            let is_final = index + 1 == last;
            let iv = frame_iv(sequence);
            let aad = body_aad(&message_id, is_final, sequence, chunk.len());
            let mut content = chunk.to_vec();
            let tag = seal(&keys.encryption[..], iv, &aad, &mut content)?;
            if is_final {
                message.extend_from_slice(&FINAL_FRAME.to_be_bytes());
            }
            message.extend_from_slice(&sequence.to_be_bytes());
            message.extend_from_slice(&iv);
            if is_final {
                let length = u32::try_from(content.len()).map_err(|_| Error::TooLong("frame"))?;
                message.extend_from_slice(&length.to_be_bytes());
            }
            message.extend_from_slice(&content);
            message.extend_from_slice(&tag);
        }
        Ok(message)
    }

    /// The plaintext and encryption context of a message this keyring can open (suite
    /// `0x0478`, framed).
    pub fn decrypt(&self, message: &[u8]) -> Result<(Vec<u8>, EncryptionContext), Error> {
        let mut r = Reader { data: message, pos: 0 };
        if r.u8()? != FORMAT_VERSION {
            return Err(Error::Unsupported("only message format version 2"));
        }
        if r.u16()? != SUITE_ID {
            return Err(Error::Unsupported("only algorithm suite 0x0478"));
        }
        let message_id: [u8; MESSAGE_ID_LEN] = r.array()?;
        let serialized_context = r.sized()?;
        let context = parse_context(serialized_context)?;
        let key_count = r.u16()?;
        if key_count == 0 {
            return Err(Error::Malformed("no encrypted data key"));
        }
        let mut data_key = None;
        for _ in 0..key_count {
            let (provider, info, ciphertext) = (r.sized()?, r.sized()?, r.sized()?);
            if data_key.is_none() && provider == self.namespace.as_bytes() {
                data_key = self.unwrap(info, ciphertext, serialized_context);
            }
        }
        let data_key = data_key.ok_or(Error::NoMatchingKey)?;
        if r.u8()? != FRAMED {
            return Err(Error::Unsupported("only framed content"));
        }
        let frame_length = r.u32()?;
        let commitment: [u8; COMMIT_KEY_LEN] = r.array()?;
        let header = &message[..r.pos];
        let header_tag: [u8; TAG_LEN] = r.array()?;
        let keys = derive_keys(&data_key[..], &message_id)?;
        if !crate::ct::eq(&commitment, &keys.commitment) {
            return Err(Error::Authentication);
        }
        let mut tag_only = header_tag.to_vec();
        open(&keys.encryption[..], [0; IV_LEN], header, &mut tag_only)?;

        let mut plaintext = Vec::new();
        let mut expected: u32 = 1;
        loop {
            let marker = r.u32()?;
            let is_final = marker == FINAL_FRAME;
            let sequence = if is_final { r.u32()? } else { marker };
            if sequence != expected {
                return Err(Error::Malformed("frames out of sequence"));
            }
            let iv: [u8; IV_LEN] = r.array()?;
            let length = if is_final { r.u32()? } else { frame_length };
            if length > frame_length {
                return Err(Error::Malformed("a final frame longer than the frame length"));
            }
            let length = usize::try_from(length).map_err(|_| Error::Malformed("frame length"))?;
            let mut content = r.take(length + TAG_LEN)?.to_vec();
            let aad = body_aad(&message_id, is_final, sequence, length);
            plaintext.extend_from_slice(open(&keys.encryption[..], iv, &aad, &mut content)?);
            if is_final {
                break;
            }
            expected = expected.checked_add(1).ok_or(Error::Malformed("too many frames"))?;
        }
        if r.pos != message.len() {
            return Err(Error::Malformed("bytes after the final frame"));
        }
        Ok((plaintext, context))
    }

    /// The data key wrapped for the message's header.
    fn wrap(&self, data_key: &[u8], serialized_context: &[u8]) -> Result<Wrapped, Error> {
        let iv = random::<IV_LEN>()?;
        let mut ciphertext = data_key.to_vec();
        let tag = seal(&self.key[..], iv, serialized_context, &mut ciphertext)?;
        ciphertext.extend_from_slice(&tag);
        let mut provider_info = self.name.as_bytes().to_vec();
        provider_info.extend_from_slice(&(TAG_LEN as u32 * 8).to_be_bytes());
        provider_info.extend_from_slice(&(IV_LEN as u32).to_be_bytes());
        provider_info.extend_from_slice(&iv);
        Ok(Wrapped { provider_info, ciphertext })
    }

    /// The data key of an encrypted data key in this keyring's namespace, if it names this
    /// keyring's key and opens under it.
    fn unwrap(&self, info: &[u8], ciphertext: &[u8], serialized_context: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let rest = info.strip_prefix(self.name.as_bytes())?;
        let (lengths, iv) = rest.split_at_checked(8)?;
        let expected = [(TAG_LEN as u32 * 8).to_be_bytes(), (IV_LEN as u32).to_be_bytes()].concat();
        let iv: [u8; IV_LEN] = iv.try_into().ok()?;
        if lengths != expected.as_slice() || ciphertext.len() != KEY_LEN + TAG_LEN {
            return None;
        }
        let mut sealed = Zeroizing::new(ciphertext.to_vec());
        let key = open(&self.key[..], iv, serialized_context, &mut sealed).ok()?;
        Some(Zeroizing::new(key.to_vec()))
    }
}

struct Wrapped {
    provider_info: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// The message's data encryption key and the commitment to it stored in the header, both
/// expanded from one HKDF-SHA512 extraction salted with the message id.
struct DerivedKeys {
    encryption: Zeroizing<[u8; KEY_LEN]>,
    commitment: [u8; COMMIT_KEY_LEN],
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive_keys(data_key: &[u8], message_id: &[u8; MESSAGE_ID_LEN]) -> Result<DerivedKeys, Error> {
    let prk = Salt::new(HKDF_SHA512, message_id).extract(data_key);
    let expand = |info: &[&[u8]], out: &mut [u8]| -> Result<(), Error> {
        prk.expand(info, Len(out.len())).and_then(|okm: hkdf::Okm<'_, Len>| okm.fill(out)).map_err(|_| Error::Seal)
    };
    let mut encryption = Zeroizing::new([0u8; KEY_LEN]);
    expand(&[&SUITE_ID.to_be_bytes(), b"DERIVEKEY"], &mut encryption[..])?;
    let mut commitment = [0u8; COMMIT_KEY_LEN];
    expand(&[b"COMMITKEY"], &mut commitment)?;
    Ok(DerivedKeys { encryption, commitment })
}

/// A frame's IV: its sequence number, big-endian, padded to the IV length.
fn frame_iv(sequence: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// A frame's AAD: message id, frame kind, sequence number, plaintext length.
fn body_aad(message_id: &[u8], is_final: bool, sequence: u32, length: usize) -> Vec<u8> {
    let mut aad = message_id.to_vec();
    aad.extend_from_slice(if is_final { FINAL_FRAME_AAD } else { REGULAR_FRAME_AAD });
    aad.extend_from_slice(&sequence.to_be_bytes());
    aad.extend_from_slice(&(length as u64).to_be_bytes());
    aad
}

/// The format's serialization of an encryption context: nothing when it is empty, else the
/// pair count and each key and value with its length, keys in byte order.
fn serialize_context(context: &EncryptionContext) -> Result<Vec<u8>, Error> {
    if context.is_empty() {
        return Ok(Vec::new());
    }
    let count = u16::try_from(context.len()).map_err(|_| Error::TooLong("encryption context"))?;
    let mut out = count.to_be_bytes().to_vec();
    for (key, value) in context {
        put_sized(&mut out, key.as_bytes(), "encryption context key")?;
        put_sized(&mut out, value.as_bytes(), "encryption context value")?;
    }
    Ok(out)
}

fn parse_context(bytes: &[u8]) -> Result<EncryptionContext, Error> {
    let mut context = EncryptionContext::new();
    if bytes.is_empty() {
        return Ok(context);
    }
    let mut r = Reader { data: bytes, pos: 0 };
    for _ in 0..r.u16()? {
        let key = String::from_utf8(r.sized()?.to_vec()).map_err(|_| Error::Malformed("context key"))?;
        let value = String::from_utf8(r.sized()?.to_vec()).map_err(|_| Error::Malformed("context value"))?;
        if context.insert(key, value).is_some() {
            return Err(Error::Malformed("a context key twice"));
        }
    }
    if r.pos != bytes.len() {
        return Err(Error::Malformed("bytes after the encryption context"));
    }
    Ok(context)
}

/// `bytes` after their length as a u16.
fn put_sized(out: &mut Vec<u8>, bytes: &[u8], what: &'static str) -> Result<(), Error> {
    let length = u16::try_from(bytes.len()).map_err(|_| Error::TooLong(what))?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(bytes)
}

/// AES-256-GCM in place; the tag.
fn seal(key: &[u8], iv: [u8; IV_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Seal)?);
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), in_out)
        .map_err(|_| Error::Seal)?;
    tag.as_ref().try_into().map_err(|_| Error::Seal)
}

/// Opens ciphertext-and-tag in place; the plaintext.
fn open<'a>(key: &[u8], iv: [u8; IV_LEN], aad: &[u8], sealed: &'a mut [u8]) -> Result<&'a [u8], Error> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Authentication)?);
    let plaintext = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), sealed)
        .map_err(|_| Error::Authentication)?;
    Ok(plaintext)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.data.len()).ok_or(Error::Malformed("truncated"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| Error::Malformed("truncated"))
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Bytes after their length as a u16.
    fn sized(&mut self) -> Result<&'a [u8], Error> {
        let length = self.u16()?;
        self.take(usize::from(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(byte: u8) -> RawAesKeyring {
        RawAesKeyring::new("cognate", "custom-sender", &[byte; 32]).expect("keyring")
    }

    fn context(pool: &str) -> EncryptionContext {
        [("userpool-id".to_owned(), pool.to_owned())].into()
    }

    #[test]
    fn messages_round_trip_with_their_context() {
        let ring = keyring(7);
        for plaintext in [&b""[..], b"123456", &[0x5a; 4096], &[0xa5; 10_000]] {
            let message = ring.encrypt(plaintext, &context("us-east-1_abc")).expect("encrypt");
            let (opened, ctx) = ring.decrypt(&message).expect("decrypt");
            assert_eq!((opened.as_slice(), ctx), (plaintext, context("us-east-1_abc")));
        }
        let empty = ring.encrypt(b"x", &EncryptionContext::new()).expect("encrypt");
        assert_eq!(ring.decrypt(&empty).expect("decrypt").0, b"x");
    }

    /// The layout of the header, byte by byte, as the specification lays it out.
    #[test]
    fn the_header_is_version_2_with_one_raw_aes_data_key() {
        let message = keyring(1).encrypt(b"123456", &context("p")).expect("encrypt");
        assert_eq!(&message[..3], &[0x02, 0x04, 0x78]);
        let mut r = Reader { data: &message, pos: 35 };
        let ctx = r.sized().expect("aad");
        assert_eq!(ctx, [&[0, 1, 0, 11][..], b"userpool-id", &[0, 1], b"p"].concat());
        assert_eq!(r.u16().expect("count"), 1);
        assert_eq!(r.sized().expect("provider"), b"cognate");
        let info = r.sized().expect("info");
        assert_eq!(&info[..13], b"custom-sender");
        assert_eq!(&info[13..21], &[0, 0, 0, 128, 0, 0, 0, 12]);
        assert_eq!(info.len(), 13 + 8 + 12);
        assert_eq!(r.sized().expect("edk").len(), 48);
        assert_eq!((r.u8().expect("type"), r.u32().expect("frame")), (2, 4096));
        r.take(32 + 16).expect("commitment and tag");
        assert_eq!(r.u32().expect("marker"), FINAL_FRAME, "a short plaintext is one final frame");
        assert_eq!(r.u32().expect("sequence"), 1);
        assert_eq!(r.array::<12>().expect("iv"), frame_iv(1));
        assert_eq!(r.u32().expect("length"), 6);
        r.take(6 + 16).expect("content and tag");
        assert_eq!(r.pos, message.len());
    }

    #[test]
    fn another_key_a_changed_byte_or_another_name_do_not_open() {
        let message = keyring(1).encrypt(b"123456", &context("p")).expect("encrypt");
        assert!(matches!(keyring(2).decrypt(&message), Err(Error::NoMatchingKey)));
        let other_name = RawAesKeyring::new("cognate", "other", &[1; 32]).expect("keyring");
        assert!(matches!(other_name.decrypt(&message), Err(Error::NoMatchingKey)));
        let other_namespace = RawAesKeyring::new("elsewhere", "custom-sender", &[1; 32]).expect("keyring");
        assert!(matches!(other_namespace.decrypt(&message), Err(Error::NoMatchingKey)));
        for at in [40, message.len() - 30, message.len() - 1] {
            let mut changed = message.clone();
            changed[at] ^= 1;
            assert!(keyring(1).decrypt(&changed).is_err(), "byte {at} changed");
        }
        assert!(keyring(1).decrypt(&message[..message.len() - 1]).is_err());
    }

    /// Written by the Python Encryption SDK 4.0.7 (`EncryptionSDKClient.encrypt` of `654321`,
    /// suite 0x0478, a `RawMasterKey` "cognate"/"custom-sender" over the bytes 0..=31,
    /// context `userpool-id`): another implementation's message opens here.
    const PYTHON_SDK_MESSAGE: &str = "AgR4Il8nFQ11ydYMLv0oHfYIoci/VsDZEBpkGyNFhDEGBPYAIQABAAt1c2VycG9vbC1pZAAQdXMtZWFzdC0xX3ZlY3RvcgABAAdjb2duYXRlACFjdXN0b20tc2VuZGVyAAAAgAAAAAyPOCEVmNAwQtkH/qoAMOlsOibINlVDm6DHTgyjezCmgyW92ayULLtHLX0zhezuC95Zos0rFfX9ofLtSgEdMwIAABAA7jiPqEds9QXy2Qt2Tb5dnNiDNvkI9SqI30xu/x3jYC4866sUJKk9Lctwi107x/Hk/////wAAAAEAAAAAAAAAAAAAAAEAAAAGoJ/WDk37y+I1oDeHmnP5qcZ03Urq4w==";

    #[test]
    fn a_message_of_the_python_sdk_opens() {
        use base64::Engine as _;
        let message = base64::engine::general_purpose::STANDARD.decode(PYTHON_SDK_MESSAGE).expect("base64");
        let key: Vec<u8> = (0..32).collect();
        let ring = RawAesKeyring::new("cognate", "custom-sender", &key).expect("keyring");
        let (plaintext, ctx) = ring.decrypt(&message).expect("decrypt");
        assert_eq!((plaintext.as_slice(), ctx), (&b"654321"[..], context("us-east-1_vector")));
    }

    #[test]
    fn keys_are_256_bits_and_not_in_the_kms_namespace() {
        assert!(matches!(RawAesKeyring::new("cognate", "k", &[0; 16]), Err(Error::KeyLength(16))));
        assert!(matches!(RawAesKeyring::new("aws-kms", "k", &[0; 32]), Err(Error::Namespace(_))));
    }
}
