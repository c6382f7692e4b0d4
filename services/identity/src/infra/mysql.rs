//! The MySQL store: accounts, sessions and refresh tokens in the `ordo_identity` schema, and the
//! outbox rows written in the same transactions.

use async_trait::async_trait;
use ordo_events::{OutboxSignal, OutboxTx};
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::mysql::MySqlPool;
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::RedisUserCache;

use crate::app::ports::{IdentityStore, IdentityTx, RefreshRecord, SessionRecord};
use crate::app::{AppError, ClientInfo, Result};
use crate::domain::{DisplayName, Email, IdentityEvent, RevokeReason, Role, User};

struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    role: String,
    // BOOLEAN is TINYINT(1), which the query macros read as `i8`.
    disabled: bool,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    version: i64,
}

impl TryFrom<UserRow> for User {
    type Error = AppError;

    fn try_from(row: UserRow) -> Result<Self> {
        let corrupt = |what: &str| AppError::Internal(anyhow::anyhow!("stored user {} has an invalid {what}", row.id));
        Ok(User {
            id: row.id,
            email: Email::parse(&row.email).map_err(|_| corrupt("email"))?,
            display_name: DisplayName::from_stored(&row.display_name).map_err(|_| corrupt("display name"))?,
            password_hash: row.password_hash.clone(),
            role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
            disabled: row.disabled,
            created_at: row.created_at.assume_utc(),
            updated_at: row.updated_at.assume_utc(),
            version: row.version,
        })
    }
}

struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    expires_at: PrimitiveDateTime,
    revoked_at: Option<PrimitiveDateTime>,
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> Self {
        SessionRecord {
            id: row.id,
            user_id: row.user_id,
            expires_at: row.expires_at.assume_utc(),
            revoked_at: row.revoked_at.map(PrimitiveDateTime::assume_utc),
        }
    }
}

/// Identity's MySQL store, with users by id cached in Redis.
#[derive(Debug, Clone)]
pub struct MySqlIdentityStore {
    pool: MySqlPool,
    signal: OutboxSignal,
    users: RedisUserCache,
}

impl MySqlIdentityStore {
    /// A store on `pool` that wakes the relay through `signal` after each commit and caches users in
    /// `users`.
    pub fn new(pool: MySqlPool, signal: OutboxSignal, users: RedisUserCache) -> Self {
        Self { pool, signal, users }
    }
}

#[async_trait]
impl IdentityStore for MySqlIdentityStore {
    async fn begin(&self) -> Result<Box<dyn IdentityTx>> {
        let tx = OutboxTx::begin(&self.pool, &self.signal).await.map_err(db_error)?;
        Ok(Box::new(MySqlIdentityTx { tx, users: self.users.clone() }))
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>> {
        match self.users.get(id).await {
            Ok(Some(user)) => return Ok(Some(user)),
            Ok(None) => {}
            // The database holds the truth; a cache outage only costs speed.
            Err(error) => tracing::warn!(%error, "user cache read failed"),
        }
        let user = self.user_with_credentials(id).await?;
        if let Some(user) = &user
            && let Err(error) = self.users.fill(user).await
        {
            tracing::warn!(%error, "user cache fill failed");
        }
        Ok(user)
    }

    #[tracing::instrument(skip(self))]
    async fn user_with_credentials(&self, id: Uuid) -> Result<Option<User>> {
        let row = sqlx::query_as!(
            UserRow,
            "SELECT id, email, display_name, password_hash, role, disabled, created_at, updated_at, version
             FROM user_account WHERE id = ?",
            id
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let row = sqlx::query_as!(
            UserRow,
            "SELECT id, email, display_name, password_hash, role, disabled, created_at, updated_at, version
             FROM user_account WHERE email = ?",
            email.as_str()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn list_users(&self, query: Option<&str>, after: Option<Uuid>, limit: u32) -> Result<Vec<User>> {
        // Ids are UUID v7, so id order is registration order and a stable keyset.
        let after = after.unwrap_or(Uuid::nil());
        // The search filter is the statement's only optional part, so each shape is written out.
        let rows = match query {
            Some(query) => {
                let escaped = query.replace('!', "!!").replace('%', "!%").replace('_', "!_");
                let pattern = format!("%{}%", escaped.to_lowercase());
                sqlx::query_as!(
                    UserRow,
                    "SELECT id, email, display_name, password_hash, role, disabled, created_at, updated_at, version
                     FROM user_account WHERE id > ?
                     AND (email LIKE ? ESCAPE '!' OR display_name LIKE ? ESCAPE '!')
                     ORDER BY id LIMIT ?",
                    after,
                    pattern,
                    pattern,
                    limit
                )
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query_as!(
                    UserRow,
                    "SELECT id, email, display_name, password_hash, role, disabled, created_at, updated_at, version
                     FROM user_account WHERE id > ?
                     ORDER BY id LIMIT ?",
                    after,
                    limit
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(db_error)?;
        rows.into_iter().map(User::try_from).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>> {
        let row =
            sqlx::query_as!(SessionRow, "SELECT id, user_id, expires_at, revoked_at FROM session WHERE id = ?", id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(row.map(SessionRecord::from))
    }
}

/// One MySQL transaction.
struct MySqlIdentityTx {
    tx: OutboxTx,
    users: RedisUserCache,
}

#[async_trait]
impl IdentityTx for MySqlIdentityTx {
    async fn claim_first_account(&mut self, user_id: Uuid) -> Result<bool> {
        let done = sqlx::query!("INSERT IGNORE INTO first_account (slot, user_id) VALUES (1, ?)", user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_user(&mut self, user: &User) -> Result<()> {
        let result = sqlx::query!(
            "INSERT INTO user_account (id, email, display_name, password_hash, role, disabled, created_at, updated_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            user.id,
            user.email.as_str(),
            user.display_name.as_str(),
            &user.password_hash,
            user.role.as_str(),
            user.disabled,
            utc(user.created_at),
            utc(user.updated_at),
            user.version
        )
        .execute(&mut *self.tx)
        .await;
        ordo_service::unique_or(result.map(drop), crate::app::email_taken)
    }

    async fn user_for_update(&mut self, id: Uuid) -> Result<Option<User>> {
        let row = sqlx::query_as!(
            UserRow,
            "SELECT id, email, display_name, password_hash, role, disabled, created_at, updated_at, version
             FROM user_account WHERE id = ? FOR UPDATE",
            id
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_error)?;
        row.map(User::try_from).transpose()
    }

    async fn update_user(&mut self, user: &User, previous_version: i64) -> Result<()> {
        // Tombstone first: if Redis cannot take it, the write does not happen (no stale cache ever).
        self.users.invalidate(user.id).await?;
        let done = sqlx::query!(
            "UPDATE user_account SET display_name = ?, password_hash = ?, role = ?, disabled = ?, updated_at = ?, version = ?
             WHERE id = ? AND version = ?",
            user.display_name.as_str(),
            &user.password_hash,
            user.role.as_str(),
            user.disabled,
            utc(user.updated_at),
            user.version,
            user.id,
            previous_version
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(crate::app::user_changed()) }
    }

    async fn insert_session(&mut self, session: &SessionRecord, client: &ClientInfo) -> Result<()> {
        sqlx::query!(
            "INSERT INTO session (id, user_id, created_at, expires_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
            session.id,
            session.user_id,
            utc(OffsetDateTime::now_utc()),
            utc(session.expires_at),
            truncate(&client.ip, 64),
            truncate(&client.user_agent, 512)
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn extend_session(&mut self, id: Uuid, expires_at: OffsetDateTime) -> Result<()> {
        sqlx::query!("UPDATE session SET expires_at = ? WHERE id = ?", utc(expires_at), id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_refresh_token(
        &mut self,
        token_hash: [u8; 32],
        session_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO refresh_token (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            &token_hash[..],
            session_id,
            utc(now),
            utc(expires_at)
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn refresh_token_for_update(&mut self, token_hash: [u8; 32]) -> Result<Option<RefreshRecord>> {
        struct Row {
            expires_at: PrimitiveDateTime,
            spent_at: Option<PrimitiveDateTime>,
            session_id: Uuid,
            user_id: Uuid,
            session_expires_at: PrimitiveDateTime,
            revoked_at: Option<PrimitiveDateTime>,
        }
        // Locking both rows serialises concurrent refreshes of one session: the second sees the
        // first's spend and is treated as reuse.
        let row = sqlx::query_as!(
            Row,
            "SELECT r.expires_at, r.spent_at, s.id AS session_id, s.user_id, s.expires_at AS session_expires_at, s.revoked_at
             FROM refresh_token r JOIN session s ON s.id = r.session_id
             WHERE r.token_hash = ? FOR UPDATE",
            &token_hash[..]
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_error)?;
        Ok(row.map(|row| RefreshRecord {
            token_hash,
            session: SessionRecord {
                id: row.session_id,
                user_id: row.user_id,
                expires_at: row.session_expires_at.assume_utc(),
                revoked_at: row.revoked_at.map(PrimitiveDateTime::assume_utc),
            },
            expires_at: row.expires_at.assume_utc(),
            spent_at: row.spent_at.map(PrimitiveDateTime::assume_utc),
        }))
    }

    async fn spend_refresh_token(&mut self, token_hash: [u8; 32], now: OffsetDateTime) -> Result<()> {
        sqlx::query!("UPDATE refresh_token SET spent_at = ? WHERE token_hash = ?", utc(now), &token_hash[..])
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn revoke_session(&mut self, id: Uuid, reason: RevokeReason, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE session SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
            utc(now),
            reason.as_str(),
            id
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_sessions(
        &mut self,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> Result<Vec<Uuid>> {
        let keep = keep.unwrap_or(Uuid::nil());
        let ids: Vec<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM session WHERE user_id = ? AND revoked_at IS NULL AND id <> ? FOR UPDATE",
            user_id,
            keep
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_error)?;
        if !ids.is_empty() {
            sqlx::query!(
                "UPDATE session SET revoked_at = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ?",
                utc(now),
                reason.as_str(),
                user_id,
                keep
            )
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        }
        Ok(ids)
    }

    async fn record(&mut self, event: &IdentityEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()> {
        let envelope = super::envelope::envelope(event, actor, client);
        self.tx.enqueue(&envelope).await.map_err(AppError::internal)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_error)
    }
}

fn truncate(value: &str, max_chars: usize) -> &str {
    match value.char_indices().nth(max_chars) {
        Some((index, _)) => &value[..index],
        None => value,
    }
}
