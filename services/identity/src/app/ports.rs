//! What the use cases need from the outside world, as traits. Writes go through a unit of work
//! ([`IdentityTx`]) so the change and its events commit together (the outbox pattern).

use async_trait::async_trait;
use ordo_auth::SigningKey;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ClientInfo, Result};
use crate::domain::{Email, IdentityEvent, RevokeReason, User};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (`sid`).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Sliding expiry.
    pub expires_at: OffsetDateTime,
    /// Set once revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A refresh token as stored, with its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// The session it belongs to.
    pub session: SessionRecord,
    /// The token's own expiry.
    pub expires_at: OffsetDateTime,
    /// Set when exchanged.
    pub spent_at: Option<OffsetDateTime>,
}

/// Opens units of work and answers read-only queries.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Begins a unit of work.
    async fn begin(&self) -> Result<Box<dyn IdentityTx>>;
    /// A user by id, possibly from a cache that is invalidated before every write commits. A cached
    /// user carries no password hash (an empty one, which verifies nothing): where the hash matters
    /// use [`IdentityStore::user_with_credentials`].
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>>;
    /// A user by id from the database, password hash included.
    async fn user_with_credentials(&self, id: Uuid) -> Result<Option<User>>;
    /// A user by normalised email.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>>;
    /// Users ordered by id after `after`, optionally matching `query` in email or display name.
    async fn list_users(&self, query: Option<&str>, after: Option<Uuid>, limit: u32) -> Result<Vec<User>>;
    /// A session by id.
    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>>;
}

/// One transaction: changes and their events commit together or not at all. Dropping it without
/// [`IdentityTx::commit`] rolls back.
#[async_trait]
pub trait IdentityTx: Send {
    /// Claims the first-account slot; `true` means this registration is the first ever.
    async fn claim_first_account(&mut self, user_id: Uuid) -> Result<bool>;
    /// Inserts a new user; `EmailTaken` if the email exists.
    async fn insert_user(&mut self, user: &User) -> Result<()>;
    /// A user by id, locked for update.
    async fn user_for_update(&mut self, id: Uuid) -> Result<Option<User>>;
    /// Writes a changed user whose stored version is `previous_version`; `VersionMismatch` otherwise.
    async fn update_user(&mut self, user: &User, previous_version: i64) -> Result<()>;
    /// Inserts a session.
    async fn insert_session(&mut self, session: &SessionRecord, client: &ClientInfo) -> Result<()>;
    /// Moves a session's expiry.
    async fn extend_session(&mut self, id: Uuid, expires_at: OffsetDateTime) -> Result<()>;
    /// Inserts a refresh token.
    async fn insert_refresh_token(
        &mut self,
        token_hash: [u8; 32],
        session_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// A refresh token and its session, both locked for update.
    async fn refresh_token_for_update(&mut self, token_hash: [u8; 32]) -> Result<Option<RefreshRecord>>;
    /// Marks a refresh token spent.
    async fn spend_refresh_token(&mut self, token_hash: [u8; 32], now: OffsetDateTime) -> Result<()>;
    /// Revokes one session if it is live; `true` if it was.
    async fn revoke_session(&mut self, id: Uuid, reason: RevokeReason, now: OffsetDateTime) -> Result<bool>;
    /// Revokes every live session of a user except `keep`; returns the revoked ids.
    async fn revoke_user_sessions(
        &mut self,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> Result<Vec<Uuid>>;
    /// Appends an event to the outbox.
    async fn record(&mut self, event: &IdentityEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()>;
    /// Commits and wakes the outbox relay.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// The fast, shared view of session liveness that the gateway reads.
#[async_trait]
pub trait SessionCache: Send + Sync + 'static {
    /// Marks a session live until `ttl_secs` from now, unless it is marked revoked: a revocation is
    /// never undone. `false` when a revocation marker was found (and kept).
    async fn mark_active(&self, session_id: Uuid, ttl_secs: u64) -> Result<bool>;
    /// Marks sessions revoked.
    async fn mark_revoked(&self, session_ids: &[Uuid]) -> Result<()>;
}

/// The verdict on one password attempt, counted before the password is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Within the budget: verify the password.
    Allowed,
    /// Past the budget: refuse without verifying, for this many seconds more.
    LockedOut {
        /// Seconds until the window passes.
        retry_after_secs: u64,
        /// Whether this attempt is the first past the budget: a lockout starts with it.
        starts_now: bool,
    },
}

/// Counts password attempts per email across every instance.
#[async_trait]
pub trait LoginThrottle: Send + Sync + 'static {
    /// Counts one attempt for `email` and says whether its password may be verified. Counting and
    /// deciding are one atomic step, so concurrent attempts can never all pass a check made before
    /// any of them was counted. An error means the attempt could not be counted: refuse it.
    async fn attempt(&self, email: &Email) -> Result<Attempt>;
    /// Forgets the attempts after the right password was given.
    async fn reset(&self, email: &Email) -> Result<()>;
}

/// Hashes and verifies passwords (slow on purpose, so run off the async threads and bounded).
#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a password into a PHC string.
    async fn hash(&self, password: String) -> Result<String>;
    /// Whether `password` matches `hash`.
    async fn verify(&self, password: String, hash: String) -> Result<bool>;
}

/// A signing key as kept: its generation, when it starts to sign, and the key itself.
#[derive(Debug)]
pub struct StoredSigningKey {
    /// 1 for the first key, one more for each rotation.
    pub generation: u32,
    /// When it starts to sign.
    pub activate_at: OffsetDateTime,
    /// The private key (its `kid` included).
    pub key: SigningKey,
}

/// Where the access-token signing keys are kept (the schema, every private key sealed), or the one key
/// the configuration gives.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Every key kept (a bounded number).
    async fn keys(&self) -> Result<Vec<StoredSigningKey>>;
    /// Adds a key; `false` when its generation is taken already (another rotation came first).
    async fn add(&self, generation: u32, activate_at: OffsetDateTime, key: &SigningKey) -> Result<bool>;
    /// Deletes the keys of these generations.
    async fn delete(&self, generations: &[u32]) -> Result<()>;
}
