//! The mails waiting to be sent, in the service's schema ([`EmailStore`]). A claim takes due mails
//! with `FOR UPDATE SKIP LOCKED`, so instances claiming at once take different mails, and closes
//! each mail's window in the same statement.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, QueryBuilder};
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::ingest::CHUNK;
use super::mysql::{push_ids, push_pairs};
use crate::app::ports::{DigestPart, EmailStore, Mail, Notification, Outcome, Queued};
use crate::app::{AppError, Result};
use crate::domain::digest::{DEFAULT_TIME_ZONE, DueItem};
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

/// A claimed mail with its recipient.
#[derive(sqlx::FromRow)]
struct Head {
    id: Uuid,
    attempts: i16,
    more_items: i32,
    email: Option<String>,
    display_name: Option<String>,
    disabled: Option<bool>,
    digest_date: Option<Date>,
    more_tasks: i32,
    created_at: PrimitiveDateTime,
    time_zone: Option<String>,
}

fn clip(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// Adds each of `mails` to its recipient's open mail about its key, opening one that closes at its
/// `closes_at` when none is open; on the ingesting transaction's `conn`. A mail lists at most
/// [`MAX_ITEMS_PER_EMAIL`] notifications and counts those past it.
pub(super) async fn queue(conn: &mut MySqlConnection, mails: &[Queued<'_>]) -> Result<()> {
    // Each open mail's notifications, in the order given; the mails in key order (the order their
    // rows are locked in).
    let mut open: BTreeMap<(Uuid, Uuid), Window<'_>> = BTreeMap::new();
    for mail in mails {
        let n = mail.notification;
        open.entry((n.draft.recipient, mail.key))
            .or_insert_with(|| Window { closes_at: mail.closes_at, created_at: n.created_at, items: Vec::new() })
            .items
            .push(n);
    }
    let open: Vec<((Uuid, Uuid), Window<'_>)> = open.into_iter().collect();
    for chunk in open.chunks(CHUNK) {
        queue_chunk(conn, chunk).await?;
    }
    Ok(())
}

/// The notifications joining one open mail, and the times a mail opened for them has.
struct Window<'a> {
    closes_at: OffsetDateTime,
    created_at: OffsetDateTime,
    items: Vec<&'a Notification>,
}

async fn queue_chunk(conn: &mut MySqlConnection, open: &[((Uuid, Uuid), Window<'_>)]) -> Result<()> {
    // Opens each window's mail unless one is open; either way the rows are locked until commit, so
    // a sender cannot claim one between here and the items' insert. (A claimed mail's `open_key`
    // is NULL: the next notification opens another.)
    let mut sql = QueryBuilder::<MySql>::new("INSERT INTO email (id, user_id, open_key, state, due_at, created_at) ");
    sql.push_values(open, |mut row, ((user, key), window)| {
        row.push_bind(Uuid::now_v7())
            .push_bind(*user)
            .push_bind(*key)
            .push("'open'")
            .push_bind(utc(window.closes_at))
            .push_bind(utc(window.created_at));
    });
    sql.push(" ON DUPLICATE KEY UPDATE id = id");
    sql.build().execute(&mut *conn).await.map_err(db_error)?;
    let mut sql = QueryBuilder::<MySql>::new(
        "SELECT id, user_id, open_key, (SELECT COUNT(*) FROM email_item WHERE email_id = email.id) \
         FROM email WHERE (user_id, open_key) IN ",
    );
    let keys: Vec<(Uuid, Uuid)> = open.iter().map(|(key, _)| *key).collect();
    push_pairs(&mut sql, &keys);
    sql.push(" FOR UPDATE");
    let rows: Vec<(Uuid, Uuid, Uuid, i64)> = sql.build_query_as().fetch_all(&mut *conn).await.map_err(db_error)?;
    let listed: HashMap<(Uuid, Uuid), (Uuid, i64)> =
        rows.into_iter().map(|(id, user, key, items)| ((user, key), (id, items))).collect();

    let mut items: Vec<(Uuid, &Notification)> = Vec::new();
    let mut more: Vec<(Uuid, i64)> = Vec::new();
    for (open_key, window) in open {
        let Some((email_id, listed)) = listed.get(open_key) else {
            return Err(AppError::internal(anyhow::anyhow!("an open mail vanished under its lock")));
        };
        let room = usize::try_from(i64::from(MAX_ITEMS_PER_EMAIL).saturating_sub(*listed)).unwrap_or(0);
        items.extend(window.items.iter().take(room).map(|n| (*email_id, *n)));
        let past = window.items.len().saturating_sub(room);
        if past > 0 {
            more.push((*email_id, i64::try_from(past).unwrap_or(i64::MAX)));
        }
    }
    for chunk in items.chunks(CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO email_item (email_id, notification_id, kind, title, body, task_key) ",
        );
        sql.push_values(chunk, |mut row, (email_id, n)| {
            row.push_bind(*email_id)
                .push_bind(n.id)
                .push_bind(n.draft.kind.as_str())
                .push_bind(n.draft.title.as_str())
                .push_bind(n.draft.body.as_str())
                .push_bind(n.draft.task_key.as_deref());
        });
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
    }
    // Rare: a window past the most a mail lists.
    for (email_id, past) in more {
        sqlx::query!("UPDATE email SET more_items = more_items + ? WHERE id = ?", past, email_id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
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
            "SELECT e.id, e.attempts, e.more_items, u.email, u.display_name, u.disabled, e.digest_date, e.more_tasks, \
             e.created_at, s.time_zone FROM email e LEFT JOIN directory_user u ON u.user_id = e.user_id \
             LEFT JOIN email_schedule s ON s.user_id = e.user_id WHERE e.id IN (",
        );
        push_ids(&mut sql, &ids);
        let heads: Vec<Head> = sql.build_query_as().fetch_all(&mut *tx).await.map_err(db_error)?;
        let digests: Vec<Uuid> = heads.iter().filter(|head| head.digest_date.is_some()).map(|head| head.id).collect();
        let mut tasks: HashMap<Uuid, Vec<DueItem>> = HashMap::new();
        if !digests.is_empty() {
            let mut sql = QueryBuilder::<MySql>::new(
                "SELECT email_id, task_key, title, due_at FROM email_task WHERE email_id IN (",
            );
            push_ids(&mut sql, &digests);
            sql.push(" ORDER BY email_id, position");
            let rows: Vec<(Uuid, String, String, PrimitiveDateTime)> =
                sql.build_query_as().fetch_all(&mut *tx).await.map_err(db_error)?;
            for (email_id, task_key, title, due_at) in rows {
                tasks.entry(email_id).or_default().push(DueItem { task_key, title, due_at: due_at.assume_utc() });
            }
        }

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
            .map(|head| Mail {
                id: head.id,
                to: head.email.filter(|e| !e.is_empty() && head.disabled != Some(true)),
                to_name: head.display_name.unwrap_or_default(),
                items: items.remove(&head.id).unwrap_or_default(),
                more: u32::try_from(head.more_items).unwrap_or(0),
                attempts: u32::try_from(head.attempts).unwrap_or(0),
                digest: head.digest_date.map(|day| DigestPart {
                    day,
                    composed_at: head.created_at.assume_utc(),
                    time_zone: head.time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned()),
                    tasks: tasks.remove(&head.id).unwrap_or_default(),
                    more_tasks: u32::try_from(head.more_tasks).unwrap_or(0),
                }),
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
        for table in ["email_item", "email_task"] {
            let mut sql = QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE email_id IN ("));
            push_ids(&mut sql, &ids);
            sql.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        let mut sql = QueryBuilder::<MySql>::new("DELETE FROM email WHERE id IN (");
        push_ids(&mut sql, &ids);
        let done = sql.build().execute(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(done.rows_affected())
    }
}
