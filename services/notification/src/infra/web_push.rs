//! Web Push: one message to one browser subscription, through the push service its endpoint names
//! (RFC 8030), its payload encrypted for the subscription's keys (RFC 8291, `aes128gcm`) and the
//! request signed with the deployment's VAPID key (RFC 8292). The `web-push` crate builds and
//! encrypts the request; it is sent with our own reqwest client, so no second HTTP stack is built.
//! The encryption runs in the `ece` crate, whose only backend is OpenSSL: this adapter links the
//! system's libssl (through `openssl-sys`), the one part of the service that does.
//!
//! An endpoint is as untrusted as a webhook URL: it must be `https` (plain `http` only where the
//! deployment lets messages reach loopback, for tests), an address written in it is checked before
//! sending, and every name is resolved by a resolver that refuses it when any of its addresses is
//! one the deployment does not allow — at every connection, so DNS rebinding is refused too. No
//! redirect is followed, no proxy used, every message is answered within a deadline, and at most an
//! excerpt of an answer's body is read.
//!
//! What an answer means ([`PushOutcome`]): `2xx` delivered; `404` or `410` the subscription is
//! gone; `429`, `5xx`, a timeout or a connection error worth another try (after the `Retry-After`
//! when given); anything else (`400`, `401`/`403` for a key the subscription was not made with, `413`,
//! a redirect) and a message this side will not send (a payload over [`MAX_PAYLOAD_BYTES`], a
//! subscription [`Subscription::check`] refuses, an address the deployment does not allow) is
//! rejected and not worth another try.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::redirect::Policy;
use url::{Host, Url};
use web_push::{ContentEncoding, PartialVapidSignatureBuilder, SubscriptionInfo, WebPushError, WebPushMessageBuilder};

use ordo_error::FieldViolation;

use super::outbound::{GuardedResolver, excerpt, refused, retry_after};
use crate::app::push::{PushChannel, PushResult, PushTarget};
use crate::domain::webhook::Reach;

/// The largest payload sent, in bytes. RFC 8291 lets a push service refuse a body over 4096 bytes,
/// which leaves 3993 bytes of plaintext beside the 86-byte header, the 16-byte tag and the padding
/// delimiter; `ece` pads to a multiple of 128 bytes, which leaves 3967; and the `web-push` crate
/// refuses more than 3052 (what Google's and Mozilla's push services took), which is the limit.
pub const MAX_PAYLOAD_BYTES: usize = 3052;

/// The longest endpoint, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// The longest time a push service is asked to keep an undelivered message (`TTL`): four weeks,
/// the most Firebase Cloud Messaging keeps one. A longer `ttl` asks for this.
pub const MAX_TTL: Duration = Duration::from_secs(28 * 24 * 3600);

/// The most bytes of a rejecting answer's body kept for the reason.
pub const EXCERPT_BYTES: usize = 512;

/// Idle connections kept per push service. Every message of a deployment goes to a handful of
/// hosts (Google's, Mozilla's, Apple's, Microsoft's), so more are kept than for webhooks.
const IDLE_PER_HOST: usize = 16;

/// Base64url (RFC 4648 §5), written without padding and read with or without it.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest `p256dh` or `auth` text read: 65 or 16 bytes in base64url with padding, and some.
const MAX_KEY_TEXT: usize = 100;

/// The deployment's VAPID key (RFC 8292): a P-256 private key, which signs every request, and the
/// subject push services may contact about them.
#[derive(Clone)]
pub struct VapidKey {
    signer: PartialVapidSignatureBuilder,
    public_key: String,
    subject: String,
}

/// Why a VAPID key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VapidKeyError {
    /// Not the base64url encoding of 32 bytes.
    #[error("a VAPID private key is the base64url encoding of a raw 32-byte P-256 private key")]
    Encoding,
    /// 32 bytes, but not a P-256 private key (zero, or not below the group order).
    #[error("the VAPID private key is not a P-256 private key")]
    Key,
    /// Not a `mailto:` or `https:` URL.
    #[error("a VAPID subject is a mailto: address or an https: URL")]
    Subject,
}

impl VapidKey {
    /// The key whose private part is `private_key`, the base64url encoding (RFC 4648 §5, padding
    /// optional) of the raw 32-byte scalar, as `web-push generate-vapid-keys` prints it, and
    /// `subject`, a `mailto:` address or an `https:` URL where the push services may reach the
    /// deployment's operators.
    ///
    /// # Errors
    ///
    /// [`VapidKeyError`] naming what is wrong.
    pub fn new(private_key: &str, subject: &str) -> Result<Self, VapidKeyError> {
        let private_key = private_key.trim();
        if private_key.len() > 64 {
            return Err(VapidKeyError::Encoding);
        }
        let raw = BASE64URL.decode(private_key).map_err(|_| VapidKeyError::Encoding)?;
        // `web-push` would panic on a length other than 32 (a slice made into an array).
        if raw.len() != 32 {
            return Err(VapidKeyError::Encoding);
        }
        let signer = web_push::VapidSignatureBuilder::from_base64_no_sub(&BASE64URL.encode(&raw))
            .map_err(|_| VapidKeyError::Key)?;
        let public_key = BASE64URL.encode(signer.get_public_key());
        let subject = subject.trim();
        if !valid_subject(subject) {
            return Err(VapidKeyError::Subject);
        }
        Ok(Self { signer, public_key, subject: subject.to_owned() })
    }

    /// The public key, base64url without padding of the uncompressed 65-byte point: what a
    /// browser's `pushManager.subscribe` takes as `applicationServerKey`.
    pub fn public_key(&self) -> String {
        self.public_key.clone()
    }

    /// The subject (`mailto:` or `https:`), as given.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A `mailto:` URL with an address, or an `https:` URL with a host and no credentials.
fn valid_subject(subject: &str) -> bool {
    if subject.len() > MAX_ENDPOINT_LEN {
        return false;
    }
    let Ok(url) = Url::parse(subject) else { return false };
    match url.scheme() {
        "mailto" => url.path().contains('@'),
        "https" => url.host().is_some() && url.username().is_empty() && url.password().is_none(),
        _ => false,
    }
}

/// A browser's push subscription (`PushSubscription.toJSON()`): the endpoint to post to and the
/// keys its messages are encrypted for, base64url as browsers give them.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The push service's URL for this subscription.
    pub endpoint: String,
    /// The browser's public key: an uncompressed P-256 point (65 bytes).
    pub p256dh: String,
    /// The authentication secret (16 bytes).
    pub auth: String,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// The endpoint is longer than [`MAX_ENDPOINT_LEN`] bytes.
    #[error("a push endpoint is at most {MAX_ENDPOINT_LEN} bytes")]
    EndpointTooLong,
    /// The endpoint is not an absolute `https` URL with a host (nor `http` where loopback is
    /// allowed).
    #[error("a push endpoint is an absolute https URL")]
    EndpointInvalid,
    /// The endpoint carries a user name or a password.
    #[error("a push endpoint carries no user name or password")]
    EndpointCredentials,
    /// The endpoint carries a fragment (`#...`).
    #[error("a push endpoint carries no fragment")]
    EndpointFragment,
    /// The address written in the endpoint is one the deployment does not send to.
    #[error("this deployment does not send push messages to that address")]
    EndpointUnreachable,
    /// `p256dh` is not an uncompressed P-256 point in base64url.
    #[error("p256dh is the base64url encoding of an uncompressed P-256 point (65 bytes starting with 0x04)")]
    P256dh,
    /// `auth` is not 16 bytes in base64url.
    #[error("auth is the base64url encoding of a 16-byte secret")]
    Auth,
}

/// A subscription as sent: its endpoint parsed and its keys in canonical base64url.
struct Checked {
    endpoint: Url,
    p256dh: String,
    auth: String,
}

impl Subscription {
    /// Whether messages may be sent to this subscription where `reach` is what the deployment
    /// allows: the endpoint at most [`MAX_ENDPOINT_LEN`] bytes, an absolute `https` URL (`http` only
    /// when `reach` allows loopback) without credentials or fragment, and its address, when it is
    /// written in the URL, one `reach` allows (a name is checked each time it is resolved); `p256dh`
    /// 65 bytes starting with `0x04`; `auth` 16 bytes. Whether the point is on the curve is found
    /// when a message is encrypted for it.
    ///
    /// # Errors
    ///
    /// [`SubscriptionError`] naming the first rule broken.
    pub fn check(&self, reach: Reach) -> Result<(), SubscriptionError> {
        self.checked(reach).map(drop)
    }

    fn checked(&self, reach: Reach) -> Result<Checked, SubscriptionError> {
        let endpoint = check_endpoint(&self.endpoint, reach)?;
        let p256dh = decode_key(&self.p256dh).filter(|key| key.len() == 65 && key[0] == 0x04);
        let Some(p256dh) = p256dh else { return Err(SubscriptionError::P256dh) };
        let Some(auth) = decode_key(&self.auth).filter(|auth| auth.len() == 16) else {
            return Err(SubscriptionError::Auth);
        };
        Ok(Checked { endpoint, p256dh: BASE64URL.encode(p256dh), auth: BASE64URL.encode(auth) })
    }
}

impl fmt::Debug for Subscription {
    /// The authentication secret is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &self.endpoint)
            .field("p256dh", &self.p256dh)
            .finish_non_exhaustive()
    }
}

fn check_endpoint(text: &str, reach: Reach) -> Result<Url, SubscriptionError> {
    if text.len() > MAX_ENDPOINT_LEN {
        return Err(SubscriptionError::EndpointTooLong);
    }
    let url = Url::parse(text).map_err(|_| SubscriptionError::EndpointInvalid)?;
    let scheme_allowed = match url.scheme() {
        "https" => true,
        "http" => reach.loopback,
        _ => false,
    };
    if !scheme_allowed || url.host().is_none() {
        return Err(SubscriptionError::EndpointInvalid);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SubscriptionError::EndpointCredentials);
    }
    if url.fragment().is_some() {
        return Err(SubscriptionError::EndpointFragment);
    }
    if !address_allowed(&url, reach) {
        return Err(SubscriptionError::EndpointUnreachable);
    }
    Ok(url)
}

/// Whether the address written in `url`, if it names one rather than a host name, is one `reach`
/// allows.
fn address_allowed(url: &Url, reach: Reach) -> bool {
    let ip: IpAddr = match url.host() {
        Some(Host::Ipv4(ip)) => ip.into(),
        Some(Host::Ipv6(ip)) => ip.into(),
        Some(Host::Domain(_)) => return true,
        None => return false,
    };
    reach.allows(ip)
}

fn decode_key(text: &str) -> Option<Vec<u8>> {
    if text.len() > MAX_KEY_TEXT {
        return None;
    }
    BASE64URL.decode(text.trim()).ok()
}

/// How soon a push service should deliver a message (RFC 8030 §5.3): a device low on battery may
/// wait for `High` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl From<Urgency> for web_push::Urgency {
    fn from(urgency: Urgency) -> Self {
        match urgency {
            Urgency::VeryLow => Self::VeryLow,
            Urgency::Low => Self::Low,
            Urgency::Normal => Self::Normal,
            Urgency::High => Self::High,
        }
    }
}

/// How sending a message went, and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service took the message (`2xx`, usually `201 Created`).
    Delivered,
    /// The subscription has expired or was withdrawn (`404` or `410`): remove it.
    Gone,
    /// Try again later (`429`, `5xx`, a timeout, a connection error), after `after` when the push
    /// service said (`Retry-After`).
    Retry { after: Option<Duration> },
    /// Not worth another try: why. Another `4xx` or a redirect (the reason holds its status and
    /// the start of its body), or a message never sent: a payload over [`MAX_PAYLOAD_BYTES`], a
    /// subscription [`Subscription::check`] refuses or whose keys cannot be encrypted for, an
    /// endpoint whose name resolves to an address the deployment does not allow.
    Rejected(String),
}

/// Sends Web Push messages.
#[derive(Debug, Clone)]
pub struct WebPush {
    client: reqwest::Client,
    key: VapidKey,
    reach: Reach,
}

impl WebPush {
    /// A sender signing with `key`, to push services at addresses `reach` allows, each message
    /// answered within `timeout`.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS roots to load, say).
    pub fn new(key: VapidKey, reach: Reach, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .dns_resolver(Arc::new(GuardedResolver::new(reach, "push messages")))
            .build()?;
        Ok(Self { client, key, reach })
    }

    /// The VAPID key messages are signed with.
    pub fn key(&self) -> &VapidKey {
        &self.key
    }

    /// Encrypts `payload` for `subscription` and posts it to its push service, to be kept there
    /// for up to `ttl` (at most [`MAX_TTL`]; whole seconds) until the browser comes online. Never
    /// fails: anything that goes wrong is a [`PushOutcome`] too.
    pub async fn send(
        &self,
        subscription: &Subscription,
        payload: &[u8],
        ttl: Duration,
        urgency: Urgency,
    ) -> PushOutcome {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return PushOutcome::Rejected(format!(
                "the payload is {} bytes, more than the {MAX_PAYLOAD_BYTES} a push message carries",
                payload.len()
            ));
        }
        let checked = match subscription.checked(self.reach) {
            Ok(checked) => checked,
            Err(error) => return PushOutcome::Rejected(error.to_string()),
        };
        let request = match self.request(&checked, payload, ttl, urgency) {
            Ok(request) => request,
            Err(why) => return PushOutcome::Rejected(why),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) if refused(&error) => return PushOutcome::Rejected(ordo_error::with_causes(&error)),
            Err(error) if error.is_builder() => return PushOutcome::Rejected(ordo_error::with_causes(&error)),
            Err(_) => return PushOutcome::Retry { after: None },
        };
        let status = response.status();
        match status.as_u16() {
            200..=299 => PushOutcome::Delivered,
            404 | 410 => PushOutcome::Gone,
            429 | 500..=599 => {
                let after =
                    response.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(retry_after);
                PushOutcome::Retry { after }
            }
            _ => {
                let body = excerpt(response, EXCERPT_BYTES).await;
                PushOutcome::Rejected(format!("the push service answered {status}: {body}"))
            }
        }
    }

    /// The signed, encrypted request, as `web-push` builds it, made a reqwest request: its method,
    /// URL, headers (but `Content-Length`, which reqwest writes from the body) and body.
    fn request(
        &self,
        checked: &Checked,
        payload: &[u8],
        ttl: Duration,
        urgency: Urgency,
    ) -> Result<reqwest::RequestBuilder, String> {
        let info = SubscriptionInfo::new(checked.endpoint.as_str(), checked.p256dh.as_str(), checked.auth.as_str());
        let mut signature = self.key.signer.clone().add_sub_info(&info);
        // `web-push` would take the audience from the scheme and host alone; RFC 8292 wants the
        // origin, with its port when that is not the scheme's.
        signature.add_claim("aud", checked.endpoint.origin().ascii_serialization());
        signature.add_claim("sub", self.key.subject.as_str());
        let signature = signature.build().map_err(|error| format!("the message cannot be signed: {error}"))?;

        let ttl = u32::try_from(ttl.min(MAX_TTL).as_secs()).unwrap_or(u32::MAX);
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_ttl(ttl);
        message.set_urgency(urgency.into());
        message.set_payload(ContentEncoding::Aes128Gcm, payload);
        message.set_vapid_signature(signature);
        let message = message.build().map_err(|error| match error {
            WebPushError::InvalidCryptoKeys => "the subscription's keys cannot be encrypted for".to_owned(),
            WebPushError::InvalidUri => "the push endpoint is not a URL that can be sent to".to_owned(),
            error => format!("the message cannot be built: {error}"),
        })?;
        let built = web_push::request_builder::build_request::<Vec<u8>>(message);

        let method = reqwest::Method::from_bytes(built.method().as_str().as_bytes())
            .map_err(|_| "the request's method cannot be sent".to_owned())?;
        // The URL sent is the one checked again here, as reqwest will read it: no reading of the
        // endpoint between `url` and `http` may reach an address `reach` does not allow.
        let url = Url::parse(&built.uri().to_string()).map_err(|_| "the push endpoint cannot be sent".to_owned())?;
        if !address_allowed(&url, self.reach) {
            return Err(SubscriptionError::EndpointUnreachable.to_string());
        }
        let mut headers = HeaderMap::with_capacity(built.headers().len() + 1);
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Ordo-WebPush/", env!("CARGO_PKG_VERSION"))));
        for (name, value) in built.headers() {
            let name = HeaderName::from_bytes(name.as_str().as_bytes())
                .map_err(|_| format!("the header {name} cannot be sent"))?;
            if name == CONTENT_LENGTH {
                continue;
            }
            let value =
                HeaderValue::from_bytes(value.as_bytes()).map_err(|_| format!("the header {name} cannot be sent"))?;
            headers.append(name, value);
        }
        Ok(self.client.request(method, url).headers(headers).body(built.into_body()))
    }
}

/// The push channel of the service: this key, these checks, this client.
#[async_trait::async_trait]
impl PushChannel for WebPush {
    fn public_key(&self) -> String {
        self.key.public_key()
    }

    fn check(&self, target: &PushTarget) -> Result<(), FieldViolation> {
        let subscription = subscription(target);
        subscription.check(self.reach).map_err(|error| {
            let field = match error {
                SubscriptionError::P256dh => "p256dh",
                SubscriptionError::Auth => "auth",
                _ => "endpoint",
            };
            FieldViolation::new(field, error.to_string())
        })
    }

    async fn send(&self, target: &PushTarget, payload: &[u8]) -> PushResult {
        match WebPush::send(self, &subscription(target), payload, MESSAGE_TTL, Urgency::Normal).await {
            PushOutcome::Delivered => PushResult::Delivered,
            PushOutcome::Gone => PushResult::Gone,
            PushOutcome::Retry { after } => PushResult::Retry(after),
            PushOutcome::Rejected(why) => PushResult::Rejected(why),
        }
    }
}

/// How long a push service keeps a message for a device that is offline: a notification a day old
/// is still worth showing.
const MESSAGE_TTL: Duration = Duration::from_secs(24 * 3600);

fn subscription(target: &PushTarget) -> Subscription {
    Subscription { endpoint: target.endpoint.clone(), p256dh: target.p256dh.clone(), auth: target.auth.clone() }
}
