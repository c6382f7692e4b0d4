//! The JSON of comments: the bodies and query their routes read, and the comments they answer with,
//! translated from the task service's messages.

use axum::http::HeaderValue;
use ordo_proto::task::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::{etag, malformed, timestamp};

/// A comment's text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentBody {
    /// 1 to 20,000 characters.
    #[schema(min_length = 1, max_length = 20000, example = "Looks good to me.")]
    pub(super) body: String,
}

/// A comment on a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Comment {
    /// The comment id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000d1")]
    pub(crate) id: String,
    /// The task it is on.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub(crate) task_id: String,
    /// The user who wrote it; only they may edit it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) author_id: String,
    /// 1 to 20,000 characters.
    #[schema(example = "Looks good to me.")]
    pub(crate) body: String,
    /// When the comment was written (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When the comment was last edited (RFC 3339, UTC); `created_at` when never edited.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// Increases on every edit; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
}

impl Comment {
    /// The comment of a response that must carry one.
    pub(crate) fn from_proto(comment: Option<pb::Comment>) -> Result<Self, ApiError> {
        let comment = comment.ok_or_else(|| malformed("a response without its comment"))?;
        Ok(Self {
            created_at: timestamp(comment.created_at)?,
            updated_at: timestamp(comment.updated_at)?,
            id: comment.id,
            task_id: comment.task_id,
            author_id: comment.author_id,
            body: comment.body,
            version: comment.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of a task's comments, oldest first (by `created_at`, then id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CommentPage {
    /// The comments of this page.
    pub(crate) items: Vec<Comment>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}
