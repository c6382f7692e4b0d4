//! Push subscriptions and the queue of push messages on the service's schema. Messages are queued
//! with their notification, in the same transaction ([`queue`]); senders claim due ones with
//! `FOR UPDATE SKIP LOCKED`, so with several instances one sends each.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::mysql::push_ids;
use crate::app::Result;
use crate::app::ports::Notification;
use crate::app::push::{PushQueue, PushStore, PushSubscription, PushTarget, QueuedPush};

/// The largest payload queued, in bytes: what the `web-push` crate encrypts at most.
const MAX_PAYLOAD_BYTES: usize = 3052;
/// Rows per multi-row insert.
const CHUNK: usize = 1000;

/// Subscriptions and messages in the schema of a pool.
#[derive(Debug, Clone)]
pub struct MySqlPush {
    pool: MySqlPool,
}

impl MySqlPush {
    /// On `pool`.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

/// What a push message carries: the notification as the API shows it, its body shortened until
/// the whole fits [`MAX_PAYLOAD_BYTES`].
pub(super) fn payload(n: &Notification) -> String {
    let mut body: String = n.draft.body.clone();
    loop {
        let json = serde_json::json!({
            "id": n.id,
            "kind": n.draft.kind.as_str(),
            "title": n.draft.title,
            "body": body,
            "project_id": n.draft.project_id,
            "task_id": n.draft.task_id,
            "task_key": n.draft.task_key,
            "created_at": super::webhook_enqueue::rfc3339(n.created_at),
        })
        .to_string();
        if json.len() <= MAX_PAYLOAD_BYTES || body.is_empty() {
            return json;
        }
        // Drop a quarter of what is left, on a character boundary.
        let keep = body.chars().count() * 3 / 4;
        body = body.chars().take(keep).collect();
    }
}

/// Queues each of `notifications` for every subscription of its user, due at `now`.
pub(super) async fn queue(
    conn: &mut MySqlConnection,
    notifications: &[&Notification],
    now: OffsetDateTime,
) -> Result<()> {
    let mut users: Vec<Uuid> = notifications.iter().map(|n| n.draft.recipient).collect();
    users.sort_unstable();
    users.dedup();
    let mut subscriptions: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for chunk in users.chunks(CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new("SELECT id, user_id FROM push_subscription WHERE user_id IN (");
        push_ids(&mut sql, chunk);
        let rows: Vec<(Uuid, Uuid)> = sql.build_query_as().fetch_all(&mut *conn).await.map_err(db_error)?;
        for (id, user) in rows {
            subscriptions.entry(user).or_default().push(id);
        }
    }
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    for n in notifications {
        let Some(ids) = subscriptions.get(&n.draft.recipient) else { continue };
        let body = payload(n);
        rows.extend(ids.iter().map(|id| (Uuid::now_v7(), *id, body.clone())));
    }
    for chunk in rows.chunks(CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new("INSERT INTO push_message (id, subscription_id, payload, due_at) ");
        sql.push_values(chunk, |mut row, (id, subscription, body)| {
            row.push_bind(*id).push_bind(*subscription).push_bind(body.as_str()).push_bind(utc(now));
        });
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl PushStore for MySqlPush {
    async fn subscribe(
        &self,
        user_id: Uuid,
        id: Uuid,
        target: &PushTarget,
        now: OffsetDateTime,
        max: u64,
    ) -> Result<Option<PushSubscription>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let written = sqlx::query!(
            "INSERT INTO push_subscription (id, user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE p256dh = VALUES(p256dh), auth = VALUES(auth)",
            id,
            user_id,
            target.endpoint,
            target.p256dh,
            target.auth,
            utc(now),
        )
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // 1: a new row; 2: an existing one changed; 0: an existing one as it was.
        if written.rows_affected() == 1 {
            sqlx::query!(
                "INSERT INTO push_user (user_id, subscriptions) VALUES (?, 1)
                 ON DUPLICATE KEY UPDATE subscriptions = subscriptions + 1",
                user_id
            )
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let count = sqlx::query_scalar!("SELECT subscriptions FROM push_user WHERE user_id = ?", user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
            if u64::try_from(count).unwrap_or(u64::MAX) > max {
                // Dropping the transaction rolls the row and the count back.
                return Ok(None);
            }
        }
        let row = sqlx::query!(
            "SELECT id, endpoint, created_at FROM push_subscription WHERE user_id = ? AND endpoint = ?",
            user_id,
            target.endpoint,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(PushSubscription { id: row.id, endpoint: row.endpoint, created_at: row.created_at.assume_utc() }))
    }

    async fn unsubscribe(&self, user_id: Uuid, endpoint: &str) -> Result<bool> {
        let id = sqlx::query_scalar!(
            "SELECT id FROM push_subscription WHERE user_id = ? AND endpoint = ?",
            user_id,
            endpoint
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(id) = id else { return Ok(false) };
        PushQueue::forget(self, id).await?;
        Ok(true)
    }
}

#[async_trait]
impl PushQueue for MySqlPush {
    async fn claim(&self, now: OffsetDateTime, lease: Duration, limit: u32) -> Result<Vec<QueuedPush>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let rows = sqlx::query!(
            "SELECT m.id, m.subscription_id, m.payload, m.attempts, s.endpoint, s.p256dh, s.auth
             FROM push_message m JOIN push_subscription s ON s.id = m.subscription_id
             WHERE m.due_at <= ? AND (m.claimed_until IS NULL OR m.claimed_until < ?)
             ORDER BY m.due_at LIMIT ?
             FOR UPDATE SKIP LOCKED",
            utc(now),
            utc(now),
            limit,
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut sql = QueryBuilder::<MySql>::new("UPDATE push_message SET claimed_until = ");
        sql.push_bind(utc(now + lease)).push(" WHERE id IN (");
        push_ids(&mut sql, &ids);
        sql.build().execute(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| QueuedPush {
                id: row.id,
                subscription_id: row.subscription_id,
                target: PushTarget { endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth },
                payload: row.payload,
                attempts: u32::try_from(row.attempts).unwrap_or_default(),
            })
            .collect())
    }

    async fn finish(&self, id: Uuid) -> Result<()> {
        sqlx::query!("DELETE FROM push_message WHERE id = ?", id).execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn forget(&self, subscription_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let user =
            sqlx::query_scalar!("SELECT user_id FROM push_subscription WHERE id = ? FOR UPDATE", subscription_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        let Some(user) = user else { return Ok(()) };
        sqlx::query!("DELETE FROM push_message WHERE subscription_id = ?", subscription_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query!("DELETE FROM push_subscription WHERE id = ?", subscription_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query!("UPDATE push_user SET subscriptions = subscriptions - 1 WHERE user_id = ?", user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn retry(&self, id: Uuid, attempts: u32, at: OffsetDateTime) -> Result<()> {
        sqlx::query!(
            "UPDATE push_message SET attempts = ?, due_at = ?, claimed_until = NULL WHERE id = ?",
            u16::try_from(attempts).unwrap_or(u16::MAX),
            utc(at),
            id,
        )
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::{Draft, Kind};

    fn notification(body: String) -> Notification {
        Notification {
            id: Uuid::from_u128(1),
            seq: 1,
            draft: Draft {
                recipient: Uuid::from_u128(2),
                kind: Kind::TaskCommented,
                title: "ORD-7 has a new comment".to_owned(),
                body,
                project_id: Uuid::from_u128(3),
                task_id: Some(Uuid::from_u128(4)),
                task_key: Some("ORD-7".to_owned()),
            },
            actor_id: None,
            created_at: time::macros::datetime!(2026-12-06 10:00 UTC),
            seen_at: None,
            read_at: None,
            archived_at: None,
        }
    }

    #[test]
    fn a_payload_is_the_notification_and_fits_what_push_carries() {
        let short: serde_json::Value = serde_json::from_str(&payload(&notification("Looks good".to_owned()))).unwrap();
        assert_eq!(short["kind"], "task.commented");
        assert_eq!(short["body"], "Looks good");
        assert_eq!(short["task_key"], "ORD-7");
        assert_eq!(short["created_at"], "2026-12-06T10:00:00Z");
        // A body of 1,000 four-byte characters (the most a notification's body holds) is shortened.
        let long = payload(&notification("😀".repeat(1000)));
        assert!(long.len() <= MAX_PAYLOAD_BYTES, "{}", long.len());
        let long: serde_json::Value = serde_json::from_str(&long).unwrap();
        let body = long["body"].as_str().unwrap();
        assert!(body.starts_with("😀😀😀") && body.chars().count() < 1000);
    }
}
