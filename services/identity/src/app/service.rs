//! The use cases: register, login, refresh, logout, account management and session checks.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_auth::Caller;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::ports::{Attempt, IdentityStore, LoginThrottle, PasswordHasher, SessionCache, SessionRecord};
use super::{AppError, Result, SigningKeys};
use crate::domain::{DisplayName, Email, IdentityEvent, PlainPassword, RevokeReason, Role, User, Violations};

/// Where a request came from, as the gateway saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// Tunables of the use cases.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// Refresh token and session lifetime.
    pub refresh_ttl: Duration,
}

/// A new token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// Signed access token.
    pub access_token: String,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Access token lifetime, seconds.
    pub expires_in: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_expires_in: i64,
}

/// What a caller may see of a user.
#[derive(Debug, Clone)]
pub enum UserView {
    /// Self or admin: everything but the password hash.
    Full(User),
    /// Anyone else: id and display name.
    Profile {
        /// The user id.
        id: Uuid,
        /// The display name.
        display_name: String,
    },
}

/// One page of users.
#[derive(Debug, Clone)]
pub struct ListUsersPage {
    /// The users on this page.
    pub users: Vec<User>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// An admin's change to a user.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New role.
    pub role: Option<Role>,
    /// New disabled flag.
    pub disabled: Option<bool>,
    /// Apply only at this version.
    pub expected_version: Option<i64>,
}

/// Identity's use cases over its ports.
#[derive(Clone)]
pub struct IdentityService {
    store: Arc<dyn IdentityStore>,
    sessions: Arc<dyn SessionCache>,
    throttle: Arc<dyn LoginThrottle>,
    hasher: Arc<dyn PasswordHasher>,
    keys: SigningKeys,
    settings: IdentitySettings,
    /// A hash verified when the email is unknown, so both failures take the same time.
    decoy_hash: Arc<str>,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Logins by outcome: `success`, `invalid_credentials`, `locked` or `disabled`.
const LOGINS_TOTAL: &str = "ordo_identity_logins_total";
/// Lockouts begun: an email's first attempt past its budget, at login or password change.
const LOCKOUTS_TOTAL: &str = "ordo_identity_lockouts_total";
/// Every outcome of [`LOGINS_TOTAL`].
const LOGIN_OUTCOMES: [&str; 4] = ["success", "invalid_credentials", "locked", "disabled"];

/// Describes the login metrics and exports each series at zero, so rates and alerts see them before
/// the first login.
pub fn describe_metrics() {
    metrics::describe_counter!(LOGINS_TOTAL, "Logins by outcome (success, invalid_credentials, locked, disabled).");
    metrics::describe_counter!(LOCKOUTS_TOTAL, "Lockouts begun: an email's first password attempt past its budget.");
    for outcome in LOGIN_OUTCOMES {
        metrics::counter!(LOGINS_TOTAL, "outcome" => outcome).increment(0);
    }
    metrics::counter!(LOCKOUTS_TOTAL).increment(0);
}

fn count_login(outcome: &'static str) {
    metrics::counter!(LOGINS_TOTAL, "outcome" => outcome).increment(1);
}

fn count_lockout(starts_now: bool) {
    if starts_now {
        metrics::counter!(LOCKOUTS_TOTAL).increment(1);
    }
}

/// The current time at the precision the database keeps (microseconds), so what a use case returns
/// is exactly what a later read returns.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

/// A new opaque refresh token and its SHA-256.
fn new_refresh_token() -> (String, [u8; 32]) {
    let mut bytes = [0_u8; 32];
    rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

fn hash_refresh_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl IdentityService {
    /// Wires the use cases to their ports. Hashes a decoy password once.
    pub async fn new(
        store: Arc<dyn IdentityStore>,
        sessions: Arc<dyn SessionCache>,
        throttle: Arc<dyn LoginThrottle>,
        hasher: Arc<dyn PasswordHasher>,
        keys: SigningKeys,
        settings: IdentitySettings,
    ) -> Result<Self> {
        let (decoy, _) = new_refresh_token();
        let decoy_hash = hasher.hash(decoy).await?.into();
        Ok(Self { store, sessions, throttle, hasher, keys, settings, decoy_hash })
    }

    /// The public key set of access tokens (every key published now), as JSON.
    pub fn jwks_json(&self) -> Result<String> {
        serde_json::to_string(&self.keys.jwks(now())).map_err(|e| AppError::Internal(e.into()))
    }

    /// Registers an account; the first ever becomes an admin.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, email: &str, password: &str, display_name: &str, client: &ClientInfo) -> Result<User> {
        let mut violations = Violations::default();
        let email = violations.check(Email::parse(email));
        let password = violations.check(PlainPassword::parse(password, "password"));
        let display_name = violations.check(DisplayName::parse(display_name));
        let (Some(email), Some(password), Some(display_name)) = (email, password, display_name) else {
            return Err(AppError::Invalid(violations.0));
        };
        // Fail fast on a taken email before spending a hash; the unique key still decides races.
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(crate::app::email_taken());
        }
        let hash = self.hasher.hash(password.expose().to_owned()).await?;
        let mut user = User::register(email, display_name, hash, now());

        let mut tx = self.store.begin().await?;
        if tx.claim_first_account(user.id).await? {
            user.role = Role::Admin;
        }
        tx.insert_user(&user).await?;
        tx.record(&IdentityEvent::UserRegistered { user: user.clone() }, Some(user.id), client).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "user registered");
        Ok(user)
    }

    /// Checks an email and password and opens a session.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str, client: &ClientInfo) -> Result<TokenPair> {
        // A malformed email cannot belong to anyone: answer like any unknown email.
        let Ok(email) = Email::parse(email) else {
            return Err(AppError::Unauthenticated("invalid email or password".into()));
        };
        // The attempt is counted before the password is verified, known email or not (an unknown one
        // verifies the decoy), so a burst of parallel guesses gets no more verifications than a
        // patient guesser, and the answers do not tell whether the email exists. A right password
        // within the budget logs in and starts the count over; past the budget even the right one
        // waits for the window. If the count cannot be taken (Redis down), nothing is verified.
        if let Attempt::LockedOut { retry_after_secs, starts_now } = self.throttle.attempt(&email).await? {
            count_lockout(starts_now);
            count_login("locked");
            self.record_login_failure(&email, None, "locked_out", client).await?;
            return Err(crate::app::locked_out(retry_after_secs));
        }
        let user = self.store.user_by_email(&email).await?;
        let hash = user.as_ref().map_or_else(|| self.decoy_hash.to_string(), |u| u.password_hash.clone());
        let matches = self.hasher.verify(password.to_owned(), hash).await?;
        let user = match user {
            Some(user) if matches => user,
            other => {
                let user_id = other.map(|u| u.id);
                count_login("invalid_credentials");
                self.record_login_failure(&email, user_id, "bad_credentials", client).await?;
                return Err(AppError::Unauthenticated("invalid email or password".into()));
            }
        };
        if user.disabled {
            count_login("disabled");
            self.record_login_failure(&email, Some(user.id), "disabled", client).await?;
            return Err(AppError::Unauthenticated("invalid email or password".into()));
        }
        self.throttle.reset(&email).await?;

        let now = now();
        let session = SessionRecord {
            id: Uuid::now_v7(),
            user_id: user.id,
            expires_at: now + self.settings.refresh_ttl,
            revoked_at: None,
        };
        let (refresh_token, refresh_hash) = new_refresh_token();
        let mut tx = self.store.begin().await?;
        tx.insert_session(&session, client).await?;
        tx.insert_refresh_token(refresh_hash, session.id, now, session.expires_at).await?;
        tx.record(&IdentityEvent::LoginSucceeded { user_id: user.id, session_id: session.id }, Some(user.id), client)
            .await?;
        tx.commit().await?;
        self.cache_active(session.id).await;
        count_login("success");
        tracing::info!(user_id = %user.id, session_id = %session.id, "login succeeded");
        self.token_pair(&user, session.id, refresh_token, now)
    }

    async fn record_login_failure(
        &self,
        email: &Email,
        user_id: Option<Uuid>,
        reason: &'static str,
        client: &ClientInfo,
    ) -> Result<()> {
        tracing::info!(reason, "login failed");
        let mut tx = self.store.begin().await?;
        tx.record(&IdentityEvent::LoginFailed { email: email.clone(), user_id, reason }, user_id, client).await?;
        tx.commit().await
    }

    /// Spends a refresh token for a new pair; a spent token revokes its whole session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenPair> {
        const REFUSED: AppError = AppError::Unauthenticated(std::borrow::Cow::Borrowed("invalid refresh token"));
        let now = now();
        let hash = hash_refresh_token(refresh_token);
        let mut tx = self.store.begin().await?;
        let Some(record) = tx.refresh_token_for_update(hash).await? else {
            return Err(REFUSED);
        };
        let session = &record.session;
        if record.spent_at.is_some() {
            // Reuse: whoever holds the newer tokens may be a thief, or the victim. End the session.
            if tx.revoke_session(session.id, RevokeReason::RefreshReuse, now).await? {
                let (user_id, session_id) = (session.user_id, session.id);
                tx.record(&IdentityEvent::RefreshReuseDetected { user_id, session_id }, Some(user_id), client).await?;
                let revoked = IdentityEvent::SessionRevoked { user_id, session_id, reason: RevokeReason::RefreshReuse };
                tx.record(&revoked, Some(user_id), client).await?;
                self.sessions.mark_revoked(&[session_id]).await?;
                tx.commit().await?;
                tracing::warn!(%user_id, %session_id, "refresh token reuse detected; session revoked");
            }
            return Err(REFUSED);
        }
        if session.revoked_at.is_some() || record.expires_at <= now || session.expires_at <= now {
            return Err(REFUSED);
        }
        let Some(user) = tx.user_for_update(session.user_id).await? else {
            return Err(REFUSED);
        };
        if user.disabled {
            return Err(REFUSED);
        }
        let (new_token, new_hash) = new_refresh_token();
        let expires_at = now + self.settings.refresh_ttl;
        tx.spend_refresh_token(hash, now).await?;
        tx.insert_refresh_token(new_hash, session.id, now, expires_at).await?;
        tx.extend_session(session.id, expires_at).await?;
        tx.commit().await?;
        self.cache_active(session.id).await;
        self.token_pair(&user, session.id, new_token, now)
    }

    /// Revokes the caller's session. Logging out of a session that is already over is not an error.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn logout(&self, caller: &Caller, client: &ClientInfo) -> Result<()> {
        let (user_id, session_id) = (caller.user_id, caller.session_id);
        let mut tx = self.store.begin().await?;
        if tx.revoke_session(session_id, RevokeReason::Logout, now()).await? {
            let event = IdentityEvent::SessionRevoked { user_id, session_id, reason: RevokeReason::Logout };
            tx.record(&event, Some(user_id), client).await?;
        }
        // Before the commit: if Redis cannot record the revocation, nothing changes (503, retry).
        self.sessions.mark_revoked(&[session_id]).await?;
        tx.commit().await
    }

    /// The caller's own account, if it still exists and is enabled.
    pub async fn me(&self, caller: &Caller) -> Result<User> {
        match self.store.user_by_id(caller.user_id).await? {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(AppError::Unauthenticated("the account no longer exists or is disabled".into())),
        }
    }

    /// Changes the caller's display name.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn update_me(
        &self,
        caller: &Caller,
        display_name: Option<&str>,
        expected_version: Option<i64>,
    ) -> Result<User> {
        let display_name =
            display_name.map(DisplayName::parse).transpose().map_err(|violation| AppError::Invalid(vec![violation]))?;
        let mut tx = self.store.begin().await?;
        let Some(mut user) = tx.user_for_update(caller.user_id).await?.filter(|u| !u.disabled) else {
            return Err(AppError::Unauthenticated("the account no longer exists or is disabled".into()));
        };
        check_version(&user, expected_version)?;
        let Some(display_name) = display_name else {
            return Ok(user);
        };
        if user.display_name == display_name {
            return Ok(user);
        }
        let previous = user.version;
        user.display_name = display_name;
        user.touch(now());
        tx.update_user(&user, previous).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes the caller's password and revokes every other session of theirs.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn change_password(&self, caller: &Caller, current: &str, new: &str, client: &ClientInfo) -> Result<()> {
        let new = PlainPassword::parse(new, "new_password").map_err(|v| AppError::Invalid(vec![v]))?;
        let user = match self.store.user_with_credentials(caller.user_id).await? {
            Some(user) if !user.disabled => user,
            _ => return Err(AppError::Unauthenticated("the account no longer exists or is disabled".into())),
        };
        // Guessing the current password with a stolen access token draws on the same budget as
        // guessing it at login, counted before the check for the same reason (see `login`).
        if let Attempt::LockedOut { retry_after_secs, starts_now } = self.throttle.attempt(&user.email).await? {
            count_lockout(starts_now);
            return Err(crate::app::locked_out(retry_after_secs));
        }
        if !self.hasher.verify(current.to_owned(), user.password_hash.clone()).await? {
            return Err(AppError::field("current_password", "is not the current password"));
        }
        self.throttle.reset(&user.email).await?;
        let hash = self.hasher.hash(new.expose().to_owned()).await?;
        let now = now();
        let mut tx = self.store.begin().await?;
        let Some(mut user) = tx.user_for_update(caller.user_id).await? else {
            return Err(AppError::Unauthenticated("the account no longer exists".into()));
        };
        let previous = user.version;
        user.password_hash = hash;
        user.touch(now);
        tx.update_user(&user, previous).await?;
        let revoked =
            tx.revoke_user_sessions(user.id, Some(caller.session_id), RevokeReason::PasswordChanged, now).await?;
        tx.record(&IdentityEvent::PasswordChanged { user_id: user.id }, Some(user.id), client).await?;
        for session_id in &revoked {
            let event = IdentityEvent::SessionRevoked {
                user_id: user.id,
                session_id: *session_id,
                reason: RevokeReason::PasswordChanged,
            };
            tx.record(&event, Some(user.id), client).await?;
        }
        self.sessions.mark_revoked(&revoked).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One user: everything for self and admins, the public profile for anyone else.
    pub async fn get_user(&self, caller: &Caller, id: &str) -> Result<UserView> {
        let id = Uuid::parse_str(id).map_err(|_| crate::app::no_such_user())?;
        let user = self.store.user_by_id(id).await?.ok_or_else(crate::app::no_such_user)?;
        if user.id == caller.user_id || self.is_admin(caller).await? {
            Ok(UserView::Full(user))
        } else {
            Ok(UserView::Profile { id: user.id, display_name: user.display_name.as_str().to_owned() })
        }
    }

    /// The user with exactly this email, if any.
    pub async fn lookup_by_email(&self, _caller: &Caller, email: &str) -> Result<Option<User>> {
        match Email::parse(email) {
            Ok(email) => self.store.user_by_email(&email).await,
            Err(_) => Ok(None),
        }
    }

    /// Every user, newest last, optionally filtered (admins only).
    pub async fn list_users(&self, caller: &Caller, query: &str, limit: u32, cursor: &str) -> Result<ListUsersPage> {
        if !self.is_admin(caller).await? {
            return Err(AppError::PermissionDenied("only admins may list users".into()));
        }
        if !(1..=100).contains(&limit) {
            return Err(AppError::field("limit", "must be 1..100"));
        }
        let after = if cursor.is_empty() { None } else { Some(decode_cursor(cursor)?) };
        let query = Some(query.trim()).filter(|q| !q.is_empty());
        let mut users = self.store.list_users(query, after, limit + 1).await?;
        let next_cursor = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| encode_cursor(u.id))
        } else {
            None
        };
        Ok(ListUsersPage { users, next_cursor })
    }

    /// An admin changes a user's role or disabled flag. A change of role, like disabling, revokes
    /// every session of the user.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, target = %id))]
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: &str,
        update: UserUpdate,
        client: &ClientInfo,
    ) -> Result<User> {
        if !self.is_admin(caller).await? {
            return Err(AppError::PermissionDenied("only admins may change users".into()));
        }
        let id = Uuid::parse_str(id).map_err(|_| crate::app::no_such_user())?;
        if id == caller.user_id && (update.role == Some(Role::Member) || update.disabled == Some(true)) {
            // An admin who demotes or disables themselves could leave Ordo with no admin at all.
            return Err(AppError::Conflict("admins cannot demote or disable themselves".into()));
        }
        let now = now();
        let mut tx = self.store.begin().await?;
        let mut user = tx.user_for_update(id).await?.ok_or_else(crate::app::no_such_user)?;
        check_version(&user, update.expected_version)?;
        let previous = user.version;
        let mut events = Vec::new();
        let mut revoke_reason = None;
        if let Some(role) = update.role.filter(|r| *r != user.role) {
            events.push(IdentityEvent::UserRoleChanged { user_id: id, old_role: user.role, new_role: role });
            user.role = role;
            // Access tokens carry the role, and other services decide "global admin" from it: a
            // token issued before the change must not outlive it by up to its 15 minutes.
            revoke_reason = Some(RevokeReason::RoleChanged);
        }
        if let Some(disabled) = update.disabled.filter(|d| *d != user.disabled) {
            user.disabled = disabled;
            events.push(IdentityEvent::UserDisabled { user_id: id, disabled });
            if disabled {
                // The stronger reason when both change at once: the user cannot log in again.
                revoke_reason = Some(RevokeReason::UserDisabled);
            }
        }
        let mut revoked = Vec::new();
        if let Some(reason) = revoke_reason {
            revoked = tx.revoke_user_sessions(id, None, reason, now).await?;
            events.extend(revoked.iter().map(|session_id| IdentityEvent::SessionRevoked {
                user_id: id,
                session_id: *session_id,
                reason,
            }));
        }
        if events.is_empty() {
            return Ok(user);
        }
        user.touch(now);
        tx.update_user(&user, previous).await?;
        for event in &events {
            tx.record(event, Some(caller.user_id), client).await?;
        }
        self.sessions.mark_revoked(&revoked).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Whether a session is live; refreshes the cache either way.
    pub async fn check_session(&self, session_id: &str) -> Result<bool> {
        let Ok(id) = Uuid::parse_str(session_id) else {
            return Ok(false);
        };
        let active = match self.store.session(id).await? {
            Some(session) => session.revoked_at.is_none() && session.expires_at > now(),
            None => false,
        };
        if active {
            // A revocation marker found here was written by a logout (or another revocation) that
            // committed after our read, or is committing now: it wins, so the answer agrees with
            // what the gateway reads from Redis.
            Ok(self.cache_active(id).await)
        } else {
            // The database has answered; the marker only spares the next check a query, so failing
            // to write it (Redis down) must not turn a refusal into an outage.
            if let Err(error) = self.sessions.mark_revoked(&[id]).await {
                tracing::warn!(session_id = %id, %error, "could not cache a revoked session");
            }
            Ok(false)
        }
    }

    /// Caches a live session unless it is marked revoked; `false` only when it is. A failure to
    /// write is only logged (`true`): the gateway then asks [`Self::check_session`].
    async fn cache_active(&self, session_id: Uuid) -> bool {
        match self.sessions.mark_active(session_id, self.refresh_ttl_secs()).await {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!(%session_id, %error, "could not cache a live session");
                true
            }
        }
    }

    async fn is_admin(&self, caller: &Caller) -> Result<bool> {
        // The token's role may be up to 15 minutes old; the stored role decides.
        Ok(self.store.user_by_id(caller.user_id).await?.is_some_and(|u| u.role == Role::Admin && !u.disabled))
    }

    fn refresh_ttl_secs(&self) -> u64 {
        u64::try_from(self.settings.refresh_ttl.whole_seconds()).unwrap_or(0)
    }

    fn token_pair(
        &self,
        user: &User,
        session_id: Uuid,
        refresh_token: String,
        now: OffsetDateTime,
    ) -> Result<TokenPair> {
        let access_token = self.keys.issue(&user.id.to_string(), &session_id.to_string(), user.role.as_str(), now)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: self.keys.ttl_seconds(),
            refresh_expires_in: self.settings.refresh_ttl.whole_seconds(),
        })
    }
}

fn check_version(user: &User, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(version) if version != user.version => Err(crate::app::user_changed()),
        _ => Ok(()),
    }
}

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| AppError::BadRequest("invalid cursor".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).ok(), Some(id));
    }

    #[test]
    fn a_garbage_cursor_is_a_bad_request() {
        assert!(matches!(decode_cursor("not a cursor!"), Err(AppError::BadRequest(_))));
        assert!(matches!(decode_cursor("AAAA"), Err(AppError::BadRequest(_))));
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), hash_a);
        assert_eq!(a.len(), 43);
    }
}
