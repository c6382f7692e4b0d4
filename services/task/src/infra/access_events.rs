//! Keeps the access cache honest: every instance of the task service subscribes to the events that
//! change what `CheckAccess` answers, and drops the answers they touch. Project events change one
//! project's answers; identity's account events change one user's everywhere (and the project
//! service hears of them from the same event, so that user's answers are not cached again for a
//! moment). A lost subscription may have missed events, so it starts the cache over.

use std::time::Duration;

use ordo_events::{Envelope, Listener, Payload};
use uuid::Uuid;

use crate::app::AccessCache;

/// The routing keys that change an answer of `CheckAccess`.
pub const BINDINGS: &[&str] = &[
    "project.updated",
    "project.archived",
    "project.unarchived",
    "project.deleted",
    "project.member_added",
    "project.member_role_changed",
    "project.member_removed",
    "identity.user_disabled",
    "identity.user_role_changed",
];

/// How long a user's answers go uncached after their account changed: enough for the project
/// service to apply the same event.
const ACCOUNT_SETTLE: Duration = Duration::from_secs(10);

/// The subscription's listener.
#[derive(Debug, Clone)]
pub struct AccessInvalidation {
    cache: AccessCache,
}

impl AccessInvalidation {
    /// Drops `cache`'s answers as events arrive.
    pub fn new(cache: AccessCache) -> Self {
        Self { cache }
    }
}

/// What an event changes: a project's answers, or a user's.
#[derive(Debug, PartialEq, Eq)]
enum Touches<'a> {
    Project(&'a str),
    User(&'a str),
    Nothing,
}

fn touches(payload: Option<&Payload>) -> Touches<'_> {
    match payload {
        Some(Payload::ProjectUpdated(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectArchived(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectUnarchived(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectDeleted(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectMemberAdded(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectMemberRoleChanged(e)) => Touches::Project(&e.project_id),
        Some(Payload::ProjectMemberRemoved(e)) => Touches::Project(&e.project_id),
        Some(Payload::UserDisabled(e)) => Touches::User(&e.user_id),
        Some(Payload::UserRoleChanged(e)) => Touches::User(&e.user_id),
        _ => Touches::Nothing,
    }
}

impl Listener for AccessInvalidation {
    fn on_event(&self, envelope: &Envelope) {
        match touches(envelope.payload.as_ref()) {
            Touches::Project(raw) => match Uuid::parse_str(raw) {
                Ok(project) => self.cache.forget_project(project),
                // Not ours to judge; start over rather than keep a possibly stale answer.
                Err(_) => self.cache.clear(),
            },
            Touches::User(raw) => match Uuid::parse_str(raw) {
                Ok(user) => self.cache.forget_user(user, ACCOUNT_SETTLE),
                Err(_) => self.cache.clear(),
            },
            Touches::Nothing => {}
        }
    }

    fn on_connected(&self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ordo_proto::events::v1::{ProjectCreated, ProjectMemberRemoved, TaskDeleted, UserDisabled};

    use super::*;

    #[test]
    fn project_events_touch_their_project_and_account_events_their_user() {
        let removed = Payload::ProjectMemberRemoved(ProjectMemberRemoved {
            project_id: "p".into(),
            user_id: "u".into(),
            ..Default::default()
        });
        let disabled = Payload::UserDisabled(UserDisabled { user_id: "u".into(), disabled: true });

        assert_eq!(touches(Some(&removed)), Touches::Project("p"));
        assert_eq!(touches(Some(&disabled)), Touches::User("u"));
        assert_eq!(touches(Some(&Payload::ProjectCreated(ProjectCreated::default()))), Touches::Nothing);
        assert_eq!(touches(Some(&Payload::TaskDeleted(TaskDeleted::default()))), Touches::Nothing);
        assert_eq!(touches(None), Touches::Nothing);
    }
}
