//! Moving a task on its project's board: the neighbours a request names are read under the board
//! lock, and the task takes a position between them ([`super::placement`]).

use uuid::Uuid;

use super::placement::place;
use super::ports::Side;
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_TASK, now, retrying};
use super::{AppError, Result};
use crate::domain::{FieldViolation, Position, Task, TaskEvent, Violations};

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
        retrying(|| self.reposition(caller, task.id, task.project_id, after, before, expected_version, client)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn reposition(
        &self,
        caller: &Caller,
        id: Uuid,
        project_id: Uuid,
        after: Option<Uuid>,
        before: Option<Uuid>,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let mut tx = self.store.begin().await?;
        // The board lock first: every move and create of the project waits here, so the neighbours
        // read below are the latest and no two moves pick the same gap.
        if !tx.lock_board(project_id).await? {
            return Err(AppError::NotFound(NO_TASK.into()));
        }
        let mut task = tx.task_for_update(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        AppError::check_version(task.version, expected_version)?;
        let position_of = |t: Option<Task>, field: &'static str| -> Result<Position> {
            match t {
                Some(t) if t.project_id == project_id => Ok(t.position),
                _ => Err(AppError::field(field, "no such task in this project")),
            }
        };
        let (lower, upper) = match (after, before) {
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
        if already_there {
            return Ok(task);
        }
        let previous = task.version;
        task.position = place(tx.as_mut(), project_id, id, lower.as_ref(), upper.as_ref()).await?;
        task.touch(now());
        tx.update_task(&task, previous, &["position"]).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::Updated { task: task.clone(), changed: vec!["position"], recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(task)
    }
}
