//! What reports read: a project's tasks as they are now and their status history, in one snapshot
//! (a REPEATABLE READ transaction sees both as of its first read), each bounded before it is read.

use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db;
use crate::app::{AppError, MAX_REPORT_CHANGES, MAX_REPORT_TASKS, Result};
use crate::domain::{Status, TaskFacts, Transition};

/// The tasks of `project_id` and their status changes before `until`, oldest first.
pub(super) async fn flow_facts(
    pool: &MySqlPool,
    project_id: Uuid,
    until: OffsetDateTime,
) -> Result<(Vec<TaskFacts>, Vec<Transition>)> {
    let mut tx = pool.begin().await.map_err(db)?;
    // Times as microseconds since the epoch: see `rows::TaskRow` for why not as `DATETIME`s.
    let tasks = sqlx::query!(
        "SELECT id, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at) AS `created_at!`, status, \
         TIMESTAMPDIFF(MICROSECOND, '1970-01-01', due_at) AS due_at, assignee_ids, labels \
         FROM task WHERE project_id = ? LIMIT ?",
        project_id,
        MAX_REPORT_TASKS + 1
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if tasks.len() > MAX_REPORT_TASKS as usize {
        return Err(too_many(format!("more than {MAX_REPORT_TASKS} tasks")));
    }
    let until_micros = ordo_page::micros(until);
    let history = sqlx::query!(
        "SELECT task_id, to_status, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', changed_at) AS `changed_at!` \
         FROM task_status_change \
         WHERE project_id = ? AND changed_at < '1970-01-01' + INTERVAL ? MICROSECOND \
         ORDER BY changed_at, id LIMIT ?",
        project_id,
        until_micros,
        MAX_REPORT_CHANGES + 1
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    tx.rollback().await.map_err(db)?;
    if history.len() > MAX_REPORT_CHANGES as usize {
        return Err(too_many(format!("more than {MAX_REPORT_CHANGES} status changes")));
    }

    let corrupt = |what: &str, id: Uuid| AppError::Internal(anyhow::anyhow!("stored task {id} has an invalid {what}"));
    let time = |micros: i64, what: &str, id: Uuid| ordo_page::from_micros(micros).ok_or_else(|| corrupt(what, id));
    let facts = tasks
        .into_iter()
        .map(|row| {
            let (chunks, rest) = row.assignee_ids.as_chunks::<16>();
            if !rest.is_empty() {
                return Err(corrupt("assignee list", row.id));
            }
            Ok(TaskFacts {
                id: row.id,
                created_at: time(row.created_at, "created_at", row.id)?,
                status: Status::parse(&row.status).ok_or_else(|| corrupt("status", row.id))?,
                due_at: row.due_at.map(|t| time(t, "due_at", row.id)).transpose()?,
                assignees: chunks.iter().map(|bytes| Uuid::from_bytes(*bytes)).collect(),
                labels: serde_json::from_str(&row.labels).map_err(|_| corrupt("label list", row.id))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let transitions = history
        .into_iter()
        .map(|row| {
            Ok(Transition {
                task_id: row.task_id,
                to: Status::parse(&row.to_status).ok_or_else(|| corrupt("status change", row.task_id))?,
                at: time(row.changed_at, "status change", row.task_id)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((facts, transitions))
}

fn too_many(what: String) -> AppError {
    AppError::Conflict(format!("the project holds {what}: too many for a report on request").into())
}
