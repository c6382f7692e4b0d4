//! Ordo's notification service: every event of identity, project and task that concerns someone
//! becomes an in-app notification for them (never for its actor, never for someone who lost access
//! to the project), with the states of the bell (seen), of each item (read) and of the list
//! (archived), and per-kind preferences; by email too, one mail per recipient and task within a
//! window, sent once through SES, or once a day as a digest at the user's hour; by Web Push;
//! assignees are reminded of a task due soon; and a project's events are posted to its webhooks,
//! signed, retried and logged.
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_events::json::PayloadJson;
use ordo_events::{BatchConfig, Consumer, ConsumerConfig, OutboxSignal, Subscription};
use ordo_platform::aws::AwsSettings;
use ordo_platform::config::Secret;
use ordo_proto::notification::v1::notification_service_server::NotificationServiceServer;
use ordo_proto::notification::v1::webhook_service_server::WebhookServiceServer;
pub use ordo_service::Command;
use ordo_service::{CancellationToken, IdentityAuth, Listeners, Server, UpstreamArgs};
use sqlx::MySqlPool;
use time::OffsetDateTime;

use crate::app::push::{PushChannel, PushSender, PushService};
use crate::app::{
    DispatchSettings, Dispatcher, EmailSender, IngestSettings, LiveHub, NotificationService, SendPolicy, WebhookService,
};
use crate::domain::webhook::{DELIVERY_TIMEOUT, Reach};
use crate::infra::push_store::MySqlPush;
use crate::infra::web_push::{VapidKey, WebPush};
use crate::infra::{
    IdentitySessions, LiveWakeups, MySqlEmailStore, MySqlNotificationStore, MySqlWebhooks, NotificationHandler,
    ProjectServiceRoles, SesMailer, SesSettings, WebhookHttp,
};

ordo_service::config! {
    /// Every setting of the notification service, from flags or `ORDO_*` environment variables.
    #[service(name = "notification", grpc_port = 50054, ops_port = 9104, queue = "notification.events", serve = serve)]
    pub struct Config {
        /// How long a notification, and a webhook delivery with its attempts, is kept, days; older
        /// ones are deleted in small batches.
        #[arg(long, env = "ORDO_NOTIFICATION_RETENTION_DAYS", default_value_t = 90,
              value_parser = clap::value_parser!(u16).range(1..))]
        pub retention_days: u16,
        /// Most events stored in one transaction (one commit for many); 1 stores each alone.
        #[arg(long, env = "ORDO_NOTIFICATION_INGEST_BATCH", default_value_t = 64,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        pub ingest_batch: u16,
        /// Memory for pages of notification lists kept while current (each served after a one-row
        /// check that nothing changed since), MiB; 0 reads every page from the database.
        #[arg(long, env = "ORDO_NOTIFICATION_PAGE_CACHE_MIB", default_value_t = 32,
              value_parser = clap::value_parser!(u32).range(..=4096))]
        pub page_cache_mib: u32,
        /// Live streams one user may hold open on one instance; one more is refused (HTTP 429).
        #[arg(long, env = "ORDO_MAX_STREAMS_PER_USER", default_value_t = 5,
              value_parser = clap::value_parser!(u16).range(1..))]
        pub max_streams_per_user: u16,
        /// Email notifications; off stores in-app notifications only.
        #[arg(long, env = "ORDO_EMAIL_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
        pub email_enabled: bool,
        /// The sender of notification email (a verified SES identity).
        #[arg(long, env = "ORDO_EMAIL_FROM", default_value = "Ordo <notifications@ordo.localhost>")]
        pub email_from: String,
        /// How long a mail gathers the notifications of one recipient and task before it goes,
        /// seconds: a burst of changes becomes one mail.
        #[arg(long, env = "ORDO_EMAIL_WINDOW_SECS", default_value_t = 120,
              value_parser = clap::value_parser!(u32).range(..=86_400))]
        pub email_window_secs: u32,
        /// How often each instance looks for daily digests that are due, milliseconds (a digest
        /// goes within this of its hour).
        #[arg(long, env = "ORDO_DIGEST_POLL_MS", default_value_t = 15_000,
              value_parser = clap::value_parser!(u64).range(100..=600_000))]
        pub digest_poll_ms: u64,
        /// The most tries of one mail SES answers "not now" (throttling, 5xx); then it fails.
        #[arg(long, env = "ORDO_EMAIL_MAX_ATTEMPTS", default_value_t = 8,
              value_parser = clap::value_parser!(u32).range(1..=20))]
        pub email_max_attempts: u32,
        /// SES endpoint, e.g. a local stand-in such as moto; empty for AWS itself. With an endpoint
        /// set, the sender's domain is created as an identity at start.
        #[arg(long, env = "ORDO_SES_ENDPOINT", default_value = "http://127.0.0.1:9002")]
        pub ses_endpoint: String,
        /// SES region.
        #[arg(long, env = "ORDO_SES_REGION", default_value = "us-east-1")]
        pub ses_region: String,
        /// Access key id; unset uses the AWS default chain (environment, ECS task role, ...).
        #[arg(long, env = "ORDO_SES_ACCESS_KEY_ID", requires = "ses_secret_access_key")]
        pub ses_access_key_id: Option<String>,
        /// Secret access key, with --ses-access-key-id.
        #[arg(long, env = "ORDO_SES_SECRET_ACCESS_KEY", requires = "ses_access_key_id")]
        pub ses_secret_access_key: Option<Secret<String>>,
        /// SES configuration set of the mail (bounce and complaint events), if any.
        #[arg(long, env = "ORDO_SES_CONFIGURATION_SET")]
        pub ses_configuration_set: Option<String>,
        /// How long before a task's due date its assignees are reminded of it, minutes.
        #[arg(long, env = "ORDO_REMINDER_LEAD_MINS", default_value_t = 1440,
              value_parser = clap::value_parser!(u32).range(1..=43_200))]
        pub reminder_lead_mins: u32,
        /// How often each instance looks for reminders that are due, milliseconds.
        #[arg(long, env = "ORDO_REMINDER_POLL_MS", default_value_t = 10_000,
              value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
        pub reminder_poll_ms: u64,
        /// gRPC URL of the project service (who manages a project's webhooks).
        #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
        pub project_url: String,
        /// Let webhooks (and push messages) reach loopback addresses (this host): for tests and a
        /// receiver beside the service. Link-local addresses (cloud metadata) are never reached.
        #[arg(long, env = "ORDO_WEBHOOK_ALLOW_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
        pub webhook_allow_loopback: bool,
        /// Let webhooks (and push messages) reach private networks (RFC 1918, unique local IPv6,
        /// shared address space): for receivers inside the deployment's own network.
        #[arg(long, env = "ORDO_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
        pub webhook_allow_private: bool,
        /// How often each instance looks for webhook deliveries that are due (it looks at once when
        /// its own consumer queued some), milliseconds.
        #[arg(long, env = "ORDO_WEBHOOK_POLL_MS", default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(10..=60_000))]
        pub webhook_poll_ms: u64,
        /// What the waits between webhook attempts (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) are
        /// multiplied by; 1 in production, tests shorten them.
        #[arg(long, env = "ORDO_WEBHOOK_RETRY_SCALE", default_value_t = 1.0, value_parser = retry_scale)]
        pub webhook_retry_scale: f64,
        /// The VAPID private key push messages are signed with (RFC 8292): base64url of the raw
        /// 32-byte P-256 key, as `npx web-push generate-vapid-keys` prints it (one key in 64 starts
        /// with `-`, which is taken as the value, not as a flag). Unset: no push.
        #[arg(long, env = "ORDO_VAPID_PRIVATE_KEY", allow_hyphen_values = true, hide_env_values = true)]
        pub vapid_private_key: Option<Secret<String>>,
        /// Who push services may contact about this deployment's messages (`mailto:` or `https:`).
        #[arg(long, env = "ORDO_VAPID_SUBJECT", default_value = "mailto:notifications@ordo.localhost")]
        pub vapid_subject: String,
        /// Identity and the timeout of calls to other services.
        #[command(flatten)]
        pub upstream: UpstreamArgs,
    }
}

/// A factor of the webhook retry waits: from 0.0001 to 1.
fn retry_scale(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(scale) if (0.0001..=1.0).contains(&scale) => Ok(scale),
        _ => Err("a number from 0.0001 to 1".to_owned()),
    }
}

/// How often expired notifications are swept.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// Notifications deleted per statement of a sweep (a short lock each).
const RETENTION_BATCH: u32 = 1000;
/// Reminders fired per transaction.
const REMINDER_BATCH: u32 = 100;
/// Digests composed per transaction.
const DIGEST_BATCH: u32 = 50;
/// How often each instance looks for mails that are due.
const MAIL_POLL: Duration = Duration::from_secs(1);
/// How often mails of senders that died mid-send, and mails past the retention, are looked for.
const MAIL_SWEEP: Duration = Duration::from_secs(60);

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the consumer finishes its message and the mail sender the mails it is sending.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut server, backends) = Server::start("notification", &config.service, &MIGRATOR, shutdown).await?;
    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;

    let live = Arc::new(LiveHub::new(usize::from(config.max_streams_per_user)));
    let sessions = Arc::new(IdentitySessions::new(identity.sessions(&config.service, &backends)));
    let signal = OutboxSignal::default();
    let store = Arc::new(
        MySqlNotificationStore::new(backends.pool.clone())
            .with_page_cache(u64::from(config.page_cache_mib) << 20)
            .with_relay(signal.clone()),
    );
    let service = NotificationService::new(store, live.clone(), sessions);
    server.spawn_relay(&config.service, &backends.pool, signal.clone())?;
    // Every instance hears every wake-up, so a stream on any instance gets what any instance stored.
    let wakeups = Subscription::new(
        config.service.subscription_config(
            "notification-live",
            &[infra::live::CREATED, infra::live::CHANGED, infra::live::JOB_PROGRESSED],
        ),
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
    let retention = time::Duration::days(i64::from(config.retention_days));
    let settings = IngestSettings {
        email_window: config.email_enabled.then(|| time::Duration::seconds(i64::from(config.email_window_secs))),
        reminder_lead: time::Duration::minutes(i64::from(config.reminder_lead_mins)),
        push: config.vapid_private_key.is_some(),
    };
    let (pool, every, wake) = (backends.pool.clone(), Duration::from_millis(config.reminder_poll_ms), signal.clone());
    server.spawn(move |shutdown| remind(pool, settings, every, wake, shutdown));
    if config.email_enabled {
        let sender = email_sender(&config, backends.pool.clone()).await?;
        let sweeper = sender.clone();
        server.spawn(move |shutdown| send_mail(sender, shutdown));
        let pool = backends.pool.clone();
        server.spawn(move |shutdown| sweep_mail(sweeper, pool, retention, shutdown));
        let (pool, every) = (backends.pool.clone(), Duration::from_millis(config.digest_poll_ms));
        server.spawn(move |shutdown| digest(pool, every, shutdown));
    }
    let reach = Reach { loopback: config.webhook_allow_loopback, private: config.webhook_allow_private };
    let http = Arc::new(WebhookHttp::new(reach).context("build the webhook client")?);
    let webhooks = Arc::new(MySqlWebhooks::new(backends.pool.clone()).with_notices(settings, signal.clone()));
    let dispatch = DispatchSettings {
        poll: Duration::from_millis(config.webhook_poll_ms),
        retry_scale: config.webhook_retry_scale,
        ..DispatchSettings::default()
    };
    let dispatcher = Dispatcher::new(webhooks.clone(), http.clone(), dispatch);
    let sender = dispatcher.clone();
    server.spawn(|shutdown| sender.run(shutdown));
    let projects = ordo_platform::grpc::lazy_channel(&config.project_url, config.upstream.backend_timeout)
        .context("invalid --project-url")?;
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
    let consumer = Consumer::new_batched(
        backends.pool.clone(),
        consumer_config,
        batch,
        NotificationHandler::new(signal, settings)
            .with_webhooks(PayloadJson::new().context("read the event descriptors")?, dispatcher),
    )?;
    server.spawn_consumer(consumer).await;
    let sweeper = service.clone();
    let webhook_service = WebhookService::new(webhooks, Arc::new(ProjectServiceRoles::new(projects)), http);
    let webhook_sweeper = webhook_service.clone();
    server.spawn(move |shutdown| sweep_expired(sweeper, webhook_sweeper, retention, shutdown));

    let push_store = Arc::new(MySqlPush::new(backends.pool.clone()));
    let push_channel = match &config.vapid_private_key {
        Some(key) => {
            let key = VapidKey::new(key.expose(), &config.vapid_subject).context("invalid --vapid-private-key")?;
            let channel: Arc<dyn PushChannel> =
                Arc::new(WebPush::new(key, reach, DELIVERY_TIMEOUT).context("build the push client")?);
            let sender = PushSender::new(push_store.clone(), channel.clone());
            server.spawn(move |shutdown| send_pushes(sender, shutdown));
            Some(channel)
        }
        None => None,
    };
    let push = PushService::new(push_store, push_channel);
    server.add_service(NotificationServiceServer::new(grpc::NotificationGrpc::new(service, push)));
    server.add_service(WebhookServiceServer::new(grpc::WebhookGrpc::new(webhook_service)));
    identity.serve(server, listeners, &config.service, backends).await
}

/// The mail sender of `config`: SES (creating the sender's identity on a local stand-in) and the
/// service's email outbox.
async fn email_sender(config: &Config, pool: MySqlPool) -> anyhow::Result<EmailSender> {
    let settings = SesSettings {
        aws: AwsSettings::new(
            &config.ses_endpoint,
            &config.ses_region,
            config.ses_access_key_id.as_ref(),
            config.ses_secret_access_key.as_ref(),
        ),
        from: config.email_from.clone(),
        configuration_set: config.ses_configuration_set.clone(),
    };
    let mailer = SesMailer::new(&settings, config.upstream.backend_timeout).await?;
    if settings.aws.endpoint.is_some() {
        mailer.ensure_sender_identity().await?;
    }
    let policy = SendPolicy { max_attempts: config.email_max_attempts, ..SendPolicy::default() };
    let store = Arc::new(MySqlEmailStore::new(pool));
    Ok(EmailSender::new(store, Arc::new(mailer), policy))
}

/// Every `every` until shutdown, runs `round` again and again while it answers `true` (a full
/// batch: more may be waiting); a failed round is logged as `what` failing and waits for the next
/// tick. A round under way at shutdown finishes first.
async fn poll<F, Fut>(every: Duration, what: &'static str, shutdown: CancellationToken, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = app::Result<bool>>,
{
    let mut ticks = ordo_platform::shutdown::Ticks::every(every);
    while ticks.next(&shutdown).await {
        loop {
            match round().await {
                Ok(true) if !shutdown.is_cancelled() => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "{what} failed; retrying");
                    break;
                }
            }
        }
    }
}

/// Sends the mails that are due every [`MAIL_POLL`] until shutdown.
async fn send_mail(sender: EmailSender, shutdown: CancellationToken) {
    let sender = &sender;
    poll(MAIL_POLL, "claiming mails", shutdown, move || sender.send_due(OffsetDateTime::now_utc())).await;
}

/// Every [`MAIL_SWEEP`] until shutdown, marks the mails of senders that died mid-send and deletes
/// mails, and the records of digests, past `retention`.
async fn sweep_mail(sender: EmailSender, pool: MySqlPool, retention: time::Duration, shutdown: CancellationToken) {
    let (sender, pool) = (&sender, &pool);
    poll(MAIL_SWEEP, "sweeping mails", shutdown, move || async move {
        let now = OffsetDateTime::now_utc();
        if let Err(error) = sender.abandon_expired_claims(now).await {
            tracing::warn!(%error, "looking for abandoned mails failed; retrying later");
        }
        let deleted = sender.delete_finished_before(now - retention, RETENTION_BATCH).await?;
        if deleted > 0 {
            tracing::info!(deleted, "expired mails deleted");
        }
        // A day's record outlives the day by far: a schedule moved back cannot reach it again.
        let digests = infra::digests::delete_before(pool, now - retention, RETENTION_BATCH).await?;
        Ok(digests == u64::from(RETENTION_BATCH))
    })
    .await;
}

/// Composes the daily digests that are due every `every` until shutdown (their mails go with the
/// others).
async fn digest(pool: MySqlPool, every: Duration, shutdown: CancellationToken) {
    let pool = &pool;
    poll(every, "composing digests", shutdown, move || async move {
        let claimed = infra::digests::compose_due(pool, OffsetDateTime::now_utc(), DIGEST_BATCH).await?;
        Ok(claimed == DIGEST_BATCH as usize)
    })
    .await;
}

/// Sends the push messages that are due every [`MAIL_POLL`] until shutdown.
async fn send_pushes(sender: PushSender, shutdown: CancellationToken) {
    let sender = &sender;
    poll(MAIL_POLL, "claiming push messages", shutdown, move || sender.send_due(OffsetDateTime::now_utc())).await;
}

/// Fires the reminders that are due every `every` until shutdown, waking the relay after each batch
/// that notified someone.
async fn remind(
    pool: MySqlPool,
    settings: IngestSettings,
    every: Duration,
    signal: OutboxSignal,
    shutdown: CancellationToken,
) {
    let (pool, signal) = (&pool, &signal);
    poll(every, "firing reminders", shutdown, move || async move {
        let claimed = infra::reminders::fire_due(pool, OffsetDateTime::now_utc(), REMINDER_BATCH, settings).await?;
        if claimed > 0 {
            signal.notify();
        }
        Ok(claimed == REMINDER_BATCH as usize)
    })
    .await;
}

/// Deletes notifications, and webhook deliveries and attempts, past `retention` every
/// [`RETENTION_SWEEP`] until shutdown.
async fn sweep_expired(
    service: NotificationService,
    webhooks: WebhookService,
    retention: time::Duration,
    shutdown: CancellationToken,
) {
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
        match webhooks.delete_expired(OffsetDateTime::now_utc(), retention, RETENTION_BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired webhook deliveries deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired webhook deliveries failed; retrying later"),
        }
    }
}

#[cfg(test)]
mod flag_tests {
    use clap::Parser as _;

    use super::Config;

    #[test]
    fn a_vapid_key_starting_with_a_hyphen_is_a_value_not_a_flag() {
        // base64url's alphabet holds `-`, so one generated key in 64 starts with it.
        let key = "-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_abcdefg";
        let config = Config::try_parse_from(["ordo-notification", "--vapid-private-key", key])
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.vapid_private_key.map(|secret| secret.expose().clone()).as_deref(), Some(key));
    }
}
