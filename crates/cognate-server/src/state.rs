//! What every request can reach: the immutable config, the store, the key ring and the
//! clock. Passed by handle (never a global), so tests can run several servers in one process.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cognate_crypto::envelope::Keyring;
use cognate_store::{Store, StoreResult};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};

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

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub clock: Arc<dyn Clock>,
    /// Parsed signing keys (immutable once stored, so safe to keep per node).
    pub keys: crate::tokens::KeyCache,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Random per process: names this node as the holder of an import job's lease.
    pub node_id: String,
}

/// Who made the request, as the protocol layer established it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A SigV4-verified IAM principal.
    Iam { access_key_id: String },
    /// An unsigned request to a public operation (SignUp, InitiateAuth, ...).
    Anonymous,
}

/// One request's view of the server.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<AppState>,
    pub request_id: String,
    pub caller: Caller,
    /// The request's time, read once so that everything one request stamps agrees.
    pub now: SystemTime,
}

impl Ctx {
    pub fn config(&self) -> &Config {
        &self.state.config
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
