//! The database and Redis a service starts with, and the session checks built on them.

use std::sync::Arc;

use anyhow::Context as _;
use ordo_auth::session::{SessionAuthority, SessionSettings, Sessions};
use ordo_platform::ops::{MySqlCheck, Readiness, RedisCheck};
use ordo_platform::redis::ConnectionManager;
use sqlx::MySqlPool;
use sqlx::migrate::Migrator;

use crate::config::ServiceArgs;

/// A service's own database pool and its Redis connection.
#[derive(Clone)]
pub struct Backends {
    /// The pool of the service's own schema.
    pub pool: MySqlPool,
    /// The shared, reconnecting Redis connection.
    pub redis: ConnectionManager,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl Backends {
    /// Creates the schema if needed, applies the service's migrations (with the events library's
    /// outbox tables merged in) and connects Redis.
    pub async fn start(args: &ServiceArgs, migrator: &Migrator) -> anyhow::Result<Self> {
        let pool = Self::migrate(args, migrator).await.context("prepare the database")?;
        Self::with_pool(args, pool).await
    }

    /// Connects Redis beside a pool the service opened itself (for example without migrating).
    pub async fn with_pool(args: &ServiceArgs, pool: MySqlPool) -> anyhow::Result<Self> {
        let redis = args.redis.connect().await.context("connect to Redis")?;
        Ok(Self { pool, redis })
    }

    /// Creates the schema if needed and applies every migration: the service's and the outbox's.
    pub async fn migrate(args: &ServiceArgs, migrator: &Migrator) -> anyhow::Result<MySqlPool> {
        let migrator = ordo_events::merge_migrations(migrator)?;
        let pool =
            ordo_platform::db::prepare(args.database_url.expose(), args.database_max_connections, &migrator).await?;
        Ok(pool)
    }

    /// Readiness with the database and Redis checked; a service adds its own checks.
    pub fn readiness(&self) -> Readiness {
        Readiness::default().with(MySqlCheck(self.pool.clone())).with(RedisCheck(self.redis.clone()))
    }

    /// Session checks: the marker identity writes in Redis, else `authority`, a live answer reused
    /// for `--session-cache-ms`.
    pub fn sessions(&self, args: &ServiceArgs, authority: Arc<dyn SessionAuthority>) -> Sessions {
        Sessions::new(
            self.redis.clone(),
            args.redis.prefix.clone(),
            authority,
            SessionSettings {
                live_ttl: args.session_cache,
                redis_timeout: args.redis.settings.call_budget(),
                ..SessionSettings::default()
            },
        )
    }
}
