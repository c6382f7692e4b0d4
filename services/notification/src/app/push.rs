//! Web Push: a user's subscriptions ([`PushService`]) and the sending of the messages queued for
//! them with each notification ([`PushSender`]). A subscription the push service says is gone
//! (404 or 410) is removed with its queued messages.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ordo_error::FieldViolation;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppError, Result};

/// The most subscriptions one user has (browsers and apps).
pub const MAX_SUBSCRIPTIONS_PER_USER: u64 = 10;

/// A subscription as a browser gives it: the push service URL and the keys, base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl std::fmt::Debug for PushTarget {
    /// The authentication secret is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTarget").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// A stored subscription, as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    pub id: Uuid,
    pub endpoint: String,
    pub created_at: OffsetDateTime,
}

/// The subscriptions of users.
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Stores `target` for `user_id` as `id` (or replaces the keys of the subscription with its
    /// endpoint, keeping that one's id); `None` when that would give the user more than `max`.
    async fn subscribe(
        &self,
        user_id: Uuid,
        id: Uuid,
        target: &PushTarget,
        now: OffsetDateTime,
        max: u64,
    ) -> Result<Option<PushSubscription>>;
    /// Removes `user_id`'s subscription with `endpoint` and its queued messages; `false` if none.
    async fn unsubscribe(&self, user_id: Uuid, endpoint: &str) -> Result<bool>;
}

/// How one message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// Accepted by the push service.
    Delivered,
    /// The subscription is no more (404, 410): remove it.
    Gone,
    /// Worth another try, after the wait the push service asked for if any.
    Retry(Option<Duration>),
    /// Refused for good; why.
    Rejected(String),
}

/// The push channel of this deployment: its key, which subscriptions it can send to, and sending.
#[async_trait]
pub trait PushChannel: Send + Sync + 'static {
    /// The application server (VAPID) public key, base64url.
    fn public_key(&self) -> String;
    /// Whether messages can be sent to `target`; the field at fault when not.
    fn check(&self, target: &PushTarget) -> std::result::Result<(), FieldViolation>;
    /// Sends `payload` to `target`.
    async fn send(&self, target: &PushTarget, payload: &[u8]) -> PushResult;
}

/// A user's push subscriptions.
#[derive(Clone)]
pub struct PushService {
    store: Arc<dyn PushStore>,
    channel: Option<Arc<dyn PushChannel>>,
}

impl std::fmt::Debug for PushService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushService").field("enabled", &self.channel.is_some()).finish_non_exhaustive()
    }
}

fn push_off() -> AppError {
    AppError::Conflict("this deployment sends no push messages".into())
}

impl PushService {
    /// Subscriptions in `store`, sent to through `channel` (`None`: push is off here).
    pub fn new(store: Arc<dyn PushStore>, channel: Option<Arc<dyn PushChannel>>) -> Self {
        Self { store, channel }
    }

    /// The key browsers subscribe with.
    ///
    /// # Errors
    ///
    /// `Conflict` when push is off.
    pub fn public_key(&self) -> Result<String> {
        self.channel.as_ref().map(|channel| channel.public_key()).ok_or_else(push_off)
    }

    /// Registers `target` for `user_id`.
    ///
    /// # Errors
    ///
    /// `Conflict` when push is off or the user has [`MAX_SUBSCRIPTIONS_PER_USER`]; `Invalid` naming
    /// the field that cannot be sent to.
    pub async fn subscribe(&self, user_id: Uuid, target: PushTarget, now: OffsetDateTime) -> Result<PushSubscription> {
        let channel = self.channel.as_ref().ok_or_else(push_off)?;
        if !target.endpoint.is_ascii() {
            // Browsers give endpoints as serialised URLs (ASCII); one that is not is refused rather
            // than stored in another form than the one its browser will unsubscribe with.
            return Err(AppError::Invalid(vec![FieldViolation::new("endpoint", "a push endpoint is an ASCII URL")]));
        }
        channel.check(&target).map_err(|violation| AppError::Invalid(vec![violation]))?;
        self.store.subscribe(user_id, Uuid::now_v7(), &target, now, MAX_SUBSCRIPTIONS_PER_USER).await?.ok_or_else(
            || AppError::Conflict(format!("a user has at most {MAX_SUBSCRIPTIONS_PER_USER} push subscriptions").into()),
        )
    }

    /// Removes `user_id`'s subscription with `endpoint`.
    ///
    /// # Errors
    ///
    /// `NotFound` when they have none.
    pub async fn unsubscribe(&self, user_id: Uuid, endpoint: &str) -> Result<()> {
        if self.store.unsubscribe(user_id, endpoint).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("no such push subscription".into()))
        }
    }
}

/// A queued message, claimed for sending.
#[derive(Debug, Clone)]
pub struct QueuedPush {
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub target: PushTarget,
    pub payload: String,
    /// Tries made before this one.
    pub attempts: u32,
}

/// The queue of push messages.
#[async_trait]
pub trait PushQueue: Send + Sync + 'static {
    /// Claims up to `limit` messages due at `now` until `now + lease`.
    async fn claim(&self, now: OffsetDateTime, lease: Duration, limit: u32) -> Result<Vec<QueuedPush>>;
    /// The message is done with (delivered, or refused for good).
    async fn finish(&self, id: Uuid) -> Result<()>;
    /// The subscription is gone: removes it and its messages.
    async fn forget(&self, subscription_id: Uuid) -> Result<()>;
    /// Tries the message again at `at`.
    async fn retry(&self, id: Uuid, attempts: u32, at: OffsetDateTime) -> Result<()>;
}

/// The most tries of one message.
const MAX_ATTEMPTS: u32 = 5;
/// The first wait before another try; doubled each time.
const BASE_WAIT: Duration = Duration::from_secs(10);
/// How long a claim lasts: longer than a batch's sending.
const LEASE: Duration = Duration::from_secs(60);
/// Messages claimed at once.
const BATCH: u32 = 64;

/// Sends the queued messages.
#[derive(Clone)]
pub struct PushSender {
    queue: Arc<dyn PushQueue>,
    channel: Arc<dyn PushChannel>,
}

impl std::fmt::Debug for PushSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSender").finish_non_exhaustive()
    }
}

impl PushSender {
    /// Sends what `queue` holds through `channel`.
    pub fn new(queue: Arc<dyn PushQueue>, channel: Arc<dyn PushChannel>) -> Self {
        Self { queue, channel }
    }

    /// Sends the messages due at `now` (a batch, a few at once); whether the batch was full (more
    /// may be due).
    ///
    /// # Errors
    ///
    /// What the queue answers when claiming.
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<bool> {
        let claimed = self.queue.claim(now, LEASE, BATCH).await?;
        let full = claimed.len() == BATCH as usize;
        futures::future::join_all(claimed.into_iter().map(|message| self.send_one(message))).await;
        Ok(full)
    }

    async fn send_one(&self, message: QueuedPush) {
        let result = self.channel.send(&message.target, message.payload.as_bytes()).await;
        let outcome = match &result {
            PushResult::Delivered => "delivered",
            PushResult::Gone => "gone",
            PushResult::Retry(_) => "retry",
            PushResult::Rejected(_) => "rejected",
        };
        metrics::counter!("ordo_push_messages_total", "outcome" => outcome).increment(1);
        let stored = match result {
            PushResult::Delivered => self.queue.finish(message.id).await,
            PushResult::Gone => self.queue.forget(message.subscription_id).await,
            PushResult::Rejected(why) => {
                tracing::warn!(subscription_id = %message.subscription_id, %why, "a push message was refused");
                self.queue.finish(message.id).await
            }
            PushResult::Retry(after) => {
                let attempts = message.attempts.saturating_add(1);
                if attempts >= MAX_ATTEMPTS {
                    tracing::warn!(subscription_id = %message.subscription_id, "a push message ran out of tries");
                    self.queue.finish(message.id).await
                } else {
                    let backoff = BASE_WAIT.saturating_mul(1 << attempts.min(10));
                    let wait = after.map_or(backoff, |after| after.max(backoff));
                    self.queue.retry(message.id, attempts, OffsetDateTime::now_utc() + wait).await
                }
            }
        };
        if let Err(error) = stored {
            // The claim runs out and the message is tried again: at least once.
            tracing::warn!(%error, id = %message.id, "storing a push outcome failed");
        }
    }
}
