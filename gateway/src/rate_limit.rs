//! Request rate limits, kept in Redis so every gateway instance draws on the same budgets.
//!
//! Each request falls into one [`Class`] (reads, writes, costly routes, the anonymous credential routes,
//! the exact-email user lookup), and is charged to a subject: the authenticated user, or the client's
//! address when the request carries no valid token and always for the credential routes (which is
//! where a guesser has no account of its own to spend). An IPv6 client is charged by its /64, since
//! a single host is routinely handed a whole /64.
//!
//! The algorithm is GCRA (the generic cell rate algorithm of ATM networks, as popularised for HTTP
//! APIs by Brandur Leach's `redis-cell` and `go-redis/redis_rate`): a budget of `q` requests per
//! window `w` is one "theoretical arrival time" per subject, which each request pushes `w / q` into
//! the future, refused when that would pass `now + w`. It spreads a budget evenly over the window,
//! allows a burst of up to `q`, never resets all at once at a window's edge (the flaw of fixed
//! windows), and needs one number per subject. It runs as one Lua script against Redis's own clock,
//! so instances with skewed clocks still agree. An in-process limiter such as `governor` would hold
//! per instance only, and `redis-cell` is a Redis module that managed Redis services do not load.
//!
//! Every limited response carries the IETF `RateLimit-Policy` and `RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers: `"<policy>";q=<quota>;w=<window>` and
//! `"<policy>";r=<remaining>;t=<seconds until the budget is full again>`); a refusal is a `429`
//! problem with `Retry-After`.
//!
//! When Redis does not answer within [`CHECK_TIMEOUT`], the request is let through (fail open) and
//! `ordo_rate_limit_unavailable_total` counts it: a cache outage must not become an API outage, and
//! what rate limits protect has its own guard (identity's login lockout fails closed; the services
//! bound every request's work). The outage is logged at most once per [`OUTAGE_LOG_INTERVAL`].

use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::RateLimitArgs;
use crate::error::ApiError;
use crate::state::AppState;

/// Requests let through unchecked because Redis did not answer the rate limiter in time.
pub(crate) const RATE_LIMIT_UNAVAILABLE_TOTAL: &str = "ordo_rate_limit_unavailable_total";

/// `RateLimit-Policy`: the policy a response was counted against.
pub(crate) const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of it.
pub(crate) const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The longest a rate-limit check may wait for Redis before the request goes through unchecked.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a Redis outage is logged while it lasts.
const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Every budget's window: quotas are given per minute.
const WINDOW: Duration = Duration::from_secs(60);

/// Takes one request from a subject's budget, or says how long until one is free. Times are
/// microseconds on Redis's clock. Returns `{allowed, remaining, retry_after_us, reset_after_us}`.
///
/// KEYS[1]: the subject's key. ARGV[1]: the emission interval (window / quota); ARGV[2]: the
/// window (the burst tolerance: a full budget may be spent at once).
static GCRA: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local t = redis.call('TIME')
          local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
          local interval = tonumber(ARGV[1])
          local window = tonumber(ARGV[2])
          local tat = tonumber(redis.call('GET', KEYS[1]) or now)
          if tat < now then tat = now end
          local new_tat = tat + interval
          local allow_at = new_tat - window
          if now < allow_at then
            return {0, 0, allow_at - now, tat - now}
          end
          redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
          return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}",
    )
});

/// What a request is charged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `GET`s and `HEAD`s.
    Read,
    /// Every other method.
    Write,
    /// Routes whose cost grows with their input: full-text search, uploads, bulk edits, the audit
    /// log's verification.
    Costly,
    /// Register, login and refresh: charged to the client's address whatever token it carries.
    Credentials,
    /// `GET /users?email=`, which tells whether an email has an account.
    EmailLookup,
}

impl Class {
    /// The policy's name in the headers and the metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Costly => "costly",
            Self::Credentials => "credentials",
            Self::EmailLookup => "email-lookup",
        }
    }

    /// The class of a request to the route template `route` (as matched, e.g. `/api/v1/tasks/{id}`).
    pub(crate) fn of(method: &Method, route: &str, query: Option<&str>) -> Self {
        let has = |name: &str| {
            query.is_some_and(|query| {
                query.split('&').any(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    key == name && !value.is_empty()
                })
            })
        };
        let path = route.strip_prefix(crate::routes::API_PREFIX).unwrap_or(route);
        match (method, path) {
            (_, "/auth/register" | "/auth/login" | "/auth/refresh") => Self::Credentials,
            (&Method::GET, "/users") if has("email") => Self::EmailLookup,
            (&Method::GET, "/tasks") if has("q") => Self::Costly,
            (&Method::GET, "/audit/verify") => Self::Costly,
            (&Method::POST, "/tasks/bulk" | "/tasks/{id}/attachments") => Self::Costly,
            (&Method::GET | &Method::HEAD, _) => Self::Read,
            _ => Self::Write,
        }
    }
}

impl RateLimitArgs {
    /// The quota of `class` per window, `None` when unlimited.
    fn quota(&self, class: Class) -> Option<u32> {
        let quota = match class {
            Class::Read => self.read,
            Class::Write => self.write,
            Class::Costly => self.costly,
            Class::Credentials => self.credentials,
            Class::EmailLookup => self.email_lookup,
        };
        (quota > 0).then_some(quota)
    }
}

/// Who a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// An authenticated user (the token's `sub`).
    User(String),
    /// A client address; IPv6 addresses reduced to their /64.
    Address(IpAddr),
}

impl Subject {
    /// The subject for `ip`, an IPv6 address reduced to its /64 network.
    pub(crate) fn address(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::Address(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Address(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    Self::Address(IpAddr::V6(network.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(id) => write!(f, "u:{id}"),
            Self::Address(ip) => write!(f, "a:{ip}"),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether the request may go on.
    pub(crate) allowed: bool,
    /// Requests left right now.
    pub(crate) remaining: u64,
    /// Seconds until a refused request would be allowed (0 when allowed).
    pub(crate) retry_after: u64,
    /// Seconds until the whole budget is available again.
    pub(crate) reset_after: u64,
}

/// What Redis held for a request's session when its budget was charged (`<prefix>session:<sid>`:
/// `Some(1)` live, `Some(0)` revoked, `None` unknown): read in the same round trip as the charge,
/// so authentication need not ask Redis again for the same request.
#[derive(Debug, Clone)]
pub(crate) struct SessionSeen {
    /// The session the token names.
    pub(crate) session_id: String,
    /// Its key's value.
    pub(crate) state: Option<i64>,
}

/// Charges one request of `class` to `subject` against `quota` per [`WINDOW`], and reads the value
/// of `session_key` (the caller's session, when the subject is a user) in the same round trip.
pub(crate) async fn check(
    redis: &mut ordo_platform::redis::ConnectionManager,
    prefix: &str,
    class: Class,
    subject: &Subject,
    quota: u32,
    session_key: Option<&str>,
) -> redis::RedisResult<(Decision, Option<i64>)> {
    let window_us = u64::try_from(WINDOW.as_micros()).unwrap_or(u64::MAX);
    let interval_us = (window_us / u64::from(quota.max(1))).max(1);
    let key = format!("{prefix}rl:{}:{subject}", class.name());
    let mut invocation = GCRA.key(key);
    invocation.arg(interval_us).arg(window_us);
    let mut pipe = redis::pipe();
    pipe.invoke_script(&invocation);
    match session_key {
        Some(session_key) => pipe.get(session_key),
        // A placeholder, so the reply always has two parts.
        None => pipe.cmd("ECHO").arg(""),
    };
    let ((allowed, remaining, retry_after_us, reset_after_us), session): ((i64, i64, i64, i64), redis::Value) =
        match pipe.query_async(redis).await {
            // A pipeline does not load a script Redis has not seen (a restarted Redis): load it, once.
            Err(error) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                invocation.load_async(redis).await?;
                pipe.query_async(redis).await?
            }
            other => other?,
        };
    let session = match (session_key, session) {
        (Some(_), redis::Value::Nil) | (None, _) => None,
        (Some(_), value) => redis::from_redis_value(value).ok(),
    };
    let seconds = |micros: i64| u64::try_from(micros).unwrap_or(0).div_ceil(1_000_000);
    let decision = Decision {
        allowed: allowed == 1,
        remaining: u64::try_from(remaining).unwrap_or(0),
        retry_after: seconds(retry_after_us).max(u64::from(allowed != 1)),
        reset_after: seconds(reset_after_us),
    };
    Ok((decision, session))
}

/// The layer: charges the request to its budget, refuses it with `429` when the budget is spent, and
/// puts the budget's headers on the response either way.
pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let Some(route) = route else { return next.run(request).await };
    let class = Class::of(request.method(), &route, request.uri().query());
    let Some(quota) = state.rate_limits().quota(class) else { return next.run(request).await };
    let (token, address) = charge_to(&state, &request, class);
    let (subject, session_id) = subject(&state, token, address).await;
    let session_key = session_id.as_ref().map(|sid| format!("{}session:{sid}", state.redis_prefix()));

    let mut redis = state.redis();
    let checked = tokio::time::timeout(
        CHECK_TIMEOUT,
        check(&mut redis, state.redis_prefix(), class, &subject, quota, session_key.as_deref()),
    );
    let (decision, session) = match checked.await {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => return fail_open(request, next, &error.to_string()).await,
        Err(_) => return fail_open(request, next, "timed out").await,
    };
    let mut request = request;
    if let Some(session_id) = session_id {
        request.extensions_mut().insert(SessionSeen { session_id, state: session });
    }
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        metrics::counter!("ordo_rate_limited_total", "policy" => class.name()).increment(1);
        ApiError::TooManyRequests {
            detail: format!(
                "The {} rate limit of {quota} requests per minute is used up; retry in {} s.",
                class.name(),
                decision.retry_after
            ),
            retry_after: decision.retry_after,
        }
        .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::try_from(format!("\"{}\";q={quota};w={}", class.name(), WINDOW.as_secs())) {
        headers.insert(RATE_LIMIT_POLICY, policy);
    }
    if let Ok(remaining) =
        HeaderValue::try_from(format!("\"{}\";r={};t={}", class.name(), decision.remaining, decision.reset_after))
    {
        headers.insert(RATE_LIMIT, remaining);
    }
    response
}

/// What decides who a request is charged to: its bearer token (none for the credential routes) and
/// the client's address. Read before any waiting: a request's body is not `Sync`, so no borrow of
/// the request may live across an await.
fn charge_to(state: &AppState, request: &Request, class: Class) -> (Option<String>, Option<IpAddr>) {
    let token = (class != Class::Credentials)
        .then(|| request.headers().get(header::AUTHORIZATION))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    (token, crate::extract::client_address(request.headers(), peer, state.trust_forwarded_for()))
}

/// The token's user and session when it verifies (the check is memoised, so this costs nothing
/// beyond what authentication pays anyway), else the client's address. Whether the session is still
/// live is left to authentication: a revoked token is refused there, and charging it to its user
/// only ever spends that user's budget.
async fn subject(state: &AppState, token: Option<String>, address: Option<IpAddr>) -> (Subject, Option<String>) {
    if let Some(token) = token
        && let Ok(claims) = state.keys().verify(&token).await
    {
        return (Subject::User(claims.sub.clone()), Some(claims.sid.clone()));
    }
    (Subject::address(address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))), None)
}

/// Lets a request through unchecked because Redis did not answer, counting it and logging the
/// outage now and then.
async fn fail_open(request: Request, next: Next, cause: &str) -> Response {
    static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
    metrics::counter!(RATE_LIMIT_UNAVAILABLE_TOTAL).increment(1);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now >= last + OUTAGE_LOG_INTERVAL.as_secs()
        && LAST_LOGGED.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(cause, "rate limits unchecked: Redis is not answering");
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn requests_are_classed_by_route_and_method() {
        let class = |method: Method, route: &str, query: Option<&str>| Class::of(&method, route, query);
        assert_eq!(class(Method::POST, "/api/v1/auth/login", None), Class::Credentials);
        assert_eq!(class(Method::POST, "/api/v1/auth/refresh", None), Class::Credentials);
        assert_eq!(class(Method::GET, "/api/v1/users", Some("email=a%40b.c")), Class::EmailLookup);
        assert_eq!(class(Method::GET, "/api/v1/users", Some("q=ann")), Class::Read);
        assert_eq!(class(Method::GET, "/api/v1/tasks", Some("project_id=x&q=bug")), Class::Costly);
        assert_eq!(class(Method::GET, "/api/v1/tasks", Some("project_id=x&q=")), Class::Read);
        assert_eq!(class(Method::GET, "/api/v1/tasks/{id}", Some("q=bug")), Class::Read);
        assert_eq!(class(Method::POST, "/api/v1/tasks/bulk", None), Class::Costly);
        assert_eq!(class(Method::POST, "/api/v1/tasks/{id}/attachments", None), Class::Costly);
        assert_eq!(class(Method::GET, "/api/v1/audit/verify", None), Class::Costly);
        assert_eq!(class(Method::PATCH, "/api/v1/tasks/{id}", None), Class::Write);
        assert_eq!(class(Method::GET, "/api/v1/users/me", None), Class::Read);
    }

    #[test]
    fn an_ipv6_client_is_charged_by_its_slash_64() {
        let a = Subject::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let other = Subject::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "a:2001:db8:1:2::");
        let mapped = Subject::address("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped.to_string(), "a:192.0.2.7");
    }

    #[tokio::test]
    async fn a_budget_allows_its_quota_then_refuses_until_a_request_is_free_again() {
        // Arrange: a private prefix in the real Redis.
        let client = redis::Client::open(ordo_testkit::redis_url()).unwrap();
        let mut redis =
            ordo_platform::redis::ConnectionManager::new(redis::aio::ConnectionManager::new(client).await.unwrap());
        let prefix = format!("ordo-test-rl-{}:", uuid::Uuid::new_v4().simple());
        let subject = Subject::User("u1".to_owned());

        // Act: six requests against a budget of five per minute.
        let mut decisions = Vec::new();
        for _ in 0..6 {
            decisions.push(check(&mut redis, &prefix, Class::Write, &subject, 5, None).await.unwrap().0);
        }

        // Assert
        let remaining: Vec<u64> = decisions[..5].iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0]);
        assert!(decisions[..5].iter().all(|d| d.allowed));
        let refused = decisions[5];
        assert!(!refused.allowed);
        // One request's worth of the window (60 s / 5) must pass before the next is allowed.
        assert!((11..=12).contains(&refused.retry_after), "{refused:?}");
        assert!((59..=60).contains(&refused.reset_after), "{refused:?}");
        // Another subject and another class have budgets of their own.
        let other = check(&mut redis, &prefix, Class::Write, &Subject::User("u2".to_owned()), 5, None).await.unwrap();
        assert!(other.0.allowed);
        let read = check(&mut redis, &prefix, Class::Read, &subject, 5, None).await.unwrap();
        assert!(read.0.allowed);

        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis).await.unwrap();
    }

    #[tokio::test]
    async fn the_charge_reads_the_session_in_the_same_round_trip_and_survives_a_flushed_script_cache() {
        // Arrange: a live and a revoked session as identity writes them, in a private prefix.
        let client = redis::Client::open(ordo_testkit::redis_url()).unwrap();
        let mut redis =
            ordo_platform::redis::ConnectionManager::new(redis::aio::ConnectionManager::new(client).await.unwrap());
        let prefix = format!("ordo-test-rl-{}:", uuid::Uuid::new_v4().simple());
        let (live, revoked, unknown) =
            (format!("{prefix}session:s1"), format!("{prefix}session:s2"), format!("{prefix}session:s3"));
        let _: () = redis::cmd("MSET").arg(&live).arg(1).arg(&revoked).arg(0).query_async(&mut redis).await.unwrap();
        let subject = Subject::User("u1".to_owned());

        // Act: the script cache emptied first (a restarted Redis), then a charge with each session.
        // Every other script user in Ordo loads its script again on NOSCRIPT, so tests running
        // beside this one on the same Redis are not disturbed.
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut redis).await.unwrap();
        let mut seen = Vec::new();
        for key in [Some(live.as_str()), Some(revoked.as_str()), Some(unknown.as_str()), None] {
            let (decision, session) = check(&mut redis, &prefix, Class::Read, &subject, 10, key).await.unwrap();
            assert!(decision.allowed);
            seen.push((decision.remaining, session));
        }

        // Assert: each charge counted, each session's state read as stored.
        assert_eq!(seen, [(9, Some(1)), (8, Some(0)), (7, None), (6, None)]);
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut redis).await.unwrap();
    }
}
