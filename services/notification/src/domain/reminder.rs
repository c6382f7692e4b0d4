//! Due-date reminders: a task's assignees hear once, a lead time before its due date, that it is
//! due soon. A new due date arms a new reminder; a task done, cancelled, deleted, without a due date
//! or without assignees has none.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::TaskRef;

/// The most assignees a task has (the task service's limit; the stored list's size).
pub const MAX_ASSIGNEES: usize = 100;

/// A task as its latest event showed it, as far as reminders read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDue {
    /// The task.
    pub task: TaskRef,
    /// Its assignees.
    pub assignees: Vec<Uuid>,
    /// Its due date, if it has one.
    pub due_at: Option<OffsetDateTime>,
    /// Neither done nor cancelled.
    pub open: bool,
    /// The task's version in that event.
    pub version: i64,
}

/// Whether a task in `status` still has work ahead.
pub fn is_open(status: &str) -> bool {
    !matches!(status, "done" | "cancelled")
}

/// When `task`'s reminder fires, `lead` before its due date; `None` when it has none: no due date,
/// no assignee, closed, a due date already past at `now`, or the one `reminded` of already.
/// A due date nearer than `lead` fires at once.
pub fn remind_at(
    task: &TaskDue,
    lead: Duration,
    reminded: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let due_at = task.due_at?;
    if !task.open || task.assignees.is_empty() || due_at <= now || reminded == Some(due_at) {
        return None;
    }
    Some(due_at - lead)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);
    const DAY: Duration = Duration::days(1);

    fn task(due_at: Option<OffsetDateTime>) -> TaskDue {
        TaskDue {
            task: TaskRef {
                id: Uuid::from_u128(1),
                project_id: Uuid::from_u128(2),
                key: "ORD-1".into(),
                title: "Ship".into(),
            },
            assignees: vec![Uuid::from_u128(3)],
            due_at,
            open: true,
            version: 1,
        }
    }

    #[test]
    fn a_reminder_fires_the_lead_before_the_due_date_or_at_once_when_nearer() {
        let far = datetime!(2026-12-10 09:00 UTC);
        let near = datetime!(2026-12-04 18:00 UTC);

        assert_eq!(remind_at(&task(Some(far)), DAY, None, NOW), Some(datetime!(2026-12-09 09:00 UTC)));
        assert!(remind_at(&task(Some(near)), DAY, None, NOW).is_some_and(|at| at <= NOW));
    }

    #[test]
    fn no_due_date_no_assignee_a_closed_task_or_a_past_date_has_no_reminder() {
        let due = Some(datetime!(2026-12-10 09:00 UTC));

        assert_eq!(remind_at(&task(None), DAY, None, NOW), None);
        assert_eq!(remind_at(&TaskDue { assignees: vec![], ..task(due) }, DAY, None, NOW), None);
        assert_eq!(remind_at(&TaskDue { open: false, ..task(due) }, DAY, None, NOW), None);
        assert_eq!(remind_at(&task(Some(datetime!(2026-12-04 11:00 UTC))), DAY, None, NOW), None);
        assert!(!is_open("done") && !is_open("cancelled") && is_open("in_review"));
    }

    #[test]
    fn a_due_date_is_reminded_of_once_and_a_new_one_again() {
        let first = datetime!(2026-12-10 09:00 UTC);
        let moved = datetime!(2026-12-11 09:00 UTC);

        assert_eq!(remind_at(&task(Some(first)), DAY, Some(first), NOW), None);
        assert_eq!(remind_at(&task(Some(moved)), DAY, Some(first), NOW), Some(datetime!(2026-12-10 09:00 UTC)));
    }
}
