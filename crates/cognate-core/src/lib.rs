//! Cognate's domain, shared by every front end (the JSON 1.1 and REST-JSON operations today;
//! the hosted UI, identity-pool credentials and triggers next). Nothing here knows about
//! HTTP: a front end resolves who is calling, builds a [`Ctx`] and calls in here; what comes
//! back is domain values ([`signin::Step`], records, views) and [`ApiError`]s, which each
//! front end renders its own way.
//!
//! Layout, from the bottom up: [`context`] (what a request can reach) and [`error`];
//! [`sealed`] (every sealing purpose, in one enum) and [`tokens`] (per-pool signing keys,
//! JWTs); [`records`] (pools loaded and changed with compare-and-set, pagination);
//! [`users`] (the user model, passwords, codes, delivery, guess counters); [`clients`] (an
//! app client resolved for a public call); [`signin`] (the sign-in state machine and token
//! issuance); [`access`] (a verified access token's caller); [`hooks`] (where triggers run) and
//! [`hooks_messages`] (the message triggers, around every code Cognate sends).

pub mod access;
pub mod account;
pub mod aws;
pub mod bulk_publish;
pub mod clients;
pub mod context;
pub mod devices;
pub mod domains;
pub mod error;
pub mod federation;
pub mod fetch;
pub mod groups;
pub mod hooks;
pub mod hooks_messages;
pub mod identity;
pub mod identity_providers;
pub mod jwt;
pub mod lambda;
pub mod managed_login;
pub mod metrics;
pub mod migration;
pub mod oauth;
pub mod outbox;
pub mod push;
pub mod ratelimit;
pub mod records;
pub mod region;
pub mod resource_servers;
pub mod saml;
pub mod sealed;
pub mod settings;
pub mod signin;
pub mod sync;
pub mod sync_access;
pub mod sync_delivery;
pub mod sync_trigger;
pub mod tokens;
pub mod ui_customization;
pub mod users;

pub use context::{Clock, Core, Ctx, OffsetClock, Principal, PrincipalKind, SystemClock};
pub use error::{ApiError, ApiResult};
