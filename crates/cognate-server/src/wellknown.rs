//! `/{poolId}/.well-known/jwks.json` and `/{poolId}/.well-known/openid-configuration`.
//! The discovery document is built from the same public URL as the tokens' `iss`, so the
//! two always agree.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::front::FrontEnd;
use cognate_core::error::ApiError;
use cognate_core::Ctx;

use crate::state::AppState;
use cognate_core::tokens;

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json"), ("access-control-allow-origin", "*")], body.to_string())
        .into_response()
}

/// JWT libraries read these endpoints' errors as `{"message"}`: 404 for a pool that does not
/// exist, 500 for anything else (never a store error's text).
struct WellKnown;

impl FrontEnd for WellKnown {
    fn error(&self, _request_id: &str, err: &ApiError) -> Response {
        if err.type_name() == "ResourceNotFoundException" {
            json_response(StatusCode::NOT_FOUND, json!({ "message": err.message }))
        } else {
            tracing::error!(error = %err.message, "serving a well-known document");
            json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({ "message": "Internal server error." }))
        }
    }
}

/// The pool a well-known URL names, if it exists.
async fn require_pool(ctx: &Ctx, pool_id: &str) -> Result<cognate_store::UserPoolRecord, ApiError> {
    let lookup = pool_id.to_owned();
    ctx.store(move |s| s.get_user_pool(&lookup)).await?.ok_or_else(|| cognate_core::records::pool_not_found(pool_id))
}

/// Identity pools' ids (`region:uuid`) have a colon, user pools' (`region_id`) none: the
/// same well-known paths serve OpenID tokens of identities and user pools' tokens.
fn is_identity_pool(id: &str) -> bool {
    id.contains(':')
}

pub async fn jwks(State(state): State<Arc<AppState>>, Path(pool_id): Path<String>) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    if is_identity_pool(&pool_id) {
        return match cognate_core::identity::openid::jwks(&ctx, &pool_id).await {
            Ok(keys) => json_response(StatusCode::OK, json!({ "keys": keys })),
            Err(err) => WellKnown.error(&ctx.request_id, &err),
        };
    }
    let keys = match require_pool(&ctx, &pool_id).await {
        Ok(record) => tokens::pool_keys(&ctx, &pool_id, record.created_ms).await,
        Err(err) => Err(err),
    };
    match keys {
        Ok(keys) => json_response(StatusCode::OK, json!({ "keys": keys.jwks })),
        Err(err) => WellKnown.error(&ctx.request_id, &err),
    }
}

pub async fn openid_configuration(State(state): State<Arc<AppState>>, Path(pool_id): Path<String>) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    if is_identity_pool(&pool_id) {
        // An identity pool issues only OpenID tokens (GetOpenIdToken): its document names
        // the issuer and the keys.
        return match cognate_core::identity::pools::load(&ctx, &pool_id).await {
            Ok(_) => {
                let issuer = cognate_core::identity::openid::issuer(&ctx, &pool_id);
                json_response(
                    StatusCode::OK,
                    json!({
                        "issuer": issuer,
                        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                    }),
                )
            }
            Err(err) => WellKnown.error(&ctx.request_id, &err),
        };
    }
    if let Err(err) = require_pool(&ctx, &pool_id).await {
        return WellKnown.error(&ctx.request_id, &err);
    }
    let issuer = tokens::issuer(&ctx, &pool_id);
    // Only what this server serves: relying parties follow every URL the document names, and
    // one that answers 404 fails them later and more confusingly than one that is absent. The
    // authorization (the code flow), token (authorization_code, refresh_token,
    // client_credentials), userinfo, revocation and end-session endpoints are routed.
    json_response(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "token"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "subject_types_supported": ["public"],
            "authorization_endpoint": format!("{}/oauth2/authorize", ctx.settings().public_url),
            "token_endpoint": format!("{}/oauth2/token", ctx.settings().public_url),
            "userinfo_endpoint": format!("{}/oauth2/userInfo", ctx.settings().public_url),
            "revocation_endpoint": format!("{}/oauth2/revoke", ctx.settings().public_url),
            "end_session_endpoint": format!("{}/logout", ctx.settings().public_url),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }),
    )
}
