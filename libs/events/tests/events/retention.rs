//! Retention: published outbox rows and dedup records past their retention are deleted, and nothing
//! else is.

use std::time::Duration;

use ordo_events::{Consumer, OutboxSignal, Relay, RelayConfig};

use crate::helpers::{RecordingHandler, commit_event, consumer_config, password_changed, relay_config, setup};

#[tokio::test]
async fn the_relay_deletes_published_rows_past_their_retention_and_never_an_unpublished_one() -> anyhow::Result<()> {
    // Arrange: three published rows, two of them two days old, and one row not yet published (and
    // older still, as after a long broker outage).
    let schema = setup().await?;
    let pool = &schema.pool;
    for _ in 0..3 {
        commit_event(pool, &password_changed("user-1")).await?;
    }
    let relay = Relay::new(
        pool.clone(),
        RelayConfig { retention: Some(Duration::from_secs(24 * 3600)), ..relay_config(&schema.env) },
        OutboxSignal::new(),
    )?;
    assert_eq!(relay.relay_once().await?, 3);
    sqlx::query("UPDATE outbox_event SET published_at = UTC_TIMESTAMP(6) - INTERVAL 2 DAY ORDER BY id LIMIT 2")
        .execute(pool)
        .await?;
    commit_event(pool, &password_changed("user-2")).await?;
    sqlx::query("UPDATE outbox_event SET created_at = UTC_TIMESTAMP(6) - INTERVAL 3 DAY WHERE published_at IS NULL")
        .execute(pool)
        .await?;

    // Act
    let deleted = relay.prune_published().await?;
    let again = relay.prune_published().await?;

    // Assert
    assert_eq!((deleted, again), (2, 0));
    let (published, unpublished): (i64, i64) = sqlx::query_as(
        "SELECT CAST(SUM(published_at IS NOT NULL) AS SIGNED), CAST(SUM(published_at IS NULL) AS SIGNED) \
         FROM outbox_event",
    )
    .fetch_one(pool)
    .await?;
    assert_eq!((published, unpublished), (1, 1));
    let kept_forever =
        Relay::new(pool.clone(), RelayConfig { retention: None, ..relay_config(&schema.env) }, OutboxSignal::new())?;
    assert_eq!(kept_forever.prune_published().await?, 0);

    schema.env.cleanup().await
}

#[tokio::test]
async fn a_consumer_deletes_its_own_dedup_records_past_their_retention_only() -> anyhow::Result<()> {
    // Arrange: this consumer's old and recent records, and another consumer's old one.
    let schema = setup().await?;
    let (env, pool) = (&schema.env, &schema.pool);
    let config = consumer_config(env, &env.queue("retention"), "retention");
    let consumer = Consumer::new(
        pool.clone(),
        ordo_events::ConsumerConfig { dedup_retention: Some(Duration::from_secs(7 * 24 * 3600)), ..config },
        RecordingHandler::default(),
    )?;
    for (consumer, days) in [("retention", 8), ("retention", 9), ("retention", 1), ("other", 30)] {
        sqlx::query(
            "INSERT INTO processed_event (consumer, event_id, processed_at) \
             VALUES (?, ?, UTC_TIMESTAMP(6) - INTERVAL ? DAY)",
        )
        .bind(consumer)
        .bind(uuid::Uuid::now_v7())
        .bind(days)
        .execute(pool)
        .await?;
    }

    // Act
    let deleted = consumer.prune_processed().await?;

    // Assert
    assert_eq!(deleted, 2);
    let left: Vec<(String, i64)> = sqlx::query_as(
        "SELECT consumer, CAST(TIMESTAMPDIFF(DAY, processed_at, UTC_TIMESTAMP(6)) AS SIGNED) FROM processed_event \
         ORDER BY consumer, processed_at",
    )
    .fetch_all(pool)
    .await?;
    assert_eq!(left, [("other".to_owned(), 30), ("retention".to_owned(), 1)]);

    schema.env.cleanup().await
}
