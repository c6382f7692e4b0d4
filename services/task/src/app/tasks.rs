//! The use cases on tasks themselves: create, read, update (one task or many at once), delete and
//! watch. Creates are written through their project's lane ([`super::creates`]); moves on the
//! board are [`super::board`]'s.

use std::collections::HashSet;

use uuid::Uuid;

use super::fields::{BULK_PATHS, MAX_BULK, Patch, TaskFields, UPDATE_PATHS, parent_id, parse_mask, parse_patch};
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_PROJECT, NO_TASK, id_of, now, retrying};
use super::{AppError, Result};
use crate::domain::{
    Assignees, Description, Estimate, FieldViolation, Labels, NewTask, Priority, Schedule, Status, StatusChange, Task,
    TaskEvent, Title, Unassignment, Violations, check_parent, split_key,
};

/// How one task of a bulk update ended.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The tasks changed (or left as they were when nothing changed).
    pub updated: Vec<Task>,
    /// The ids that failed, each with why.
    pub failed: Vec<(String, AppError)>,
}

impl TaskService {
    /// Creates a task with the next number of its project, at the end of its board (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %project_id))]
    pub async fn create_task(
        &self,
        caller: &Caller,
        project_id: &str,
        fields: &TaskFields,
        client: &ClientInfo,
    ) -> Result<Task> {
        let project_id = id_of(project_id, NO_PROJECT)?;
        // Who may create is decided before the input is judged, so strangers learn nothing.
        let (access, key) = self.access(caller, project_id, NO_PROJECT).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_PROJECT))?;

        let mut v = Violations::default();
        let title = v.check(Title::parse(&fields.title));
        let description =
            v.check(fields.description.as_deref().map(Description::parse).transpose().map(Option::flatten));
        let assignees = v.check(Assignees::parse(&fields.assignee_ids));
        let labels = v.check(Labels::parse(&fields.labels));
        let schedule = v.check(Schedule::new(fields.start_at, fields.due_at));
        let estimate = v.check(fields.estimate_minutes.map(Estimate::new).transpose());
        let parent = v.check(parent_id(fields.parent_id.as_deref()));
        let (
            Some(title),
            Some(description),
            Some(assignees),
            Some(labels),
            Some(schedule),
            Some(estimate),
            Some(parent),
        ) = (title, description, assignees, labels, schedule, estimate, parent)
        else {
            return Err(AppError::Invalid(v.0));
        };
        // Asked outside the transaction: no lock is held across a network call.
        self.check_members(caller, project_id, assignees.as_slice()).await?;
        let new = NewTask {
            title,
            description,
            status: fields.status.unwrap_or(Status::Todo),
            priority: fields.priority.unwrap_or(Priority::None),
            assignees,
            labels,
            schedule,
            estimate,
            parent_id: parent,
        };
        self.create_in_lane(caller, project_id, key, new, client).await
    }

    /// One task the caller can see.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn get_task(&self, caller: &Caller, id: &str) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        Ok(task)
    }

    /// One task by its key, e.g. `ORDO-42`.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, key = %key))]
    pub async fn get_task_by_key(&self, caller: &Caller, key: &str) -> Result<Task> {
        let (project_key, number) = split_key(key).ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        for task in self.store.tasks_by_key(project_key, number).await? {
            if let Some(standing) = self.standing(caller, task.project_id).await? {
                // A project key reused after a deletion: only the live project's task counts.
                if standing.key == project_key {
                    return Ok(task);
                }
            }
        }
        Err(AppError::NotFound(NO_TASK.into()))
    }

    /// Changes the fields named in `mask` (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn update_task(
        &self,
        caller: &Caller,
        id: &str,
        fields: &TaskFields,
        mask: &[String],
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let patch = parse_patch(parse_mask(mask, UPDATE_PATHS)?, fields)?;
        self.update_visible(caller, task, &patch, expected_version, client).await
    }

    /// Applies `patch` to `task`, which the caller may change.
    async fn update_visible(
        &self,
        caller: &Caller,
        task: Task,
        patch: &Patch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        if let Some(assignees) = &patch.assignees {
            let added: Vec<Uuid> =
                assignees.as_slice().iter().copied().filter(|a| !task.assignees.contains(*a)).collect();
            self.check_members(caller, task.project_id, &added).await?;
        }
        retrying(|| self.apply_patch(caller, task.id, task.project_id, patch, expected_version, client)).await
    }

    async fn apply_patch(
        &self,
        caller: &Caller,
        id: Uuid,
        project_id: Uuid,
        patch: &Patch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let mut tx = self.store.begin().await?;
        if patch.has("parent_id") {
            // Tree changes of one project are serialised, so two of them cannot make a cycle
            // together.
            tx.lock_board(project_id).await?;
        }
        let mut task = tx.task_for_update(id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        AppError::check_version(task.version, expected_version)?;
        let old = task.clone();
        let now = now();
        let mut changed: Vec<&'static str> = Vec::new();
        if let Some(title) = &patch.title
            && *title != task.title
        {
            task.title = title.clone();
            changed.push("title");
        }
        if let Some(description) = &patch.description
            && *description != task.description
        {
            task.description = description.clone();
            changed.push("description");
        }
        if let Some(status) = patch.status
            && status != task.status()
        {
            task.set_status(status, now);
            changed.push("status");
        }
        if let Some(priority) = patch.priority
            && priority != task.priority
        {
            task.priority = priority;
            changed.push("priority");
        }
        if let Some(assignees) = &patch.assignees
            && *assignees != task.assignees
        {
            task.assignees = assignees.clone();
            changed.push("assignee_ids");
        }
        if let Some(labels) = &patch.labels
            && *labels != task.labels
        {
            task.labels = labels.clone();
            changed.push("labels");
        }
        let start_at = patch.start_at.unwrap_or(task.schedule.start_at());
        let due_at = patch.due_at.unwrap_or(task.schedule.due_at());
        task.schedule = Schedule::new(start_at, due_at).map_err(|v| AppError::Invalid(vec![v]))?;
        if task.schedule.due_at() != old.schedule.due_at() {
            changed.push("due_at");
        }
        if task.schedule.start_at() != old.schedule.start_at() {
            changed.push("start_at");
        }
        if let Some(estimate) = patch.estimate
            && estimate != task.estimate
        {
            task.estimate = estimate;
            changed.push("estimate_minutes");
        }
        if let Some(parent) = patch.parent_id
            && parent != task.parent_id
        {
            if let Some(parent) = parent {
                if parent == task.id {
                    return Err(AppError::field("parent_id", "a task cannot be its own parent"));
                }
                let chain = tx
                    .parent_chain(parent)
                    .await?
                    .ok_or_else(|| AppError::field("parent_id", "no such task in this project"))?;
                let (_, height) = tx.subtree(task.id).await?;
                check_parent(task.project_id, Some(task.id), height, &chain).map_err(|v| AppError::Invalid(vec![v]))?;
            }
            task.parent_id = parent;
            changed.push("parent_id");
        }
        if changed.is_empty() {
            return Ok(task);
        }
        task.touch(now);
        tx.update_task(&task, old.version, &changed).await?;
        if let Some(change) = StatusChange::between(&old, &task, caller.user_id) {
            tx.record_status_changes(&[change]).await?;
        }
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let mut events = Vec::new();
        if changed.contains(&"status") {
            events.push(TaskEvent::StatusChanged {
                task: task.clone(),
                old: old.status(),
                recipients: recipients.clone(),
            });
        }
        events.push(TaskEvent::Updated { task: task.clone(), changed, recipients });
        for added in task.assignees.as_slice().iter().filter(|a| !old.assignees.contains(**a)) {
            events.push(TaskEvent::Assigned { task: task.clone(), assignee: *added });
        }
        for removed in old.assignees.as_slice().iter().filter(|a| !task.assignees.contains(**a)) {
            events.push(TaskEvent::Unassigned { task: task.clone(), assignee: *removed, why: Unassignment::Edit });
        }
        self.finish(tx, &events, caller, client).await?;
        Ok(task)
    }

    /// Deletes a task with its subtasks at any depth, their comments and watchers (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn delete_task(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        retrying(|| async {
            let mut tx = self.store.begin().await?;
            let task = tx.task_for_update(task.id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
            AppError::check_version(task.version, expected_version)?;
            let (subtask_ids, _) = tx.subtree(task.id).await?;
            let watchers = tx.watchers(task.id).await?;
            let mut ids = vec![task.id];
            ids.extend(&subtask_ids);
            tx.delete_tasks(&ids).await?;
            let recipients = task.recipients(&watchers);
            let events = [TaskEvent::Deleted { task, subtask_ids, recipients }];
            self.finish(tx, &events, caller, client).await
        })
        .await
    }

    /// The caller watches a task (idempotent; viewers and up). `task.watched` only when it was not
    /// watching already.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn watch_task(&self, caller: &Caller, id: &str, client: &ClientInfo) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.watch().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let mut tx = self.store.begin().await?;
        // Locked so the task's events keep their order in the outbox.
        let task = tx.task_for_update(task.id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        if !tx.watch(&task, caller.user_id).await? {
            return tx.commit().await;
        }
        let events = [TaskEvent::Watched { task, user: caller.user_id }];
        self.finish(tx, &events, caller, client).await
    }

    /// The caller stops watching a task (idempotent). `task.unwatched` only when it was watching.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn unwatch_task(&self, caller: &Caller, id: &str, client: &ClientInfo) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let mut tx = self.store.begin().await?;
        let task = tx.task_for_update(task.id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        if !tx.unwatch(task.id, caller.user_id).await? {
            return tx.commit().await;
        }
        let events = [TaskEvent::Unwatched { task, user: caller.user_id }];
        self.finish(tx, &events, caller, client).await
    }

    /// Applies one patch (status, priority, assignees, labels) to up to 100 tasks, each on its own.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, tasks = ids.len()))]
    pub async fn bulk_update(
        &self,
        caller: &Caller,
        ids: &[String],
        fields: &TaskFields,
        mask: &[String],
        client: &ClientInfo,
    ) -> Result<BulkOutcome> {
        // Every count is checked on the request as sent, before any id or path is read; only then
        // is the patch parsed (bounded by its own counts), as no task's access can be known sooner.
        let mut v = Violations::default();
        if ids.is_empty() || ids.len() > MAX_BULK {
            v.push(FieldViolation::new("ids", "give 1 to 100 task ids"));
        }
        let paths = match parse_mask(mask, BULK_PATHS) {
            Ok(paths) => Some(paths),
            Err(AppError::Invalid(violations)) => {
                v.0.extend(violations);
                None
            }
            Err(other) => return Err(other),
        };
        let (Some(paths), true) = (paths, v.is_empty()) else {
            return Err(AppError::Invalid(v.0));
        };
        let patch = parse_patch(paths, fields)?;
        let mut outcome = BulkOutcome { updated: Vec::new(), failed: Vec::new() };
        let mut done: HashSet<&str> = HashSet::with_capacity(ids.len());
        for id in ids {
            if !done.insert(id.as_str()) {
                continue;
            }
            let result = async {
                let (task, access) = self.visible_task(caller, id).await?;
                access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
                self.update_visible(caller, task, &patch, None, client).await
            }
            .await;
            match result {
                Ok(task) => outcome.updated.push(task),
                Err(error @ (AppError::Unavailable(_) | AppError::Internal(_))) => {
                    tracing::warn!(%id, %error, "one task of a bulk update failed");
                    outcome.failed.push((id.clone(), error));
                }
                Err(error) => outcome.failed.push((id.clone(), error)),
            }
        }
        Ok(outcome)
    }
}
