//! The development outbox: every message Cognate delivers (codes, invitations), kept so that
//! tests and developers can read them (the server serves it at `GET /_cognate/outbox`;
//! `cognate outbox` prints it).
//!
//! At rest, the fields that carry a code or temporary password (code, subject, body) are
//! sealed under the master key, bound to the message's pool and user, so a copy of the
//! database alone gives none; they are opened when read, so readers see the plain message.
//! The store keeps messages for `outbox_retention_seconds` and at most
//! `outbox_max_per_pool` per pool, pruning on each append.

use cognate_crypto::envelope::{self, Keyring};
use cognate_store::{OutboxMessage, OutboxRetention, Store};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::settings::Settings;

#[derive(Debug, Default, Deserialize)]
pub struct OutboxQuery {
    pub pool: Option<String>,
    pub user: Option<String>,
    /// Only messages with a larger id (for polling).
    pub after: Option<i64>,
    pub limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 1000;

pub fn message_json(m: &OutboxMessage) -> Value {
    let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(m.created_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    json!({
        "id": m.id,
        "pool_id": m.pool_id,
        "username": m.username,
        "channel": m.channel,
        "destination": m.destination,
        "code": m.code,
        "subject": m.subject,
        "body": m.body,
        "created_at": created,
    })
}

/// Outbox fields are sealed per field, pool and user: a sealed value opens only in its own
/// field of a message to the same user of the same pool.
fn seal_context(field: &str, pool_id: &str, username: &str) -> String {
    crate::sealed::Purpose::Outbox { field, pool_id, username }.context()
}

/// The retention the server appends with.
pub fn retention(config: &Settings) -> OutboxRetention {
    OutboxRetention {
        max_age_ms: i64::try_from(config.outbox_retention_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
        max_per_pool: config.outbox_max_per_pool,
    }
}

/// The stored form of `m`: code, subject and body sealed (the rest is what the outbox is
/// filtered and shown by, and holds no secret).
pub fn seal(keyring: &Keyring, m: OutboxMessage) -> Result<OutboxMessage, envelope::Error> {
    let seal = |field: &str, text: &str| keyring.seal(text.as_bytes(), &seal_context(field, &m.pool_id, &m.username));
    let code = m.code.as_deref().map(|c| seal("code", c)).transpose()?;
    let subject = m.subject.as_deref().map(|s| seal("subject", s)).transpose()?;
    let body = seal("body", &m.body)?;
    Ok(OutboxMessage { code, subject, body, ..m })
}

/// The message [`seal`] was given.
pub fn open(keyring: &Keyring, m: OutboxMessage) -> Result<OutboxMessage, envelope::Error> {
    let open = |field: &str, sealed: &str| {
        let plain = keyring.open(sealed, &seal_context(field, &m.pool_id, &m.username))?;
        String::from_utf8(plain).map_err(|_| envelope::Error::Malformed("sealed outbox text is not UTF-8"))
    };
    let code = m.code.as_deref().map(|c| open("code", c)).transpose()?;
    let subject = m.subject.as_deref().map(|s| open("subject", s)).transpose()?;
    let body = open("body", &m.body)?;
    Ok(OutboxMessage { code, subject, body, ..m })
}

pub fn read(store: &dyn Store, keyring: &Keyring, query: &OutboxQuery) -> cognate_store::StoreResult<Value> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 10_000);
    let messages = store.list_messages(query.pool.as_deref(), query.user.as_deref(), query.after, limit)?;
    let opened: Vec<Value> = messages
        .into_iter()
        .filter_map(|m| {
            let id = m.id;
            match open(keyring, m) {
                Ok(m) => Some(message_json(&m)),
                Err(err) => {
                    // Sealed under a master key no longer configured (or damaged): the other
                    // messages are still worth showing, and the id order stays intact.
                    tracing::warn!(id, error = %err, "outbox message cannot be opened; left out");
                    None
                }
            }
        })
        .collect();
    Ok(json!({ "messages": opened }))
}

/// Seals `record` and appends it, pruning what the retention settings no longer keep.
pub async fn append(ctx: &crate::context::Ctx, record: OutboxMessage) -> crate::error::ApiResult<()> {
    // Sealed before it leaves for the store: a plain code never reaches the database.
    let record = seal(&ctx.state.keyring, record).map_err(crate::error::ApiError::internal)?;
    let retention = retention(ctx.settings());
    ctx.store(move |s| s.append_message_pruned(&record, &retention)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognate_crypto::envelope::MasterKey;

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate().expect("key"), vec![])
    }

    fn message() -> OutboxMessage {
        OutboxMessage {
            id: 7,
            pool_id: "us-east-1_abc".into(),
            username: "alice".into(),
            channel: "EMAIL".into(),
            destination: "alice@example.com".into(),
            code: Some("123456".into()),
            subject: Some("Your code 123456".into()),
            body: "Your verification code is 123456. ".into(),
            created_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn sealed_fields_open_to_the_same_message() {
        let kr = ring();
        let sealed = seal(&kr, message()).expect("seal");
        for text in
            [sealed.code.clone().unwrap_or_default(), sealed.subject.clone().unwrap_or_default(), sealed.body.clone()]
        {
            assert!(!text.contains("123456") && text.starts_with("v1."), "{text}");
        }
        assert_eq!(
            (&sealed.destination, &sealed.username, sealed.id),
            (&message().destination, &message().username, 7)
        );
        assert_eq!(open(&kr, sealed).expect("open"), message());
        let none = OutboxMessage { code: None, subject: None, ..message() };
        assert_eq!(open(&kr, seal(&kr, none.clone()).expect("seal")).expect("open"), none);
    }

    #[test]
    fn sealed_fields_are_bound_to_pool_user_and_field() {
        let kr = ring();
        let sealed = seal(&kr, message()).expect("seal");
        assert!(open(&kr, OutboxMessage { username: "bob".into(), ..sealed.clone() }).is_err());
        assert!(open(&kr, OutboxMessage { pool_id: "us-east-1_other".into(), ..sealed.clone() }).is_err());
        assert!(open(&kr, OutboxMessage { body: sealed.code.clone().unwrap_or_default(), ..sealed.clone() }).is_err());
        assert!(open(&ring(), sealed).is_err(), "another master key");
    }
}
