//! Ordo's notification service: every event of identity, project and task that concerns someone
//! becomes an in-app notification for them (never for its actor, never for someone who lost access
//! to the project), with the states of the bell (seen), of each item (read) and of the list
//! (archived), and per-kind preferences.
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::sync::Arc;
use std::time::Duration;

use ordo_events::{BatchConfig, Consumer, ConsumerConfig, OutboxSignal, Subscription};
use ordo_proto::notification::v1::notification_service_server::NotificationServiceServer;
pub use ordo_service::Command;
use ordo_service::{CancellationToken, IdentityAuth, Listeners, Server, UpstreamArgs};
use time::OffsetDateTime;

use crate::app::{LiveHub, NotificationService};
use crate::infra::{IdentitySessions, LiveWakeups, MySqlNotificationStore, NotificationHandler};

ordo_service::config! {
    /// Every setting of the notification service, from flags or `ORDO_*` environment variables.
    #[service(name = "notification", grpc_port = 50054, ops_port = 9104, queue = "notification.events", serve = serve)]
    pub struct Config {
        /// How long a notification is kept, days; older ones are deleted in small batches.
        #[arg(long, env = "ORDO_NOTIFICATION_RETENTION_DAYS", default_value_t = 90,
              value_parser = clap::value_parser!(u16).range(1..))]
        pub retention_days: u16,
        /// Most events stored in one transaction (one commit for many); 1 stores each alone.
        #[arg(long, env = "ORDO_NOTIFICATION_INGEST_BATCH", default_value_t = 64,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        pub ingest_batch: u16,
        /// Live streams one user may hold open on one instance; one more is refused (HTTP 429).
        #[arg(long, env = "ORDO_MAX_STREAMS_PER_USER", default_value_t = 5,
              value_parser = clap::value_parser!(u16).range(1..))]
        pub max_streams_per_user: u16,
        /// Identity and the timeout of calls to other services.
        #[command(flatten)]
        pub upstream: UpstreamArgs,
    }
}

/// How often expired notifications are swept.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// Notifications deleted per statement of a sweep (a short lock each).
const RETENTION_BATCH: u32 = 1000;

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish and the consumer finishes its message.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut server, backends) = Server::start("notification", &config.service, &MIGRATOR, shutdown).await?;
    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;

    let live = Arc::new(LiveHub::new(usize::from(config.max_streams_per_user)));
    let sessions = Arc::new(IdentitySessions::new(identity.sessions(&config.service, &backends)));
    let store = Arc::new(MySqlNotificationStore::new(backends.pool.clone()));
    let service = NotificationService::new(store, live.clone(), sessions);
    let signal = OutboxSignal::default();
    server.spawn_relay(&config.service, &backends.pool, signal.clone())?;
    // Every instance hears every wake-up, so a stream on any instance gets what any instance stored.
    let wakeups = Subscription::new(
        config.service.subscription_config("notification-live", &[infra::live::CREATED]),
        LiveWakeups::new(live.clone()),
    )?;
    server.spawn(|shutdown| wakeups.run(shutdown));
    // Open streams would hold the server's drain for ever: they end at shutdown, and their clients
    // resume on another instance.
    let closing = live.clone();
    server.spawn(|shutdown| async move {
        shutdown.cancelled().await;
        closing.close();
    });
    let batch = BatchConfig { max_batch: config.ingest_batch, max_wait: Duration::from_millis(5) };
    let consumer_config = ConsumerConfig {
        // Room for the next batch to arrive while this one commits.
        prefetch: batch.max_batch.saturating_mul(2),
        ..config.service.consumer_config(
            config.events_queue.clone(),
            "notification",
            infra::envelope::BINDINGS.iter().copied(),
        )
    };
    let consumer =
        Consumer::new_batched(backends.pool.clone(), consumer_config, batch, NotificationHandler::new(signal))?;
    server.spawn_consumer(consumer).await;
    let retention = time::Duration::days(i64::from(config.retention_days));
    let sweeper = service.clone();
    server.spawn(|shutdown| sweep_expired(sweeper, retention, shutdown));

    server.add_service(NotificationServiceServer::new(grpc::NotificationGrpc::new(service)));
    identity.serve(server, listeners, &config.service, backends).await
}

/// Deletes notifications past `retention` every [`RETENTION_SWEEP`] until shutdown.
async fn sweep_expired(service: NotificationService, retention: time::Duration, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(RETENTION_SWEEP);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match service.delete_expired(OffsetDateTime::now_utc(), retention, RETENTION_BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired notifications deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired notifications failed; retrying later"),
        }
    }
}
