//! What every events test needs: a migrated schema of its own with an `effect` table the test
//! handler writes to, configurations on the test's own exchange and queues, a handler that records
//! its effect in the consumer's transaction, and a metrics recorder the tests can read.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use ordo_events::{
    BatchEventHandler, ConsumerConfig, Envelope, EnvelopeBuilder, EventHandler, HandlerError, MIGRATOR, Payload,
    RelayConfig,
};
use ordo_proto::events::v1::PasswordChanged;
use ordo_testkit::TestEnv;
use sqlx::{MySqlConnection, MySqlPool};

/// Waits this long at most for anything asynchronous; generous, because a slow CI machine is not a
/// failure, a hang is.
pub const WAIT: Duration = Duration::from_secs(30);

/// A test's environment and its migrated schema, which also holds the handler's `effect` table.
pub struct TestSchema {
    pub env: TestEnv,
    pub pool: MySqlPool,
}

pub async fn setup() -> anyhow::Result<TestSchema> {
    install_recorder();
    let env = TestEnv::new();
    let (_, pool) = env.create_pool("events").await?;
    MIGRATOR.run(&pool).await?;
    sqlx::query(
        "CREATE TABLE effect (
             -- Arrival order at the consumer.
             id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
             -- Deliberately not unique, so that an event applied twice shows up as two rows.
             event_id CHAR(36) NOT NULL
         )",
    )
    .execute(&pool)
    .await?;
    Ok(TestSchema { env, pool })
}

pub fn relay_config(env: &TestEnv) -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(50),
        ..RelayConfig::new(ordo_testkit::amqp_url(), env.exchange())
    }
}

pub fn consumer_config(env: &TestEnv, queue: &str, consumer_name: &str) -> ConsumerConfig {
    ConsumerConfig {
        // Short, so the poison test's five attempts do not take seconds.
        retry_delay: Duration::from_millis(10),
        max_backoff: Duration::from_secs(1),
        ..ConsumerConfig::new(ordo_testkit::amqp_url(), env.exchange(), queue, consumer_name, ["#"])
    }
}

/// Builds an event about the aggregate `user_id`.
pub fn password_changed(user_id: &str) -> Envelope {
    EnvelopeBuilder::new("identity", "identity.password_changed")
        .entity("user", user_id)
        .payload(Payload::PasswordChanged(PasswordChanged { user_id: user_id.to_owned() }))
        .build()
}

/// Enqueues `envelope` in a transaction of its own and commits it.
pub async fn commit_event(pool: &MySqlPool, envelope: &Envelope) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    ordo_events::enqueue(&mut tx, envelope).await?;
    tx.commit().await?;
    Ok(())
}

/// The event ids in `effect`, in the order the handler applied them.
pub async fn effects(pool: &MySqlPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT event_id FROM effect ORDER BY id").fetch_all(pool).await?)
}

/// Outbox rows not yet marked published.
pub async fn unpublished(pool: &MySqlPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox_event WHERE published_at IS NULL").fetch_one(pool).await?)
}

/// Polls `condition` until it holds, failing after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if condition().await? {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .with_context(|| format!("timed out waiting until {what}"))?
}

/// Takes every message currently in `queue`, acking each, and returns their `message_id`s (or the
/// body, for a message without one).
pub async fn drain(queue: &str) -> anyhow::Result<Vec<String>> {
    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let mut messages = Vec::new();
    while let Some(message) = channel.basic_get(queue.into(), BasicGetOptions::default()).await? {
        let id = match message.properties.message_id() {
            Some(id) => id.to_string(),
            None => String::from_utf8_lossy(&message.data).into_owned(),
        };
        message.ack(BasicAckOptions::default()).await?;
        messages.push(id);
    }
    connection.close(200, "done".into()).await?;
    Ok(messages)
}

/// Records the effect of each event in `effect` inside the consumer's transaction, counts every
/// attempt in memory (a failed attempt rolls back, so the database cannot count it), and fails
/// every attempt at the `poison` event.
#[derive(Clone, Default)]
pub struct RecordingHandler {
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    poison: Arc<Mutex<Option<(String, Failure)>>>,
}

/// How the handler fails at the poison event.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// Returns `HandlerError::Retryable`.
    Error,
    /// Panics, as a buggy handler would.
    Panic,
}

impl RecordingHandler {
    pub fn failing_on(event_id: &str, failure: Failure) -> Self {
        Self { poison: Arc::new(Mutex::new(Some((event_id.to_owned(), failure)))), ..Self::default() }
    }

    pub fn attempts(&self, event_id: &str) -> u32 {
        self.attempts.lock().unwrap().get(event_id).copied().unwrap_or(0)
    }

    /// From now on the poison event applies like any other: its cause was fixed.
    pub fn heal(&self) {
        *self.poison.lock().unwrap() = None;
    }
}

#[async_trait::async_trait]
impl EventHandler for RecordingHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        *self.attempts.lock().unwrap().entry(envelope.event_id.clone()).or_default() += 1;
        let poison = self.poison.lock().unwrap().clone();
        match &poison {
            Some((poison, Failure::Error)) if *poison == envelope.event_id => {
                return Err(HandlerError::retryable("this event always fails"));
            }
            Some((poison, Failure::Panic)) if *poison == envelope.event_id => {
                panic!("this event always panics");
            }
            _ => {}
        }
        sqlx::query("INSERT INTO effect (event_id) VALUES (?)").bind(&envelope.event_id).execute(conn).await?;
        Ok(())
    }
}

/// The batch version of [`RecordingHandler`]: writes the effects of a whole batch with one statement,
/// remembers the size of every batch it was given, counts attempts per event, and fails every batch
/// that contains the `poison` event.
#[derive(Clone, Default)]
pub struct RecordingBatchHandler {
    batches: Arc<Mutex<Vec<usize>>>,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
    alone: Arc<Mutex<HashMap<String, u32>>>,
    poison: Option<(String, Failure)>,
}

impl RecordingBatchHandler {
    pub fn failing_on(event_id: &str, failure: Failure) -> Self {
        Self { poison: Some((event_id.to_owned(), failure)), ..Self::default() }
    }

    /// The sizes of the batches the handler was given, in order.
    pub fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }

    /// How many batches contained `event_id`.
    pub fn attempts(&self, event_id: &str) -> u32 {
        self.attempts.lock().unwrap().get(event_id).copied().unwrap_or(0)
    }

    /// How many batches held `event_id` alone: one per delivery once a batch with it has failed.
    pub fn attempts_alone(&self, event_id: &str) -> u32 {
        self.alone.lock().unwrap().get(event_id).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl BatchEventHandler for RecordingBatchHandler {
    async fn handle_batch(&self, conn: &mut MySqlConnection, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        self.batches.lock().unwrap().push(envelopes.len());
        for envelope in envelopes {
            *self.attempts.lock().unwrap().entry(envelope.event_id.clone()).or_default() += 1;
        }
        if let [envelope] = envelopes {
            *self.alone.lock().unwrap().entry(envelope.event_id.clone()).or_default() += 1;
        }
        if let Some((poison, failure)) = &self.poison
            && envelopes.iter().any(|envelope| envelope.event_id == *poison)
        {
            match failure {
                Failure::Error => return Err(HandlerError::retryable("this event always fails")),
                Failure::Panic => panic!("this event always panics"),
            }
        }
        let mut insert = sqlx::QueryBuilder::<sqlx::MySql>::new("INSERT INTO effect (event_id) ");
        insert.push_values(envelopes, |mut row, envelope| {
            row.push_bind(&envelope.event_id);
        });
        insert.build().execute(conn).await?;
        Ok(())
    }
}

/// Publishes `envelopes` straight to `exchange` (as the relay would, without the outbox) and waits
/// for every confirm.
pub async fn publish(exchange: &str, envelopes: &[Envelope]) -> anyhow::Result<()> {
    use lapin::BasicProperties;
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use prost::Message as _;

    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut confirms = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let properties = BasicProperties::default()
            .with_message_id(envelope.event_id.clone().into())
            .with_content_type(ordo_events::CONTENT_TYPE.into())
            .with_delivery_mode(2);
        confirms.push(
            channel
                .basic_publish(
                    exchange.into(),
                    envelope.r#type.as_str().into(),
                    BasicPublishOptions::default(),
                    &envelope.encode_to_vec(),
                    properties,
                )
                .await?,
        );
    }
    for confirm in confirms {
        anyhow::ensure!(confirm.await?.is_ack(), "the broker did not accept a message");
    }
    connection.close(200, "published".into()).await?;
    Ok(())
}

/// How many messages are ready in `queue` (a passive declare, which changes nothing).
pub async fn depth(queue: &str) -> anyhow::Result<u32> {
    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let declared = channel.queue_declare(queue.into(), passive, lapin::types::FieldTable::default()).await?;
    connection.close(200, "done".into()).await?;
    Ok(declared.message_count())
}

/// The value of counter `name` for consumer `consumer`, as the test recorder saw it.
pub fn consumer_counter(name: &str, consumer: &str) -> u64 {
    let key = Key::from_parts(name.to_owned(), vec![Label::new("consumer", consumer.to_owned())]);
    let counters = recorder().counters.lock().unwrap();
    counters.get(&key).map_or(0, |counter| counter.load(Ordering::Relaxed))
}

/// Counters only: enough to observe what the consumer did. Installed once per test binary; every
/// test uses its own consumer name, so their counts do not mix.
#[derive(Clone, Default)]
struct TestRecorder {
    counters: Arc<Mutex<HashMap<Key, Arc<AtomicU64>>>>,
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(key.clone()).or_default().clone())
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn recorder() -> &'static TestRecorder {
    static RECORDER: OnceLock<TestRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone())
            .unwrap_or_else(|_| panic!("another global metrics recorder is installed"));
        recorder
    })
}

fn install_recorder() {
    recorder();
}
