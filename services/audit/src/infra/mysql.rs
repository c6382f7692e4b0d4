//! The log in MySQL. Appends lock the chain's head row, so records get gap-free `seq`s and a correct
//! chain whatever number of consumers and instances append at once; verification streams the
//! records in `seq` order in constant memory.

use futures::TryStreamExt as _;
use ordo_platform::db::utc_datetime;
use sqlx::{MySqlConnection, MySqlPool};
use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::domain::{Entry, Record, Verdict, Verifier};

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
    let mut rows = sqlx::query_as::<_, RecordRow>(
        "SELECT seq, id, occurred_at, action, actor_id, producer, entity_type, entity_id, project_id, ip, \
         user_agent, data, prev_hash, hash FROM audit_record ORDER BY seq",
    )
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        if !verifier.check(&Record::from(row)) {
            break;
        }
    }
    drop(rows);
    Ok(verifier.finish(head_seq, hash32(&head_hash)))
}
