//! What public (unsigned) operations share: finding the app client named by `ClientId`,
//! checking its SECRET_HASH, and answering for unknown users the way the client's
//! PreventUserExistenceErrors setting asks.

use cognate_api::idp::{PreventUserExistenceErrorTypes, UserPoolClientType};
use cognate_api::{ErrorCode, Sensitive};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::records::*;

/// An app client resolved for a public call, with its pool.
pub struct ClientCall {
    pub pool_id: String,
    pub pool_created_ms: i64,
    pub pool: PoolDoc,
    pub client: UserPoolClientType,
    pub client_id: String,
    sealed_secrets: Vec<String>,
}

impl ClientCall {
    /// PreventUserExistenceErrors = ENABLED: unknown users must look like known ones.
    pub fn hides_user_existence(&self) -> bool {
        self.client.prevent_user_existence_errors == Some(PreventUserExistenceErrorTypes::Enabled)
    }

    /// Unknown user on a public call: Cognito's message for LEGACY clients.
    pub fn user_not_found(&self) -> ApiError {
        ApiError::new(ErrorCode::UserNotFoundException, "Username/client id combination not found.")
    }
}

fn client_not_found(client_id: &str) -> ApiError {
    ApiError::not_found(format!("User pool client {client_id} does not exist."))
}

/// Resolves `client_id` and checks `secret_hash` against every active secret of the client.
pub async fn client_call(
    ctx: &Ctx,
    client_id: &Sensitive<String>,
    secret_hash: Option<&Sensitive<String>>,
    username: &str,
) -> ApiResult<ClientCall> {
    let call = load_client(ctx, client_id.expose()).await?;
    call.check_secret_hash(ctx, secret_hash.map(|s| s.expose().as_str()), username)?;
    Ok(call)
}

/// Resolves the app client named by `client_id`, with its pool and sealed secrets.
pub async fn load_client(ctx: &Ctx, client_id: &str) -> ApiResult<ClientCall> {
    let id = client_id.to_owned();
    let lookup = id.clone();
    let found = ctx
        .store(move |s| {
            let Some(client) = s.get_app_client_by_id(&lookup)? else {
                return Ok(None);
            };
            let pool = s.get_user_pool(&client.pool_id)?;
            let secrets = s.list_client_secrets(&client.pool_id, &lookup)?;
            Ok(pool.map(|pool| (client, pool, secrets)))
        })
        .await?;
    let Some((client_record, pool_record, secrets)) = found else {
        return Err(client_not_found(&id));
    };
    Ok(ClientCall {
        pool_id: pool_record.id.to_string(),
        pool_created_ms: pool_record.created_ms,
        pool: decode_doc(&pool_record.doc)?,
        client: decode_doc(&client_record.doc)?,
        client_id: id,
        sealed_secrets: secrets.into_iter().map(|s| s.sealed_secret).collect(),
    })
}

impl ClientCall {
    pub fn has_secret(&self) -> bool {
        !self.sealed_secrets.is_empty()
    }

    /// The client's secrets in plain text (for SECRET_HASH and ClientSecret checks).
    fn secrets(&self, ctx: &Ctx) -> ApiResult<Vec<String>> {
        let purpose = crate::sealed::Purpose::ClientSecret { pool_id: &self.pool_id, client_id: &self.client_id };
        self.sealed_secrets
            .iter()
            .map(|sealed| {
                let plain = crate::sealed::open_bytes(ctx, purpose, sealed)?;
                String::from_utf8(plain).map_err(ApiError::internal)
            })
            .collect()
    }

    /// SECRET_HASH is required when the client has a secret; any active secret may have made it.
    pub fn check_secret_hash(&self, ctx: &Ctx, given: Option<&str>, username: &str) -> ApiResult<()> {
        if !self.has_secret() {
            return Ok(());
        }
        let id = &self.client_id;
        let Some(given) = given else {
            return Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("Client {id} is configured with secret but SECRET_HASH was not received"),
            ));
        };
        let mut matched = false;
        for secret in self.secrets(ctx)? {
            // Every secret is compared, so timing does not tell which one matched.
            matched |= cognate_crypto::srp::verify_secret_hash(id, &secret, username, given);
        }
        if matched {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("Unable to verify secret hash for client {id}"),
            ))
        }
    }

    /// A client secret sent as such (RevokeToken, GetTokensFromRefreshToken).
    pub fn check_client_secret(&self, ctx: &Ctx, given: Option<&str>) -> ApiResult<bool> {
        if !self.has_secret() {
            return Ok(true);
        }
        let Some(given) = given else { return Ok(false) };
        let mut matched = false;
        for secret in self.secrets(ctx)? {
            matched |= cognate_crypto::ct::eq(secret.as_bytes(), given.as_bytes());
        }
        Ok(matched)
    }
}
