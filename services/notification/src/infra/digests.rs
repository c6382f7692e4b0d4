//! Daily digests in the service's schema: each user's email delivery (`email_schedule`), the local
//! days that had their digest (`digest`), and what a digest lists. Composing claims due schedules
//! with `FOR UPDATE SKIP LOCKED`, so with several instances exactly one composes each; the digest's
//! day is a primary key, so a day never has two.

use std::collections::HashSet;

use async_trait::async_trait;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::ingest::CHUNK;
use super::mysql::push_ids;
use crate::app::ports::{DigestTx, DueDigest};
use crate::app::{Result, compose_digests};
use crate::domain::Kind;
use crate::domain::digest::{DigestContent, DigestNotification, DueItem, EmailDelivery, EmailMode, Schedule};
use crate::domain::email::MailItem;

/// How `user_id`'s notification mail goes out, on `pool`.
pub(super) async fn delivery(pool: &MySqlPool, user_id: Uuid) -> Result<EmailDelivery> {
    let row =
        sqlx::query!("SELECT mode, hour, time_zone, next_digest_at FROM email_schedule WHERE user_id = ?", user_id,)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    let Some(row) = row else { return Ok(EmailDelivery::default()) };
    let hour = u8::try_from(row.hour).unwrap_or(0).min(23);
    Ok(EmailDelivery {
        // A mode this version does not know (written by a newer one) reads as the default.
        mode: EmailMode::parse(&row.mode).unwrap_or_default(),
        schedule: Schedule::new(hour, &row.time_zone).or_else(|_| Schedule::new(hour, "UTC")).unwrap_or_default(),
        next_digest_at: row.next_digest_at.map(PrimitiveDateTime::assume_utc),
    })
}

/// Stores `delivery` as `user_id`'s, on `pool`: turning daily from another mode starts the first
/// digest's notifications at `now`.
pub(super) async fn set_delivery(
    pool: &MySqlPool,
    user_id: Uuid,
    delivery: &EmailDelivery,
    now: OffsetDateTime,
) -> Result<()> {
    let since = (delivery.mode == EmailMode::Daily).then(|| utc(now));
    // Assignments run left to right: `digest_since` is decided on the old `mode`, assigned after it.
    sqlx::query!(
        "INSERT INTO email_schedule (user_id, mode, hour, time_zone, next_digest_at, digest_since)
         VALUES (?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE
           digest_since = IF(mode = 'daily' AND VALUES(mode) = 'daily', digest_since, VALUES(digest_since)),
           mode = VALUES(mode), hour = VALUES(hour), time_zone = VALUES(time_zone),
           next_digest_at = VALUES(next_digest_at)",
        user_id,
        delivery.mode.as_str(),
        delivery.schedule.hour(),
        delivery.schedule.time_zone(),
        delivery.next_digest_at.map(utc),
        since,
    )
    .execute(pool)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Those of `users` whose notification mail does not go out at once, on the ingesting transaction.
pub(super) async fn mail_held(conn: &mut MySqlConnection, users: &[Uuid]) -> Result<HashSet<Uuid>> {
    let mut held = HashSet::new();
    for chunk in users.chunks(CHUNK) {
        let mut sql =
            QueryBuilder::<MySql>::new("SELECT user_id FROM email_schedule WHERE mode <> 'immediate' AND user_id IN (");
        push_ids(&mut sql, chunk);
        let rows: Vec<Uuid> = sql.build_query_scalar().fetch_all(&mut *conn).await.map_err(db_error)?;
        held.extend(rows);
    }
    Ok(held)
}

/// The smallest UUID v7 of the millisecond of `at`: notification ids (UUID v7) at or after `at`
/// are not below it, so a time range is a range of the `(user_id, archived_at, id)` index.
fn v7_floor(at: OffsetDateTime) -> Uuid {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// [`DigestTx`] on the transaction of a claim.
#[derive(Debug)]
pub struct MySqlDigest<'c> {
    conn: &'c mut MySqlConnection,
}

impl<'c> MySqlDigest<'c> {
    /// Composes on `conn`, inside the transaction that commits the claim.
    pub fn new(conn: &'c mut MySqlConnection) -> Self {
        Self { conn }
    }
}

#[async_trait]
impl DigestTx for MySqlDigest<'_> {
    async fn claim_digests(&mut self, now: OffsetDateTime, limit: u32) -> Result<Vec<DueDigest>> {
        let rows = sqlx::query!(
            "SELECT user_id, hour, time_zone, next_digest_at, digest_since FROM email_schedule
             WHERE next_digest_at <= ? AND mode = 'daily' ORDER BY next_digest_at LIMIT ? FOR UPDATE SKIP LOCKED",
            utc(now),
            limit,
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(DueDigest {
                    user_id: row.user_id,
                    hour: u8::try_from(row.hour).ok()?,
                    time_zone: row.time_zone,
                    due_at: row.next_digest_at?.assume_utc(),
                    since: row.digest_since.map(PrimitiveDateTime::assume_utc),
                })
            })
            .collect())
    }

    async fn record_digest(&mut self, user_id: Uuid, day: Date, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "INSERT IGNORE INTO digest (user_id, local_date, created_at) VALUES (?, ?, ?)",
            user_id,
            day,
            utc(now),
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn digest_content(
        &mut self,
        user_id: Uuid,
        since: OffsetDateTime,
        until: OffsetDateTime,
        due_before: OffsetDateTime,
        limit: u32,
    ) -> Result<DigestContent> {
        let (from, to) = (v7_floor(since), v7_floor(until));
        let fetch = limit.saturating_add(1);
        let rows = sqlx::query!(
            "SELECT id, kind, title, body, task_key FROM notification
             WHERE user_id = ? AND archived_at IS NULL AND id >= ? AND id < ? AND read_at IS NULL
               AND kind NOT IN (SELECT kind FROM preference WHERE user_id = ? AND channel = 'email' AND NOT enabled)
             ORDER BY id LIMIT ?",
            user_id,
            from,
            to,
            user_id,
            fetch,
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_error)?;
        let mut notifications: Vec<DigestNotification> = rows
            .into_iter()
            .filter_map(|row| {
                Some(DigestNotification {
                    id: row.id,
                    // A kind this version does not know (stored by a newer one) is left out.
                    kind: Kind::parse(&row.kind).ok()?,
                    item: MailItem { title: row.title, body: row.body, task_key: row.task_key },
                })
            })
            .collect();
        let more_notifications = if notifications.len() > limit as usize {
            notifications.truncate(limit as usize);
            let total = sqlx::query_scalar!(
                "SELECT COUNT(*) FROM notification
                 WHERE user_id = ? AND archived_at IS NULL AND id >= ? AND id < ? AND read_at IS NULL
                   AND kind NOT IN (SELECT kind FROM preference WHERE user_id = ? AND channel = 'email' AND NOT enabled)",
                user_id,
                from,
                to,
                user_id,
            )
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db_error)?;
            u32::try_from(total).unwrap_or(u32::MAX).saturating_sub(limit)
        } else {
            0
        };

        // A task of a project the user left (or was removed from) is not theirs to hear of.
        let rows = sqlx::query!(
            "SELECT t.task_key, t.title, a.due_at FROM due_assignment a
             JOIN task_due t ON t.task_id = a.task_id
             LEFT JOIN directory_member m ON m.project_id = t.project_id AND m.user_id = a.user_id
             WHERE a.user_id = ? AND a.due_at < ? AND (m.member IS NULL OR m.member)
             ORDER BY a.due_at, a.task_id LIMIT ?",
            user_id,
            utc(due_before),
            fetch,
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_error)?;
        let mut tasks: Vec<DueItem> = rows
            .into_iter()
            .map(|row| DueItem { task_key: row.task_key, title: row.title, due_at: row.due_at.assume_utc() })
            .collect();
        let more_tasks = if tasks.len() > limit as usize {
            tasks.truncate(limit as usize);
            let total = sqlx::query_scalar!(
                "SELECT COUNT(*) FROM due_assignment a
                 JOIN task_due t ON t.task_id = a.task_id
                 LEFT JOIN directory_member m ON m.project_id = t.project_id AND m.user_id = a.user_id
                 WHERE a.user_id = ? AND a.due_at < ? AND (m.member IS NULL OR m.member)",
                user_id,
                utc(due_before),
            )
            .fetch_one(&mut *self.conn)
            .await
            .map_err(db_error)?;
            u32::try_from(total).unwrap_or(u32::MAX).saturating_sub(limit)
        } else {
            0
        };
        Ok(DigestContent { notifications, more_notifications, tasks, more_tasks })
    }

    async fn queue_digest(
        &mut self,
        user_id: Uuid,
        day: Date,
        content: &DigestContent,
        now: OffsetDateTime,
    ) -> Result<()> {
        let email_id = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO email (id, user_id, open_key, state, due_at, created_at, more_items, digest_date, more_tasks)
             VALUES (?, ?, NULL, 'open', ?, ?, ?, ?, ?)",
            email_id,
            user_id,
            utc(now),
            utc(now),
            content.more_notifications,
            day,
            content.more_tasks,
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        if !content.notifications.is_empty() {
            let mut sql = QueryBuilder::<MySql>::new(
                "INSERT INTO email_item (email_id, notification_id, kind, title, body, task_key) ",
            );
            sql.push_values(&content.notifications, |mut row, n| {
                row.push_bind(email_id)
                    .push_bind(n.id)
                    .push_bind(n.kind.as_str())
                    .push_bind(n.item.title.as_str())
                    .push_bind(n.item.body.as_str())
                    .push_bind(n.item.task_key.as_deref());
            });
            sql.build().execute(&mut *self.conn).await.map_err(db_error)?;
        }
        if !content.tasks.is_empty() {
            let mut sql =
                QueryBuilder::<MySql>::new("INSERT INTO email_task (email_id, position, task_key, title, due_at) ");
            sql.push_values(content.tasks.iter().enumerate(), |mut row, (n, task)| {
                row.push_bind(email_id)
                    .push_bind(u32::try_from(n).unwrap_or(u32::MAX))
                    .push_bind(task.task_key.as_str())
                    .push_bind(task.title.as_str())
                    .push_bind(utc(task.due_at));
            });
            sql.build().execute(&mut *self.conn).await.map_err(db_error)?;
        }
        sqlx::query!("UPDATE digest SET email_id = ? WHERE user_id = ? AND local_date = ?", email_id, user_id, day)
            .execute(&mut *self.conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn reschedule(
        &mut self,
        user_id: Uuid,
        next: Option<OffsetDateTime>,
        since: Option<OffsetDateTime>,
    ) -> Result<()> {
        sqlx::query!(
            "UPDATE email_schedule SET next_digest_at = ?, digest_since = COALESCE(?, digest_since) WHERE user_id = ?",
            next.map(utc),
            since.map(utc),
            user_id,
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

/// Composes up to `limit` digests due at `now` in one transaction (see [`compose_digests`]); how
/// many schedules were claimed.
///
/// # Errors
///
/// What the database answers; nothing composed then.
pub async fn compose_due(pool: &MySqlPool, now: OffsetDateTime, limit: u32) -> Result<usize> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let claimed = compose_digests(&mut MySqlDigest::new(&mut tx), now, limit).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(claimed)
}

/// Deletes up to `batch` records of digests made before `before`; how many went.
///
/// # Errors
///
/// What the database answers.
pub async fn delete_before(pool: &MySqlPool, before: OffsetDateTime, batch: u32) -> Result<u64> {
    let done = sqlx::query!("DELETE FROM digest WHERE created_at < ? ORDER BY created_at LIMIT ?", utc(before), batch)
        .execute(pool)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_floor_of_a_millisecond_is_at_most_every_v7_id_of_it_and_above_the_one_before() {
        let at = datetime!(2026-12-07 08:00:00.123456 UTC);
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let same = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            (millis % 1000) as u32 * 1_000_000,
        ));
        let before = v7_floor(at - time::Duration::milliseconds(1));

        assert!(v7_floor(at) <= same);
        assert!(before < v7_floor(at));
        assert_eq!(v7_floor(at).get_version_num(), 7);
    }
}
