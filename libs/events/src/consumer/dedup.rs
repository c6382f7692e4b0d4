//! The consumer's dedup records (`processed_event`): claiming a batch's events in the transaction
//! that applies them, and deleting records past their retention.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{Connection as _, MySql, MySqlConnection, MySqlPool, QueryBuilder};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Result;

/// Dedup records deleted past their retention, by consumer.
pub(super) const PRUNED_TOTAL: &str = "ordo_consumer_dedup_pruned_total";

/// Records `event_ids` as processed by `consumer` inside `tx`, and returns those recorded now (the
/// others were processed before). One statement when none was, which is the usual case; when some
/// were, that statement is undone (savepoint) and each event is claimed on its own, to learn which.
/// Claims go in `event_id` order, so two transactions claiming overlapping batches cannot deadlock
/// on each other's rows.
pub(super) async fn claim(
    tx: &mut MySqlConnection,
    consumer: &str,
    event_ids: HashSet<Uuid>,
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let mut ordered: Vec<Uuid> = event_ids.into_iter().collect();
    ordered.sort_unstable();
    if ordered.len() > 1 {
        let mut savepoint = tx.begin().await?;
        let mut insert =
            QueryBuilder::<MySql>::new("INSERT IGNORE INTO processed_event (consumer, event_id, processed_at) ");
        insert.push_values(&ordered, |mut row, event_id| {
            row.push_bind(consumer).push_bind(*event_id).push("UTC_TIMESTAMP(6)");
        });
        let inserted = insert.build().execute(&mut *savepoint).await?.rows_affected();
        if usize::try_from(inserted).is_ok_and(|inserted| inserted == ordered.len()) {
            savepoint.commit().await?;
            return Ok(ordered.into_iter().collect());
        }
        savepoint.rollback().await?;
    }
    let mut claimed = HashSet::with_capacity(ordered.len());
    for event_id in ordered {
        if claim_one(tx, consumer, event_id).await? {
            claimed.insert(event_id);
        }
    }
    Ok(claimed)
}

/// Records `event_id` as processed by `consumer` in `tx`; false when it already was (a duplicate).
/// The row stays locked until `tx` ends, so a concurrent redelivery to another instance waits for
/// this one's outcome.
pub(super) async fn claim_one(tx: &mut MySqlConnection, consumer: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT IGNORE INTO processed_event (consumer, event_id, processed_at) VALUES (?, ?, UTC_TIMESTAMP(6))",
        consumer,
        event_id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Deletes `consumer`'s dedup rows older than `retention`.
pub(super) async fn prune_processed(pool: &MySqlPool, consumer: &str, retention: Duration) -> Result<u64> {
    let micros = u64::try_from(retention.as_micros()).unwrap_or(u64::MAX);
    let mut deleted = 0;
    loop {
        let done = sqlx::query!(
            "DELETE FROM processed_event WHERE consumer = ? AND processed_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND \
             ORDER BY processed_at LIMIT ?",
            consumer,
            micros,
            crate::relay::PRUNE_CHUNK,
        )
        .execute(pool)
        .await?
        .rows_affected();
        deleted += done;
        metrics::counter!(PRUNED_TOTAL, "consumer" => consumer.to_owned()).increment(done);
        if done < u64::from(crate::relay::PRUNE_CHUNK) {
            return Ok(deleted);
        }
    }
}

/// Prunes `consumer`'s dedup rows every `every` until `shutdown`.
pub(super) async fn prune_every(
    pool: MySqlPool,
    consumer: String,
    retention: Duration,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match prune_processed(&pool, &consumer, retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, %consumer, "dedup records past their retention deleted"),
            Err(error) => tracing::warn!(%error, %consumer, "could not prune the dedup records; retrying later"),
        }
    }
}
