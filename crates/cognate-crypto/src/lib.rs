//! Cryptography for Cognate.
//!
//! * [`sigv4`] verifies AWS Signature Version 4 on incoming requests, the way
//!   Cognito's endpoints authenticate IAM-signed (admin) calls.
//! * [`envelope`] encrypts secrets at rest (client secrets, signing keys)
//!   under a server master key, with key ids so keys can be rotated.
//! * [`ids`] makes the random identifiers Cognito hands out (pool ids, app
//!   client ids, client secrets, UUIDs).
//! * [`ct`] compares secrets without leaking timing.
//! * [`encryption_sdk`] writes (and reads) AWS Encryption SDK messages under a raw AES
//!   keyring: the codes Cognito hands to custom sender triggers.
//!
//! All primitives come from `aws-lc-rs`, so there is one audited crypto
//! provider in the dependency tree.
//!
//! The one exception is [`bn`], constant-time big-integer arithmetic for SRP
//! over `aws-lc-sys`: it is the crate's single audited `unsafe` module (the
//! rest of the crate denies `unsafe_code`). [`srp`] builds Cognito's SRP
//! variant on it.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod bn;
pub mod ct;
pub mod encryption_sdk;
pub mod envelope;
pub mod ids;
pub mod sigv4;
pub mod srp;
