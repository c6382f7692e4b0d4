//! Moving a task on its project's board: the neighbours a request names are read under the board
//! lock, and the task takes a position between them ([`super::placement`]). Moves of one project go
//! through the project's move lane ([`super::lanes`]): while one transaction of moves runs, the
//! moves that arrive wait, and the next transaction takes them all, each applied in turn on the
//! board as the ones before it left it, with one lock of the board and one commit for all. Moves
//! of different projects never wait for one another.

use std::collections::HashMap;

use tracing::Instrument as _;
use uuid::Uuid;

use super::lanes::{MoveItem, batch_or_each, link_requests};
use super::placement::place;
use super::ports::{Side, TaskTx};
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_TASK, id_of, now};
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
        // The task's project (remembered, a task never changes project) decides the caller's
        // access and the lane; the lane's transaction reads the task itself.
        let task_id = id_of(id, NO_TASK)?;
        let project_id = self.project_of_task(task_id).await?;
        let (access, _) = self.access(caller, project_id, NO_TASK).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let mut v = Violations::default();
        let mut neighbour = |raw: Option<&str>, field: &'static str| -> Option<Uuid> {
            let raw = raw.filter(|r| !r.is_empty())?;
            match Uuid::parse_str(raw) {
                Ok(id) if id == task_id => {
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
            task_id,
            after,
            before,
            expected_version,
            client: client.clone(),
            span: tracing::Span::current(),
        };
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
        link_requests(items.iter().map(|item| &item.span));
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
    ///
    /// Every task the moves name is read and locked at once, and their watchers with them; the
    /// moves then update that picture as they go, so each costs one position write, plus one read
    /// of the board when it names one neighbour only.
    async fn move_batch(&self, project_id: Uuid, items: &[MoveItem]) -> Result<Vec<Result<Task>>> {
        let mut tx = self.store.begin().await?;
        // The board lock first: every move and create of the project waits here, so the neighbours
        // read below are the latest and no two moves pick the same gap.
        if !tx.lock_board(project_id).await? {
            return Ok(items.iter().map(|_| Err(AppError::NotFound(NO_TASK.into()))).collect());
        }
        let mut named: Vec<Uuid> = items.iter().flat_map(|i| [Some(i.task_id), i.after, i.before]).flatten().collect();
        named.sort_unstable();
        named.dedup();
        // A task of another project is, for these moves, no task at all.
        let mut board: HashMap<Uuid, Task> = tx
            .tasks_for_update(&named)
            .await?
            .into_iter()
            .filter(|t| t.project_id == project_id)
            .map(|t| (t.id, t))
            .collect();
        let mut moving: Vec<Uuid> = items.iter().map(|i| i.task_id).filter(|id| board.contains_key(id)).collect();
        moving.sort_unstable();
        moving.dedup();
        let mut watchers: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (task_id, user_id) in tx.watchers_of(&moving).await? {
            watchers.entry(task_id).or_default().push(user_id);
        }

        let mut outcomes = Vec::with_capacity(items.len());
        let mut moved = false;
        for item in items {
            let (mut task, lower, upper) = match plan(tx.as_mut(), project_id, &board, item).await {
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
            let placed = place(tx.as_mut(), project_id, task.id, lower.as_ref(), upper.as_ref()).await?;
            for slot in placed.respaced {
                if let Some(known) = board.get_mut(&slot.id) {
                    known.position = slot.position;
                }
            }
            task.position = placed.position;
            task.touch(now());
            tx.update_task(&task, previous, &["position"]).await?;
            let recipients = task.recipients(watchers.get(&task.id).map_or(&[], Vec::as_slice));
            let event = TaskEvent::Updated { task: task.clone(), changed: vec!["position"], recipients };
            tx.record(&event, Some(item.caller.user_id), &item.client).instrument(item.span.clone()).await?;
            board.insert(task.id, task.clone());
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

/// Checks a move against the board as it stands: `board` holds the project's tasks the batch
/// names, as the moves before this one left them. Writes nothing; reads the board only for a
/// neighbour the request leaves out. Requires the board lock.
async fn plan(tx: &mut dyn TaskTx, project_id: Uuid, board: &HashMap<Uuid, Task>, item: &MoveItem) -> Result<Plan> {
    let id = item.task_id;
    let task = board.get(&id).cloned().ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
    AppError::check_version(task.version, item.expected_version)?;
    let position_of = |neighbour: Uuid, field: &'static str| -> Result<Position> {
        board
            .get(&neighbour)
            .map(|t| t.position.clone())
            .ok_or_else(|| AppError::field(field, "no such task in this project"))
    };
    let (lower, upper) = match (item.after, item.before) {
        (Some(a), Some(b)) => {
            let lower = position_of(a, "after_id")?;
            let upper = position_of(b, "before_id")?;
            if lower >= upper {
                return Err(AppError::field("before_id", "must come after after_id on the board"));
            }
            (Some(lower), Some(upper))
        }
        (Some(a), None) => {
            let lower = position_of(a, "after_id")?;
            let upper = tx.neighbour(project_id, &lower, Side::After, id).await?;
            (Some(lower), upper)
        }
        (None, Some(b)) => {
            let upper = position_of(b, "before_id")?;
            let lower = tx.neighbour(project_id, &upper, Side::Before, id).await?;
            (lower, Some(upper))
        }
        (None, None) => return Err(AppError::field("after_id", "give after_id, before_id or both")),
    };
    let already_there =
        lower.as_ref().is_none_or(|l| *l < task.position) && upper.as_ref().is_none_or(|u| task.position < *u);
    Ok(if already_there { Plan::Stay(task) } else { Plan::Between { task, lower, upper } })
}
