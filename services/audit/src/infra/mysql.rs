//! The log in MySQL. Appends lock the chain's head row, so records get gap-free `seq`s and a correct
//! chain whatever number of consumers and instances append at once; verification streams the
//! records in `seq` order in constant memory.

use std::collections::HashSet;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use ordo_platform::db::utc_datetime;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::app::{AuditLog, RecordFilter, Result};
use crate::domain::{Entry, Record, Verdict, Verifier};

/// The record's columns, for the filtered list (a dynamic statement); `verify` names them itself.
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

/// Appends `entry` at the end of the chain, inside the caller's transaction; see [`append_batch`].
pub async fn append(conn: &mut MySqlConnection, entry: Entry) -> Result<Option<Record>, sqlx::Error> {
    Ok(append_batch(conn, vec![entry]).await?.pop())
}

/// Appends `entries`, in order, at the end of the chain inside the caller's transaction (the
/// consumer's, which also records the events as processed): the head row stays locked until that
/// commits, so appends from any number of consumers and instances get gap-free `seq`s and one chain.
/// One lock, one multi-row `INSERT` and one head update for the whole batch.
///
/// An entry whose event is already in the log (or earlier in `entries`) is skipped, so the log holds
/// one record per event even where the consumer's dedup cannot tell (its `processed_event` rows
/// pruned, say): `audit_record.id` is not a unique key, because a partitioned table cannot have one
/// without `seq` in it. The check runs under the head lock, so no other append can race it.
///
/// Returns the records appended, in `seq` order.
pub async fn append_batch(conn: &mut MySqlConnection, entries: Vec<Entry>) -> Result<Vec<Record>, sqlx::Error> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let head = sqlx::query!("SELECT seq, hash FROM audit_head WHERE slot = 1 FOR UPDATE").fetch_one(&mut *conn).await?;
    let (head_seq, head_hash) = (head.seq, head.hash);
    // A locking read sees the latest committed rows whatever the transaction's snapshot, and every
    // earlier append committed before it released the head.
    let mut lookup = QueryBuilder::<MySql>::new("SELECT id FROM audit_record WHERE id IN (");
    let mut ids = lookup.separated(", ");
    for entry in &entries {
        ids.push_bind(entry.id);
    }
    lookup.push(") LOCK IN SHARE MODE");
    let mut present: HashSet<Uuid> =
        lookup.build_query_scalar::<Uuid>().fetch_all(&mut *conn).await?.into_iter().collect();

    let mut records: Vec<Record> = Vec::with_capacity(entries.len());
    let (mut seq, mut prev_hash) = (head_seq, hash32(&head_hash));
    for entry in entries {
        if !present.insert(entry.id) {
            tracing::warn!(event_id = %entry.id, "event already recorded; not appending it again");
            continue;
        }
        seq += 1;
        let record = Record::append(entry, seq, prev_hash);
        prev_hash = record.hash;
        records.push(record);
    }
    if records.is_empty() {
        return Ok(records);
    }

    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO audit_record (seq, id, occurred_at, action, actor_id, producer, entity_type, entity_id, \
         project_id, ip, user_agent, data, prev_hash, hash) ",
    );
    insert.push_values(&records, |mut row, record| {
        let e = &record.entry;
        row.push_bind(record.seq)
            .push_bind(e.id)
            .push_bind(utc_datetime(e.occurred_at))
            .push_bind(&e.action)
            .push_bind(&e.actor_id)
            .push_bind(&e.producer)
            .push_bind(&e.entity_type)
            .push_bind(&e.entity_id)
            .push_bind(&e.project_id)
            .push_bind(&e.ip)
            .push_bind(&e.user_agent)
            .push_bind(&e.data)
            .push_bind(&record.prev_hash[..])
            .push_bind(&record.hash[..]);
    });
    insert.build().execute(&mut *conn).await?;
    sqlx::query!("UPDATE audit_head SET seq = ?, hash = ? WHERE slot = 1", seq, &prev_hash[..])
        .execute(&mut *conn)
        .await?;
    Ok(records)
}

/// Which part of the chain a verification checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The first `seq` to check: `None` from the first record present, otherwise a part's
    /// [`Verdict::next_seq`].
    pub from: Option<u64>,
    /// The most records to check; `None`: up to the head, however many there are.
    pub limit: Option<u64>,
}

impl Part {
    /// The whole chain in one pass.
    pub const WHOLE: Part = Part { from: None, limit: None };
}

/// Recomputes a part of the chain from the database, streaming, and compares its end with the head
/// when the part reaches it; `None` when `part.from` is past the head (no part ever names it).
///
/// Only records up to the head read first are checked: records appended meanwhile (their head
/// moved in the same transaction) are for a later check, so a check under load never mistakes them
/// for records past the end.
pub async fn verify(pool: &MySqlPool, part: Part) -> Result<Option<Verdict>, sqlx::Error> {
    let head = sqlx::query!("SELECT seq, hash FROM audit_head WHERE slot = 1").fetch_one(pool).await?;
    let from = part.from.unwrap_or(1).max(1);
    if from > head.seq.saturating_add(1) {
        return Ok(None);
    }
    let mut verifier = Verifier::new();
    if from > 1 {
        let before = from - 1;
        let stored =
            sqlx::query_scalar!("SELECT hash FROM audit_record WHERE seq = ?", before).fetch_optional(pool).await?;
        match stored {
            Some(hash) => verifier = Verifier::resume(from, hash32(&hash)),
            None => {
                // Gone: archived with everything before it (the part anchors at the first record
                // present, as a whole check does), or deleted from inside the chain.
                let lowest: Option<u64> =
                    sqlx::query_scalar!("SELECT MIN(seq) FROM audit_record").fetch_one(pool).await?;
                if lowest.is_some_and(|lowest| lowest < before) {
                    return Ok(Some(Verdict { checked: 0, anchor: None, first_bad_seq: Some(before), next_seq: None }));
                }
            }
        }
    }
    let limit = part.limit.unwrap_or(u64::MAX);
    let mut rows = sqlx::query_as!(
        RecordRow,
        "SELECT seq, id, occurred_at, action, actor_id, producer, entity_type, entity_id, project_id, ip, \
         user_agent, data, prev_hash, hash FROM audit_record WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
        from,
        head.seq,
        limit
    )
    .fetch(pool);
    let (mut read, mut last) = (0_u64, None);
    let mut intact = true;
    while let Some(row) = rows.try_next().await? {
        read += 1;
        last = Some(row.seq);
        if !verifier.check(&Record::from(row)) {
            intact = false;
            break;
        }
    }
    drop(rows);
    let stopped_short = intact && read == limit && last.is_some_and(|seq| seq < head.seq);
    Ok(Some(if stopped_short { verifier.pause() } else { verifier.finish(head.seq, hash32(&head.hash)) }))
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
        // The filtered columns are ASCII: a value with any other character matches no record, and
        // comparing one with them is an error in MariaDB ("Illegal mix of collations").
        let text = [&filter.actor_id, &filter.action, &filter.entity_type, &filter.entity_id, &filter.project_id];
        if text.iter().any(|value| !value.is_ascii()) {
            return Ok(Vec::new());
        }
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
        let rows: Vec<RecordRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
        Ok(rows.into_iter().map(Record::from).collect())
    }

    async fn verify(&self, from: Option<u64>, limit: u64) -> Result<Option<Verdict>> {
        verify(&self.pool, Part { from, limit: Some(limit) }).await.map_err(db_error)
    }
}
