//! The schedule of object deletions: an object of object storage is deleted once its deletion is
//! due, whether its attachment went or its upload was abandoned. Deleting attachments, tasks and
//! projects schedules theirs in their own transactions; here are the schedule's own reads and
//! writes.

use ordo_platform::db::utc_datetime as utc;
use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;

use super::db;
use crate::app::Result;

/// Schedules the deletion of the object `key` at `due_at` (moved if it is scheduled already).
pub(super) async fn schedule(pool: &MySqlPool, key: &str, due_at: OffsetDateTime) -> Result<()> {
    sqlx::query!(
        "INSERT INTO object_deletion (object_key, due_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE due_at = ?",
        key,
        utc(due_at),
        utc(due_at)
    )
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

/// Up to `limit` keys whose deletion is due at `now`, the most overdue first.
pub(super) async fn due(pool: &MySqlPool, now: OffsetDateTime, limit: u32) -> Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT object_key FROM object_deletion WHERE due_at <= ? ORDER BY due_at LIMIT ?",
        utc(now),
        limit
    )
    .fetch_all(pool)
    .await
    .map_err(db)
}

/// Forgets the scheduled deletion of `key`.
pub(super) async fn forget(pool: &MySqlPool, key: &str) -> Result<()> {
    sqlx::query!("DELETE FROM object_deletion WHERE object_key = ?", key).execute(pool).await.map_err(db)?;
    Ok(())
}
