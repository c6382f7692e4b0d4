//! Dead letters go back to their queue on demand, once, and are applied there with a fresh count of
//! attempts; the broker's bookkeeping of their first life does not follow them.

use ordo_events::{Consumer, OutboxSignal, Relay, replay_dead_letters};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    Failure, RecordingHandler, commit_event, consumer_config, consumer_counter, depth, effects, password_changed,
    relay_config, setup, wait_until,
};

#[tokio::test]
async fn a_replayed_dead_letter_is_applied_once_its_cause_is_fixed() -> anyhow::Result<()> {
    // Arrange: an event that fails every attempt ends in the dead-letter queue.
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let name = "replay";
    let queue = env.queue(name);
    let poison = password_changed("user-1");
    let handler = RecordingHandler::failing_on(&poison.event_id, Failure::Error);
    let config = consumer_config(env, &queue, name);
    let dead_letters = config.dead_letter_queue();
    let consumer = Consumer::new(pool.clone(), config.clone(), handler.clone())?;
    consumer.declare_topology().await?;
    let relay = Relay::new(pool.clone(), relay_config(env), OutboxSignal::new())?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    commit_event(pool, &poison).await?;
    relay.relay_once().await?;
    wait_until("the event is dead-lettered", || async { Ok(depth(&dead_letters).await? == 1) }).await?;
    assert_eq!(handler.attempts(&poison.event_id), 5);
    // The first delivery is not a redelivery; the four after it are.
    assert_eq!(consumer_counter("ordo_consumer_redeliveries_total", name), 4);

    // Act: the cause is fixed, and the dead letters are replayed.
    handler.heal();
    let replayed = replay_dead_letters(&config, 100).await?;

    // Assert: moved once, applied on its first new attempt, and nothing left to replay.
    assert_eq!(replayed, 1);
    wait_until("the replayed event is applied", || async { Ok(effects(pool).await? == [poison.event_id.clone()]) })
        .await?;
    assert_eq!(handler.attempts(&poison.event_id), 6, "one attempt after the replay");
    assert_eq!(consumer_counter("ordo_consumer_redeliveries_total", name), 4, "a fresh message, not a redelivery");
    assert_eq!(depth(&dead_letters).await?, 0);
    assert_eq!(replay_dead_letters(&config, 100).await?, 0, "an empty dead-letter queue replays nothing");

    shutdown.cancel();
    consuming.await?;
    schema.env.cleanup().await
}

#[tokio::test]
async fn a_replay_moves_no_more_than_its_limit() -> anyhow::Result<()> {
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let name = "replay-limit";
    let queue = env.queue(name);
    let config = consumer_config(env, &queue, name);
    let dead_letters = config.dead_letter_queue();
    // Declared, but nobody consumes: what is replayed stays in the queue to be counted.
    let consumer = Consumer::new(pool.clone(), config.clone(), RecordingHandler::default())?;
    consumer.declare_topology().await?;
    for n in 0..3 {
        crate::poison::publish_raw("", &dead_letters, format!("dead letter {n}").as_bytes()).await?;
    }

    assert_eq!(replay_dead_letters(&config, 2).await?, 2);

    assert_eq!(depth(&dead_letters).await?, 1);
    assert_eq!(depth(&queue).await?, 2);
    schema.env.cleanup().await
}
