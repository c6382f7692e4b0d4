//! The events the project service announces. Each becomes one `ordo.events.v1.Envelope` on the outbox.

use uuid::Uuid;

use super::{Membership, Project, ProjectRole};

/// How a member came to be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRemoval {
    /// A project admin or owner removed them.
    Removed,
    /// They left on their own.
    Left,
}

/// Something that happened to a project. Each carries the project as it is after the change, so
/// consumers (notifications, audit) need not ask for its key or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectEvent {
    /// `project.created`
    Created { project: Project },
    /// `project.updated`; `changed` names the fields that changed.
    Updated { project: Project, changed: Vec<&'static str> },
    /// `project.archived`
    Archived { project: Project },
    /// `project.unarchived`
    Unarchived { project: Project },
    /// `project.deleted`, with who was a member then.
    Deleted { project: Project, member_ids: Vec<Uuid> },
    /// `project.member_added`
    MemberAdded { project: Project, membership: Membership },
    /// `project.member_role_changed`
    MemberRoleChanged { project: Project, user_id: Uuid, old_role: ProjectRole, new_role: ProjectRole },
    /// `project.member_removed`
    MemberRemoved { project: Project, user_id: Uuid, role: ProjectRole, how: MemberRemoval },
}

impl ProjectEvent {
    /// The routing key, `project.<event>`.
    pub fn event_type(&self) -> &'static str {
        match self {
            ProjectEvent::Created { .. } => "project.created",
            ProjectEvent::Updated { .. } => "project.updated",
            ProjectEvent::Archived { .. } => "project.archived",
            ProjectEvent::Unarchived { .. } => "project.unarchived",
            ProjectEvent::Deleted { .. } => "project.deleted",
            ProjectEvent::MemberAdded { .. } => "project.member_added",
            ProjectEvent::MemberRoleChanged { .. } => "project.member_role_changed",
            ProjectEvent::MemberRemoved { .. } => "project.member_removed",
        }
    }

    /// The project the event belongs to.
    pub fn project(&self) -> &Project {
        match self {
            ProjectEvent::Created { project }
            | ProjectEvent::Updated { project, .. }
            | ProjectEvent::Archived { project }
            | ProjectEvent::Unarchived { project }
            | ProjectEvent::Deleted { project, .. }
            | ProjectEvent::MemberAdded { project, .. }
            | ProjectEvent::MemberRoleChanged { project, .. }
            | ProjectEvent::MemberRemoved { project, .. } => project,
        }
    }

    /// The aggregate the event is about: the project, or the membership (`project_member`, the
    /// member's user id) for membership events.
    pub fn entity(&self) -> (&'static str, Uuid) {
        match self {
            ProjectEvent::MemberAdded { membership, .. } => ("project_member", membership.user_id),
            ProjectEvent::MemberRoleChanged { user_id, .. } | ProjectEvent::MemberRemoved { user_id, .. } => {
                ("project_member", *user_id)
            }
            other => ("project", other.project().id),
        }
    }
}
