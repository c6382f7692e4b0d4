//! Exactly-once effects on top of at-least-once delivery, and nothing published for a rollback.

use ordo_events::{Consumer, OutboxSignal, Relay, RelayConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    RecordingHandler, commit_event, consumer_config, consumer_counter, effects, password_changed, relay_config, setup,
    unpublished, wait_until,
};

#[tokio::test]
async fn an_event_republished_after_a_relay_crash_takes_effect_exactly_once() -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("exactly-once");
    let handler = RecordingHandler::default();
    let consumer = Consumer::new(pool.clone(), consumer_config(env, &queue, "exactly-once"), handler.clone())?;
    consumer.declare_topology().await?;
    let relay = Relay::new(pool.clone(), relay_config(env), OutboxSignal::new())?;
    let event = password_changed("user-1");
    commit_event(pool, &event).await?;

    // Act: the first relay publishes and "crashes" before marking the row; a relay publishes again.
    let published_before_crash = relay.publish_without_marking().await?;
    let unpublished_after_crash = unpublished(pool).await?;
    let republished = relay.relay_once().await?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until("the duplicate is dropped", || async {
        Ok(consumer_counter("ordo_consumer_duplicates_total", "exactly-once") == 1)
    })
    .await?;
    shutdown.cancel();
    consuming.await?;

    // Assert
    assert_eq!(published_before_crash, 1);
    assert_eq!(unpublished_after_crash, 1, "a crashed round must leave the row unpublished");
    assert_eq!(republished, 1);
    assert_eq!(unpublished(pool).await?, 0);
    assert_eq!(effects(pool).await?, vec![event.event_id.clone()]);
    assert_eq!(handler.attempts(&event.event_id), 1, "the duplicate must not reach the handler");
    assert_eq!(consumer_counter("ordo_consumer_processed_total", "exactly-once"), 1);
    let processed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_event WHERE consumer = ?")
        .bind("exactly-once")
        .fetch_one(pool)
        .await?;
    assert_eq!(processed, 1);

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("rollback");
    let consumer = Consumer::new(pool.clone(), consumer_config(env, &queue, "rollback"), RecordingHandler::default())?;
    consumer.declare_topology().await?;
    let relay = Relay::new(pool.clone(), relay_config(env), OutboxSignal::new())?;
    let rolled_back = password_changed("user-1");
    // A committed event after it: once it has arrived, anything published before it has too.
    let marker = password_changed("user-2");

    // Act
    let mut tx = pool.begin().await?;
    ordo_events::enqueue(&mut tx, &rolled_back).await?;
    tx.rollback().await?;
    let published_after_rollback = relay.relay_once().await?;
    commit_event(pool, &marker).await?;
    let published_after_commit = relay.relay_once().await?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until("the marker event is applied", || async { Ok(!effects(pool).await?.is_empty()) }).await?;
    shutdown.cancel();
    consuming.await?;

    // Assert
    assert_eq!(published_after_rollback, 0);
    assert_eq!(published_after_commit, 1);
    let outbox: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox_event").fetch_all(pool).await?;
    assert_eq!(outbox, vec![uuid::Uuid::parse_str(&marker.event_id)?]);
    assert_eq!(effects(pool).await?, vec![marker.event_id.clone()]);

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_relay_that_cannot_reach_the_broker_keeps_the_events_for_later() -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let unreachable = RelayConfig {
        // Nothing listens on port 1.
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        ..relay_config(env)
    };
    let broken = Relay::new(pool.clone(), unreachable, OutboxSignal::new())?;
    let healthy = Relay::new(pool.clone(), relay_config(env), OutboxSignal::new())?;
    commit_event(pool, &password_changed("user-1")).await?;

    // Act
    let failed = broken.relay_once().await;
    let unpublished_after_failure = unpublished(pool).await?;
    let published_later = healthy.relay_once().await?;

    // Assert
    assert!(matches!(failed, Err(ordo_events::Error::Broker(_))), "{failed:?}");
    assert_eq!(unpublished_after_failure, 1);
    assert_eq!(published_later, 1);
    assert_eq!(unpublished(pool).await?, 0);

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_relay_facing_a_broker_that_never_answers_gives_the_round_up_in_time_and_publishes_once_it_answers()
-> anyhow::Result<()> {
    // Arrange: the broker behind a proxy that takes connections and never answers, as a RabbitMQ
    // node starting or stopping can (found by `just chaos`: after a broker restart one relay waited
    // on its connection for good, and its service's events stopped).
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let broker = ordo_testkit::TcpProxy::amqp().await?;
    broker.blackhole();
    let timeout = std::time::Duration::from_millis(500);
    let config = RelayConfig { amqp_url: broker.amqp_url(), broker_timeout: timeout, ..relay_config(env) };
    let relay = Relay::new(pool.clone(), config, OutboxSignal::new())?;
    commit_event(pool, &password_changed("user-1")).await?;

    // Act
    let started = std::time::Instant::now();
    let silent = tokio::time::timeout(timeout * 20, relay.relay_once()).await;
    let waited = started.elapsed();
    broker.restore();
    let published = relay.relay_once().await?;

    // Assert: the round ended with the broker's timeout, the event waited, and went out after.
    assert!(
        matches!(silent, Ok(Err(ordo_events::Error::BrokerTimeout { .. }))),
        "the round did not give up in time: {silent:?}"
    );
    assert!(waited < timeout * 4, "the round took {waited:?}");
    assert_eq!(published, 1);
    assert_eq!(unpublished(pool).await?, 0);

    schema.env.cleanup().await
}

/// Keeps the `user_id` of every `identity.password_changed` event it applies.
#[derive(Clone, Default)]
struct PayloadHandler {
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl ordo_events::EventHandler for PayloadHandler {
    async fn handle(
        &self,
        _conn: &mut sqlx::MySqlConnection,
        envelope: &ordo_events::Envelope,
    ) -> Result<(), ordo_events::HandlerError> {
        if let Some(ordo_events::Payload::PasswordChanged(changed)) = &envelope.payload {
            self.seen.lock().unwrap().push(changed.user_id.clone());
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_event_many_frames_long_is_published_and_consumed_whole() -> anyhow::Result<()> {
    // Arrange: the relay and the consumer ask the broker for frames of `DEFAULT_FRAME_MAX` bytes; the
    // event is 200 KiB, so it travels in more than a dozen body frames each way.
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("large");
    let handler = PayloadHandler::default();
    let consumer = Consumer::new(pool.clone(), consumer_config(env, &queue, "large"), handler.clone())?;
    consumer.declare_topology().await?;
    let signal = OutboxSignal::new();
    let relay = Relay::new(pool.clone(), relay_config(env), signal.clone())?;
    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(shutdown.clone()));
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    let large: String = (0..200 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    assert!(large.len() > 12 * ordo_events::DEFAULT_FRAME_MAX as usize);

    // Act: a large event, then a small one behind it.
    commit_event(pool, &password_changed(&large)).await?;
    commit_event(pool, &password_changed("user-small")).await?;
    signal.notify();
    wait_until("both events are applied", || async { Ok(handler.seen.lock().unwrap().len() >= 2) }).await?;
    shutdown.cancel();
    relaying.await?;
    consuming.await?;

    // Assert: each arrived whole, in order.
    assert_eq!(*handler.seen.lock().unwrap(), [large, "user-small".to_owned()]);

    schema.env.cleanup().await
}
