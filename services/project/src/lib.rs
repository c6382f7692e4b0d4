//! Ordo's project service: projects, memberships and roles, and the authority the other services
//! ask "may user U do X in project P" (`CheckAccess`, served from a Redis cache that every change
//! invalidates before it commits).
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_auth::AuthenticateLayer;
use ordo_auth::session::{RemoteSessions, SessionSettings, Sessions};
use ordo_events::{Consumer, ConsumerConfig, OutboxSignal, Relay, RelayConfig};
use ordo_platform::config::{LogFormat, RuntimeArgs, Secret};
use ordo_platform::ops::{MySqlCheck, Readiness, RedisCheck};
use ordo_platform::redis::RedisSettings;
use ordo_platform::shutdown::CancellationToken;
use ordo_proto::project::v1::project_service_server::ProjectServiceServer;
use tokio::net::TcpListener;

use crate::app::ProjectService;
use crate::app::ports::AccessCache;
use crate::infra::{IdentityDirectory, IdentityEventHandler, MySqlProjectStore, RedisAccessCache};
use ordo_auth::remote::IdentityKeys;

/// The project service's own migrations (the events library's outbox tables are merged in at start).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every setting of the project service, from flags or `ORDO_*` environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordo-project", version, about = "Ordo's project service")]
pub struct Config {
    /// What to do; without a command the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// MySQL URL of the project service's own schema (created at start if missing).
    #[arg(long, env = "ORDO_DATABASE_URL", default_value = "mysql://root@127.0.0.1:3306/ordo_project")]
    pub database_url: Secret<String>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,
    /// Redis URL (the access cache).
    #[arg(long, env = "ORDO_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: Secret<String>,
    /// Prefix of every Redis key.
    #[arg(long, env = "ORDO_REDIS_PREFIX", default_value = "ordo:")]
    pub redis_prefix: String,
    /// Timeouts of every Redis call.
    #[command(flatten)]
    pub redis: RedisSettings,
    /// How long a session found live is trusted without looking again, milliseconds; a revoked
    /// session is refused by this instance within it.
    #[arg(
        long = "session-cache-ms",
        env = "ORDO_SESSION_CACHE_MS",
        default_value = "1000",
        value_parser = ordo_platform::config::parse_millis
    )]
    pub session_cache: Duration,
    /// Serve gRPC server reflection (for grpcurl and the like); development only, it lists every RPC.
    #[arg(long, env = "ORDO_GRPC_REFLECTION", default_value_t = false)]
    pub grpc_reflection: bool,
    /// How long a cached access record lives, seconds (changes invalidate it at once anyway).
    #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_SECS", default_value_t = 600)]
    pub access_cache_ttl_secs: u64,
    /// RabbitMQ URL (outbox relay and event consumer).
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// The durable queue this service consumes other contexts' events from.
    #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = "project.events")]
    pub events_queue: String,
    /// gRPC URL of the identity service (account lookups and token keys).
    #[arg(long, env = "ORDO_IDENTITY_URL", default_value = "http://127.0.0.1:50051")]
    pub identity_url: String,
    /// Timeout of every call to another service, milliseconds.
    #[arg(long, env = "ORDO_BACKEND_TIMEOUT_MS", default_value_t = 5000)]
    pub backend_timeout_ms: u64,
    /// Address of the gRPC server.
    #[arg(long, env = "ORDO_GRPC_ADDR", default_value = "127.0.0.1:50052")]
    pub grpc_addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ORDO_OPS_ADDR", default_value = "127.0.0.1:9102")]
    pub ops_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "ORDO_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Runtime.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// A command other than serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Create the schema if needed, apply migrations, and exit.
    Migrate,
}

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    let migrator = ordo_events::merge_migrations(&MIGRATOR)?;
    let pool =
        ordo_platform::db::prepare(config.database_url.expose(), config.database_max_connections, &migrator).await?;
    Ok(pool)
}

/// How long the start waits for identity's keys before serving anyway (requests are refused as
/// unauthenticated, and `/readyz` says not ready, until they arrive).
const KEYS_AT_START: Duration = Duration::from_secs(5);

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds, the consumer finishes its message.
pub async fn serve(
    config: Config,
    grpc_listener: TcpListener,
    ops_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    let pool = migrate(&config).await.context("prepare the database")?;
    let redis =
        ordo_platform::redis::connect(config.redis_url.expose(), &config.redis).await.context("connect to Redis")?;

    let identity =
        ordo_auth::remote::identity_client(&config.identity_url, Duration::from_millis(config.backend_timeout_ms))
            .context("invalid --identity-url")?;
    let keys = IdentityKeys::new(identity.clone());
    let mut last_jwks = String::new();
    match tokio::time::timeout(KEYS_AT_START, keys.fetch(&mut last_jwks)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "identity's keys are not available yet; retrying in the background"),
        Err(_) => tracing::warn!("identity's keys are not available yet; retrying in the background"),
    }
    let refresher = tokio::spawn(keys.clone().refresh(last_jwks, shutdown.clone()));
    // Every RPC with a token is refused once its session ends (the marker identity writes, else
    // identity's CheckSession), not only at the gateway.
    let sessions = Sessions::new(
        redis.clone(),
        config.redis_prefix.clone(),
        Arc::new(RemoteSessions::new(identity.clone())),
        SessionSettings {
            live_ttl: config.session_cache,
            redis_timeout: config.redis.call_budget(),
            ..SessionSettings::default()
        },
    );

    let signal = OutboxSignal::default();
    let cache: Arc<dyn AccessCache> =
        Arc::new(RedisAccessCache::new(redis.clone(), config.redis_prefix.clone(), config.access_cache_ttl_secs));
    let service = ProjectService::new(
        Arc::new(MySqlProjectStore::new(pool.clone(), signal.clone())),
        cache.clone(),
        Arc::new(IdentityDirectory::new(identity)),
    );

    let relay = Relay::new(
        pool.clone(),
        RelayConfig::new(config.amqp_url.expose().clone(), config.events_exchange.clone()),
        signal,
    )?;
    let relay = tokio::spawn(relay.run(shutdown.clone()));

    let consumer = Consumer::new(
        pool.clone(),
        ConsumerConfig::new(
            config.amqp_url.expose().clone(),
            config.events_exchange.clone(),
            config.events_queue.clone(),
            "project",
            infra::consumer::BINDINGS.iter().copied(),
        ),
        IdentityEventHandler::new(cache),
    )?;
    // Bound before serving, so no event published once the service answers can miss the queue; if
    // the broker is down the consumer declares it when it connects.
    if let Err(error) = consumer.declare_topology().await {
        tracing::warn!(%error, "could not declare the event queue yet; the consumer will when it connects");
    }
    let consumer = tokio::spawn(consumer.run(shutdown.clone()));

    let readiness = Readiness::default().with(MySqlCheck(pool.clone())).with(RedisCheck(redis)).with(keys.clone());
    let ops = tokio::spawn(ordo_platform::ops::serve(ops_listener, readiness, shutdown.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ProjectServiceServer<grpc::ProjectGrpc>>().await;
    let reflection = if config.grpc_reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let projects = ProjectServiceServer::new(grpc::ProjectGrpc::new(service));

    tracing::info!(grpc = %grpc_listener.local_addr()?, "project serving");
    tonic::transport::Server::builder()
        .trace_fn(ordo_platform::grpc::request_span)
        .layer(ordo_platform::grpc::MetricsLayer)
        .layer(AuthenticateLayer::new(keys.store(), sessions))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(projects)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .context("gRPC server")?;

    let _ = consumer.await;
    let _ = relay.await;
    let _ = refresher.await;
    let _ = ops.await;
    pool.close().await;
    tracing::info!("project stopped");
    Ok(())
}
