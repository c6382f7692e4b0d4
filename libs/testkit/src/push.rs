//! A Web Push service on loopback (the only address tests send to) that does what a real one and the
//! browser behind it do: it checks each request's VAPID signature (RFC 8292) and decrypts its payload
//! (RFC 8291) with the keys of the browser it serves, then answers by the request's path.
//!
//! Test code: it panics on what a test did wrong (no free port, a poisoned lock).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ece::EcKeyComponents;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// The claims of a VAPID token the push service reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Claims {
    /// The push service's origin.
    pub aud: String,
    /// Who the sender's operator is (`mailto:` or `https:`).
    pub sub: String,
    /// When the token expires, seconds since the epoch.
    pub exp: u64,
}

/// One request the push service took: its path and headers, the VAPID claims and key it verified,
/// and the payload it decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's path.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// The `k` of its `Authorization: vapid` header: the sender's public key, base64url.
    pub vapid_key: String,
    /// The claims of its token.
    pub claims: Claims,
    /// The payload, decrypted.
    pub plaintext: Vec<u8>,
}

/// A browser's subscription, as `PushSubscription.toJSON()` gives it: its endpoint and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSubscription {
    /// The push service URL.
    pub endpoint: String,
    /// `keys.p256dh`: the browser's public key, base64url.
    pub p256dh: String,
    /// `keys.auth`: the authentication secret, base64url.
    pub auth: String,
}

/// A browser's subscription keys: what it gives the application server, and the private key and
/// secret it decrypts with.
pub struct Browser {
    keys: EcKeyComponents,
    auth: [u8; 16],
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with fresh keys.
    pub fn new() -> Self {
        let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        Self { keys: keys.raw_components().unwrap(), auth }
    }

    /// Its public key: an uncompressed P-256 point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.keys.public_key()
    }

    /// Its subscription at `endpoint`.
    pub fn subscription(&self, endpoint: &str) -> BrowserSubscription {
        BrowserSubscription {
            endpoint: endpoint.to_owned(),
            p256dh: URL_SAFE_NO_PAD.encode(self.keys.public_key()),
            auth: URL_SAFE_NO_PAD.encode(self.auth),
        }
    }
}

/// A push service on a free loopback port for one browser.
pub struct PushService {
    origin: String,
    subject: String,
    browser: Browser,
    received: Mutex<Vec<Received>>,
}

impl std::fmt::Debug for PushService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushService").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl PushService {
    /// Starts a push service on loopback whose senders sign with `subject`. Each `POST` must carry
    /// a VAPID signature for its origin and that subject (else 401) and a payload the browser
    /// decrypts (else 400); it is then recorded and answered by its path: `/push/gone` 410,
    /// `/push/unknown` 404, `/push/busy` 429 with `Retry-After: 120`, `/push/broken` 500,
    /// `/push/bad` 400 with a long reason, `/push/moved` a redirect, `/push/slow` 201 after two
    /// seconds, anything else 201.
    pub async fn start(subject: &str) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let browser = Browser::new();
        let service = Arc::new(Self { origin, subject: subject.to_owned(), browser, received: Mutex::default() });
        let app = Router::new().fallback(answer).with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        service
    }

    /// What it took so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// What it took once it has `count` messages (within 10 s).
    pub async fn received_once(&self, count: usize) -> Vec<Received> {
        for _ in 0..100 {
            if self.received().len() >= count {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the push service got {} messages, not {count}", self.received().len());
    }

    /// The URL of `path` on it.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Its origin, `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The browser it serves.
    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// Its browser's subscription at `path`.
    pub fn subscription(&self, path: &str) -> BrowserSubscription {
        self.browser.subscription(&self.endpoint(path))
    }
}

async fn answer(State(service): State<Arc<PushService>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (claims, vapid_key) = match verify_vapid(&headers, &service.origin, &service.subject) {
        Ok(verified) => verified,
        Err(why) => return (StatusCode::UNAUTHORIZED, format!("vapid: {why}")).into_response(),
    };
    let plaintext = match ece::decrypt(&service.browser.keys, &service.browser.auth, &body) {
        Ok(plaintext) => plaintext,
        Err(why) => return (StatusCode::BAD_REQUEST, format!("decrypt: {why}")).into_response(),
    };
    let path = uri.path().to_owned();
    service.received.lock().unwrap().push(Received { path: path.clone(), headers, vapid_key, claims, plaintext });
    match path.as_str() {
        "/push/gone" => StatusCode::GONE.into_response(),
        "/push/unknown" => StatusCode::NOT_FOUND.into_response(),
        "/push/busy" => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "120")]).into_response(),
        "/push/broken" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/push/bad" => (StatusCode::BAD_REQUEST, format!("{{\"reason\":\"{}\"}}", "x".repeat(10_000))).into_response(),
        "/push/moved" => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/push/elsewhere")]).into_response(),
        "/push/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::CREATED.into_response()
        }
        _ => (StatusCode::CREATED, [(header::LOCATION, "/messages/1")]).into_response(),
    }
}

/// Checks `Authorization: vapid t=<jwt>, k=<key>` as a push service does (RFC 8292): the ES256
/// token verifies with `k`, its audience is the push service's `origin`, its subject is `subject`,
/// and it expires within 24 hours. The claims and `k`.
fn verify_vapid(headers: &HeaderMap, origin: &str, subject: &str) -> Result<(Claims, String), String> {
    let value = headers.get(header::AUTHORIZATION).ok_or("no Authorization")?.to_str().map_err(|e| e.to_string())?;
    let params = value.strip_prefix("vapid ").ok_or("not the vapid scheme")?;
    let param = |name: &str| {
        params.split(',').map(str::trim).find_map(|p| p.strip_prefix(name)?.strip_prefix('=')).map(str::to_owned)
    };
    let (token, key) = (param("t").ok_or("no t")?, param("k").ok_or("no k")?);
    let point = URL_SAFE_NO_PAD.decode(&key).map_err(|e| e.to_string())?;
    if point.len() != 65 || point[0] != 0x04 {
        return Err("k is not an uncompressed P-256 point".to_owned());
    }
    let decoding =
        DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(&point[1..33]), &URL_SAFE_NO_PAD.encode(&point[33..]))
            .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    validation.sub = Some(subject.to_owned());
    let claims = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).map_err(|e| e.to_string())?.claims;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if claims.exp > now + 24 * 3600 {
        return Err(format!("exp {} is more than 24 h ahead", claims.exp));
    }
    Ok((claims, key))
}

/// A fresh VAPID private key: the raw scalar of a new P-256 key, 32 bytes in base64url, as
/// `--vapid-private-key` takes it.
pub fn vapid_private_key() -> String {
    let (keys, _) = ece::generate_keypair_and_auth_secret().unwrap();
    let scalar = keys.raw_components().unwrap().private_key().to_vec();
    let mut raw = [0u8; 32];
    raw[32 - scalar.len()..].copy_from_slice(&scalar);
    URL_SAFE_NO_PAD.encode(raw)
}
