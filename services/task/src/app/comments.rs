//! The comment use cases: add, list, edit and delete a task's comments. Every comment write locks
//! the task first, so the task's events keep their order in the outbox.

use uuid::Uuid;

use super::cursor;
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_COMMENT, NO_TASK, id_of, now};
use super::{AppError, Result};
use crate::domain::{Access, Comment, CommentBody, TaskEvent};

/// A page of comments.
#[derive(Debug, Clone)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

impl TaskService {
    /// Comments on a task (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %task_id))]
    pub async fn add_comment(
        &self,
        caller: &Caller,
        task_id: &str,
        body: &str,
        client: &ClientInfo,
    ) -> Result<Comment> {
        let (task, access) = self.visible_task(caller, task_id).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let body = CommentBody::parse(body).map_err(|v| AppError::Invalid(vec![v]))?;
        let mut tx = self.store.begin().await?;
        // Locked so the task's events keep their order in the outbox.
        let task = tx.task_for_update(task.id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
        let now = now();
        let comment = Comment {
            id: Uuid::now_v7(),
            task_id: task.id,
            project_id: task.project_id,
            author_id: caller.user_id,
            body,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        tx.insert_comment(&comment).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::CommentAdded { task, comment: comment.clone(), recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(comment)
    }

    /// A task's comments, oldest first (viewers and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %task_id))]
    pub async fn list_comments(&self, caller: &Caller, task_id: &str, limit: i32, cursor: &str) -> Result<CommentPage> {
        let (task, access) = self.visible_task(caller, task_id).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let limit = cursor::limit(limit)?;
        let after = cursor::decode_comment(cursor, task.id)?;
        let mut comments = self.store.list_comments(task.id, after, limit + 1).await?;
        let next_cursor = if comments.len() > limit as usize {
            comments.truncate(limit as usize);
            comments.last().map(|c| cursor::encode_comment(task.id, c.created_at, c.id))
        } else {
            None
        };
        Ok(CommentPage { comments, next_cursor })
    }

    /// A comment the caller can see, with the caller's access to its project.
    async fn visible_comment(&self, caller: &Caller, id: &str) -> Result<(Comment, Access)> {
        let id = id_of(id, NO_COMMENT)?;
        let comment = self.store.comment(id).await?.ok_or_else(|| AppError::NotFound(NO_COMMENT.into()))?;
        let (access, _) = self.access(caller, comment.project_id, NO_COMMENT).await?;
        Ok((comment, access))
    }

    /// Edits a comment's body (its author only).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, comment = %id))]
    pub async fn update_comment(
        &self,
        caller: &Caller,
        id: &str,
        body: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Comment> {
        let (comment, access) = self.visible_comment(caller, id).await?;
        access.edit_comment(comment.author_id == caller.user_id).map_err(|d| crate::app::denied(d, NO_COMMENT))?;
        let body = CommentBody::parse(body).map_err(|v| AppError::Invalid(vec![v]))?;
        let mut tx = self.store.begin().await?;
        // The task first, as when a comment is added: its events keep their order in the outbox,
        // and every comment write takes the two locks in the same order.
        let task = tx.task_for_update(comment.task_id).await?.ok_or_else(|| AppError::NotFound(NO_COMMENT.into()))?;
        let mut comment =
            tx.comment_for_update(comment.id).await?.ok_or_else(|| AppError::NotFound(NO_COMMENT.into()))?;
        AppError::check_version(comment.version, expected_version)?;
        if comment.body == body {
            return Ok(comment);
        }
        let previous = comment.version;
        comment.body = body;
        comment.updated_at = now();
        comment.version += 1;
        tx.update_comment(&comment, previous).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::CommentUpdated { task, comment: comment.clone(), recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(comment)
    }

    /// Deletes a comment (its author, or a project admin or owner).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, comment = %id))]
    pub async fn delete_comment(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let (comment, access) = self.visible_comment(caller, id).await?;
        access.delete_comment(comment.author_id == caller.user_id).map_err(|d| crate::app::denied(d, NO_COMMENT))?;
        let mut tx = self.store.begin().await?;
        let task = tx.task_for_update(comment.task_id).await?.ok_or_else(|| AppError::NotFound(NO_COMMENT.into()))?;
        let comment = tx.comment_for_update(comment.id).await?.ok_or_else(|| AppError::NotFound(NO_COMMENT.into()))?;
        AppError::check_version(comment.version, expected_version)?;
        tx.delete_comment(comment.id).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        // Recorded whoever deletes it: an admin removing someone else's comment leaves a trace.
        let events = [TaskEvent::CommentDeleted { task, comment, recipients }];
        self.finish(tx, &events, caller, client).await
    }
}
