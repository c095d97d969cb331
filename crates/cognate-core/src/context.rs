//! What every request can reach ([`Core`]: the settings, the store, the key ring, the clock)
//! and one request's view of it ([`Ctx`]: who is calling, in which region, for which
//! operation, at what time). Passed by handle (never a global), so tests can run several
//! servers in one process.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cognate_crypto::envelope::Keyring;
use cognate_store::{Store, StoreResult};

use crate::error::{ApiError, ApiResult};
use crate::settings::Settings;

/// Time is injected so expiry logic is testable without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system clock shifted by a fixed number of seconds (`--clock-offset-seconds`), for
/// seeing expiry in development without waiting.
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> SystemTime {
        let shift = std::time::Duration::from_secs(self.0.unsigned_abs());
        let now = SystemTime::now();
        if self.0 >= 0 {
            now + shift
        } else {
            now.checked_sub(shift).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

pub struct Core {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub clock: Arc<dyn Clock>,
    /// Parsed signing keys (immutable once stored, so safe to keep per node).
    pub keys: crate::jwt::KeyCache,
    /// Woken when a Cognito Sync change is queued for delivery (`sync_delivery`).
    pub sync_changes: tokio::sync::Notify,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Random per process: names this node as the holder of an import job's lease.
    pub node_id: String,
    /// Fetches external identity providers' keys.
    pub fetch: Arc<dyn crate::fetch::Fetch>,
    /// External identity providers' keys, by URL (refetched after ten minutes).
    pub jwks: crate::fetch::JwksCache,
}

/// Who made the request, as the protocol layer established it. Each line of `operations!`
/// declares the kinds it accepts ([`PrincipalKind`]); a request by any other kind is refused
/// before the operation runs.
#[derive(Clone, Debug)]
pub enum Principal {
    /// SigV4 with a long-term access key (from the config today).
    Iam { access_key_id: String },
    /// SigV4 with temporary credentials issued to an identity of an identity pool.
    #[allow(dead_code, reason = "the identity scopes Cognito Sync calls to their own data (issue 12)")]
    Identity { access_key_id: String, identity_pool_id: String, identity_id: String },
    /// An unsigned call carrying a user's access token (GetUser, ChangePassword, ...). The
    /// token is verified by [`crate::access::authenticate`], which every such
    /// operation calls first.
    AccessToken,
    /// An unsigned call naming an app client (SignUp, InitiateAuth, ...): the client, and its
    /// secret through SECRET_HASH when it has one, are checked by the operation.
    AppClient,
    /// An unsigned call that names no client and carries no token.
    Anonymous,
    /// Cognate acting on its own behalf (seeding, export, background import jobs).
    System,
}

/// The kinds of [`Principal`], as `operations!` lines list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    Iam,
    Identity,
    AccessToken,
    AppClient,
    Anonymous,
}

impl Principal {
    pub fn kind(&self) -> Option<PrincipalKind> {
        match self {
            Principal::Iam { .. } => Some(PrincipalKind::Iam),
            Principal::Identity { .. } => Some(PrincipalKind::Identity),
            Principal::AccessToken => Some(PrincipalKind::AccessToken),
            Principal::AppClient => Some(PrincipalKind::AppClient),
            Principal::Anonymous => Some(PrincipalKind::Anonymous),
            Principal::System => None,
        }
    }
}

/// One request's view of the server.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<Core>,
    pub request_id: String,
    pub principal: Principal,
    /// The region the request addresses: its SigV4 credential scope's, or the server's
    /// default region for unsigned calls and Cognate's own work. New ids and ARNs carry it.
    pub region: String,
    /// The operation being served (None for Cognate's own work): its modelled errors decide
    /// how a give-up is reported (see [`crate::records::gave_up_on_conflicts`]).
    pub op: Option<&'static cognate_api::Operation>,
    /// The request's time, read once so that everything one request stamps agrees.
    pub now: SystemTime,
    /// The request's `ClientMetadata`, which Cognito hands to the Lambda triggers it runs.
    pub client_metadata: Option<serde_json::Value>,
    /// A sign-in on the hosted pages: the tokens its steps make are not handed out (the
    /// relying party exchanges a code for its own), so PreTokenGeneration waits for that.
    pub hosted_sign_in: bool,
}

impl Ctx {
    /// A context for work Cognate does on its own behalf (seeding, export, import jobs).
    pub fn system(state: &Arc<Core>, label: &str) -> Ctx {
        Ctx {
            state: Arc::clone(state),
            request_id: label.to_owned(),
            principal: Principal::System,
            region: state.settings.region.clone(),
            op: None,
            now: state.clock.now(),
            client_metadata: None,
            hosted_sign_in: false,
        }
    }

    /// Whether a resource of `region` is visible to this request: a signed request sees its
    /// credential scope's region only, as in AWS; unsigned calls and Cognate's own work find
    /// resources by id in any region.
    pub fn sees(&self, region: Option<&str>) -> bool {
        match self.principal {
            Principal::Iam { .. } | Principal::Identity { .. } => region == Some(self.region.as_str()),
            _ => true,
        }
    }

    /// A listing's resources of this request's region: ids start with `<region><separator>`
    /// and sort together, so a page starts at that prefix and stops where it ends.
    pub fn region_page_floor(&self, after: Option<String>, separator: char) -> (String, Option<String>) {
        let prefix = format!("{}{separator}", self.region);
        let floor = match after {
            Some(token) if token > prefix => token,
            _ => prefix.clone(),
        };
        (prefix, Some(floor))
    }

    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    pub fn now_ms(&self) -> i64 {
        millis(self.now)
    }

    /// Runs blocking store work off the async runtime.
    pub async fn store<R, F>(&self, work: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<R> + Send + 'static,
    {
        let store = Arc::clone(&self.state.store);
        match tokio::task::spawn_blocking(move || work(store.as_ref())).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(join) => Err(ApiError::internal(join)),
        }
    }
}

pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Epoch milliseconds to the JSON protocols' timestamp (fractional epoch seconds).
pub fn timestamp(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
