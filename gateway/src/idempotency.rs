//! `Idempotency-Key` on creating `POST`s (API.md, Conventions), kept in Redis so it holds across
//! gateway instances. The record lives at `<prefix>idem:<scope>:<sha256(key)>`, where the scope is
//! the caller's user id or `anon`, so two callers never see each other's keys.
//!
//! The first request claims the key atomically (`SET NX`) with an in-flight record that expires after
//! [`IN_FLIGHT_TTL`] (a gateway that dies mid-request cannot block the key for a day) and is renewed
//! while the request runs; when it ends, the status, the headers that matter and the body are stored
//! for [`RECORD_TTL`]. The claimed work runs on its own task, so a client that goes away mid-request
//! neither cancels it nor frees the key while its effect is unknown: the work finishes, its response
//! is stored, and the retry gets it (or `409` while it still runs). A retry with the
//! same key and the same request gets the stored response again (`Idempotent-Replayed: true`); the same
//! key with another request is a `422`; a retry while the first is in flight is a `409`. Outcomes that
//! had no effect — `5xx`, `429`, and responses marked [`NoEffect`] (an upload whose body broke off) —
//! are not stored: the key is released so the client may retry. A
//! request refused before it runs (bad JSON, wrong content type) claims nothing, like Stripe.
//!
//! The fingerprint is SHA-256 over the key, method, path and the body as canonical JSON (object keys
//! sorted, whitespace dropped), so a retry that re-serializes the same body still matches. The key is
//! part of the hash and stored only hashed, so a Redis dump does not let anyone test guesses against
//! a body (which may hold a password).

use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ordo_platform::redis::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response.
pub(crate) const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a finished request's response is replayed (API.md: 24 h).
const RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim lasts when its request never finishes (the gateway died): well over any backend
/// timeout, well under a day.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);
/// How often a running request renews its claim: several times per [`IN_FLIGHT_TTL`], so a slow
/// Redis round trip cannot let it lapse.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// Longest key accepted (API.md: 1..255 characters).
const MAX_KEY_CHARS: usize = 255;
/// The response headers replayed with the body.
const STORED_HEADERS: [HeaderName; 3] = [header::LOCATION, header::ETAG, header::CONTENT_TYPE];
/// Largest response body stored (responses are small JSON documents).
const MAX_STORED_BODY: usize = 1024 * 1024;

/// Claims the key if it is free (returns nil), else returns the record that holds it.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end
          return redis.call('GET', KEYS[1])",
    )
});
/// Replaces our in-flight record with the final one, unless the claim expired and was taken over.
static COMPLETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1
          end
          return 0",
    )
});
/// Renews our in-flight record's expiry, unless the claim expired and was taken over.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
          return 0",
    )
});
/// Deletes our in-flight record, unless the claim expired and was taken over.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

/// A validated `Idempotency-Key` value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

impl IdempotencyKey {
    /// 1..255 characters of visible ASCII (what an HTTP header value can carry as text).
    pub(crate) fn parse(value: &HeaderValue) -> Result<Self, ApiError> {
        let text = value.to_str().map_err(|_| bad_key())?;
        if text.is_empty() || text.len() > MAX_KEY_CHARS {
            return Err(bad_key());
        }
        Ok(Self(text.to_owned()))
    }
}

fn bad_key() -> ApiError {
    ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters.".to_owned())
}

/// The optional `Idempotency-Key` of a request (`400` when present but invalid).
#[derive(Debug, Clone)]
pub(crate) struct MaybeIdempotencyKey(pub(crate) Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeIdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.headers.get(IDEMPOTENCY_KEY).map(IdempotencyKey::parse).transpose().map(MaybeIdempotencyKey)
    }
}

/// Whose keys a key is looked up among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Unauthenticated requests (register).
    Anonymous,
    /// One user's requests.
    User(Uuid),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anon"),
            Self::User(id) => write!(f, "{id}"),
        }
    }
}

/// What identifies a request for idempotency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSignature<'a> {
    /// The method.
    pub(crate) method: &'a Method,
    /// The path, as routed.
    pub(crate) path: &'a str,
    /// The body as received.
    pub(crate) body: &'a [u8],
}

/// The Redis key of `key` in `scope`.
pub(crate) fn redis_key(prefix: &str, scope: Scope, key: &IdempotencyKey) -> String {
    format!("{prefix}idem:{scope}:{}", hex::encode(Sha256::digest(key.0.as_bytes())))
}

/// SHA-256 (hex) over the key, method, path and canonical body, each length-prefixed so no two
/// different requests can produce the same input.
pub(crate) fn fingerprint(key: &IdempotencyKey, request: RequestSignature<'_>) -> String {
    let canonical =
        serde_json::from_slice::<serde_json::Value>(request.body).ok().map(|value| canonical_json(&value).into_bytes());
    let body = canonical.as_deref().unwrap_or(request.body);
    let mut hash = Sha256::new();
    for part in [key.0.as_bytes(), request.method.as_str().as_bytes(), request.path.as_bytes(), body] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
fn canonical_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let members: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        scalar => scalar.to_string(),
    }
}

/// What Redis holds under a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    /// The first request is running.
    InFlight {
        /// Its fingerprint.
        fingerprint: String,
        /// A random id of the claim, so only its owner completes or releases it.
        owner: Uuid,
    },
    /// The first request finished; its response, to replay.
    Done {
        /// Its fingerprint.
        fingerprint: String,
        /// The status code.
        status: u16,
        /// The replayed headers (name, value).
        headers: Vec<(String, String)>,
        /// The body, base64.
        body: String,
    },
}

/// Marks a response whose request had no effect (say, an upload whose body broke off): it is not
/// stored, and the key is released for a retry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoEffect;

/// Runs `work` at most once per key: the first time, or replays what the first time answered.
/// Without a key, just runs it.
///
/// With a key, `work` runs on a task of its own that settles the key whatever happens to this
/// future: dropping it (the client went away) leaves the work to finish and its response to be
/// stored for the retry.
pub(crate) async fn run<F>(
    state: &AppState,
    key: Option<IdempotencyKey>,
    scope: Scope,
    request: RequestSignature<'_>,
    work: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Response> + Send + 'static,
{
    let Some(key) = key else { return Ok(work.await) };
    let fingerprint = fingerprint(&key, request);
    let redis_key = redis_key(state.redis_prefix(), scope, &key);
    let in_flight = to_json(&Record::InFlight { fingerprint: fingerprint.clone(), owner: Uuid::new_v4() })?;
    let redis = state.redis();
    // From the claim on, nothing here may be cancelled: a claim taken but never settled would hold
    // the key until it expires. So the claim, the work and the settling run on their own task.
    let span = tracing::Span::current();
    let outcome = tokio::spawn(tracing::Instrument::instrument(
        claim_run_settle(redis, redis_key, in_flight, fingerprint, work),
        span,
    ));
    outcome.await.map_err(|error| ApiError::Internal(anyhow::anyhow!("idempotent request failed: {error}")))?
}

async fn claim_run_settle<F>(
    mut redis: ConnectionManager,
    redis_key: String,
    in_flight: String,
    fingerprint: String,
    work: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Response>,
{
    match claim(&mut redis, &redis_key, &in_flight).await? {
        None => {
            let claim = Claim { redis, key: redis_key, in_flight, settled: false };
            let response = claim.renewed_while(work).await;
            Ok(claim.settle(fingerprint, response).await)
        }
        Some(existing) => match serde_json::from_str::<Record>(&existing) {
            Ok(Record::InFlight { fingerprint: first, .. }) if first == fingerprint => {
                Err(ApiError::IdempotencyKeyInUse)
            }
            Ok(Record::Done { fingerprint: first, status, headers, body }) if first == fingerprint => {
                replay(status, &headers, &body)
            }
            Ok(_) => Err(ApiError::IdempotencyKeyReused),
            Err(error) => Err(ApiError::Internal(anyhow::anyhow!("unreadable idempotency record: {error}"))),
        },
    }
}

#[tracing::instrument(skip_all, fields(key = %redis_key))]
async fn claim(redis: &mut ConnectionManager, redis_key: &str, in_flight: &str) -> Result<Option<String>, ApiError> {
    CLAIM
        .key(redis_key)
        .arg(in_flight)
        .arg(IN_FLIGHT_TTL.as_secs())
        .invoke_async(redis)
        .await
        .map_err(|error| ApiError::Unavailable(format!("idempotency claim in Redis: {error}")))
}

fn to_json(record: &Record) -> Result<String, ApiError> {
    serde_json::to_string(record).map_err(|error| ApiError::Internal(error.into()))
}

fn replay(status: u16, headers: &[(String, String)], body: &str) -> Result<Response, ApiError> {
    let corrupt = |what: &str| ApiError::Internal(anyhow::anyhow!("corrupt idempotency record: {what}"));
    let status = StatusCode::from_u16(status).map_err(|_| corrupt("status"))?;
    let body = BASE64.decode(body).map_err(|_| corrupt("body"))?;
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str()).map_err(|_| corrupt("header name"))?;
        let value = HeaderValue::try_from(value.as_str()).map_err(|_| corrupt("header value"))?;
        response.headers_mut().insert(name, value);
    }
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

/// A key this request claimed. Settled when its work ends; released in the background if the work
/// is dropped unsettled (it panicked), so a retry need not wait for the claim to expire.
struct Claim {
    redis: ConnectionManager,
    key: String,
    in_flight: String,
    settled: bool,
}

impl Claim {
    /// Runs `work`, renewing the in-flight record every [`RENEW_EVERY`] until it ends: a request
    /// that runs long keeps its key, so no retry runs beside it.
    async fn renewed_while<F: Future<Output = Response>>(&self, work: F) -> Response {
        tokio::pin!(work);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
        loop {
            tokio::select! {
                response = &mut work => return response,
                _ = renew.tick() => self.renew().await,
            }
        }
    }

    #[tracing::instrument(skip_all, fields(key = %self.key))]
    async fn renew(&self) {
        let result: redis::RedisResult<i64> = RENEW
            .key(&self.key)
            .arg(&self.in_flight)
            .arg(IN_FLIGHT_TTL.as_secs())
            .invoke_async(&mut self.redis.clone())
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, "could not renew an idempotency claim");
        }
    }

    /// Stores the response for replay (or releases the key when the outcome had no effect) and
    /// returns it.
    #[tracing::instrument(skip_all, fields(key = %self.key, status = response.status().as_u16()))]
    async fn settle(mut self, fingerprint: String, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        let status = parts.status;
        let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
            Ok(bytes) => bytes,
            Err(error) => {
                release(self.redis.clone(), &self.key, &self.in_flight).await;
                self.disarm();
                return ApiError::Internal(anyhow::anyhow!("could not buffer a response: {error}")).into_response();
            }
        };
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || parts.extensions.get::<NoEffect>().is_some()
        {
            release(self.redis.clone(), &self.key, &self.in_flight).await;
        } else {
            let headers = STORED_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(name)?.to_str().ok()?;
                    Some((name.as_str().to_owned(), value.to_owned()))
                })
                .collect();
            let done = Record::Done { fingerprint, status: status.as_u16(), headers, body: BASE64.encode(&bytes) };
            match to_json(&done) {
                Ok(done) => self.complete(&done).await,
                Err(_) => release(self.redis.clone(), &self.key, &self.in_flight).await,
            }
        }
        // Only now: if this future is dropped before, `Drop` releases the claim (a no-op once the
        // record is complete, since the release compares with the in-flight record).
        self.disarm();
        Response::from_parts(parts, Body::from(bytes))
    }

    /// The claim is settled: nothing left for `Drop` to do.
    fn disarm(&mut self) {
        self.settled = true;
    }

    #[tracing::instrument(skip_all, fields(key = %self.key))]
    async fn complete(&mut self, done: &str) {
        let result: redis::RedisResult<i64> = COMPLETE
            .key(&self.key)
            .arg(&self.in_flight)
            .arg(done)
            .arg(RECORD_TTL.as_secs())
            .invoke_async(&mut self.redis)
            .await;
        match result {
            Ok(1) => {}
            Ok(_) => tracing::warn!("idempotency claim expired before the request finished; response not stored"),
            // The request's effect stands; the claim expires and a retry runs again (and meets the
            // service's own uniqueness rules).
            Err(error) => tracing::warn!(%error, "could not store an idempotent response"),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (redis, key, in_flight) = (self.redis.clone(), self.key.clone(), self.in_flight.clone());
            runtime.spawn(async move { release(redis, &key, &in_flight).await });
        }
    }
}

#[tracing::instrument(skip_all, fields(key = %key))]
async fn release(mut redis: ConnectionManager, key: &str, in_flight: &str) {
    let result: redis::RedisResult<i64> = RELEASE.key(key).arg(in_flight).invoke_async(&mut redis).await;
    if let Err(error) = result {
        tracing::warn!(%error, "could not release an idempotency key; it expires on its own");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(&HeaderValue::from_str(text).unwrap()).unwrap()
    }

    fn signature<'a>(method: &'a Method, path: &'a str, body: &'a [u8]) -> RequestSignature<'a> {
        RequestSignature { method, path, body }
    }

    const PATH: &str = "/api/v1/auth/register";

    #[test]
    fn the_same_json_in_another_layout_has_the_same_fingerprint() {
        let first = br#"{"email":"a@b.c","password":"p","display_name":"A"}"#;
        let again = b"{ \"display_name\": \"A\",\n  \"password\": \"p\", \"email\": \"a@b.c\" }";

        assert_eq!(
            fingerprint(&key("k1"), signature(&Method::POST, PATH, first)),
            fingerprint(&key("k1"), signature(&Method::POST, PATH, again)),
        );
    }

    #[test]
    fn another_body_path_method_or_key_changes_the_fingerprint() {
        let body = br#"{"email":"a@b.c"}"#;
        let base = fingerprint(&key("k1"), signature(&Method::POST, PATH, body));

        assert_ne!(base, fingerprint(&key("k1"), signature(&Method::POST, PATH, br#"{"email":"x@b.c"}"#)));
        assert_ne!(base, fingerprint(&key("k1"), signature(&Method::POST, "/api/v1/projects", body)));
        assert_ne!(base, fingerprint(&key("k1"), signature(&Method::PUT, PATH, body)));
        assert_ne!(base, fingerprint(&key("k2"), signature(&Method::POST, PATH, body)));
    }

    #[test]
    fn nested_objects_are_canonical_too() {
        let a = serde_json::json!({"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": null});
        assert_eq!(canonical_json(&a), r#"{"a":null,"b":{"x":[{"p":2,"q":1}],"y":1}}"#);
    }

    #[test]
    fn keys_of_1_to_255_characters_are_accepted() {
        assert!(IdempotencyKey::parse(&HeaderValue::from_static("a")).is_ok());
        assert!(IdempotencyKey::parse(&HeaderValue::from_str(&"k".repeat(255)).unwrap()).is_ok());
    }

    #[test]
    fn empty_too_long_or_non_ascii_keys_are_a_bad_request() {
        let too_long = HeaderValue::from_str(&"k".repeat(256)).unwrap();
        let non_ascii = HeaderValue::from_bytes("clé".as_bytes()).unwrap();
        for value in [HeaderValue::from_static(""), too_long, non_ascii] {
            let error = IdempotencyKey::parse(&value).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn the_redis_key_holds_the_scope_and_the_hashed_key() {
        let user = Uuid::parse_str("0190b6a4-7c1e-7000-8000-000000000001").unwrap();
        let hashed = hex::encode(Sha256::digest(b"k1"));

        assert_eq!(redis_key("ordo:", Scope::Anonymous, &key("k1")), format!("ordo:idem:anon:{hashed}"));
        assert_eq!(redis_key("ordo:", Scope::User(user), &key("k1")), format!("ordo:idem:{user}:{hashed}"));
    }

    #[test]
    fn a_record_says_its_state() {
        let record = Record::InFlight { fingerprint: "f".into(), owner: Uuid::nil() };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["state"], "in_flight");
        assert_eq!(serde_json::from_value::<Record>(json).unwrap(), record);
    }

    /// A gateway state on this test's Redis prefix (the services are not needed here).
    async fn state(env: &ordo_testkit::TestEnv) -> AppState {
        use clap::Parser as _;
        let config = crate::Config::try_parse_from([
            "ordo-gateway",
            "--identity-url",
            "http://127.0.0.1:1",
            "--project-url",
            "http://127.0.0.1:1",
            "--redis-url",
            &ordo_testkit::redis_url(),
            "--redis-prefix",
            &env.redis_prefix(),
        ])
        .unwrap();
        AppState::connect(&config).await.unwrap()
    }

    async fn run_once(state: &AppState, key_text: &str, body: &[u8], status: StatusCode) -> Result<Response, ApiError> {
        let method = Method::POST;
        let work = async move { (status, "made").into_response() };
        run(state, Some(key(key_text)), Scope::Anonymous, signature(&method, PATH, body), work).await
    }

    #[tokio::test]
    async fn a_request_while_the_first_with_its_key_is_in_flight_gets_409_then_the_replay() {
        // Arrange
        let env = ordo_testkit::TestEnv::new();
        let state = state(&env).await;
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let (finish, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let state = state.clone();
            async move {
                let method = Method::POST;
                let work = async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    (StatusCode::CREATED, "made").into_response()
                };
                run(&state, Some(key("k")), Scope::Anonymous, signature(&method, PATH, b"{}"), work).await.unwrap()
            }
        });
        started.await.unwrap();

        // Act
        let during = run_once(&state, "k", b"{}", StatusCode::CREATED).await;
        finish.send(()).unwrap();
        let first = first.await.unwrap();
        let after = run_once(&state, "k", b"{}", StatusCode::CREATED).await.unwrap();

        // Assert
        assert!(matches!(during, Err(ApiError::IdempotencyKeyInUse)), "{during:?}");
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get(IDEMPOTENT_REPLAYED).is_none());
        assert_eq!(after.status(), StatusCode::CREATED);
        assert_eq!(after.headers()[IDEMPOTENT_REPLAYED], "true");
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn another_body_under_a_key_in_flight_or_done_is_422() {
        // Arrange
        let env = ordo_testkit::TestEnv::new();
        let state = state(&env).await;
        run_once(&state, "k", br#"{"a":1}"#, StatusCode::CREATED).await.unwrap();

        // Act
        let other = run_once(&state, "k", br#"{"a":2}"#, StatusCode::CREATED).await;

        // Assert
        assert!(matches!(other, Err(ApiError::IdempotencyKeyReused)), "{other:?}");
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn a_5xx_or_429_outcome_is_not_stored_so_a_retry_runs_again() {
        for status in
            [StatusCode::SERVICE_UNAVAILABLE, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::TOO_MANY_REQUESTS]
        {
            // Arrange
            let env = ordo_testkit::TestEnv::new();
            let state = state(&env).await;
            run_once(&state, "k", b"{}", status).await.unwrap();

            // Act
            let retry = run_once(&state, "k", b"{}", StatusCode::CREATED).await.unwrap();

            // Assert
            assert_eq!(retry.status(), StatusCode::CREATED, "after {status}");
            assert!(retry.headers().get(IDEMPOTENT_REPLAYED).is_none(), "after {status}");
            env.cleanup().await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_request_dropped_mid_flight_still_finishes_and_its_retry_gets_the_first_response() {
        // Arrange: the first request's work waits for a signal, and counts its runs.
        let env = ordo_testkit::TestEnv::new();
        let state = state(&env).await;
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (finish, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let method = Method::POST;
        let work = {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = finish_rx.await;
                (StatusCode::CREATED, "made once").into_response()
            }
        };
        let first = run(&state, Some(key("k")), Scope::Anonymous, signature(&method, PATH, b"{}"), work);

        // Act: the client goes away mid-request, retries while the work runs, then after it ended.
        assert!(tokio::time::timeout(Duration::from_millis(100), first).await.is_err());
        let during = run_once(&state, "k", b"{}", StatusCode::CREATED).await;
        finish.send(()).unwrap();
        let mut retry = Err(ApiError::IdempotencyKeyInUse);
        for _ in 0..50 {
            retry = run_once(&state, "k", b"{}", StatusCode::CREATED).await;
            if !matches!(retry, Err(ApiError::IdempotencyKeyInUse)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Assert
        assert!(matches!(during, Err(ApiError::IdempotencyKeyInUse)), "{during:?}");
        let retry = retry.unwrap();
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()[IDEMPOTENT_REPLAYED], "true");
        let body = axum::body::to_bytes(retry.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], b"made once");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn a_response_marked_no_effect_releases_its_key() {
        // Arrange
        let env = ordo_testkit::TestEnv::new();
        let state = state(&env).await;
        let method = Method::POST;
        let work = async {
            let mut response = StatusCode::BAD_REQUEST.into_response();
            response.extensions_mut().insert(NoEffect);
            response
        };
        run(&state, Some(key("k")), Scope::Anonymous, signature(&method, PATH, b"{}"), work).await.unwrap();

        // Act
        let retry = run_once(&state, "k", b"{}", StatusCode::CREATED).await.unwrap();

        // Assert
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert!(retry.headers().get(IDEMPOTENT_REPLAYED).is_none());
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn without_a_key_the_request_just_runs() {
        // Arrange
        let env = ordo_testkit::TestEnv::new();
        let state = state(&env).await;
        let method = Method::POST;

        // Act
        let response = run(&state, None, Scope::Anonymous, signature(&method, PATH, b"{}"), async {
            StatusCode::NO_CONTENT.into_response()
        })
        .await
        .unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn a_replay_has_the_first_status_headers_and_body() {
        let headers = vec![("location".to_owned(), "/api/v1/users/1".to_owned())];

        let response = replay(201, &headers, &BASE64.encode(br#"{"id":"1"}"#)).unwrap();

        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::LOCATION], "/api/v1/users/1");
        assert_eq!(response.headers()[IDEMPOTENT_REPLAYED], "true");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], br#"{"id":"1"}"#);
    }
}
