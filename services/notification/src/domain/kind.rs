//! What a notification is about, and the channels it can reach a user on.

use std::fmt;

/// The kinds of notification (`kind` in the API), each of which a user can turn off per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The user became an assignee of a task.
    TaskAssigned,
    /// The user stopped being an assignee of a task.
    TaskUnassigned,
    /// A task the user is assigned to, reported or watches changed status.
    TaskStatusChanged,
    /// A task the user is assigned to, reported or watches got a comment.
    TaskCommented,
    /// A comment mentioned the user.
    TaskMentioned,
    /// A task the user is assigned to, reported or watches was renamed or got another due date.
    TaskUpdated,
    /// A task assigned to the user is due soon.
    TaskDueSoon,
    /// The user was added to a project.
    ProjectMemberAdded,
    /// The user's role in a project changed.
    ProjectRoleChanged,
    /// The service turned off a webhook of a project the user manages.
    ProjectWebhookDisabled,
    /// A background job the user asked for (an export, an import) ended.
    JobEnded,
}

impl Kind {
    /// Every kind, in the order preferences list them.
    pub const ALL: [Kind; 11] = [
        Kind::TaskAssigned,
        Kind::TaskUnassigned,
        Kind::TaskStatusChanged,
        Kind::TaskCommented,
        Kind::TaskMentioned,
        Kind::TaskUpdated,
        Kind::TaskDueSoon,
        Kind::ProjectMemberAdded,
        Kind::ProjectRoleChanged,
        Kind::ProjectWebhookDisabled,
        Kind::JobEnded,
    ];

    /// The API's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TaskAssigned => "task.assigned",
            Kind::TaskUnassigned => "task.unassigned",
            Kind::TaskStatusChanged => "task.status_changed",
            Kind::TaskCommented => "task.commented",
            Kind::TaskMentioned => "task.mentioned",
            Kind::TaskUpdated => "task.updated",
            Kind::TaskDueSoon => "task.due_soon",
            Kind::ProjectMemberAdded => "project.member_added",
            Kind::ProjectRoleChanged => "project.role_changed",
            Kind::ProjectWebhookDisabled => "project.webhook_disabled",
            Kind::JobEnded => "job.ended",
        }
    }

    /// The kind the API names `name`.
    ///
    /// # Errors
    ///
    /// [`UnknownKind`] for a name that is no kind.
    pub fn parse(name: &str) -> Result<Self, UnknownKind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name).ok_or(UnknownKind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

/// Where a notification reaches its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// The in-app list and the live stream.
    InApp,
    /// Email.
    Email,
    /// Web Push, to every subscription of the user.
    Push,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::InApp, Channel::Email, Channel::Push];

    /// The API's (and the database's) name of the channel.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Push => "push",
        }
    }

    /// The channel named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|channel| channel.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_parses() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Ok(kind));
        }
        assert_eq!(Kind::parse("task.created"), Err(UnknownKind));
        assert_eq!(Kind::parse("TASK.ASSIGNED"), Err(UnknownKind));
        assert_eq!(Channel::parse("email"), Some(Channel::Email));
        assert_eq!(Channel::parse("sms"), None);
    }
}
