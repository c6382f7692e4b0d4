//! The opaque keyset cursor of a notification list: the id of the page's last (oldest) item.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AppError, Result};

/// Where a page of notifications (newest first) resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotificationCursor {
    /// The id of the last notification of the previous page.
    pub(crate) before: Uuid,
}

/// Longer than any cursor handed out: refused before it is decoded.
const MAX_CURSOR_LEN: usize = 256;

pub(crate) fn encode(cursor: &NotificationCursor) -> String {
    ordo_page::encode(cursor)
}

/// `None` for the first page (an empty cursor).
pub(crate) fn decode(cursor: &str) -> Result<Option<NotificationCursor>> {
    ordo_page::decode(cursor, MAX_CURSOR_LEN).map_err(|_| AppError::BadRequest("invalid cursor".into()))
}

/// Where a page of webhooks or of a webhook's log resumes: the id of the previous page's last item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyCursor {
    /// The id of the last item of the previous page.
    pub(crate) last: Uuid,
}

pub(crate) fn encode_key(last: Uuid) -> String {
    ordo_page::encode(&KeyCursor { last })
}

/// `None` for the first page (an empty cursor).
pub(crate) fn decode_key(cursor: &str) -> Result<Option<Uuid>> {
    ordo_page::decode::<KeyCursor>(cursor, MAX_CURSOR_LEN)
        .map(|c| c.map(|c| c.last))
        .map_err(|_| AppError::BadRequest("invalid cursor".into()))
}
