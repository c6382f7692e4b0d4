//! The core of the task service: the [`TaskService`] with the ports and state its use cases share,
//! and the steps every use case takes (the
//! caller's access to a project or task, the commit that ends a change). Each use case lives in an
//! `impl TaskService` block of its own module; authorization is decided from the project service's
//! answer (`CheckAccess`) through the domain's [`Access`] rules.

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use super::lanes::{CreateItem, Lanes, MoveItem};
use super::ports::{
    AttachmentSettings, CachedPage, JobSettings, PageCache, ProjectAccess, ProjectStanding, TaskStore, TaskTx,
};
use super::request::{Caller, ClientInfo};
use super::shared::{EncodedPage, NO_TASK, id_of};
use super::{AppError, Result};
use crate::domain::{Access, Task, TaskEvent};

/// The projects of the tasks an instance has read (a task never changes project), at most so many
/// of them, the least used going first.
pub(super) type TaskProjects = moka::sync::Cache<Uuid, Uuid>;

/// The task service's use cases.
#[derive(Clone)]
pub struct TaskService {
    pub(super) store: Arc<dyn TaskStore>,
    projects: Arc<dyn ProjectAccess>,
    /// Object storage for attachments; `None` when the service runs without it.
    pub(super) attachment_settings: Option<AttachmentSettings>,
    /// Background jobs (exports); `None` when the service runs without them.
    pub(super) job_settings: Option<JobSettings>,
    /// Creates waiting for their project's turn.
    pub(super) creates: Arc<Lanes<CreateItem, Task>>,
    /// Moves waiting for their project's turn on its board.
    pub(super) moves: Arc<Lanes<MoveItem, Task>>,
    /// Encoded pages of project lists (and answers of single tasks); `None` lists from the database
    /// every time.
    pub(super) pages: Option<Arc<dyn PageCache>>,
    /// The projects of the tasks read on this instance, to find a task's answer in `pages`; `None`
    /// reads every task from the database.
    pub(super) task_projects: Option<Arc<TaskProjects>>,
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskService").finish_non_exhaustive()
    }
}

impl TaskService {
    /// The use cases over these ports.
    pub fn new(store: Arc<dyn TaskStore>, projects: Arc<dyn ProjectAccess>) -> Self {
        Self {
            store,
            projects,
            attachment_settings: None,
            job_settings: None,
            creates: Arc::default(),
            moves: Arc::default(),
            pages: None,
            task_projects: None,
        }
    }

    /// Serves lists of one project from `pages` while its tasks are unchanged.
    pub fn with_page_cache(mut self, pages: Arc<dyn PageCache>) -> Self {
        self.pages = Some(pages);
        self
    }

    /// Serves single tasks from the page cache too, remembering the projects of up to `capacity`
    /// tasks to find them there (0: every task from the database).
    pub fn with_task_cache(mut self, capacity: u64) -> Self {
        self.task_projects = (capacity > 0).then(|| Arc::new(moka::sync::Cache::new(capacity)));
        self
    }

    /// Keeps attachments in `settings`' object store.
    pub fn with_attachments(mut self, settings: AttachmentSettings) -> Self {
        self.attachment_settings = Some(settings);
        self
    }

    /// Runs background jobs (exports) with `settings`.
    pub fn with_jobs(mut self, settings: JobSettings) -> Self {
        self.job_settings = Some(settings);
        self
    }

    /// The caller's standing in a project; `None` when it may not see it.
    pub(super) async fn standing(&self, caller: &Caller, project_id: Uuid) -> Result<Option<ProjectStanding>> {
        self.projects.standing(caller, project_id, caller.user_id).await
    }

    /// The caller's access to a project it can see; `NotFound(what)` otherwise.
    pub(super) async fn access(
        &self,
        caller: &Caller,
        project_id: Uuid,
        what: &'static str,
    ) -> Result<(Access, String)> {
        let standing = self.standing(caller, project_id).await?.ok_or_else(|| AppError::NotFound(what.into()))?;
        Ok((Access { role: standing.role, archived: standing.archived }, standing.key))
    }

    /// A task the caller can see, with the caller's access to its project.
    pub(super) async fn visible_task(&self, caller: &Caller, id: &str) -> Result<(Task, Access)> {
        let id = id_of(id, NO_TASK)?;
        let task = self.store.task(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        let (access, _) = self.access(caller, task.project_id, NO_TASK).await?;
        Ok((task, access))
    }

    /// The project of task `id`: remembered by this instance (a task never changes project) when
    /// it reads tasks through the page cache, else read. `NotFound` when there is no such task.
    pub(super) async fn project_of_task(&self, id: Uuid) -> Result<Uuid> {
        if let Some(project_id) = self.task_projects.as_ref().and_then(|projects| projects.get(&id)) {
            return Ok(project_id);
        }
        let task = self.store.task(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        if let Some(projects) = &self.task_projects {
            projects.insert(id, task.project_id);
        }
        Ok(task.project_id)
    }

    /// Checks that every one of `assignees` is a member of the project.
    pub(super) async fn check_members(&self, caller: &Caller, project_id: Uuid, assignees: &[Uuid]) -> Result<()> {
        for user in assignees {
            let standing = self.projects.standing(caller, project_id, *user).await?;
            if standing.is_none_or(|s| s.role.is_none()) {
                return Err(AppError::field("assignee_ids", format!("{user} is not a member of the project")));
            }
        }
        Ok(())
    }

    /// Those of `accounts` that are not members of the project, in order.
    pub(super) async fn non_members(
        &self,
        caller: &Caller,
        project_id: Uuid,
        accounts: impl IntoIterator<Item = Uuid>,
    ) -> Result<Vec<Uuid>> {
        let mut strangers = Vec::new();
        for user in accounts {
            let standing = self.projects.standing(caller, project_id, user).await?;
            if standing.is_none_or(|s| s.role.is_none()) {
                strangers.push(user);
            }
        }
        strangers.sort_unstable();
        Ok(strangers)
    }

    /// Writes the events and commits; the projects whose tasks the events are about get their
    /// cached lists made stale.
    pub(super) async fn finish(
        &self,
        mut tx: Box<dyn TaskTx>,
        events: &[TaskEvent],
        caller: &Caller,
        client: &ClientInfo,
    ) -> Result<()> {
        for event in events {
            tx.record(event, Some(caller.user_id), client).await?;
        }
        tx.commit().await?;
        self.lists_changed(events.iter().filter(|e| e.changes_lists()).map(|e| e.task().project_id)).await;
        Ok(())
    }

    /// The answer `key` of `project_id` as `pages` stored it, while the project is unchanged since;
    /// else the answer `read` gives, stored for the next caller under the generation read before it
    /// (so a change committed meanwhile makes it stale at once). The cache failing only means
    /// reading. The caller's access is checked already.
    pub(super) async fn through_cache<R, F>(
        pages: &Arc<dyn PageCache>,
        project_id: Uuid,
        key: &str,
        read: F,
        encode: impl FnOnce(&R) -> Vec<u8>,
    ) -> Result<EncodedPage<R>>
    where
        F: Future<Output = Result<R>>,
    {
        let generation = match pages.get(project_id, key).await {
            Ok(CachedPage::Hit(bytes)) => return Ok(EncodedPage::Stored(bytes)),
            Ok(CachedPage::Miss { generation }) => Some(generation),
            Err(error) => {
                tracing::debug!(%error, "the page cache is unavailable; reading from the database");
                None
            }
        };
        let response = read.await?;
        if let Some(generation) = generation
            && let Err(error) = pages.put(project_id, generation, key, &encode(&response)).await
        {
            tracing::debug!(%error, "an answer could not be cached");
        }
        Ok(EncodedPage::Fresh(response))
    }

    /// Makes the cached lists of `projects` stale, after the commit that changed their tasks. A
    /// failure is logged: the pages then last until their TTL.
    pub(super) async fn lists_changed(&self, projects: impl IntoIterator<Item = Uuid>) {
        let Some(pages) = &self.pages else { return };
        let mut projects: Vec<Uuid> = projects.into_iter().collect();
        projects.sort_unstable();
        projects.dedup();
        for project_id in projects {
            if let Err(error) = pages.changed(project_id).await {
                tracing::warn!(%error, %project_id, "cached task lists could not be made stale; they expire on their own");
            }
        }
    }
}
