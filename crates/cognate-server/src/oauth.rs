//! The OAuth 2.0 token endpoint, `POST {public-url}/oauth2/token` (the pool is the client's):
//! form-encoded, the client authenticated by `client_secret_basic` (Authorization: Basic) or
//! `client_secret_post`; errors are `{"error": ...}` with HTTP 400, as Cognito answers them.
//! It grants client_credentials, authorization_code (a public client names itself with
//! `client_id` alone and proves itself with PKCE) and refresh_token; `POST /oauth2/revoke`
//! revokes refresh tokens (RFC 7009).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cognate_core::oauth::{self, Refusal};
use serde_json::json;

use crate::AppState;

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    // Tokens must not be cached (RFC 6749 5.1).
    let headers = [
        ("content-type", "application/json;charset=UTF-8"),
        ("cache-control", "no-store"),
        ("pragma", "no-cache"),
        // Browser apps exchange their codes from their own origin.
        ("access-control-allow-origin", "*"),
    ];
    (status, headers, body.to_string()).into_response()
}

fn refused(error: &str) -> Response {
    answer(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

/// The client's id and secret from `Authorization: Basic` or the form; None if both or neither
/// give them, or they disagree.
fn client_credentials_of(authorization: Option<&str>, form: &[(String, String)]) -> Option<(String, String)> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match authorization {
        Some(value) => {
            let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
            let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
            let (id, secret) = decoded.split_once(':')?;
            if field("client_id").is_some_and(|given| given != id) || field("client_secret").is_some() {
                return None;
            }
            Some((id.to_owned(), secret.to_owned()))
        }
        None => Some((field("client_id")?, field("client_secret")?)),
    }
}

pub async fn token(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let form_encoded = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    });
    let Ok(body) = axum::body::to_bytes(body, state.config.max_request_bytes).await else {
        return refused("invalid_request");
    };
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) if form_encoded => form,
        _ => return refused("invalid_request"),
    };
    let grant_type = form.iter().find(|(k, _)| k == "grant_type").map(|(_, v)| v.as_str());
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
    match grant_type {
        Some("client_credentials") => {}
        Some("authorization_code") => return authorization_code(&state, authorization, &form).await,
        Some("refresh_token") => return refresh_token(&state, authorization, &form).await,
        Some(_) => return refused("unsupported_grant_type"),
        None => return refused("invalid_request"),
    }
    let Some((client_id, secret)) = client_credentials_of(authorization, &form) else {
        return refused("invalid_client");
    };
    let scopes = form
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>());
    let ctx = crate::front::anonymous_ctx(&state);
    match oauth::client_credentials(&ctx, &client_id, &secret, scopes).await {
        Ok(granted) => answer(
            StatusCode::OK,
            json!({"access_token": granted.access_token, "expires_in": granted.expires_in, "token_type": "Bearer"}),
        ),
        Err(refusal) => refusal_answer(refusal),
    }
}

/// The client of an authorization_code grant: Basic authentication, or `client_id` (with
/// `client_secret` for a client that has one) in the form.
fn code_client(authorization: Option<&str>, form: &[(String, String)]) -> Option<(String, Option<String>)> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match authorization {
        Some(_) => client_credentials_of(authorization, form).map(|(id, secret)| (id, Some(secret))),
        None => Some((field("client_id")?, field("client_secret"))),
    }
}

async fn authorization_code(state: &Arc<AppState>, authorization: Option<&str>, form: &[(String, String)]) -> Response {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some((client_id, secret)) = code_client(authorization, form) else {
        return refused("invalid_client");
    };
    let Some(code) = field("code") else {
        return refused("invalid_request");
    };
    let ctx = crate::front::anonymous_ctx(state);
    let exchanged =
        oauth::exchange_code(&ctx, &client_id, secret.as_deref(), code, field("redirect_uri"), field("code_verifier"))
            .await;
    match exchanged {
        Ok((tokens, scopes)) => tokens_answer(&tokens, scopes.iter().any(|s| s == "openid")),
        Err(refusal) => refusal_answer(refusal),
    }
}

/// A grant's tokens: the ID token only for `openid`, a refresh token when one was issued
/// (the code grant, or a rotating refresh).
fn tokens_answer(tokens: &cognate_core::signin::step::Tokens, openid: bool) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "expires_in": tokens.expires_in,
        "token_type": "Bearer",
    });
    if openid {
        body["id_token"] = json!(tokens.id_token);
    }
    if let Some(refresh) = &tokens.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    answer(StatusCode::OK, body)
}

fn refusal_answer(refusal: Refusal) -> Response {
    match refusal {
        // A trigger function refused or failed: the caller is told why, as an OAuth error.
        Refusal::Internal(err) if err.type_name().contains("Lambda") => {
            answer(StatusCode::BAD_REQUEST, json!({ "error": "invalid_request", "error_description": err.message }))
        }
        Refusal::Internal(err) => {
            tracing::error!(error = %err.message, "token endpoint");
            answer(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "server_error" }))
        }
        refusal => refused(refusal.error()),
    }
}

async fn refresh_token(state: &Arc<AppState>, authorization: Option<&str>, form: &[(String, String)]) -> Response {
    let Some((client_id, secret)) = code_client(authorization, form) else {
        return refused("invalid_client");
    };
    let Some(token) = form.iter().find(|(k, _)| k == "refresh_token").map(|(_, v)| v.as_str()) else {
        return refused("invalid_request");
    };
    let ctx = crate::front::anonymous_ctx(state);
    match oauth::refresh_grant(&ctx, &client_id, secret.as_deref(), token).await {
        Ok((tokens, openid)) => tokens_answer(&tokens, openid),
        Err(refusal) => refusal_answer(refusal),
    }
}

/// `POST /oauth2/revoke`: 200 with an empty body, also for a token that is unknown or revoked
/// already; a client that does not authenticate gets 401 invalid_client.
pub async fn revoke(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, state.config.max_request_bytes).await else {
        return refused("invalid_request");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return refused("invalid_request");
    };
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some((client_id, secret)) = code_client(authorization, &form) else {
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    };
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()) else {
        return refused("invalid_request");
    };
    let ctx = crate::front::anonymous_ctx(&state);
    match oauth::revoke(&ctx, &client_id, secret.as_deref(), token).await {
        Ok(()) => (StatusCode::OK, [("cache-control", "no-store")]).into_response(),
        Err(Refusal::InvalidClient) => answer(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"})),
        Err(refusal) => refusal_answer(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn clients_authenticate_one_way_only() {
        let basic = format!("Basic {}", STANDARD.encode("abc:s3cret"));
        assert_eq!(client_credentials_of(Some(&basic), &form(&[])), Some(("abc".into(), "s3cret".into())));
        assert_eq!(
            client_credentials_of(None, &form(&[("client_id", "abc"), ("client_secret", "x")])),
            Some(("abc".into(), "x".into()))
        );
        assert_eq!(client_credentials_of(Some(&basic), &form(&[("client_id", "other")])), None, "disagreeing ids");
        assert_eq!(client_credentials_of(Some(&basic), &form(&[("client_secret", "x")])), None, "two secrets");
        assert_eq!(client_credentials_of(None, &form(&[("client_id", "abc")])), None, "no secret");
        assert_eq!(client_credentials_of(Some("Bearer x"), &form(&[])), None);
    }
}
