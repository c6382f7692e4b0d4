//! Who hears about an event, and what they read. The actor never hears of their own action; a
//! comment that mentions someone tells them once, as a mention, not also as a comment.

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::{Event, JobRef, Kind, Member, mentioned};

/// The most characters of a title or body; longer text is cut at a character boundary with `…`.
pub const MAX_TITLE_CHARS: usize = 300;
/// See [`MAX_TITLE_CHARS`].
pub const MAX_BODY_CHARS: usize = 1000;

/// A notification to be stored for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Who it is for.
    pub recipient: Uuid,
    /// What it is about.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// A few lines.
    pub body: String,
    /// The project of the event.
    pub project_id: Uuid,
    /// The task, for a task event.
    pub task_id: Option<Uuid>,
    /// The task's key, for a task event.
    pub task_key: Option<String>,
}

/// The notifications `event`, caused by `actor`, gives rise to. `members` are the project's members
/// as far as known, for the mentions of a comment (other events do not read them).
pub fn drafts(event: &Event, actor: Option<Uuid>, members: &[Member]) -> Vec<Draft> {
    let mut out = Vec::new();
    let mut push = |recipient: Uuid, kind: Kind, title: String, body: String| {
        if Some(recipient) == actor || out.iter().any(|d: &Draft| d.recipient == recipient) {
            return;
        }
        let (task_id, task_key) = match event {
            Event::TaskAssigned { task, .. }
            | Event::TaskUnassigned { task, .. }
            | Event::TaskStatusChanged { task, .. }
            | Event::TaskUpdated { task, .. }
            | Event::TaskCommented { task, .. }
            | Event::TaskDueSoon { task, .. } => (Some(task.id), Some(task.key.clone())),
            Event::MemberAdded { .. }
            | Event::MemberRoleChanged { .. }
            | Event::WebhookDisabled { .. }
            | Event::JobEnded { .. } => (None, None),
        };
        out.push(Draft {
            recipient,
            kind,
            title: clip(title, MAX_TITLE_CHARS),
            body: clip(body, MAX_BODY_CHARS),
            project_id: event.project_id(),
            task_id,
            task_key,
        });
    };
    match event {
        Event::TaskAssigned { task, assignee } => {
            push(*assignee, Kind::TaskAssigned, format!("{} was assigned to you", task.key), task.title.clone());
        }
        Event::TaskUnassigned { task, assignee, left_project } => {
            if !left_project {
                let title = format!("{} is no longer assigned to you", task.key);
                push(*assignee, Kind::TaskUnassigned, title, task.title.clone());
            }
        }
        Event::TaskStatusChanged { task, old_status, new_status, recipients } => {
            for recipient in recipients {
                let title = format!("{} moved to {}", task.key, status_label(new_status));
                let body = format!("{}: {} → {}", task.title, status_label(old_status), status_label(new_status));
                push(*recipient, Kind::TaskStatusChanged, title, body);
            }
        }
        Event::TaskUpdated { task, changed_fields, recipients } => {
            let renamed = changed_fields.iter().any(|f| f == "title");
            let rescheduled = changed_fields.iter().any(|f| f == "due_at");
            let what = match (renamed, rescheduled) {
                (true, true) => "was renamed and has a new due date",
                (true, false) => "was renamed",
                (false, true) => "has a new due date",
                // Other edits (labels, position, description, ...) notify no one.
                (false, false) => return Vec::new(),
            };
            for recipient in recipients {
                push(*recipient, Kind::TaskUpdated, format!("{} {what}", task.key), task.title.clone());
            }
        }
        Event::TaskCommented { task, excerpt, recipients } => {
            for recipient in mentioned(excerpt, members) {
                push(recipient, Kind::TaskMentioned, format!("You were mentioned on {}", task.key), excerpt.clone());
            }
            for recipient in recipients {
                push(*recipient, Kind::TaskCommented, format!("New comment on {}", task.key), excerpt.clone());
            }
        }
        Event::TaskDueSoon { task, assignees, due_at } => {
            for assignee in assignees {
                let title = format!("{} is due {}", task.key, when(*due_at));
                push(*assignee, Kind::TaskDueSoon, title, task.title.clone());
            }
        }
        Event::MemberAdded { project, user_id, role } => {
            let title = format!("You were added to {}", project.name);
            let body = format!("You are now {} of {} ({}).", with_article(role), project.name, project.key);
            push(*user_id, Kind::ProjectMemberAdded, title, body);
        }
        Event::MemberRoleChanged { project, user_id, old_role, new_role } => {
            let title = format!("Your role in {} is now {new_role}", project.name);
            let body =
                format!("Your role in {} ({}) changed from {old_role} to {new_role}.", project.name, project.key);
            push(*user_id, Kind::ProjectRoleChanged, title, body);
        }
        Event::WebhookDisabled { url, gone, managers, .. } => {
            let why = if *gone { "answered 410 Gone" } else { "failed for 5 days without a success" };
            let body = format!("{url} {why}; nothing is sent to it until it is turned on again.");
            for manager in managers {
                push(*manager, Kind::ProjectWebhookDisabled, "A webhook was turned off".to_owned(), body.clone());
            }
        }
        Event::JobEnded { job, requester } => {
            let (title, body) = job_ended(job);
            push(*requester, Kind::JobEnded, title, body);
        }
    }
    out
}

/// The title and body of the end of `job`.
fn job_ended(job: &JobRef) -> (String, String) {
    let tasks = |n: u64| if n == 1 { "1 task".to_owned() } else { format!("{n} tasks") };
    let what = if job.kind == "import" { "import" } else { "export" };
    match (what, job.state.as_str()) {
        ("import", "done") => ("Your import is done".to_owned(), format!("{} created.", tasks(job.rows))),
        ("export", "done") => (
            "Your export is ready".to_owned(),
            format!("{} exported; open the job to download the file.", tasks(job.rows)),
        ),
        (_, "failed") => (format!("Your {what} failed"), job.error.clone()),
        ("import", _) => {
            ("Your import was cancelled".to_owned(), format!("{} had been created; they stay.", tasks(job.rows)))
        }
        _ => (format!("Your {what} was cancelled"), "No file was kept.".to_owned()),
    }
}

/// How a due date reads in a title: `Dec 5, 14:00 UTC`.
fn when(at: OffsetDateTime) -> String {
    let format = format_description!("[month repr:short] [day padding:none], [hour]:[minute] UTC");
    at.to_offset(UtcOffset::UTC).format(&format).unwrap_or_else(|_| at.to_string())
}

/// How a status reads in a sentence (`in_progress` → `in progress`).
fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

fn with_article(role: &str) -> String {
    let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {role}")
}

/// `text` cut to at most `max` characters, the last of them `…` when cut.
fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProjectRef, TaskRef};

    const ACTOR: Uuid = Uuid::from_u128(100);
    const ALICE: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);

    fn task() -> TaskRef {
        TaskRef {
            id: Uuid::from_u128(50),
            project_id: Uuid::from_u128(60),
            key: "ORD-7".into(),
            title: "Fix login".into(),
        }
    }

    fn recipients(drafts: &[Draft]) -> Vec<(Uuid, Kind)> {
        drafts.iter().map(|d| (d.recipient, d.kind)).collect()
    }

    #[test]
    fn an_assignee_hears_of_their_assignment_and_the_actor_of_nothing() {
        let to_bob = Event::TaskAssigned { task: task(), assignee: BOB };
        let to_self = Event::TaskAssigned { task: task(), assignee: ACTOR };

        let drafts_bob = drafts(&to_bob, Some(ACTOR), &[]);

        assert_eq!(recipients(&drafts_bob), [(BOB, Kind::TaskAssigned)]);
        assert_eq!(drafts_bob[0].title, "ORD-7 was assigned to you");
        assert_eq!(drafts_bob[0].body, "Fix login");
        assert_eq!(drafts_bob[0].task_key.as_deref(), Some("ORD-7"));
        assert_eq!(drafts_bob[0].project_id, Uuid::from_u128(60));
        assert!(drafts(&to_self, Some(ACTOR), &[]).is_empty());
    }

    #[test]
    fn someone_who_left_the_project_hears_nothing_of_being_unassigned() {
        let edit = Event::TaskUnassigned { task: task(), assignee: BOB, left_project: false };
        let left = Event::TaskUnassigned { task: task(), assignee: BOB, left_project: true };

        assert_eq!(recipients(&drafts(&edit, Some(ACTOR), &[])), [(BOB, Kind::TaskUnassigned)]);
        assert!(drafts(&left, Some(ACTOR), &[]).is_empty());
    }

    #[test]
    fn a_status_change_reaches_every_recipient_but_the_actor_once() {
        let event = Event::TaskStatusChanged {
            task: task(),
            old_status: "todo".into(),
            new_status: "in_progress".into(),
            recipients: vec![ALICE, ACTOR, BOB, ALICE],
        };

        let out = drafts(&event, Some(ACTOR), &[]);

        assert_eq!(recipients(&out), [(ALICE, Kind::TaskStatusChanged), (BOB, Kind::TaskStatusChanged)]);
        assert_eq!(out[0].title, "ORD-7 moved to in progress");
        assert_eq!(out[0].body, "Fix login: todo → in progress");
    }

    #[test]
    fn only_a_new_title_or_due_date_is_an_update_worth_telling() {
        let update = |fields: &[&str]| Event::TaskUpdated {
            task: task(),
            changed_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            recipients: vec![ALICE],
        };

        let renamed = drafts(&update(&["title", "labels"]), Some(ACTOR), &[]);
        let both = drafts(&update(&["due_at", "title"]), Some(ACTOR), &[]);

        assert_eq!(renamed[0].title, "ORD-7 was renamed");
        assert_eq!(both[0].title, "ORD-7 was renamed and has a new due date");
        assert!(drafts(&update(&["labels", "position", "status"]), Some(ACTOR), &[]).is_empty());
    }

    #[test]
    fn a_mention_is_told_once_as_a_mention_and_the_rest_hear_of_the_comment() {
        let members = [
            Member { user_id: ALICE, display_name: "Alice".into(), email: "alice@example.com".into() },
            Member { user_id: BOB, display_name: "Bob".into(), email: "bob@example.com".into() },
        ];
        let event =
            Event::TaskCommented { task: task(), excerpt: "@alice see this".into(), recipients: vec![ALICE, BOB] };

        let out = drafts(&event, Some(ACTOR), &members);

        assert_eq!(recipients(&out), [(ALICE, Kind::TaskMentioned), (BOB, Kind::TaskCommented)]);
        assert_eq!(out[0].body, "@alice see this");
    }

    #[test]
    fn the_actor_mentioning_themselves_hears_nothing() {
        let members = [Member { user_id: ACTOR, display_name: "Me".into(), email: "me@example.com".into() }];
        let event = Event::TaskCommented { task: task(), excerpt: "note to @me".into(), recipients: vec![] };

        assert!(drafts(&event, Some(ACTOR), &members).is_empty());
    }

    #[test]
    fn project_membership_changes_reach_the_member() {
        let project = ProjectRef { id: Uuid::from_u128(60), key: "ORD".into(), name: "Ordo".into() };
        let added = Event::MemberAdded { project: project.clone(), user_id: BOB, role: "admin".into() };
        let changed =
            Event::MemberRoleChanged { project, user_id: BOB, old_role: "member".into(), new_role: "admin".into() };

        let added = drafts(&added, Some(ACTOR), &[]);
        let changed = drafts(&changed, Some(ACTOR), &[]);

        assert_eq!(added[0].body, "You are now an admin of Ordo (ORD).");
        assert_eq!(added[0].task_id, None);
        assert_eq!(changed[0].title, "Your role in Ordo is now admin");
        assert_eq!(changed[0].kind, Kind::ProjectRoleChanged);
    }

    #[test]
    fn the_requester_alone_hears_how_a_job_ended() {
        let job = |kind: &str, state: &str, rows: u64, error: &str| Event::JobEnded {
            job: JobRef {
                id: Uuid::from_u128(70),
                project_id: Uuid::from_u128(60),
                kind: kind.into(),
                state: state.into(),
                rows,
                error: error.into(),
            },
            requester: ALICE,
        };
        let read = |event: Event| {
            let out = drafts(&event, None, &[]);
            assert_eq!(recipients(&out), [(ALICE, Kind::JobEnded)]);
            assert_eq!((out[0].project_id, out[0].task_id), (Uuid::from_u128(60), None));
            (out[0].title.clone(), out[0].body.clone())
        };

        assert_eq!(
            read(job("export", "done", 1200, "")),
            ("Your export is ready".to_owned(), "1200 tasks exported; open the job to download the file.".to_owned())
        );
        assert_eq!(
            read(job("import", "done", 1, "")),
            ("Your import is done".to_owned(), "1 task created.".to_owned())
        );
        assert_eq!(
            read(job("export", "failed", 0, "the export is larger than 2 GiB")),
            ("Your export failed".to_owned(), "the export is larger than 2 GiB".to_owned())
        );
        assert_eq!(read(job("import", "cancelled", 400, "")).1, "400 tasks had been created; they stay.");
        assert_eq!(read(job("export", "cancelled", 0, "")).0, "Your export was cancelled");
    }

    #[test]
    fn each_assignee_hears_that_a_task_is_due_soon() {
        let due_at = time::macros::datetime!(2026-12-05 14:00 UTC);
        let event = Event::TaskDueSoon { task: task(), assignees: vec![ALICE, BOB], due_at };

        let out = drafts(&event, None, &[]);

        assert_eq!(recipients(&out), [(ALICE, Kind::TaskDueSoon), (BOB, Kind::TaskDueSoon)]);
        assert_eq!(out[0].title, "ORD-7 is due Dec 5, 14:00 UTC");
        assert_eq!(out[0].body, "Fix login");
    }

    #[test]
    fn every_manager_hears_that_a_webhook_was_turned_off() {
        let project_id = Uuid::from_u128(60);
        let url = "https://hooks.example.com/ordo".to_owned();
        let gone = Event::WebhookDisabled { project_id, url: url.clone(), gone: true, managers: vec![ALICE, BOB] };
        let failing = Event::WebhookDisabled { project_id, url, gone: false, managers: vec![ALICE] };

        let gone = drafts(&gone, None, &[]);
        let failing = drafts(&failing, None, &[]);

        assert_eq!(recipients(&gone), [(ALICE, Kind::ProjectWebhookDisabled), (BOB, Kind::ProjectWebhookDisabled)]);
        assert_eq!((gone[0].project_id, gone[0].task_id), (project_id, None));
        assert_eq!(gone[0].title, "A webhook was turned off");
        assert!(gone[0].body.starts_with("https://hooks.example.com/ordo answered 410 Gone;"));
        assert!(failing[0].body.contains("failed for 5 days without a success"));
    }

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let event =
            Event::TaskAssigned { task: TaskRef { title: "é".repeat(MAX_BODY_CHARS + 5), ..task() }, assignee: BOB };

        let body = &drafts(&event, Some(ACTOR), &[])[0].body;

        assert_eq!(body.chars().count(), MAX_BODY_CHARS);
        assert!(body.ends_with('…'));
    }
}
