//! Ordo's audit service: every domain and security event on the exchange becomes one record of an
//! append-only, SHA-256 hash-chained log (`seq` 1, 2, 3, ... with no gap), which `verify` recomputes
//! to prove that nothing was edited, removed or cut off.
//!
//! Queries (`ListRecords`, `VerifyLog`) are served over gRPC; `main.rs` parses [`Config`]; tests call
//! [`serve`] and [`verify`].

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_auth::AuthenticateLayer;
use ordo_auth::remote::IdentityKeys;
use ordo_auth::session::{RemoteSessions, SessionSettings, Sessions};
use ordo_events::{BatchConfig, Consumer, ConsumerConfig};
use ordo_platform::config::{LogFormat, RuntimeArgs, Secret};
use ordo_platform::ops::{MySqlCheck, Readiness, RedisCheck};
use ordo_platform::redis::RedisSettings;
use ordo_platform::shutdown::CancellationToken;
use ordo_proto::audit::v1::audit_service_server::AuditServiceServer;
use tokio::net::TcpListener;

use crate::app::AuditQueries;
use crate::domain::Verdict;
use crate::infra::consumer::AuditHandler;
use crate::infra::mysql::MySqlAuditLog;
use crate::infra::project::ProjectServiceRoles;

/// The audit service's own migrations (the events library's tables are merged in at start).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every setting of the audit service, from flags or `ORDO_*` environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordo-audit", version, about = "Ordo's audit service")]
pub struct Config {
    /// What to do; without a command the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// MySQL URL of the audit service's own schema (created at start if missing).
    #[arg(long, env = "ORDO_DATABASE_URL", default_value = "mysql://root@127.0.0.1:3306/ordo_audit")]
    pub database_url: Secret<String>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// Redis URL (the session markers identity writes).
    #[arg(long, env = "ORDO_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: Secret<String>,
    /// Prefix of every Redis key; identity must use the same.
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
    /// RabbitMQ URL of the event consumer.
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// The durable queue this service consumes every event from.
    #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = "audit.events")]
    pub events_queue: String,
    /// Apply migrations at start. Deployments turn this off and run `migrate` as a separate user, so
    /// the running service's database user needs no DDL privilege at all (the log is append-only:
    /// deploy/mysql/audit-grants.sql).
    #[arg(long, env = "ORDO_MIGRATE_AT_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_at_start: bool,
    /// Consumers appending at once (appends are serialised on the chain's head; more consumers
    /// overlap the network and decoding with the appends).
    #[arg(long, env = "ORDO_AUDIT_CONSUMERS", default_value_t = 2)]
    pub consumers: u16,
    /// Most events a consumer appends in one transaction (one lock of the chain's head, one commit);
    /// each consumer's prefetch is twice this. 1 appends every event in a transaction of its own.
    #[arg(long, env = "ORDO_AUDIT_APPEND_BATCH", default_value_t = 128,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub append_batch: u16,
    /// How long a consumer waits for more events to fill a batch, milliseconds; 0 appends only what
    /// has already arrived.
    #[arg(long, env = "ORDO_AUDIT_APPEND_BATCH_WAIT_MS", default_value_t = 5)]
    pub append_batch_wait_ms: u64,
    /// gRPC URL of the identity service (token keys).
    #[arg(long, env = "ORDO_IDENTITY_URL", default_value = "http://127.0.0.1:50051")]
    pub identity_url: String,
    /// gRPC URL of the project service (who manages which project).
    #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
    pub project_url: String,
    /// Timeout of every call to another service, milliseconds.
    #[arg(long, env = "ORDO_BACKEND_TIMEOUT_MS", default_value_t = 5000)]
    pub backend_timeout_ms: u64,
    /// Address of the gRPC server.
    #[arg(long, env = "ORDO_GRPC_ADDR", default_value = "127.0.0.1:50055")]
    pub grpc_addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ORDO_OPS_ADDR", default_value = "127.0.0.1:9105")]
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
    /// Recompute the hash chain from the database, from the first record present (its `seq` and
    /// `prev_hash` are reported as the anchor, to match against the last archived segment), and
    /// report the first bad `seq`; exits 1 if the log was tampered with. For auditors: needs only
    /// SELECT on the schema.
    Verify,
}

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    let migrator = ordo_events::merge_migrations(&MIGRATOR)?;
    let pool =
        ordo_platform::db::prepare(config.database_url.expose(), config.database_max_connections, &migrator).await?;
    Ok(pool)
}

/// Verifies the chain in the database at `config.database_url`, without migrating it, from the first
/// record present; the verdict names that anchor.
pub async fn verify(config: &Config) -> anyhow::Result<Verdict> {
    let pool = ordo_platform::db::connect(config.database_url.expose(), 2).await.context("connect to the database")?;
    let verdict = infra::mysql::verify(&pool).await.context("read the log")?;
    pool.close().await;
    Ok(verdict)
}

/// How long the start waits for identity's keys before serving anyway (`/readyz` says not ready,
/// and queries are refused as unauthenticated, until they arrive).
const KEYS_AT_START: Duration = Duration::from_secs(5);

/// Runs the consumers and the query server until `shutdown` is cancelled, then drains: in-flight
/// queries finish and each consumer finishes its message.
pub async fn serve(
    config: Config,
    grpc_listener: TcpListener,
    ops_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    let pool = if config.migrate_at_start {
        migrate(&config).await.context("prepare the database")?
    } else {
        ordo_platform::db::connect(config.database_url.expose(), config.database_max_connections)
            .await
            .context("connect to the database")?
    };
    let handler = AuditHandler::new()?;

    let batch = BatchConfig {
        max_batch: config.append_batch.max(1),
        max_wait: Duration::from_millis(config.append_batch_wait_ms),
    };
    let mut consumers = Vec::new();
    for n in 0..config.consumers.max(1) {
        let consumer_config = ConsumerConfig {
            // Room for the next batch to arrive while this one commits.
            prefetch: batch.max_batch.saturating_mul(2),
            ..ConsumerConfig::new(
                config.amqp_url.expose().clone(),
                config.events_exchange.clone(),
                config.events_queue.clone(),
                "audit",
                infra::consumer::BINDINGS.iter().copied(),
            )
        };
        let consumer = Consumer::new_batched(pool.clone(), consumer_config, batch, handler.clone())?;
        if n == 0 {
            // Declared once before the others start, so they all find the queue and its bindings.
            consumer.declare_topology().await.context("declare the queue")?;
        }
        consumers.push(tokio::spawn(consumer.run(shutdown.clone())));
    }

    let timeout = Duration::from_millis(config.backend_timeout_ms);
    let identity =
        ordo_auth::remote::identity_client(&config.identity_url, timeout).context("invalid --identity-url")?;
    let keys = IdentityKeys::new(identity.clone());
    let mut last_jwks = String::new();
    match tokio::time::timeout(KEYS_AT_START, keys.fetch(&mut last_jwks)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "identity's keys are not available yet; retrying in the background"),
        Err(_) => tracing::warn!("identity's keys are not available yet; retrying in the background"),
    }
    let refresher = tokio::spawn(keys.clone().refresh(last_jwks, shutdown.clone()));
    let redis =
        ordo_platform::redis::connect(config.redis_url.expose(), &config.redis).await.context("connect to Redis")?;
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
    let projects = ordo_platform::grpc::lazy_channel(&config.project_url, timeout).context("invalid --project-url")?;
    let queries =
        AuditQueries::new(Arc::new(MySqlAuditLog::new(pool.clone())), Arc::new(ProjectServiceRoles::new(projects)));

    let readiness = Readiness::default().with(MySqlCheck(pool.clone())).with(RedisCheck(redis)).with(keys.clone());
    let ops = tokio::spawn(ordo_platform::ops::serve(ops_listener, readiness, shutdown.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuditServiceServer<grpc::AuditGrpc>>().await;
    let reflection = if config.grpc_reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let audit = AuditServiceServer::new(grpc::AuditGrpc::new(queries));

    tracing::info!(grpc = %grpc_listener.local_addr()?, consumers = consumers.len(), "audit serving");
    tonic::transport::Server::builder()
        .trace_fn(ordo_platform::grpc::request_span)
        .layer(ordo_platform::grpc::MetricsLayer)
        .layer(AuthenticateLayer::new(keys.store(), sessions))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(audit)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .context("gRPC server")?;

    for consumer in consumers {
        let _ = consumer.await;
    }
    let _ = refresher.await;
    let _ = ops.await;
    pool.close().await;
    tracing::info!("audit stopped");
    Ok(())
}
