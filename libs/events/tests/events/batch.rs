//! Batches: a batched consumer applies many events per transaction, each still exactly once and in
//! delivery order, and a poison event in a batch is retried and dead-lettered alone.

use std::time::Duration;

use anyhow::Context as _;
use ordo_events::{BatchConfig, Consumer, ConsumerConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    Failure, RecordingBatchHandler, WAIT, consumer_config, consumer_counter, depth, drain, effects, password_changed,
    publish, setup, wait_until,
};
use crate::poison::publish_raw;

fn batched(config: ConsumerConfig) -> (ConsumerConfig, BatchConfig) {
    // A generous wait, so that batches fill up even on a slow machine.
    (ConsumerConfig { prefetch: 128, ..config }, BatchConfig { max_batch: 64, max_wait: Duration::from_millis(20) })
}

#[tokio::test]
async fn a_batched_consumer_applies_every_event_once_in_delivery_order_and_many_per_transaction() -> anyhow::Result<()>
{
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue("batch");
    let handler = RecordingBatchHandler::default();
    let (config, batch) = batched(consumer_config(env, &queue, "batch"));
    let consumer = Consumer::new_batched(pool.clone(), config, batch, handler.clone())?;
    consumer.declare_topology().await?;
    let events: Vec<_> = (0..150).map(|i| password_changed(&format!("user-{}", i % 7))).collect();
    // An event this consumer applied before (its dedup row is there) ...
    let earlier = password_changed("user-earlier");
    sqlx::query("INSERT INTO processed_event (consumer, event_id, processed_at) VALUES (?, ?, UTC_TIMESTAMP(6))")
        .bind("batch")
        .bind(uuid::Uuid::parse_str(&earlier.event_id)?)
        .execute(pool)
        .await?;
    // ... and one event delivered twice in a row, so both copies are likely in one batch.
    let mut published = events.clone();
    published.insert(4, events[3].clone());
    published.insert(50, earlier);

    // Act: everything is in the queue before the consumer starts, so batches can fill up.
    publish(&env.exchange(), &published).await?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until("all 150 events are applied and both duplicates dropped", || async {
        Ok(effects(pool).await?.len() >= 150 && consumer_counter("ordo_consumer_duplicates_total", "batch") >= 2)
    })
    .await?;
    shutdown.cancel();
    consuming.await?;

    // Assert
    let expected: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(effects(pool).await?, expected, "each event once, in delivery order");
    assert!(events.iter().all(|e| handler.attempts(&e.event_id) == 1), "no duplicate reached the handler");
    let batches = handler.batches();
    assert!(batches.iter().all(|&n| (1..=64).contains(&n)), "{batches:?}");
    assert!(batches.len() < 150 && batches.iter().any(|&n| n > 1), "events were applied in batches: {batches:?}");
    assert_eq!(consumer_counter("ordo_consumer_processed_total", "batch"), 150);
    assert_eq!(consumer_counter("ordo_consumer_duplicates_total", "batch"), 2);
    assert_eq!(consumer_counter("ordo_consumer_batch_fallbacks_total", "batch"), 0);
    let processed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_event WHERE consumer = ?")
        .bind("batch")
        .fetch_one(pool)
        .await?;
    assert_eq!(processed, 151);
    // Every delivery was acked (one ack per batch settles it all): none is left to come back.
    assert_eq!(depth(&queue).await?, 0, "every delivery was settled");

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_poison_event_in_a_batch_is_dead_lettered_alone_after_five_attempts_while_the_rest_are_applied()
-> anyhow::Result<()> {
    batch_poison_scenario("batch-poison-error", Failure::Error).await
}

#[tokio::test]
async fn a_batch_handler_that_panics_on_one_event_dead_letters_only_that_event() -> anyhow::Result<()> {
    batch_poison_scenario("batch-poison-panic", Failure::Panic).await
}

/// Twenty events with a poison one among them and an undecodable body in the middle, all in the
/// queue before the consumer starts: the batch fails, its events are applied one by one, the poison
/// one is delivered exactly five times and dead-lettered with the undecodable one, and every other
/// event is applied once, in order.
async fn batch_poison_scenario(name: &str, failure: Failure) -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue(name);
    let events: Vec<_> = (0..20).map(|i| password_changed(&format!("user-{i}"))).collect();
    let poison = events[7].clone();
    let handler = RecordingBatchHandler::failing_on(&poison.event_id, failure);
    let (config, batch) = batched(consumer_config(env, &queue, name));
    let dead_letters = config.dead_letter_queue();
    let consumer = Consumer::new_batched(pool.clone(), config, batch, handler.clone())?;
    consumer.declare_topology().await?;

    // Act
    publish(&env.exchange(), &events[..10]).await?;
    publish_raw(&env.exchange(), "identity.password_changed", b"not a protobuf envelope").await?;
    publish(&env.exchange(), &events[10..]).await?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until("the 19 healthy events are applied", || async { Ok(effects(pool).await?.len() >= 19) }).await?;
    let mut dead = Vec::new();
    tokio::time::timeout(WAIT, async {
        while dead.len() < 2 {
            dead.extend(drain(&dead_letters).await?);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok::<_, anyhow::Error>(())
    })
    .await
    .context("timed out waiting for both bad messages in the dead-letter queue")??;
    shutdown.cancel();
    consuming.await?;

    // Assert
    assert_eq!(handler.attempts_alone(&poison.event_id), 5, "delivered exactly max_attempts times");
    assert!(consumer_counter("ordo_consumer_batch_fallbacks_total", name) >= 1);
    assert!(handler.batches().iter().any(|&n| n > 1), "the events were batched: {:?}", handler.batches());
    // Five failed deliveries of the poison event plus one rejection of the undecodable body.
    assert_eq!(consumer_counter("ordo_consumer_failed_total", name), 6);
    dead.sort();
    let mut expected_dead = vec![poison.event_id.clone(), "not a protobuf envelope".to_owned()];
    expected_dead.sort();
    assert_eq!(dead, expected_dead);
    let healthy: Vec<String> =
        events.iter().filter(|e| e.event_id != poison.event_id).map(|e| e.event_id.clone()).collect();
    assert_eq!(effects(pool).await?, healthy, "every other event once, in order");
    assert_eq!(consumer_counter("ordo_consumer_processed_total", name), 19);

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_batch_larger_than_the_prefetch_is_refused() -> anyhow::Result<()> {
    // Arrange
    let pool = sqlx::MySqlPool::connect_lazy("mysql://root@127.0.0.1:3306/unused")?;
    let config = ConsumerConfig {
        prefetch: 10,
        ..ConsumerConfig::new(ordo_testkit::amqp_url(), "ordo.events", "q", "batch-config", ["#"])
    };

    // Act
    let too_big = Consumer::new_batched(
        pool.clone(),
        config.clone(),
        BatchConfig { max_batch: 11, ..BatchConfig::default() },
        RecordingBatchHandler::default(),
    );
    let empty = Consumer::new_batched(
        pool,
        config,
        BatchConfig { max_batch: 0, ..BatchConfig::default() },
        RecordingBatchHandler::default(),
    );

    // Assert
    assert!(matches!(too_big, Err(ordo_events::Error::InvalidConfig(_))), "{too_big:?}");
    assert!(matches!(empty, Err(ordo_events::Error::InvalidConfig(_))), "{empty:?}");
    Ok(())
}
