//! The attachment use cases. The bytes go to object storage
//! ([`ObjectStore`](super::ports::ObjectStore)) while they stream in; the database holds what they
//! are. Objects never outlive their attachment for long, whatever
//! fails when: an upload first schedules its object's deletion (a guard, due in an hour), and the
//! transaction that records the attachment cancels it; deleting an attachment, a task or a project
//! schedules the objects' deletion in the same transaction. [`TaskService::sweep_objects`] carries
//! out what is due, right after such a commit and periodically.

use std::time::Duration;

use uuid::Uuid;

use super::cursor;
use super::ports::{AttachmentSettings, ByteStream, PutError};
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_TASK, id_of, now};
use super::{AppError, Result};
use crate::domain::{Attachment, ContentType, Filename, TaskEvent, Violations};

/// The name a hidden or missing attachment goes by.
const NO_ATTACHMENT: &str = "no such attachment";
/// How long an upload may take before its object counts as abandoned.
const UPLOAD_GUARD: Duration = Duration::from_secs(3600);
/// Deletions carried out per sweep.
const SWEEP_BATCH: u32 = 100;

/// What an upload declares before its bytes.
#[derive(Debug, Clone, Default)]
pub struct NewAttachment {
    pub task_id: String,
    pub filename: String,
    pub content_type: String,
}

/// A page of attachments.
#[derive(Debug, Clone)]
pub struct AttachmentPage {
    pub attachments: Vec<Attachment>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

impl TaskService {
    /// Stores an upload as an attachment of a task (members and up, in an active project).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %new.task_id))]
    pub async fn upload_attachment(
        &self,
        caller: &Caller,
        new: NewAttachment,
        body: ByteStream,
        client: &ClientInfo,
    ) -> Result<Attachment> {
        let settings = self.attachments()?;
        let mut violations = Violations::default();
        let filename = violations.check(Filename::parse(&new.filename));
        let content_type = violations.check(ContentType::parse(&new.content_type));
        let (task, access) = self.visible_task(caller, &new.task_id).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let (Some(filename), Some(content_type)) = (filename, content_type) else {
            return Err(AppError::Invalid(violations.0));
        };

        let id = Uuid::now_v7();
        let key = Attachment::object_key(task.project_id, task.id, id);
        self.store.schedule_object_deletion(&key, now() + UPLOAD_GUARD).await?;
        let stored = match settings.objects.put(&key, content_type.as_str(), body, settings.max_bytes).await {
            Ok(stored) => stored,
            Err(error) => {
                // Nothing was stored; the guard has nothing left to do.
                self.forget_quietly(&key).await;
                return Err(match error {
                    PutError::TooLarge { limit } => crate::app::too_large(limit),
                    PutError::Body(error) => crate::app::interrupted(error),
                    PutError::Unavailable(why) => AppError::Unavailable(why),
                });
            }
        };

        let attachment = Attachment {
            id,
            task_id: task.id,
            project_id: task.project_id,
            filename,
            content_type,
            size_bytes: stored.size_bytes,
            sha256: stored.sha256,
            uploaded_by: caller.user_id,
            created_at: now(),
        };
        let recorded = async {
            let mut tx = self.store.begin().await?;
            // Locked so the task's events keep their order; gone if it was deleted meanwhile.
            let task = tx.task_for_update(task.id).await?.ok_or_else(|| AppError::NotFound(NO_TASK.into()))?;
            tx.insert_attachment(&attachment).await?;
            let watchers = tx.watchers(task.id).await?;
            let recipients = task.recipients(&watchers);
            let events = [TaskEvent::AttachmentAdded { task, attachment: attachment.clone(), recipients }];
            self.finish(tx, &events, caller, client).await
        }
        .await;
        if let Err(error) = recorded {
            // The guard stays scheduled; delete the object now rather than in an hour.
            self.delete_object_now(&key).await;
            return Err(error);
        }
        Ok(attachment)
    }

    /// A task's attachments, oldest first (viewers and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %task_id))]
    pub async fn list_attachments(
        &self,
        caller: &Caller,
        task_id: &str,
        limit: i32,
        cursor: &str,
    ) -> Result<AttachmentPage> {
        let (task, access) = self.visible_task(caller, task_id).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_TASK))?;
        let limit = cursor::limit(limit)?;
        let after = cursor::decode_comment(cursor, task.id)?;
        let mut attachments = self.store.list_attachments(task.id, after, limit + 1).await?;
        let next_cursor = if attachments.len() > limit as usize {
            attachments.truncate(limit as usize);
            attachments.last().map(|a| cursor::encode_comment(task.id, a.created_at, a.id))
        } else {
            None
        };
        Ok(AttachmentPage { attachments, next_cursor })
    }

    /// An attachment the caller can see (viewers and up), and a presigned download URL when those
    /// are on.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, attachment = %id))]
    pub async fn attachment(&self, caller: &Caller, id: &str) -> Result<(Attachment, Option<String>)> {
        let settings = self.attachments()?;
        let attachment = self.visible_attachment(caller, id).await?.0;
        let url = match settings.presign_ttl {
            Some(ttl) => Some(settings.objects.presign(&attachment.key(), attachment.filename.as_str(), ttl).await?),
            None => None,
        };
        Ok((attachment, url))
    }

    /// An attachment's bytes (viewers and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, attachment = %id))]
    pub async fn download_attachment(&self, caller: &Caller, id: &str) -> Result<(Attachment, ByteStream)> {
        let settings = self.attachments()?;
        let attachment = self.visible_attachment(caller, id).await?.0;
        let bytes = settings.objects.get(&attachment.key()).await?.ok_or_else(|| {
            tracing::error!(attachment = %attachment.id, "an attachment's object is missing from storage");
            AppError::Internal(anyhow::anyhow!("the attachment's bytes are missing"))
        })?;
        Ok((attachment, bytes))
    }

    /// Deletes an attachment and its object (its uploader, or a project admin or owner).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, attachment = %id))]
    pub async fn delete_attachment(&self, caller: &Caller, id: &str, client: &ClientInfo) -> Result<()> {
        self.attachments()?;
        let (attachment, access) = self.visible_attachment(caller, id).await?;
        access
            .delete_comment(attachment.uploaded_by == caller.user_id)
            .map_err(|d| crate::app::denied(d, NO_ATTACHMENT))?;
        let mut tx = self.store.begin().await?;
        // The task first, as when an attachment is recorded, so the task's events keep their order.
        let task =
            tx.task_for_update(attachment.task_id).await?.ok_or_else(|| AppError::NotFound(NO_ATTACHMENT.into()))?;
        let attachment =
            tx.attachment_for_update(attachment.id).await?.ok_or_else(|| AppError::NotFound(NO_ATTACHMENT.into()))?;
        tx.delete_attachment(&attachment).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let key = attachment.key();
        let events = [TaskEvent::AttachmentDeleted { task, attachment, recipients }];
        self.finish(tx, &events, caller, client).await?;
        self.delete_object_now(&key).await;
        Ok(())
    }

    /// Deletes the objects whose deletion is due (deleted attachments, tasks and projects, and
    /// abandoned uploads); returns how many went. A failure leaves the rest for the next sweep.
    pub async fn sweep_objects(&self) -> Result<usize> {
        let Ok(settings) = self.attachments() else { return Ok(0) };
        let mut swept = 0;
        loop {
            let keys = self.store.due_object_deletions(now(), SWEEP_BATCH).await?;
            let batch = keys.len();
            for key in keys {
                settings.objects.delete(&key).await?;
                self.store.forget_object_deletion(&key).await?;
                swept += 1;
            }
            if batch < SWEEP_BATCH as usize {
                return Ok(swept);
            }
        }
    }

    /// An attachment the caller can see, with the caller's access to its project.
    async fn visible_attachment(&self, caller: &Caller, id: &str) -> Result<(Attachment, crate::domain::Access)> {
        let id = id_of(id, NO_ATTACHMENT)?;
        let attachment = self.store.attachment(id).await?.ok_or_else(|| AppError::NotFound(NO_ATTACHMENT.into()))?;
        let (access, _) = self.access(caller, attachment.project_id, NO_ATTACHMENT).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_ATTACHMENT))?;
        Ok((attachment, access))
    }

    /// The attachment settings, or `Unimplemented` when the service runs without object storage.
    fn attachments(&self) -> Result<&AttachmentSettings> {
        self.attachment_settings
            .as_ref()
            .ok_or_else(|| AppError::Unimplemented("attachments are not configured".into()))
    }

    /// Deletes an object whose deletion is scheduled, and forgets the schedule; on failure the
    /// sweeper retries later.
    async fn delete_object_now(&self, key: &str) {
        let Ok(settings) = self.attachments() else { return };
        match settings.objects.delete(key).await {
            Ok(()) => self.forget_quietly(key).await,
            Err(error) => tracing::warn!(key, %error, "object deletion failed; the sweeper retries"),
        }
    }

    async fn forget_quietly(&self, key: &str) {
        if let Err(error) = self.store.forget_object_deletion(key).await {
            tracing::warn!(key, %error, "could not forget a scheduled object deletion; the sweeper retries");
        }
    }
}
