//! `/audit`: reading the audit log and verifying its hash chain. Who may read what is the audit
//! service's to decide (global admins: everything; a project's owners and admins: that project's
//! records, asked with its `project_id`; anyone else: `403`). The gateway checks the shape of the
//! filters, so a typo is a `400` naming the parameter rather than a silently empty page.

use axum::extract::State;
use ordo_proto::audit::v1 as pb;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::pagination;
use crate::routes::representation::proto_timestamp;
use crate::state::AppState;

mod types;

use self::types::{AuditRecord, AuditRecordPage, AuditVerification, ListAuditEventsParams, VerifyAuditLogParams};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_events)).routes(routes!(verify_audit_log))
}

/// Audit records matching every given filter, oldest first (by `seq` ascending).
///
/// Every domain event and every security event (login success and failure, logout, refresh-token
/// reuse, password change, role changes, users disabled) is one record, appended once, never changed.
///
/// **Who reads what.** A global `admin` reads every record, with or without `project_id`. A project's
/// `owner`s and `admin`s read that project's records: they must pass its `project_id`, and see only
/// records with that `project_id`. Anyone else — a project's `member`s and `viewer`s, a manager without
/// `project_id`, a user outside the project, or a `project_id` that names no project — gets `403`
/// (never `404`, so the answer does not tell whether the project exists).
///
/// **Order and pages.** Records come by `seq` ascending; keyset pagination, so records appended while
/// paging show up on later pages, and each record is served exactly once. `next_cursor` is `null` on
/// the last page.
///
/// **Integrity.** Records form a SHA-256 hash chain (see `hash` in `AuditRecord`): recompute it from
/// the records, or ask `GET /audit/verify`.
#[utoipa::path(
    get,
    path = "/audit/events",
    tag = "audit",
    operation_id = "list_audit_events",
    security(("bearer" = [])),
    params(ListAuditEventsParams),
    responses(
        (status = 200, description = "A page of records, by `seq` ascending.", body = AuditRecordPage),
        (status = 400, description = "A bad parameter value, named in `detail`: an empty filter, an `actor_id` or `project_id` that is not a UUID, an unparseable `from` or `to`, a `limit` out of 1..100, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a global admin, and either gave no `project_id` or is not an `owner` or `admin` of that project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_audit_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListAuditEventsParams>,
) -> Result<Json<AuditRecordPage>, ApiError> {
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = pb::ListRecordsRequest {
        actor_id: uuid_filter("actor_id", params.actor_id)?,
        action: text_filter("action", params.action)?,
        entity_type: text_filter("entity_type", params.entity_type)?,
        entity_id: text_filter("entity_id", params.entity_id)?,
        project_id: uuid_filter("project_id", params.project_id)?,
        from: time_filter("from", params.from)?,
        to: time_filter("to", params.to)?,
        page,
    };
    let page = state
        .audit()
        .list_records(backend::on_behalf_of(&caller.authorization, request))
        .await
        .map_err(|status| match ApiError::from(status) {
            // The only request error the service reports without naming a field is the cursor's.
            ApiError::BadRequest(_) => pagination::bad_cursor(),
            error => pagination::query_errors_are_bad_requests(
                error,
                &["actor_id", "action", "entity_type", "entity_id", "project_id", "from", "to", "cursor", "limit"],
            ),
        })?
        .into_inner();
    let items = page.records.into_iter().map(AuditRecord::from_proto).collect::<Result<_, _>>()?;
    Ok(Json(AuditRecordPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// Recomputes the hash chain, in parts (global admins only).
///
/// Checks, from the first record present on, that each record's `hash` is the SHA-256 of its
/// canonical bytes, that its `prev_hash` is the `hash` of the record before, and that no `seq` is
/// missing. The first record that fails is `first_bad_seq`: it, or one before it, was edited, removed
/// or inserted.
///
/// **Parts.** One call checks at most `limit` records (default 100,000, at most 200,000), so its
/// work is bounded whatever the log's length. When the log is longer, the answer carries a
/// `next_cursor`: pass it as `cursor` to check the next part, which starts by checking its first
/// record's link to the last record of the part before. The log verifies when every part answered
/// `ok` and the last one (with `next_cursor` `null`) reached the head — the chain's last record as
/// stored apart from the records, which catches records cut off the end. Records appended after a
/// part read the head are left to a later part or call. `ordo-audit verify` checks the whole log
/// in one pass from the command line.
#[utoipa::path(
    get,
    path = "/audit/verify",
    tag = "audit",
    operation_id = "verify_audit_log",
    security(("bearer" = [])),
    params(VerifyAuditLogParams),
    responses(
        (status = 200, description = "The verdict on this part: `{\"ok\": true, \"checked\": N, \"anchor\": {\"seq\": 1, \"prev_hash\": \"00…\"}, \"next_cursor\": null}`, or with `\"ok\": false` and `\"first_bad_seq\": S` when the chain is broken. `anchor` is where the check started (see the schema); `next_cursor` is where the next part starts.", body = AuditVerification),
        (status = 400, description = "A `limit` out of 1..200000, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a global admin.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn verify_audit_log(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<VerifyAuditLogParams>,
) -> Result<Json<AuditVerification>, ApiError> {
    let limit = verify_limit(params.limit.as_deref())?;
    let cursor = pagination::parse_cursor(params.cursor.as_deref())?.to_owned();
    let request = backend::on_behalf_of(&caller.authorization, pb::VerifyLogRequest { limit, cursor });
    let verdict = state
        .audit()
        .verify_log(request)
        .await
        .map_err(|status| match ApiError::from(status) {
            ApiError::BadRequest(_) => pagination::bad_cursor(),
            error => pagination::query_errors_are_bad_requests(error, &["cursor", "limit"]),
        })?
        .into_inner();
    Ok(Json(AuditVerification::from_proto(verdict)))
}

/// The most records one `GET /audit/verify` checks (the audit service's bound).
const MAX_VERIFY_LIMIT: u32 = 200_000;

/// `?limit=` of a verification: 1 to 200,000; absent is the service's default (0).
fn verify_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    pagination::bounded_limit(raw, 0, MAX_VERIFY_LIMIT)
}

/// An exact-match filter: absent is "any" (the service's empty string); empty is a `400`.
fn text_filter(name: &str, value: Option<String>) -> Result<String, ApiError> {
    match value {
        None => Ok(String::new()),
        Some(value) if value.is_empty() => {
            Err(ApiError::BadRequest(format!("{name} must not be empty; leave it out to match any value.")))
        }
        Some(value) => Ok(value),
    }
}

/// A filter on a user or project id: a UUID in any form, sent in the hyphenated lower-case form the
/// log stores, so `ABC...` finds what `abc...` does.
fn uuid_filter(name: &str, value: Option<String>) -> Result<String, ApiError> {
    let value = text_filter(name, value)?;
    if value.is_empty() {
        return Ok(value);
    }
    uuid::Uuid::try_parse(&value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a UUID.")))
}

/// A time bound: RFC 3339 (with any offset; compared as an instant).
fn time_filter(name: &str, value: Option<String>) -> Result<Option<prost_types::Timestamp>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let time = OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 time such as 2026-01-31T09:30:00Z (encode a + offset as %2B)."
        ))
    })?;
    Ok(Some(proto_timestamp(time)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;

    fn detail(error: ApiError) -> String {
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        match error {
            ApiError::BadRequest(detail) => detail,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_absent_filter_matches_anything_and_an_empty_one_is_a_bad_request_naming_it() {
        assert_eq!(text_filter("action", None).unwrap(), "");
        assert_eq!(text_filter("action", Some("project.created".into())).unwrap(), "project.created");
        assert!(detail(text_filter("action", Some(String::new())).unwrap_err()).starts_with("action "));
        assert!(detail(uuid_filter("actor_id", Some(String::new())).unwrap_err()).starts_with("actor_id "));
    }

    #[test]
    fn ids_are_uuids_in_any_form_sent_in_canonical_form() {
        let canonical = "0190b6a4-7c1e-7000-8000-0000000000a1";
        for form in [canonical, "0190B6A4-7C1E-7000-8000-0000000000A1", "0190b6a47c1e700080000000000000a1"] {
            assert_eq!(uuid_filter("project_id", Some(form.into())).unwrap(), canonical, "{form}");
        }
        assert_eq!(uuid_filter("project_id", None).unwrap(), "");
        for bad in ["42", "0190b6a4-7c1e-7000-8000", "not-a-uuid"] {
            assert!(detail(uuid_filter("project_id", Some(bad.into())).unwrap_err()).contains("project_id"), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc3339_instants() {
        let utc = time_filter("from", Some("2024-05-01T12:00:00.5Z".into())).unwrap().unwrap();
        assert_eq!((utc.seconds, utc.nanos), (1_714_564_800, 500_000_000));
        let offset = time_filter("from", Some("2024-05-01T14:00:00+02:00".into())).unwrap().unwrap();
        assert_eq!((offset.seconds, offset.nanos), (1_714_564_800, 0));
        assert_eq!(time_filter("to", None).unwrap(), None);
    }

    #[test]
    fn a_time_that_is_not_rfc3339_is_a_bad_request_naming_the_parameter() {
        // The last one is what `+02:00` becomes when the `+` is not encoded in the query string.
        for bad in ["", "yesterday", "2024-05-01", "1714564800", "2024-05-01T14:00:00 02:00"] {
            assert!(detail(time_filter("to", Some(bad.into())).unwrap_err()).starts_with("to "), "{bad:?}");
        }
    }
}
