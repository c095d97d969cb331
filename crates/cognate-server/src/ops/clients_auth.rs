//! What public (unsigned) operations share: finding the app client named by `ClientId`,
//! checking its SECRET_HASH, and answering for unknown users the way the client's
//! PreventUserExistenceErrors setting asks.

use cognate_api::idp::{PreventUserExistenceErrorTypes, UserPoolClientType};
use cognate_api::{ErrorCode, Sensitive};

use super::common::*;
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;

/// An app client resolved for a public call, with its pool.
pub struct ClientCall {
    pub pool_id: String,
    pub pool: PoolDoc,
    pub client: UserPoolClientType,
}

impl ClientCall {
    /// PreventUserExistenceErrors = ENABLED: unknown users must look like known ones.
    pub fn hides_user_existence(&self) -> bool {
        self.client.prevent_user_existence_errors == Some(PreventUserExistenceErrorTypes::Enabled)
    }

    /// Unknown user on a public call: Cognito's message for LEGACY clients.
    pub fn user_not_found(&self) -> ApiError {
        ApiError::new(
            ErrorCode::UserNotFoundException,
            "Username/client id combination not found.",
        )
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
    let id = client_id.expose().clone();
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
    let client: UserPoolClientType = decode_doc(&client_record.doc)?;
    let pool: PoolDoc = decode_doc(&pool_record.doc)?;
    if !secrets.is_empty() {
        let Some(given) = secret_hash else {
            return Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("Client {id} is configured with secret but SECRET_HASH was not received"),
            ));
        };
        let context = super::pool_clients::secret_context(&pool_record.id, &id);
        let mut matched = false;
        for secret in &secrets {
            let plain = ctx
                .state
                .keyring
                .open(&secret.sealed_secret, &context)
                .map_err(ApiError::internal)?;
            let plain = String::from_utf8(plain).map_err(ApiError::internal)?;
            let expected = cognate_crypto::srp::secret_hash(&id, &plain, username);
            // Every secret is compared, so timing does not tell which one matched.
            matched |= cognate_crypto::ct::eq(expected.as_bytes(), given.expose().as_bytes());
        }
        if !matched {
            return Err(ApiError::new(
                ErrorCode::NotAuthorizedException,
                format!("Unable to verify secret hash for client {id}"),
            ));
        }
    }
    Ok(ClientCall {
        pool_id: pool_record.id,
        pool,
        client,
    })
}
