//! The board of a project in MySQL: the per-project counter row, whose lock serialises the
//! project's creates, moves and tree changes and which hands out task numbers, and the reads and
//! writes of board positions.
//!
//! The reads of positions name their index (`FORCE INDEX (task_position)`). Left to itself, MariaDB
//! picks, for about one execution of a prepared statement in three, `ref` access on the index's
//! `project_id` prefix over `range` access from the bound: it then walks the project's board from
//! its first (or last) task to the neighbour, filtering each entry, in time that grows with the
//! board, while the board lock is held. Forced, the index is always read as a range from the bound
//! (measured on a 22,000-task board: 40 of 40 executions a range, against 28 of 40 and 119,000
//! entries filtered without the hint).

use sqlx::mysql::MySqlPool;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use uuid::Uuid;

use super::db;
use super::rows::stored_position;
use crate::app::ports::{BoardSlot, Side};
use crate::app::{AppError, Result};
use crate::domain::Position;

/// Tasks re-spaced per statement: three placeholders each, well within MariaDB's 65,535.
const RESPACE_CHUNK: usize = 1000;

/// Makes sure the project's counter row exists.
///
/// Looked for first with a plain read, which waits for no lock: `INSERT IGNORE` on a row that
/// exists takes a shared lock on it, so every batch of creates would first queue behind the
/// transaction holding the board, and then queue again to take it.
pub(super) async fn ensure_counter(pool: &MySqlPool, project_id: Uuid) -> Result<()> {
    let exists: Option<i64> =
        sqlx::query_scalar!("SELECT last_number FROM task_counter WHERE project_id = ?", project_id)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    if exists.is_none() {
        sqlx::query!("INSERT IGNORE INTO task_counter (project_id, last_number) VALUES (?, 0)", project_id)
            .execute(pool)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Takes the next `count` numbers of the project; the first of them.
pub(super) async fn take_numbers(conn: &mut MySqlConnection, project_id: Uuid, count: usize) -> Result<i64> {
    let count = i64::try_from(count).map_err(|_| AppError::Internal(anyhow::anyhow!("too many numbers")))?;
    // `LAST_INSERT_ID(expr)` hands the new value back with the update's result: one round trip.
    let updated = sqlx::query!(
        "UPDATE task_counter SET last_number = LAST_INSERT_ID(last_number + ?) WHERE project_id = ?",
        count,
        project_id
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if updated.rows_affected() != 1 {
        return Err(AppError::Internal(anyhow::anyhow!("project {project_id} has no task counter")));
    }
    let last = i64::try_from(updated.last_insert_id())
        .map_err(|_| AppError::Internal(anyhow::anyhow!("task counter out of range")))?;
    Ok(last - count + 1)
}

/// Locks the project's board (its counter row); `false` when the project has none.
pub(super) async fn lock_board(conn: &mut MySqlConnection, project_id: Uuid) -> Result<bool> {
    let row: Option<i64> =
        sqlx::query_scalar!("SELECT last_number FROM task_counter WHERE project_id = ? FOR UPDATE", project_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    Ok(row.is_some())
}

/// The last position of the board.
pub(super) async fn last_position(conn: &mut MySqlConnection, project_id: Uuid) -> Result<Option<Position>> {
    let last: Option<String> = sqlx::query_scalar!(
        "SELECT position FROM task FORCE INDEX (task_position) WHERE project_id = ? ORDER BY position DESC LIMIT 1",
        project_id
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    last.map(|p| stored_position(&p)).transpose()
}

/// The `nth` position from `of` on `side`, leaving out task `except`.
pub(super) async fn nth_neighbour(
    conn: &mut MySqlConnection,
    project_id: Uuid,
    of: &Position,
    side: Side,
    nth: u32,
    except: Uuid,
) -> Result<Option<Position>> {
    let skip = nth.saturating_sub(1);
    let found: Option<String> = match side {
        Side::After => {
            sqlx::query_scalar!(
                "SELECT position FROM task FORCE INDEX (task_position) \
                 WHERE project_id = ? AND position > ? AND id <> ? ORDER BY position LIMIT 1 OFFSET ?",
                project_id,
                of.as_str(),
                except,
                skip
            )
            .fetch_optional(&mut *conn)
            .await
        }
        Side::Before => {
            sqlx::query_scalar!(
                "SELECT position FROM task FORCE INDEX (task_position) \
                 WHERE project_id = ? AND position < ? AND id <> ? ORDER BY position DESC LIMIT 1 OFFSET ?",
                project_id,
                of.as_str(),
                except,
                skip
            )
            .fetch_optional(&mut *conn)
            .await
        }
    }
    .map_err(db)?;
    found.map(|p| stored_position(&p)).transpose()
}

/// The tasks strictly between `lower` and `upper` in board order, leaving out task `except`.
pub(super) async fn board_between(
    conn: &mut MySqlConnection,
    project_id: Uuid,
    lower: Option<&Position>,
    upper: Option<&Position>,
    except: Uuid,
) -> Result<Vec<BoardSlot>> {
    // Built at run time: either bound may be missing. Every value is bound.
    let mut sql =
        QueryBuilder::<MySql>::new("SELECT id, position FROM task FORCE INDEX (task_position) WHERE project_id = ");
    sql.push_bind(project_id).push(" AND id <> ").push_bind(except);
    if let Some(lower) = lower {
        sql.push(" AND position > ").push_bind(lower.as_str());
    }
    if let Some(upper) = upper {
        sql.push(" AND position < ").push_bind(upper.as_str());
    }
    sql.push(" ORDER BY position");
    let rows: Vec<(Uuid, String)> = sql.build_query_as().fetch_all(&mut *conn).await.map_err(db)?;
    rows.into_iter().map(|(id, p)| Ok(BoardSlot { id, position: stored_position(&p)? })).collect()
}

/// Gives each task of `slots` its new position.
pub(super) async fn respace(conn: &mut MySqlConnection, project_id: Uuid, slots: &[BoardSlot]) -> Result<()> {
    // MariaDB checks the unique (project_id, position) row by row, so a task cannot take a
    // position another of these tasks still holds. Every one is first parked on a key of its
    // own that no real key can equal (`~` is outside the alphabet, and sorts after it), then
    // each takes its new key, which by then only other tasks' keys could collide with. The
    // parked keys live only inside this transaction, which holds the board lock, so no one
    // sees them.
    // Built at run time: `IN` lists and a `CASE` over the chunk's tasks. Every value is bound.
    for chunk in slots.chunks(RESPACE_CHUNK) {
        let mut park =
            QueryBuilder::<MySql>::new("UPDATE task SET position = CONCAT('~', HEX(id)) WHERE project_id = ");
        park.push_bind(project_id).push(" AND id IN (");
        let mut ids = park.separated(", ");
        for slot in chunk {
            ids.push_bind(slot.id);
        }
        park.push(")");
        park.build().execute(&mut *conn).await.map_err(db)?;
    }
    for chunk in slots.chunks(RESPACE_CHUNK) {
        let mut place = QueryBuilder::<MySql>::new("UPDATE task SET position = CASE id");
        for slot in chunk {
            place.push(" WHEN ").push_bind(slot.id).push(" THEN ").push_bind(slot.position.as_str());
        }
        place.push(" END WHERE project_id = ").push_bind(project_id).push(" AND id IN (");
        let mut ids = place.separated(", ");
        for slot in chunk {
            ids.push_bind(slot.id);
        }
        place.push(")");
        place.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}
