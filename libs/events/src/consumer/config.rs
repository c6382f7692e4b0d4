//! What a consumer is given: the handler traits it applies events with, the batch settings, the
//! queue's configuration, and the checks a configuration passes before anything connects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ordo_proto::events::v1::Envelope;
use sqlx::MySqlConnection;

use crate::{Error, HandlerError, Result, amqp};

/// The longest consumer name `processed_event.consumer` holds.
const MAX_CONSUMER_NAME_LEN: usize = 100;

/// The length of `.dlx` and `.dlq`, which name the dead-letter exchange and queue after the queue.
const DEAD_LETTER_SUFFIX_LEN: usize = 4;

/// Applies events to a consuming service's own state.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Applies `envelope` using `conn`, which is inside the consumer's transaction: everything the
    /// handler writes commits together with the dedup record, or not at all. The handler must not
    /// commit or roll back itself, and should use `conn` for every write that must happen once.
    ///
    /// # Errors
    ///
    /// See [`HandlerError`] for how each kind of failure is retried or dead-lettered.
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError>;

    /// Called once the transaction in which [`EventHandler::handle`] applied `envelope` has
    /// committed (never for a duplicate or a failed attempt): for what may only follow the commit,
    /// such as waking the service's outbox relay. Best effort: a crash right after the commit skips
    /// it, so it must only speed up what happens anyway.
    fn committed(&self, envelope: &Envelope) {
        let _ = envelope;
    }
}

#[async_trait::async_trait]
impl<T: EventHandler + ?Sized> EventHandler for Arc<T> {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        (**self).handle(conn, envelope).await
    }

    fn committed(&self, envelope: &Envelope) {
        (**self).committed(envelope);
    }
}

/// Applies several events at once to a consuming service's own state; see [`Consumer::new_batched`].
#[async_trait::async_trait]
pub trait BatchEventHandler: Send + Sync + 'static {
    /// Applies `envelopes` — at least one, in delivery order, none of them applied before by this
    /// consumer, no event twice — using `conn`, which is inside the consumer's transaction: everything
    /// the handler writes commits together with the batch's dedup records, or not at all. The handler
    /// must not commit or roll back itself.
    ///
    /// # Errors
    ///
    /// Any error rolls the whole batch back. The consumer then calls the handler again with each
    /// event alone, and treats that event's error as [`EventHandler::handle`]'s would be (see
    /// [`HandlerError`]).
    async fn handle_batch(&self, conn: &mut MySqlConnection, envelopes: &[&Envelope]) -> Result<(), HandlerError>;

    /// As [`EventHandler::committed`], for the events of a batch that committed.
    fn committed(&self, envelopes: &[&Envelope]) {
        let _ = envelopes;
    }
}

#[async_trait::async_trait]
impl<T: BatchEventHandler + ?Sized> BatchEventHandler for Arc<T> {
    async fn handle_batch(&self, conn: &mut MySqlConnection, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        (**self).handle_batch(conn, envelopes).await
    }

    fn committed(&self, envelopes: &[&Envelope]) {
        (**self).committed(envelopes);
    }
}

/// How a batched consumer ([`Consumer::new_batched`]) gathers deliveries into one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// The most deliveries applied in one transaction (default 64). [`ConsumerConfig::prefetch`] must
    /// be at least this, or the broker never sends that many at once.
    pub max_batch: u16,
    /// After the first delivery, how long to wait for more before applying what is there (default
    /// 5 ms). Zero takes only the deliveries already received. Under light load every event waits
    /// this long at most; under heavy load batches fill up without waiting.
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_batch: 64, max_wait: Duration::from_millis(5) }
    }
}

/// Where a [`Consumer`] reads from and how it treats failures.
#[derive(Clone)]
pub struct ConsumerConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The topic exchange events are published to (`ordo.events`).
    pub exchange: String,
    /// The service's durable quorum queue, e.g. `notification.events`; its dead letters go to
    /// `<queue>.dlq` through the exchange `<queue>.dlx`.
    pub queue: String,
    /// The name under which processed events are recorded in `processed_event` (at most 100 bytes);
    /// keep it stable, or already processed events would be applied again after a redelivery.
    pub consumer_name: String,
    /// Routing keys or patterns the queue is bound with, e.g. `identity.*` or `#`.
    pub bindings: Vec<String>,
    /// Messages the broker may send ahead of their ack (default 32); they are processed one at a
    /// time either way, to keep each aggregate's events in order.
    pub prefetch: u16,
    /// Deliveries a message gets before it is dead-lettered (default 5, as API.md requires). Fixed
    /// in the queue's arguments when the queue is first declared: changing it later makes the
    /// declaration fail until the queue is recreated or a policy overrides it.
    pub max_attempts: u32,
    /// The pause before a failed message is requeued, doubled on each further attempt (default
    /// 200 ms); without it a transient failure would burn through every attempt in milliseconds.
    pub retry_delay: Duration,
    /// The longest pause while the broker or the database is away (default 30 s).
    pub max_backoff: Duration,
    /// How long this consumer's `processed_event` rows are kept before it deletes them (default 7
    /// days): far longer than any redelivery (an acknowledged message is gone from the queue, and an
    /// unconfirmed publish is retried within seconds). `None` keeps every row.
    pub dedup_retention: Option<Duration>,
    /// How often the consumer deletes its rows past their retention (default 10 minutes).
    pub prune_interval: Duration,
    /// How often the consumer reads the depth of its queue and of its dead-letter queue into
    /// `ordo_consumer_queue_messages` and `ordo_consumer_dead_letter_messages` (default 15 s, a
    /// Prometheus scrape interval).
    pub depth_interval: Duration,
}

impl ConsumerConfig {
    /// The default configuration of a consumer `consumer_name` reading `queue`, bound to `exchange`
    /// with each of `bindings`.
    pub fn new(
        amqp_url: impl Into<String>,
        exchange: impl Into<String>,
        queue: impl Into<String>,
        consumer_name: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            exchange: exchange.into(),
            queue: queue.into(),
            consumer_name: consumer_name.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 32,
            max_attempts: 5,
            retry_delay: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            dedup_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_interval: Duration::from_secs(600),
            depth_interval: Duration::from_secs(15),
        }
    }

    /// The fanout exchange that receives the queue's dead letters.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    /// The queue that keeps the dead letters for inspection and replay.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.queue)
    }
}

impl fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("amqp_url", &amqp::redact_url(&self.amqp_url))
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("consumer_name", &self.consumer_name)
            .field("bindings", &self.bindings)
            .field("prefetch", &self.prefetch)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .field("max_backoff", &self.max_backoff)
            .field("dedup_retention", &self.dedup_retention)
            .field("prune_interval", &self.prune_interval)
            .field("depth_interval", &self.depth_interval)
            .finish()
    }
}

/// The checks every consumer configuration passes, batched or not.
pub(super) fn validate(config: &ConsumerConfig) -> Result<()> {
    let invalid = |reason: &str| Err(Error::InvalidConfig(reason.to_owned()));
    if config.queue.is_empty() || config.exchange.is_empty() {
        return invalid("queue and exchange must be named");
    }
    if config.consumer_name.is_empty() || config.consumer_name.len() > MAX_CONSUMER_NAME_LEN {
        return invalid("consumer_name must be 1 to 100 bytes");
    }
    if config.bindings.is_empty() {
        return invalid("bindings must not be empty, or the queue would receive nothing");
    }
    // The dead-letter exchange and queue are named after the queue with a suffix of this length.
    amqp::check_name("queue", &config.queue, DEAD_LETTER_SUFFIX_LEN)?;
    amqp::check_name("exchange", &config.exchange, 0)?;
    for binding in &config.bindings {
        amqp::check_name("binding", binding, 0)?;
    }
    if config.prefetch == 0 {
        // 0 means "unlimited" to the broker, which is the opposite of what was meant.
        return invalid("prefetch must be at least 1");
    }
    if config.max_attempts == 0 || i32::try_from(config.max_attempts).is_err() {
        return invalid("max_attempts must be at least 1");
    }
    if config.depth_interval.is_zero() {
        return invalid("depth_interval must be longer than zero");
    }
    Ok(())
}
