//! Cryptography for Cognate.
//!
//! * [`sigv4`] verifies AWS Signature Version 4 on incoming requests, the way
//!   Cognito's endpoints authenticate IAM-signed (admin) calls.
//! * [`envelope`] encrypts secrets at rest (client secrets, signing keys)
//!   under a server master key, with key ids so keys can be rotated.
//! * [`ids`] makes the random identifiers Cognito hands out (pool ids, app
//!   client ids, client secrets, UUIDs).
//! * [`ct`] compares secrets without leaking timing.
//!
//! All primitives come from `aws-lc-rs`, so there is one audited crypto
//! provider in the dependency tree.
#![forbid(unsafe_code)]

pub mod ct;
pub mod envelope;
pub mod ids;
pub mod sigv4;
