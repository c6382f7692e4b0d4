//! The lanes of the create path: per project, the creates waiting for that project's turn. A
//! project is in the map exactly while a task drains its lane; `creates` runs the turns.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::Result;
use super::request::{Caller, ClientInfo};
use crate::domain::{NewTask, Task};

/// Most creates written in one transaction.
pub(super) const MAX_BATCH: usize = 64;

/// A create waiting for its lane's turn.
pub(super) struct PendingCreate {
    pub caller: Caller,
    pub project_key: String,
    pub new: NewTask,
    pub client: ClientInfo,
    pub reply: oneshot::Sender<Result<Task>>,
}

/// The lanes with work, by project. A project is here exactly while a task drains its lane.
#[derive(Default)]
pub(super) struct Lanes {
    lanes: Mutex<HashMap<Uuid, VecDeque<PendingCreate>>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

impl Lanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, VecDeque<PendingCreate>>> {
        // Every critical section leaves the map whole.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `pending`; `true` when the lane was idle, so the caller must start draining it.
    pub(super) fn push(&self, project_id: Uuid, pending: PendingCreate) -> bool {
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
    pub(super) fn next_batch(&self, project_id: Uuid) -> Vec<PendingCreate> {
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(&project_id) else { return Vec::new() };
        let batch: Vec<_> = lane.drain(..lane.len().min(MAX_BATCH)).collect();
        if batch.is_empty() {
            lanes.remove(&project_id);
        }
        batch
    }
}
