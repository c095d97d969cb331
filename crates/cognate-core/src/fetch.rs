//! What the domain needs from other services over HTTP(S), as a trait the server implements
//! (its client) and tests can replace; and the cache of external identity providers' keys.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a fetched JWKS is used before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);

/// What an HTTP call answers, or why it failed.
pub type Fetched<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Talks HTTP(S) to other services: the server's client, or a test's stand-in.
pub trait Fetch: Send + Sync {
    /// GETs a document (2xx only).
    fn get<'a>(&'a self, url: &'a str) -> Fetched<'a>;
    /// POSTs a form and returns the answer's body whatever its status (AWS Query APIs answer
    /// errors as documents).
    fn post_form<'a>(&'a self, url: &'a str, form: String) -> Fetched<'a>;
    /// Sends `request` as it is (its headers include `host`): the status and the body,
    /// whatever the status.
    fn send(&self, request: Outgoing) -> Answered<'_>;
    /// [`Fetch::send`] with the answer's headers too (Lambda's Invoke API says a function
    /// failed in one).
    fn exchange(&self, request: Outgoing) -> Exchanged<'_>;
}

/// An answer with its headers (names in lower case).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What [`Fetch::exchange`] answers.
pub type Exchanged<'a> = Pin<Box<dyn Future<Output = Result<Answer, String>> + Send + 'a>>;

/// A request to another service; header names in lower case.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What [`Fetch::send`] answers: the status and body, or why there was none.
pub type Answered<'a> = Pin<Box<dyn Future<Output = Result<(u16, String), String>> + Send + 'a>>;

/// A JWKS's `keys`, shared by the logins that verify against them.
pub type Keys = Arc<Vec<Value>>;

/// JWKS documents by URL, with when they were fetched.
#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, (Instant, Keys)>>,
}

impl JwksCache {
    pub fn get(&self, url: &str) -> Option<Arc<Vec<Value>>> {
        let entries = self.entries.lock().ok()?;
        entries.get(url).filter(|(at, _)| at.elapsed() < JWKS_TTL).map(|(_, keys)| Arc::clone(keys))
    }

    pub fn put(&self, url: &str, keys: Arc<Vec<Value>>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(url.to_owned(), (Instant::now(), keys));
        }
    }
}
