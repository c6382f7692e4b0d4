//! One task read at the cost of a cache lookup: the encoded answer of `GetTask` is kept in the page
//! cache beside the project's list pages, under the same generation, so every change to the
//! project's tasks makes it stale at once and a read never returns a task older than the last
//! committed change. The cache is keyed by project, and a request names only the task: each
//! instance remembers which project each task it has read belongs to (a task never changes
//! project), a bounded map of ids. A task the instance has not read yet, or any read while the
//! cache is unavailable, comes from the database.

use std::sync::Arc;

use uuid::Uuid;

use super::ports::PageCache;
use super::request::Caller;
use super::service::TaskService;
use super::shared::{EncodedPage, NO_TASK, id_of};
use super::{AppError, Result};
use crate::domain::Task;

/// How the gRPC layer answers with one task, and the bytes the cache keeps of that answer.
pub trait TaskEncoder: Send + Sync {
    /// What the caller answers with.
    type Response: Send;
    /// The answer for a task just read from the database.
    fn respond(&self, task: Task) -> Self::Response;
    /// The bytes of `response` as the cache keeps them; a hit hands them back as
    /// [`EncodedPage::Stored`].
    fn encode(&self, response: &Self::Response) -> Vec<u8>;
}

/// The name of `task_id`'s answer among its project's cached pages.
fn cache_key(task_id: Uuid) -> String {
    format!("task:{}", task_id.simple())
}

impl TaskService {
    /// One task the caller can see, encoded by `encoder`: from the cache while the task's project is
    /// unchanged since it was stored, else from the database (and stored).
    ///
    /// # Errors
    ///
    /// `NotFound` for a task that does not exist or that the caller may not see, exactly alike;
    /// what the store answers.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn get_task_encoded<E: TaskEncoder>(
        &self,
        caller: &Caller,
        id: &str,
        encoder: &E,
    ) -> Result<EncodedPage<E::Response>> {
        let id = id_of(id, NO_TASK)?;
        let (Some(pages), Some(projects)) = (&self.pages, &self.task_projects) else {
            return Ok(EncodedPage::Fresh(encoder.respond(self.read_task(caller, id).await?)));
        };
        let Some(project_id) = projects.get(&id) else {
            let task = self.read_task(caller, id).await?;
            projects.insert(id, task.project_id);
            return Ok(EncodedPage::Fresh(encoder.respond(task)));
        };
        // The caller's access first: nothing is read for a caller who may not see the project.
        let (access, _) = self.access(caller, project_id, NO_TASK).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        self.cached_task(pages, project_id, id, encoder).await
    }

    /// The stored answer for task `id` of `project_id`, or the task read now and stored for the
    /// next caller.
    async fn cached_task<E: TaskEncoder>(
        &self,
        pages: &Arc<dyn PageCache>,
        project_id: Uuid,
        id: Uuid,
        encoder: &E,
    ) -> Result<EncodedPage<E::Response>> {
        let read = async {
            let task = self.store.task(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
            if task.project_id != project_id {
                // Never expected: a task keeps its project.
                return Err(AppError::internal(anyhow::anyhow!("task {id} left project {project_id}")));
            }
            Ok(encoder.respond(task))
        };
        Self::through_cache(pages, project_id, &cache_key(id), read, |response| encoder.encode(response)).await
    }

    /// Task `id` from the database, if the caller may read it.
    async fn read_task(&self, caller: &Caller, id: Uuid) -> Result<Task> {
        let task = self.store.task(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        let (access, _) = self.access(caller, task.project_id, NO_TASK).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        Ok(task)
    }
}
