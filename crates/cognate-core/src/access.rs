//! The caller of an operation that carries a user's access token (GetUser, ChangePassword,
//! ...). Every access token is verified here: RS256 signature by the pool's access key,
//! expiry, `token_use`, issuer, scope, revocation of its token family, the user's global
//! sign-out, that its app client still exists, and that the user still exists and is
//! enabled.

use cognate_api::idp::UserPoolClientType;
use cognate_api::{ErrorCode, Sensitive};
use serde_json::{Map, Value};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::{decode_doc, PoolDoc};
use crate::tokens;
use crate::users::{self, User};

fn invalid_token() -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, "Invalid Access Token")
}

/// The verified caller of a token-authenticated operation.
pub struct TokenUser {
    pub pool_id: String,
    pub pool: PoolDoc,
    pub user: User,
    /// The app client the token was issued to (it still exists).
    pub client: UserPoolClientType,
}

pub async fn authenticate(ctx: &Ctx, token: &Sensitive<String>) -> ApiResult<TokenUser> {
    authenticate_for(ctx, token.expose(), "aws.cognito.signin.user.admin").await.map(|(user, _)| user)
}

/// [`authenticate`] for a token that must carry `scope` (`openid` for userInfo); the token's
/// claims too.
pub async fn authenticate_for(ctx: &Ctx, token: &str, scope: &str) -> ApiResult<(TokenUser, Map<String, Value>)> {
    let claims = tokens::peek_claims(token).ok_or_else(invalid_token)?;
    let prefix = format!("{}/", ctx.settings().public_url);
    let pool_id = claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| iss.strip_prefix(&prefix))
        .filter(|id| !id.contains('/'))
        .ok_or_else(invalid_token)?
        .to_owned();
    let lookup = pool_id.clone();
    let record = ctx.store(move |s| s.get_user_pool(&lookup)).await?.ok_or_else(invalid_token)?;
    let pool: PoolDoc = decode_doc(&record.doc)?;
    let keys = tokens::pool_keys(ctx, &pool_id, record.created_ms).await?;
    let claims =
        tokens::verify(&keys, token, tokens::ACCESS, ctx.now_ms() / 1000).map_err(|rejection| match rejection {
            tokens::Rejection::Expired => ApiError::new(ErrorCode::NotAuthorizedException, "Access Token has expired"),
            _ => invalid_token(),
        })?;
    let scopes = claims.get("scope").and_then(Value::as_str).unwrap_or_default();
    if !scopes.split(' ').any(|s| s == scope) {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "Access Token does not have required scopes"));
    }
    // A deleted app client's tokens stop working, as Cognito's do.
    let client_id = claims.get("client_id").and_then(Value::as_str).ok_or_else(invalid_token)?.to_owned();
    let (p, c) = (pool_id.clone(), client_id);
    let client_record = ctx.store(move |s| s.get_app_client(&p, &c)).await?.ok_or_else(invalid_token)?;
    let client: UserPoolClientType = decode_doc(&client_record.doc)?;
    let username = claims.get("username").and_then(Value::as_str).ok_or_else(invalid_token)?;
    let user = users::find_user(ctx, &pool_id, &pool.pool, username).await?.ok_or_else(users::user_not_found)?;
    let sub = claims.get("sub").and_then(Value::as_str);
    if sub != Some(user.record.sub.as_str()) {
        return Err(users::user_not_found());
    }
    if is_revoked(ctx, &pool_id, &user, &claims).await? {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "Access Token has been revoked"));
    }
    if !user.record.enabled {
        return Err(ApiError::new(ErrorCode::NotAuthorizedException, "User is disabled."));
    }
    Ok((TokenUser { pool_id, pool, user, client }, claims))
}

/// Whether a token `user` holds was revoked: its family (RevokeToken, a reused refresh token),
/// or every token issued before the user's last global sign-out.
pub async fn is_revoked(ctx: &Ctx, pool_id: &str, user: &User, claims: &Map<String, Value>) -> ApiResult<bool> {
    let issued_ms = claims.get("iat").and_then(Value::as_i64).unwrap_or(0) * 1000;
    if user.doc.tokens_valid_after_ms.is_some_and(|t| issued_ms < t) {
        return Ok(true);
    }
    let Some(jti) = claims.get("origin_jti").and_then(Value::as_str) else { return Ok(false) };
    let (p, j) = (pool_id.to_owned(), jti.to_owned());
    ctx.store(move |s| s.is_token_family_revoked(&p, &j)).await
}
