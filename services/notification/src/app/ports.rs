//! What the use cases need from the outside world, as traits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::Result;
use crate::domain::digest::{DigestContent, DueItem, EmailDelivery};
use crate::domain::email::MailItem;
use crate::domain::reminder::TaskDue;
use crate::domain::{Channel, Draft, Kind, Member};

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its id (UUID v7: the list's order).
    pub id: Uuid,
    /// Its place in its user's sequence, in commit order (the live stream's order); set when stored.
    pub seq: i64,
    /// What it is about, for whom, and how it reads.
    pub draft: Draft,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When its user saw it in the bell.
    pub seen_at: Option<OffsetDateTime>,
    /// When its user read it.
    pub read_at: Option<OffsetDateTime>,
    /// When its user archived it.
    pub archived_at: Option<OffsetDateTime>,
}

/// Which of a user's notifications a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// Whose.
    pub user_id: Uuid,
    /// Only unread ones.
    pub unread_only: bool,
    /// Archived ones instead of the others.
    pub archived: bool,
    /// Resume after (older than) this id.
    pub before: Option<Uuid>,
    /// Rows to return.
    pub limit: u32,
}

/// A user's badge counts, over their notifications that are not archived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Not read yet.
    pub unread: i64,
    /// Not seen in the bell yet.
    pub unseen: i64,
}

/// Per channel, each kind the user turned off or on (kinds absent are on).
pub type Settings = BTreeMap<(Channel, Kind), bool>;

/// A user's notifications and preferences.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// A page of `query.user_id`'s notifications, newest first, and their counts, read in one
    /// snapshot so the page and the counts agree.
    async fn list(&self, query: &ListQuery) -> Result<(Vec<Notification>, Counts)>;
    /// Marks every notification of `user_id` seen.
    async fn mark_seen(&self, user_id: Uuid) -> Result<()>;
    /// Marks one notification of `user_id` read (and seen); `false` if `user_id` has none with `id`.
    async fn mark_read(&self, user_id: Uuid, id: Uuid) -> Result<bool>;
    /// Marks every notification of `user_id` read (and seen).
    async fn mark_all_read(&self, user_id: Uuid) -> Result<()>;
    /// Archives one notification of `user_id` (and marks it read and seen); `false` if it has none
    /// with `id`.
    async fn archive(&self, user_id: Uuid, id: Uuid) -> Result<bool>;
    /// Deletes one notification of `user_id`; `false` if it has none with `id`.
    async fn delete(&self, user_id: Uuid, id: Uuid) -> Result<bool>;
    /// The kinds `user_id` turned off or on.
    async fn settings(&self, user_id: Uuid) -> Result<Settings>;
    /// Stores `changes` to `user_id`'s settings.
    async fn set_settings(&self, user_id: Uuid, changes: &Settings) -> Result<()>;
    /// How `user_id`'s notification mail goes out: the default when they never chose; a time zone
    /// the bundled database no longer names reads as UTC.
    async fn email_delivery(&self, user_id: Uuid) -> Result<EmailDelivery>;
    /// Stores how `user_id`'s notification mail goes out. When it turns daily from another mode, the
    /// first digest covers what happens from `now`; a daily schedule changed keeps what it covers.
    async fn set_email_delivery(&self, user_id: Uuid, delivery: &EmailDelivery, now: OffsetDateTime) -> Result<()>;
    /// `user_id`'s counts.
    async fn counts(&self, user_id: Uuid) -> Result<Counts>;
    /// Up to `limit` of `user_id`'s notifications after `seq` in their sequence, in its order.
    async fn after(&self, user_id: Uuid, seq: i64, limit: u32) -> Result<Vec<Notification>>;
    /// The place of `user_id`'s notification `id` in their sequence, if they have it.
    async fn seq_of(&self, user_id: Uuid, id: Uuid) -> Result<Option<i64>>;
    /// The last place taken in `user_id`'s sequence (0 before the first notification).
    async fn last_seq(&self, user_id: Uuid) -> Result<i64>;
    /// Deletes up to `batch` notifications created before `before`; how many went.
    async fn delete_older_than(&self, before: OffsetDateTime, batch: u32) -> Result<u64>;
}

/// What ingesting one event reads and writes, all inside the consumer's transaction (so the event
/// counts as processed exactly when its notifications are stored); and firing reminders, inside the
/// transaction of their claim.
#[async_trait]
pub trait IngestTx: Send {
    /// Records a user's email and display name (for mentions and email).
    async fn upsert_user(&mut self, user_id: Uuid, email: &str, display_name: &str) -> Result<()>;
    /// Records whether an account is disabled, as of `as_of` (an older fact changes nothing).
    async fn set_user_disabled(&mut self, user_id: Uuid, disabled: bool, as_of: OffsetDateTime) -> Result<()>;
    /// Records that `user_id` is (or is no longer) a member of `project_id`, as of `as_of`.
    async fn set_member(
        &mut self,
        project_id: Uuid,
        user_id: Uuid,
        member: bool,
        manages: bool,
        as_of: OffsetDateTime,
    ) -> Result<()>;
    /// Records that every member of `project_id` lost it.
    async fn project_gone(&mut self, project_id: Uuid, as_of: OffsetDateTime) -> Result<()>;
    /// The known members of `project_id` with their names.
    async fn members(&mut self, project_id: Uuid) -> Result<Vec<Member>>;
    /// The owners and admins of `project_id` whose accounts are enabled, as far as known.
    async fn managers(&mut self, project_id: Uuid) -> Result<Vec<Uuid>>;
    /// Those of the `(project, user)` pairs whose user is known to have no access to the project:
    /// removed from it, or disabled.
    async fn without_access(&mut self, pairs: &[(Uuid, Uuid)]) -> Result<HashSet<(Uuid, Uuid)>>;
    /// The (user, channel, kind) triples among `users` turned off.
    async fn turned_off(&mut self, users: &[Uuid]) -> Result<HashSet<(Uuid, Channel, Kind)>>;
    /// Stores notifications, each with the id of the event it tells of, at the next places of its
    /// user's sequence in the order given (set in each notification).
    async fn insert(&mut self, notifications: &mut [(Uuid, Notification)]) -> Result<()>;
    /// Wakes the live streams of `users` on every instance once the transaction commits.
    async fn announce(&mut self, users: &[Uuid]) -> Result<()>;
    /// The version recorded of each of `task_ids` and the due date its assignees were last
    /// reminded of, locked until commit; tasks not known yet are absent.
    async fn due_states(&mut self, task_ids: &[Uuid]) -> Result<HashMap<Uuid, DueState>>;
    /// Records each task as its latest event showed it, with the time its reminder fires (`None`:
    /// none); a task recorded meanwhile at a newer version is left as it is.
    async fn save_dues(&mut self, dues: &[(&TaskDue, Option<OffsetDateTime>)]) -> Result<()>;
    /// Records that tasks were deleted: no reminder, and no late event of theirs arms one again.
    async fn tasks_deleted(&mut self, task_ids: &[Uuid]) -> Result<()>;
    /// Claims up to `limit` reminders due at `now`, skipping those another instance holds, and
    /// records their due dates as reminded of.
    async fn claim_reminders(&mut self, now: OffsetDateTime, limit: u32) -> Result<Vec<TaskDue>>;
    /// Those of `users` whose notification mail does not go out at once (a daily digest, or none).
    async fn mail_held(&mut self, users: &[Uuid]) -> Result<HashSet<Uuid>>;
    /// Adds each notification to its recipient's open mail about its key, opening one that closes
    /// at the time given when none is open.
    async fn queue_emails(&mut self, mails: &[Queued<'_>]) -> Result<()>;
    /// Queues each of `notifications` for every push subscription of its user, due at `now`.
    async fn queue_pushes(&mut self, notifications: &[&Notification], now: OffsetDateTime) -> Result<()>;
}

/// What is recorded of a task for its reminder: the version of its latest event, and the due date
/// its assignees were last reminded of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueState {
    /// The version of the task's latest event recorded.
    pub version: i64,
    /// The due date last reminded of.
    pub reminded: Option<OffsetDateTime>,
}

/// A notification on its way to its recipient's mail.
#[derive(Debug, Clone, Copy)]
pub struct Queued<'a> {
    /// The notification.
    pub notification: &'a Notification,
    /// The mail it joins: the open one of its recipient with this key.
    pub key: Uuid,
    /// When a mail opened for it closes.
    pub closes_at: OffsetDateTime,
}

/// A mail claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Its id.
    pub id: Uuid,
    /// The recipient's address; `None` when it is not known or the account is disabled.
    pub to: Option<String>,
    /// The recipient's display name.
    pub to_name: String,
    /// What it lists, oldest first.
    pub items: Vec<MailItem>,
    /// Notifications of its window past the most a mail lists.
    pub more: u32,
    /// Tries so far, this one included.
    pub attempts: u32,
    /// What a daily digest lists beside its notifications; `None` for the mail of a window.
    pub digest: Option<DigestPart>,
}

/// The part of a digest mail that is not a list of notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPart {
    /// The local day it is for.
    pub day: Date,
    /// When it was composed.
    pub composed_at: OffsetDateTime,
    /// The recipient's time zone (the due dates read in it).
    pub time_zone: String,
    /// The recipient's open tasks due that day or overdue, soonest first.
    pub tasks: Vec<DueItem>,
    /// Tasks past the most a digest lists.
    pub more_tasks: u32,
}

/// A daily schedule whose digest is due, claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDigest {
    /// Whose.
    pub user_id: Uuid,
    /// The hour as stored.
    pub hour: u8,
    /// The time zone as stored.
    pub time_zone: String,
    /// When it was due.
    pub due_at: OffsetDateTime,
    /// Where its notifications start; `None` when not recorded (they start a day before `due_at`).
    pub since: Option<OffsetDateTime>,
}

/// What composing daily digests reads and writes, all inside the transaction of their claim: a
/// digest is recorded, its mail queued and its schedule moved on together, or not at all.
#[async_trait]
pub trait DigestTx: Send {
    /// Claims up to `limit` daily schedules due at `now`, skipping those another instance holds.
    async fn claim_digests(&mut self, now: OffsetDateTime, limit: u32) -> Result<Vec<DueDigest>>;
    /// Records that `user_id`'s digest of local day `day` is made; `false` when one was already.
    async fn record_digest(&mut self, user_id: Uuid, day: Date, now: OffsetDateTime) -> Result<bool>;
    /// What `user_id`'s digest lists: their notifications from `since` until `until` still unread
    /// and not archived, of the kinds they did not turn off by email, oldest first; their open tasks
    /// due before `due_before`, soonest first, in projects they have not left; at most `limit` of
    /// each, the rest counted.
    async fn digest_content(
        &mut self,
        user_id: Uuid,
        since: OffsetDateTime,
        until: OffsetDateTime,
        due_before: OffsetDateTime,
        limit: u32,
    ) -> Result<DigestContent>;
    /// Queues `content` as `user_id`'s digest mail of `day`, due at `now`.
    async fn queue_digest(
        &mut self,
        user_id: Uuid,
        day: Date,
        content: &DigestContent,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Moves `user_id`'s schedule on: the next digest due at `next` (`None`: no more), covering
    /// notifications from `since` (`None`: where it stands).
    async fn reschedule(
        &mut self,
        user_id: Uuid,
        next: Option<OffsetDateTime>,
        since: Option<OffsetDateTime>,
    ) -> Result<()>;
}

/// How a try to send a mail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SES accepted it.
    Sent {
        /// SES's id of the message.
        message_id: String,
    },
    /// SES answered "not now"; tried again at `at`.
    Retry {
        /// When.
        at: OffsetDateTime,
        /// What SES answered.
        error: String,
    },
    /// Refused for good, or out of attempts: never tried again.
    Failed {
        /// Why.
        error: String,
    },
    /// No answer came (a timeout, a broken connection): SES may have accepted it, so it is never
    /// sent again.
    Unknown {
        /// What happened.
        error: String,
    },
}

/// The mails waiting to be sent.
#[async_trait]
pub trait EmailStore: Send + Sync + 'static {
    /// Claims up to `limit` mails due by `now` (their window closed, or their retry time come) for
    /// `lease`: no other sender takes them meanwhile, and no notification joins them any more.
    async fn claim(&self, now: OffsetDateTime, lease: Duration, limit: u32) -> Result<Vec<Mail>>;
    /// Records how the try of claimed mail `id` ended.
    async fn record(&self, id: Uuid, outcome: &Outcome, now: OffsetDateTime) -> Result<()>;
    /// Marks mails whose claim ran out (their sender died) `unknown`; how many.
    async fn abandon_expired_claims(&self, now: OffsetDateTime) -> Result<u64>;
    /// Deletes up to `batch` mails created before `before` that are done with (sent, failed,
    /// unknown), with their items; how many went.
    async fn delete_finished_before(&self, before: OffsetDateTime, batch: u32) -> Result<u64>;
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// SES answered that it did not take it now (throttling, a 5xx), or could not be reached.
    #[error("not accepted now: {0}")]
    Retry(String),
    /// SES refused it for good (an address it rejects, a sender not verified).
    #[error("refused: {0}")]
    Rejected(String),
    /// No answer came: SES may have accepted it.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// Sends mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail` to `to`; SES's message id.
    async fn send(&self, to: &str, mail: &Mail) -> std::result::Result<String, SendError>;
}

/// Whether a session is still live (not logged out, not revoked, its account not disabled).
#[async_trait]
pub trait SessionCheck: Send + Sync + 'static {
    /// `false` once session `session_id` has ended.
    async fn is_live(&self, session_id: Uuid) -> Result<bool>;
}
