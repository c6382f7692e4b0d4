//! What ingesting events reads and writes inside the consumer's transaction ([`MySqlIngest`]): the
//! directory of users and members, preferences, each user's sequence and counts, the notifications
//! themselves and the live streams' wake-up. A batch costs one statement per step, whatever the
//! number of its events: reads name every key they need at once, writes are multi-row, in chunks
//! the server takes.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::mysql::{push_ids, push_pairs};
use crate::app::ports::{DueState, IngestTx, Notification, Queued};
use crate::app::{AppError, Result};
use crate::domain::reminder::TaskDue;
use crate::domain::{Channel, Kind, Member};

/// The most rows one multi-row statement carries: well under the server's 65,535 placeholders for
/// the widest row here (12 columns).
pub(super) const CHUNK: usize = 1000;

/// [`IngestTx`] on the consumer's transaction.
#[derive(Debug)]
pub struct MySqlIngest<'c> {
    conn: &'c mut MySqlConnection,
}

impl<'c> MySqlIngest<'c> {
    /// Ingests on `conn`, inside the transaction the consumer commits with the events' receipts.
    pub fn new(conn: &'c mut MySqlConnection) -> Self {
        Self { conn }
    }
}

#[async_trait]
impl IngestTx for MySqlIngest<'_> {
    async fn upsert_user(&mut self, user_id: Uuid, email: &str, display_name: &str) -> Result<()> {
        sqlx::query!(
            "INSERT INTO directory_user (user_id, email, display_name) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE email = VALUES(email), display_name = VALUES(display_name)",
            user_id,
            email,
            display_name,
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_user_disabled(&mut self, user_id: Uuid, disabled: bool, as_of: OffsetDateTime) -> Result<()> {
        // Assignments run left to right: `disabled` is decided on the old `as_of`.
        sqlx::query!(
            "INSERT INTO directory_user (user_id, disabled, as_of) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE
               disabled = IF(as_of IS NULL OR as_of <= VALUES(as_of), VALUES(disabled), disabled),
               as_of = IF(as_of IS NULL OR as_of <= VALUES(as_of), VALUES(as_of), as_of)",
            user_id,
            disabled,
            utc(as_of),
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_member(
        &mut self,
        project_id: Uuid,
        user_id: Uuid,
        member: bool,
        manages: bool,
        as_of: OffsetDateTime,
    ) -> Result<()> {
        // Assignments run left to right: every one is decided on the old `as_of`, assigned last.
        sqlx::query!(
            "INSERT INTO directory_member (project_id, user_id, member, manages, as_of) VALUES (?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE
               member = IF(as_of <= VALUES(as_of), VALUES(member), member),
               manages = IF(as_of <= VALUES(as_of), VALUES(manages), manages),
               as_of = IF(as_of <= VALUES(as_of), VALUES(as_of), as_of)",
            project_id,
            user_id,
            member,
            member && manages,
            utc(as_of),
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn project_gone(&mut self, project_id: Uuid, as_of: OffsetDateTime) -> Result<()> {
        sqlx::query!(
            "UPDATE directory_member SET member = FALSE, as_of = ? WHERE project_id = ? AND as_of <= ?",
            utc(as_of),
            project_id,
            utc(as_of),
        )
        .execute(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn managers(&mut self, project_id: Uuid) -> Result<Vec<Uuid>> {
        sqlx::query_scalar!(
            "SELECT m.user_id FROM directory_member m
             JOIN directory_user u ON u.user_id = m.user_id
             WHERE m.project_id = ? AND m.member AND m.manages AND NOT u.disabled",
            project_id,
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_error)
    }

    async fn members(&mut self, project_id: Uuid) -> Result<Vec<Member>> {
        let rows = sqlx::query!(
            "SELECT m.user_id, u.display_name, u.email FROM directory_member m
             JOIN directory_user u ON u.user_id = m.user_id
             WHERE m.project_id = ? AND m.member AND NOT u.disabled",
            project_id,
        )
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| Member { user_id: row.user_id, display_name: row.display_name, email: row.email })
            .collect())
    }

    async fn without_access(&mut self, pairs: &[(Uuid, Uuid)]) -> Result<HashSet<(Uuid, Uuid)>> {
        let mut blocked = HashSet::new();
        for chunk in pairs.chunks(CHUNK) {
            let mut users: Vec<Uuid> = chunk.iter().map(|(_, user)| *user).collect();
            users.sort_unstable();
            users.dedup();
            let mut sql =
                QueryBuilder::<MySql>::new("SELECT project_id, user_id FROM directory_member WHERE NOT member AND ");
            sql.push("(project_id, user_id) IN ");
            push_pairs(&mut sql, chunk);
            let removed: Vec<(Uuid, Uuid)> = sql.build_query_as().fetch_all(&mut *self.conn).await.map_err(db_error)?;
            blocked.extend(removed);
            let mut sql =
                QueryBuilder::<MySql>::new("SELECT user_id FROM directory_user WHERE disabled AND user_id IN (");
            push_ids(&mut sql, &users);
            let disabled: HashSet<Uuid> =
                sql.build_query_scalar().fetch_all(&mut *self.conn).await.map_err(db_error)?.into_iter().collect();
            blocked.extend(chunk.iter().filter(|(_, user)| disabled.contains(user)));
        }
        Ok(blocked)
    }

    async fn turned_off(&mut self, users: &[Uuid]) -> Result<HashSet<(Uuid, Channel, Kind)>> {
        let mut off = HashSet::new();
        for chunk in users.chunks(CHUNK) {
            let mut sql = QueryBuilder::<MySql>::new(
                "SELECT user_id, channel, kind FROM preference WHERE NOT enabled AND user_id IN (",
            );
            push_ids(&mut sql, chunk);
            let rows: Vec<(Uuid, String, String)> =
                sql.build_query_as().fetch_all(&mut *self.conn).await.map_err(db_error)?;
            // A channel or kind this version does not know (written by a newer one) turns nothing off.
            off.extend(
                rows.into_iter().filter_map(|(user, channel, kind)| {
                    Some((user, Channel::parse(&channel)?, Kind::parse(&kind).ok()?))
                }),
            );
        }
        Ok(off)
    }

    async fn insert(&mut self, notifications: &mut [(Uuid, Notification)]) -> Result<()> {
        if notifications.is_empty() {
            return Ok(());
        }
        // By user, each user's in the order given (a stable sort): each user's places are taken in
        // one row lock, and the rows are locked in key order, so two consumers never wait on each
        // other's rows in opposite orders. The rows stay locked until commit.
        notifications.sort_by_key(|(_, n)| n.draft.recipient);
        let mut runs: Vec<(Uuid, i64)> = Vec::new();
        for (_, n) in notifications.iter() {
            match runs.last_mut() {
                Some((user, count)) if *user == n.draft.recipient => *count += 1,
                _ => runs.push((n.draft.recipient, 1)),
            }
        }
        let mut last: HashMap<Uuid, i64> = HashMap::with_capacity(runs.len());
        for chunk in runs.chunks(CHUNK) {
            let mut sql =
                QueryBuilder::<MySql>::new("INSERT INTO notification_sequence (user_id, last_seq, unread, unseen) ");
            sql.push_values(chunk, |mut row, (user, count)| {
                row.push_bind(*user).push_bind(*count).push_bind(*count).push_bind(*count);
            });
            sql.push(
                " ON DUPLICATE KEY UPDATE last_seq = last_seq + VALUES(last_seq), unread = unread + VALUES(unread), \
                 unseen = unseen + VALUES(unseen), version = version + 1",
            );
            sql.build().execute(&mut *self.conn).await.map_err(db_error)?;
            // The rows this transaction holds: read as it left them.
            let mut sql =
                QueryBuilder::<MySql>::new("SELECT user_id, last_seq FROM notification_sequence WHERE user_id IN (");
            let users: Vec<Uuid> = chunk.iter().map(|(user, _)| *user).collect();
            push_ids(&mut sql, &users);
            let rows: Vec<(Uuid, i64)> = sql.build_query_as().fetch_all(&mut *self.conn).await.map_err(db_error)?;
            last.extend(rows);
        }
        let mut next: HashMap<Uuid, i64> = HashMap::with_capacity(runs.len());
        for (user, count) in &runs {
            let Some(last) = last.get(user) else {
                return Err(AppError::internal(anyhow::anyhow!("a user's notification sequence vanished")));
            };
            next.insert(*user, last - count + 1);
        }
        for (_, n) in notifications.iter_mut() {
            let Some(seq) = next.get_mut(&n.draft.recipient) else { continue };
            n.seq = *seq;
            *seq += 1;
        }
        for chunk in notifications.chunks(CHUNK) {
            let mut sql = QueryBuilder::<MySql>::new(
                "INSERT INTO notification (id, user_id, seq, event_id, kind, title, body, project_id, task_id, task_key, \
                 actor_id, created_at) ",
            );
            sql.push_values(chunk, |mut row, (event_id, n)| {
                row.push_bind(n.id)
                    .push_bind(n.draft.recipient)
                    .push_bind(n.seq)
                    .push_bind(*event_id)
                    .push_bind(n.draft.kind.as_str())
                    .push_bind(n.draft.title.as_str())
                    .push_bind(n.draft.body.as_str())
                    .push_bind(n.draft.project_id)
                    .push_bind(n.draft.task_id)
                    .push_bind(n.draft.task_key.as_deref())
                    .push_bind(n.actor_id)
                    .push_bind(utc(n.created_at));
            });
            sql.build().execute(&mut *self.conn).await.map_err(db_error)?;
        }
        Ok(())
    }

    async fn announce(&mut self, users: &[Uuid]) -> Result<()> {
        let envelope = super::live::created(users);
        ordo_events::enqueue(&mut *self.conn, &envelope).await.map_err(AppError::internal)
    }

    async fn due_states(&mut self, task_ids: &[Uuid]) -> Result<HashMap<Uuid, DueState>> {
        super::reminders::due_states(self.conn, task_ids).await
    }

    async fn save_dues(&mut self, dues: &[(&TaskDue, Option<OffsetDateTime>)]) -> Result<()> {
        super::reminders::save(self.conn, dues).await
    }

    async fn tasks_deleted(&mut self, task_ids: &[Uuid]) -> Result<()> {
        super::reminders::deleted(self.conn, task_ids).await
    }

    async fn claim_reminders(&mut self, now: OffsetDateTime, limit: u32) -> Result<Vec<TaskDue>> {
        super::reminders::claim(self.conn, now, limit).await
    }

    async fn mail_held(&mut self, users: &[Uuid]) -> Result<HashSet<Uuid>> {
        super::digests::mail_held(self.conn, users).await
    }

    async fn queue_emails(&mut self, mails: &[Queued<'_>]) -> Result<()> {
        super::email_store::queue(self.conn, mails).await
    }

    async fn queue_pushes(&mut self, notifications: &[&Notification], now: OffsetDateTime) -> Result<()> {
        super::push_store::queue(self.conn, notifications, now).await
    }
}
