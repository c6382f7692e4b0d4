//! Keyset pages as every Ordo list has them.
//!
//! A request names a page size (`limit`: 1 to [`MAX_LIMIT`], 0 for [`DEFAULT_LIMIT`]) and the cursor
//! the previous page ended with (empty for the first page). A cursor is the sort key of the last
//! item, serialized as JSON and encoded as unpadded base64url: opaque to clients, who must not build
//! one, and refused when it is longer than any the service hands out, before it is decoded. What a
//! cursor holds, and which error a bad one is, stays with each service.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_error::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// The page size when a request names none.
pub const DEFAULT_LIMIT: u32 = 50;

/// The largest page a request may ask for.
pub const MAX_LIMIT: u32 = 100;

/// Checks a requested page size: 0 means [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`] is taken as it is.
///
/// # Errors
///
/// [`Error::Invalid`] on the field `limit` for anything else.
pub fn limit(requested: i32) -> Result<u32, Error> {
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_LIMIT),
        Ok(size @ 1..=MAX_LIMIT) => Ok(size),
        _ => Err(Error::field("limit", format!("must be 1..{MAX_LIMIT}"))),
    }
}

/// A cursor that is too long, not base64url, or not the JSON of the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Encodes `cursor` (a plain struct of strings, numbers and ids).
pub fn encode<T: Serialize>(cursor: &T) -> String {
    // Serializing such a struct cannot fail; were it to, the empty cursor is the first page.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// Decodes a cursor made by [`encode`]; `None` for the empty cursor (the first page).
///
/// # Errors
///
/// [`Malformed`] when it is longer than `max_len` bytes (checked first) or does not decode to `T`.
pub fn decode<T: DeserializeOwned>(cursor: &str, max_len: usize) -> Result<Option<T>, Malformed> {
    if cursor.is_empty() {
        return Ok(None);
    }
    if cursor.len() > max_len {
        return Err(Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| Malformed)?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| Malformed)
}

/// A time as whole microseconds since the epoch, the precision the databases keep.
pub fn micros(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The time `micros` microseconds after the epoch; `None` when out of range.
pub fn from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct After {
        name: String,
        id: uuid::Uuid,
    }

    #[test]
    fn limits_default_to_50_and_stay_within_1_to_100() {
        assert_eq!(limit(0).unwrap(), 50);
        assert_eq!(limit(1).unwrap(), 1);
        assert_eq!(limit(100).unwrap(), 100);
        for refused in [101, -1, i32::MIN, i32::MAX] {
            match limit(refused) {
                Err(Error::Invalid(violations)) => assert_eq!(violations[0].field, "limit"),
                other => panic!("{refused}: {other:?}"),
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_the_empty_one_is_the_first_page() {
        let after = After { name: "Ünïcode".to_owned(), id: uuid::Uuid::now_v7() };
        assert_eq!(decode::<After>(&encode(&after), 2048).unwrap(), Some(after));
        assert_eq!(decode::<After>("", 2048).unwrap(), None);
    }

    #[test]
    fn a_cursor_too_long_or_of_another_shape_is_malformed() {
        let long = encode(&After { name: "n".repeat(4096), id: uuid::Uuid::nil() });
        assert_eq!(decode::<After>(&long, 2048), Err(Malformed));
        for garbage in ["not a cursor!", "AAAA", &encode(&serde_json::json!({"name": 1}))] {
            assert_eq!(decode::<After>(garbage, 2048), Err(Malformed), "{garbage}");
        }
    }

    #[test]
    fn times_keep_their_microseconds() {
        let time = OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap() + time::Duration::microseconds(123_456);
        assert_eq!(from_micros(micros(time)), Some(time));
        assert_eq!(from_micros(i64::MAX), None);
    }
}
