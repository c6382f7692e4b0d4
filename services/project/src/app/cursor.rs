//! Opaque keyset cursors: the sort key of the last item of a page, as base64url JSON. Clients must
//! not build them; a cursor that does not decode is a bad request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
        let added_at_us = i64::try_from(added_at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        Self { added_at_us, user_id }
    }

    /// The `added_at` it names.
    pub(crate) fn added_at(&self) -> Result<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.added_at_us) * 1_000).map_err(|_| bad())
    }
}

fn bad() -> AppError {
    AppError::BadRequest("invalid cursor".into())
}

/// Encodes a cursor.
pub(crate) fn encode<T: Serialize>(cursor: &T) -> String {
    // Serializing plain structs of strings, numbers and UUIDs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// Longer than any cursor handed out (the longest holds a 200-character name): refused before it
/// is decoded, so a made-up one never carries a huge name into a query.
const MAX_CURSOR_LEN: usize = 2048;

/// Decodes a cursor; `None` for the first page (an empty cursor).
pub(crate) fn decode<T: DeserializeOwned>(cursor: &str) -> Result<Option<T>> {
    if cursor.is_empty() {
        return Ok(None);
    }
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
}

/// Checks a page size (0 means the default of 50).
pub(crate) fn limit(requested: i32) -> Result<u32> {
    match requested {
        0 => Ok(50),
        1..=100 => Ok(requested.unsigned_abs()),
        _ => Err(AppError::field("limit", "must be 1..100")),
    }
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
