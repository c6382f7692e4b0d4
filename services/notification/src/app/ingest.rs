//! One event in: the directory facts it carries (who is who, who is a member, who is disabled) are
//! recorded, then the rules decide who hears of it, and a notification is stored for each recipient
//! who still has access to the project and has not turned that kind off in the app; each of them who
//! has not turned it off by email gets it in the mail of its task's window (unless their mail goes
//! out as a daily digest, or not at all).

use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::ports::{IngestTx, Notification, Queued};
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
        /// An owner or admin now.
        manages: bool,
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
    /// Whether notifications go out by Web Push too (to the subscriptions of their users).
    pub push: bool,
}

/// Records the facts of `deliveries` and stores their notifications in `tx` (and queues their
/// mails), with the same outcome as ingesting each in turn; the notifications stored.
///
/// Events that only notify (task events, the bulk) are gathered and stored together: one statement
/// per step for all of them, not one per event. An event that changes the directory (who is a
/// member, who is disabled) or deletes tasks first stores what was gathered before it, so every
/// access check still sees the directory as it stood at its own event.
///
/// # Errors
///
/// What the store answers.
pub async fn ingest(
    tx: &mut dyn IngestTx,
    deliveries: &[Delivery],
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<Vec<Notification>> {
    let mut stored = Vec::new();
    let mut run = Run::default();
    for delivery in deliveries {
        let barrier = !delivery.facts.is_empty() || !delivery.deleted_tasks.is_empty();
        if barrier {
            stored.extend(run.flush(tx, now, settings).await?);
            record_facts(tx, delivery).await?;
        }
        if let Some(task) = &delivery.task {
            run.dues.push(task);
        }
        if !delivery.deleted_tasks.is_empty() {
            // Its own last state first, then the deletion, which no later state undoes.
            save_dues(tx, std::mem::take(&mut run.dues), now, settings).await?;
            tx.tasks_deleted(&delivery.deleted_tasks).await?;
        }
        let Some(event) = &delivery.event else { continue };
        let members = match event {
            Event::TaskCommented { excerpt, .. } if excerpt.contains('@') => tx.members(event.project_id()).await?,
            _ => Vec::new(),
        };
        run.pending.push(Pending {
            drafts: drafts(event, delivery.actor, &members),
            actor: delivery.actor,
            event_id: delivery.event_id,
        });
    }
    stored.extend(run.flush(tx, now, settings).await?);
    announce(tx, &stored).await?;
    Ok(stored)
}

/// One wake-up for the live streams of everyone in `stored`, each named once.
async fn announce(tx: &mut dyn IngestTx, stored: &[Notification]) -> Result<()> {
    if stored.is_empty() {
        return Ok(());
    }
    let mut users: Vec<Uuid> = stored.iter().map(|n| n.draft.recipient).collect();
    users.sort_unstable();
    users.dedup();
    tx.announce(&users).await
}

/// What a run of events gathered and has not stored yet.
#[derive(Default)]
struct Run<'a> {
    /// The tasks' states, in event order.
    dues: Vec<&'a TaskDue>,
    /// The notifications, per event.
    pending: Vec<Pending>,
}

impl Run<'_> {
    /// Stores what was gathered; the notifications stored.
    async fn flush(
        &mut self,
        tx: &mut dyn IngestTx,
        now: OffsetDateTime,
        settings: IngestSettings,
    ) -> Result<Vec<Notification>> {
        save_dues(tx, std::mem::take(&mut self.dues), now, settings).await?;
        notify(tx, std::mem::take(&mut self.pending), now, settings).await
    }
}

/// The notifications one event would give.
#[derive(Debug)]
struct Pending {
    /// One per recipient, before access and preferences are checked.
    drafts: Vec<Draft>,
    /// Who caused the event.
    actor: Option<Uuid>,
    /// The event.
    event_id: Uuid,
}

async fn record_facts(tx: &mut dyn IngestTx, delivery: &Delivery) -> Result<()> {
    let as_of = delivery.occurred_at;
    for fact in &delivery.facts {
        match fact {
            Fact::User { user_id, email, display_name } => tx.upsert_user(*user_id, email, display_name).await?,
            Fact::UserDisabled { user_id, disabled } => tx.set_user_disabled(*user_id, *disabled, as_of).await?,
            Fact::Member { project_id, user_id, member, manages } => {
                tx.set_member(*project_id, *user_id, *member, *manages, as_of).await?
            }
            Fact::ProjectGone { project_id } => tx.project_gone(*project_id, as_of).await?,
        }
    }
    Ok(())
}

/// Records the latest state of each task in `dues` (given in event order) and arms its reminder;
/// a state older than the one recorded (a redelivery out of order) changes nothing.
async fn save_dues(
    tx: &mut dyn IngestTx,
    mut dues: Vec<&TaskDue>,
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<()> {
    if dues.is_empty() {
        return Ok(());
    }
    // The newest state of each task, in task order (the order their rows are locked in).
    dues.sort_by(|a, b| a.task.id.cmp(&b.task.id).then(b.version.cmp(&a.version)));
    dues.dedup_by_key(|due| due.task.id);
    let ids: Vec<Uuid> = dues.iter().map(|due| due.task.id).collect();
    let states = tx.due_states(&ids).await?;
    let changes: Vec<(&TaskDue, Option<OffsetDateTime>)> = dues
        .into_iter()
        .filter_map(|task| {
            let state = states.get(&task.task.id);
            if state.is_some_and(|state| state.version >= task.version) {
                return None;
            }
            let reminded = state.and_then(|state| state.reminded);
            Some((task, remind_at(task, settings.reminder_lead, reminded, now)))
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    tx.save_dues(&changes).await
}

/// Stores the drafts of `pending` for those recipients who still have access to their project and
/// did not turn the kind off in the app, and queues a mail for those of them who did not turn it
/// off by email; the notifications stored, in the order of `pending`. Their live streams are not
/// woken: the caller announces what it stored.
///
/// # Errors
///
/// What the store answers.
async fn notify(
    tx: &mut dyn IngestTx,
    pending: Vec<Pending>,
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<Vec<Notification>> {
    let mut pairs: Vec<(Uuid, Uuid)> =
        pending.iter().flat_map(|p| p.drafts.iter().map(|d| (d.project_id, d.recipient))).collect();
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut users: Vec<Uuid> = pairs.iter().map(|(_, user)| *user).collect();
    users.sort_unstable();
    users.dedup();
    let blocked = tx.without_access(&pairs).await?;
    let off = tx.turned_off(&users).await?;
    let mut batch: Vec<(Uuid, Notification)> = Vec::new();
    for Pending { drafts, actor, event_id } in pending {
        let wanted = drafts.into_iter().filter(|d| {
            !blocked.contains(&(d.project_id, d.recipient)) && !off.contains(&(d.recipient, Channel::InApp, d.kind))
        });
        batch.extend(wanted.map(|draft| {
            let notification = Notification {
                id: Uuid::now_v7(),
                seq: 0,
                draft,
                actor_id: actor,
                created_at: now,
                seen_at: None,
                read_at: None,
                archived_at: None,
            };
            (event_id, notification)
        }));
    }
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    tx.insert(&mut batch).await?;
    let notifications: Vec<Notification> = batch.into_iter().map(|(_, n)| n).collect();
    if let Some(window) = settings.email_window {
        let mut mails: Vec<Queued<'_>> = notifications
            .iter()
            .filter(|n| !off.contains(&(n.draft.recipient, Channel::Email, n.draft.kind)))
            .map(|n| Queued { notification: n, key: email::coalesce_key(&n.draft), closes_at: now + window })
            .collect();
        if !mails.is_empty() {
            // Those on a daily digest (or no mail) hear of it there (or not at all).
            let mut recipients: Vec<Uuid> = mails.iter().map(|m| m.notification.draft.recipient).collect();
            recipients.sort_unstable();
            recipients.dedup();
            let held = tx.mail_held(&recipients).await?;
            mails.retain(|m| !held.contains(&m.notification.draft.recipient));
        }
        if !mails.is_empty() {
            tx.queue_emails(&mails).await?;
        }
    }
    if settings.push {
        let pushes: Vec<&Notification> =
            notifications.iter().filter(|n| !off.contains(&(n.draft.recipient, Channel::Push, n.draft.kind))).collect();
        if !pushes.is_empty() {
            tx.queue_pushes(&pushes, now).await?;
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
    let mut pending = Vec::with_capacity(due.len());
    for task in &due {
        // Past its due date by now (an outage longer than the lead): overdue, no longer due soon.
        let Some(due_at) = task.due_at.filter(|at| *at > now) else { continue };
        let event = Event::TaskDueSoon { task: task.task.clone(), assignees: task.assignees.clone(), due_at };
        pending.push(Pending { drafts: drafts(&event, None, &[]), actor: None, event_id: Uuid::now_v7() });
    }
    let stored = notify(tx, pending, now, settings).await?;
    announce(tx, &stored).await?;
    Ok(due.len())
}

/// Tells the owners and admins of `project_id` that the service turned its webhook to `url` off
/// (`gone`: it answered 410; else it failed for days), in `tx`, which turns it off; the
/// notifications stored.
///
/// # Errors
///
/// What the store answers.
pub async fn webhook_disabled(
    tx: &mut dyn IngestTx,
    project_id: Uuid,
    url: &str,
    gone: bool,
    now: OffsetDateTime,
    settings: IngestSettings,
) -> Result<usize> {
    let managers = tx.managers(project_id).await?;
    let event = Event::WebhookDisabled { project_id, url: url.to_owned(), gone, managers };
    let pending = vec![Pending { drafts: drafts(&event, None, &[]), actor: None, event_id: Uuid::now_v7() }];
    let stored = notify(tx, pending, now, settings).await?;
    announce(tx, &stored).await?;
    Ok(stored.len())
}
