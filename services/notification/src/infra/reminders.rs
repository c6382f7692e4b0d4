//! Due-date reminders in the service's schema: each task as its latest event showed it, when its
//! reminder fires, and who is assigned it while it is open and due (for the daily digest). Firing
//! claims rows with `FOR UPDATE SKIP LOCKED`, so with several instances exactly one fires each
//! reminder, and records the due date reminded of in the same transaction as the notifications.

use std::collections::HashMap;

use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::ingest::{CHUNK, MySqlIngest};
use super::mysql::push_ids;
use crate::app::ports::DueState;
use crate::app::{AppError, IngestSettings, Result, fire_reminders};
use crate::domain::TaskRef;
use crate::domain::reminder::TaskDue;

/// The version a deleted task's row holds: above any of its events, so none arms it again.
const DELETED: i64 = i64::MAX;
/// The version of a row made before its task's first event is recorded: below any event's.
const UNKNOWN: i64 = i64::MIN;
/// The longest title kept (the column's size).
const MAX_TITLE_CHARS: usize = 500;

/// Assignee ids, 16 bytes each.
fn encode(assignees: &[Uuid]) -> Vec<u8> {
    assignees.iter().flat_map(|id| *id.as_bytes()).collect()
}

fn decode(bytes: &[u8]) -> Result<Vec<Uuid>> {
    if !bytes.len().is_multiple_of(16) {
        return Err(AppError::Internal(anyhow::anyhow!("a stored assignee list is not a list of ids")));
    }
    Ok(bytes.chunks_exact(16).filter_map(|chunk| Uuid::from_slice(chunk).ok()).collect())
}

/// The recorded version and last reminded due date of each of `task_ids` (distinct, in key order:
/// the order their rows are locked in), locked until commit; a task not known yet reads as version
/// [`UNKNOWN`].
pub(super) async fn due_states(conn: &mut MySqlConnection, task_ids: &[Uuid]) -> Result<HashMap<Uuid, DueState>> {
    let mut states = HashMap::with_capacity(task_ids.len());
    for chunk in task_ids.chunks(CHUNK) {
        // Rows first, then the read: two transactions about a new task then queue on its row's
        // lock, where a locking read of a missing row would give each a gap lock and their inserts
        // a deadlock. A placeholder's version is below any event's; `save` fills it in.
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO task_due (task_id, project_id, task_key, title, assignees, version) ",
        );
        sql.push_values(chunk, |mut row, id| {
            row.push_bind(*id).push_bind(Uuid::nil()).push_bind("").push_bind("").push_bind("").push_bind(UNKNOWN);
        });
        sql.push(" ON DUPLICATE KEY UPDATE task_id = task_id");
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
        let mut sql =
            QueryBuilder::<MySql>::new("SELECT task_id, version, reminded_due_at FROM task_due WHERE task_id IN (");
        push_ids(&mut sql, chunk);
        sql.push(" FOR UPDATE");
        let rows: Vec<(Uuid, i64, Option<PrimitiveDateTime>)> =
            sql.build_query_as().fetch_all(&mut *conn).await.map_err(db_error)?;
        states.extend(rows.into_iter().map(|(id, version, reminded)| {
            (id, DueState { version, reminded: reminded.map(PrimitiveDateTime::assume_utc) })
        }));
    }
    Ok(states)
}

/// Records each task and when its reminder fires. A row another transaction recorded meanwhile
/// with a newer version is left as it is.
pub(super) async fn save(conn: &mut MySqlConnection, dues: &[(&TaskDue, Option<OffsetDateTime>)]) -> Result<()> {
    for chunk in dues.chunks(CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO task_due (task_id, project_id, task_key, title, assignees, due_at, version, remind_at) ",
        );
        sql.push_values(chunk, |mut row, (task, remind_at)| {
            let title: String = task.task.title.chars().take(MAX_TITLE_CHARS).collect();
            row.push_bind(task.task.id)
                .push_bind(task.task.project_id)
                .push_bind(task.task.key.as_str())
                .push_bind(title)
                .push_bind(encode(&task.assignees))
                .push_bind(task.due_at.map(utc))
                .push_bind(task.version)
                .push_bind(remind_at.map(utc));
        });
        // Assignments run left to right: `version` last, so every condition reads the old one.
        sql.push(
            " ON DUPLICATE KEY UPDATE
               project_id = IF(version < VALUES(version), VALUES(project_id), project_id),
               task_key = IF(version < VALUES(version), VALUES(task_key), task_key),
               title = IF(version < VALUES(version), VALUES(title), title),
               assignees = IF(version < VALUES(version), VALUES(assignees), assignees),
               due_at = IF(version < VALUES(version), VALUES(due_at), due_at),
               remind_at = IF(version < VALUES(version), VALUES(remind_at), remind_at),
               version = IF(version < VALUES(version), VALUES(version), version)",
        );
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
        assign(conn, chunk).await?;
    }
    Ok(())
}

/// Records who is assigned each of `dues` while it is open and has a due date (what a digest lists
/// as due or overdue), in place of what was recorded. The caller holds the tasks' rows and saves
/// only states newer than theirs.
async fn assign(conn: &mut MySqlConnection, dues: &[(&TaskDue, Option<OffsetDateTime>)]) -> Result<()> {
    let ids: Vec<Uuid> = dues.iter().map(|(task, _)| task.task.id).collect();
    let mut sql = QueryBuilder::<MySql>::new("DELETE FROM due_assignment WHERE task_id IN (");
    push_ids(&mut sql, &ids);
    sql.build().execute(&mut *conn).await.map_err(db_error)?;
    let rows: Vec<(Uuid, Uuid, OffsetDateTime)> = dues
        .iter()
        .filter(|(task, _)| task.open)
        .filter_map(|(task, _)| Some((task.task.id, task.due_at?, &task.assignees)))
        .flat_map(|(id, due_at, assignees)| assignees.iter().map(move |user| (*user, id, due_at)))
        .collect();
    // At most CHUNK tasks of MAX_ASSIGNEES each: three columns a row stays under the placeholders.
    for chunk in rows.chunks(CHUNK * 10) {
        let mut sql = QueryBuilder::<MySql>::new("INSERT IGNORE INTO due_assignment (user_id, task_id, due_at) ");
        sql.push_values(chunk, |mut row, (user, task, due_at)| {
            row.push_bind(*user).push_bind(*task).push_bind(utc(*due_at));
        });
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

/// Clears the reminders of deleted tasks for good.
pub(super) async fn deleted(conn: &mut MySqlConnection, task_ids: &[Uuid]) -> Result<()> {
    if task_ids.is_empty() {
        return Ok(());
    }
    let mut sql = QueryBuilder::<MySql>::new(
        "INSERT INTO task_due (task_id, project_id, task_key, title, assignees, due_at, version, remind_at) ",
    );
    sql.push_values(task_ids, |mut row, id| {
        row.push_bind(*id)
            .push_bind(Uuid::nil())
            .push_bind("")
            .push_bind("")
            .push_bind(Vec::<u8>::new())
            .push_bind(None::<PrimitiveDateTime>)
            .push_bind(DELETED)
            .push_bind(None::<PrimitiveDateTime>);
    });
    sql.push(" ON DUPLICATE KEY UPDATE assignees = VALUES(assignees), due_at = NULL, remind_at = NULL, version = ")
        .push_bind(DELETED);
    sql.build().execute(&mut *conn).await.map_err(db_error)?;
    let mut sql = QueryBuilder::<MySql>::new("DELETE FROM due_assignment WHERE task_id IN (");
    push_ids(&mut sql, task_ids);
    sql.build().execute(conn).await.map_err(db_error)?;
    Ok(())
}

/// Claims up to `limit` reminders due at `now` and records their due dates as reminded of.
pub(super) async fn claim(conn: &mut MySqlConnection, now: OffsetDateTime, limit: u32) -> Result<Vec<TaskDue>> {
    let rows = sqlx::query!(
        "SELECT task_id, project_id, task_key, title, assignees, due_at, version FROM task_due
         WHERE remind_at <= ? ORDER BY remind_at LIMIT ? FOR UPDATE SKIP LOCKED",
        utc(now),
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.task_id).collect();
    let mut sql =
        QueryBuilder::<MySql>::new("UPDATE task_due SET remind_at = NULL, reminded_due_at = due_at WHERE task_id IN (");
    push_ids(&mut sql, &ids);
    sql.build().execute(&mut *conn).await.map_err(db_error)?;
    rows.into_iter()
        .map(|row| {
            Ok(TaskDue {
                task: TaskRef { id: row.task_id, project_id: row.project_id, key: row.task_key, title: row.title },
                assignees: decode(&row.assignees)?,
                due_at: row.due_at.map(PrimitiveDateTime::assume_utc),
                // Only an open task's reminder is armed.
                open: true,
                version: row.version,
            })
        })
        .collect()
}

/// Fires up to `limit` reminders due at `now` in one transaction (see [`fire_reminders`]); how
/// many were claimed.
///
/// # Errors
///
/// What the database answers; nothing fired then.
pub async fn fire_due(pool: &MySqlPool, now: OffsetDateTime, limit: u32, settings: IngestSettings) -> Result<usize> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let claimed = fire_reminders(&mut MySqlIngest::new(&mut tx), now, limit, settings).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn assignee_lists_round_trip_and_a_torn_one_is_an_error() {
        let ids = [Uuid::from_u128(1), Uuid::from_u128(u128::MAX)];

        assert_eq!(decode(&encode(&ids)).unwrap(), ids);
        assert!(decode(&[0; 17]).is_err());
    }
}
