//! The outbox relay: publishes committed `outbox_event` rows to the events exchange in id order,
//! waits for the broker's publisher confirms, and only then marks the rows published. A crash between
//! the two republishes the batch (delivery is at least once; consumers drop duplicates by
//! `event_id`), but a row is never marked without having been confirmed, so none is ever lost.
//!
//! Several instances may run against one schema: each round holds the single `outbox_relay` row with
//! `FOR UPDATE SKIP LOCKED` from the read of the batch to the commit, so one instance publishes at a
//! time, in order, and the others skip the round instead of queueing on the lock.

use std::fmt;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};
use ordo_proto::events::v1::Envelope;
use prost::Message as _;
use sqlx::{Connection as _, MySqlPool, QueryBuilder};
use time::PrimitiveDateTime;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::{self, Backoff};
use crate::trace_context::{self, TRACEPARENT, TRACESTATE};
use crate::{CONTENT_TYPE, Error, OutboxSignal, Result, declare_exchange};

const PUBLISHED_TOTAL: &str = "ordo_outbox_published_total";
const BACKLOG: &str = "ordo_outbox_backlog";
const PUBLISH_ERRORS_TOTAL: &str = "ordo_outbox_publish_errors_total";
const PRUNED_TOTAL: &str = "ordo_outbox_pruned_total";
const OLDEST_AGE: &str = "ordo_outbox_oldest_unpublished_age_seconds";
const PUBLISH_SECONDS: &str = "ordo_outbox_publish_seconds";

/// AMQP `delivery_mode` 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// How a [`Relay`] reaches the broker and paces itself.
#[derive(Clone)]
pub struct RelayConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The topic exchange to publish to (`ordo.events`); declared by the relay on connect.
    pub exchange: String,
    /// Rows published per round, and per transaction holding the relay lock (default 100).
    pub batch_size: u32,
    /// How often to look for rows when no [`OutboxSignal`] arrives (default 1 s); a fallback for
    /// producers in other processes and for notifications lost to a crash.
    pub poll_interval: Duration,
    /// How long to wait for the broker to confirm a batch before giving up on it (default 30 s).
    pub confirm_timeout: Duration,
    /// How long any other exchange with the broker may take before the round gives up and drops the
    /// connection: opening it (connection, channel, confirm mode, the exchange) and publishing a
    /// batch (default 10 s; a close waits at most 5 s). A broker that takes the connection and never answers, as a node
    /// starting or stopping can, would otherwise hold the relay, and every event after it, forever.
    pub broker_timeout: Duration,
    /// The longest pause between attempts while the broker or the database is down (default 30 s).
    pub max_backoff: Duration,
    /// How long a published row stays in the outbox, for inspection or a replay, before the relay
    /// deletes it (default 24 h); `None` keeps every row.
    pub retention: Option<Duration>,
    /// How often the relay looks for published rows past their retention (default 60 s).
    pub prune_interval: Duration,
}

/// Rows deleted per statement when pruning, so no prune holds many locks or a long transaction.
pub(crate) const PRUNE_CHUNK: u32 = 5_000;

impl RelayConfig {
    /// The default configuration for publishing to `exchange` on the broker at `amqp_url`.
    pub fn new(amqp_url: impl Into<String>, exchange: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            exchange: exchange.into(),
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            confirm_timeout: Duration::from_secs(30),
            broker_timeout: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
            retention: Some(Duration::from_secs(24 * 3600)),
            prune_interval: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("amqp_url", &amqp::redact_url(&self.amqp_url))
            .field("exchange", &self.exchange)
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("broker_timeout", &self.broker_timeout)
            .field("max_backoff", &self.max_backoff)
            .field("retention", &self.retention)
            .field("prune_interval", &self.prune_interval)
            .finish()
    }
}

/// Publishes the outbox to RabbitMQ.
///
/// Rows go out in id order; the relay waits for the broker's publisher confirms and only then marks
/// them published, in the same transaction that read them. A crash between the two republishes the
/// batch (delivery is at least once; consumers drop duplicates by `event_id`), but a row is never
/// marked without a confirm, so none is lost.
///
/// Several instances may share one schema: each round holds the single `outbox_relay` row with
/// `FOR UPDATE SKIP LOCKED` from reading the batch to the commit, so one instance publishes at a
/// time, in order, and the others skip the round rather than queue on the lock.
pub struct Relay {
    pool: MySqlPool,
    config: RelayConfig,
    signal: OutboxSignal,
    /// The open connection and confirm-mode channel, made on first use and again after a failure.
    /// Behind a mutex so that `relay_once(&self)` can be driven from tests and ops tooling too.
    broker: Mutex<Option<Publisher>>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("config", &self.config).finish_non_exhaustive()
    }
}

struct Publisher {
    connection: Connection,
    channel: Channel,
}

/// One unpublished outbox row.
struct OutboxRow {
    id: u64,
    event_id: Uuid,
    routing_key: String,
    payload: Vec<u8>,
    created_at: PrimitiveDateTime,
}

/// Whether a round marks what it published; not marking simulates a crash after publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marking {
    Mark,
    RollBack,
}

impl Relay {
    /// A relay over the outbox in `pool`'s schema, woken early by `signal`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero batch size or poll interval, or an empty exchange name or
    /// one too long for AMQP.
    pub fn new(pool: MySqlPool, config: RelayConfig, signal: OutboxSignal) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::InvalidConfig("batch_size must be at least 1".into()));
        }
        if config.poll_interval.is_zero() {
            return Err(Error::InvalidConfig("poll_interval must be above zero".into()));
        }
        if config.exchange.is_empty() {
            // The default exchange would route by queue name and silently drop every event.
            return Err(Error::InvalidConfig("exchange must be named".into()));
        }
        amqp::check_name("exchange", &config.exchange, 0)?;
        describe_metrics();
        Ok(Self { pool, config, signal, broker: Mutex::new(None) })
    }

    /// Publishes until `shutdown` is cancelled: a round right away while batches come back full,
    /// otherwise on the next [`OutboxSignal`] or poll tick. Failures (broker or database away, a
    /// nack) are logged and counted, and the round is retried after a jittered backoff; they never
    /// end the loop, and the rows stay in the outbox until they are confirmed.
    #[tracing::instrument(name = "outbox relay", skip_all, fields(exchange = %self.config.exchange))]
    pub async fn run(self, shutdown: CancellationToken) {
        // Exported at zero from the start, so a rate or an alert sees a zero before the first one.
        metrics::counter!(PUBLISH_ERRORS_TOTAL).increment(0);
        let mut backoff = Backoff::new(Duration::from_millis(100), self.config.max_backoff);
        let mut backlog_measured: Option<Instant> = None;
        let mut pruned: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if self.config.retention.is_some() && pruned.is_none_or(|at| at.elapsed() >= self.config.prune_interval) {
                pruned = Some(Instant::now());
                match self.prune_published().await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "published outbox rows past their retention deleted"),
                    Err(error) => tracing::warn!(%error, "could not prune the outbox; retrying later"),
                }
            }
            let pause = match self.relay_once().await {
                Ok(published) => {
                    backoff.reset();
                    let batch_was_full = published >= self.config.batch_size as usize;
                    // Counting the backlog is two statements: at most once per poll interval, so a
                    // relay woken by every commit under load does not double its statements with it
                    // (an idle relay still measures on each poll, so the gauge settles within one).
                    let stale = backlog_measured.is_none_or(|at| at.elapsed() >= self.config.poll_interval);
                    if stale {
                        backlog_measured = Some(Instant::now());
                        if let Err(error) = self.measure_backlog().await {
                            tracing::warn!(%error, "could not measure the outbox backlog");
                        }
                    }
                    if batch_was_full {
                        continue;
                    }
                    None
                }
                Err(error) => {
                    metrics::counter!(PUBLISH_ERRORS_TOTAL).increment(1);
                    tracing::warn!(%error, "outbox relay round failed; retrying");
                    // While the broker is away the backlog grows and ages: keep measuring it.
                    if backlog_measured.is_none_or(|at| at.elapsed() >= self.config.poll_interval) {
                        backlog_measured = Some(Instant::now());
                        if let Err(error) = self.measure_backlog().await {
                            tracing::debug!(%error, "could not measure the outbox backlog");
                        }
                    }
                    Some(backoff.next_delay())
                }
            };
            match pause {
                Some(delay) => {
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                None => {
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = self.signal.notified() => {}
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
            }
        }
        if let Some(publisher) = self.broker.lock().await.take() {
            amqp::close(&publisher.connection).await;
        }
        tracing::info!("outbox relay stopped");
    }

    /// One round: takes the relay lock, publishes up to `batch_size` unpublished rows in id order,
    /// waits for every confirm and marks the rows published. Returns how many rows it published;
    /// 0 when the outbox is empty or another instance holds the lock.
    ///
    /// # Errors
    ///
    /// Any broker or database failure, a nack or a confirm timeout; the rows then stay unpublished
    /// (a later round publishes them again) and a broken connection is reopened next round.
    // Debug level: an idle relay polls every second, and a span per poll would flood the traces.
    // Failures are logged by `run`, or by whoever drives the round.
    #[tracing::instrument(level = "debug", name = "outbox relay round", skip(self), fields(exchange = %self.config.exchange))]
    pub async fn relay_once(&self) -> Result<usize> {
        self.round(Marking::Mark).await
    }

    /// Publishes the pending batch like [`relay_once`](Self::relay_once) but rolls back instead of
    /// marking it, as a relay that crashed between the broker's confirm and the commit would. Only
    /// for tests of the at-least-once path.
    #[doc(hidden)]
    #[tracing::instrument(level = "debug", name = "outbox relay round without marking", skip(self))]
    pub async fn publish_without_marking(&self) -> Result<usize> {
        self.round(Marking::RollBack).await
    }

    /// Deletes the published rows older than [`RelayConfig::retention`], oldest first, in statements of
    /// a few thousand rows; unpublished rows are never touched. Returns how many it deleted. Safe to
    /// run from several instances at once. [`run`](Self::run) calls it every
    /// [`RelayConfig::prune_interval`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when a delete fails (what was deleted before stays deleted).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn prune_published(&self) -> Result<u64> {
        let Some(retention) = self.config.retention else { return Ok(0) };
        let micros = u64::try_from(retention.as_micros()).unwrap_or(u64::MAX);
        let mut deleted = 0;
        loop {
            // `published_at < …` is false for NULL, so unpublished rows never match.
            let done = sqlx::query!(
                "DELETE FROM outbox_event WHERE published_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND \
                 ORDER BY published_at LIMIT ?",
                micros,
                PRUNE_CHUNK,
            )
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += done;
            metrics::counter!(PRUNED_TOTAL).increment(done);
            if done < u64::from(PRUNE_CHUNK) {
                return Ok(deleted);
            }
        }
    }

    /// Counts the unpublished rows and reports them as the `ordo_outbox_backlog` gauge, and the age
    /// of the oldest as `ordo_outbox_oldest_unpublished_age_seconds` (0 when there is none).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the count fails.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn measure_backlog(&self) -> Result<u64> {
        let backlog: i64 = sqlx::query_scalar!("SELECT COUNT(*) FROM outbox_event WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        // The lowest id is the oldest row, found at the start of the index's unpublished range.
        let oldest_age_us: Option<Option<i64>> = sqlx::query_scalar!(
            "SELECT TIMESTAMPDIFF(MICROSECOND, created_at, UTC_TIMESTAMP(6)) FROM outbox_event
             WHERE published_at IS NULL ORDER BY id LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?;
        // A gauge is an f64; exactness beyond 2^53 rows does not matter.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(BACKLOG).set(backlog as f64);
        #[allow(clippy::cast_precision_loss)]
        let oldest_age = oldest_age_us.flatten().map_or(0.0, |us| us.max(0) as f64 / 1e6);
        metrics::gauge!(OLDEST_AGE).set(oldest_age);
        Ok(u64::try_from(backlog).unwrap_or(0))
    }

    async fn round(&self, marking: Marking) -> Result<usize> {
        // Held for the whole round: a round is the unit of publishing, and the channel's confirms
        // must not interleave with another round's.
        let mut broker = self.broker.lock().await;
        let channel = match broker.as_ref() {
            Some(publisher) if publisher.channel.status().connected() => publisher.channel.clone(),
            _ => {
                if let Some(old) = broker.take() {
                    amqp::close(&old.connection).await;
                }
                let timeout = self.config.broker_timeout;
                let publisher = tokio::time::timeout(timeout, self.open_publisher())
                    .await
                    .map_err(|_| Error::BrokerTimeout { what: "opening the publisher", timeout })??;
                let channel = publisher.channel.clone();
                *broker = Some(publisher);
                channel
            }
        };

        let result = self.publish_batch(&channel, marking).await;
        // Reopen next round rather than reuse a channel in an unknown state.
        if let Err(error) = &result
            && error.is_broker_failure()
            && let Some(old) = broker.take()
        {
            amqp::close(&old.connection).await;
        }
        result
    }

    async fn open_publisher(&self) -> Result<Publisher> {
        let connection = amqp::connect(&self.config.amqp_url, "ordo-outbox-relay").await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        // Publishing to a missing exchange would close the channel, so make sure it exists.
        declare_exchange(&channel, &self.config.exchange).await?;
        tracing::info!(url = %amqp::redact_url(&self.config.amqp_url), "outbox relay connected");
        Ok(Publisher { connection, channel })
    }

    async fn publish_batch(&self, channel: &Channel, marking: Marking) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        // READ COMMITTED for this one transaction: each read sees what other relays committed while
        // we waited for the lock, and the batch read takes no gap locks that would block producers.
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *conn).await?;
        let mut tx = conn.begin().await?;

        let locked: Option<u8> = sqlx::query_scalar!("SELECT id FROM outbox_relay WHERE id = 1 FOR UPDATE SKIP LOCKED")
            .fetch_optional(&mut *tx)
            .await?;
        if locked.is_none() {
            tracing::debug!("another relay instance holds the outbox lock");
            tx.rollback().await?;
            return Ok(0);
        }

        let rows = sqlx::query_as!(
            OutboxRow,
            "SELECT id, event_id, routing_key, payload, created_at FROM outbox_event \
             WHERE published_at IS NULL ORDER BY id LIMIT ?",
            self.config.batch_size,
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }

        // On any error below `tx` is dropped, which rolls back and releases the lock.
        let started = Instant::now();
        self.publish_confirmed(channel, &rows).await?;
        metrics::histogram!(PUBLISH_SECONDS).record(started.elapsed().as_secs_f64());

        match marking {
            Marking::Mark => {
                // By id, never by range: a row with a lower id may commit after we read the batch,
                // and it must stay unpublished for the next round.
                let mut update =
                    QueryBuilder::new("UPDATE outbox_event SET published_at = UTC_TIMESTAMP(6) WHERE id IN (");
                let mut ids = update.separated(", ");
                for row in &rows {
                    ids.push_bind(row.id);
                }
                update.push(")");
                update.build().execute(&mut *tx).await?;
                tx.commit().await?;
                metrics::counter!(PUBLISHED_TOTAL).increment(rows.len() as u64);
            }
            Marking::RollBack => tx.rollback().await?,
        }
        tracing::debug!(published = rows.len(), "outbox batch published");
        Ok(rows.len())
    }

    /// Publishes every row, then waits for all their confirms (pipelined, not one round trip each).
    async fn publish_confirmed(&self, channel: &Channel, rows: &[OutboxRow]) -> Result<()> {
        let timeout = self.config.broker_timeout;
        let confirms = tokio::time::timeout(timeout, self.publish_all(channel, rows))
            .await
            .map_err(|_| Error::BrokerTimeout { what: "publishing a batch", timeout })??;

        let timeout = self.config.confirm_timeout;
        tokio::time::timeout(timeout, async {
            // Each publish span ends when the broker has confirmed its event.
            for (event_id, confirm, _span) in confirms {
                match confirm.await? {
                    Confirmation::Ack(_) => {}
                    Confirmation::Nack(_) | Confirmation::NotRequested => {
                        // NotRequested would mean the channel is not in confirm mode, so nothing
                        // proves the broker has the message: treat it like a nack.
                        return Err(Error::Nacked { event_id: event_id.to_string() });
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|_| Error::ConfirmTimeout(timeout))?
    }

    /// Publishes every row; the confirm of each, with its event id and publish span.
    async fn publish_all(
        &self,
        channel: &Channel,
        rows: &[OutboxRow],
    ) -> Result<Vec<(Uuid, PublisherConfirm, tracing::Span)>> {
        let mut confirms = Vec::with_capacity(rows.len());
        for row in rows {
            let (properties, span) = properties(row);
            let confirm = channel
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    row.routing_key.as_str().into(),
                    // Not mandatory: an event nobody has bound a queue for yet is not an error.
                    BasicPublishOptions { mandatory: false, immediate: false },
                    &row.payload,
                    properties,
                )
                .await?;
            confirms.push((row.event_id, confirm, span));
        }
        Ok(confirms)
    }
}

/// The AMQP properties of an outbox row, as API.md specifies them, and the span of its publishing: a
/// child of the span that wrote the event (its context is kept in the envelope), whose own context
/// the headers carry to the consumers, so a request's trace runs through the broker.
fn properties(row: &OutboxRow) -> (BasicProperties, tracing::Span) {
    let event_id = row.event_id.hyphenated().to_string();
    let mut properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(event_id.into())
        .with_content_type(CONTENT_TYPE.into())
        .with_type(row.routing_key.as_str().into())
        .with_timestamp(u64::try_from(row.created_at.assume_utc().unix_timestamp()).unwrap_or(0));

    // The trace context lives in the envelope; decoding it is cheap and saves duplicating it in
    // columns. A payload that does not decode (it always should) is still published, without it.
    let span = tracing::info_span!("publish event", event_id = %row.event_id, routing_key = %row.routing_key);
    match Envelope::decode(row.payload.as_slice()) {
        Ok(envelope) => {
            trace_context::set_parent(&span, &envelope.traceparent, &envelope.tracestate);
            // Without a context of its own (no OpenTelemetry layer) the producer's is passed on.
            let (traceparent, tracestate) = match trace_context::of(&span) {
                (traceparent, _) if traceparent.is_empty() => (envelope.traceparent, envelope.tracestate),
                own => own,
            };
            let mut headers = FieldTable::default();
            for (name, value) in [(TRACEPARENT, traceparent), (TRACESTATE, tracestate)] {
                if !value.is_empty() {
                    headers.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
                }
            }
            properties = properties.with_headers(headers);
            if !envelope.producer.is_empty() {
                properties = properties.with_app_id(envelope.producer.into());
            }
        }
        Err(error) => {
            tracing::warn!(event_id = %row.event_id, %error, "outbox payload does not decode");
        }
    }
    (properties, span)
}

fn describe_metrics() {
    metrics::describe_counter!(PUBLISHED_TOTAL, "Outbox events published and confirmed by the broker.");
    metrics::describe_gauge!(BACKLOG, "Outbox events not yet published.");
    metrics::describe_counter!(PUBLISH_ERRORS_TOTAL, "Outbox relay rounds that failed and will be retried.");
    metrics::describe_counter!(PRUNED_TOTAL, "Published outbox rows deleted past their retention.");
    metrics::describe_gauge!(
        OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest outbox event not yet published (0 when every event is published)."
    );
    metrics::describe_histogram!(
        PUBLISH_SECONDS,
        metrics::Unit::Seconds,
        "Time to publish one relay batch to RabbitMQ and receive every confirm."
    );
}
