//! A user's requests about their own notifications and preferences. Every call acts for the caller
//! alone: another user's notification is "not found", exactly like one that does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use ordo_error::{FieldViolation, Violations};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::cursor::{self, NotificationCursor};
use super::live::LiveHub;
use super::ports::{Counts, ListQuery, Notification, NotificationStore, SessionCheck, Settings};
use super::stream::StreamItem;
use super::{AppError, Result};
use crate::domain::digest::{EmailDelivery, EmailMode, Schedule, ScheduleError};
use crate::domain::{Channel, Kind};

/// A page of notifications with the user's counts.
#[derive(Debug, Clone)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<Notification>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
    /// The badge counts, of the same snapshot.
    pub counts: Counts,
}

/// A user's delivery preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Per channel, every kind: on unless turned off.
    pub kinds: Settings,
    /// How their notification mail goes out.
    pub email_delivery: EmailDelivery,
}

/// Changes to a user's preferences, as the request names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreferencesUpdate {
    /// Kinds turned on or off in the app, by name.
    pub in_app: HashMap<String, bool>,
    /// By email.
    pub email: HashMap<String, bool>,
    /// By Web Push.
    pub push: HashMap<String, bool>,
    /// How their mail goes out; `None` changes nothing.
    pub email_delivery: Option<DeliveryChange>,
}

/// Changes to how a user's notification mail goes out; each `None` keeps its setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryChange {
    /// `immediate`, `daily` or `off`.
    pub mode: Option<String>,
    /// The digest's hour, 0 to 23.
    pub hour: Option<u32>,
    /// The digest's IANA time zone.
    pub time_zone: Option<String>,
}

/// The use cases of a user's notifications.
#[derive(Clone)]
pub struct NotificationService {
    store: Arc<dyn NotificationStore>,
    live: Arc<LiveHub>,
    sessions: Arc<dyn SessionCheck>,
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationService").finish_non_exhaustive()
    }
}

/// The most preference entries one update may carry per channel (there are fewer kinds).
pub const MAX_PREFERENCE_ENTRIES: usize = 32;

fn not_found() -> AppError {
    AppError::NotFound("no such notification".into())
}

fn id(raw: &str) -> Result<Uuid> {
    // Not even a UUID: no notification of anyone's has it.
    Uuid::parse_str(raw).map_err(|_| not_found())
}

impl NotificationService {
    /// The use cases over `store`, with the live streams of `live`, which end with their session
    /// as `sessions` tells.
    pub fn new(store: Arc<dyn NotificationStore>, live: Arc<LiveHub>, sessions: Arc<dyn SessionCheck>) -> Self {
        Self { store, live, sessions }
    }

    /// The live stream of `user_id` in session `session_id` (see the `stream` module), resuming
    /// after notification `last_event_id` when they have it; it ends soon after the session does.
    ///
    /// # Errors
    ///
    /// `Exhausted` past the per-user limit of open streams; what the store answers.
    pub async fn stream(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        last_event_id: &str,
    ) -> Result<mpsc::Receiver<Result<StreamItem>>> {
        let owner = super::stream::Owner { user_id, session_id, sessions: self.sessions.clone() };
        super::stream::open(self.store.clone(), &self.live, owner, last_event_id).await
    }

    /// Tells `user_id`'s streams on this instance that their counts may have changed.
    fn counts_changed(&self, user_id: Uuid) {
        self.live.wake(&[user_id]);
    }

    /// A page of `user_id`'s notifications, newest first.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad limit, `BadRequest` for a bad cursor, or what the store answers.
    pub async fn list(
        &self,
        user_id: Uuid,
        unread_only: bool,
        archived: bool,
        limit: i32,
        cursor: &str,
    ) -> Result<NotificationPage> {
        let limit = ordo_page::limit(limit)?;
        let before = cursor::decode(cursor)?.map(|c| c.before);
        // One more than asked for tells whether another page follows.
        let query = ListQuery { user_id, unread_only, archived, before, limit: limit + 1 };
        let (mut notifications, counts) = self.store.list(&query).await?;
        let next_cursor = if notifications.len() > limit as usize {
            notifications.truncate(limit as usize);
            notifications.last().map(|last| cursor::encode(&NotificationCursor { before: last.id }))
        } else {
            None
        };
        Ok(NotificationPage { notifications, next_cursor, counts })
    }

    /// The bell was opened.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn mark_seen(&self, user_id: Uuid) -> Result<()> {
        self.store.mark_seen(user_id).await?;
        self.counts_changed(user_id);
        Ok(())
    }

    /// Marks one notification read.
    ///
    /// # Errors
    ///
    /// `NotFound` unless `user_id` has a notification `id`.
    pub async fn mark_read(&self, user_id: Uuid, id_: &str) -> Result<()> {
        if !self.store.mark_read(user_id, id(id_)?).await? {
            return Err(not_found());
        }
        self.counts_changed(user_id);
        Ok(())
    }

    /// Marks every notification read.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn mark_all_read(&self, user_id: Uuid) -> Result<()> {
        self.store.mark_all_read(user_id).await?;
        self.counts_changed(user_id);
        Ok(())
    }

    /// Archives one notification.
    ///
    /// # Errors
    ///
    /// `NotFound` unless `user_id` has a notification `id`.
    pub async fn archive(&self, user_id: Uuid, id_: &str) -> Result<()> {
        if !self.store.archive(user_id, id(id_)?).await? {
            return Err(not_found());
        }
        self.counts_changed(user_id);
        Ok(())
    }

    /// Deletes one notification.
    ///
    /// # Errors
    ///
    /// `NotFound` unless `user_id` has a notification `id`.
    pub async fn delete(&self, user_id: Uuid, id_: &str) -> Result<()> {
        if !self.store.delete(user_id, id(id_)?).await? {
            return Err(not_found());
        }
        self.counts_changed(user_id);
        Ok(())
    }

    /// Every kind on every channel, on unless `user_id` turned it off, and how their mail goes out.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn preferences(&self, user_id: Uuid) -> Result<Preferences> {
        let stored = self.store.settings(user_id).await?;
        let kinds = Channel::ALL
            .into_iter()
            .flat_map(|channel| Kind::ALL.into_iter().map(move |kind| (channel, kind)))
            .map(|key| (key, stored.get(&key).copied().unwrap_or(true)))
            .collect();
        let email_delivery = self.store.email_delivery(user_id).await?;
        Ok(Preferences { kinds, email_delivery })
    }

    /// Sets the kinds named in `update`'s `in_app`, `email` and `push` (by their API names), and the
    /// email delivery fields it gives; the rest keeps its setting. The next event reads the new
    /// setting; a daily digest chosen now first covers what happens from `now`.
    ///
    /// # Errors
    ///
    /// `Invalid` naming each unknown kind (`in_app.<name>`), too many entries, an unknown mode, an
    /// hour past 23 or an unknown time zone (`email_delivery.<field>`); what the store answers.
    pub async fn update_preferences(
        &self,
        user_id: Uuid,
        update: &PreferencesUpdate,
        now: OffsetDateTime,
    ) -> Result<Preferences> {
        let mut violations = Violations::default();
        let mut changes = Settings::new();
        for (channel, entries) in
            [(Channel::InApp, &update.in_app), (Channel::Email, &update.email), (Channel::Push, &update.push)]
        {
            if entries.len() > MAX_PREFERENCE_ENTRIES {
                let message = format!("at most {MAX_PREFERENCE_ENTRIES} entries");
                violations.push(FieldViolation::new(channel.as_str(), message));
                continue;
            }
            for (name, on) in entries {
                match Kind::parse(name) {
                    Ok(kind) => {
                        changes.insert((channel, kind), *on);
                    }
                    Err(_) => violations.push(FieldViolation::new(
                        format!("{}.{}", channel.as_str(), clip_name(name)),
                        "is not a kind of notification",
                    )),
                }
            }
        }
        let delivery = match &update.email_delivery {
            Some(change) => {
                let current = self.store.email_delivery(user_id).await?;
                delivery_after(current, change, now, &mut violations)
            }
            None => None,
        };
        violations.into_result()?;
        if !changes.is_empty() {
            self.store.set_settings(user_id, &changes).await?;
        }
        if let Some(delivery) = delivery {
            self.store.set_email_delivery(user_id, &delivery, now).await?;
        }
        self.preferences(user_id).await
    }

    /// Deletes notifications created before `now - retention`, `batch` at a time, until none is
    /// left; how many went.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn delete_expired(&self, now: OffsetDateTime, retention: time::Duration, batch: u32) -> Result<u64> {
        let before = now - retention;
        let mut total = 0;
        loop {
            let deleted = self.store.delete_older_than(before, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}

/// `current` with `change` applied, its next digest due after `now`; `None` with each field that
/// is wrong in `violations`.
fn delivery_after(
    current: EmailDelivery,
    change: &DeliveryChange,
    now: OffsetDateTime,
    violations: &mut Violations,
) -> Option<EmailDelivery> {
    let field = |name: &str| format!("email_delivery.{name}");
    let mode = match change.mode.as_deref() {
        None => Some(current.mode),
        Some(name) => EmailMode::parse(name).or_else(|| {
            violations.push(FieldViolation::new(field("mode"), "must be one of immediate, daily, off"));
            None
        }),
    };
    let hour = match change.hour {
        None => Some(current.schedule.hour()),
        Some(hour) => u8::try_from(hour).ok().filter(|hour| *hour <= 23).or_else(|| {
            violations.push(FieldViolation::new(field("hour"), ScheduleError::Hour.to_string()));
            None
        }),
    };
    let time_zone = change.time_zone.as_deref().unwrap_or(current.schedule.time_zone());
    // The zone is checked even beside a wrong hour, so one answer names both.
    let schedule = match Schedule::new(hour.unwrap_or(0), time_zone) {
        Ok(schedule) => hour.map(|_| schedule),
        Err(error) => {
            violations.push(FieldViolation::new(field("time_zone"), error.to_string()));
            None
        }
    };
    Some(EmailDelivery::new(mode?, schedule?, now))
}

/// A name echoed in an error, cut so an attacker's megabyte key is not echoed back whole.
fn clip_name(name: &str) -> String {
    name.chars().take(64).collect()
}
