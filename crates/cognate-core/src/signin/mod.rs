//! The sign-in state machine: InitiateAuth's flows and the answers to each challenge, for
//! every front end (the JSON operations map a [`Step`] onto their four output types; the
//! hosted UI will render it as pages).
//!
//! Which challenge follows which ([`FOLLOWS`] is this table as code; debug builds refuse a
//! step it does not list, so every test run checks it):
//!
//! | from                                | answered with                                  | next                                                   |
//! |-------------------------------------|------------------------------------------------|--------------------------------------------------------|
//! | USER_SRP_AUTH                       | USERNAME, SRP_A                                | PASSWORD_VERIFIER                                      |
//! | USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH | USERNAME, PASSWORD                    | *after the first factor*                               |
//! | USER_AUTH                           | USERNAME [, PREFERRED_CHALLENGE + its input]   | SELECT_CHALLENGE, or the preferred factor's step       |
//! | REFRESH_TOKEN_AUTH                  | REFRESH_TOKEN                                  | tokens                                                 |
//! | SELECT_CHALLENGE                    | ANSWER (PASSWORD, PASSWORD_SRP, EMAIL_OTP, SMS_OTP) | the chosen factor's step                          |
//! | PASSWORD_VERIFIER                   | PASSWORD_CLAIM_SIGNATURE, _SECRET_BLOCK, TIMESTAMP | *after the first factor*                           |
//! | EMAIL_OTP, SMS_OTP (first factor)   | EMAIL_OTP_CODE / SMS_OTP_CODE                  | tokens                                                 |
//! | NEW_PASSWORD_REQUIRED               | NEW_PASSWORD [, userAttributes.*]              | an MFA challenge, tokens                               |
//! | SELECT_MFA_TYPE                     | ANSWER (SMS_MFA, SOFTWARE_TOKEN_MFA, EMAIL_OTP) | that MFA challenge                                    |
//! | SMS_MFA, SOFTWARE_TOKEN_MFA, EMAIL_OTP (MFA) | the code                              | tokens                                                 |
//! | MFA_SETUP                           | (after VerifySoftwareToken with the Session)   | tokens                                                 |
//! | DEVICE_SRP_AUTH                     | DEVICE_KEY, SRP_A                              | DEVICE_PASSWORD_VERIFIER                               |
//! | DEVICE_PASSWORD_VERIFIER            | the device's claim                             | tokens                                                 |
//! | CUSTOM_AUTH                         | USERNAME [, SRP_A + CHALLENGE_NAME=SRP_A]      | what DefineAuthChallenge says: CUSTOM_CHALLENGE (or PASSWORD_VERIFIER after SRP_A), tokens |
//! | CUSTOM_CHALLENGE                    | ANSWER                                         | what DefineAuthChallenge says: CUSTOM_CHALLENGE, tokens |
//!
//! A CUSTOM_AUTH PASSWORD_VERIFIER leads back to DefineAuthChallenge, which may ask for a
//! CUSTOM_CHALLENGE ([`custom`]).
//!
//! *After the first factor*: a disabled, unconfirmed or reset-required user is refused; a
//! user with a temporary password gets NEW_PASSWORD_REQUIRED; a remembered device given as
//! DEVICE_KEY gets DEVICE_SRP_AUTH instead of MFA; then MFA as the pool and user call for it
//! (SELECT_MFA_TYPE, SMS_MFA, SOFTWARE_TOKEN_MFA, EMAIL_OTP, MFA_SETUP); else tokens.
//!
//! Every guess (a password, a code) is counted before it is evaluated ([`crate::users::lockout`]).

mod custom;
mod first_factor;
pub mod mfa;
pub mod state;
pub mod step;
pub mod tokens;

use cognate_api::idp::{AuthFlowType, ChallengeNameType, FeatureType, UserPoolClientType};
use cognate_api::ErrorCode;

use crate::clients::ClientCall;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

pub use first_factor::password_matches;
pub use state::{user_of_setup_session, RefreshClaims, SetupSession};
use step::not_authorized;
#[cfg(test)]
use step::wrong_password;
pub use step::Tokens;
pub use step::{Challenge, Params, Step};
pub use tokens::{refresh, rotate_refresh_token};

/// Where a step can come from: a flow's start or a challenge's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    SrpStart,
    PasswordStart,
    UserAuthStart,
    CustomStart,
    Answer(&'static str),
}

/// Challenges that a first factor (a password, by SRP or not) can lead to.
const AFTER_FIRST_FACTOR: &[&str] = &[
    "NEW_PASSWORD_REQUIRED",
    "DEVICE_SRP_AUTH",
    "SELECT_MFA_TYPE",
    "SMS_MFA",
    "SOFTWARE_TOKEN_MFA",
    "EMAIL_OTP",
    "MFA_SETUP",
];

/// The module's table as code: the challenges each start or answer may lead to (tokens may
/// follow any of them).
const FOLLOWS: &[(Origin, &[&str])] = &[
    (Origin::SrpStart, &["PASSWORD_VERIFIER"]),
    (Origin::PasswordStart, AFTER_FIRST_FACTOR),
    (Origin::UserAuthStart, &["SELECT_CHALLENGE", "PASSWORD_VERIFIER", "EMAIL_OTP", "SMS_OTP"]),
    (Origin::UserAuthStart, AFTER_FIRST_FACTOR),
    (Origin::Answer("SELECT_CHALLENGE"), &["PASSWORD_VERIFIER", "EMAIL_OTP", "SMS_OTP"]),
    (Origin::Answer("SELECT_CHALLENGE"), AFTER_FIRST_FACTOR),
    (Origin::Answer("PASSWORD_VERIFIER"), AFTER_FIRST_FACTOR),
    (Origin::CustomStart, &["CUSTOM_CHALLENGE", "PASSWORD_VERIFIER"]),
    (Origin::Answer("PASSWORD_VERIFIER"), &["CUSTOM_CHALLENGE"]),
    (Origin::Answer("CUSTOM_CHALLENGE"), &["CUSTOM_CHALLENGE"]),
    (
        Origin::Answer("NEW_PASSWORD_REQUIRED"),
        &["SELECT_MFA_TYPE", "SMS_MFA", "SOFTWARE_TOKEN_MFA", "EMAIL_OTP", "MFA_SETUP"],
    ),
    (Origin::Answer("SELECT_MFA_TYPE"), &["SMS_MFA", "SOFTWARE_TOKEN_MFA", "EMAIL_OTP"]),
    (Origin::Answer("DEVICE_SRP_AUTH"), &["DEVICE_PASSWORD_VERIFIER"]),
];

/// Whether the table allows `step` after `from`.
fn follows(from: Origin, step: &ApiResult<Step>) -> bool {
    match step {
        Ok(Step::Challenge(challenge)) => FOLLOWS
            .iter()
            .filter(|(origin, _)| *origin == from)
            .any(|(_, next)| next.contains(&challenge.name.as_str())),
        _ => true,
    }
}

fn checked(from: Origin, step: ApiResult<Step>) -> ApiResult<Step> {
    debug_assert!(follows(from, &step), "sign-in step {step:?} does not follow {from:?} in the table");
    step
}

/// Which ExplicitAuthFlows value allows a flow (legacy names included).
fn flow_allowed(client: &UserPoolClientType, flow: &AuthFlowType) -> bool {
    let flows: Vec<&str> = client.explicit_auth_flows.iter().flatten().map(|f| f.as_str()).collect();
    let legacy_only = flows.iter().all(|f| !f.starts_with("ALLOW_"));
    let has = |name: &str| flows.contains(&name);
    match flow {
        AuthFlowType::UserSrpAuth => has("ALLOW_USER_SRP_AUTH") || legacy_only,
        AuthFlowType::RefreshTokenAuth | AuthFlowType::RefreshToken => has("ALLOW_REFRESH_TOKEN_AUTH") || legacy_only,
        AuthFlowType::UserPasswordAuth => has("ALLOW_USER_PASSWORD_AUTH") || has("USER_PASSWORD_AUTH"),
        AuthFlowType::AdminUserPasswordAuth | AuthFlowType::AdminNoSrpAuth => {
            has("ALLOW_ADMIN_USER_PASSWORD_AUTH") || has("ADMIN_NO_SRP_AUTH")
        }
        AuthFlowType::CustomAuth => has("ALLOW_CUSTOM_AUTH") || has("CUSTOM_AUTH_FLOW_ONLY"),
        AuthFlowType::UserAuth => has("ALLOW_USER_AUTH"),
        AuthFlowType::Unknown(_) => false,
    }
}

/// Who starts a sign-in: an app's user (InitiateAuth) or an administrator for one
/// (AdminInitiateAuth), which allows different flows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Public,
    Admin,
}

/// Starts a sign-in with `flow`.
pub async fn initiate(
    ctx: &Ctx,
    call: &ClientCall,
    flow: AuthFlowType,
    params: Params,
    caller: Caller,
) -> ApiResult<Step> {
    if !flow_allowed(&call.client, &flow) {
        return Err(ApiError::invalid_parameter(format!("{} flow not enabled for this client", flow.as_str())));
    }
    let admin = caller == Caller::Admin;
    match flow {
        AuthFlowType::UserSrpAuth => checked(Origin::SrpStart, first_factor::start_srp(ctx, call, &params).await),
        AuthFlowType::UserPasswordAuth if !admin => {
            checked(Origin::PasswordStart, first_factor::password(ctx, call, &params).await)
        }
        AuthFlowType::AdminUserPasswordAuth | AuthFlowType::AdminNoSrpAuth if admin => {
            checked(Origin::PasswordStart, first_factor::password(ctx, call, &params).await)
        }
        AuthFlowType::RefreshTokenAuth | AuthFlowType::RefreshToken => {
            // With rotation, a refresh must return (and spend) a new refresh token, which only
            // GetTokensFromRefreshToken does, as Cognito documents.
            if call.client.refresh_token_rotation.as_ref().is_some_and(|r| r.feature == FeatureType::Enabled) {
                return Err(not_authorized(
                    "Refresh token rotation is enabled for this client: use GetTokensFromRefreshToken.",
                ));
            }
            let token = params.required("REFRESH_TOKEN")?;
            Ok(Step::SignedIn(refresh(ctx, call, token, tokens::ClientProof::SecretHash(params.secret_hash())).await?))
        }
        AuthFlowType::CustomAuth => {
            let step = match custom::start(ctx, call, &params).await {
                Ok(custom::Started::Step(step)) => Ok(step),
                Ok(custom::Started::Password(history)) => {
                    first_factor::start_srp_within_custom(ctx, call, &params, history).await
                }
                Err(err) => Err(err),
            };
            checked(Origin::CustomStart, step)
        }
        AuthFlowType::UserAuth => {
            checked(Origin::UserAuthStart, first_factor::start_user_auth(ctx, call, &params).await)
        }
        other => Err(ApiError::invalid_parameter(format!("Invalid AuthFlow {} for this operation.", other.as_str()))),
    }
}

/// A sign-in on the hosted pages with a username and password, whatever the client's
/// ExplicitAuthFlows (they govern the API, not the hosted pages), with the API's lockout and
/// user-existence rules.
pub async fn hosted_password(ctx: &Ctx, call: &ClientCall, login: &str, password: String) -> ApiResult<Step> {
    checked(Origin::PasswordStart, first_factor::hosted_password(ctx, call, login, password).await)
}

/// Answers the challenge `challenge` of a sign-in in progress.
pub async fn respond(
    ctx: &Ctx,
    call: &ClientCall,
    challenge: ChallengeNameType,
    responses: Params,
    session: Option<&str>,
) -> ApiResult<Step> {
    let from = Origin::Answer(match &challenge {
        ChallengeNameType::SelectChallenge => "SELECT_CHALLENGE",
        ChallengeNameType::PasswordVerifier => "PASSWORD_VERIFIER",
        ChallengeNameType::NewPasswordRequired => "NEW_PASSWORD_REQUIRED",
        ChallengeNameType::SelectMfaType => "SELECT_MFA_TYPE",
        ChallengeNameType::DeviceSrpAuth => "DEVICE_SRP_AUTH",
        ChallengeNameType::CustomChallenge => "CUSTOM_CHALLENGE",
        _ => "",
    });
    let step = match challenge {
        ChallengeNameType::PasswordVerifier => match first_factor::password_verifier(ctx, call, &responses).await {
            Ok(first_factor::Verified::Step(step)) => Ok(step),
            Ok(first_factor::Verified::Custom(user, history)) => {
                custom::after_password(ctx, call, *user, history).await
            }
            Err(err) => Err(err),
        },
        ChallengeNameType::NewPasswordRequired => first_factor::new_password(ctx, call, &responses, session).await,
        ChallengeNameType::SoftwareTokenMfa
        | ChallengeNameType::SmsMfa
        | ChallengeNameType::SmsOtp
        | ChallengeNameType::EmailOtp
        | ChallengeNameType::MfaSetup
        | ChallengeNameType::SelectMfaType => mfa::answer(ctx, call, &responses, session, challenge).await,
        ChallengeNameType::SelectChallenge => {
            first_factor::answer_select_challenge(ctx, call, &responses, session).await
        }
        ChallengeNameType::DeviceSrpAuth => first_factor::device_srp(ctx, call, &responses, session).await,
        ChallengeNameType::CustomChallenge => custom::answer(ctx, call, &responses, session).await,
        ChallengeNameType::DevicePasswordVerifier => {
            first_factor::device_password_verifier(ctx, call, &responses).await
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            format!("Cognate does not support the {} challenge yet.", other.as_str()),
        )),
    };
    checked(from, step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn challenge(name: ChallengeNameType) -> ApiResult<Step> {
        Ok(Step::Challenge(Challenge { name, parameters: BTreeMap::new(), session: None, available: None }))
    }

    #[test]
    fn the_table_allows_what_cognito_does_and_nothing_else() {
        assert!(follows(Origin::SrpStart, &challenge(ChallengeNameType::PasswordVerifier)));
        assert!(!follows(Origin::SrpStart, &challenge(ChallengeNameType::SoftwareTokenMfa)));
        assert!(follows(Origin::Answer("PASSWORD_VERIFIER"), &challenge(ChallengeNameType::NewPasswordRequired)));
        assert!(!follows(Origin::Answer("PASSWORD_VERIFIER"), &challenge(ChallengeNameType::PasswordVerifier)));
        assert!(follows(Origin::Answer("SELECT_MFA_TYPE"), &challenge(ChallengeNameType::SoftwareTokenMfa)));
        assert!(!follows(Origin::Answer("SOFTWARE_TOKEN_MFA"), &challenge(ChallengeNameType::SmsMfa)));
        assert!(follows(Origin::Answer("DEVICE_SRP_AUTH"), &challenge(ChallengeNameType::DevicePasswordVerifier)));
        // Errors and tokens may follow anything.
        assert!(follows(Origin::Answer("SMS_MFA"), &Err(wrong_password())));
    }
}
