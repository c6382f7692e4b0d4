//! One attempt of a webhook delivery over HTTP: a `POST` of the JSON body with its Standard Webhooks
//! headers, answered within a deadline ([`DELIVERY_TIMEOUT`] in production), no redirect followed,
//! no proxy, and at most an excerpt of the answer's body read. Every name is resolved by a resolver
//! that refuses it when any of its addresses is one the deployment does not let webhooks reach —
//! at every connection, so a name that turns to a private address after the endpoint was checked
//! (DNS rebinding) is refused too; an address written in the URL is checked before sending.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::redirect::Policy;

use crate::domain::webhook::{Answer, DELIVERY_TIMEOUT, Reach, Target};

/// The most bytes of an answer's body kept for the delivery log.
pub const EXCERPT_BYTES: usize = 1024;

/// Idle connections kept per receiver host (deliveries to one endpoint reuse them).
const IDLE_PER_HOST: usize = 4;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer, as the retry rules read it.
    pub answer: Answer,
    /// From sending the request to the answer's head (or to the failure).
    pub latency: Duration,
    /// The start of the answer's body (UTF-8, lossy), or what went wrong when there was no answer.
    pub excerpt: String,
}

/// Sends webhook deliveries.
#[derive(Debug, Clone)]
pub struct WebhookHttp {
    client: reqwest::Client,
    reach: Reach,
}

impl WebhookHttp {
    /// A sender to what `reach` allows, each attempt answered within [`DELIVERY_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS roots to load, say).
    pub fn new(reach: Reach) -> Result<Self, reqwest::Error> {
        Self::with_timeout(reach, DELIVERY_TIMEOUT)
    }

    /// A sender whose attempts are answered within `timeout` (tests use a short one).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn with_timeout(reach: Reach, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .dns_resolver(Arc::new(GuardedResolver { reach }))
            .build()?;
        Ok(Self { client, reach })
    }

    /// Posts `body` to `target` with `headers` (the Standard Webhooks ones) and reads the answer.
    /// Never fails: a refused address, a connection error or a timeout is an [`Attempt`] too.
    pub async fn send(&self, target: &Target, headers: &[(&'static str, String)], body: Bytes) -> Attempt {
        let started = Instant::now();
        if target.check(self.reach).is_err() {
            return unreachable(started, "the address is one webhooks may not reach".to_owned());
        }
        let mut request = HeaderMap::with_capacity(headers.len() + 2);
        request.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request.insert(USER_AGENT, HeaderValue::from_static(concat!("Ordo-Webhooks/", env!("CARGO_PKG_VERSION"))));
        for (name, value) in headers {
            // Checked rather than `from_static`, which panics on a name that is not a header name.
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Ok(name), Ok(value)) => {
                    request.insert(name, value);
                }
                _ => return unreachable(started, format!("the header {name} cannot be sent")),
            }
        }
        let response = match self.client.post(target.url().clone()).headers(request).body(body).send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Attempt {
                    answer: Answer::Timeout,
                    latency: started.elapsed(),
                    excerpt: ordo_error::with_causes(&error),
                };
            }
            Err(error) => return unreachable(started, ordo_error::with_causes(&error)),
        };
        let latency = started.elapsed();
        let code = response.status().as_u16();
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(retry_after);
        let excerpt = excerpt(response).await;
        Attempt { answer: Answer::Status { code, retry_after }, latency, excerpt }
    }
}

/// A `Retry-After` value (RFC 9110): seconds, or the HTTP date to wait until (a date past is no
/// wait). Anything else is ignored.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let until = httpdate::parse_http_date(value).ok()?;
    Some(until.duration_since(SystemTime::now()).unwrap_or_default())
}

/// An attempt that reached no receiver.
fn unreachable(started: Instant, why: String) -> Attempt {
    Attempt { answer: Answer::Unreachable, latency: started.elapsed(), excerpt: why }
}

/// The first [`EXCERPT_BYTES`] of the body; the rest is never read (the connection is dropped
/// rather than reused when more was sent).
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Resolves names with the system's resolver and refuses a name when any of its addresses is one
/// `reach` does not allow (a receiver that answers at a public and a private address is refused
/// rather than half trusted).
#[derive(Debug)]
struct GuardedResolver {
    reach: Reach,
}

/// A name refused by [`GuardedResolver`].
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which webhooks may not reach")]
struct Refused {
    name: String,
    ip: std::net::IpAddr,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach;
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs.iter().find(|addr| !reach.allows(addr.ip())) {
                return Err(Box::new(Refused { ip: refused.ip(), name }) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
