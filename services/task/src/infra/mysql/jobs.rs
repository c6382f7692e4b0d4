//! The job rows: recording a job, reading one, the claim of the next one to run (`FOR UPDATE SKIP
//! LOCKED`, so instances claiming at once take different jobs), and the writes of the attempt that
//! holds a job, each guarded by its attempt number so an attempt taken over writes nothing. A job's
//! end (done, failed, cancelled) is announced (`job.ended`) in the transaction that records it.

use ordo_platform::db::utc_datetime as utc;
use sqlx::mysql::{MySqlConnection, MySqlPool};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use ordo_events::OutboxSignal;

use super::db;
use crate::app::ports::{JobOutcome, Queued};
use crate::app::{AppError, Result};
use crate::domain::{Job, JobKind, JobResult, JobState};
use crate::infra::envelope::{job_ended, job_progressed};

/// A job row.
struct JobRow {
    id: Uuid,
    project_id: Uuid,
    requester_id: Uuid,
    kind: String,
    spec: String,
    state: String,
    attempt: u32,
    rows_done: u64,
    rows_total: Option<u64>,
    result_key: Option<String>,
    result_bytes: Option<u64>,
    error: Option<String>,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    finished_at: Option<PrimitiveDateTime>,
}

impl TryFrom<JobRow> for Job {
    type Error = AppError;

    fn try_from(row: JobRow) -> Result<Self> {
        let corrupt = |what: &str| AppError::Internal(anyhow::anyhow!("stored job {} has an invalid {what}", row.id));
        let result = match (row.result_key, row.result_bytes) {
            (Some(object_key), Some(size_bytes)) => Some(JobResult { object_key, size_bytes }),
            _ => None,
        };
        Ok(Job {
            id: row.id,
            project_id: row.project_id,
            requester_id: row.requester_id,
            kind: JobKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            spec: row.spec,
            state: JobState::parse(&row.state).ok_or_else(|| corrupt("state"))?,
            attempt: row.attempt,
            rows_done: row.rows_done,
            rows_total: row.rows_total,
            result,
            error: row.error,
            created_at: row.created_at.assume_utc(),
            updated_at: row.updated_at.assume_utc(),
            finished_at: row.finished_at.map(PrimitiveDateTime::assume_utc),
        })
    }
}

/// Takes the requester's turn at queueing jobs, held until the transaction ends (one request of a
/// user at a time counts and queues their jobs), and says whether they have fewer than
/// `max_unfinished` jobs queued or running.
async fn room_for_one_more(conn: &mut MySqlConnection, requester: Uuid, max_unfinished: u64) -> Result<bool> {
    // `ON DUPLICATE KEY UPDATE` locks an existing row exclusively at once: two requests never both
    // hold it shared and then wait on each other to write it.
    sqlx::query!(
        "INSERT INTO job_turn (requester_id) VALUES (?) ON DUPLICATE KEY UPDATE requester_id = requester_id",
        requester
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    // The transaction's first read: its snapshot is taken now, with the turn held, so it sees every
    // job the requester's earlier turns committed.
    let unfinished = sqlx::query_scalar!(
        "SELECT COUNT(*) FROM job WHERE requester_id = ? AND state IN ('queued', 'running')",
        requester
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(u64::try_from(unfinished).unwrap_or(u64::MAX) < max_unfinished)
}

/// Writes a new job unless its requester has `max_unfinished` jobs queued or running already;
/// whether it did.
pub(super) async fn insert(pool: &MySqlPool, job: &Job, max_unfinished: u64) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !room_for_one_more(&mut tx, job.requester_id, max_unfinished).await? {
        return Ok(false);
    }
    sqlx::query!(
        "INSERT INTO job (id, project_id, requester_id, kind, spec, state, attempt, rows_done, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        job.id,
        job.project_id,
        job.requester_id,
        job.kind.as_str(),
        job.spec.as_str(),
        job.state.as_str(),
        job.attempt,
        job.rows_done,
        utc(job.created_at),
        utc(job.updated_at)
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Writes a new import job under `key` unless its requester has `max_unfinished` jobs queued or
/// running already, or answers the job that holds the key already (that answer comes first).
pub(super) async fn insert_import(pool: &MySqlPool, job: &Job, key: [u8; 32], max_unfinished: u64) -> Result<Queued> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !room_for_one_more(&mut tx, job.requester_id, max_unfinished).await? {
        drop(tx);
        return Ok(by_import_key(pool, key)
            .await?
            .map_or(Queued::Full, |existing| Queued::Existing(Box::new(existing))));
    }
    let inserted = sqlx::query!(
        "INSERT INTO job (id, project_id, requester_id, kind, spec, import_key, state, attempt, rows_done, rows_total, \
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        job.id,
        job.project_id,
        job.requester_id,
        job.kind.as_str(),
        job.spec.as_str(),
        &key[..],
        job.state.as_str(),
        job.attempt,
        job.rows_done,
        job.rows_total,
        utc(job.created_at),
        utc(job.updated_at)
    )
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            tx.commit().await.map_err(db)?;
            Ok(Queued::Inserted)
        }
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            drop(tx);
            match by_import_key(pool, key).await? {
                Some(existing) => Ok(Queued::Existing(Box::new(existing))),
                // The holder ended (and freed the key) between the two statements: this one may have it.
                None => Box::pin(insert_import(pool, job, key, max_unfinished)).await,
            }
        }
        Err(error) => Err(db(error)),
    }
}

/// The job that holds import key `key`.
pub(super) async fn by_import_key(pool: &MySqlPool, key: [u8; 32]) -> Result<Option<Job>> {
    let id = sqlx::query_scalar!("SELECT id AS `id: Uuid` FROM job WHERE import_key = ?", &key[..])
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    match id {
        Some(id) => job(pool, id).await,
        None => Ok(None),
    }
}

/// The tasks import job `id` created so far, by row.
pub(super) async fn imported_tasks(pool: &MySqlPool, id: Uuid) -> Result<Vec<(u32, Uuid)>> {
    let rows = sqlx::query!("SELECT row_no, task_id AS `task_id: Uuid` FROM import_task WHERE job_id = ?", id)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    Ok(rows.into_iter().map(|row| (row.row_no, row.task_id)).collect())
}

/// Records the progress of `attempt` of an import in its transaction, and the tasks its rows became;
/// whether the attempt still holds the job (when not, nothing is written).
#[allow(clippy::too_many_arguments)]
pub(super) async fn record_import(
    tx: &mut sqlx::Transaction<'static, sqlx::MySql>,
    id: Uuid,
    attempt: u32,
    rows_done: u64,
    rows_total: u64,
    imported: &[(u32, Uuid)],
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<bool> {
    let held = sqlx::query!(
        "UPDATE job SET rows_done = ?, rows_total = ?, lease_until = ?, updated_at = ? \
         WHERE id = ? AND attempt = ? AND state = 'running'",
        rows_done,
        rows_total,
        utc(lease_until),
        utc(now),
        id,
        attempt
    )
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    if held.rows_affected() != 1 {
        return Ok(false);
    }
    tell_progress(tx, id, rows_done, Some(rows_total)).await?;
    if !imported.is_empty() {
        let mut insert = sqlx::QueryBuilder::<sqlx::MySql>::new("INSERT INTO import_task (job_id, row_no, task_id) ");
        insert.push_values(imported, |mut row, (row_no, task_id)| {
            row.push_bind(id).push_bind(*row_no).push_bind(*task_id);
        });
        insert.build().execute(&mut **tx).await.map_err(db)?;
    }
    Ok(true)
}

/// One job.
pub(super) async fn job(pool: &MySqlPool, id: Uuid) -> Result<Option<Job>> {
    let row = sqlx::query_as!(
        JobRow,
        "SELECT id, project_id, requester_id, kind, spec, state, attempt, rows_done, rows_total, result_key, \
         result_bytes, error, created_at, updated_at, finished_at FROM job WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.map(Job::try_from).transpose()
}

/// How many of `requester`'s jobs are queued or running.
pub(super) async fn unfinished(pool: &MySqlPool, requester: Uuid) -> Result<u64> {
    let count = sqlx::query_scalar!(
        "SELECT COUNT(*) FROM job WHERE requester_id = ? AND state IN ('queued', 'running')",
        requester
    )
    .fetch_one(pool)
    .await
    .map_err(db)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Claims the oldest job whose lease ran out, else the oldest queued one, for a new attempt. Under
/// READ COMMITTED, so the reads lock the rows they return and no gap: claims running at once skip
/// each other's rows instead of deadlocking on the index entries their updates move.
pub(super) async fn claim(pool: &MySqlPool, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<Job>> {
    let mut conn = pool.acquire().await.map_err(db)?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *conn).await.map_err(db)?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
    let abandoned = sqlx::query_scalar!(
        "SELECT id FROM job WHERE state = 'running' AND lease_until < ? ORDER BY created_at LIMIT 1 \
         FOR UPDATE SKIP LOCKED",
        utc(now)
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let id = match abandoned {
        Some(id) => Some(id),
        None => sqlx::query_scalar!(
            "SELECT id FROM job WHERE state = 'queued' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?,
    };
    let Some(id) = id else { return Ok(None) };
    sqlx::query!(
        "UPDATE job SET state = 'running', attempt = attempt + 1, lease_until = ?, \
         rows_done = IF(kind = 'import', rows_done, 0), rows_total = IF(kind = 'import', rows_total, NULL), \
         updated_at = ? WHERE id = ?",
        utc(lease_until),
        utc(now),
        id
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    drop(conn);
    job(pool, id).await
}

/// Records the progress of `attempt` and renews its lease, telling the requester's live streams
/// (`job.progressed`, in the same transaction); whether it still holds the job.
#[allow(clippy::too_many_arguments)]
pub(super) async fn progress(
    pool: &MySqlPool,
    signal: &OutboxSignal,
    id: Uuid,
    attempt: u32,
    rows_done: u64,
    rows_total: Option<u64>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let done = sqlx::query!(
        "UPDATE job SET rows_done = ?, rows_total = ?, lease_until = ?, updated_at = ? \
         WHERE id = ? AND attempt = ? AND state = 'running'",
        rows_done,
        rows_total,
        utc(lease_until),
        utc(now),
        id,
        attempt
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    tell_progress(&mut tx, id, rows_done, rows_total).await?;
    tx.commit().await.map_err(db)?;
    signal.notify();
    Ok(true)
}

/// Writes the `job.progressed` event of job `id` to the outbox of `tx`.
pub(super) async fn tell_progress(
    tx: &mut sqlx::Transaction<'_, sqlx::MySql>,
    id: Uuid,
    rows_done: u64,
    rows_total: Option<u64>,
) -> Result<()> {
    let job = locked_job(tx, id).await?;
    enqueue(tx, &job_progressed(&job, rows_done, rows_total)).await
}

/// Job `id`, read in `tx` (which has just written its row).
async fn locked_job(conn: &mut MySqlConnection, id: Uuid) -> Result<Job> {
    let row = sqlx::query_as!(
        JobRow,
        "SELECT id, project_id, requester_id, kind, spec, state, attempt, rows_done, rows_total, result_key, \
         result_bytes, error, created_at, updated_at, finished_at FROM job WHERE id = ?",
        id
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Job::try_from(row)
}

/// Appends `envelope` to the outbox of `tx`.
async fn enqueue(conn: &mut MySqlConnection, envelope: &ordo_proto::events::v1::Envelope) -> Result<()> {
    ordo_events::enqueue(conn, envelope).await.map_err(|e| match e {
        ordo_events::Error::Database(e) => db(e),
        other => AppError::Internal(other.into()),
    })
}

/// Ends `attempt` with `outcome`; whether it still held the job. A result's object is kept until
/// its expiry: its deletion is scheduled in the same transaction, as is the event that announces
/// the end (`job.ended`).
pub(super) async fn finish(
    pool: &MySqlPool,
    signal: &OutboxSignal,
    id: Uuid,
    attempt: u32,
    outcome: &JobOutcome,
    now: OffsetDateTime,
) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let ended = match outcome {
        JobOutcome::Done { result, rows, expires_at } => {
            sqlx::query!(
                "INSERT INTO object_deletion (object_key, due_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE due_at = ?",
                result.object_key.as_str(),
                utc(*expires_at),
                utc(*expires_at)
            )
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query!(
                "UPDATE job SET state = 'done', rows_done = ?, rows_total = ?, result_key = ?, result_bytes = ?, \
                 lease_until = NULL, updated_at = ?, finished_at = ? WHERE id = ? AND attempt = ? AND state = 'running'",
                rows,
                rows,
                result.object_key.as_str(),
                result.size_bytes,
                utc(now),
                utc(now),
                id,
                attempt
            )
            .execute(&mut *tx)
            .await
            .map_err(db)?
        }
        JobOutcome::Imported { rows } => sqlx::query!(
            "UPDATE job SET state = 'done', rows_done = ?, rows_total = ?, lease_until = NULL, updated_at = ?, \
             finished_at = ? WHERE id = ? AND attempt = ? AND state = 'running'",
            rows,
            rows,
            utc(now),
            utc(now),
            id,
            attempt
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?,
        JobOutcome::Failed { error } => sqlx::query!(
            "UPDATE job SET state = 'failed', error = ?, import_key = NULL, lease_until = NULL, updated_at = ?, \
             finished_at = ? \
             WHERE id = ? AND attempt = ? AND state = 'running'",
            error.as_str(),
            utc(now),
            utc(now),
            id,
            attempt
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?,
    };
    if ended.rows_affected() != 1 {
        // Taken over or cancelled meanwhile: nothing of this attempt is recorded.
        return Ok(false);
    }
    let (state, rows, error) = match outcome {
        JobOutcome::Done { rows, .. } | JobOutcome::Imported { rows } => (JobState::Done, *rows, ""),
        JobOutcome::Failed { error } => (JobState::Failed, 0, error.as_str()),
    };
    announce(&mut tx, id, state, rows, error).await?;
    tx.commit().await.map_err(db)?;
    signal.notify();
    Ok(true)
}

/// Writes the `job.ended` event of job `id`, which the transaction has just ended, to the outbox.
async fn announce(conn: &mut MySqlConnection, id: Uuid, state: JobState, rows: u64, error: &str) -> Result<()> {
    let job = locked_job(conn, id).await?;
    // A job that did not finish tells how far it got (an import keeps the tasks it created).
    let rows = if state == JobState::Done { rows } else { job.rows_done };
    enqueue(conn, &job_ended(&job, state, rows, error)).await
}

/// Fails every job of a deleted project that has not ended, with `why` as their error, announcing
/// each end (`job.ended`), in the caller's transaction; how many. Run before the project's tasks are
/// deleted in that transaction: an import's chunk that is being written meanwhile either commits
/// first (its tasks then go with the others) or finds its job ended and writes nothing.
pub(crate) async fn fail_jobs_of_project(
    conn: &mut MySqlConnection,
    project_id: Uuid,
    why: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    let ids = sqlx::query_scalar!(
        r#"SELECT id AS "id: Uuid" FROM job WHERE project_id = ? AND state IN ('queued', 'running') FOR UPDATE"#,
        project_id
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for &id in &ids {
        sqlx::query!(
            "UPDATE job SET state = 'failed', error = ?, import_key = NULL, lease_until = NULL, updated_at = ?, \
             finished_at = ? WHERE id = ?",
            why,
            utc(now),
            utc(now),
            id
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        announce(conn, id, JobState::Failed, 0, why).await?;
    }
    Ok(ids.len() as u64)
}

/// Cancels the job unless it has ended, announcing it (`job.ended`); whether it did.
pub(super) async fn cancel(pool: &MySqlPool, signal: &OutboxSignal, id: Uuid, now: OffsetDateTime) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    let done = sqlx::query!(
        "UPDATE job SET state = 'cancelled', import_key = NULL, lease_until = NULL, updated_at = ?, finished_at = ? \
         WHERE id = ? AND state IN ('queued', 'running')",
        utc(now),
        utc(now),
        id
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    announce(&mut tx, id, JobState::Cancelled, 0, "").await?;
    tx.commit().await.map_err(db)?;
    signal.notify();
    Ok(true)
}
