//! Creates of one project, written together. Every create of a project takes the project's counter
//! (its next number, with no gaps) and the end of its board, so creates of one project run one after
//! another whatever is done; what this module changes is how many share one turn. Each project has a
//! *lane*: while one transaction of the lane runs, the creates that arrive wait in it, and the next
//! transaction takes them all (up to [`MAX_BATCH`](super::lanes::MAX_BATCH)), with one lock of the counter, one read of the
//! board's end, multi-row inserts and one commit. Under light load a lane's batch is one create and
//! nothing waits; under a burst, one commit's cost is shared by many.
//!
//! A batch that fails for a reason other than a lost lock race is written again one create at a
//! time, so each create gets its own outcome (a parent deleted meanwhile fails that create alone).

use tracing::Instrument as _;
use uuid::Uuid;

use super::lanes::{CreateItem as Item, batch_or_each, link_requests};
use super::placement::append_tasks;
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::{AppError, Result};
use crate::domain::{NewTask, Task, TaskEvent, check_parent};

/// How many creates each transaction of a lane wrote.
const BATCH_SIZE: &str = "ordo_task_create_batch_size";

impl TaskService {
    /// Creates `new` in its project's lane and waits for the outcome.
    pub(super) async fn create_in_lane(
        &self,
        caller: &Caller,
        project_id: Uuid,
        project_key: String,
        new: NewTask,
        client: &ClientInfo,
    ) -> Result<Task> {
        let item =
            Item { caller: caller.clone(), project_key, new, client: client.clone(), span: tracing::Span::current() };
        let service = self.clone();
        self.creates
            .submit(project_id, item, move |items| {
                let service = service.clone();
                async move { service.write_creates(project_id, &items).await }
            })
            .await
    }

    /// One outcome per item, in order: the batch in one transaction, or each alone if that fails.
    #[tracing::instrument(skip_all, fields(project = %project_id, creates = items.len()))]
    async fn write_creates(&self, project_id: Uuid, items: &[Item]) -> Vec<Result<Task>> {
        if let Err(error) = self.store.ensure_counter(project_id).await {
            return items.iter().map(|_| Err(shared(&error))).collect();
        }
        metrics::histogram!(BATCH_SIZE).record(items.len() as f64);
        link_requests(items.iter().map(|item| &item.span));
        // Each attempt owns a handle on the service, so its future borrows only the creates it writes.
        batch_or_each(items, "creates", |items| {
            let service = self.clone();
            Box::pin(async move { service.insert_batch(project_id, items).await })
        })
        .await
    }

    /// Writes `items` in one transaction. `Err` when the transaction failed (nothing was written);
    /// otherwise one outcome per item, where an item refused for its own input (its parent) is an
    /// `Err` of its own and takes no number.
    async fn insert_batch(&self, project_id: Uuid, items: &[Item]) -> Result<Vec<Result<Task>>> {
        let mut tx = self.store.begin().await?;
        let with_parent = items.iter().any(|item| item.new.parent_id.is_some());
        // The counter row first, so the board stays locked from here on and every read below sees
        // the latest board. Parents are judged before numbers are taken: a refused create takes none.
        let mut refused: Vec<Option<AppError>> = items.iter().map(|_| None).collect();
        if with_parent {
            tx.lock_board(project_id).await?;
            for (item, refusal) in items.iter().zip(refused.iter_mut()) {
                if let Some(parent) = item.new.parent_id {
                    *refusal = match tx.parent_chain(parent).await? {
                        None => Some(AppError::field("parent_id", "no such task in this project")),
                        Some(chain) => check_parent(project_id, None, 1, &chain)
                            .err()
                            .map(|violation| AppError::Invalid(vec![violation])),
                    };
                }
            }
        }
        let accepted: Vec<(NewTask, Uuid)> = items
            .iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_none())
            .map(|(item, _)| (item.new.clone(), item.caller.user_id))
            .collect();
        let project_key = items.first().map(|item| item.project_key.as_str()).unwrap_or_default();
        let tasks = append_tasks(tx.as_mut(), project_id, project_key, accepted).await?;
        let accepted_items = items.iter().zip(&refused).filter(|(_, r)| r.is_none()).map(|(item, _)| item);
        for (task, item) in tasks.iter().zip(accepted_items) {
            let mut events = vec![TaskEvent::Created { task: task.clone(), recipients: task.recipients(&[]) }];
            for assignee in task.assignees.as_slice() {
                events.push(TaskEvent::Assigned { task: task.clone(), assignee: *assignee });
            }
            // In the request's span, so the events (and whatever consumes them) continue its trace.
            for event in &events {
                tx.record(event, Some(item.caller.user_id), &item.client).instrument(item.span.clone()).await?;
            }
        }
        tx.commit().await?;
        if !tasks.is_empty() {
            self.lists_changed([project_id]).await;
        }
        let mut tasks = tasks.into_iter();
        Ok(refused
            .into_iter()
            .map(|refusal| {
                refusal.map_or_else(
                    || {
                        tasks
                            .next()
                            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a create of the batch went missing")))
                    },
                    Err,
                )
            })
            .collect())
    }
}

/// `error`, for each of several creates it failed.
fn shared(error: &AppError) -> AppError {
    match error {
        AppError::Unavailable(message) => AppError::Unavailable(message.clone()),
        AppError::Contention => AppError::Contention,
        other => AppError::Internal(anyhow::anyhow!("{other}")),
    }
}
