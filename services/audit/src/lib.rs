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

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_events::{BatchConfig, Consumer, ConsumerConfig};
use ordo_proto::audit::v1::audit_service_server::AuditServiceServer;
use ordo_service::projects::ProjectStandings;
use ordo_service::{Backends, CancellationToken, IdentityAuth, Listeners, Server, UpstreamArgs};

use crate::app::AuditQueries;
use crate::domain::Verdict;
use crate::infra::consumer::AuditHandler;
use crate::infra::mysql::MySqlAuditLog;

ordo_service::config! {
    /// Every setting of the audit service, from flags or `ORDO_*` environment variables.
    #[service(name = "audit", grpc_port = 50055, ops_port = 9105, queue = "audit.events", serve = serve, command = crate::Command)]
    #[command(mut_arg("database_max_connections", ordo_service::default_to("16")))]
    pub struct Config {
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
        /// gRPC URL of the project service (who manages which project).
        #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
        pub project_url: String,
        /// Identity and the timeout of calls to other services.
        #[command(flatten)]
        pub upstream: UpstreamArgs,
    }
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
    /// Move the messages of audit's dead-letter queue back to its event queue, to be appended once
    /// the cause of their failure is fixed, and exit. Prints how many as JSON.
    ReplayDeadLetters(ordo_service::ReplayArgs),
}

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    Backends::migrate(&config.service, &MIGRATOR).await
}

/// Verifies the chain in the database at `config.database_url`, without migrating it, from the first
/// record present; the verdict names that anchor.
pub async fn verify(config: &Config) -> anyhow::Result<Verdict> {
    let pool =
        ordo_platform::db::connect(config.service.database_url.expose(), 2).await.context("connect to the database")?;
    let verdict = infra::mysql::verify(&pool, infra::mysql::Part::WHOLE).await.context("read the log")?;
    // The whole chain starts at its first record, never past the head.
    let verdict = verdict.context("the log's first record is past its head")?;
    pool.close().await;
    Ok(verdict)
}

/// Runs the consumers and the query server until `shutdown` is cancelled, then drains: in-flight
/// queries finish and each consumer finishes its message.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    let pool = if config.migrate_at_start {
        migrate(&config).await.context("prepare the database")?
    } else {
        ordo_platform::db::connect(config.service.database_url.expose(), config.service.database_max_connections)
            .await
            .context("connect to the database")?
    };
    let backends = Backends::with_pool(&config.service, pool).await?;
    let mut server = Server::new("audit", &config.service, shutdown);
    let handler = AuditHandler::new()?;

    let batch = BatchConfig {
        max_batch: config.append_batch.max(1),
        max_wait: Duration::from_millis(config.append_batch_wait_ms),
    };
    for n in 0..config.consumers.max(1) {
        let consumer_config = ConsumerConfig {
            // Room for the next batch to arrive while this one commits.
            prefetch: batch.max_batch.saturating_mul(2),
            ..config.service.consumer_config(
                config.events_queue.clone(),
                "audit",
                infra::consumer::BINDINGS.iter().copied(),
            )
        };
        let consumer = Consumer::new_batched(backends.pool.clone(), consumer_config, batch, handler.clone())?;
        if n == 0 {
            // Declared once before the others start, so they all find the queue and its bindings.
            consumer.declare_topology().await.context("declare the queue")?;
        }
        server.spawn(|shutdown| consumer.run(shutdown));
    }

    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;
    let projects = ordo_platform::grpc::lazy_channel(&config.project_url, config.upstream.backend_timeout)
        .context("invalid --project-url")?;
    let queries = AuditQueries::new(
        Arc::new(MySqlAuditLog::new(backends.pool.clone())),
        Arc::new(ProjectStandings::new(projects)),
    );

    server.add_service(AuditServiceServer::new(grpc::AuditGrpc::new(queries)));
    identity.serve(server, listeners, &config.service, backends).await
}
