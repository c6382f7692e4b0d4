//! How the task service's rows look in MySQL and become domain values again: the row types (filled
//! by the checked statements' `query_as!` and by the list builders' `build_query_as`), and the
//! packed forms the task row keeps its assignees and labels in. A stored value this service could
//! not have written is reported as corrupt, never trusted.

use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::app::{AppError, Result};
use crate::domain::{
    Assignees, Attachment, Comment, CommentBody, ContentType, Description, Estimate, Filename, Labels, NewTask,
    Position, Priority, Schedule, Status, Task, Title,
};

/// A position as stored; one this service could not have written is an internal error.
pub(super) fn stored_position(raw: &str) -> Result<Position> {
    Position::parse(raw).ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored position {raw:?}")))
}

/// A task as read. Its times come as microseconds since the epoch
/// (`TIMESTAMPDIFF(MICROSECOND, '1970-01-01', …)`), not as `DATETIME`s: sqlx-mysql 0.9.1 formats
/// an error message for every `DATETIME` value of a binary row it decodes, whether or not it
/// fails (an `ok_or` where `ok_or_else` was meant, `protocol/statement/row.rs`), which was a fifth
/// of the task service's CPU on a list of 50 tasks.
#[derive(sqlx::FromRow)]
pub(super) struct TaskRow {
    pub(super) id: Uuid,
    pub(super) project_id: Uuid,
    pub(super) number: i64,
    pub(super) project_key: String,
    pub(super) title: String,
    pub(super) description: Option<String>,
    pub(super) status: String,
    pub(super) priority: u8,
    pub(super) due_at: Option<i64>,
    pub(super) start_at: Option<i64>,
    pub(super) estimate_minutes: Option<i32>,
    pub(super) parent_id: Option<Uuid>,
    pub(super) reporter_id: Uuid,
    pub(super) position: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) completed_at: Option<i64>,
    pub(super) version: i64,
    /// The assignees' ids, 16 bytes each.
    pub(super) assignee_ids: Vec<u8>,
    /// A JSON array of the labels.
    pub(super) labels: String,
}

/// How the task row carries its assignees: their ids' bytes, one after the other.
pub(super) fn packed_assignees(assignees: &Assignees) -> Vec<u8> {
    assignees.as_slice().iter().flat_map(|id| *id.as_bytes()).collect()
}

/// How the task row carries its labels: a JSON array of strings.
pub(super) fn packed_labels(labels: &Labels) -> Result<String, sqlx::Error> {
    serde_json::to_string(labels.as_slice()).map_err(|e| sqlx::Error::Encode(e.into()))
}

fn corrupt(what: &str, id: Uuid) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored task {id} has an invalid {what}").into())
}

/// A stored time, read as microseconds since the epoch.
fn time_of(micros: i64, what: &str, id: Uuid) -> Result<time::OffsetDateTime, sqlx::Error> {
    ordo_page::from_micros(micros).ok_or_else(|| corrupt(what, id))
}

impl TaskRow {
    pub(super) fn into_task(self) -> Result<Task, sqlx::Error> {
        let id = self.id;
        let (chunks, rest) = self.assignee_ids.as_chunks::<16>();
        if !rest.is_empty() {
            return Err(corrupt("assignee list", id));
        }
        let assignees = chunks.iter().map(|bytes| Uuid::from_bytes(*bytes)).collect();
        let labels: Vec<String> = serde_json::from_str(&self.labels).map_err(|_| corrupt("label list", id))?;
        let new = NewTask {
            title: Title::from_stored(&self.title).map_err(|_| corrupt("title", id))?,
            description: match self.description {
                Some(text) => Description::from_stored(&text).map_err(|_| corrupt("description", id))?,
                None => None,
            },
            status: Status::Todo,
            priority: Priority::from_rank(self.priority).ok_or_else(|| corrupt("priority", id))?,
            assignees: Assignees::from_stored(assignees),
            labels: Labels::from_stored(&labels).map_err(|_| corrupt("labels", id))?,
            schedule: Schedule::new(
                self.start_at.map(|t| time_of(t, "start_at", id)).transpose()?,
                self.due_at.map(|t| time_of(t, "due_at", id)).transpose()?,
            )
            .map_err(|_| corrupt("schedule", id))?,
            estimate: self.estimate_minutes.map(Estimate::new).transpose().map_err(|_| corrupt("estimate", id))?,
            parent_id: self.parent_id,
        };
        let status = Status::parse(&self.status).ok_or_else(|| corrupt("status", id))?;
        let position = Position::parse(&self.position).ok_or_else(|| corrupt("position", id))?;
        let mut task = Task::create(
            id,
            self.project_id,
            self.project_key,
            self.number,
            new,
            self.reporter_id,
            position,
            time_of(self.created_at, "created_at", id)?,
        );
        task.updated_at = time_of(self.updated_at, "updated_at", id)?;
        task.version = self.version;
        let completed_at = self.completed_at.map(|t| time_of(t, "completed_at", id)).transpose()?;
        Ok(task.restore(status, completed_at))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttachmentRow {
    pub(super) id: Uuid,
    pub(super) task_id: Uuid,
    pub(super) project_id: Uuid,
    pub(super) filename: String,
    pub(super) content_type: String,
    pub(super) size_bytes: u64,
    pub(super) sha256: String,
    pub(super) uploaded_by: Uuid,
    pub(super) created_at: PrimitiveDateTime,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = AppError;

    fn try_from(row: AttachmentRow) -> Result<Self> {
        let corrupt =
            |what: &str| AppError::Internal(anyhow::anyhow!("stored attachment {} has an invalid {what}", row.id));
        Ok(Attachment {
            id: row.id,
            task_id: row.task_id,
            project_id: row.project_id,
            filename: Filename::parse(&row.filename).map_err(|_| corrupt("filename"))?,
            content_type: ContentType::parse(&row.content_type).map_err(|_| corrupt("content type"))?,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            uploaded_by: row.uploaded_by,
            created_at: row.created_at.assume_utc(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CommentRow {
    pub(super) id: Uuid,
    pub(super) task_id: Uuid,
    pub(super) project_id: Uuid,
    pub(super) author_id: Uuid,
    pub(super) body: String,
    pub(super) created_at: PrimitiveDateTime,
    pub(super) updated_at: PrimitiveDateTime,
    pub(super) version: i64,
}

impl TryFrom<CommentRow> for Comment {
    type Error = AppError;

    fn try_from(row: CommentRow) -> Result<Self> {
        Ok(Comment {
            id: row.id,
            task_id: row.task_id,
            project_id: row.project_id,
            author_id: row.author_id,
            body: CommentBody::from_stored(&row.body)
                .map_err(|_| AppError::Internal(anyhow::anyhow!("stored comment {} has an invalid body", row.id)))?,
            created_at: row.created_at.assume_utc(),
            updated_at: row.updated_at.assume_utc(),
            version: row.version,
        })
    }
}

/// The tasks of `rows`, in the rows' order.
pub(super) fn tasks_of(rows: Vec<TaskRow>) -> Result<Vec<Task>, sqlx::Error> {
    rows.into_iter().map(TaskRow::into_task).collect()
}
