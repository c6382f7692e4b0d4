//! The log in MySQL. Appends lock the chain's head row, so records get gap-free `seq`s and a correct
//! chain whatever number of consumers and instances append at once; verification streams the
//! records in `seq` order in constant memory.

use async_trait::async_trait;
use futures::TryStreamExt as _;
use ordo_platform::db::utc_datetime;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::app::{AppError, AuditLog, RecordFilter, Result};
use crate::domain::{Entry, Record, Verdict, Verifier};

const RECORD_COLUMNS: &str = "seq, id, occurred_at, action, actor_id, producer, entity_type, entity_id, project_id, ip, \
     user_agent, data, prev_hash, hash";

#[derive(sqlx::FromRow)]
struct RecordRow {
    seq: u64,
    id: Uuid,
    occurred_at: PrimitiveDateTime,
    action: String,
    actor_id: String,
    producer: String,
    entity_type: String,
    entity_id: String,
    project_id: String,
    ip: String,
    user_agent: String,
    data: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn hash32(bytes: &[u8]) -> [u8; 32] {
    // A stored hash of another length cannot match anything: all ones never equals a SHA-256 output
    // computed here in practice, and the verifier reports the record.
    bytes.try_into().unwrap_or([0xff; 32])
}

impl From<RecordRow> for Record {
    fn from(row: RecordRow) -> Self {
        Record {
            seq: row.seq,
            entry: Entry {
                id: row.id,
                occurred_at: row.occurred_at.assume_utc(),
                action: row.action,
                actor_id: row.actor_id,
                producer: row.producer,
                entity_type: row.entity_type,
                entity_id: row.entity_id,
                project_id: row.project_id,
                ip: row.ip,
                user_agent: row.user_agent,
                data: row.data,
            },
            prev_hash: hash32(&row.prev_hash),
            hash: hash32(&row.hash),
        }
    }
}

/// Appends `entry` at the end of the chain, inside the caller's transaction (the consumer's, which
/// also records the event as processed): the head row stays locked until that commits.
pub async fn append(conn: &mut MySqlConnection, entry: Entry) -> Result<Record, sqlx::Error> {
    let (seq, hash): (u64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE slot = 1 FOR UPDATE").fetch_one(&mut *conn).await?;
    let record = Record::append(entry, seq + 1, hash32(&hash));
    let e = &record.entry;
    sqlx::query(
        "INSERT INTO audit_record (seq, id, occurred_at, action, actor_id, producer, entity_type, entity_id, \
         project_id, ip, user_agent, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.seq)
    .bind(e.id)
    .bind(utc_datetime(e.occurred_at))
    .bind(&e.action)
    .bind(&e.actor_id)
    .bind(&e.producer)
    .bind(&e.entity_type)
    .bind(&e.entity_id)
    .bind(&e.project_id)
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.data)
    .bind(&record.prev_hash[..])
    .bind(&record.hash[..])
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE slot = 1")
        .bind(record.seq)
        .bind(&record.hash[..])
        .execute(&mut *conn)
        .await?;
    Ok(record)
}

/// Recomputes the whole chain from the database, streaming, and compares its end with the head.
pub async fn verify(pool: &MySqlPool) -> Result<Verdict, sqlx::Error> {
    let (head_seq, head_hash): (u64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE slot = 1").fetch_one(pool).await?;
    let mut verifier = Verifier::new();
    let sql = format!("SELECT {RECORD_COLUMNS} FROM audit_record ORDER BY seq");
    let mut rows = sqlx::query_as::<_, RecordRow>(&sql).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        if !verifier.check(&Record::from(row)) {
            break;
        }
    }
    drop(rows);
    Ok(verifier.finish(head_seq, hash32(&head_hash)))
}

fn db(error: sqlx::Error) -> AppError {
    if ordo_platform::db::is_unavailable(&error) {
        AppError::Unavailable(format!("database: {error}"))
    } else {
        AppError::Internal(error.into())
    }
}

/// The log as the queries see it.
#[derive(Debug, Clone)]
pub struct MySqlAuditLog {
    pool: MySqlPool,
}

impl MySqlAuditLog {
    /// The log in `pool`'s schema.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AuditLog for MySqlAuditLog {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn list(&self, filter: &RecordFilter, after: u64, limit: u32) -> Result<Vec<Record>> {
        let mut sql = QueryBuilder::<MySql>::new(format!("SELECT {RECORD_COLUMNS} FROM audit_record WHERE seq > "));
        sql.push_bind(after);
        for (column, value) in [
            ("actor_id", &filter.actor_id),
            ("action", &filter.action),
            ("entity_type", &filter.entity_type),
            ("entity_id", &filter.entity_id),
            ("project_id", &filter.project_id),
        ] {
            if !value.is_empty() {
                sql.push(format!(" AND {column} = ")).push_bind(value.clone());
            }
        }
        if let Some(from) = filter.from {
            sql.push(" AND occurred_at >= ").push_bind(utc_datetime(from));
        }
        if let Some(to) = filter.to {
            sql.push(" AND occurred_at < ").push_bind(utc_datetime(to));
        }
        sql.push(" ORDER BY seq LIMIT ").push_bind(limit);
        let rows: Vec<RecordRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.into_iter().map(Record::from).collect())
    }

    async fn verify(&self) -> Result<Verdict> {
        verify(&self.pool).await.map_err(db)
    }
}
