//! Order: one aggregate's events arrive in commit order, and concurrent relays neither duplicate nor
//! reorder anything.

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ordo_events::{Consumer, OutboxSignal, Relay, RelayConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    RecordingHandler, commit_event, consumer_config, drain, effects, password_changed, relay_config, setup,
    unpublished, wait_until,
};

#[tokio::test]
async fn events_of_one_aggregate_arrive_in_commit_order() -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("order");
    let consumer = Consumer::new(pool.clone(), consumer_config(env, &queue, "order"), RecordingHandler::default())?;
    consumer.declare_topology().await?;
    let signal = OutboxSignal::new();
    // Small batches, so that the order has to hold across rounds too.
    let relay = Relay::new(pool.clone(), RelayConfig { batch_size: 7, ..relay_config(env) }, signal.clone())?;
    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(shutdown.clone()));
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));

    // Act: 50 events about one user, each in its own committed transaction.
    let mut committed = Vec::new();
    for _ in 0..50 {
        let event = password_changed("user-1");
        commit_event(pool, &event).await?;
        signal.notify();
        committed.push(event.event_id);
    }
    wait_until("all 50 events are applied", || async { Ok(effects(pool).await?.len() >= 50) }).await?;
    shutdown.cancel();
    relaying.await?;
    consuming.await?;

    // Assert
    assert_eq!(effects(pool).await?, committed);

    schema.env.cleanup().await
}

#[tokio::test]
async fn two_relays_running_at_once_publish_every_event_exactly_once_and_in_order() -> anyhow::Result<()> {
    // Arrange: a plain queue sees every message the relays publish, duplicates included (a
    // `Consumer` would hide them).
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("raw");
    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    ordo_events::declare_exchange(&channel, &env.exchange()).await?;
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            env.exchange().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    connection.close(200, "declared".into()).await?;
    let config = RelayConfig { batch_size: 3, ..relay_config(env) };
    let signals = [OutboxSignal::new(), OutboxSignal::new()];
    let shutdown = CancellationToken::new();
    let mut relays = Vec::new();
    for signal in &signals {
        let relay = Relay::new(pool.clone(), config.clone(), signal.clone())?;
        relays.push(tokio::spawn(relay.run(shutdown.clone())));
    }

    // Act: producers commit while both relays compete for the outbox.
    let mut committed = Vec::new();
    for i in 0..60 {
        let event = password_changed(&format!("user-{}", i % 4));
        commit_event(pool, &event).await?;
        signals[i % 2].notify();
        committed.push(event.event_id);
    }
    wait_until("the outbox is drained", || async { Ok(unpublished(pool).await? == 0) }).await?;
    // Once every row is marked and the relays have stopped, every publish has been confirmed, so the
    // queue holds all there will ever be.
    shutdown.cancel();
    for relay in relays {
        relay.await?;
    }
    let received = drain(&queue).await?;

    // Assert
    assert_eq!(received, committed);

    schema.env.cleanup().await
}

#[tokio::test]
async fn events_enqueued_together_keep_their_order_and_one_invalid_envelope_writes_none() -> anyhow::Result<()> {
    // Arrange: more events than one statement takes, so the order must hold across chunks.
    let schema = setup().await?;
    let pool = &schema.pool;
    let events: Vec<_> =
        (0..ordo_events::ENQUEUE_CHUNK + 5).map(|i| password_changed(&format!("user-{}", i % 3))).collect();
    let mut invalid = events[..3].to_vec();
    invalid[1].r#type = String::new();

    // Act
    let mut tx = pool.begin().await?;
    let refused = ordo_events::enqueue_all(&mut tx, &invalid).await;
    ordo_events::enqueue_all(&mut tx, &events).await?;
    tx.commit().await?;

    // Assert
    assert!(matches!(refused, Err(ordo_events::Error::InvalidEnvelope(_))));
    let stored: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT event_id FROM outbox_event ORDER BY id").fetch_all(pool).await?;
    let expected: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id.parse()).collect::<Result<_, _>>()?;
    assert_eq!(stored, expected);

    schema.env.cleanup().await
}
