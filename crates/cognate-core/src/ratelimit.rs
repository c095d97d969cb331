//! Request-rate limits per Cognito quota category (UserAuthentication, UserCreation, ...),
//! off by default for local use. Counters are fixed one-second windows kept in the store, so
//! every node sharing a PostgreSQL database enforces one limit together.

use cognate_api::{ErrorCode, Operation};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

macro_rules! quotas {
    ($($(#[$meta:meta])* $name:ident = $per_second:literal,)*) => {
        /// Cognito's quota categories (per account and Region); an operation's is declared on
        /// its line in `operations!`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Quota {
            $($(#[$meta])* $name,)*
            /// Not rate-limited by Cognate.
            Unmetered,
        }

        impl Quota {
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Quota::$name => Some(stringify!($name)),)*
                    Quota::Unmetered => None,
                }
            }
        }

        /// Cognito's default requests per second for each category.
        pub const DEFAULTS: &[(&str, u64)] = &[$((stringify!($name), $per_second)),*];
    };
}

quotas! {
    UserAuthentication = 120,
    // RespondToAuthChallenge has its own allowance of three times UserAuthentication.
    UserAuthenticationChallenge = 360,
    UserCreation = 50,
    // AdminLinkProviderForUser, AdminDisableProviderForUser.
    UserFederation = 25,
    UserAccountRecovery = 30,
    UserRead = 120,
    UserUpdate = 25,
    UserToken = 120,
    UserResourceRead = 50,
    UserResourceUpdate = 25,
    UserList = 30,
    UserPoolRead = 15,
    UserPoolUpdate = 15,
    UserPoolResourceRead = 20,
    UserPoolResourceUpdate = 15,
    UserPoolClientRead = 15,
    UserPoolClientUpdate = 15,
    // Identity pools meter their busiest operations one by one.
    IdentityGetId = 25,
    IdentityGetOpenIdToken = 200,
    IdentityGetCredentialsForIdentity = 200,
    IdentityGetOpenIdTokenForDeveloperIdentity = 200,
}

/// Counts the request against its category and refuses it past the limit, as Cognito does
/// (`TooManyRequestsException: Rate exceeded`, which SDKs retry with back-off).
pub async fn check(ctx: &Ctx, op: &Operation, quota: Quota) -> ApiResult<()> {
    let config = &ctx.settings().rate_limits;
    if !config.enabled || !op.errors.contains(&ErrorCode::TooManyRequestsException) {
        return Ok(());
    }
    let Some(category) = quota.name() else { return Ok(()) };
    let limit = config
        .per_second
        .get(category)
        .copied()
        .or_else(|| DEFAULTS.iter().find(|(name, _)| *name == category).map(|(_, default)| *default));
    let Some(limit) = limit else { return Ok(()) };
    let now = ctx.now_ms();
    let window = now - now.rem_euclid(1000);
    let key = format!("rate:{category}");
    let count = ctx.store(move |s| s.hit_rate_window(&key, window, now)).await?;
    if count > limit {
        return Err(ApiError::new(ErrorCode::TooManyRequestsException, "Rate exceeded"));
    }
    Ok(())
}
