//! Poison messages end in the dead-letter queue after the allowed attempts, and the consumer goes on.

use std::time::Duration;

use anyhow::Context as _;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use ordo_events::{Consumer, OutboxSignal, Relay};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    Failure, RecordingHandler, WAIT, commit_event, consumer_config, consumer_counter, drain, effects, password_changed,
    relay_config, setup, wait_until,
};

#[tokio::test]
async fn a_poison_message_is_dead_lettered_after_five_attempts_while_later_messages_are_processed() -> anyhow::Result<()>
{
    poison_message_scenario("poison-error", Failure::Error).await
}

#[tokio::test]
async fn a_handler_that_panics_is_retried_and_dead_lettered_without_stopping_the_consumer() -> anyhow::Result<()> {
    poison_message_scenario("poison-panic", Failure::Panic).await
}

/// One event the handler always fails on (in the given way), one undecodable body, then a healthy
/// event: both bad messages must end in the dead-letter queue, the first after exactly five
/// attempts, and the healthy one must still be applied.
async fn poison_message_scenario(name: &str, failure: Failure) -> anyhow::Result<()> {
    // Arrange
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let queue = env.queue(name);
    let poison = password_changed("user-1");
    let healthy = password_changed("user-2");
    let handler = RecordingHandler::failing_on(&poison.event_id, failure);
    let config = consumer_config(env, &queue, name);
    let dead_letters = config.dead_letter_queue();
    assert_eq!(config.max_attempts, 5);
    let consumer = Consumer::new(pool.clone(), config, handler.clone())?;
    consumer.declare_topology().await?;
    let relay = Relay::new(pool.clone(), relay_config(env), OutboxSignal::new())?;

    // Act
    commit_event(pool, &poison).await?;
    relay.relay_once().await?;
    publish_raw(&env.exchange(), "identity.password_changed", b"not a protobuf envelope").await?;
    commit_event(pool, &healthy).await?;
    relay.relay_once().await?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    wait_until("the healthy event is applied", || async { Ok(!effects(pool).await?.is_empty()) }).await?;
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
    assert_eq!(handler.attempts(&poison.event_id), 5, "attempted exactly max_attempts times");
    // Five failed attempts of the poison event plus one rejection of the undecodable body.
    assert_eq!(consumer_counter("ordo_consumer_failed_total", name), 6);
    dead.sort();
    let mut expected = vec![poison.event_id.clone(), "not a protobuf envelope".to_owned()];
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(effects(pool).await?, vec![healthy.event_id.clone()]);

    schema.env.cleanup().await
}

/// Publishes `body` as is, bypassing the outbox, and waits for the broker's confirm.
pub async fn publish_raw(exchange: &str, routing_key: &str, body: &[u8]) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await?
        .await?;
    anyhow::ensure!(confirm.is_ack(), "the broker did not accept the raw message");
    connection.close(200, "published".into()).await?;
    Ok(())
}
