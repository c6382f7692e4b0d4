//! Opaque keyset cursors: the sort key of the last item of a page, as base64url JSON. Clients must
//! not build them; a cursor that does not decode is a bad request.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppError, Result};

/// Where a page of projects (sorted by name, then id) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProjectCursor {
    /// The name of the last project.
    pub(crate) name: String,
    /// Its id.
    pub(crate) id: Uuid,
}

/// Where a page of members (sorted by `added_at`, then user id) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberCursor {
    /// `added_at` of the last member, microseconds since the epoch.
    pub(crate) added_at_us: i64,
    /// Its user id.
    pub(crate) user_id: Uuid,
}

impl MemberCursor {
    /// The cursor after a member added at `added_at`.
    pub(crate) fn new(added_at: OffsetDateTime, user_id: Uuid) -> Self {
        Self { added_at_us: ordo_page::micros(added_at), user_id }
    }

    /// The `added_at` it names.
    pub(crate) fn added_at(&self) -> Result<OffsetDateTime> {
        ordo_page::from_micros(self.added_at_us).ok_or_else(bad)
    }
}

fn bad() -> AppError {
    AppError::BadRequest("invalid cursor".into())
}

/// Encodes a cursor.
pub(crate) fn encode<T: Serialize>(cursor: &T) -> String {
    ordo_page::encode(cursor)
}

/// Longer than any cursor handed out (the longest holds a 200-character name): refused before it
/// is decoded, so a made-up one never carries a huge name into a query.
const MAX_CURSOR_LEN: usize = 2048;

/// Decodes a cursor; `None` for the first page (an empty cursor).
pub(crate) fn decode<T: DeserializeOwned>(cursor: &str) -> Result<Option<T>> {
    ordo_page::decode(cursor, MAX_CURSOR_LEN).map_err(|_| bad())
}

/// Checks a page size (0 means the default of 50).
pub(crate) fn limit(requested: i32) -> Result<u32> {
    ordo_page::limit(requested)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn cursors_round_trip() {
        let project = ProjectCursor { name: "Ünïcode name".to_owned(), id: Uuid::now_v7() };
        assert_eq!(decode::<ProjectCursor>(&encode(&project)).unwrap(), Some(project));
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap() + time::Duration::microseconds(123_456);
        let member = MemberCursor::new(now, Uuid::now_v7());
        let back = decode::<MemberCursor>(&encode(&member)).unwrap().unwrap();
        assert_eq!(back.added_at().unwrap(), now);
        // The longest name there can be (200 characters of four bytes each) still fits.
        let longest = ProjectCursor { name: "𝔑".repeat(200), id: Uuid::now_v7() };
        assert_eq!(decode::<ProjectCursor>(&encode(&longest)).unwrap(), Some(longest));
    }

    #[test]
    fn a_cursor_longer_than_any_handed_out_is_refused_before_it_is_decoded() {
        let made_up = ProjectCursor { name: "n".repeat(100_000), id: Uuid::now_v7() };
        assert!(matches!(decode::<ProjectCursor>(&encode(&made_up)), Err(AppError::BadRequest(_))));
    }

    #[test]
    fn the_empty_cursor_is_the_first_page_and_garbage_is_refused() {
        assert_eq!(decode::<ProjectCursor>("").unwrap(), None);
        for garbage in ["not a cursor!", "AAAA", &encode(&serde_json::json!({"name": 1}))] {
            assert!(matches!(decode::<ProjectCursor>(garbage), Err(AppError::BadRequest(_))), "{garbage}");
        }
    }

    #[test]
    fn limits_default_to_50_and_stay_within_1_to_100() {
        assert_eq!(limit(0).unwrap(), 50);
        assert_eq!(limit(1).unwrap(), 1);
        assert_eq!(limit(100).unwrap(), 100);
        assert!(matches!(limit(101), Err(AppError::Invalid(_))));
        assert!(matches!(limit(-1), Err(AppError::Invalid(_))));
    }
}
