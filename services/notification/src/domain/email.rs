//! The rules of notification email: which mail a notification joins (one per recipient and task, or
//! project, within a window), how many a mail lists, what its subject says, and when a mail SES
//! could not take yet is tried again.

use std::time::Duration;

use uuid::Uuid;

use super::Draft;

/// The most notifications one mail lists; more in its window are counted ("and 3 more").
pub const MAX_ITEMS_PER_EMAIL: u32 = 20;
/// The longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 150;

/// The mail a notification joins while its window is open: its task's, or its project's.
pub fn coalesce_key(draft: &Draft) -> Uuid {
    draft.task_id.unwrap_or(draft.project_id)
}

/// One notification as a mail lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailItem {
    /// One line.
    pub title: String,
    /// A few lines.
    pub body: String,
    /// The task's key, for a task notification.
    pub task_key: Option<String>,
}

/// A mail's subject: the one notification's title, or how many changes it lists and of what. One
/// line, whatever the titles hold.
pub fn subject(items: &[MailItem], more: u32) -> String {
    let total = items.len() as u64 + u64::from(more);
    let subject = match items {
        [] => "Ordo notifications".to_owned(),
        [only] if more == 0 => only.title.clone(),
        [first, rest @ ..] => {
            let same_task = first.task_key.is_some() && rest.iter().all(|item| item.task_key == first.task_key);
            match (&first.task_key, same_task) {
                (Some(key), true) => format!("{total} updates on {key}"),
                _ => format!("{total} notifications"),
            }
        }
    };
    let line: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.chars().count() <= MAX_SUBJECT_CHARS {
        return line;
    }
    let mut clipped: String = line.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    clipped.push('…');
    clipped
}

/// When to try a mail again after its `attempt`-th try (1 for the first) was answered "not now":
/// `base` doubled per attempt, at most `cap`, moved by `jitter` (from -1 to 1) times 20 % so that
/// mails refused together do not come back together.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let delay = doubled.min(cap).as_secs_f64() * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
    Duration::from_secs_f64(delay.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Kind;

    fn item(title: &str, key: Option<&str>) -> MailItem {
        MailItem { title: title.into(), body: String::new(), task_key: key.map(str::to_owned) }
    }

    #[test]
    fn a_task_notification_joins_its_task_s_mail_and_a_project_one_its_project_s() {
        let task = Draft {
            recipient: Uuid::from_u128(1),
            kind: Kind::TaskAssigned,
            title: String::new(),
            body: String::new(),
            project_id: Uuid::from_u128(2),
            task_id: Some(Uuid::from_u128(3)),
            task_key: Some("ORD-1".into()),
        };
        let project = Draft { task_id: None, task_key: None, ..task.clone() };

        assert_eq!(coalesce_key(&task), Uuid::from_u128(3));
        assert_eq!(coalesce_key(&project), Uuid::from_u128(2));
    }

    #[test]
    fn the_subject_names_one_change_or_counts_many() {
        let one = [item("ORD-7 was assigned to you", Some("ORD-7"))];
        let same = [item("a", Some("ORD-7")), item("b", Some("ORD-7"))];
        let mixed = [item("a", Some("ORD-7")), item("b", Some("ORD-8"))];

        assert_eq!(subject(&one, 0), "ORD-7 was assigned to you");
        assert_eq!(subject(&one, 2), "3 updates on ORD-7");
        assert_eq!(subject(&same, 0), "2 updates on ORD-7");
        assert_eq!(subject(&mixed, 0), "2 notifications");
    }

    #[test]
    fn a_subject_is_one_bounded_line() {
        let injected = [item("Hi\r\nBcc: someone@example.com", None)];
        let long = [item(&"x".repeat(400), None)];

        assert_eq!(subject(&injected, 0), "Hi  Bcc: someone@example.com");
        assert_eq!(subject(&long, 0).chars().count(), MAX_SUBJECT_CHARS);
    }

    #[test]
    fn retries_back_off_to_a_cap_within_the_jitter() {
        let base = Duration::from_secs(30);
        let cap = Duration::from_secs(3600);

        assert_eq!(retry_delay(1, base, cap, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(3, base, cap, 0.0), Duration::from_secs(120));
        assert_eq!(retry_delay(30, base, cap, 0.0), cap);
        assert_eq!(retry_delay(1, base, cap, 1.0), Duration::from_secs(36));
        assert_eq!(retry_delay(1, base, cap, -5.0), Duration::from_secs(24));
    }
}
