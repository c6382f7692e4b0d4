//! What the resources of every area share in their JSON form: the `ETag` of a version, the `Location`
//! of a new resource, times as RFC 3339 from the services' timestamps (and back), `null` for the
//! services' "none", and the `500` for a message a service should never send (a user without
//! timestamps, an unknown role): the client cannot fix it, and the cause is logged.

use axum::http::HeaderValue;
use time::OffsetDateTime;

use crate::error::ApiError;

/// The entity tag of a resource at `version`.
pub(crate) fn etag(version: i64) -> HeaderValue {
    // Digits and quotes only, so always a valid header value.
    HeaderValue::try_from(format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// A `Location` header value for `path`, which holds ids a service chose.
pub(crate) fn location(path: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::try_from(path).map_err(|_| malformed("an id unfit for a URL"))
}

/// A timestamp the resource must have.
pub(crate) fn timestamp(value: Option<prost_types::Timestamp>) -> Result<OffsetDateTime, ApiError> {
    let value = value.ok_or_else(|| malformed("a resource without its timestamps"))?;
    ordo_proto::time::offset_date_time(&value).ok_or_else(|| malformed("a timestamp out of range"))
}

/// A timestamp the resource may lack (`null` in JSON).
pub(crate) fn optional_timestamp(value: Option<prost_types::Timestamp>) -> Result<Option<OffsetDateTime>, ApiError> {
    value.map(|value| timestamp(Some(value))).transpose()
}

/// A time a client sent, as the services' timestamp (the same instant).
pub(crate) use ordo_proto::time::timestamp as proto_timestamp;

/// The query parameter `name`, an RFC 3339 time, as the services' timestamp; `400` naming it
/// otherwise.
pub(crate) fn time_parameter(name: &str, value: &str) -> Result<prost_types::Timestamp, ApiError> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map(proto_timestamp).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 time such as 2026-05-01T17:00:00Z (encode a + offset as %2B)."
        ))
    })
}

/// The services' "none" (an empty string) is JSON `null`.
pub(crate) fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// The `500` of a message no service should send; `what` says what it was, for the log.
pub(crate) fn malformed(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("a service sent {what}"))
}
