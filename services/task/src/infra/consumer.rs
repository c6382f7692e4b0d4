//! What the task service does with the project service's events: a deleted project's tasks go with
//! it (its jobs that have not ended fail first), and a user who leaves a project stops being assigned
//! to (and watching) its tasks.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_events::{EventHandler, HandlerError, OutboxSignal};
use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use sqlx::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::mysql;
use crate::app::ports::PageCache;
use crate::app::{AppError, ClientInfo};
use crate::domain::{TaskEvent, Unassignment};

/// The routing keys the task service consumes.
pub const BINDINGS: &[&str] = &["project.deleted", "project.member_removed"];

/// Applies `project.deleted` and `project.member_removed` inside the consumer's transaction; the
/// `task.unassigned` events it causes go to the outbox in that same transaction.
#[derive(Clone)]
pub struct ProjectEventHandler {
    signal: OutboxSignal,
    pages: Option<Arc<dyn PageCache>>,
}

impl std::fmt::Debug for ProjectEventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectEventHandler").finish_non_exhaustive()
    }
}

impl ProjectEventHandler {
    /// A handler that wakes the relay through `signal` when it wrote events.
    pub fn new(signal: OutboxSignal) -> Self {
        Self { signal, pages: None }
    }

    /// Makes the project's cached task lists stale when it unassigns a removed member.
    pub fn with_page_cache(mut self, pages: Arc<dyn PageCache>) -> Self {
        self.pages = Some(pages);
        self
    }
}

fn uuid(raw: &str, field: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(raw).map_err(|_| HandlerError::Permanent(format!("{field} {raw:?} is not a UUID")))
}

/// A failed write of the handler: worth another attempt (the consumer dead-letters the message
/// after its last one).
fn handler_error(error: AppError) -> HandlerError {
    HandlerError::retryable(error)
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

#[async_trait]
impl EventHandler for ProjectEventHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        match &envelope.payload {
            Some(Payload::ProjectDeleted(event)) => {
                let project_id = uuid(&event.project_id, "project_id")?;
                // Its jobs end first, so an import writing meanwhile adds no task after the rest go.
                let failed = mysql::fail_jobs_of_project(conn, project_id, "its project was deleted", now())
                    .await
                    .map_err(handler_error)?;
                // Assignees, labels, watchers, comments and attachments go by the foreign keys'
                // cascades; the attachments' objects are scheduled for the sweeper first.
                sqlx::query!(
                    "INSERT INTO object_deletion (object_key, due_at) SELECT object_key, UTC_TIMESTAMP(6) \
                     FROM attachment WHERE project_id = ? ON DUPLICATE KEY UPDATE due_at = VALUES(due_at)",
                    project_id
                )
                .execute(&mut *conn)
                .await?;
                let deleted =
                    sqlx::query!("DELETE FROM task WHERE project_id = ?", project_id).execute(&mut *conn).await?;
                sqlx::query!("DELETE FROM task_counter WHERE project_id = ?", project_id).execute(&mut *conn).await?;
                tracing::info!(%project_id, tasks = deleted.rows_affected(), failed, "deleted project's tasks removed");
                Ok(())
            }
            Some(Payload::ProjectMemberRemoved(event)) => {
                let project_id = uuid(&event.project_id, "project_id")?;
                let user_id = uuid(&event.user_id, "user_id")?;
                let task_ids: Vec<Uuid> = sqlx::query_scalar!(
                    "SELECT task_id FROM task_assignee WHERE project_id = ? AND user_id = ? ORDER BY task_id",
                    project_id,
                    user_id
                )
                .fetch_all(&mut *conn)
                .await?;
                let client = ClientInfo { ip: envelope.ip.clone(), user_agent: envelope.user_agent.clone() };
                let mut unassigned = 0;
                for task_id in task_ids {
                    let Some(mut task) = mysql::fetch_task(conn, task_id, true).await? else { continue };
                    if !task.assignees.contains(user_id) {
                        continue;
                    }
                    let previous = task.version;
                    task.assignees = task.assignees.without(user_id);
                    task.touch(now());
                    if !mysql::update_task_row(conn, &task, previous, &["assignee_ids"]).await? {
                        return Err(HandlerError::retryable("the task changed while it was being unassigned"));
                    }
                    let event =
                        TaskEvent::Unassigned { task, assignee: user_id, why: Unassignment::RemovedFromProject };
                    mysql::record(conn, &event, Some(envelope.actor_id.clone()), &client)
                        .await
                        .map_err(handler_error)?;
                    unassigned += 1;
                }
                sqlx::query!("DELETE FROM task_watcher WHERE project_id = ? AND user_id = ?", project_id, user_id)
                    .execute(&mut *conn)
                    .await?;
                tracing::info!(%project_id, %user_id, unassigned, "removed member unassigned");
                Ok(())
            }
            _ => {
                // Bound to nothing else; an event of another type here is ignored, not an error.
                tracing::debug!(r#type = %envelope.r#type, "ignoring an event this service does not use");
                Ok(())
            }
        }
    }

    fn committed(&self, envelope: &Envelope) {
        if matches!(envelope.payload, Some(Payload::ProjectDeleted(_))) {
            // The relay polls anyway: this brings the ends of the project's jobs out at once.
            self.signal.notify();
            return;
        }
        let Some(Payload::ProjectMemberRemoved(event)) = &envelope.payload else { return };
        let Ok(project_id) = Uuid::parse_str(&event.project_id) else { return };
        // The relay polls anyway: this brings the unassignments' events out at once. The project's
        // cached lists go stale only now, after the commit, so no reader caches the old page again.
        self.signal.notify();
        if let Some(pages) = self.pages.clone() {
            tokio::spawn(async move {
                if let Err(error) = pages.changed(project_id).await {
                    tracing::warn!(%error, %project_id, "cached task lists could not be made stale");
                }
            });
        }
    }
}
