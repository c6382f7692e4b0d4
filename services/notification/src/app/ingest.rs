//! One event in: the directory facts it carries (who is who, who is a member, who is disabled) are
//! recorded, then the rules decide who hears of it, and a notification is stored for each recipient
//! who still has access to the project and has not turned that kind off in the app; each of them who
//! has not turned it off by email gets it in the mail of its task's window.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::ports::{IngestTx, Notification};
use crate::domain::reminder::{TaskDue, remind_at};
use crate::domain::{Channel, Draft, Event, drafts, email};

/// An event as the consumer decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event's id.
    pub event_id: Uuid,
    /// Who caused it.
    pub actor: Option<Uuid>,
    /// When it happened.
    pub occurred_at: OffsetDateTime,
    /// What it tells about users and memberships.
    pub facts: Vec<Fact>,
    /// What it may notify someone of.
    pub event: Option<Event>,
    /// The task of a task event, as it stands after it (for reminders).
    pub task: Option<TaskDue>,
    /// Tasks it deleted (a deleted task and its subtasks).
    pub deleted_tasks: Vec<Uuid>,
}

/// Something an event tells the service's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A user's email and display name.
    User {
        /// The user.
        user_id: Uuid,
        /// Their email.
        email: String,
        /// Their display name.
        display_name: String,
    },
    /// An account was disabled or enabled again.
    UserDisabled {
        /// The user.
        user_id: Uuid,
        /// Disabled now.
        disabled: bool,
    },
    /// A user joined or left a project.
    Member {
        /// The project.
        project_id: Uuid,
        /// The user.
        user_id: Uuid,
        /// A member now.
        member: bool,
    },
    /// A project was deleted with its memberships.
    ProjectGone {
        /// The project.
        project_id: Uuid,
    },
}

/// What ingesting does beside storing notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSettings {
    /// Email: how long a mail gathers the notifications of one recipient and task before it goes;
    /// `None` when email is off.
    pub email_window: Option<time::Duration>,
    /// How long before its due date a task's assignees are reminded of it.
    pub reminder_lead: time::Duration,
}

/// Records `delivery`'s facts and stores its notifications in `tx` (and queues their mails); the
/// notifications stored.
///
/// # Errors
///
/// What the store answers.
pub async fn ingest(
    tx: &mut dyn IngestTx,
    delivery: &Delivery,
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<Vec<Notification>> {
    let as_of = delivery.occurred_at;
    for fact in &delivery.facts {
        match fact {
            Fact::User { user_id, email, display_name } => tx.upsert_user(*user_id, email, display_name).await?,
            Fact::UserDisabled { user_id, disabled } => tx.set_user_disabled(*user_id, *disabled, as_of).await?,
            Fact::Member { project_id, user_id, member } => {
                tx.set_member(*project_id, *user_id, *member, as_of).await?
            }
            Fact::ProjectGone { project_id } => tx.project_gone(*project_id, as_of).await?,
        }
    }
    if let Some(task) = &delivery.task {
        let (version, reminded) = tx.due_state(task.task.id).await?.unwrap_or((i64::MIN, None));
        // An older event than the one recorded (a redelivery out of order) changes nothing.
        if version < task.version {
            let at = remind_at(task, settings.reminder_lead, reminded, now);
            tx.save_due(task, at).await?;
        }
    }
    if !delivery.deleted_tasks.is_empty() {
        tx.tasks_deleted(&delivery.deleted_tasks).await?;
    }
    let Some(event) = &delivery.event else { return Ok(Vec::new()) };
    let members = match event {
        Event::TaskCommented { excerpt, .. } if excerpt.contains('@') => tx.members(event.project_id()).await?,
        _ => Vec::new(),
    };
    let drafts = drafts(event, delivery.actor, &members);
    notify(tx, drafts, delivery.actor, delivery.event_id, now, settings).await
}

/// Stores `drafts` of event `event_id` for those recipients who still have access to the project
/// and did not turn the kind off in the app, and queues a mail for those of them who did not turn
/// it off by email; the notifications stored.
///
/// # Errors
///
/// What the store answers.
pub async fn notify(
    tx: &mut dyn IngestTx,
    mut drafts: Vec<Draft>,
    actor: Option<Uuid>,
    event_id: Uuid,
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<Vec<Notification>> {
    let Some(project_id) = drafts.first().map(|d| d.project_id) else { return Ok(Vec::new()) };
    let recipients: Vec<Uuid> = drafts.iter().map(|d| d.recipient).collect();
    let blocked = tx.without_access(project_id, &recipients).await?;
    let off = tx.turned_off(&recipients, Channel::InApp).await?;
    drafts.retain(|d| !blocked.contains(&d.recipient) && !off.contains(&(d.recipient, d.kind)));
    let mut notifications: Vec<Notification> = drafts
        .into_iter()
        .map(|draft| Notification {
            id: Uuid::now_v7(),
            seq: 0,
            draft,
            actor_id: actor,
            created_at: now,
            seen_at: None,
            read_at: None,
            archived_at: None,
        })
        .collect();
    if notifications.is_empty() {
        return Ok(notifications);
    }
    tx.insert(&mut notifications, event_id).await?;
    if let Some(window) = settings.email_window {
        let recipients: Vec<Uuid> = notifications.iter().map(|n| n.draft.recipient).collect();
        let no_mail = tx.turned_off(&recipients, Channel::Email).await?;
        for n in notifications.iter().filter(|n| !no_mail.contains(&(n.draft.recipient, n.draft.kind))) {
            tx.queue_email(n, email::coalesce_key(&n.draft), now + window).await?;
        }
    }
    Ok(notifications)
}

/// Fires up to `limit` reminders due at `now` (claimed, so each fires on one instance only, once):
/// each assignee who still has access gets a `task.due_soon` notification and, per their
/// preferences, its mail. How many reminders were claimed.
///
/// # Errors
///
/// What the store answers.
pub async fn fire_reminders(
    tx: &mut dyn IngestTx,
    now: OffsetDateTime,
    limit: u32,
    settings: IngestSettings,
) -> Result<usize> {
    let due = tx.claim_reminders(now, limit).await?;
    for task in &due {
        // Past its due date by now (an outage longer than the lead): overdue, no longer due soon.
        let Some(due_at) = task.due_at.filter(|at| *at > now) else { continue };
        let event = Event::TaskDueSoon { task: task.task.clone(), assignees: task.assignees.clone(), due_at };
        notify(tx, drafts(&event, None, &[]), None, Uuid::now_v7(), now, settings).await?;
    }
    Ok(due.len())
}
