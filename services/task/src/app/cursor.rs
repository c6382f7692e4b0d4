//! Opaque keyset cursors: the sort key of the last item of a page, as base64url JSON, with the
//! sort and a fingerprint of the filters they were made under. Clients must not build them; one that
//! does not decode, or that belongs to another list, is refused on the field `cursor`.

use ordo_page::micros;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ports::{SortValue, TaskSort};
use super::{AppError, Result};

fn bad() -> AppError {
    AppError::field("cursor", "invalid cursor; start again without one")
}

fn from_micros(us: i64) -> Result<OffsetDateTime> {
    ordo_page::from_micros(us).ok_or_else(bad)
}

/// Where a page of tasks resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TaskCursor {
    /// The fingerprint of the filters.
    f: String,
    /// The sort's code.
    s: String,
    /// The time (microseconds), rank or position of the last task, `[score, number]` for relevance;
    /// `null` for a missing due date.
    v: Option<serde_json::Value>,
    /// Its id.
    id: Uuid,
}

/// The cursor after a task with sort value `value` and id `id`, in a list with `fingerprint`.
pub(crate) fn encode_task(fingerprint: &str, sort: TaskSort, value: &SortValue, id: Uuid) -> String {
    let v = match value {
        SortValue::Time(t) => Some(serde_json::Value::from(micros(*t))),
        SortValue::Due(t) => t.map(|t| serde_json::Value::from(micros(t))),
        SortValue::Rank(r) => Some(serde_json::Value::from(*r)),
        SortValue::Position(p) => Some(serde_json::Value::from(p.clone())),
        SortValue::Relevance { score, number } => Some(serde_json::json!([score, number])),
    };
    encode(&TaskCursor { f: fingerprint.to_owned(), s: sort.code().to_owned(), v, id })
}

/// Decodes a task cursor of a list with `fingerprint` and `sort`; `None` for the first page.
pub(crate) fn decode_task(cursor: &str, fingerprint: &str, sort: TaskSort) -> Result<Option<(SortValue, Uuid)>> {
    let Some(c) = decode::<TaskCursor>(cursor)? else { return Ok(None) };
    if c.f != fingerprint || c.s != sort.code() {
        return Err(AppError::field("cursor", "the cursor belongs to a list with other filters or another sort"));
    }
    let value = match (sort, c.v) {
        (TaskSort::CreatedAsc | TaskSort::CreatedDesc | TaskSort::UpdatedAsc | TaskSort::UpdatedDesc, Some(v)) => {
            SortValue::Time(from_micros(v.as_i64().ok_or_else(bad)?)?)
        }
        (TaskSort::DueAsc | TaskSort::DueDesc, None) => SortValue::Due(None),
        (TaskSort::DueAsc | TaskSort::DueDesc, Some(v)) => {
            SortValue::Due(Some(from_micros(v.as_i64().ok_or_else(bad)?)?))
        }
        (TaskSort::PriorityAsc | TaskSort::PriorityDesc, Some(v)) => {
            SortValue::Rank(v.as_u64().and_then(|r| u8::try_from(r).ok()).filter(|r| *r <= 4).ok_or_else(bad)?)
        }
        (TaskSort::Position, Some(serde_json::Value::String(p))) => SortValue::Position(p),
        (TaskSort::Relevance, Some(serde_json::Value::Array(pair))) => match pair.as_slice() {
            [score, number] => SortValue::Relevance {
                score: score.as_u64().and_then(|s| u16::try_from(s).ok()).ok_or_else(bad)?,
                number: number.as_i64().filter(|n| *n > 0).ok_or_else(bad)?,
            },
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    Ok(Some((value, c.id)))
}

/// Where a page of comments (oldest first) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CommentCursor {
    /// The task the comments belong to.
    t: Uuid,
    /// `created_at` of the last comment, microseconds.
    c: i64,
    /// Its id.
    id: Uuid,
}

/// The cursor after a comment of `task_id`.
pub(crate) fn encode_comment(task_id: Uuid, created_at: OffsetDateTime, id: Uuid) -> String {
    encode(&CommentCursor { t: task_id, c: micros(created_at), id })
}

/// Decodes a comment cursor of `task_id`'s comments.
pub(crate) fn decode_comment(cursor: &str, task_id: Uuid) -> Result<Option<(OffsetDateTime, Uuid)>> {
    let Some(c) = decode::<CommentCursor>(cursor)? else { return Ok(None) };
    if c.t != task_id {
        return Err(AppError::field("cursor", "the cursor belongs to another task's comments"));
    }
    Ok(Some((from_micros(c.c)?, c.id)))
}

fn encode<T: Serialize>(cursor: &T) -> String {
    ordo_page::encode(cursor)
}

/// The longest cursor this service hands out is well under this (a position key is at most
/// 1,000 characters); a longer one is refused before it is decoded, and never reaches a cache key.
const MAX_CURSOR_LEN: usize = 2048;

fn decode<T: DeserializeOwned>(cursor: &str) -> Result<Option<T>> {
    ordo_page::decode(cursor, MAX_CURSOR_LEN).map_err(|_| bad())
}

/// Checks a page size (0 means the default of 50).
pub(crate) fn limit(requested: i32) -> Result<u32> {
    ordo_page::limit(requested)
}

/// A stable 64-bit FNV-1a fingerprint of `text`, in hex: the filters a cursor was made under.
pub(crate) fn fingerprint(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn task_cursors_round_trip_for_every_sort() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap() + time::Duration::microseconds(123_456);
        let id = Uuid::now_v7();
        let cases = [
            (TaskSort::CreatedDesc, SortValue::Time(now)),
            (TaskSort::UpdatedAsc, SortValue::Time(now)),
            (TaskSort::DueAsc, SortValue::Due(Some(now))),
            (TaskSort::DueDesc, SortValue::Due(None)),
            (TaskSort::PriorityDesc, SortValue::Rank(4)),
            (TaskSort::Position, SortValue::Position("i5".into())),
            (TaskSort::Relevance, SortValue::Relevance { score: 7, number: 10_000 }),
        ];
        for (sort, value) in cases {
            let cursor = encode_task("f1", sort, &value, id);
            assert_eq!(decode_task(&cursor, "f1", sort).unwrap(), Some((value, id)));
        }
        // The longest position key still makes a cursor that is taken back.
        let longest = SortValue::Position("z".repeat(crate::domain::MAX_POSITION_LEN));
        let cursor = encode_task("0123456789abcdef", TaskSort::Position, &longest, id);
        assert_eq!(decode_task(&cursor, "0123456789abcdef", TaskSort::Position).unwrap(), Some((longest, id)));
    }

    #[test]
    fn a_cursor_longer_than_any_handed_out_is_refused_before_it_is_decoded() {
        // Valid base64url JSON with a field the cursor does not have, which decoding would ignore.
        let padded = format!(r#"{{"f":"f1","s":"p","v":2,"id":"{}","x":"{}"}}"#, Uuid::nil(), "x".repeat(4096));
        let cursor = URL_SAFE_NO_PAD.encode(padded);
        match decode_task(&cursor, "f1", TaskSort::PriorityAsc) {
            Err(AppError::Invalid(v)) => assert_eq!(v[0].field, "cursor"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_cursor_of_another_list_or_garbage_is_refused_on_the_cursor_field() {
        let cursor = encode_task("f1", TaskSort::PriorityAsc, &SortValue::Rank(2), Uuid::now_v7());
        for result in [
            decode_task(&cursor, "f2", TaskSort::PriorityAsc),
            decode_task(&cursor, "f1", TaskSort::PriorityDesc),
            decode_task("garbage!", "f1", TaskSort::PriorityAsc),
            decode_task("AAAA", "f1", TaskSort::PriorityAsc),
        ] {
            match result {
                Err(AppError::Invalid(v)) => assert_eq!(v[0].field, "cursor"),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(decode_task("", "f1", TaskSort::Position).unwrap(), None);
        let task = Uuid::now_v7();
        let comment = encode_comment(task, OffsetDateTime::now_utc(), Uuid::now_v7());
        assert!(decode_comment(&comment, task).unwrap().is_some());
        assert!(decode_comment(&comment, Uuid::now_v7()).is_err());
    }

    #[test]
    fn limits_default_to_50_and_stay_within_1_to_100() {
        assert_eq!(limit(0).unwrap(), 50);
        assert_eq!(limit(100).unwrap(), 100);
        assert!(limit(101).is_err() && limit(-1).is_err());
    }

    #[test]
    fn fingerprints_differ_for_different_filters() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a|b"), fingerprint("a|c"));
    }
}
