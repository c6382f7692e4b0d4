//! Ordo's identity service: users, credentials (argon2id), sessions, access and refresh tokens, and
//! the JSON Web Key Set that lets every other process verify tokens on its own.
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_auth::session::{SessionAuthority, SessionError, SessionSettings, Sessions};
use ordo_auth::{AuthenticateLayer, KeySet, KeyStore, TokenIssuer};
use ordo_events::{OutboxSignal, Relay, RelayConfig};
use ordo_platform::config::{LogFormat, RuntimeArgs, Secret};
use ordo_platform::ops::{MySqlCheck, Readiness, RedisCheck};
use ordo_platform::redis::RedisSettings;
use ordo_platform::shutdown::CancellationToken;
use ordo_proto::identity::v1::identity_service_server::IdentityServiceServer;
use tokio::net::TcpListener;

use crate::app::{IdentityService, IdentitySettings};
use crate::infra::{Argon2Hasher, MySqlIdentityStore, RedisLoginThrottle, RedisSessionCache, RedisUserCache};

/// Identity's own migrations (the events library's outbox tables are merged in at start).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every setting of the identity service, from flags or `ORDO_*` environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordo-identity", version, about = "Ordo's identity service")]
pub struct Config {
    /// What to do; without a command the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// MySQL URL of identity's own schema (created at start if missing).
    #[arg(long, env = "ORDO_DATABASE_URL", default_value = "mysql://root@127.0.0.1:3306/ordo_identity")]
    pub database_url: Secret<String>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,
    /// Redis URL (session cache and login throttle).
    #[arg(long, env = "ORDO_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: Secret<String>,
    /// Prefix of every Redis key; the gateway must use the same.
    #[arg(long, env = "ORDO_REDIS_PREFIX", default_value = "ordo:")]
    pub redis_prefix: String,
    /// Timeouts of every Redis call.
    #[command(flatten)]
    pub redis: RedisSettings,
    /// How long a session found live is trusted without looking again, milliseconds; a revoked
    /// session is refused by this instance within it.
    #[arg(long = "session-cache-ms", env = "ORDO_SESSION_CACHE_MS", default_value = "1000", value_parser = ordo_platform::config::parse_millis)]
    pub session_cache: Duration,
    /// Serve gRPC server reflection (for grpcurl and the like); development only, it lists every RPC.
    #[arg(long, env = "ORDO_GRPC_REFLECTION", default_value_t = false)]
    pub grpc_reflection: bool,
    /// RabbitMQ URL the outbox relay publishes to.
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// Address of the gRPC server.
    #[arg(long, env = "ORDO_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ORDO_OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: SocketAddr,
    /// Ed25519 signing key, base64 of PKCS#8 DER; when unset, a key generated at first start is kept
    /// in the database and shared by every instance.
    #[arg(long, env = "ORDO_JWT_PRIVATE_KEY", hide_env_values = true)]
    pub jwt_private_key: Option<Secret<String>>,
    /// Access token lifetime, seconds.
    #[arg(long, env = "ORDO_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: i64,
    /// Refresh token (and idle session) lifetime, seconds.
    #[arg(long, env = "ORDO_REFRESH_TOKEN_TTL_SECS", default_value_t = 2_592_000)]
    pub refresh_token_ttl_secs: i64,
    /// Failed logins for one email before it is locked out.
    #[arg(long, env = "ORDO_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u64,
    /// The lockout window, seconds.
    #[arg(long, env = "ORDO_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,
    /// Password hashes computed at once (default: half the cores, at least one).
    #[arg(long, env = "ORDO_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
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

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds.
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

    let key = infra::signing_key::load(&pool, config.jwt_private_key.as_ref().map(|k| k.expose().as_str()))
        .await
        .context("load the signing key")?;
    let issuer = Arc::new(TokenIssuer::new(key, config.access_token_ttl_secs));
    let keys = KeyStore::new(KeySet::from_jwks(&issuer.jwks()));

    let signal = OutboxSignal::default();
    let hash_concurrency = config
        .hash_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1));
    let service = IdentityService::new(
        Arc::new(MySqlIdentityStore::new(
            pool.clone(),
            signal.clone(),
            RedisUserCache::new(redis.clone(), config.redis_prefix.clone()),
        )),
        Arc::new(RedisSessionCache::new(redis.clone(), config.redis_prefix.clone())),
        Arc::new(RedisLoginThrottle::new(
            redis.clone(),
            config.redis_prefix.clone(),
            config.login_max_failures,
            config.login_window_secs,
        )),
        Arc::new(Argon2Hasher::new(hash_concurrency)?),
        issuer,
        IdentitySettings { refresh_ttl: time::Duration::seconds(config.refresh_token_ttl_secs) },
    )
    .await?;

    let relay = Relay::new(
        pool.clone(),
        RelayConfig::new(config.amqp_url.expose().clone(), config.events_exchange.clone()),
        signal,
    )?;
    let relay = tokio::spawn(relay.run(shutdown.clone()));

    let redis_for_sessions = redis.clone();
    let readiness = Readiness::default().with(MySqlCheck(pool.clone())).with(RedisCheck(redis));
    let ops = tokio::spawn(ordo_platform::ops::serve(ops_listener, readiness, shutdown.clone()));

    // Identity is the source of truth about its sessions: a missing marker is looked up in its own
    // store, not asked of itself over the network.
    let sessions = Sessions::new(
        redis_for_sessions,
        config.redis_prefix.clone(),
        Arc::new(OwnSessions(service.clone())),
        SessionSettings {
            live_ttl: config.session_cache,
            redis_timeout: config.redis.call_budget(),
            ..SessionSettings::default()
        },
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IdentityServiceServer<grpc::IdentityGrpc>>().await;
    let reflection = if config.grpc_reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let identity = IdentityServiceServer::new(grpc::IdentityGrpc::new(service));

    tracing::info!(grpc = %grpc_listener.local_addr()?, "identity serving");
    tonic::transport::Server::builder()
        .trace_fn(ordo_platform::grpc::request_span)
        .layer(ordo_platform::grpc::MetricsLayer)
        .layer(AuthenticateLayer::new(keys, sessions))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(identity)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .context("gRPC server")?;

    let _ = relay.await;
    let _ = ops.await;
    pool.close().await;
    tracing::info!("identity stopped");
    Ok(())
}

/// Identity's own answer about a session: its store (MySQL), which also writes the marker again.
#[derive(Debug, Clone)]
struct OwnSessions(IdentityService);

impl SessionAuthority for OwnSessions {
    fn is_live(&self, session_id: uuid::Uuid) -> Pin<Box<dyn Future<Output = Result<bool, SessionError>> + Send + '_>> {
        Box::pin(async move {
            self.0
                .check_session(&session_id.to_string())
                .await
                .map_err(|error| SessionError::Unavailable(error.to_string()))
        })
    }
}
