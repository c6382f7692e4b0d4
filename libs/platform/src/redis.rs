//! The one Redis connector every Ordo process uses: a [`ConnectionManager`] whose every call is
//! bounded (connection and response timeouts), timed in the process's metrics, and which reconnects
//! as soon as Redis answers again.
//!
//! Why the manager's defaults hung the API for tens of seconds (redis 0.32): a command issued while
//! the manager reconnects awaits the shared reconnection future, and that future retries with a
//! backoff built as `backon`'s exponential builder with a 1 s first delay and the manager's `factor`
//! (100 by default) as the *growth multiplier*, capped at 60 s — so the second retry sleeps a minute
//! (jitter up to two), six retries in all, with no connection or response timeout. Every request
//! needing Redis waited on that future, and a Redis that came back was only noticed when the sleep
//! ended. Here the manager makes a single connection attempt per reconnection (no retries, so no
//! sleeps), each attempt bounded by the connection timeout, each command by the response timeout: a
//! command during an outage fails within about the two timeouts, and the next command after a failed
//! attempt starts a fresh one, so recovery follows Redis's return by one request (the `/readyz` probe
//! is one). A connection that goes silent without being closed (a network partition) is not dropped
//! on a response timeout; its commands time out until TCP resumes or resets it.
//!
//! The manager connects eagerly: [`connect`] tries for [`START_WAIT`] and then fails, so a process
//! started while Redis is down exits with an error and its supervisor (ECS, compose) starts it again.
//!
//! What each use does when Redis fails (the policy, per use):
//! - **sessions** (`ordo_auth::session`): a missing marker or a failed lookup asks identity
//!   (`CheckSession`, which reads MySQL); if identity cannot answer either, the request is refused as
//!   `Unavailable` — a token is never accepted unchecked.
//! - **login throttle** (identity): fails closed — a login whose failure count cannot be read or
//!   written answers `Unavailable`, never an unthrottled attempt.
//! - **caches** (identity's users, project's access answers, task's list pages): bypassed — read from
//!   MySQL; a failed invalidation is the writer's error, so a stale entry cannot outlive a write.
//! - **rate limits** (gateway): fail open — a budget Redis cannot answer for within 250 ms lets the
//!   request through, counted in `ordo_rate_limit_unavailable_total`; the login lockout above still
//!   bounds password guessing, and a cache outage must not become an API outage.
//! - **idempotency keys** (gateway): fail closed — a request with an `Idempotency-Key` whose claim
//!   cannot be taken answers `503` with `Retry-After`, since its promise could not be kept.

use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionLike, ConnectionManagerConfig};
use ::redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::{Secret, parse_millis};

/// How long [`connect`] keeps trying at start before giving up.
pub const START_WAIT: Duration = Duration::from_secs(5);

/// Where Redis is, the prefix of every key, and the timeouts of every call: the Redis flags every
/// process (the services and the gateway) flattens.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (session markers, caches, rate limits and idempotency records; checked by /readyz).
    #[arg(long = "redis-url", env = "ORDO_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub url: Secret<String>,
    /// Prefix of every Redis key; every process of a deployment uses the same (identity writes the
    /// session markers the others read).
    #[arg(long = "redis-prefix", env = "ORDO_REDIS_PREFIX", default_value = "ordo:")]
    pub prefix: String,
    /// Timeouts of every Redis call.
    #[command(flatten)]
    pub settings: RedisSettings,
}

impl RedisArgs {
    /// Connects to [`RedisArgs::url`] with these timeouts (see [`connect`]).
    ///
    /// # Errors
    ///
    /// When Redis does not answer within [`START_WAIT`].
    pub async fn connect(&self) -> Result<ConnectionManager, ::redis::RedisError> {
        connect(self.url.expose(), &self.settings).await
    }
}

/// Timeouts of every Redis call, as flags and `ORDO_*` variables.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisSettings {
    /// Longest wait for one Redis reply, milliseconds; a request needing Redis fails (503) after it.
    #[arg(long = "redis-timeout-ms", env = "ORDO_REDIS_TIMEOUT_MS", default_value = "500", value_parser = parse_millis)]
    pub response_timeout: Duration,
    /// Longest wait for one connection attempt to Redis, milliseconds.
    #[arg(
        long = "redis-connect-timeout-ms",
        env = "ORDO_REDIS_CONNECT_TIMEOUT_MS",
        default_value = "500",
        value_parser = parse_millis
    )]
    pub connect_timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { response_timeout: Duration::from_millis(500), connect_timeout: Duration::from_millis(500) }
    }
}

impl RedisSettings {
    /// The longest a single call can take when the connection is being re-established: one
    /// connection attempt, then the reply.
    pub fn call_budget(&self) -> Duration {
        self.connect_timeout + self.response_timeout
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            // No retries inside a reconnection: commands wait on it, and its backoff sleeps (see the
            // module comment) were the hang. The next command starts another attempt instead.
            .set_number_of_retries(0)
    }
}

/// Seconds each Redis command (or pipeline) took, by command, including the failed ones.
pub const COMMAND_DURATION: &str = "ordo_redis_command_duration_seconds";
/// Redis commands that failed (an error reply, a timeout, no connection), by command.
pub const COMMAND_ERRORS_TOTAL: &str = "ordo_redis_command_errors_total";

/// The commands Ordo sends, as their metric label; any other is `other`, so the label stays bounded.
const COMMANDS: &[&str] = &[
    "DEL", "ECHO", "EVAL", "EVALSHA", "EXISTS", "EXPIRE", "GET", "GETDEL", "INCR", "INCRBY", "KEYS", "MGET", "MSET",
    "PEXPIRE", "PING", "PUBLISH", "SCRIPT", "SET", "SETEX", "TTL", "UNLINK",
];

/// The shared, reconnecting Redis connection every process uses: redis' own
/// [`ConnectionManager`](::redis::aio::ConnectionManager), each command timed into
/// `ordo_redis_command_duration_seconds{command}` and each failure counted in
/// `ordo_redis_command_errors_total{command}`. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct ConnectionManager {
    inner: ::redis::aio::ConnectionManager,
}

impl std::fmt::Debug for ConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager").finish_non_exhaustive()
    }
}

impl ConnectionManager {
    /// Wraps a connection manager made elsewhere (a test's own).
    pub fn new(inner: ::redis::aio::ConnectionManager) -> Self {
        Self { inner }
    }
}

impl ConnectionLike for ConnectionManager {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let command = command_label(cmd);
        Box::pin(async move {
            let started = Instant::now();
            let reply = self.inner.req_packed_command(cmd).await;
            observe(command, started, reply.is_err());
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let replies = self.inner.req_packed_commands(pipeline, offset, count).await;
            observe("pipeline", started, replies.is_err());
            replies
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// The metric label of `cmd`: its name when it is one of [`COMMANDS`], else `other`.
fn command_label(cmd: &Cmd) -> &'static str {
    let Some(::redis::Arg::Simple(name)) = cmd.args_iter().next() else {
        return "other";
    };
    COMMANDS.iter().find(|known| known.as_bytes().eq_ignore_ascii_case(name)).copied().unwrap_or("other")
}

fn observe(command: &'static str, started: Instant, failed: bool) {
    metrics::histogram!(COMMAND_DURATION, "command" => command).record(started.elapsed().as_secs_f64());
    if failed {
        metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => command).increment(1);
    }
}

/// A connection manager for `url` with the settings' timeouts. Waits up to [`START_WAIT`] for Redis.
pub async fn connect(url: &str, settings: &RedisSettings) -> Result<ConnectionManager, ::redis::RedisError> {
    let client = ::redis::Client::open(url)?;
    let started = tokio::time::Instant::now();
    metrics::describe_histogram!(
        COMMAND_DURATION,
        metrics::Unit::Seconds,
        "Redis commands by command, failed ones included."
    );
    metrics::describe_counter!(
        COMMAND_ERRORS_TOTAL,
        "Redis commands that failed (error reply, timeout, no connection), by command."
    );
    loop {
        match ::redis::aio::ConnectionManager::new_with_config(client.clone(), settings.manager_config()).await {
            Ok(inner) => {
                // Exported from the start, so an alert on errors sees a zero before the first one.
                metrics::counter!(COMMAND_ERRORS_TOTAL, "command" => "other").increment(0);
                return Ok(ConnectionManager { inner });
            }
            Err(error) if started.elapsed() < START_WAIT => {
                tracing::warn!(%error, "Redis is not answering yet; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        redis: RedisSettings,
    }

    #[test]
    fn the_flags_default_to_half_a_second() {
        use clap::Parser as _;
        let flags = Flags::try_parse_from(["x"]).unwrap();
        assert_eq!(flags.redis.response_timeout, Duration::from_millis(500));
        let flags = Flags::try_parse_from(["x", "--redis-timeout-ms", "200"]).unwrap();
        assert_eq!(flags.redis.response_timeout, Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_command_to_an_unreachable_redis_fails_within_the_budget() {
        // Arrange: a port nothing listens on once the manager is up is hard to get; a listener that
        // accepts and never answers (a blackhole) is the harder case anyway.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let settings =
            RedisSettings { response_timeout: Duration::from_millis(200), connect_timeout: Duration::from_millis(200) };
        let started = std::time::Instant::now();

        // Act
        let result = connect(&format!("redis://{addr}"), &settings).await;

        // Assert: the start gives up after its wait instead of hanging.
        assert!(result.is_err());
        assert!(started.elapsed() < START_WAIT + Duration::from_secs(2), "{:?}", started.elapsed());
        held.abort();
    }
}
