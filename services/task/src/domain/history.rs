//! A task's status history: each change of its status, from its creation on, kept beside the task
//! and written in the transaction of the change. Flow reports (created, completed and open per
//! interval, the time from in progress to done) are answered from it, and a task's activity history
//! can build on it.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Status, Task};

/// One change of a task's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub task_id: Uuid,
    pub project_id: Uuid,
    /// `None` for the first status recorded: the one the task was created with.
    pub from: Option<Status>,
    pub to: Status,
    pub at: OffsetDateTime,
    /// Who changed it.
    pub actor_id: Uuid,
}

impl StatusChange {
    /// The status `task` was created with, by its reporter, at its creation.
    pub fn created(task: &Task) -> Self {
        Self {
            task_id: task.id,
            project_id: task.project_id,
            from: None,
            to: task.status(),
            at: task.created_at,
            actor_id: task.reporter_id,
        }
    }

    /// The change from `old` to `new` (the same task before and after an edit) by `actor`, at the
    /// edit's time; `None` when the edit left the status as it was.
    pub fn between(old: &Task, new: &Task, actor_id: Uuid) -> Option<Self> {
        (old.status() != new.status()).then(|| Self {
            task_id: new.id,
            project_id: new.project_id,
            from: Some(old.status()),
            to: new.status(),
            at: new.updated_at,
            actor_id,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::*;
    use crate::domain::{Assignees, Labels, NewTask, Position, Priority, Schedule, Title};

    fn task(status: Status) -> Task {
        let new = NewTask {
            title: Title::parse("Ship the report").unwrap(),
            description: None,
            status,
            priority: Priority::None,
            assignees: Assignees::default(),
            labels: Labels::default(),
            schedule: Schedule::default(),
            estimate: None,
            parent_id: None,
        };
        Task::create(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "ORDO".into(),
            1,
            new,
            Uuid::now_v7(),
            Position::first(),
            datetime!(2026-12-07 09:00 UTC),
        )
    }

    #[test]
    fn a_created_task_starts_its_history_with_its_status_by_its_reporter() {
        let task = task(Status::Backlog);
        let change = StatusChange::created(&task);
        assert_eq!(change.from, None);
        assert_eq!(change.to, Status::Backlog);
        assert_eq!(change.at, task.created_at);
        assert_eq!(change.actor_id, task.reporter_id);
        assert_eq!((change.task_id, change.project_id), (task.id, task.project_id));
    }

    #[test]
    fn an_edit_records_a_change_only_when_the_status_moved() {
        let old = task(Status::Todo);
        let editor = Uuid::now_v7();
        let later = datetime!(2026-12-07 10:30 UTC);

        let mut renamed = old.clone();
        renamed.title = Title::parse("Ship the flow report").unwrap();
        renamed.touch(later);
        assert_eq!(StatusChange::between(&old, &renamed, editor), None);

        let mut started = old.clone();
        started.set_status(Status::InProgress, later);
        started.touch(later);
        let change = StatusChange::between(&old, &started, editor).unwrap();
        assert_eq!((change.from, change.to), (Some(Status::Todo), Status::InProgress));
        assert_eq!(change.at, later);
        assert_eq!(change.actor_id, editor);
    }
}
