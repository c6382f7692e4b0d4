//! The JSON of attachments: the form and query their routes read, and the attachments they answer
//! with, translated from the task service's messages.

use ordo_proto::task::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::{malformed, timestamp};

/// The form of an upload (documentation only: the body is read as a stream).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// The file. Its `filename` (1 to 255 characters, without path separators) and `Content-Type`
    /// (`application/octet-stream` when absent) are kept with it.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file attached to a task. Attachments never change, so they have no `version`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Attachment {
    /// The attachment id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub(crate) id: String,
    /// The task it is attached to.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub(crate) task_id: String,
    /// The file name the client sent (1 to 255 characters, without path separators).
    #[schema(example = "design.pdf")]
    pub(crate) filename: String,
    /// The media type the client declared for the part; `application/octet-stream` when it declared
    /// none.
    #[schema(example = "application/pdf")]
    pub(crate) content_type: String,
    /// The size in bytes.
    #[schema(minimum = 0, example = 48213)]
    pub(crate) size_bytes: i64,
    /// Lower-case hex SHA-256 of the bytes.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub(crate) sha256: String,
    /// The user who uploaded it; they (and the project's admins and owners) may delete it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) uploaded_by: String,
    /// When it was uploaded (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
}

impl Attachment {
    /// The attachment of a response that must carry one.
    pub(crate) fn from_proto(attachment: Option<pb::Attachment>) -> Result<Self, ApiError> {
        let attachment = attachment.ok_or_else(|| malformed("a response without its attachment"))?;
        Ok(Self {
            created_at: timestamp(attachment.created_at)?,
            id: attachment.id,
            task_id: attachment.task_id,
            filename: attachment.filename,
            content_type: attachment.content_type,
            size_bytes: attachment.size_bytes,
            sha256: attachment.sha256,
            uploaded_by: attachment.uploaded_by,
        })
    }
}

/// A page of a task's attachments, oldest first (by `created_at`, then id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AttachmentPage {
    /// The attachments of this page.
    pub(crate) items: Vec<Attachment>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}
