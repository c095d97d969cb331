//! `GET /_cognate/outbox?pool=ID&user=NAME`: the outbox (`cognate_core::outbox`) as JSON, for
//! loopback clients (others only when `outbox_public` is set): it shows live codes.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cognate_core::outbox::{read, OutboxQuery};

use crate::AppState;

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
    let worker = Arc::clone(&state);
    match tokio::task::spawn_blocking(move || read(worker.core.store.as_ref(), &worker.core.keyring, &query)).await {
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
