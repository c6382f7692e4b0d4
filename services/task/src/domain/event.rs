//! The events the task service announces. Each becomes one `ordo.events.v1.Envelope` on the outbox,
//! carrying the task as it stands after the change.

use uuid::Uuid;

use super::{Attachment, Comment, Status, Task};

/// Why a user stopped being an assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unassignment {
    /// Someone edited the task.
    Edit,
    /// The user left (or was removed from) the project.
    RemovedFromProject,
}

/// Something that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// `task.created`
    Created { task: Task, recipients: Vec<Uuid> },
    /// `task.updated`; `changed` names the fields that changed.
    Updated { task: Task, changed: Vec<&'static str>, recipients: Vec<Uuid> },
    /// `task.status_changed`
    StatusChanged { task: Task, old: Status, recipients: Vec<Uuid> },
    /// `task.assigned`
    Assigned { task: Task, assignee: Uuid },
    /// `task.unassigned`
    Unassigned { task: Task, assignee: Uuid, why: Unassignment },
    /// `task.deleted`, with the subtasks that went with it.
    Deleted { task: Task, subtask_ids: Vec<Uuid>, recipients: Vec<Uuid> },
    /// `task.comment_added`
    CommentAdded { task: Task, comment: Comment, recipients: Vec<Uuid> },
    /// `task.attachment_added`
    AttachmentAdded { task: Task, attachment: Attachment, recipients: Vec<Uuid> },
    /// `task.comment_updated`, with the comment as edited.
    CommentUpdated { task: Task, comment: Comment, recipients: Vec<Uuid> },
    /// `task.comment_deleted`, with the comment as it was; the actor may be its author or an admin.
    CommentDeleted { task: Task, comment: Comment, recipients: Vec<Uuid> },
    /// `task.attachment_deleted`, with the attachment as it was.
    AttachmentDeleted { task: Task, attachment: Attachment, recipients: Vec<Uuid> },
    /// `task.watched`
    Watched { task: Task, user: Uuid },
    /// `task.unwatched`
    Unwatched { task: Task, user: Uuid },
}

impl TaskEvent {
    /// The routing key, `task.<event>`.
    pub fn event_type(&self) -> &'static str {
        match self {
            TaskEvent::Created { .. } => "task.created",
            TaskEvent::Updated { .. } => "task.updated",
            TaskEvent::StatusChanged { .. } => "task.status_changed",
            TaskEvent::Assigned { .. } => "task.assigned",
            TaskEvent::Unassigned { .. } => "task.unassigned",
            TaskEvent::Deleted { .. } => "task.deleted",
            TaskEvent::CommentAdded { .. } => "task.comment_added",
            TaskEvent::AttachmentAdded { .. } => "task.attachment_added",
            TaskEvent::CommentUpdated { .. } => "task.comment_updated",
            TaskEvent::CommentDeleted { .. } => "task.comment_deleted",
            TaskEvent::AttachmentDeleted { .. } => "task.attachment_deleted",
            TaskEvent::Watched { .. } => "task.watched",
            TaskEvent::Unwatched { .. } => "task.unwatched",
        }
    }

    /// The task the event is about.
    pub fn task(&self) -> &Task {
        match self {
            TaskEvent::Created { task, .. }
            | TaskEvent::Updated { task, .. }
            | TaskEvent::StatusChanged { task, .. }
            | TaskEvent::Assigned { task, .. }
            | TaskEvent::Unassigned { task, .. }
            | TaskEvent::Deleted { task, .. }
            | TaskEvent::CommentAdded { task, .. }
            | TaskEvent::AttachmentAdded { task, .. }
            | TaskEvent::CommentUpdated { task, .. }
            | TaskEvent::CommentDeleted { task, .. }
            | TaskEvent::AttachmentDeleted { task, .. }
            | TaskEvent::Watched { task, .. }
            | TaskEvent::Unwatched { task, .. } => task,
        }
    }

    /// Whether the event changes what a list of tasks shows: comments, attachments and watchers
    /// are not in it, so their events leave cached lists as they are.
    pub fn changes_lists(&self) -> bool {
        !matches!(
            self,
            TaskEvent::CommentAdded { .. }
                | TaskEvent::CommentUpdated { .. }
                | TaskEvent::CommentDeleted { .. }
                | TaskEvent::AttachmentAdded { .. }
                | TaskEvent::AttachmentDeleted { .. }
                | TaskEvent::Watched { .. }
                | TaskEvent::Unwatched { .. }
        )
    }

    /// The aggregate the event is about: the comment or attachment for their events, else the task.
    pub fn entity(&self) -> (&'static str, Uuid) {
        match self {
            TaskEvent::CommentAdded { comment, .. }
            | TaskEvent::CommentUpdated { comment, .. }
            | TaskEvent::CommentDeleted { comment, .. } => ("comment", comment.id),
            TaskEvent::AttachmentAdded { attachment, .. } | TaskEvent::AttachmentDeleted { attachment, .. } => {
                ("attachment", attachment.id)
            }
            other => ("task", other.task().id),
        }
    }
}
