//! The mails waiting to be sent, in the service's schema ([`EmailStore`]). A claim takes due mails
//! with `FOR UPDATE SKIP LOCKED`, so instances claiming at once take different mails, and closes
//! each mail's window in the same statement.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::mysql::push_ids;
use crate::app::Result;
use crate::app::ports::{EmailStore, Mail, Notification, Outcome};
use crate::domain::email::{MAX_ITEMS_PER_EMAIL, MailItem};

/// The longest error text kept with a mail (the column's size).
const MAX_ERROR_CHARS: usize = 500;

/// [`EmailStore`] on the service's schema.
#[derive(Debug, Clone)]
pub struct MySqlEmailStore {
    pool: MySqlPool,
}

impl MySqlEmailStore {
    /// A store on `pool`.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

fn clip(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// Adds notification `n` to its recipient's open mail about `key`, opening one that closes at
/// `closes_at` when none is open; on the ingesting transaction's `conn`.
pub(super) async fn queue(
    conn: &mut MySqlConnection,
    n: &Notification,
    key: Uuid,
    closes_at: OffsetDateTime,
) -> Result<()> {
    // Opens the window's mail unless one is open; either way the row is locked until commit, so
    // a sender cannot claim it between here and the item's insert. (A claimed mail's `open_key`
    // is NULL: the next notification opens another.)
    sqlx::query!(
        "INSERT INTO email (id, user_id, open_key, state, due_at, created_at) VALUES (?, ?, ?, 'open', ?, ?)
             ON DUPLICATE KEY UPDATE id = id",
        Uuid::now_v7(),
        n.draft.recipient,
        key,
        utc(closes_at),
        utc(n.created_at),
    )
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    let open = sqlx::query!(
        r#"SELECT id AS "id: Uuid", (SELECT COUNT(*) FROM email_item WHERE email_id = email.id) AS "items!: i64"
               FROM email WHERE user_id = ? AND open_key = ? FOR UPDATE"#,
        n.draft.recipient,
        key,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    if open.items >= i64::from(MAX_ITEMS_PER_EMAIL) {
        sqlx::query!("UPDATE email SET more_items = more_items + 1 WHERE id = ?", open.id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO email_item (email_id, notification_id, kind, title, body, task_key) VALUES (?, ?, ?, ?, ?, ?)",
        open.id,
        n.id,
        n.draft.kind.as_str(),
        n.draft.title,
        n.draft.body,
        n.draft.task_key,
    )
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl EmailStore for MySqlEmailStore {
    async fn claim(&self, now: OffsetDateTime, lease: Duration, limit: u32) -> Result<Vec<Mail>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let ids: Vec<Uuid> = sqlx::query_scalar!(
            r#"SELECT id AS "id: Uuid" FROM email WHERE state IN ('open', 'retry') AND due_at <= ?
               ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED"#,
            utc(now),
            limit,
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::<MySql>::new(
            "UPDATE email SET state = 'sending', open_key = NULL, attempts = attempts + 1, claimed_until = ",
        );
        sql.push_bind(utc(now + lease)).push(" WHERE id IN (");
        push_ids(&mut sql, &ids);
        sql.build().execute(&mut *tx).await.map_err(db_error)?;

        let mut sql = QueryBuilder::<MySql>::new(
            "SELECT e.id, e.attempts, e.more_items, u.email, u.display_name, u.disabled \
             FROM email e LEFT JOIN directory_user u ON u.user_id = e.user_id WHERE e.id IN (",
        );
        push_ids(&mut sql, &ids);
        type Head = (Uuid, i16, i32, Option<String>, Option<String>, Option<bool>);
        let heads: Vec<Head> = sql.build_query_as().fetch_all(&mut *tx).await.map_err(db_error)?;

        let mut sql =
            QueryBuilder::<MySql>::new("SELECT email_id, title, body, task_key FROM email_item WHERE email_id IN (");
        push_ids(&mut sql, &ids);
        sql.push(" ORDER BY email_id, notification_id");
        let rows: Vec<(Uuid, String, String, Option<String>)> =
            sql.build_query_as().fetch_all(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;

        let mut items: HashMap<Uuid, Vec<MailItem>> = HashMap::new();
        for (email_id, title, body, task_key) in rows {
            items.entry(email_id).or_default().push(MailItem { title, body, task_key });
        }
        Ok(heads
            .into_iter()
            .map(|(id, attempts, more, email, display_name, disabled)| Mail {
                id,
                to: email.filter(|e| !e.is_empty() && disabled != Some(true)),
                to_name: display_name.unwrap_or_default(),
                items: items.remove(&id).unwrap_or_default(),
                more: u32::try_from(more).unwrap_or(0),
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
            .collect())
    }

    async fn record(&self, id: Uuid, outcome: &Outcome, now: OffsetDateTime) -> Result<()> {
        let query = match outcome {
            Outcome::Sent { message_id } => sqlx::query!(
                "UPDATE email SET state = 'sent', ses_message_id = ?, sent_at = ?, claimed_until = NULL, error = NULL
                 WHERE id = ? AND state = 'sending'",
                message_id,
                utc(now),
                id,
            ),
            Outcome::Retry { at, error } => sqlx::query!(
                "UPDATE email SET state = 'retry', due_at = ?, error = ?, claimed_until = NULL
                 WHERE id = ? AND state = 'sending'",
                utc(*at),
                clip(error),
                id,
            ),
            Outcome::Failed { error } => sqlx::query!(
                "UPDATE email SET state = 'failed', error = ?, claimed_until = NULL WHERE id = ? AND state = 'sending'",
                clip(error),
                id,
            ),
            Outcome::Unknown { error } => sqlx::query!(
                "UPDATE email SET state = 'unknown', error = ?, claimed_until = NULL WHERE id = ? AND state = 'sending'",
                clip(error),
                id,
            ),
        };
        query.execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn abandon_expired_claims(&self, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query!(
            "UPDATE email SET state = 'unknown', claimed_until = NULL,
               error = 'its sender stopped while sending; SES may have accepted it'
             WHERE state = 'sending' AND claimed_until < ?",
            utc(now),
        )
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn delete_finished_before(&self, before: OffsetDateTime, batch: u32) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let ids: Vec<Uuid> = sqlx::query_scalar!(
            r#"SELECT id AS "id: Uuid" FROM email WHERE created_at < ? AND state IN ('sent', 'failed', 'unknown')
               ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED"#,
            utc(before),
            batch,
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut sql = QueryBuilder::<MySql>::new("DELETE FROM email_item WHERE email_id IN (");
        push_ids(&mut sql, &ids);
        sql.build().execute(&mut *tx).await.map_err(db_error)?;
        let mut sql = QueryBuilder::<MySql>::new("DELETE FROM email WHERE id IN (");
        push_ids(&mut sql, &ids);
        let done = sql.build().execute(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
