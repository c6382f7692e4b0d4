//! What the adapters that call an address a user gave share (webhook receivers, push services): a
//! resolver that refuses a name pointing where the deployment may not send, the reading of a
//! `Retry-After`, and a bounded excerpt of an answer's body.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook::Reach;

/// Resolves names with the system's resolver and refuses a name when any of its addresses is one
/// `reach` does not allow (a host that answers at a public and a private address is refused rather
/// than half trusted). Given to a reqwest client, it runs at every connection, so a name that turns
/// to a private address after it was checked (DNS rebinding) is refused too. An address written in a
/// URL is never resolved: callers check it themselves before sending.
#[derive(Debug)]
pub(super) struct GuardedResolver {
    reach: Reach,
    /// What is refused, for the error (`webhooks`, `push messages`).
    what: &'static str,
}

impl GuardedResolver {
    /// A resolver for `what` (`webhooks`, say) to the networks `reach` allows.
    pub(super) fn new(reach: Reach, what: &'static str) -> Self {
        Self { reach, what }
    }
}

/// A name refused by [`GuardedResolver`].
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, which {what} may not reach")]
pub(super) struct Refused {
    name: String,
    ip: IpAddr,
    what: &'static str,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (reach, what) = (self.reach, self.what);
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs.iter().find(|addr| !reach.allows(addr.ip())) {
                return Err(Box::new(Refused { ip: refused.ip(), name, what }) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `error`, or an error under it, is a name [`GuardedResolver`] refused. An `io::Error`
/// hides the error it wraps from `source()`, so each one is opened as well.
pub(super) fn refused(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<Refused>() {
            return true;
        }
        if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
            && inner.is::<Refused>()
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// A `Retry-After` value (RFC 9110): seconds, or the HTTP date to wait until (a date past is no
/// wait). Anything else is ignored.
pub(super) fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let until = httpdate::parse_http_date(value).ok()?;
    Some(until.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The first `limit` bytes of the body (UTF-8, lossy); the rest is never read (the connection is
/// dropped rather than reused when more was sent).
pub(super) async fn excerpt(mut response: reqwest::Response, limit: usize) -> String {
    let mut kept = Vec::new();
    while kept.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
