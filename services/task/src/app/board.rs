//! Moving a task on its project's board: the neighbours a request names are read under the board
//! lock, and the task takes a position between them ([`super::placement`]). Moves of one project go
//! through the project's move lane ([`super::lanes`]): while one transaction of moves runs, the
//! moves that arrive wait, and the next transaction takes them all, each applied in turn on the
//! board as the ones before it left it, with one lock of the board and one commit for all. Moves
//! of different projects never wait for one another.

use uuid::Uuid;

use super::lanes::{MoveItem, batch_or_each};
use super::placement::place;
use super::ports::{Side, TaskTx};
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_TASK, now};
use super::{AppError, Result};
use crate::domain::{FieldViolation, Position, Task, TaskEvent, Violations};

/// How many moves each transaction of a lane wrote.
const BATCH_SIZE: &str = "ordo_task_move_batch_size";

impl TaskService {
    /// Moves a task in its project's board order, right after `after_id` and/or right before
    /// `before_id` (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn move_task(
        &self,
        caller: &Caller,
        id: &str,
        after_id: Option<&str>,
        before_id: Option<&str>,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let mut v = Violations::default();
        let mut neighbour = |raw: Option<&str>, field: &'static str| -> Option<Uuid> {
            let raw = raw.filter(|r| !r.is_empty())?;
            match Uuid::parse_str(raw) {
                Ok(id) if id == task.id => {
                    v.push(FieldViolation::new(field, "a task is not its own neighbour"));
                    None
                }
                Ok(id) => Some(id),
                Err(_) => {
                    v.push(FieldViolation::new(field, "must be a task id"));
                    None
                }
            }
        };
        let after = neighbour(after_id, "after_id");
        let before = neighbour(before_id, "before_id");
        if !v.is_empty() {
            return Err(AppError::Invalid(v.0));
        }
        if after.is_none() && before.is_none() {
            return Err(AppError::field("after_id", "give after_id, before_id or both"));
        }
        let item = MoveItem {
            caller: caller.clone(),
            task_id: task.id,
            after,
            before,
            expected_version,
            client: client.clone(),
        };
        let project_id = task.project_id;
        let service = self.clone();
        self.moves
            .submit(project_id, item, move |items| {
                let service = service.clone();
                async move { service.write_moves(project_id, &items).await }
            })
            .await
    }

    /// One outcome per move, in order: the batch in one transaction, or each alone if that fails.
    #[tracing::instrument(skip_all, fields(project = %project_id, moves = items.len()))]
    async fn write_moves(&self, project_id: Uuid, items: &[MoveItem]) -> Vec<Result<Task>> {
        metrics::histogram!(BATCH_SIZE).record(items.len() as f64);
        // Each attempt owns a handle on the service, so its future borrows only the moves it writes.
        batch_or_each(items, "moves", |items| {
            let service = self.clone();
            Box::pin(async move { service.move_batch(project_id, items).await })
        })
        .await
    }

    /// Writes `items` in one transaction under the board lock, one after another as if each had
    /// the board alone. `Err` when the transaction failed (nothing was written); otherwise one
    /// outcome per move, where a move refused for its own input (a neighbour elsewhere, a stale
    /// version, a task deleted meanwhile) is an `Err` of its own: it is refused while the board is
    /// read, before it writes anything, so the others stand.
    async fn move_batch(&self, project_id: Uuid, items: &[MoveItem]) -> Result<Vec<Result<Task>>> {
        let mut tx = self.store.begin().await?;
        // The board lock first: every move and create of the project waits here, so the neighbours
        // read below are the latest and no two moves pick the same gap.
        if !tx.lock_board(project_id).await? {
            return Ok(items.iter().map(|_| Err(AppError::NotFound(NO_TASK.into()))).collect());
        }
        let mut outcomes = Vec::with_capacity(items.len());
        let mut moved = false;
        for item in items {
            let (mut task, lower, upper) = match plan(tx.as_mut(), project_id, item).await {
                Ok(Plan::Stay(task)) => {
                    outcomes.push(Ok(task));
                    continue;
                }
                Ok(Plan::Between { task, lower, upper }) => (task, lower, upper),
                Err(error @ (AppError::NotFound(_) | AppError::Invalid(_) | AppError::VersionMismatch(_))) => {
                    outcomes.push(Err(error));
                    continue;
                }
                Err(error) => return Err(error),
            };
            let previous = task.version;
            task.position = place(tx.as_mut(), project_id, task.id, lower.as_ref(), upper.as_ref()).await?;
            task.touch(now());
            tx.update_task(&task, previous, &["position"]).await?;
            let watchers = tx.watchers(task.id).await?;
            let recipients = task.recipients(&watchers);
            let event = TaskEvent::Updated { task: task.clone(), changed: vec!["position"], recipients };
            tx.record(&event, Some(item.caller.user_id), &item.client).await?;
            moved = true;
            outcomes.push(Ok(task));
        }
        tx.commit().await?;
        if moved {
            self.lists_changed([project_id]).await;
        }
        Ok(outcomes)
    }
}

/// What a move comes to on the board as it stands.
enum Plan {
    /// The task is between the neighbours already: nothing to write.
    Stay(Task),
    /// The task goes between these positions (`None`: the start or the end of the board).
    Between { task: Task, lower: Option<Position>, upper: Option<Position> },
}

/// Reads the moving task (locked) and its new neighbours, and checks the move against them; writes
/// nothing. Requires the board lock.
async fn plan(tx: &mut dyn TaskTx, project_id: Uuid, item: &MoveItem) -> Result<Plan> {
    let id = item.task_id;
    let task = tx.task_for_update(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
    AppError::check_version(task.version, item.expected_version)?;
    let position_of = |t: Option<Task>, field: &'static str| -> Result<Position> {
        match t {
            Some(t) if t.project_id == project_id => Ok(t.position),
            _ => Err(AppError::field(field, "no such task in this project")),
        }
    };
    let (lower, upper) = match (item.after, item.before) {
        (Some(a), Some(b)) => {
            let lower = position_of(tx.task(a).await?, "after_id")?;
            let upper = position_of(tx.task(b).await?, "before_id")?;
            if lower >= upper {
                return Err(AppError::field("before_id", "must come after after_id on the board"));
            }
            (Some(lower), Some(upper))
        }
        (Some(a), None) => {
            let lower = position_of(tx.task(a).await?, "after_id")?;
            let upper = tx.neighbour(project_id, &lower, Side::After, id).await?;
            (Some(lower), upper)
        }
        (None, Some(b)) => {
            let upper = position_of(tx.task(b).await?, "before_id")?;
            let lower = tx.neighbour(project_id, &upper, Side::Before, id).await?;
            (lower, Some(upper))
        }
        (None, None) => return Err(AppError::field("after_id", "give after_id, before_id or both")),
    };
    let already_there =
        lower.as_ref().is_none_or(|l| *l < task.position) && upper.as_ref().is_none_or(|u| task.position < *u);
    Ok(if already_there { Plan::Stay(task) } else { Plan::Between { task, lower, upper } })
}
