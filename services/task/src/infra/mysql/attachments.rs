//! The attachment rows: one attachment, a task's attachments oldest first, and the writes of
//! recording and deleting one, which cancel or schedule its object's deletion in the same
//! transaction.

use ordo_platform::db::utc_datetime as utc;
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db;
use super::list_query::{OfTask, oldest_first_of_task};
use super::rows::AttachmentRow;
use crate::app::Result;
use crate::domain::Attachment;

/// One attachment.
pub(super) async fn attachment(pool: &MySqlPool, id: Uuid) -> Result<Option<Attachment>> {
    let row = sqlx::query_as!(
        AttachmentRow,
        "SELECT id, task_id, project_id, filename, content_type, size_bytes, sha256, uploaded_by, created_at \
         FROM attachment WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.map(Attachment::try_from).transpose()
}

/// A page of a task's attachments, oldest first, after (created_at, id).
pub(super) async fn list(
    pool: &MySqlPool,
    task_id: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: u32,
) -> Result<Vec<Attachment>> {
    let mut sql = oldest_first_of_task(OfTask::Attachments, task_id, after, limit);
    let rows: Vec<AttachmentRow> = sql.build_query_as().fetch_all(pool).await.map_err(db)?;
    rows.into_iter().map(Attachment::try_from).collect()
}

/// Records an attachment whose object is stored.
pub(super) async fn insert(conn: &mut MySqlConnection, attachment: &Attachment) -> Result<()> {
    let key = attachment.key();
    sqlx::query!(
        "INSERT INTO attachment (id, task_id, project_id, filename, content_type, size_bytes, sha256, \
         uploaded_by, created_at, object_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attachment.id,
        attachment.task_id,
        attachment.project_id,
        attachment.filename.as_str(),
        attachment.content_type.as_str(),
        attachment.size_bytes,
        &attachment.sha256,
        attachment.uploaded_by,
        utc(attachment.created_at),
        &key
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    // The object is an attachment's now: its upload guard goes.
    sqlx::query!("DELETE FROM object_deletion WHERE object_key = ?", &key).execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

/// One attachment, locked for update.
pub(super) async fn for_update(conn: &mut MySqlConnection, id: Uuid) -> Result<Option<Attachment>> {
    let row = sqlx::query_as!(
        AttachmentRow,
        "SELECT id, task_id, project_id, filename, content_type, size_bytes, sha256, uploaded_by, created_at \
         FROM attachment WHERE id = ? FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(Attachment::try_from).transpose()
}

/// Deletes an attachment and schedules its object's deletion, due now.
pub(super) async fn delete(conn: &mut MySqlConnection, attachment: &Attachment) -> Result<()> {
    sqlx::query!(
        "INSERT INTO object_deletion (object_key, due_at) SELECT object_key, UTC_TIMESTAMP(6) FROM attachment \
         WHERE id = ? ON DUPLICATE KEY UPDATE due_at = VALUES(due_at)",
        attachment.id
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query!("DELETE FROM attachment WHERE id = ?", attachment.id).execute(&mut *conn).await.map_err(db)?;
    Ok(())
}
