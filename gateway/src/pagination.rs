//! Query parameters of every list (API.md, Conventions): `limit` 1..100 (default 50) and an opaque
//! `cursor` from the previous page, answered as `{"items": [...], "next_cursor": "..." | null}`, and
//! the lists' `true`/`false` filters. Bad values are a `400`, as are cursors the service refuses.

use ordo_proto::common::v1::PageRequest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// The query of a list that has no filter: the page only.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(crate) limit: Option<String>,
}

/// Page size when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub(crate) const MAX_LIMIT: u32 = 100;
/// Longest cursor accepted; ours are far shorter, so a longer one was not made by us.
const MAX_CURSOR_CHARS: usize = 1024;

/// `?limit=`: digits only, 1 to 100; absent means 50.
pub(crate) fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    bounded_limit(raw, DEFAULT_LIMIT, MAX_LIMIT)
}

/// `?limit=` of a route with bounds of its own: digits only, 1 to `max`; absent means `default`.
pub(crate) fn bounded_limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    raw.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| raw.parse::<u32>().ok())
        .flatten()
        .filter(|limit| (1..=max).contains(limit))
        .ok_or_else(|| ApiError::BadRequest(format!("limit must be an integer from 1 to {max}.")))
}

/// `?cursor=`: passed through as is; absent means the first page (the empty cursor of the services).
pub(crate) fn parse_cursor(raw: Option<&str>) -> Result<&str, ApiError> {
    match raw {
        None => Ok(""),
        Some(cursor) if !cursor.is_empty() && cursor.len() <= MAX_CURSOR_CHARS => Ok(cursor),
        Some(_) => Err(bad_cursor()),
    }
}

/// `?limit=` and `?cursor=` as the page a service's list request carries.
pub(crate) fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = parse_limit(limit)?;
    let cursor = parse_cursor(cursor)?.to_owned();
    // At most MAX_LIMIT, so it always fits.
    Ok(PageRequest { limit: i32::try_from(limit).unwrap_or(i32::MAX), cursor })
}

/// A yes-or-no filter of a list (`?archived=`, `?unread_only=`): `true` or `false`, absent meaning
/// `false`; anything else is a `400` naming `name`.
pub(crate) fn flag(name: &str, raw: Option<&str>) -> Result<bool, ApiError> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest(format!("{name} must be true or false."))),
    }
}

/// The `400` for a cursor that is not one of ours.
pub(crate) fn bad_cursor() -> ApiError {
    ApiError::BadRequest("cursor is not a cursor from a previous page of this list.".to_owned())
}

/// The services' "no more pages" (an empty string) is JSON `null`.
pub(crate) fn next_cursor(cursor: String) -> Option<String> {
    (!cursor.is_empty()).then_some(cursor)
}

/// A service's `422` about a query parameter is a `400` here: API.md says a bad cursor or query
/// parameter value is a bad request, not a bad body.
pub(crate) fn query_errors_are_bad_requests(error: ApiError, parameters: &[&str]) -> ApiError {
    match error {
        ApiError::Validation { ref errors, .. } if errors.iter().any(|e| parameters.contains(&e.field.as_str())) => {
            if errors.iter().any(|e| e.field == "cursor") {
                bad_cursor()
            } else {
                ApiError::BadRequest(error_detail(errors))
            }
        }
        other => other,
    }
}

fn error_detail(errors: &[crate::error::FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;
    use crate::error::FieldError;

    #[test]
    fn an_absent_limit_is_fifty() {
        assert_eq!(parse_limit(None).unwrap(), 50);
    }

    #[test]
    fn limits_from_1_to_100_are_accepted() {
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        assert_eq!(parse_limit(Some("007")).unwrap(), 7);
    }

    #[test]
    fn other_limits_are_a_bad_request() {
        for raw in ["0", "101", "-1", "+5", "ten", "", " 5", "5.0", "99999999999999999999"] {
            assert_eq!(parse_limit(Some(raw)).unwrap_err().status(), StatusCode::BAD_REQUEST, "{raw:?}");
        }
    }

    #[test]
    fn an_absent_cursor_is_the_first_page() {
        assert_eq!(parse_cursor(None).unwrap(), "");
    }

    #[test]
    fn a_cursor_is_passed_through_untouched() {
        assert_eq!(parse_cursor(Some("eyJpZCI6IjEifQ")).unwrap(), "eyJpZCI6IjEifQ");
    }

    #[test]
    fn an_empty_or_huge_cursor_is_a_bad_request() {
        let huge = "c".repeat(1025);
        for raw in ["", huge.as_str()] {
            assert_eq!(parse_cursor(Some(raw)).unwrap_err().status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn a_flag_is_true_false_or_absent_and_anything_else_is_a_bad_request_naming_it() {
        assert!(!flag("archived", None).unwrap());
        assert!(!flag("archived", Some("false")).unwrap());
        assert!(flag("archived", Some("true")).unwrap());
        for raw in ["", "yes", "1", "TRUE"] {
            let error = flag("unread_only", Some(raw)).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{raw:?}");
            assert!(matches!(error, ApiError::BadRequest(ref detail) if detail.starts_with("unread_only ")), "{raw:?}");
        }
    }

    #[test]
    fn the_last_page_has_a_null_next_cursor() {
        assert_eq!(next_cursor(String::new()), None);
        assert_eq!(next_cursor("abc".into()), Some("abc".into()));
    }

    #[test]
    fn a_service_refusing_the_cursor_is_a_bad_request() {
        let refused =
            ApiError::Validation { detail: "bad".into(), errors: vec![FieldError::new("cursor", "malformed")] };
        assert_eq!(query_errors_are_bad_requests(refused, &["cursor", "limit"]).status(), StatusCode::BAD_REQUEST);

        let body_error = ApiError::invalid_field("display_name", "too long");
        assert_eq!(
            query_errors_are_bad_requests(body_error, &["cursor", "limit"]).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
