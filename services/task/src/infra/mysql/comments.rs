//! The comment rows: one comment, a task's comments oldest first (or those of a page of tasks, for
//! an export), and the writes of adding, editing and deleting one.

use ordo_platform::db::utc_datetime as utc;
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db;
use super::list_query::{OfTask, oldest_first_of_task};
use super::rows::CommentRow;
use crate::app::{AppError, Result};
use crate::domain::Comment;

/// One comment.
pub(super) async fn comment(pool: &MySqlPool, id: Uuid) -> Result<Option<Comment>> {
    let row = sqlx::query_as!(
        CommentRow,
        "SELECT id, task_id, project_id, author_id, body, created_at, updated_at, version FROM comment WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.map(Comment::try_from).transpose()
}

/// A page of a task's comments, oldest first, after (created_at, id).
pub(super) async fn list(
    pool: &MySqlPool,
    task_id: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: u32,
) -> Result<Vec<Comment>> {
    let mut sql = oldest_first_of_task(OfTask::Comments, task_id, after, limit);
    let rows: Vec<CommentRow> = sql.build_query_as().fetch_all(pool).await.map_err(db)?;
    rows.into_iter().map(Comment::try_from).collect()
}

/// The comments of `task_ids`, each task's oldest first.
pub(super) async fn of_tasks(pool: &MySqlPool, task_ids: &[Uuid]) -> Result<Vec<Comment>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (table, columns) = OfTask::Comments.table_and_columns();
    let mut sql = sqlx::QueryBuilder::<sqlx::MySql>::new(format!("SELECT {columns} FROM {table} WHERE task_id IN ("));
    let mut ids = sql.separated(", ");
    for id in task_ids {
        ids.push_bind(*id);
    }
    sql.push(") ORDER BY task_id, created_at, id");
    let rows: Vec<CommentRow> = sql.build_query_as().fetch_all(pool).await.map_err(db)?;
    rows.into_iter().map(Comment::try_from).collect()
}

/// Writes a new comment.
pub(super) async fn insert(conn: &mut MySqlConnection, comment: &Comment) -> Result<()> {
    sqlx::query!(
        "INSERT INTO comment (id, task_id, project_id, author_id, body, created_at, updated_at, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        comment.id,
        comment.task_id,
        comment.project_id,
        comment.author_id,
        comment.body.as_str(),
        utc(comment.created_at),
        utc(comment.updated_at),
        comment.version
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// One comment, locked for update.
pub(super) async fn for_update(conn: &mut MySqlConnection, id: Uuid) -> Result<Option<Comment>> {
    let row = sqlx::query_as!(
        CommentRow,
        "SELECT id, task_id, project_id, author_id, body, created_at, updated_at, version FROM comment \
         WHERE id = ? FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(Comment::try_from).transpose()
}

/// Writes an edited comment whose stored version is `previous_version`; `VersionMismatch` when it
/// is not.
pub(super) async fn update(conn: &mut MySqlConnection, comment: &Comment, previous_version: i64) -> Result<()> {
    let result = sqlx::query!(
        "UPDATE comment SET body = ?, updated_at = ?, version = ? WHERE id = ? AND version = ?",
        comment.body.as_str(),
        utc(comment.updated_at),
        comment.version,
        comment.id,
        previous_version
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if result.rows_affected() == 1 { Ok(()) } else { Err(AppError::changed()) }
}

/// Deletes a comment.
pub(super) async fn delete(conn: &mut MySqlConnection, id: Uuid) -> Result<()> {
    sqlx::query!("DELETE FROM comment WHERE id = ?", id).execute(&mut *conn).await.map_err(db)?;
    Ok(())
}
