//! Where a task goes on its project's board: a position between its new neighbours, and the
//! re-spacing of a crowded gap, and the appending of new tasks at its end. Used by creates, imports
//! and moves alike, under the board lock.

use uuid::Uuid;

use super::ports::{BoardSlot, Side, TaskTx};
use super::shared::now;
use super::{AppError, Result};
use crate::domain::{NewTask, Position, PositionError, StatusChange, Task};

/// How many tasks on each side of a gap a first re-spacing rewrites; each retry doubles it.
const RESPACE_REACH: u32 = 4;

/// Where [`place`] put a task.
pub(super) struct Placed {
    /// The task's new position.
    pub position: Position,
    /// Every task given a new position to make room, the placed one among them; empty unless the
    /// gap was re-spaced.
    pub respaced: Vec<BoardSlot>,
}

/// The position for task `id` (moving, or being created) between `lower` and `upper`, its new
/// neighbours (`None`: the start or the end of the board). Requires the board lock.
///
/// Normally a key strictly between them, which rewrites no other task. When that key would be
/// long (inserts into one gap over and over lengthen it), the tasks around the gap are re-spaced
/// instead: the `reach` tasks on each side, from the neighbours outwards, get short evenly spaced
/// keys between the window's outer bounds, and the task takes the slot right after `lower`. The
/// reach doubles until the bounds leave room, up to the whole board, so keys stay within
/// [`crate::domain::LONG_POSITION_LEN`] and a move rewrites a handful of rows, amortised.
///
/// Re-spaced tasks keep their `version` and `updated_at` and raise no event: their order is
/// unchanged, only the opaque keys that encode it are; `version` guards a task's writable fields
/// against lost updates, and bumping it (or notifying watchers) for someone else's move elsewhere
/// on the board would fail their `If-Match` writes and notify about nothing they could see.
pub(super) async fn place(
    tx: &mut dyn TaskTx,
    project_id: Uuid,
    id: Uuid,
    lower: Option<&Position>,
    upper: Option<&Position>,
) -> Result<Placed> {
    match Position::between(lower, upper) {
        Ok(key) if !key.is_long() => return Ok(Placed { position: key, respaced: Vec::new() }),
        Ok(_) | Err(PositionError::TooLong) => {}
        Err(error @ PositionError::NotOrdered) => return Err(position_error(error)),
    }
    let mut reach = RESPACE_REACH;
    loop {
        let outer_lower = match lower {
            Some(lower) => tx.nth_neighbour(project_id, lower, Side::Before, reach, id).await?,
            None => None,
        };
        let outer_upper = match upper {
            Some(upper) => tx.nth_neighbour(project_id, upper, Side::After, reach, id).await?,
            None => None,
        };
        let window = tx.board_between(project_id, outer_lower.as_ref(), outer_upper.as_ref(), id).await?;
        let whole_board = outer_lower.is_none() && outer_upper.is_none();
        let mut keys = match Position::spread(outer_lower.as_ref(), outer_upper.as_ref(), window.len() + 1) {
            Ok(keys) => keys.into_iter(),
            Err(PositionError::TooLong) if !whole_board => {
                reach = reach.saturating_mul(2);
                continue;
            }
            Err(error) => return Err(position_error(error)),
        };
        // Right after `lower`: past every task at or below it (with both neighbours given, tasks
        // between them stay after the moved one).
        let before = window.iter().take_while(|slot| lower.is_some_and(|lower| slot.position <= *lower)).count();
        let mut slots = Vec::with_capacity(window.len() + 1);
        let mut tasks = window.into_iter();
        slots.extend(
            tasks.by_ref().take(before).zip(keys.by_ref()).map(|(t, position)| BoardSlot { id: t.id, position }),
        );
        let position = keys.next().ok_or_else(|| AppError::Internal(anyhow::anyhow!("a spread fell short")))?;
        // The task itself too: a moving task must leave its old key, which the window may reuse.
        slots.push(BoardSlot { id, position: position.clone() });
        slots.extend(tasks.zip(keys).map(|(t, position)| BoardSlot { id: t.id, position }));
        tx.respace(project_id, &slots).await?;
        tracing::info!(tasks = slots.len(), reach, "board re-spaced around a crowded gap");
        return Ok(Placed { position, respaced: slots });
    }
}

fn position_error(error: PositionError) -> AppError {
    match error {
        PositionError::NotOrdered => AppError::field("before_id", "must come after after_id on the board"),
        PositionError::TooLong => AppError::Internal(anyhow::anyhow!("board order too dense to place a task")),
    }
}

/// Writes `news` (each with its reporter) at the end of `project_id`'s board, in order, with the
/// project's next numbers, and their first status in its history: the tasks written. Takes the
/// counter row first, so the board stays locked until the transaction ends.
pub(super) async fn append_tasks(
    tx: &mut dyn TaskTx,
    project_id: Uuid,
    project_key: &str,
    news: Vec<(NewTask, Uuid)>,
) -> Result<Vec<Task>> {
    let mut tasks = Vec::with_capacity(news.len());
    if news.is_empty() {
        return Ok(tasks);
    }
    let first = tx.take_numbers(project_id, news.len()).await?;
    let mut last = tx.last_position(project_id).await?;
    let mut unwritten: Vec<Task> = Vec::new();
    for (number, (new, reporter)) in (first..).zip(news) {
        let id = Uuid::now_v7();
        let position = match Position::between(last.as_ref(), None) {
            Ok(key) if !key.is_long() => key,
            // The end of the board needs re-spacing: it must see every task placed so far.
            _ => {
                tx.insert_tasks(&unwritten).await?;
                tasks.append(&mut unwritten);
                place(tx, project_id, id, last.as_ref(), None).await?.position
            }
        };
        let task = Task::create(id, project_id, project_key.to_owned(), number, new, reporter, position.clone(), now());
        last = Some(position);
        unwritten.push(task);
    }
    tx.insert_tasks(&unwritten).await?;
    tasks.append(&mut unwritten);
    tx.record_status_changes(&tasks.iter().map(StatusChange::created).collect::<Vec<_>>()).await?;
    Ok(tasks)
}
