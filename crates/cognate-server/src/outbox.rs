//! The development outbox: every message Cognate delivers (codes, invitations), readable as
//! JSON at `GET /_cognate/outbox?pool=ID&user=NAME` by loopback clients (others only when
//! `outbox_public` is set) and with `cognate outbox`.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cognate_store::{OutboxMessage, Store};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::state::AppState;

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

pub fn read(store: &dyn Store, query: &OutboxQuery) -> cognate_store::StoreResult<Value> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, 10_000);
    let messages = store.list_messages(query.pool.as_deref(), query.user.as_deref(), query.after, limit)?;
    Ok(json!({ "messages": messages.iter().map(message_json).collect::<Vec<_>>() }))
}

pub async fn handler(
    State(state): State<Arc<AppState>>,
    ConnectInfo(crate::PeerAddr(peer)): ConnectInfo<crate::PeerAddr>,
    Query(query): Query<OutboxQuery>,
) -> Response {
    if !peer.ip().is_loopback() && !state.config.outbox_public {
        // The outbox shows live codes: only the machine itself may read it by default.
        return (StatusCode::FORBIDDEN, "the outbox is served to loopback clients only (see outbox_public)\n")
            .into_response();
    }
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || read(store.as_ref(), &query)).await {
        Ok(Ok(body)) => (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response(),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "outbox read failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "outbox read failed\n").into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "outbox task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "outbox read failed\n").into_response()
        }
    }
}
