//! Lanes: per project, the writes waiting for that project's turn on its board. Creates and moves
//! each have their own [`Lanes`]; a project is in a lane map exactly while a task drains its lane,
//! and each turn writes everything that waited (up to [`MAX_BATCH`]) in one transaction. Under
//! light load a turn is one write and nothing waits; under a burst, one lock of the board and one
//! commit are shared by many. `creates` and `board` write the turns.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::request::{Caller, ClientInfo};
use super::{AppError, Result};
use crate::domain::NewTask;

/// Most writes of one lane in one transaction.
pub(super) const MAX_BATCH: usize = 64;

/// A create: who asked, in which project (its key), what, and from where.
pub(super) struct CreateItem {
    pub caller: Caller,
    pub project_key: String,
    pub new: NewTask,
    pub client: ClientInfo,
    /// The request's span: the create's events continue its trace, whichever request's turn writes it.
    pub span: tracing::Span,
}

/// A move of a task the caller may change: where to, under which expected version, and who asked
/// from where.
pub(super) struct MoveItem {
    pub caller: Caller,
    pub task_id: Uuid,
    pub after: Option<Uuid>,
    pub before: Option<Uuid>,
    pub expected_version: Option<i64>,
    pub client: ClientInfo,
    /// The request's span: the move's event continues its trace, whichever request's turn writes it.
    pub span: tracing::Span,
}

/// An item waiting for its lane's turn, and where its outcome goes.
struct Pending<I, T> {
    item: I,
    reply: oneshot::Sender<Result<T>>,
}

/// The lanes with work, by project, of items `I` whose writes answer `T`.
pub(super) struct Lanes<I, T> {
    lanes: Mutex<HashMap<Uuid, VecDeque<Pending<I, T>>>>,
}

impl<I, T> Default for Lanes<I, T> {
    fn default() -> Self {
        Self { lanes: Mutex::default() }
    }
}

impl<I, T> std::fmt::Debug for Lanes<I, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

impl<I: Send + 'static, T: Send + 'static> Lanes<I, T> {
    /// Queues `item` in the project's lane and waits for its outcome. When the lane was idle, a
    /// task is spawned that drains it, `write` turning each batch into one outcome per item, in
    /// order; spawned rather than awaited here, the lane serves every caller queued in it and
    /// finishes even if this caller goes away.
    pub(super) async fn submit<W, Fut>(self: &Arc<Self>, project_id: Uuid, item: I, write: W) -> Result<T>
    where
        W: FnMut(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<T>>> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        if self.push(project_id, Pending { item, reply }) {
            tokio::spawn(Arc::clone(self).drain(project_id, write));
        }
        outcome.await.map_err(|_| AppError::Internal(anyhow::anyhow!("the write was dropped unanswered")))?
    }

    /// Writes the lane's batches until it is empty.
    async fn drain<W, Fut>(self: Arc<Self>, project_id: Uuid, mut write: W)
    where
        W: FnMut(Vec<I>) -> Fut,
        Fut: Future<Output = Vec<Result<T>>>,
    {
        loop {
            let batch = self.next_batch(project_id);
            if batch.is_empty() {
                return;
            }
            let (items, replies): (Vec<I>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.reply)).unzip();
            let count = items.len();
            // A panic must not leave the lane open with no one draining it.
            match AssertUnwindSafe(write(items)).catch_unwind().await {
                Ok(outcomes) => {
                    // A missing outcome drops its reply, which its caller reads as an internal error.
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        // The caller may have gone away; the write stands all the same.
                        let _ = reply.send(outcome);
                    }
                }
                Err(_) => {
                    tracing::error!(%project_id, writes = count, "a batch of a lane panicked");
                    for reply in replies {
                        let _ = reply.send(Err(AppError::Internal(anyhow::anyhow!("the write failed"))));
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, VecDeque<Pending<I, T>>>> {
        // Every critical section leaves the map whole.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `pending`; `true` when the lane was idle, so the caller must start draining it.
    fn push(&self, project_id: Uuid, pending: Pending<I, T>) -> bool {
        let mut lanes = self.lock();
        match lanes.get_mut(&project_id) {
            Some(lane) => {
                lane.push_back(pending);
                false
            }
            None => {
                lanes.insert(project_id, VecDeque::from([pending]));
                true
            }
        }
    }

    /// The lane's next batch; an empty one means the lane is closed and a later push starts anew.
    fn next_batch(&self, project_id: Uuid) -> Vec<Pending<I, T>> {
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(&project_id) else { return Vec::new() };
        let batch: Vec<_> = lane.drain(..lane.len().min(MAX_BATCH)).collect();
        if batch.is_empty() {
            lanes.remove(&project_id);
        }
        batch
    }
}

/// One outcome per item of a batch written by `write`: all of `items` in one transaction, or, when
/// that fails for a reason other than one item's own (a lost lock race retried too often, a
/// backend error), each alone, so each gets its own outcome. `write` answers `Err` when its
/// transaction failed (nothing was written), else one outcome per item.
pub(super) async fn batch_or_each<I, T, F>(items: &[I], what: &'static str, mut write: F) -> Vec<Result<T>>
where
    F: for<'a> FnMut(&'a [I]) -> BoxFuture<'a, Result<Vec<Result<T>>>>,
{
    if items.len() > 1 {
        match super::shared::retrying(|| write(items)).await {
            Ok(outcomes) => return outcomes,
            Err(error) => {
                tracing::warn!(%error, writes = items.len(), "a batch of {what} failed; writing them one by one")
            }
        }
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let outcome = super::shared::retrying(|| write(std::slice::from_ref(item))).await;
        outcomes.push(outcome.and_then(|mut one| one.pop().unwrap_or_else(|| Err(lost()))));
    }
    outcomes
}

fn lost() -> AppError {
    AppError::Internal(anyhow::anyhow!("a write of the batch went missing"))
}

/// Links the current span (a turn of a lane) to the span of each request it writes for: the turn
/// runs in the trace of whichever request started it, and the links lead from it to the others.
pub(super) fn link_requests<'a>(requests: impl Iterator<Item = &'a tracing::Span>) {
    let turn = tracing::Span::current();
    for request in requests {
        ordo_platform::telemetry::add_link(&turn, request);
    }
}
