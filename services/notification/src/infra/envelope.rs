//! Reads an `ordo.events.v1.Envelope` as the use cases take it: the directory facts it carries and
//! the event that may notify someone, from the envelope's own snapshot.

use ordo_events::{HandlerError, occurred_at, uuid_field};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{Envelope, TaskSnapshot};
use uuid::Uuid;

use crate::app::{Delivery, Fact};
use crate::domain::reminder::{MAX_ASSIGNEES, TaskDue, is_open};
use crate::domain::{Event, JobRef, ProjectRef, TaskRef};

/// The routing keys the notification service consumes: the identity events its directory keeps,
/// and every event of projects and tasks (some notify people; any may go to a project's webhooks).
pub const BINDINGS: &[&str] =
    &["identity.user_registered", "identity.user_disabled", "project.#", "task.#", "job.ended"];

/// What `envelope` tells and may notify of.
///
/// # Errors
///
/// [`HandlerError::Permanent`] for an envelope that can never apply (a malformed id, no time, a
/// task event without its task).
pub fn delivery(envelope: &Envelope) -> Result<Delivery, HandlerError> {
    let event_id = uuid_field("event_id", &envelope.event_id)?;
    let actor = if envelope.actor_id.is_empty() { None } else { Some(uuid_field("actor_id", &envelope.actor_id)?) };
    let mut facts = Vec::new();
    let mut deleted_tasks = Vec::new();
    let event = match &envelope.payload {
        Some(Payload::UserRegistered(e)) => {
            let user_id = uuid_field("user_id", &e.user_id)?;
            facts.push(Fact::User { user_id, email: e.email.clone(), display_name: e.display_name.clone() });
            None
        }
        Some(Payload::UserDisabled(e)) => {
            facts.push(Fact::UserDisabled { user_id: uuid_field("user_id", &e.user_id)?, disabled: e.disabled });
            None
        }
        Some(Payload::ProjectCreated(e)) => {
            // The creator is its first owner; no member_added event says so.
            let project_id = uuid_field("project_id", &e.project_id)?;
            let user_id = uuid_field("created_by", &e.created_by)?;
            facts.push(Fact::Member { project_id, user_id, member: true, manages: true });
            None
        }
        Some(Payload::ProjectDeleted(e)) => {
            facts.push(Fact::ProjectGone { project_id: uuid_field("project_id", &e.project_id)? });
            None
        }
        Some(Payload::ProjectMemberAdded(e)) => {
            let project = ProjectRef {
                id: uuid_field("project_id", &e.project_id)?,
                key: e.project_key.clone(),
                name: e.project_name.clone(),
            };
            let user_id = uuid_field("user_id", &e.user_id)?;
            facts.push(Fact::Member { project_id: project.id, user_id, member: true, manages: manages(&e.role) });
            Some(Event::MemberAdded { project, user_id, role: e.role.clone() })
        }
        Some(Payload::ProjectMemberRoleChanged(e)) => {
            let project = ProjectRef {
                id: uuid_field("project_id", &e.project_id)?,
                key: e.project_key.clone(),
                name: e.project_name.clone(),
            };
            let user_id = uuid_field("user_id", &e.user_id)?;
            facts.push(Fact::Member { project_id: project.id, user_id, member: true, manages: manages(&e.new_role) });
            Some(Event::MemberRoleChanged {
                project,
                user_id,
                old_role: e.old_role.clone(),
                new_role: e.new_role.clone(),
            })
        }
        Some(Payload::ProjectMemberRemoved(e)) => {
            let project_id = uuid_field("project_id", &e.project_id)?;
            let user_id = uuid_field("user_id", &e.user_id)?;
            facts.push(Fact::Member { project_id, user_id, member: false, manages: false });
            None
        }
        Some(Payload::TaskAssigned(e)) => Some(Event::TaskAssigned {
            task: task(e.task.as_ref())?,
            assignee: uuid_field("assignee_id", &e.assignee_id)?,
        }),
        Some(Payload::TaskUnassigned(e)) => Some(Event::TaskUnassigned {
            task: task(e.task.as_ref())?,
            assignee: uuid_field("assignee_id", &e.assignee_id)?,
            left_project: e.reason == "removed_from_project",
        }),
        Some(Payload::TaskStatusChanged(e)) => Some(Event::TaskStatusChanged {
            task: task(e.task.as_ref())?,
            old_status: e.old_status.clone(),
            new_status: e.new_status.clone(),
            recipients: ids("recipient_ids", &e.recipient_ids)?,
        }),
        Some(Payload::TaskUpdated(e)) => Some(Event::TaskUpdated {
            task: task(e.task.as_ref())?,
            changed_fields: e.changed_fields.clone(),
            recipients: ids("recipient_ids", &e.recipient_ids)?,
        }),
        Some(Payload::TaskCommentAdded(e)) => Some(Event::TaskCommented {
            task: task(e.task.as_ref())?,
            excerpt: e.excerpt.clone(),
            recipients: ids("recipient_ids", &e.recipient_ids)?,
        }),
        Some(Payload::TaskDeleted(e)) => {
            deleted_tasks.push(task(e.task.as_ref())?.id);
            deleted_tasks.extend(ids("subtask_ids", &e.subtask_ids)?);
            None
        }
        Some(Payload::JobEnded(e)) => Some(Event::JobEnded {
            job: JobRef {
                id: uuid_field("job_id", &e.job_id)?,
                project_id: uuid_field("project_id", &e.project_id)?,
                kind: e.kind.clone(),
                state: e.state.clone(),
                rows: e.rows,
                error: e.error.clone(),
            },
            requester: uuid_field("requester_id", &e.requester_id)?,
        }),
        // Bound to nothing else; another event here is ignored, not an error.
        _ => None,
    };
    let snapshot = match &envelope.payload {
        Some(Payload::TaskCreated(e)) => e.task.as_ref(),
        Some(Payload::TaskUpdated(e)) => e.task.as_ref(),
        Some(Payload::TaskStatusChanged(e)) => e.task.as_ref(),
        Some(Payload::TaskAssigned(e)) => e.task.as_ref(),
        Some(Payload::TaskUnassigned(e)) => e.task.as_ref(),
        Some(Payload::TaskCommentAdded(e)) => e.task.as_ref(),
        _ => None,
    };
    let task = snapshot.map(task_due).transpose()?;
    Ok(Delivery { event_id, actor, occurred_at: occurred_at(envelope)?, facts, event, task, deleted_tasks })
}

/// Whether a member with `role` manages the project (owners and admins manage its webhooks).
fn manages(role: &str) -> bool {
    matches!(role, "owner" | "admin")
}

/// The task of `snapshot` as reminders read it.
fn task_due(snapshot: &TaskSnapshot) -> Result<TaskDue, HandlerError> {
    let due_at = snapshot
        .due_at
        .as_ref()
        .map(|at| {
            // Kept to the microsecond, as stored: a due date compares equal to itself read back.
            ordo_proto::time::offset_date_time(at)
                .and_then(|t| t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).ok())
                .ok_or_else(|| HandlerError::permanent("task.due_at out of range"))
        })
        .transpose()?;
    let assignees = ids("task.assignee_ids", &snapshot.assignee_ids)?;
    if assignees.len() > MAX_ASSIGNEES {
        return Err(HandlerError::permanent(format!("more than {MAX_ASSIGNEES} assignees")));
    }
    Ok(TaskDue {
        task: task(Some(snapshot))?,
        assignees,
        due_at,
        open: is_open(&snapshot.status),
        version: snapshot.version,
    })
}

fn task(snapshot: Option<&TaskSnapshot>) -> Result<TaskRef, HandlerError> {
    let snapshot = snapshot.ok_or_else(|| HandlerError::permanent("a task event without its task"))?;
    Ok(TaskRef {
        id: uuid_field("task.task_id", &snapshot.task_id)?,
        project_id: uuid_field("task.project_id", &snapshot.project_id)?,
        key: snapshot.key.clone(),
        title: snapshot.title.clone(),
    })
}

fn ids(field: &str, values: &[String]) -> Result<Vec<Uuid>, HandlerError> {
    values.iter().map(|value| uuid_field(field, value)).collect()
}
