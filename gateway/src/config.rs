//! The gateway's settings: command-line flags and `ORDO_*` environment variables, with defaults that
//! work on a developer machine (`ordo-gateway --help` lists them all).

use std::net::SocketAddr;
use std::time::Duration;

use ordo_platform::config::{RuntimeArgs, TelemetryArgs, parse_millis};
use ordo_platform::redis::RedisArgs;

/// Everything the gateway needs to run.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordo-gateway", version, about = "Ordo's REST gateway: /api/v1 over the services' gRPC APIs")]
pub struct Config {
    /// Address of the public HTTP port (the REST API plus /healthz, /readyz and /metrics).
    #[arg(long, env = "ORDO_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// URL of the identity service's gRPC port.
    #[arg(long, env = "ORDO_IDENTITY_URL", default_value = "http://127.0.0.1:50051")]
    pub identity_url: String,

    /// URL of the project service's gRPC port.
    #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
    pub project_url: String,

    /// URL of the task service's gRPC port.
    #[arg(long, env = "ORDO_TASK_URL", default_value = "http://127.0.0.1:50053")]
    pub task_url: String,

    /// URL of the notification service's gRPC port.
    #[arg(long, env = "ORDO_NOTIFICATION_URL", default_value = "http://127.0.0.1:50054")]
    pub notification_url: String,

    /// URL of the audit service's gRPC port.
    #[arg(long, env = "ORDO_AUDIT_URL", default_value = "http://127.0.0.1:50055")]
    pub audit_url: String,

    /// Redis (sessions written by identity, rate limits, idempotency records): URL, key prefix
    /// (identity's), timeouts.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Timeout of each backend call (connect and request), in milliseconds. A backend that does not
    /// answer within it makes the request fail with 503.
    #[arg(
        long = "backend-timeout-ms",
        env = "ORDO_BACKEND_TIMEOUT_MS",
        default_value = "5000",
        value_parser = parse_millis
    )]
    pub backend_timeout: Duration,

    /// How long the gateway goes on serving after SIGTERM or SIGINT before it stops taking connections,
    /// in milliseconds (a lame-duck period). Throughout it `/readyz` answers `503` (`draining`), so a
    /// load balancer stops sending, and every response carries `Connection: close`, so a client moves
    /// off its kept-alive connection after its next answer instead of sending on it just as it closes
    /// (a request lost in flight). Then the listener closes and the requests in flight finish. 0
    /// stops taking connections at once.
    #[arg(long = "drain-grace-ms", env = "ORDO_DRAIN_GRACE_MS", default_value = "2000", value_parser = parse_millis)]
    pub drain_grace: Duration,

    /// How often identity's token keys are fetched again, milliseconds (also whenever a token names
    /// an unknown key, at most every 5 s). Identity publishes a new key longer than this before it
    /// signs with it.
    #[arg(long = "jwks-refresh-ms", env = "ORDO_JWKS_REFRESH_MS", default_value = "60000", value_parser = parse_millis)]
    pub jwks_refresh: Duration,

    /// Largest attachment accepted, in bytes (API.md: 25 MiB). A declared `Content-Length` over it
    /// (plus a small allowance for the multipart envelope) is refused with `413` before a byte is read;
    /// an upload that streams more is cut off with `413`.
    #[arg(long, env = "ORDO_MAX_ATTACHMENT_BYTES", default_value_t = 26_214_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_attachment_bytes: u64,

    /// Take the client address from the last entry of `X-Forwarded-For`, the one the load balancer
    /// in front appends (an AWS ALB does; the entries before it are the client's to write). Turn on
    /// only behind such a proxy, the only way to reach the gateway, or clients can claim any address.
    #[arg(long, env = "ORDO_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// API requests served at once; past it a request is answered `503` with `Retry-After` at once
    /// (load shedding) instead of queueing until every caller times out. `/healthz`, `/readyz` and
    /// `/metrics` are never shed.
    #[arg(long, env = "ORDO_MAX_IN_FLIGHT", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Live notification streams (`GET /notifications/stream`) carried by one HTTP/2 connection to
    /// the notification service; more streams open more connections, and a connection whose streams
    /// have all ended is closed (one is kept), so a burst of streams leaves no memory behind.
    #[arg(long, env = "ORDO_LIVE_STREAMS_PER_CONNECTION", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub live_streams_per_connection: u32,

    /// Rate limits.
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,

    /// Deadlines and caps on what one client may hold of the gateway.
    #[command(flatten)]
    pub client_limits: ClientLimits,

    /// Runtime.
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// What one client may hold of the gateway, so slow or many connections cannot starve everyone else
/// (OWASP API4:2023): deadlines on the request headers, the body and the whole request, and a cap
/// on connections per client address.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ClientLimits {
    /// Time a client has to send a request's headers, in milliseconds, from the moment the
    /// connection is ready for a request; past it the connection is closed without an answer.
    #[arg(long = "header-read-timeout-ms", env = "ORDO_HEADER_READ_TIMEOUT_MS", default_value = "10000", value_parser = parse_millis)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a whole JSON body once its headers arrived, in milliseconds; past
    /// it the request is answered `408` as a problem document. The body is read before the request
    /// takes a load-shedding slot, so a slow body never holds one. Uploads (`multipart/form-data`)
    /// are exempt: they stream, and stop only when no byte arrives for 30 seconds.
    #[arg(long = "body-read-timeout-ms", env = "ORDO_BODY_READ_TIMEOUT_MS", default_value = "10000", value_parser = parse_millis)]
    pub body_read_timeout: Duration,

    /// Longest time an API request may take once its body is read, in milliseconds (uploads
    /// exempt); past it the request is answered `504`. A backstop above `--backend-timeout-ms`:
    /// an idempotent create still finishes and its key still settles.
    #[arg(long = "request-timeout-ms", env = "ORDO_REQUEST_TIMEOUT_MS", default_value = "30000", value_parser = parse_millis)]
    pub request_timeout: Duration,

    /// Connections one client address may hold open at once; a connection past it is closed as
    /// soon as it is accepted. The address is the TCP peer's (behind a proxy, the proxy's: raise it
    /// there).
    #[arg(long, env = "ORDO_MAX_CONNECTIONS_PER_IP", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,
}

/// The budgets, in requests per minute; `0` leaves a class unlimited.
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimitArgs {
    /// Reads (GET) per minute per user, or per client address without a valid token. 0: unlimited.
    #[arg(long = "rate-limit-read", env = "ORDO_RATE_LIMIT_READ", default_value_t = 1200)]
    pub read: u32,
    /// Writes (POST, PATCH, PUT, DELETE) per minute per user. 0: unlimited.
    #[arg(long = "rate-limit-write", env = "ORDO_RATE_LIMIT_WRITE", default_value_t = 300)]
    pub write: u32,
    /// Costly requests (full-text search, uploads, bulk edits, audit verification) per minute per
    /// user. 0: unlimited.
    #[arg(long = "rate-limit-costly", env = "ORDO_RATE_LIMIT_COSTLY", default_value_t = 60)]
    pub costly: u32,
    /// Register, login and refresh requests per minute per client address (IPv6: per /64). Identity's
    /// lockout bounds the guesses per account on top of this. 0: unlimited.
    #[arg(long = "rate-limit-credentials", env = "ORDO_RATE_LIMIT_CREDENTIALS", default_value_t = 30)]
    pub credentials: u32,
    /// Exact-email user lookups (`GET /users?email=`, which tells whether an email has an account)
    /// per minute per user. 0: unlimited.
    #[arg(long = "rate-limit-email-lookup", env = "ORDO_RATE_LIMIT_EMAIL_LOOKUP", default_value_t = 20)]
    pub email_lookup: u32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults_work_on_a_developer_machine() {
        let config = Config::try_parse_from(["ordo-gateway"]).unwrap();
        assert_eq!(config.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.identity_url, "http://127.0.0.1:50051");
        assert_eq!(config.project_url, "http://127.0.0.1:50052");
        assert_eq!(config.task_url, "http://127.0.0.1:50053");
        assert_eq!(config.notification_url, "http://127.0.0.1:50054");
        assert_eq!(config.audit_url, "http://127.0.0.1:50055");
        assert_eq!(config.max_attachment_bytes, 26_214_400);
        assert_eq!(config.redis.prefix, "ordo:");
        assert_eq!(config.backend_timeout, Duration::from_millis(5000));
        assert_eq!(config.jwks_refresh, Duration::from_secs(60));
        assert!(!config.trust_forwarded_for);
    }

    #[test]
    fn client_limits_have_defaults_and_can_be_set() {
        let default = Config::try_parse_from(["ordo-gateway"]).unwrap().client_limits;
        assert_eq!(default.header_read_timeout, Duration::from_secs(10));
        assert_eq!(default.body_read_timeout, Duration::from_secs(10));
        assert_eq!(default.request_timeout, Duration::from_secs(30));
        assert_eq!(default.max_connections_per_ip, 256);

        let set =
            Config::try_parse_from(["ordo-gateway", "--body-read-timeout-ms", "250", "--max-connections-per-ip", "2"])
                .unwrap()
                .client_limits;
        assert_eq!(set.body_read_timeout, Duration::from_millis(250));
        assert_eq!(set.max_connections_per_ip, 2);
        assert!(Config::try_parse_from(["ordo-gateway", "--max-connections-per-ip", "0"]).is_err());
    }

    #[test]
    fn the_backend_timeout_is_given_in_milliseconds() {
        let config = Config::try_parse_from(["ordo-gateway", "--backend-timeout-ms", "250"]).unwrap();
        assert_eq!(config.backend_timeout, Duration::from_millis(250));
    }

    #[test]
    fn worker_threads_default_to_half_the_cores_and_can_be_set() {
        let default = Config::try_parse_from(["ordo-gateway"]).unwrap();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(default.runtime.worker_threads(), (cores / 2).max(1));

        let set = Config::try_parse_from(["ordo-gateway", "--worker-threads", "3"]).unwrap();
        assert_eq!(set.runtime.worker_threads(), 3);
        assert!(Config::try_parse_from(["ordo-gateway", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn the_redis_url_does_not_show_in_debug_output() {
        let config = Config::try_parse_from(["ordo-gateway", "--redis-url", "redis://:hunter2@cache:6379"]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
