//! MySQL pools. A service owns one schema; at start it creates the schema if it is missing (so a fresh
//! developer machine needs no manual step) and runs its migrations.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};

/// Errors while preparing the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL has no schema name.
    #[error("the database URL names no schema")]
    NoSchema,
    /// The schema name holds characters we refuse to put in DDL.
    #[error("invalid schema name {0:?}")]
    InvalidSchema(String),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Creates the URL's schema if it does not exist yet.
#[tracing::instrument(skip_all)]
pub async fn ensure_schema(url: &str) -> Result<(), DbError> {
    let options: MySqlConnectOptions = url.parse()?;
    let schema = options.get_database().ok_or(DbError::NoSchema)?.to_owned();
    if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbError::InvalidSchema(schema));
    }
    let mut conn = options.database("").connect().await?;
    // The name was checked above to hold only `[A-Za-z0-9_]`, so quoting it cannot be escaped.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE IF NOT EXISTS `{schema}`"))).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Opens a pool on `url`.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool, DbError> {
    let options: MySqlConnectOptions = url.parse()?;
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before every checkout: that is a round trip per query. sqlx pings each connection
        // as it returns to the pool and drops it if dead, so only a connection that died while idle
        // (a database restart) can fail one query, which callers answer as unavailable (503).
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Connections of the pool by state (`idle`, `in_use`), sampled.
pub const POOL_CONNECTIONS: &str = "ordo_db_pool_connections";
/// The pool's `max_connections`.
pub const POOL_MAX_CONNECTIONS: &str = "ordo_db_pool_max_connections";
/// How long a probe waited for a connection of the pool, sampled.
pub const POOL_ACQUIRE: &str = "ordo_db_pool_acquire_seconds";

/// Until `shutdown`, every `every` samples `pool` into the metrics: its connections in use and idle,
/// and how long one checkout waits — a probe takes a connection and hands it back at once, so under
/// load it waits in line with the requests, and its wait is theirs (5 s at most, the pool's timeout).
pub async fn watch_pool(pool: MySqlPool, every: Duration, shutdown: tokio_util::sync::CancellationToken) {
    metrics::describe_gauge!(POOL_CONNECTIONS, "Connections of the database pool, by state (idle, in_use).");
    metrics::describe_gauge!(POOL_MAX_CONNECTIONS, "The most connections the database pool opens.");
    metrics::describe_histogram!(
        POOL_ACQUIRE,
        metrics::Unit::Seconds,
        "Time a probe waited for a connection of the database pool, sampled every few seconds."
    );
    metrics::gauge!(POOL_MAX_CONNECTIONS).set(f64::from(pool.options().get_max_connections()));
    let mut ticks = crate::shutdown::Ticks::every(every);
    while ticks.next(&shutdown).await {
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(size - idle));
        metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
        let started = std::time::Instant::now();
        let acquired = tokio::select! {
            () = shutdown.cancelled() => return,
            acquired = pool.acquire() => acquired,
        };
        // A failed checkout (the database away, the pool's timeout) waited too; it counts.
        metrics::histogram!(POOL_ACQUIRE).record(started.elapsed().as_secs_f64());
        drop(acquired);
    }
}

/// Runs `migrator` (a service's migrations, merged with the events library's outbox tables).
#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &MySqlPool, migrator: &Migrator) -> Result<(), DbError> {
    migrator.run(pool).await?;
    Ok(())
}

/// Creates the schema if needed, opens a pool and migrates it.
pub async fn prepare(url: &str, max_connections: u32, migrator: &Migrator) -> Result<MySqlPool, DbError> {
    ensure_schema(url).await?;
    let pool = connect(url, max_connections).await?;
    migrate(&pool, migrator).await?;
    Ok(pool)
}

/// Whether `error` is a unique-key violation (MySQL error 1062). MySQL gives no constraint name
/// through sqlx, so callers decide which uniqueness rule was broken from the statement they ran.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Whether `error` is a lost lock race (MySQL 1213, deadlock; 1205, lock wait timeout): the
/// transaction was rolled back and can be retried.
pub fn is_contention(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| matches!(e.number(), 1205 | 1213))
        }
        _ => false,
    }
}

/// Whether `error` means the database could not be reached or is saturated (pool timeout, I/O, a
/// closed pool): worth a retry, not a bug.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)
}

/// `time` as a `DATETIME(6)` column holds it: in UTC, without an offset.
pub fn utc_datetime(time: time::OffsetDateTime) -> time::PrimitiveDateTime {
    let time = time.to_offset(time::UtcOffset::UTC);
    time::PrimitiveDateTime::new(time.date(), time.time())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_stored_in_utc() {
        let local = time::macros::datetime!(2026-11-25 23:30:00.123456 +02:00);
        assert_eq!(utc_datetime(local), time::macros::datetime!(2026-11-25 21:30:00.123456));
    }

    #[test]
    fn only_connection_trouble_is_unavailable() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
