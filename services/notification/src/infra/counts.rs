//! Each user's badge counts (unread, unseen), kept beside their notification sequence and moved in
//! the same transaction as every change of their notifications, so reading them costs one row
//! whatever a user holds, and they never drift.
//!
//! Every change of a user's notifications first locks that user's `notification_sequence` row (the
//! consumer takes it to number a new notification) and moves the row's page version on (see
//! `page_cache`): the changes of one user run one after another, each sees the rows as the last one
//! left them, and moves the counts by exactly what it changed.
//! A notification counts as unread while `read_at` is null and as unseen while `seen_at` is null,
//! unless it is archived; reading one sees it, archiving one reads and sees it.

use ordo_service::db_error;
use sqlx::MySqlConnection;
use uuid::Uuid;

use crate::app::ports::Counts;
use crate::app::{AppError, Result};

/// `user_id`'s counts (zero for a user who never had a notification).
pub(super) async fn read(conn: &mut MySqlConnection, user_id: Uuid) -> Result<Counts> {
    let row = sqlx::query!("SELECT unread, unseen FROM notification_sequence WHERE user_id = ?", user_id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    Ok(row.map_or(Counts { unread: 0, unseen: 0 }, |row| Counts { unread: row.unread, unseen: row.unseen }))
}

/// Locks `user_id`'s counts until the transaction ends and moves their page version on (the change
/// about to be made makes pages read before it stale); `false` when the user never had a
/// notification (so has none to change).
pub(super) async fn lock(conn: &mut MySqlConnection, user_id: Uuid) -> Result<bool> {
    let updated = sqlx::query!("UPDATE notification_sequence SET version = version + 1 WHERE user_id = ?", user_id)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(updated.rows_affected() > 0)
}

/// `user_id`'s page version and counts, as committed (`None` for a user who never had a
/// notification).
pub(super) async fn version(conn: &mut MySqlConnection, user_id: Uuid) -> Result<Option<(i64, Counts)>> {
    let row = sqlx::query!("SELECT version, unread, unseen FROM notification_sequence WHERE user_id = ?", user_id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    Ok(row.map(|row| (row.version, Counts { unread: row.unread, unseen: row.unseen })))
}

/// Moves `user_id`'s counts (locked) by `unread` and `unseen`, and tells every instance's streams
/// of the user when they moved.
pub(super) async fn add(conn: &mut MySqlConnection, user_id: Uuid, unread: i64, unseen: i64) -> Result<()> {
    if unread == 0 && unseen == 0 {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE notification_sequence SET unread = unread + ?, unseen = unseen + ? WHERE user_id = ?",
        unread,
        unseen,
        user_id
    )
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    announce(conn, user_id).await
}

/// Zeroes `user_id`'s (locked) unread count when `unread`, and unseen count when `unseen`, and tells
/// every instance's streams of the user.
pub(super) async fn clear(conn: &mut MySqlConnection, user_id: Uuid, unread: bool, unseen: bool) -> Result<()> {
    sqlx::query!(
        "UPDATE notification_sequence SET unread = IF(?, 0, unread), unseen = IF(?, 0, unseen) WHERE user_id = ?",
        unread,
        unseen,
        user_id
    )
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    announce(conn, user_id).await
}

/// A `notification.changed` wake-up for `user_id`'s streams, in the outbox of the change's
/// transaction: a stream on another instance shows the new counts as soon as the relay publishes
/// it, rather than at its next safety poll.
async fn announce(conn: &mut MySqlConnection, user_id: Uuid) -> Result<()> {
    ordo_events::enqueue(conn, &super::live::changed(&[user_id])).await.map_err(AppError::internal)
}

/// What one notification adds to the counts: `(unread, unseen)`, each 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Weight {
    pub(super) unread: i64,
    pub(super) unseen: i64,
}

/// The weight of `user_id`'s notification `id` (locked until the transaction ends); `None` when the
/// user has no such notification.
pub(super) async fn weight(conn: &mut MySqlConnection, user_id: Uuid, id: Uuid) -> Result<Option<Weight>> {
    let row = sqlx::query!(
        r#"SELECT (archived_at IS NULL AND read_at IS NULL) AS "unread!: bool",
                  (archived_at IS NULL AND seen_at IS NULL) AS "unseen!: bool"
           FROM notification WHERE id = ? AND user_id = ? FOR UPDATE"#,
        id,
        user_id
    )
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(row.map(|row| Weight { unread: i64::from(row.unread), unseen: i64::from(row.unseen) }))
}
