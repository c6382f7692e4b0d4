//! The flags every service shares. Each service's `Config` (declared by [`crate::config!`]) flattens
//! [`ServiceArgs`] with the defaults that differ between services (addresses, schema) given by
//! `mut_arg`, so the flag names, environment variables and help read the same in every service.

use std::net::SocketAddr;
use std::time::Duration;

use ordo_events::{ConsumerConfig, RelayConfig, SubscriptionConfig};
use ordo_platform::config::{RuntimeArgs, Secret, TelemetryArgs, parse_millis};
use ordo_platform::redis::RedisArgs;

/// Gives a shared flag a service's own default (for `#[command(mut_arg("grpc_addr", default_to(...)))]`).
/// The flag stops being required, which clap makes every flag without a default of its own.
pub fn default_to(value: &'static str) -> impl FnOnce(clap::Arg) -> clap::Arg {
    move |arg| arg.default_value(value).required(false)
}

/// Addresses, database, Redis, RabbitMQ, sessions, telemetry and runtime of a service.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Address of the gRPC server.
    #[arg(long, env = "ORDO_GRPC_ADDR")]
    pub grpc_addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ORDO_OPS_ADDR")]
    pub ops_addr: SocketAddr,
    /// MySQL URL of the service's own schema (created at start if missing).
    #[arg(long, env = "ORDO_DATABASE_URL")]
    pub database_url: Secret<String>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,
    /// Redis: URL, key prefix, timeouts.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// How long a session found live is trusted without looking again, milliseconds; a revoked
    /// session is refused by this instance within it.
    #[arg(long = "session-cache-ms", env = "ORDO_SESSION_CACHE_MS", default_value = "1000", value_parser = parse_millis)]
    pub session_cache: Duration,
    /// Serve gRPC server reflection (for grpcurl and the like); development only, it lists every RPC.
    #[arg(long, env = "ORDO_GRPC_REFLECTION", default_value_t = false)]
    pub grpc_reflection: bool,
    /// RabbitMQ URL (outbox relay and event consumers).
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// Logs.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Runtime.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl ServiceArgs {
    /// The configuration of a consumer `name` of this service's broker and exchange, reading `queue`
    /// bound with each of `bindings` (the events library's defaults otherwise).
    pub fn consumer_config(
        &self,
        queue: impl Into<String>,
        name: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> ConsumerConfig {
        ConsumerConfig::new(self.amqp_url.expose().clone(), self.events_exchange.clone(), queue, name, bindings)
    }

    /// The configuration of a broadcast subscription `name` to the events of this service's exchange
    /// matching `bindings` (every instance hears each of them).
    pub fn subscription_config(&self, name: &str, bindings: &[&str]) -> SubscriptionConfig {
        SubscriptionConfig::new(self.amqp_url.expose().clone(), self.events_exchange.clone(), name, bindings)
    }

    /// The configuration of this service's outbox relay: its broker and exchange.
    pub fn relay_config(&self) -> RelayConfig {
        RelayConfig::new(self.amqp_url.expose().clone(), self.events_exchange.clone())
    }
}

/// The flags of a service that calls others: where identity is (token keys and session checks)
/// and how long any call to another service may take.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// gRPC URL of the identity service (token keys and session checks).
    #[arg(long, env = "ORDO_IDENTITY_URL", default_value = "http://127.0.0.1:50051")]
    pub identity_url: String,
    /// Timeout of every call to another service, milliseconds.
    #[arg(long = "backend-timeout-ms", env = "ORDO_BACKEND_TIMEOUT_MS", default_value = "5000", value_parser = parse_millis)]
    pub backend_timeout: Duration,
    /// How often identity's token keys are fetched again, milliseconds (also whenever a token names
    /// an unknown key, at most every 5 s). Identity publishes a new key longer than this before it
    /// signs with it.
    #[arg(long = "jwks-refresh-ms", env = "ORDO_JWKS_REFRESH_MS", default_value = "60000", value_parser = parse_millis)]
    pub jwks_refresh: Duration,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(
        mut_arg("grpc_addr", default_to("127.0.0.1:50099")),
        mut_arg("ops_addr", default_to("127.0.0.1:9199")),
        mut_arg("database_url", default_to("mysql://root@127.0.0.1:3306/ordo_example"))
    )]
    struct Example {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        upstream: UpstreamArgs,
    }

    #[test]
    fn a_service_gives_its_own_defaults_to_the_shared_flags() {
        let config = Example::try_parse_from(["example"]).unwrap();
        assert_eq!(config.service.grpc_addr, "127.0.0.1:50099".parse().unwrap());
        assert_eq!(config.service.ops_addr, "127.0.0.1:9199".parse().unwrap());
        assert_eq!(config.service.database_url.expose(), "mysql://root@127.0.0.1:3306/ordo_example");
        assert_eq!(config.upstream.backend_timeout, Duration::from_secs(5));
        assert_eq!(config.upstream.jwks_refresh, Duration::from_secs(60));
    }

    #[test]
    fn flags_override_the_defaults() {
        let config = Example::try_parse_from([
            "example",
            "--grpc-addr",
            "0.0.0.0:1",
            "--backend-timeout-ms",
            "250",
            "--session-cache-ms",
            "0",
        ])
        .unwrap();
        assert_eq!(config.service.grpc_addr, "0.0.0.0:1".parse().unwrap());
        assert_eq!(config.upstream.backend_timeout, Duration::from_millis(250));
        assert_eq!(config.service.session_cache, Duration::ZERO);
    }

    #[test]
    fn the_command_is_well_formed() {
        <Example as clap::CommandFactory>::command().debug_assert();
    }
}
