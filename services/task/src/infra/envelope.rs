//! Translates the task service's domain events into `ordo.events.v1.Envelope`s.

use ordo_events::EnvelopeBuilder;
use ordo_proto::events::v1::{self as pb, envelope::Payload};
use ordo_proto::time::timestamp;
use uuid::Uuid;

use crate::app::ClientInfo;
use crate::domain::{Job, JobState, Task, TaskEvent, Unassignment};

/// The producer name carried in every envelope.
const PRODUCER: &str = "task";

fn ids(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// The task as it stands after the change.
pub(crate) fn snapshot(task: &Task) -> pb::TaskSnapshot {
    pb::TaskSnapshot {
        task_id: task.id.to_string(),
        project_id: task.project_id.to_string(),
        key: task.key(),
        title: task.title.as_str().to_owned(),
        status: task.status().as_str().to_owned(),
        priority: task.priority.as_str().to_owned(),
        assignee_ids: ids(task.assignees.as_slice()),
        reporter_id: task.reporter_id.to_string(),
        due_at: task.schedule.due_at().map(timestamp),
        version: task.version,
    }
}

/// Builds the envelope of `event`, caused by `actor` (a user id; `None` for the system) from
/// `client`, in the current trace.
pub(crate) fn envelope(event: &TaskEvent, actor: Option<String>, client: &ClientInfo) -> pb::Envelope {
    let (entity_type, entity_id) = event.entity();
    let mut builder = EnvelopeBuilder::new(PRODUCER, event.event_type())
        .client(client.ip.clone(), client.user_agent.clone())
        .entity(entity_type, entity_id.to_string())
        .project(event.task().project_id.to_string())
        .payload(payload(event));
    if let Some(actor) = actor.filter(|a| !a.is_empty()) {
        builder = builder.actor(actor);
    }
    builder.build()
}

/// The envelope that announces the end of `job` in `state`, with `rows` done and, for a failure,
/// its reason: an act of the service, not of a user.
pub(crate) fn job_ended(job: &Job, state: JobState, rows: u64, error: &str) -> pb::Envelope {
    EnvelopeBuilder::new(PRODUCER, "job.ended")
        .entity("job", job.id.to_string())
        .project(job.project_id.to_string())
        .payload(Payload::JobEnded(pb::JobEnded {
            job_id: job.id.to_string(),
            project_id: job.project_id.to_string(),
            requester_id: job.requester_id.to_string(),
            kind: job.kind.as_str().to_owned(),
            state: state.as_str().to_owned(),
            rows,
            error: error.to_owned(),
        }))
        .build()
}

/// The envelope that tells how far `job` got: `rows_done` of `rows_total`.
pub(crate) fn job_progressed(job: &Job, rows_done: u64, rows_total: Option<u64>) -> pb::Envelope {
    EnvelopeBuilder::new(PRODUCER, "job.progressed")
        .entity("job", job.id.to_string())
        .project(job.project_id.to_string())
        .payload(Payload::JobProgressed(pb::JobProgressed {
            job_id: job.id.to_string(),
            project_id: job.project_id.to_string(),
            requester_id: job.requester_id.to_string(),
            kind: job.kind.as_str().to_owned(),
            rows_done,
            rows_total,
        }))
        .build()
}

fn payload(event: &TaskEvent) -> Payload {
    match event {
        TaskEvent::Created { task, recipients } => Payload::TaskCreated(pb::TaskCreated {
            task: Some(snapshot(task)),
            labels: task.labels.as_slice().to_vec(),
            parent_id: task.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            recipient_ids: ids(recipients),
        }),
        TaskEvent::Updated { task, changed, recipients } => Payload::TaskUpdated(pb::TaskUpdated {
            task: Some(snapshot(task)),
            changed_fields: changed.iter().map(|f| (*f).to_owned()).collect(),
            recipient_ids: ids(recipients),
        }),
        TaskEvent::StatusChanged { task, old, recipients } => Payload::TaskStatusChanged(pb::TaskStatusChanged {
            task: Some(snapshot(task)),
            old_status: old.as_str().to_owned(),
            new_status: task.status().as_str().to_owned(),
            recipient_ids: ids(recipients),
        }),
        TaskEvent::Assigned { task, assignee } => {
            Payload::TaskAssigned(pb::TaskAssigned { task: Some(snapshot(task)), assignee_id: assignee.to_string() })
        }
        TaskEvent::Unassigned { task, assignee, why } => Payload::TaskUnassigned(pb::TaskUnassigned {
            task: Some(snapshot(task)),
            assignee_id: assignee.to_string(),
            reason: match why {
                Unassignment::Edit => String::new(),
                Unassignment::RemovedFromProject => "removed_from_project".to_owned(),
            },
        }),
        TaskEvent::Deleted { task, subtask_ids, recipients } => Payload::TaskDeleted(pb::TaskDeleted {
            task: Some(snapshot(task)),
            subtask_ids: ids(subtask_ids),
            recipient_ids: ids(recipients),
        }),
        TaskEvent::CommentAdded { task, comment, recipients } => Payload::TaskCommentAdded(pb::TaskCommentAdded {
            task: Some(snapshot(task)),
            comment_id: comment.id.to_string(),
            author_id: comment.author_id.to_string(),
            excerpt: comment.body.excerpt(),
            recipient_ids: ids(recipients),
        }),
        TaskEvent::AttachmentAdded { task, attachment, recipients } => {
            Payload::TaskAttachmentAdded(pb::TaskAttachmentAdded {
                task: Some(snapshot(task)),
                attachment_id: attachment.id.to_string(),
                filename: attachment.filename.as_str().to_owned(),
                content_type: attachment.content_type.as_str().to_owned(),
                size_bytes: i64::try_from(attachment.size_bytes).unwrap_or(i64::MAX),
                sha256: attachment.sha256.clone(),
                recipient_ids: ids(recipients),
            })
        }
        TaskEvent::CommentUpdated { task, comment, recipients } => {
            Payload::TaskCommentUpdated(pb::TaskCommentUpdated {
                task: Some(snapshot(task)),
                comment_id: comment.id.to_string(),
                author_id: comment.author_id.to_string(),
                excerpt: comment.body.excerpt(),
                comment_version: comment.version,
                recipient_ids: ids(recipients),
            })
        }
        TaskEvent::CommentDeleted { task, comment, recipients } => {
            Payload::TaskCommentDeleted(pb::TaskCommentDeleted {
                task: Some(snapshot(task)),
                comment_id: comment.id.to_string(),
                author_id: comment.author_id.to_string(),
                recipient_ids: ids(recipients),
            })
        }
        TaskEvent::AttachmentDeleted { task, attachment, recipients } => {
            Payload::TaskAttachmentDeleted(pb::TaskAttachmentDeleted {
                task: Some(snapshot(task)),
                attachment_id: attachment.id.to_string(),
                filename: attachment.filename.as_str().to_owned(),
                content_type: attachment.content_type.as_str().to_owned(),
                size_bytes: i64::try_from(attachment.size_bytes).unwrap_or(i64::MAX),
                sha256: attachment.sha256.clone(),
                uploaded_by: attachment.uploaded_by.to_string(),
                recipient_ids: ids(recipients),
            })
        }
        TaskEvent::Watched { task, user } => {
            Payload::TaskWatched(pb::TaskWatched { task: Some(snapshot(task)), user_id: user.to_string() })
        }
        TaskEvent::Unwatched { task, user } => {
            Payload::TaskUnwatched(pb::TaskUnwatched { task: Some(snapshot(task)), user_id: user.to_string() })
        }
    }
}
