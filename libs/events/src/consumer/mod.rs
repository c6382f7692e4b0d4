//! The consumer runtime: a durable quorum queue per consuming service, bound to the routing keys it
//! needs, whose messages are applied one at a time by an [`EventHandler`] inside a transaction that
//! also records the event in `processed_event`. The message is acknowledged only after that commit,
//! so a crash at any point means a redelivery, and the redelivery is recognised by its `event_id` and
//! dropped: every event takes effect exactly once per consumer.
//!
//! A message that keeps failing is requeued until the quorum queue's delivery limit dead-letters it
//! to `<queue>.dlq` (through the fanout exchange `<queue>.dlx`); one that cannot even be decoded goes
//! there at once. Either way the consumer moves on to the next message.
//!
//! A consumer made with [`Consumer::new_batched`] takes up to [`BatchConfig::max_batch`] deliveries
//! that are already there (waiting at most [`BatchConfig::max_wait`] for more) and applies them with a
//! [`BatchEventHandler`] in **one** transaction, dedup rows included, then acks them all: one commit
//! (one fsync) for the batch instead of one per event. If that transaction fails, the batch's events
//! are applied one at a time, each in a transaction of its own, so a poison message is retried and
//! dead-lettered alone while the others go through.

use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};
use ordo_proto::events::v1::Envelope;
use prost::Message as _;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

mod config;
mod dedup;
mod observe;
mod replay;

pub use config::{BatchConfig, BatchEventHandler, ConsumerConfig, EventHandler};
pub use replay::replay_dead_letters;

use self::config::validate;
use self::dedup::{PRUNED_TOTAL, claim, prune_every, prune_processed};
use crate::amqp::{self, Backoff};
use crate::trace_context::{self, TRACEPARENT, TRACESTATE};
use crate::{Error, HandlerError, Result, declare_exchange};

const PROCESSED_TOTAL: &str = "ordo_consumer_processed_total";
const FAILED_TOTAL: &str = "ordo_consumer_failed_total";
const DUPLICATES_TOTAL: &str = "ordo_consumer_duplicates_total";
const BATCH_FALLBACKS_TOTAL: &str = "ordo_consumer_batch_fallbacks_total";

/// Consumes one queue with one [`EventHandler`], one message at a time.
///
/// Each event is applied in a transaction that also records it in `processed_event`, and the message
/// is acknowledged only after that commit: a crash at any point means a redelivery, which is
/// recognised by its `event_id` and dropped, so every event takes effect exactly once per consumer.
///
/// A failing message is requeued (after [`ConsumerConfig::retry_delay`], doubled per attempt) until
/// the quorum queue's delivery limit dead-letters it to `<queue>.dlq` after
/// [`ConsumerConfig::max_attempts`] deliveries; an undecodable message or a
/// [`HandlerError::Permanent`] goes there at once. Either way the consumer moves on. While the
/// database is unreachable the message in hand is held, not requeued, so an outage spends no
/// attempts.
pub struct Consumer {
    pool: MySqlPool,
    config: ConsumerConfig,
    handler: Handler,
}

/// One event per transaction, or batches.
#[derive(Clone)]
enum Handler {
    One(Arc<dyn EventHandler>),
    Batch(Arc<dyn BatchEventHandler>, BatchConfig),
}

/// A decoded delivery waiting for its batch to be applied.
struct Pending {
    delivery: Delivery,
    envelope: Envelope,
    event_id: Uuid,
    attempt: i64,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Applied and committed now.
    Applied,
    /// Applied before; dropped.
    Duplicate,
}

/// Why applying an event failed, sorted by what to do about it.
#[derive(Debug)]
enum ApplyError {
    /// The database is unreachable: keep the message and try again without counting an attempt.
    Unavailable(sqlx::Error),
    /// A failed attempt: requeue, so the broker counts it.
    Retry(String),
    /// Can never succeed: dead-letter now.
    Permanent(String),
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        if is_connection_failure(&error) {
            Self::Unavailable(error)
        } else {
            Self::Retry(format!("database error: {error}"))
        }
    }
}

impl From<HandlerError> for ApplyError {
    fn from(error: HandlerError) -> Self {
        match error {
            HandlerError::Retryable(reason) => Self::Retry(reason),
            HandlerError::Permanent(reason) => Self::Permanent(reason),
            HandlerError::Database(error) => error.into(),
        }
    }
}

/// Errors that say the database cannot be reached at all, as opposed to a statement failing.
fn is_connection_failure(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

impl Consumer {
    /// A consumer applying `handler` to the events in `config.queue`, recording them in `pool`'s
    /// schema (which must contain this crate's migrations).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty queue, exchange or consumer name, a consumer name over
    /// 100 bytes, a queue, exchange or binding name too long for AMQP (a queue name leaves room for
    /// its dead-letter suffix), no bindings, or a zero prefetch or attempt count.
    pub fn new(pool: MySqlPool, config: ConsumerConfig, handler: impl EventHandler) -> Result<Self> {
        validate(&config)?;
        describe_metrics();
        Ok(Self { pool, config, handler: Handler::One(Arc::new(handler)) })
    }

    /// A consumer applying `handler` to batches of up to `batch.max_batch` events of `config.queue`,
    /// each batch in one transaction; otherwise the same as [`new`](Self::new): dedup by `event_id`
    /// (also within a batch), ack after commit, retries and dead-lettering per message. A batch whose
    /// transaction fails is applied again one event at a time, so only the failing event is retried.
    ///
    /// Events reach the handler in delivery order, so one consumer still applies an aggregate's events
    /// in order; as with [`new`](Self::new), several consumers on one queue do not.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`Error::InvalidConfig`] for a zero `max_batch` or a `prefetch`
    /// below it.
    pub fn new_batched(
        pool: MySqlPool,
        config: ConsumerConfig,
        batch: BatchConfig,
        handler: impl BatchEventHandler,
    ) -> Result<Self> {
        validate(&config)?;
        if batch.max_batch == 0 {
            return Err(Error::InvalidConfig("max_batch must be at least 1".to_owned()));
        }
        if config.prefetch < batch.max_batch {
            return Err(Error::InvalidConfig("prefetch must be at least max_batch".to_owned()));
        }
        describe_metrics();
        Ok(Self { pool, config, handler: Handler::Batch(Arc::new(handler), batch) })
    }

    /// Declares the exchange, the queue with its bindings and dead-lettering, the dead-letter
    /// exchange and the dead-letter queue, on a connection of its own. [`run`](Self::run) does this
    /// too; call it first when events published before the consumer starts must not be missed
    /// (publishing is not mandatory, so an event with no bound queue is dropped by the broker).
    ///
    /// # Errors
    ///
    /// [`Error::Broker`] when the broker is unreachable or an entity exists with other arguments.
    #[tracing::instrument(skip(self), fields(queue = %self.config.queue), err)]
    pub async fn declare_topology(&self) -> Result<()> {
        let connection = amqp::connect(&self.config.amqp_url, &self.connection_name()).await?;
        let result = async {
            let channel = connection.create_channel().await?;
            declare_queue_topology(&channel, &self.config).await?;
            // Closed here rather than dropped: a dropped channel is closed in the background, racing
            // the connection's close below, and lapin logs the loser as a connection error.
            channel.close(200, "topology declared".into()).await?;
            Ok(())
        }
        .await;
        amqp::close(&connection).await;
        result
    }

    /// Consumes until `shutdown` is cancelled, reconnecting with a jittered backoff whenever the
    /// broker goes away. On shutdown it stops consuming, finishes the message (or batch) in hand and
    /// closes the connection; messages prefetched but not started return to the queue.
    ///
    /// RabbitMQ 3.10 counts a message returned by a closing channel as a delivery attempt just like
    /// a requeue, so every restart or reconnection spends one attempt of each prefetched message; a
    /// smaller `prefetch` limits how many messages that touches.
    #[tracing::instrument(
        name = "event consumer",
        skip_all,
        fields(queue = %self.config.queue, consumer = %self.config.consumer_name)
    )]
    pub async fn run(self, shutdown: CancellationToken) {
        let pruning = self.config.dedup_retention.map(|retention| {
            let (pool, name, every) =
                (self.pool.clone(), self.config.consumer_name.clone(), self.config.prune_interval);
            tokio::spawn(prune_every(pool, name, retention, every, shutdown.clone()))
        });
        observe::register(&self.config.consumer_name);
        let mut backoff = Backoff::new(Duration::from_millis(200), self.config.max_backoff);
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown, &mut backoff).await {
                Ok(()) => break,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        %error,
                        queue = %self.config.queue,
                        retry_in = ?delay,
                        "event consumer lost the broker; reconnecting"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        if let Some(pruning) = pruning {
            let _ = pruning.await;
        }
        tracing::info!(queue = %self.config.queue, "event consumer stopped");
    }

    /// Deletes this consumer's `processed_event` rows older than [`ConsumerConfig::dedup_retention`],
    /// oldest first, in statements of a few thousand rows. Returns how many it deleted. [`run`](Self::run)
    /// does this every [`ConsumerConfig::prune_interval`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when a delete fails (what was deleted before stays deleted).
    pub async fn prune_processed(&self) -> Result<u64> {
        match self.config.dedup_retention {
            Some(retention) => prune_processed(&self.pool, &self.config.consumer_name, retention).await,
            None => Ok(0),
        }
    }

    fn connection_name(&self) -> String {
        format!("ordo-consumer-{}", self.config.consumer_name)
    }

    /// One connection's life: set up, then process deliveries until shutdown (`Ok`) or until the
    /// connection fails (`Err`, and [`run`](Self::run) reconnects).
    async fn consume(&self, shutdown: &CancellationToken, backoff: &mut Backoff) -> Result<()> {
        let connection = amqp::connect(&self.config.amqp_url, &self.connection_name()).await?;
        let result = async {
            let channel = connection.create_channel().await?;
            declare_queue_topology(&channel, &self.config).await?;
            channel.basic_qos(self.config.prefetch, BasicQosOptions { global: false }).await?;
            let tag = format!("{}-{}", self.config.consumer_name, Uuid::now_v7().simple());
            let mut deliveries = channel
                .basic_consume(
                    self.config.queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(queue = %self.config.queue, "event consumer started");
            backoff.reset();
            // Reads the queues' depths on a channel of its own until this connection's life ends.
            let _depths = observe::DepthWatch::start(
                connection.create_channel().await?,
                self.config.consumer_name.clone(),
                self.config.queue.clone(),
                self.config.dead_letter_queue(),
                self.config.depth_interval,
            );

            loop {
                // Only waiting for the next message races with shutdown; a message in hand is
                // always finished.
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    next = deliveries.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => match &self.handler {
                        Handler::One(_) => self.process(delivery, shutdown).await?,
                        Handler::Batch(handler, batch) => {
                            let batch = gather(delivery, &mut deliveries, batch, &self.config.queue).await?;
                            self.process_batch(handler.as_ref(), batch, shutdown).await?;
                        }
                    },
                    Some(Err(error)) => return Err(error.into()),
                    None => {
                        return Err(Error::ConsumerCancelled { queue: self.config.queue.clone() });
                    }
                }
            }

            channel.basic_cancel(tag.into(), BasicCancelOptions::default()).await?;
            channel.close(200, "shutting down".into()).await?;
            Ok(())
        }
        .await;
        amqp::close(&connection).await;
        result
    }

    /// Handles one delivery to the end: acked, requeued or dead-lettered. Returns an error only when
    /// the broker cannot be told, which means the connection is gone.
    async fn process(&self, delivery: Delivery, shutdown: &CancellationToken) -> Result<()> {
        match self.decode_or_reject(delivery).await? {
            Some(pending) => self.settle_pending(pending, shutdown).await,
            None => Ok(()),
        }
    }

    /// The delivery's envelope, or `None` once an undecodable delivery has been dead-lettered.
    async fn decode_or_reject(&self, delivery: Delivery) -> Result<Option<Pending>> {
        // The quorum queue counts earlier failed deliveries in `x-delivery-count`.
        let attempt = amqp::integer_header(delivery.properties.headers().as_ref(), "x-delivery-count").unwrap_or(0) + 1;
        if attempt > 1 || delivery.redelivered {
            observe::redelivery(&self.config.consumer_name);
        }
        match decode(&delivery.data) {
            Ok((envelope, event_id)) => Ok(Some(Pending { delivery, envelope, event_id, attempt })),
            Err(reason) => {
                tracing::error!(
                    queue = %self.config.queue,
                    routing_key = %delivery.routing_key,
                    %reason,
                    "undecodable event; dead-lettering it"
                );
                metrics::counter!(FAILED_TOTAL, "consumer" => self.config.consumer_name.clone()).increment(1);
                delivery.acker.reject(BasicRejectOptions { requeue: false }).await?;
                Ok(None)
            }
        }
    }

    /// Settles one decoded delivery in a span of its own that continues the producer's trace.
    async fn settle_pending(&self, pending: Pending, shutdown: &CancellationToken) -> Result<()> {
        let span = self.event_span(&pending);
        let Pending { delivery, envelope, event_id, attempt } = pending;
        self.settle(delivery, &envelope, event_id, attempt, shutdown).instrument(span).await
    }

    /// The span of one event: a child of the span that produced it, so the event's handling shows
    /// in the trace of the request that caused it.
    fn event_span(&self, pending: &Pending) -> tracing::Span {
        let envelope = &pending.envelope;
        let headers = pending.delivery.properties.headers().as_ref();
        let span = tracing::info_span!(
            "consume event",
            consumer = %self.config.consumer_name,
            event_id = %envelope.event_id,
            event_type = %envelope.r#type,
            attempt = pending.attempt,
        );
        // Prefer the headers (what the relay sent), fall back to the envelope's own copy.
        let traceparent = amqp::string_header(headers, TRACEPARENT).unwrap_or(&envelope.traceparent);
        let tracestate = amqp::string_header(headers, TRACESTATE).unwrap_or(&envelope.tracestate);
        trace_context::set_parent(&span, traceparent, tracestate);
        span
    }

    /// Applies a gathered batch in one transaction and acks every delivery after the commit. If the
    /// transaction fails for any reason but an unreachable database, each event is settled alone
    /// instead (applied, retried or dead-lettered), so one bad event cannot hold the others back.
    /// Returns an error only when the broker cannot be told, which means the connection is gone.
    async fn process_batch(
        &self,
        handler: &dyn BatchEventHandler,
        deliveries: Vec<Delivery>,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let mut pending = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            if let Some(decoded) = self.decode_or_reject(delivery).await? {
                pending.push(decoded);
            }
        }
        if pending.len() <= 1 {
            for one in pending {
                self.settle_pending(one, shutdown).await?;
            }
            return Ok(());
        }

        let consumer = self.config.consumer_name.clone();
        // The batch's span is a trace of its own (its events come from many), linked to each
        // event's span; each event's span is a child of its producer's and stays open until the
        // event is settled, so every request's trace shows its events' handling.
        let span = tracing::info_span!("consume event batch", consumer = %consumer, events = pending.len());
        let mut event_spans: Vec<tracing::Span> = pending.iter().map(|one| self.event_span(one)).collect();
        for event_span in &event_spans {
            trace_context::link(&span, event_span);
            trace_context::link(event_span, &span);
        }
        let mut unavailable = Backoff::new(Duration::from_millis(200), self.config.max_backoff);
        loop {
            let applied = {
                let events: Vec<(&Envelope, Uuid)> = pending.iter().map(|p| (&p.envelope, p.event_id)).collect();
                self.apply_batch(handler, &events).instrument(span.clone()).await
            };
            match applied {
                Ok(outcomes) => {
                    // One ack of the last delivery, `multiple`, settles the whole batch: every
                    // delivery before this batch on the channel is settled already (a batch is
                    // gathered only once the one before it is), and the batch is in delivery order.
                    // One frame to the broker, and one settlement in each quorum queue's log,
                    // instead of one per event. The events' spans stay open until it is sent.
                    if let Some(last) = pending.last() {
                        last.delivery
                            .acker
                            .ack(lapin::options::BasicAckOptions { multiple: true })
                            .instrument(span.clone())
                            .await?;
                    }
                    drop(event_spans);
                    let (mut applied, mut duplicates) = (0_u64, 0_u64);
                    for (one, outcome) in pending.into_iter().zip(outcomes) {
                        match outcome {
                            Outcome::Applied => {
                                applied += 1;
                                observe::handled(&consumer, &one.envelope);
                            }
                            Outcome::Duplicate => duplicates += 1,
                        }
                    }
                    if duplicates > 0 {
                        span.in_scope(|| {
                            tracing::info!(duplicates, "events already processed; dropped the duplicates")
                        });
                    }
                    metrics::counter!(PROCESSED_TOTAL, "consumer" => consumer.clone()).increment(applied);
                    metrics::counter!(DUPLICATES_TOTAL, "consumer" => consumer).increment(duplicates);
                    return Ok(());
                }
                Err(ApplyError::Unavailable(error)) => {
                    // As for a single event: hold the batch (unacked) until the database is back.
                    let delay = unavailable.next_delay();
                    span.in_scope(
                        || tracing::warn!(%error, retry_in = ?delay, "database unavailable; holding the batch"),
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(ApplyError::Retry(reason) | ApplyError::Permanent(reason)) => {
                    // The batch cannot tell which event failed; applying each alone does, and
                    // spends a delivery attempt on the failing one only.
                    span.in_scope(|| tracing::warn!(%reason, "the batch failed; applying its events one at a time"));
                    metrics::counter!(BATCH_FALLBACKS_TOTAL, "consumer" => consumer).increment(1);
                    // Each event gets a span of its own again when it is settled alone.
                    event_spans.clear();
                    break;
                }
            }
        }
        for one in pending {
            self.settle_pending(one, shutdown).await?;
        }
        Ok(())
    }

    async fn settle(
        &self,
        delivery: Delivery,
        envelope: &Envelope,
        event_id: Uuid,
        attempt: i64,
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let consumer = self.config.consumer_name.clone();
        let mut unavailable = Backoff::new(Duration::from_millis(200), self.config.max_backoff);
        loop {
            match self.apply(envelope, event_id).await {
                Ok(Outcome::Applied) => {
                    delivery.acker.ack(lapin::options::BasicAckOptions::default()).await?;
                    observe::handled(&consumer, envelope);
                    metrics::counter!(PROCESSED_TOTAL, "consumer" => consumer).increment(1);
                    return Ok(());
                }
                Ok(Outcome::Duplicate) => {
                    tracing::info!("event already processed; dropping the duplicate");
                    delivery.acker.ack(lapin::options::BasicAckOptions::default()).await?;
                    metrics::counter!(DUPLICATES_TOTAL, "consumer" => consumer).increment(1);
                    return Ok(());
                }
                Err(ApplyError::Unavailable(error)) => {
                    // Not the message's fault: hold it (unacked) and wait for the database, so an
                    // outage does not dead-letter everything that arrives meanwhile.
                    let delay = unavailable.next_delay();
                    tracing::warn!(%error, retry_in = ?delay, "database unavailable; holding the event");
                    tokio::select! {
                        () = shutdown.cancelled() => {
                            // Unacked, it returns to the queue when the channel closes.
                            return Ok(());
                        }
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                Err(ApplyError::Permanent(reason)) => {
                    tracing::error!(%reason, "event can never be applied; dead-lettering it");
                    metrics::counter!(FAILED_TOTAL, "consumer" => consumer).increment(1);
                    delivery.acker.reject(BasicRejectOptions { requeue: false }).await?;
                    return Ok(());
                }
                Err(ApplyError::Retry(reason)) => {
                    let last = attempt >= i64::from(self.config.max_attempts);
                    if last {
                        tracing::error!(%reason, "event failed its last attempt; dead-lettering it");
                    } else {
                        tracing::warn!(%reason, "event failed; requeueing it");
                    }
                    metrics::counter!(FAILED_TOTAL, "consumer" => consumer).increment(1);
                    if !last {
                        let delay = self.retry_delay(attempt);
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(delay) => {}
                        }
                    }
                    // Requeue even on the last attempt: the broker's delivery limit is what
                    // dead-letters it, so the count stays the broker's and survives restarts.
                    delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                    return Ok(());
                }
            }
        }
    }

    /// `retry_delay * 2^(attempt - 1)`, capped by `max_backoff`.
    fn retry_delay(&self, attempt: i64) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.config.retry_delay.saturating_mul(2u32.saturating_pow(doublings)).min(self.config.max_backoff)
    }

    /// One event in one transaction, with whichever kind of handler the consumer has.
    async fn apply(&self, envelope: &Envelope, event_id: Uuid) -> Result<Outcome, ApplyError> {
        match &self.handler {
            Handler::One(handler) => self.apply_one(handler.as_ref(), envelope, event_id).await,
            Handler::Batch(handler, _) => {
                match self.apply_batch(handler.as_ref(), &[(envelope, event_id)]).await?[..] {
                    [outcome] => Ok(outcome),
                    _ => Err(ApplyError::Retry("a batch of one gave other than one outcome".to_owned())),
                }
            }
        }
    }

    /// One transaction for several events: claim each for this consumer, run the handler once on
    /// those claimed now, commit. The outcomes are in the order of `events`; an event that occurs
    /// twice in `events` is applied at its first occurrence and a duplicate at the others.
    async fn apply_batch(
        &self,
        handler: &dyn BatchEventHandler,
        events: &[(&Envelope, Uuid)],
    ) -> Result<Vec<Outcome>, ApplyError> {
        let mut seen = HashSet::with_capacity(events.len());
        let first: Vec<bool> = events.iter().map(|(_, event_id)| seen.insert(*event_id)).collect();
        let mut tx = self.pool.begin().await?;
        let claimed = claim(&mut tx, &self.config.consumer_name, seen).await?;
        let mut fresh = Vec::with_capacity(claimed.len());
        let mut outcomes = Vec::with_capacity(events.len());
        for ((envelope, event_id), first) in events.iter().zip(first) {
            if first && claimed.contains(event_id) {
                fresh.push(*envelope);
                outcomes.push(Outcome::Applied);
            } else {
                outcomes.push(Outcome::Duplicate);
            }
        }
        if !fresh.is_empty() {
            // As in `apply_one`: an error drops `tx` (rolling everything back), a panic is a failure.
            let handled = AssertUnwindSafe(handler.handle_batch(&mut tx, &fresh)).catch_unwind().await;
            match handled {
                Ok(result) => result?,
                Err(panic) => return Err(ApplyError::Retry(panic_message(panic.as_ref()))),
            }
        }
        tx.commit().await?;
        if !fresh.is_empty() {
            handler.committed(&fresh);
        }
        Ok(outcomes)
    }

    /// One transaction: claim the event for this consumer, run the handler, commit.
    async fn apply_one(
        &self,
        handler: &dyn EventHandler,
        envelope: &Envelope,
        event_id: Uuid,
    ) -> Result<Outcome, ApplyError> {
        let mut tx = self.pool.begin().await?;
        // The claim comes first so that a duplicate costs no handler work, and so that a concurrent
        // redelivery to another instance blocks on this row until we commit or roll back.
        if !dedup::claim_one(&mut tx, &self.config.consumer_name, event_id).await? {
            tx.commit().await?;
            return Ok(Outcome::Duplicate);
        }
        // On error `tx` is dropped here, which rolls the claim and the handler's writes back. A
        // panicking handler is one more failed attempt, not the end of the consumer.
        let handled = AssertUnwindSafe(handler.handle(&mut tx, envelope)).catch_unwind().await;
        match handled {
            Ok(result) => result?,
            Err(panic) => return Err(ApplyError::Retry(panic_message(panic.as_ref()))),
        }
        tx.commit().await?;
        handler.committed(envelope);
        Ok(Outcome::Applied)
    }
}

/// `first` and whatever else `stream` delivers within `batch.max_wait`, up to `batch.max_batch`
/// deliveries in all.
async fn gather(
    first: Delivery,
    stream: &mut lapin::Consumer,
    batch: &BatchConfig,
    queue: &str,
) -> Result<Vec<Delivery>> {
    let mut gathered = vec![first];
    let deadline = tokio::time::Instant::now() + batch.max_wait;
    while gathered.len() < usize::from(batch.max_batch) {
        // `timeout_at` polls the stream before looking at the clock, so a zero wait still takes
        // every delivery already received.
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(delivery))) => gathered.push(delivery),
            // The connection is gone: the deliveries in hand are unacked and return to the queue.
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(None) => return Err(Error::ConsumerCancelled { queue: queue.to_owned() }),
            Err(_) => break,
        }
    }
    Ok(gathered)
}

/// What a caught panic said, as far as it can be told.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("the handler panicked: {message}")
}

/// The envelope in `body` and its event id, or why it is unusable.
fn decode(body: &[u8]) -> Result<(Envelope, Uuid), String> {
    let envelope = Envelope::decode(body).map_err(|error| format!("not an Envelope: {error}"))?;
    let event_id = Uuid::parse_str(&envelope.event_id)
        .map_err(|error| format!("event_id {:?} is not a UUID: {error}", envelope.event_id))?;
    Ok((envelope, event_id))
}

/// Declares everything the queue needs; idempotent.
async fn declare_queue_topology(channel: &Channel, config: &ConsumerConfig) -> Result<()> {
    let durable = || QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    let dlx = config.dead_letter_exchange();
    let dlq = config.dead_letter_queue();

    declare_exchange(channel, &config.exchange).await?;
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
            FieldTable::default(),
        )
        .await?;
    channel.queue_declare(dlq.as_str().into(), durable(), quorum_arguments()).await?;
    channel
        .queue_bind(dlq.into(), dlx.as_str().into(), "".into(), QueueBindOptions::default(), FieldTable::default())
        .await?;

    let mut arguments = quorum_arguments();
    // RabbitMQ dead-letters a quorum-queue message once its count of failed deliveries
    // (`x-delivery-count`) *exceeds* the limit, so a limit of `max_attempts - 1` allows exactly
    // `max_attempts` deliveries (checked against RabbitMQ 3.10 by the poison-message test).
    let limit = i32::try_from(config.max_attempts.saturating_sub(1)).unwrap_or(i32::MAX);
    arguments.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(dlx)));
    channel.queue_declare(config.queue.as_str().into(), durable(), arguments).await?;
    for binding in &config.bindings {
        channel
            .queue_bind(
                config.queue.as_str().into(),
                config.exchange.as_str().into(),
                binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
    arguments
}

fn describe_metrics() {
    observe::describe();
    metrics::describe_counter!(PROCESSED_TOTAL, "Events applied and acknowledged, by consumer.");
    metrics::describe_counter!(PRUNED_TOTAL, "Dedup records deleted past their retention, by consumer.");
    metrics::describe_counter!(FAILED_TOTAL, "Failed deliveries (requeued or dead-lettered), by consumer.");
    metrics::describe_counter!(
        DUPLICATES_TOTAL,
        "Redelivered events dropped because they were already applied, by consumer."
    );
    metrics::describe_counter!(
        BATCH_FALLBACKS_TOTAL,
        "Batches whose transaction failed and whose events were then applied one at a time, by consumer."
    );
}
