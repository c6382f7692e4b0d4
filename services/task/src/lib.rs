//! Ordo's task service: tasks, their numbering and board order, comments and watchers, with every
//! change announced through the outbox. Who may do what is the project service's answer
//! (`CheckAccess`), asked with the caller's own token and kept briefly in memory ([`app::AccessCache`]);
//! every instance subscribes to the events that change an answer and drops it when they arrive.
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
use ordo_auth::remote::IdentityKeys;
use ordo_auth::session::{RemoteSessions, SessionSettings, Sessions};
use ordo_events::{Consumer, ConsumerConfig, OutboxSignal, Relay, RelayConfig, Subscription, SubscriptionConfig};
use ordo_platform::config::{LogFormat, RuntimeArgs, Secret};
use ordo_platform::ops::{MySqlCheck, Readiness, RedisCheck};
use ordo_platform::redis::RedisSettings;
use ordo_platform::shutdown::CancellationToken;
use ordo_proto::task::v1::task_service_server::TaskServiceServer;
use tokio::net::TcpListener;

use crate::app::ports::PageCache;
use crate::app::{AccessCache, AttachmentSettings, TaskService};
use crate::infra::{
    AccessInvalidation, MySqlTaskStore, ProjectEventHandler, ProjectServiceAccess, RedisPageCache, S3ObjectStore,
    S3Settings,
};

/// The task service's own migrations (the events library's outbox tables are merged in at start).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every setting of the task service, from flags or `ORDO_*` environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ordo-task", version, about = "Ordo's task service")]
pub struct Config {
    /// What to do; without a command the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// MySQL URL of the task service's own schema (created at start if missing).
    #[arg(long, env = "ORDO_DATABASE_URL", default_value = "mysql://root@127.0.0.1:3306/ordo_task")]
    pub database_url: Secret<String>,
    /// Largest number of pooled database connections.
    #[arg(long, env = "ORDO_DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,
    /// Redis URL (the page cache of task lists; checked by /readyz).
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
    /// RabbitMQ URL (outbox relay and event consumer).
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// The durable queue this service consumes the project service's events from.
    #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = "task.events")]
    pub events_queue: String,
    /// gRPC URL of the identity service (token keys).
    #[arg(long, env = "ORDO_IDENTITY_URL", default_value = "http://127.0.0.1:50051")]
    pub identity_url: String,
    /// gRPC URL of the project service (who may do what in which project).
    #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
    pub project_url: String,
    /// How long an answer of the project service (a user's standing in a project) is reused,
    /// milliseconds; the events that change it drop it sooner. 0 asks every time.
    #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_MS", default_value_t = 5000)]
    pub access_cache_ttl_ms: u64,
    /// Most answers of the project service kept at once.
    #[arg(long, env = "ORDO_ACCESS_CACHE_CAPACITY", default_value_t = 100_000)]
    pub access_cache_capacity: usize,
    /// How long an encoded page of a project's task list is kept in Redis, seconds; any change to
    /// the project's tasks makes its pages stale at once. 0 turns the page cache off.
    #[arg(long, env = "ORDO_LIST_CACHE_TTL_SECS", default_value_t = 30)]
    pub list_cache_ttl_secs: u64,
    /// Timeout of every call to another service, milliseconds.
    #[arg(long, env = "ORDO_BACKEND_TIMEOUT_MS", default_value_t = 5000)]
    pub backend_timeout_ms: u64,
    /// Address of the gRPC server.
    #[arg(long, env = "ORDO_GRPC_ADDR", default_value = "127.0.0.1:50053")]
    pub grpc_addr: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "ORDO_OPS_ADDR", default_value = "127.0.0.1:9103")]
    pub ops_addr: SocketAddr,
    /// S3 endpoint for attachments, e.g. a local S3-compatible server; empty for AWS itself.
    #[arg(long, env = "ORDO_S3_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub s3_endpoint: String,
    /// Region of the attachment bucket.
    #[arg(long, env = "ORDO_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Bucket of attachment objects (created at start when missing).
    #[arg(long, env = "ORDO_S3_BUCKET", default_value = "ordo-attachments")]
    pub s3_bucket: String,
    /// Access key id; unset uses the AWS default chain (environment, ECS task role, ...).
    #[arg(long, env = "ORDO_S3_ACCESS_KEY_ID", requires = "s3_secret_access_key")]
    pub s3_access_key_id: Option<String>,
    /// Secret access key, with --s3-access-key-id.
    #[arg(long, env = "ORDO_S3_SECRET_ACCESS_KEY", requires = "s3_access_key_id")]
    pub s3_secret_access_key: Option<Secret<String>>,
    /// Virtual-hosted-style bucket addressing (`bucket.endpoint`), as AWS prefers; off uses path style
    /// (`endpoint/bucket`), which local S3-compatible servers need.
    #[arg(long, env = "ORDO_S3_VIRTUAL_HOSTED", default_value_t = false)]
    pub s3_virtual_hosted: bool,
    /// Largest attachment, in bytes (25 MiB).
    #[arg(long, env = "ORDO_MAX_ATTACHMENT_BYTES", default_value_t = 26_214_400)]
    pub max_attachment_bytes: u64,
    /// Lifetime of presigned download URLs, seconds; 0 turns them off.
    #[arg(long, env = "ORDO_PRESIGN_TTL_SECS", default_value_t = 300)]
    pub presign_ttl_secs: u64,
    /// How often deleted attachments' objects are swept from storage, seconds.
    #[arg(long, env = "ORDO_OBJECT_SWEEP_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub object_sweep_secs: u64,
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
    let objects = S3ObjectStore::new(&s3_settings(&config), timeout).await;
    // Not awaited: attachments wait for the bucket, nothing else does (`/readyz` creates it too).
    let bucket = objects.clone();
    tokio::spawn(async move {
        if let Err(error) = bucket.ensure_bucket().await {
            tracing::warn!(%error, bucket = bucket.bucket(), "the attachment bucket is not available yet");
        }
    });
    let access = AccessCache::new(
        Arc::new(ProjectServiceAccess::new(projects)),
        Duration::from_millis(config.access_cache_ttl_ms),
        config.access_cache_capacity,
    );
    let invalidation = Subscription::new(
        SubscriptionConfig::new(
            config.amqp_url.expose().clone(),
            config.events_exchange.clone(),
            "task-access-cache",
            infra::access_events::BINDINGS,
        ),
        AccessInvalidation::new(access.clone()),
    )?;
    let invalidation = tokio::spawn(invalidation.run(shutdown.clone()));
    let signal = OutboxSignal::default();
    let pages: Option<Arc<dyn PageCache>> = (config.list_cache_ttl_secs > 0).then(|| {
        Arc::new(RedisPageCache::new(
            redis.clone(),
            config.redis_prefix.clone(),
            Duration::from_secs(config.list_cache_ttl_secs),
        )) as Arc<dyn PageCache>
    });
    let mut service = TaskService::new(Arc::new(MySqlTaskStore::new(pool.clone(), signal.clone())), Arc::new(access));
    let mut project_events = ProjectEventHandler::new(signal.clone());
    if let Some(pages) = &pages {
        service = service.with_page_cache(pages.clone());
        project_events = project_events.with_page_cache(pages.clone());
    }
    let service = service.with_attachments(AttachmentSettings {
        objects: Arc::new(objects.clone()),
        max_bytes: config.max_attachment_bytes,
        presign_ttl: (config.presign_ttl_secs > 0).then(|| Duration::from_secs(config.presign_ttl_secs)),
    });
    let sweeper =
        tokio::spawn(sweep_objects(service.clone(), Duration::from_secs(config.object_sweep_secs), shutdown.clone()));

    let relay = Relay::new(
        pool.clone(),
        RelayConfig::new(config.amqp_url.expose().clone(), config.events_exchange.clone()),
        signal.clone(),
    )?;
    let relay = tokio::spawn(relay.run(shutdown.clone()));

    let consumer = Consumer::new(
        pool.clone(),
        ConsumerConfig::new(
            config.amqp_url.expose().clone(),
            config.events_exchange.clone(),
            config.events_queue.clone(),
            "task",
            infra::consumer::BINDINGS.iter().copied(),
        ),
        project_events,
    )?;
    // Bound before serving, so no event published once the service answers can miss the queue; if
    // the broker is down the consumer declares it when it connects.
    if let Err(error) = consumer.declare_topology().await {
        tracing::warn!(%error, "could not declare the event queue yet; the consumer will when it connects");
    }
    let consumer = tokio::spawn(consumer.run(shutdown.clone()));

    let readiness = Readiness::default()
        .with(MySqlCheck(pool.clone()))
        .with(RedisCheck(redis))
        .with(keys.clone())
        .with(infra::s3::BucketCheck(objects));
    let ops = tokio::spawn(ordo_platform::ops::serve(ops_listener, readiness, shutdown.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TaskServiceServer<grpc::TaskGrpc>>().await;
    let reflection = if config.grpc_reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let tasks = TaskServiceServer::new(grpc::TaskGrpc::new(service));

    tracing::info!(grpc = %grpc_listener.local_addr()?, "task serving");
    tonic::transport::Server::builder()
        .trace_fn(ordo_platform::grpc::request_span)
        .layer(ordo_platform::grpc::MetricsLayer)
        .layer(AuthenticateLayer::new(keys.store(), sessions))
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(tasks)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .context("gRPC server")?;

    let _ = consumer.await;
    let _ = invalidation.await;
    let _ = sweeper.await;
    let _ = relay.await;
    let _ = refresher.await;
    let _ = ops.await;
    pool.close().await;
    tracing::info!("task stopped");
    Ok(())
}

/// The object store settings of `config`.
fn s3_settings(config: &Config) -> S3Settings {
    S3Settings {
        endpoint: Some(config.s3_endpoint.trim()).filter(|e| !e.is_empty()).map(str::to_owned),
        region: config.s3_region.clone(),
        bucket: config.s3_bucket.clone(),
        credentials: match (&config.s3_access_key_id, &config.s3_secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.expose().clone())),
            _ => None,
        },
        force_path_style: !config.s3_virtual_hosted,
    }
}

/// Deletes the objects of deleted attachments, tasks and projects, and of abandoned uploads, every
/// `every` until `shutdown`.
async fn sweep_objects(service: TaskService, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match service.sweep_objects().await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "deleted objects swept from storage"),
            Err(error) => tracing::warn!(%error, "sweeping deleted objects failed; retrying later"),
        }
    }
}
