//! `/tasks`: tasks, their board order, watching them, and bulk updates. Who may do what is the task
//! service's to decide (through the project service's roles): viewers read, members and up write, and a
//! task of a project the caller may not see answers `NOT_FOUND`, so a non-member gets `404` and never
//! learns whether the task exists. The gateway checks the shape of requests and query strings, makes
//! `POST /tasks` idempotent per caller, builds the update mask of a `PATCH` from the keys present, and
//! turns versions into `ETag`s. Listing (`query`) and bulk updates (`bulk`) have their own files.

use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::task::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{BoundedVec, Client, IfMatch, Json, JsonWithBytes};
use crate::idempotency::{self, MaybeIdempotencyKey, RequestSignature, Scope};
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::state::AppState;

mod bulk;
mod query;
mod types;

pub(crate) use self::query::filter_request;
pub(crate) use self::types::TaskFilter;
use self::types::{CreateTaskBody, MoveTaskBody, Task, TaskPriority, TaskStatus, Time, UpdateTaskBody};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_task, query::list_tasks))
        .routes(routes!(bulk::bulk_update_tasks))
        .routes(routes!(get_task_by_key))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(move_task))
        .routes(routes!(watch_task, unwatch_task))
}

/// Creates a task with the next number of its project (`member`s and up).
///
/// `number` counts up per project from 1 with no gaps or repeats, even under concurrent creates; `key`
/// is `<PROJECT_KEY>-<number>`. Send an `Idempotency-Key` to make retries safe; keys are the caller's
/// own.
#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    operation_id = "create_task",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key and body within 24 h replays the first response.")
    ),
    request_body = CreateTaskBody,
    responses(
        (status = 201, description = "The new task.", body = Task, headers(
            ("Location" = String, description = "`/api/v1/tasks/{id}`"),
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived, or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each bad field), or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn create_task(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<CreateTaskBody>,
) -> Result<Response, ApiError> {
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move { create(&state, &caller, client, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await
}

/// Creates the task; every outcome, failures included, is a response to store for replay.
async fn create(state: &AppState, caller: &Caller, client: Client, body: CreateTaskBody) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::CreateTaskRequest {
            project_id: body.project_id,
            title: body.title,
            description: body.description.filter(|description| !description.is_empty()),
            status: body.status.map_or(pb::TaskStatus::Unspecified, TaskStatus::to_proto) as i32,
            priority: body.priority.map_or(pb::TaskPriority::Unspecified, TaskPriority::to_proto) as i32,
            assignee_ids: body.assignee_ids.map(BoundedVec::into_vec).unwrap_or_default(),
            labels: body.labels.map(BoundedVec::into_strings).unwrap_or_default(),
            due_at: body.due_at.map(Time::to_proto),
            start_at: body.start_at.map(Time::to_proto),
            estimate_minutes: body.estimate_minutes,
            parent_id: body.parent_id,
            client: Some(client.for_task()),
        },
    );
    let task = Task::from_proto(state.task().create_task(request).await?.into_inner().task)?;
    let location = location(format!("{API_PREFIX}/tasks/{}", task.id))?;
    let etag = task.etag();
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, etag)], Json(task)).into_response())
}

/// One task (viewers and up).
///
/// An `id` that is not a UUID, or names a task the caller may not see, is a `404`.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    operation_id = "get_task",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The task id.")),
    responses(
        (status = 200, description = "The task.", body = Task,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = task_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetTaskRequest { id });
    let task = Task::from_proto(state.task().get_task(request).await?.into_inner().task)?;
    Ok(task_response(task))
}

/// One task by its key, such as `ORDO-42` (viewers and up).
///
/// Project keys are upper case, so `ordo-42` names no task. A key that names no task the caller may see
/// is a `404`.
#[utoipa::path(
    get,
    path = "/tasks/by-key/{key}",
    tag = "tasks",
    operation_id = "get_task_by_key",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "`<PROJECT_KEY>-<number>`.", example = "ORDO-42")),
    responses(
        (status = 200, description = "The task.", body = Task,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_task_by_key(
    State(state): State<AppState>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(key)) = key else { return Err(no_task()) };
    if !is_task_key(&key) {
        return Err(no_task());
    }
    let request = backend::on_behalf_of(&caller.authorization, pb::GetTaskByKeyRequest { key });
    let task = Task::from_proto(state.task().get_task_by_key(request).await?.into_inner().task)?;
    Ok(task_response(task))
}

/// Changes the fields present in the body (`member`s and up).
///
/// The update mask sent to the task service is built from the keys present, so a field left out is
/// never touched, and `null` clears a field that may be empty.
#[utoipa::path(
    patch,
    path = "/tasks/{id}",
    tag = "tasks",
    operation_id = "update_task",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The task id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the task is still at that version."),
    ),
    request_body(content = UpdateTaskBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed task.", body = Task,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one; nothing changed.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule, `project_id` was sent, or a field is unknown (`errors` names each).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
    Json(body): Json<UpdateTaskBody>,
) -> Result<Response, ApiError> {
    let id = task_id(id)?;
    let (patch, update_mask) = task_patch(body)?;
    let (state, caller) = (&state, &caller);
    let task = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateTaskRequest {
                    id: id.clone(),
                    patch: Some(patch.clone()),
                    update_mask: Some(update_mask.clone()),
                    expected_version,
                    client: Some(client.clone().for_task()),
                },
            );
            async move { Ok::<_, ApiError>(state.task().update_task(request).await?.into_inner().task) }
        })
        .await?;
    let task = Task::from_proto(task)?;
    Ok(task_response(task))
}

/// The patch and update mask of a `PATCH` body: one path per key present.
fn task_patch(body: UpdateTaskBody) -> Result<(pb::TaskPatch, prost_types::FieldMask), ApiError> {
    if body.project_id.is_some() {
        return Err(ApiError::invalid_field("project_id", "cannot change: a task stays in its project"));
    }
    let mut patch = pb::TaskPatch::default();
    let mut paths = Vec::new();
    if let Some(title) = body.title {
        paths.push("title");
        patch.title = title;
    }
    if let Some(description) = body.description {
        paths.push("description");
        patch.description = description.filter(|description| !description.is_empty());
    }
    if let Some(status) = body.status {
        paths.push("status");
        patch.status = status.to_proto() as i32;
    }
    if let Some(priority) = body.priority {
        paths.push("priority");
        patch.priority = priority.to_proto() as i32;
    }
    if let Some(assignee_ids) = body.assignee_ids {
        paths.push("assignee_ids");
        patch.assignee_ids = assignee_ids.map(BoundedVec::into_vec).unwrap_or_default();
    }
    if let Some(labels) = body.labels {
        paths.push("labels");
        patch.labels = labels.map(BoundedVec::into_strings).unwrap_or_default();
    }
    if let Some(due_at) = body.due_at {
        paths.push("due_at");
        patch.due_at = due_at.map(Time::to_proto);
    }
    if let Some(start_at) = body.start_at {
        paths.push("start_at");
        patch.start_at = start_at.map(Time::to_proto);
    }
    if let Some(estimate_minutes) = body.estimate_minutes {
        paths.push("estimate_minutes");
        patch.estimate_minutes = estimate_minutes;
    }
    if let Some(parent_id) = body.parent_id {
        paths.push("parent_id");
        patch.parent_id = parent_id;
    }
    let mask = prost_types::FieldMask { paths: paths.into_iter().map(str::to_owned).collect() };
    Ok((patch, mask))
}

/// Moves a task in its project's board order (`member`s and up).
///
/// Give `after_id`, `before_id` or both (neighbours in the project's `position` order); the task gets a
/// new `position` between them. With neither, the service decides (see its `422`).
#[utoipa::path(
    post,
    path = "/tasks/{id}/move",
    tag = "tasks",
    operation_id = "move_task",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The task id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): move only if the task is still at that version."),
    ),
    request_body = MoveTaskBody,
    responses(
        (status = 200, description = "The moved task, with its new `position`.", body = Task,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A neighbour is not a task of the same project, or is the task itself (`errors` names it).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn move_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
    Json(body): Json<MoveTaskBody>,
) -> Result<Response, ApiError> {
    let id = task_id(id)?;
    let (state, caller) = (&state, &caller);
    let task = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::MoveTaskRequest {
                    id: id.clone(),
                    after_id: body.after_id.clone(),
                    before_id: body.before_id.clone(),
                    expected_version,
                    client: Some(client.clone().for_task()),
                },
            );
            async move { Ok::<_, ApiError>(state.task().move_task(request).await?.into_inner().task) }
        })
        .await?;
    let task = Task::from_proto(task)?;
    Ok(task_response(task))
}

/// Deletes a task with its subtasks, comments and attachments (`member`s and up).
#[utoipa::path(
    delete,
    path = "/tasks/{id}",
    tag = "tasks",
    operation_id = "delete_task",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The task id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): delete only if the task is still at that version."),
    ),
    responses(
        (status = 204, description = "Deleted, with its subtasks, comments and attachments."),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let id = task_id(id)?;
    let (state, caller) = (&state, &caller);
    if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::DeleteTaskRequest { id: id.clone(), expected_version, client: Some(client.clone().for_task()) },
            );
            async move { Ok::<_, ApiError>(state.task().delete_task(request).await?) }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller starts watching a task (viewers and up); watching a watched task changes nothing.
///
/// Watchers, assignees and the reporter hear about the task's changes.
#[utoipa::path(
    post,
    path = "/tasks/{id}/watch",
    tag = "tasks",
    operation_id = "watch_task",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The task id.")),
    responses(
        (status = 204, description = "The caller watches the task."),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn watch_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let task_id = task_id(id)?;
    let request =
        backend::on_behalf_of(&caller.authorization, pb::WatchTaskRequest { task_id, client: Some(client.for_task()) });
    state.task().watch_task(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller stops watching a task; unwatching a task not watched changes nothing.
#[utoipa::path(
    delete,
    path = "/tasks/{id}/watch",
    tag = "tasks",
    operation_id = "unwatch_task",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The task id.")),
    responses(
        (status = 204, description = "The caller does not watch the task."),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn unwatch_task(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let task_id = task_id(id)?;
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::UnwatchTaskRequest { task_id, client: Some(client.for_task()) },
    );
    state.task().unwatch_task(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `<PROJECT_KEY>-<number>` in shape: anything else names no task, without asking the service.
fn is_task_key(key: &str) -> bool {
    let Some((project, number)) = key.rsplit_once('-') else { return false };
    let mut project_chars = project.chars();
    project_chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && project_chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && (2..=10).contains(&project.len())
        && !number.is_empty()
        && number.len() <= 18
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The `{id}` of a task route; not a UUID means no such task.
pub(crate) fn task_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, no_task)
}

/// The `404` of a task that does not exist or that the caller may not see.
fn no_task() -> ApiError {
    ApiError::NotFound("No task has this id.".to_owned())
}

/// A task with its `ETag`.
fn task_response(task: Task) -> Response {
    ([(header::ETAG, task.etag())], Json(task)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;
    use crate::extract::parse_json;

    fn mask(body: &str) -> Result<Vec<String>, ApiError> {
        task_patch(parse_json(body.as_bytes())?).map(|(_, mask)| mask.paths)
    }

    fn field_of(error: ApiError) -> String {
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{error:?}");
        match error {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_update_mask_names_exactly_the_keys_present() {
        assert!(mask("{}").unwrap().is_empty());
        assert_eq!(mask(r#"{"title": "T", "due_at": null}"#).unwrap(), ["title", "due_at"]);
        assert_eq!(
            mask(r#"{"labels": [], "assignee_ids": null, "estimate_minutes": 5, "parent_id": null}"#).unwrap(),
            ["assignee_ids", "labels", "estimate_minutes", "parent_id"]
        );
    }

    #[test]
    fn null_clears_a_clearable_field_and_is_refused_for_a_required_one() {
        let (patch, _) = task_patch(parse_json(br#"{"due_at": null, "description": null}"#).unwrap()).unwrap();
        assert_eq!(patch.due_at, None);
        assert_eq!(patch.description, None);
        for field in ["title", "status", "priority"] {
            let body = format!(r#"{{"{field}": null}}"#);
            let error = parse_json::<UpdateTaskBody>(body.as_bytes()).err().unwrap();
            assert_eq!(field_of(error), field, "{body}");
        }
    }

    #[test]
    fn project_id_in_a_patch_is_422_naming_it_whatever_its_value() {
        for value in ["null", "\"0190b6a4-7c1e-7000-8000-0000000000a1\"", "3"] {
            let error = mask(&format!(r#"{{"project_id": {value}}}"#)).unwrap_err();
            assert_eq!(field_of(error), "project_id", "{value}");
        }
    }

    #[test]
    fn unknown_fields_bad_enums_and_bad_times_are_422_naming_them() {
        assert_eq!(field_of(mask(r#"{"titel": "x"}"#).unwrap_err()), "titel");
        assert_eq!(field_of(mask(r#"{"status": "doing"}"#).unwrap_err()), "status");
        assert_eq!(field_of(mask(r#"{"due_at": "tomorrow"}"#).unwrap_err()), "due_at");
    }

    #[test]
    fn times_take_any_offset_and_keep_the_instant() {
        let (patch, _) = task_patch(parse_json(br#"{"due_at": "2024-05-01T14:00:00.5+02:00"}"#).unwrap()).unwrap();
        let due = patch.due_at.unwrap();
        assert_eq!((due.seconds, due.nanos), (1_714_564_800, 500_000_000));
    }

    #[test]
    fn task_keys_are_checked_for_shape() {
        for good in ["ORDO-1", "A1-42", "ABCDEFGHIJ-999"] {
            assert!(is_task_key(good), "{good}");
        }
        for bad in ["ordo-1", "ORDO", "ORDO-", "-1", "O-1", "ORDO-x", "ORDO-1-2", "ABCDEFGHIJK-1"] {
            assert!(!is_task_key(bad), "{bad}");
        }
    }
}
