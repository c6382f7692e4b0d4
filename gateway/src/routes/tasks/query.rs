//! `GET /tasks`: listing tasks by filters and one sort. Every query parameter is checked here, so a
//! typo or an unknown value is a `400` naming the parameter rather than a silently different list.

use axum::extract::State;
use ordo_proto::task::v1 as pb;

use super::types::{ListTasksParams, Task, TaskFilter, TaskPage, TaskPriority, TaskStatus};
use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::pagination;
use crate::routes::representation::time_parameter;
use crate::state::AppState;

/// Lists tasks by filters and one sort, a keyset page at a time (viewers and up).
///
/// Either `project_id` or `assignee_id` is needed: a project's tasks, or a user's tasks across every
/// project the caller can see (`assignee_id=me`: "my tasks"). Keyset pagination: stable under inserts.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    operation_id = "list_tasks",
    security(("bearer" = [])),
    params(ListTasksParams),
    responses(
        (status = 200, description = "A page of tasks in the order `sort` asks for, ties broken by id.", body = TaskPage),
        (status = 400, description = "A bad parameter value, named in `detail`: an unknown `status`, `priority` or `sort`, an id that is not a UUID, an unparseable time, an empty `label`, a `limit` out of 1..100, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Neither `project_id` nor `assignee_id` was given (`errors` names `project_id`).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListTasksParams>,
) -> Result<Json<TaskPage>, ApiError> {
    let request = list_request(&caller, params)?;
    let page = state
        .task()
        .list_tasks(backend::on_behalf_of(&caller.authorization, request))
        .await
        .map_err(|status| {
            // A missing `project_id` stays a `422` (API.md); the service's complaints about the other
            // parameters are bad query strings.
            pagination::query_errors_are_bad_requests(
                status.into(),
                &[
                    "cursor",
                    "limit",
                    "sort",
                    "status",
                    "statuses",
                    "priority",
                    "priorities",
                    "assignee_id",
                    "label",
                    "q",
                    "query",
                    "due_before",
                    "due_after",
                    "parent_id",
                ],
            )
        })?
        .into_inner();
    let items = page.tasks.into_iter().map(|task| Task::from_proto(Some(task))).collect::<Result<_, _>>()?;
    Ok(Json(TaskPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// The list request of an export's `filter` of project `project_id`: every value checked as `GET /tasks`
/// checks its parameters, `400` naming the first bad one.
pub(crate) fn filter_request(
    caller: &Caller,
    project_id: String,
    filter: TaskFilter,
) -> Result<pb::ListTasksRequest, ApiError> {
    list_request(caller, filter.into_params(project_id))
}

/// The service's request for a list query: every parameter checked, `400` naming the first bad one.
fn list_request(caller: &Caller, params: ListTasksParams) -> Result<pb::ListTasksRequest, ApiError> {
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let assignee_id = match params.assignee_id.as_deref() {
        None => String::new(),
        Some("me") => caller.user_id.hyphenated().to_string(),
        Some(other) => uuid_parameter("assignee_id", other)?,
    };
    Ok(pb::ListTasksRequest {
        project_id: params
            .project_id
            .as_deref()
            .map(|id| uuid_parameter("project_id", id))
            .transpose()?
            .unwrap_or_default(),
        statuses: list_parameter("status", params.status.as_deref(), parse_status)?
            .into_iter()
            .map(|status| status.to_proto() as i32)
            .collect(),
        priorities: list_parameter("priority", params.priority.as_deref(), parse_priority)?
            .into_iter()
            .map(|priority| priority.to_proto() as i32)
            .collect(),
        assignee_id,
        label: match params.label {
            Some(label) if label.is_empty() => {
                return Err(ApiError::BadRequest(
                    "label must not be empty; leave it out to match any label.".to_owned(),
                ));
            }
            label => label.unwrap_or_default(),
        },
        query: params.q.unwrap_or_default(),
        due_before: params.due_before.as_deref().map(|t| time_parameter("due_before", t)).transpose()?,
        due_after: params.due_after.as_deref().map(|t| time_parameter("due_after", t)).transpose()?,
        parent_id: params.parent_id.as_deref().map(|id| uuid_parameter("parent_id", id)).transpose()?,
        sort: parse_sort(params.sort.as_deref())? as i32,
        page,
    })
}

/// `?sort=`: one of the documented values; absent means `-created_at`.
fn parse_sort(raw: Option<&str>) -> Result<pb::TaskSort, ApiError> {
    use pb::TaskSort as S;
    match raw {
        // The service's default: newest first, or by relevance for a search of one project.
        None => Ok(S::Unspecified),
        Some("-created_at") => Ok(S::CreatedAtDesc),
        Some("created_at") => Ok(S::CreatedAtAsc),
        Some("updated_at") => Ok(S::UpdatedAtAsc),
        Some("-updated_at") => Ok(S::UpdatedAtDesc),
        Some("due_at") => Ok(S::DueAtAsc),
        Some("-due_at") => Ok(S::DueAtDesc),
        Some("priority") => Ok(S::PriorityAsc),
        Some("-priority") => Ok(S::PriorityDesc),
        Some("position") => Ok(S::PositionAsc),
        Some("relevance") => Ok(S::Relevance),
        Some(_) => Err(ApiError::BadRequest(
            "sort must be one of created_at, -created_at, updated_at, -updated_at, due_at, -due_at, priority, \
             -priority, position, relevance."
                .to_owned(),
        )),
    }
}

fn parse_status(text: &str) -> Option<TaskStatus> {
    TaskStatus::ALL.into_iter().find(|status| status.as_str() == text)
}

fn parse_priority(text: &str) -> Option<TaskPriority> {
    TaskPriority::ALL.into_iter().find(|priority| priority.as_str() == text)
}

/// A comma-separated list of known values; an empty or unknown item is a `400` naming the parameter.
fn list_parameter<T>(name: &str, raw: Option<&str>, parse: fn(&str) -> Option<T>) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.split(',')
        .map(|item| {
            parse(item.trim()).ok_or_else(|| ApiError::BadRequest(format!("{name}: {item:?} is not a known {name}.")))
        })
        .collect()
}

/// An id parameter: a UUID in any form, sent in canonical form; anything else is a `400`.
fn uuid_parameter(name: &str, value: &str) -> Result<String, ApiError> {
    uuid::Uuid::try_parse(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a UUID.")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn sort_values_are_the_documented_ones() {
        assert_eq!(parse_sort(None).unwrap(), pb::TaskSort::Unspecified);
        assert_eq!(parse_sort(Some("-created_at")).unwrap(), pb::TaskSort::CreatedAtDesc);
        assert_eq!(parse_sort(Some("relevance")).unwrap(), pb::TaskSort::Relevance);
        assert_eq!(parse_sort(Some("position")).unwrap(), pb::TaskSort::PositionAsc);
        assert_eq!(parse_sort(Some("-priority")).unwrap(), pb::TaskSort::PriorityDesc);
        for bad in ["", "title", "+due_at", "-position", "CREATED_AT", "-relevance"] {
            assert_eq!(parse_sort(Some(bad)).unwrap_err().status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn status_and_priority_lists_are_comma_separated_known_values() {
        assert_eq!(
            list_parameter("status", Some("todo,in_progress"), parse_status).unwrap(),
            [TaskStatus::Todo, TaskStatus::InProgress]
        );
        assert_eq!(list_parameter("priority", Some("urgent"), parse_priority).unwrap(), [TaskPriority::Urgent]);
        for bad in ["", "todo,", "doing", "TODO"] {
            assert!(list_parameter("status", Some(bad), parse_status).is_err(), "{bad:?}");
        }
    }
}
