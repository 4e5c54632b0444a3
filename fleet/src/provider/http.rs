//! A blocking HTTP client for admin APIs: timeouts, and retries with
//! backoff on 429, 5xx and unanswered requests.

use super::{Error, Settings};
use reqwest::blocking::{Client, RequestBuilder, Response};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// First wait between attempts; doubled each time.
const BACKOFF: Duration = Duration::from_millis(200);

/// A client for one admin API.
pub struct Http {
    client: Client,
    base: String,
    auth: Option<Auth>,
    attempts: u32,
}

/// How a token is sent. Never printed: it is only ever a header.
pub enum Auth {
    /// `authorization: Bearer TOKEN`.
    Bearer(String),
    /// A header of the API's own, like Kong's `Kong-Admin-Token`.
    Header(&'static str, String),
}

impl Http {
    /// A client sending `token`, when given, as a bearer token.
    pub fn new(base: &str, token: Option<String>, settings: &Settings) -> Result<Http, Error> {
        Http::with_auth(base, token.map(Auth::Bearer), settings)
    }

    /// A client sending `auth`, when given, with every request.
    pub fn with_auth(base: &str, auth: Option<Auth>, settings: &Settings) -> Result<Http, Error> {
        Ok(Http {
            client: shared_client(settings.timeout)?,
            base: base.to_string(),
            auth,
            attempts: settings.attempts.max(1),
        })
    }

    /// The base URL, for messages (it holds no secret: tokens are headers).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `build(client, url)`, retrying on 429, 5xx and unanswered
    /// requests. The request must be safe to repeat (every change is a
    /// compare-and-swap).
    pub fn send(
        &self,
        path: &str,
        build: impl Fn(&Client, String) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let url = format!("{}{path}", self.base);
        let mut wait = BACKOFF;
        let mut attempt = 1;
        loop {
            let mut req = build(&self.client, url.clone());
            match &self.auth {
                Some(Auth::Bearer(t)) => req = req.bearer_auth(t),
                Some(Auth::Header(name, t)) => req = req.header(*name, t),
                None => {}
            }
            let last = attempt >= self.attempts;
            match req.send() {
                Ok(r) if (r.status().as_u16() == 429 || r.status().is_server_error()) && !last => {}
                Ok(r) => return Ok(r),
                Err(e) if last => {
                    // Without the URL's query (none is sent) and never a header.
                    return Err(Error::Unreachable(format!("{url}: {}", describe(e))));
                }
                Err(_) => {}
            }
            std::thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }
}

/// The process's client for `timeout`, made on first use. Making one
/// loads the system's root certificates and starts the client's I/O
/// thread: several milliseconds of CPU that a fleet of 50 paid 50 times.
/// One client serves every gateway (its connection pool is per host and
/// port; tokens are per request headers, never client state).
fn shared_client(timeout: Duration) -> Result<Client, Error> {
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, Client>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(&timeout) {
        return Ok(c.clone());
    }
    let client = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        // Admin APIs are on loopback or named hosts, never via a proxy.
        .no_proxy()
        .build()
        .map_err(|e| Error::Failed(format!("cannot make an HTTP client: {e}")))?;
    clients.insert(timeout, client.clone());
    Ok(client)
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused or failed".to_string()
    } else {
        e.without_url().to_string()
    }
}
