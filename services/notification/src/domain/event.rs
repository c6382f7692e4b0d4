//! The events of other contexts as the rules read them: only what deciding and rendering a
//! notification needs, taken from the event's own snapshot (never fetched from another service).

use time::OffsetDateTime;
use uuid::Uuid;

/// A task as it stood after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The task's id.
    pub id: Uuid,
    /// Its project.
    pub project_id: Uuid,
    /// `<PROJECT_KEY>-<number>`.
    pub key: String,
    /// Its title.
    pub title: String,
}

/// A project as an event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    /// The project's id.
    pub id: Uuid,
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
}

/// A member of a project as the mention rule matches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user_id: Uuid,
    /// Their display name.
    pub display_name: String,
    /// Their email address.
    pub email: String,
}

/// A background job as its end names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The job's id.
    pub id: Uuid,
    /// Its project.
    pub project_id: Uuid,
    /// `export` or `import`.
    pub kind: String,
    /// How it ended: `done`, `failed` or `cancelled`.
    pub state: String,
    /// Tasks the export wrote, or the import created.
    pub rows: u64,
    /// Why it failed.
    pub error: String,
}

/// An event that may notify someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `task.assigned`: `assignee` became an assignee.
    TaskAssigned {
        /// The task.
        task: TaskRef,
        /// The new assignee.
        assignee: Uuid,
    },
    /// `task.unassigned`: `assignee` stopped being one.
    TaskUnassigned {
        /// The task.
        task: TaskRef,
        /// The former assignee.
        assignee: Uuid,
        /// The user left the project (and hears nothing more of it).
        left_project: bool,
    },
    /// `task.status_changed`.
    TaskStatusChanged {
        /// The task.
        task: TaskRef,
        /// The status before.
        old_status: String,
        /// The status after.
        new_status: String,
        /// Watchers, assignees and the reporter.
        recipients: Vec<Uuid>,
    },
    /// `task.updated`.
    TaskUpdated {
        /// The task.
        task: TaskRef,
        /// The fields that changed (`title`, `due_at`, ...).
        changed_fields: Vec<String>,
        /// Watchers, assignees and the reporter.
        recipients: Vec<Uuid>,
    },
    /// `task.comment_added`.
    TaskCommented {
        /// The task.
        task: TaskRef,
        /// The start of the comment.
        excerpt: String,
        /// Watchers, assignees and the reporter.
        recipients: Vec<Uuid>,
    },
    /// A task assigned to its recipients is due soon (a reminder fired; no event of another
    /// context).
    TaskDueSoon {
        /// The task.
        task: TaskRef,
        /// Its assignees.
        assignees: Vec<Uuid>,
        /// When it is due.
        due_at: OffsetDateTime,
    },
    /// `project.member_added`.
    MemberAdded {
        /// The project.
        project: ProjectRef,
        /// The new member.
        user_id: Uuid,
        /// Their role.
        role: String,
    },
    /// `project.member_role_changed`.
    MemberRoleChanged {
        /// The project.
        project: ProjectRef,
        /// The member.
        user_id: Uuid,
        /// The role before.
        old_role: String,
        /// The role after.
        new_role: String,
    },
    /// `job.ended`: a background job ended.
    JobEnded {
        /// The job.
        job: JobRef,
        /// Who asked for it.
        requester: Uuid,
    },
    /// The service turned a webhook off (no event of another context).
    WebhookDisabled {
        /// Its project.
        project_id: Uuid,
        /// Where it was sent.
        url: String,
        /// Why: it answered `410 Gone`, or it failed for days.
        gone: bool,
        /// The project's owners and admins.
        managers: Vec<Uuid>,
    },
}

impl Event {
    /// The project the event happened in.
    pub fn project_id(&self) -> Uuid {
        match self {
            Event::TaskAssigned { task, .. }
            | Event::TaskUnassigned { task, .. }
            | Event::TaskStatusChanged { task, .. }
            | Event::TaskUpdated { task, .. }
            | Event::TaskCommented { task, .. }
            | Event::TaskDueSoon { task, .. } => task.project_id,
            Event::MemberAdded { project, .. } | Event::MemberRoleChanged { project, .. } => project.id,
            Event::WebhookDisabled { project_id, .. } => *project_id,
            Event::JobEnded { job, .. } => job.project_id,
        }
    }
}
