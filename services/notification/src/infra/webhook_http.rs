//! One attempt of a webhook delivery over HTTP: a `POST` of the JSON body with its Standard Webhooks
//! headers, answered within a deadline ([`DELIVERY_TIMEOUT`] in production), no redirect followed,
//! no proxy, and at most an excerpt of the answer's body read. Every name is resolved by a resolver
//! that refuses it when any of its addresses is one the deployment does not let webhooks reach —
//! at every connection, so a name that turns to a private address after the endpoint was checked
//! (DNS rebinding) is refused too; an address written in the URL is checked before sending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::redirect::Policy;

use super::outbound::{GuardedResolver, excerpt, retry_after};
use crate::app::webhook_ports::{AddressCheck, WebhookSend};
use crate::domain::webhook::{Answer, Attempt, DELIVERY_TIMEOUT, Reach, Target, TargetError};

/// How long a request that makes or changes an endpoint waits for its name to resolve: well within
/// the callers' own deadline (the gateway's is 5 s).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes of an answer's body kept for the delivery log.
pub const EXCERPT_BYTES: usize = 1024;

/// Idle connections kept per receiver host (deliveries to one endpoint reuse them).
const IDLE_PER_HOST: usize = 4;

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
            .dns_resolver(Arc::new(GuardedResolver::new(reach, "webhooks")))
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
        let excerpt = excerpt(response, EXCERPT_BYTES).await;
        Attempt { answer: Answer::Status { code, retry_after }, latency, excerpt }
    }
}

/// An attempt that reached no receiver.
fn unreachable(started: Instant, why: String) -> Attempt {
    Attempt { answer: Answer::Unreachable, latency: started.elapsed(), excerpt: why }
}

#[async_trait::async_trait]
impl WebhookSend for WebhookHttp {
    async fn send(&self, target: &Target, headers: &[(&'static str, String)], body: Bytes) -> Attempt {
        WebhookHttp::send(self, target, headers, body).await
    }
}

#[async_trait::async_trait]
impl AddressCheck for WebhookHttp {
    /// The address written in the URL, or every address its name resolves to now, within
    /// [`LOOKUP_TIMEOUT`]. A name that does not resolve (yet, or in time) is taken: each delivery
    /// resolves it again and is refused then if it points where webhooks may not go.
    async fn check(&self, target: &Target) -> Result<(), TargetError> {
        target.check(self.reach)?;
        if target.ip().is_some() {
            return Ok(());
        }
        let Some(host) = target.url().host_str() else { return Err(TargetError::Invalid) };
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 0))).await;
        match lookup {
            Ok(Ok(addrs)) => {
                for addr in addrs {
                    if !self.reach.allows(addr.ip()) {
                        return Err(TargetError::Unreachable);
                    }
                }
                Ok(())
            }
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }
}
