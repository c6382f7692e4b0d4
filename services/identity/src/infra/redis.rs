//! Redis adapters: the session cache the gateway reads (`<prefix>session:<sid>` = "1" live / "0"
//! revoked; a missing key means "ask identity") and the login throttle shared by every instance.

use std::sync::LazyLock;

use async_trait::async_trait;
use ordo_platform::redis::ConnectionManager;
use redis::AsyncCommands as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::app::ports::{Attempt, LoginThrottle, SessionCache};
use crate::app::{AppError, Result};
use crate::domain::{DisplayName, Email, Role, User};

/// How long a revoked marker is kept: past it, every access token of the session has expired anyway
/// (access tokens live 15 minutes) and a missing key sends the gateway to identity, which says no.
const REVOKED_TTL_SECS: u64 = 3600;

fn unavailable(error: redis::RedisError) -> AppError {
    AppError::Unavailable(format!("redis: {error}"))
}

/// The session cache in Redis.
#[derive(Clone)]
pub struct RedisSessionCache {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisSessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionCache").field("prefix", &self.prefix).finish()
    }
}

impl RedisSessionCache {
    /// A cache writing keys under `prefix`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into() }
    }

    fn key(&self, session_id: Uuid) -> String {
        format!("{}session:{}", self.prefix, session_id)
    }
}

/// Writes "1" (live) unless the key holds "0" (revoked); returns 1 if it wrote. Why one script: a
/// check-then-set from the client lets a logout's "0" land between the GET and the SET, and the SET
/// would then bring the session back to life in the gateway's eyes (a `check_session` that read the
/// database just before the logout committed, or a login's late cache write). Inside the script
/// nothing runs between the two, and since "0" is only ever replaced by its own expiry, a revocation
/// always wins. `SET NX` alone would not do: it could not extend a live session's marker.
static MARK_ACTIVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == '0' then return 0 end
          redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
          return 1",
    )
});

#[async_trait]
impl SessionCache for RedisSessionCache {
    async fn mark_active(&self, session_id: Uuid, ttl_secs: u64) -> Result<bool> {
        let mut conn = self.conn.clone();
        let written: i64 = MARK_ACTIVE
            .key(self.key(session_id))
            .arg(ttl_secs.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(written == 1)
    }

    async fn mark_revoked(&self, session_ids: &[Uuid]) -> Result<()> {
        if session_ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for id in session_ids {
            pipe.set_ex(self.key(*id), "0", REVOKED_TTL_SECS).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }
}

/// Password-attempt counting in Redis: a fixed window per email that starts at the first attempt.
#[derive(Clone)]
pub struct RedisLoginThrottle {
    conn: ConnectionManager,
    prefix: String,
    max_attempts: u64,
    window_secs: u64,
}

impl std::fmt::Debug for RedisLoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLoginThrottle")
            .field("max_attempts", &self.max_attempts)
            .field("window_secs", &self.window_secs)
            .finish()
    }
}

impl RedisLoginThrottle {
    /// Lets `max_attempts` passwords per email be verified within `window_secs` (a right one starts
    /// over), and locks the email out for the rest of the window after that.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, max_attempts: u64, window_secs: u64) -> Self {
        Self { conn, prefix: prefix.into(), max_attempts, window_secs }
    }

    /// The key is a hash of the email, so Redis holds no addresses.
    fn key(&self, email: &Email) -> String {
        let digest = Sha256::digest(email.as_str().as_bytes());
        format!("{}login_failures:{}", self.prefix, hex_lower(&digest))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts one attempt and returns `{count, seconds left in the window}`. Why one script: when the
/// count was read before the (slow) password check and raised after it, every request of a burst read
/// the same low count and had its password verified; counted first and atomically, the n-th
/// concurrent attempt sees n, so only the first `max` are ever verified, across every instance. The
/// window starts at the first attempt (later ones do not extend it); a counter found without an
/// expiry (TTL -1) gets one, so no email can be locked out for good.
static COUNT_ATTEMPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local count = redis.call('INCR', KEYS[1])
          local ttl = redis.call('TTL', KEYS[1])
          if ttl < 0 then
            redis.call('EXPIRE', KEYS[1], ARGV[1])
            ttl = tonumber(ARGV[1])
          end
          return {count, ttl}",
    )
});

#[async_trait]
impl LoginThrottle for RedisLoginThrottle {
    async fn attempt(&self, email: &Email) -> Result<Attempt> {
        let mut conn = self.conn.clone();
        let (count, ttl): (u64, i64) = COUNT_ATTEMPT
            .key(self.key(email))
            .arg(self.window_secs.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if count > self.max_attempts {
            Ok(Attempt::LockedOut {
                retry_after_secs: u64::try_from(ttl).unwrap_or(1).max(1),
                starts_now: count == self.max_attempts.saturating_add(1),
            })
        } else {
            Ok(Attempt::Allowed)
        }
    }

    async fn reset(&self, email: &Email) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(email)).await.map_err(unavailable)
    }
}

/// How long a cached user lives without being read back from the database.
const USER_TTL_SECS: u64 = 300;
/// How long a tombstone blocks refills after a write: longer than any write transaction, so a reader
/// that fetched the old row before the commit can never put it back.
const TOMBSTONE_TTL_SECS: u64 = 30;
/// The value of a tombstone.
const TOMBSTONE: &str = "!";

/// Users by id in Redis (`<prefix>user:<id>`), so the hot read (`GetMe`) costs a Redis GET instead of
/// a database query. Writers put a short-lived tombstone in place before they commit, and readers fill
/// only an empty slot (`SET NX`): a reader can never cache a row older than the last write, so every
/// instance reads its own and everyone's writes. Password hashes are never cached.
#[derive(Clone)]
pub struct RedisUserCache {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisUserCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUserCache").field("prefix", &self.prefix).finish()
    }
}

/// The cached form of a user.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedUser {
    email: String,
    display_name: String,
    role: String,
    disabled: bool,
    created_at: i128,
    updated_at: i128,
    version: i64,
}

impl RedisUserCache {
    /// A cache writing keys under `prefix`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into() }
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}user:{}", self.prefix, id)
    }

    /// The cached user, if there is one (a tombstone or an unreadable entry counts as none).
    pub async fn get(&self, id: Uuid) -> Result<Option<User>> {
        let mut conn = self.conn.clone();
        let cached: Option<String> = conn.get(self.key(id)).await.map_err(unavailable)?;
        Ok(cached.filter(|value| value != TOMBSTONE).and_then(|value| decode(id, &value)))
    }

    /// Caches `user` unless the slot is taken (by a fresher entry or a tombstone).
    pub async fn fill(&self, user: &User) -> Result<()> {
        let cached = CachedUser {
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
            disabled: user.disabled,
            created_at: user.created_at.unix_timestamp_nanos(),
            updated_at: user.updated_at.unix_timestamp_nanos(),
            version: user.version,
        };
        let value = serde_json::to_string(&cached).map_err(|e| AppError::Internal(e.into()))?;
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(user.id))
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(USER_TTL_SECS)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Puts a tombstone in place of `id`'s entry; call before the write commits.
    pub async fn invalidate(&self, id: Uuid) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.key(id), TOMBSTONE, TOMBSTONE_TTL_SECS).await.map_err(unavailable)
    }
}

fn decode(id: Uuid, value: &str) -> Option<User> {
    let cached: CachedUser = serde_json::from_str(value).ok()?;
    Some(User {
        id,
        email: Email::parse(&cached.email).ok()?,
        display_name: DisplayName::from_stored(&cached.display_name).ok()?,
        // Never cached; an empty hash verifies no password.
        password_hash: String::new(),
        role: Role::parse(&cached.role)?,
        disabled: cached.disabled,
        created_at: time::OffsetDateTime::from_unix_timestamp_nanos(cached.created_at).ok()?,
        updated_at: time::OffsetDateTime::from_unix_timestamp_nanos(cached.updated_at).ok()?,
        version: cached.version,
    })
}
