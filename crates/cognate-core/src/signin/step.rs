//! What every sign-in step shares: the [`Step`] a call ends in, the parameters it reads
//! ([`Params`]), the errors a wrong answer gets, and the making of a challenge.

use std::collections::BTreeMap;

use cognate_api::idp::{AuthenticationResultType, ChallengeNameType, NewDeviceMetadataType, UserStatusType};
use cognate_api::{ErrorCode, Sensitive};

use super::state::new_session;
use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Where a sign-in stands after a call.
#[derive(Debug)]
pub enum Step {
    /// The user is signed in.
    SignedIn(Tokens),
    /// The client must answer a challenge.
    Challenge(Challenge),
}

/// A challenge the client must answer next.
#[derive(Debug)]
pub struct Challenge {
    pub name: ChallengeNameType,
    /// ChallengeParameters (SRP_B, CODE_DELIVERY_DESTINATION, USER_ID_FOR_SRP, ...).
    pub parameters: BTreeMap<String, String>,
    /// The sealed Session the answer must carry (none for the verifier steps, whose
    /// SECRET_BLOCK plays that part).
    pub session: Option<String>,
    /// SELECT_CHALLENGE only: the first factors the user may choose from.
    pub available: Option<Vec<ChallengeNameType>>,
}

pub fn not_authorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, message)
}

/// Refuses a user who may not sign in at all, whatever they prove: disabled, unconfirmed, or
/// bound to reset their password.
pub fn refuse_unusable(user: &crate::users::User) -> ApiResult<()> {
    if !user.record.enabled {
        return Err(not_authorized("User is disabled."));
    }
    match user.status() {
        UserStatusType::Unconfirmed => {
            Err(ApiError::new(ErrorCode::UserNotConfirmedException, "User is not confirmed."))
        }
        UserStatusType::ResetRequired => {
            Err(ApiError::new(ErrorCode::PasswordResetRequiredException, "Password reset required for the user"))
        }
        _ => Ok(()),
    }
}

pub fn wrong_password() -> ApiError {
    not_authorized("Incorrect username or password.")
}

/// AuthParameters or ChallengeResponses: read once by name, with Cognito's error for a
/// missing one.
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub const USERNAME: &'static str = "USERNAME";
    pub const SECRET_HASH: &'static str = "SECRET_HASH";
    pub const DEVICE_KEY: &'static str = "DEVICE_KEY";

    pub fn new(map: BTreeMap<String, String>) -> Params {
        Params(map)
    }

    pub fn required(&self, name: &str) -> ApiResult<&str> {
        self.get(name).ok_or_else(|| ApiError::invalid_parameter(format!("Missing required parameter {name}")))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn secret_hash(&self) -> Option<&str> {
        self.get(Self::SECRET_HASH)
    }

    pub fn device_key(&self) -> Option<&str> {
        self.get(Self::DEVICE_KEY)
    }

    /// `prefix.*` entries (NEW_PASSWORD_REQUIRED's `userAttributes.name`), prefix removed.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().filter_map(move |(k, v)| k.strip_prefix(prefix).map(|name| (name, v.as_str())))
    }

    pub fn with(&self, name: &str, value: &str) -> Params {
        let mut map = self.0.clone();
        map.insert(name.to_owned(), value.to_owned());
        Params(map)
    }
}

/// The new device a completed sign-in registered (device tracking on), for NewDeviceMetadata.
pub fn device_metadata(key: &str, group_key: &str) -> NewDeviceMetadataType {
    NewDeviceMetadataType { device_key: Some(key.to_owned()), device_group_key: Some(group_key.to_owned()) }
}

/// A challenge step with a fresh Session for `username_key`; the client is told `username`.
pub fn challenge_step(
    ctx: &Ctx,
    call: &ClientCall,
    username_key: &str,
    username: &str,
    name: ChallengeNameType,
    parameters: Vec<(String, String)>,
    auth_time: i64,
) -> ApiResult<Step> {
    let session = new_session(ctx, call, username_key, &name, auth_time)?;
    let mut parameters: BTreeMap<String, String> = parameters.into_iter().collect();
    parameters.insert("USER_ID_FOR_SRP".into(), username.to_owned());
    Ok(Step::Challenge(Challenge { name, parameters, session: Some(session), available: None }))
}

/// What a completed sign-in hands the client.
#[derive(Debug)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: String,
    /// None on a refresh (the client keeps its refresh token) unless it was rotated.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives.
    pub expires_in: i32,
    /// A device registered by this sign-in (device tracking on).
    pub new_device: Option<NewDeviceMetadataType>,
}

/// The wire form of issued tokens (every operation that signs in answers with it).
impl From<Tokens> for AuthenticationResultType {
    fn from(tokens: Tokens) -> Self {
        AuthenticationResultType {
            access_token: Some(Sensitive(tokens.access_token)),
            expires_in: Some(tokens.expires_in),
            token_type: Some("Bearer".into()),
            refresh_token: tokens.refresh_token.map(Sensitive),
            id_token: Some(Sensitive(tokens.id_token)),
            new_device_metadata: tokens.new_device,
        }
    }
}
