//! Ordo's audit service: every domain and security event on the exchange becomes one record of an
//! append-only, SHA-256 hash-chained log (`seq` 1, 2, 3, ... with no gap), which `verify` recomputes
//! to prove that nothing was edited, removed or cut off.
//!
//! This first slice consumes and verifies; the query API (`GET /audit/events`, `GET /audit/verify`)
//! follows. `main.rs` parses [`Config`]; tests call [`serve`] and [`verify`].

pub mod domain;
pub mod infra;

use std::net::SocketAddr;

use anyhow::Context as _;
use ordo_events::{Consumer, ConsumerConfig};
use ordo_platform::config::{LogFormat, RuntimeArgs, Secret};
use ordo_platform::ops::{MySqlCheck, Readiness};
use ordo_platform::shutdown::CancellationToken;
use tokio::net::TcpListener;

use crate::domain::Verdict;
use crate::infra::consumer::AuditHandler;

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
    /// RabbitMQ URL of the event consumer.
    #[arg(long, env = "ORDO_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: Secret<String>,
    /// Topic exchange of domain events.
    #[arg(long, env = "ORDO_EVENTS_EXCHANGE", default_value = "ordo.events")]
    pub events_exchange: String,
    /// The durable queue this service consumes every event from.
    #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = "audit.events")]
    pub events_queue: String,
    /// Consumers appending at once (appends are serialised on the chain's head; more consumers
    /// overlap the network and decoding with the appends).
    #[arg(long, env = "ORDO_AUDIT_CONSUMERS", default_value_t = 2)]
    pub consumers: u16,
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
    /// Recompute the whole hash chain from the database and report the first bad `seq`; exits 1 if
    /// the log was tampered with. For auditors: needs only SELECT on the schema.
    Verify,
}

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    let migrator = ordo_events::merge_migrations(&MIGRATOR)?;
    let pool =
        ordo_platform::db::prepare(config.database_url.expose(), config.database_max_connections, &migrator).await?;
    Ok(pool)
}

/// Verifies the chain in the database at `config.database_url`, without migrating it.
pub async fn verify(config: &Config) -> anyhow::Result<Verdict> {
    let pool = ordo_platform::db::connect(config.database_url.expose(), 2).await.context("connect to the database")?;
    let verdict = infra::mysql::verify(&pool).await.context("read the log")?;
    pool.close().await;
    Ok(verdict)
}

/// Runs the consumers until `shutdown` is cancelled, then lets each finish its message.
pub async fn serve(config: Config, ops_listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    let pool = migrate(&config).await.context("prepare the database")?;
    let handler = AuditHandler::new()?;

    let mut consumers = Vec::new();
    for n in 0..config.consumers.max(1) {
        let consumer = Consumer::new(
            pool.clone(),
            ConsumerConfig::new(
                config.amqp_url.expose().clone(),
                config.events_exchange.clone(),
                config.events_queue.clone(),
                "audit",
                infra::consumer::BINDINGS.iter().copied(),
            ),
            handler.clone(),
        )?;
        if n == 0 {
            // Declared once before the others start, so they all find the queue and its bindings.
            consumer.declare_topology().await.context("declare the queue")?;
        }
        consumers.push(tokio::spawn(consumer.run(shutdown.clone())));
    }

    let readiness = Readiness::default().with(MySqlCheck(pool.clone()));
    let ops = tokio::spawn(ordo_platform::ops::serve(ops_listener, readiness, shutdown.clone()));
    tracing::info!(consumers = consumers.len(), "audit serving");

    shutdown.cancelled().await;
    for consumer in consumers {
        let _ = consumer.await;
    }
    let _ = ops.await;
    pool.close().await;
    tracing::info!("audit stopped");
    Ok(())
}
