//! One event in: the directory facts it carries (who is who, who is a member, who is disabled) are
//! recorded, then the rules decide who hears of it, and a notification is stored for each recipient
//! who still has access to the project and has not turned that kind off in the app.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::ports::{IngestTx, Notification};
use crate::domain::{Channel, Event, drafts};

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

/// Records `delivery`'s facts and stores its notifications in `tx`; the notifications stored.
///
/// # Errors
///
/// What the store answers.
pub async fn ingest(tx: &mut dyn IngestTx, delivery: &Delivery, now: OffsetDateTime) -> Result<Vec<Notification>> {
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
    let Some(event) = &delivery.event else { return Ok(Vec::new()) };
    let members = match event {
        Event::TaskCommented { excerpt, .. } if excerpt.contains('@') => tx.members(event.project_id()).await?,
        _ => Vec::new(),
    };
    let mut drafts = drafts(event, delivery.actor, &members);
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let recipients: Vec<Uuid> = drafts.iter().map(|d| d.recipient).collect();
    let blocked = tx.without_access(event.project_id(), &recipients).await?;
    let off = tx.turned_off(&recipients, Channel::InApp).await?;
    drafts.retain(|d| !blocked.contains(&d.recipient) && !off.contains(&(d.recipient, d.kind)));
    let mut notifications: Vec<Notification> = drafts
        .into_iter()
        .map(|draft| Notification {
            id: Uuid::now_v7(),
            seq: 0,
            draft,
            actor_id: delivery.actor,
            created_at: now,
            seen_at: None,
            read_at: None,
            archived_at: None,
        })
        .collect();
    if !notifications.is_empty() {
        tx.insert(&mut notifications, delivery.event_id).await?;
    }
    Ok(notifications)
}
