//! `/tasks`: tasks, their board order, watching them, and bulk updates. Who may do what is the task
//! service's to decide (through the project service's roles): viewers read, members and up write, and a
//! task of a project the caller may not see answers `NOT_FOUND`, so a non-member gets `404` and never
//! learns whether the task exists. The gateway checks the shape of requests and query strings, makes
//! `POST /tasks` idempotent per caller, builds the update mask of a `PATCH` from the keys present, and
//! turns versions into `ETag`s.

use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::task::v1 as pb;
use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{
    BoundedString, BoundedVec, Client, IfMatch, Json, JsonWithBytes, Query, not_null, null_is_a_value,
};
use crate::idempotency::{self, MaybeIdempotencyKey, RequestSignature, Scope};
use crate::pagination;
use crate::resources::{BulkUpdateResult, Task, TaskPage, TaskPriority, TaskStatus};
use crate::routes::API_PREFIX;
use crate::state::AppState;

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_task, list_tasks))
        .routes(routes!(bulk_update_tasks))
        .routes(routes!(get_task_by_key))
        .routes(routes!(get_task, update_task, delete_task))
        .routes(routes!(move_task))
        .routes(routes!(watch_task, unwatch_task))
}

/// A point in time in a request body: RFC 3339 with any offset (stored as the instant, answered in
/// UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time(OffsetDateTime);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(Time)
            .map_err(|_| D::Error::custom("must be an RFC 3339 time such as 2026-05-01T17:00:00Z"))
    }
}

impl Time {
    fn to_proto(self) -> prost_types::Timestamp {
        timestamp(self.0)
    }
}

/// At most 20 assignees (API.md), bounded while the body is read.
type Assignees = BoundedVec<String, 20>;
/// At most 20 labels of at most 50 characters (API.md), bounded while the body is read; the
/// service checks the rest of the rule (not empty, de-duplicated).
type Labels = BoundedVec<BoundedString<50>, 20>;

/// A new task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTaskBody {
    /// The project; the caller must be one of its `member`s, `admin`s or `owner`s.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    project_id: String,
    /// 1 to 500 characters after trimming.
    #[schema(min_length = 1, max_length = 500, example = "Add the Tasks routes to the gateway")]
    title: String,
    /// At most 100,000 characters; absent, `null` or `""` for none.
    #[schema(max_length = 100000)]
    description: Option<String>,
    /// Default `todo`.
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    status: Option<TaskStatus>,
    /// Default `none`.
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    priority: Option<TaskPriority>,
    /// At most 20 user ids, each a member of the project (`422` otherwise); absent or `null` for none.
    #[schema(value_type = Option<Vec<String>>, max_items = 20, example = json!(["0190b6a4-7c1e-7000-8000-000000000001"]))]
    assignee_ids: Option<Assignees>,
    /// At most 20 labels of 1 to 50 characters; duplicates are dropped.
    #[schema(value_type = Option<Vec<String>>, max_items = 20, example = json!(["backend"]))]
    labels: Option<Labels>,
    /// RFC 3339; not before `start_at` when both are given.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T17:00:00Z")]
    due_at: Option<Time>,
    /// RFC 3339.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-04-28T09:00:00Z")]
    start_at: Option<Time>,
    /// 0 to 100,000 minutes.
    #[schema(minimum = 0, maximum = 100000, example = 90)]
    estimate_minutes: Option<i32>,
    /// A task of the same project; the new task may be at most five levels deep, and no cycle may form.
    #[schema(format = Uuid)]
    parent_id: Option<String>,
}

/// Changes to a task. Only the fields present change; every other field is left as it is.
///
/// `null` clears a field that may be empty (`description`, `assignee_ids`, `labels`, `due_at`,
/// `start_at`, `estimate_minutes`, `parent_id`); `null` for `title`, `status` or `priority` is a `422`.
/// A task never moves to another project: `project_id` in the body is a `422` naming it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTaskBody {
    /// 1 to 500 characters after trimming.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, min_length = 1, max_length = 500)]
    title: Option<String>,
    /// At most 100,000 characters; `null` or `""` removes it.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, max_length = 100000)]
    description: Option<Option<String>>,
    /// The new status; entering `done` sets `completed_at`, leaving it clears it.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    status: Option<TaskStatus>,
    /// The new priority.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    priority: Option<TaskPriority>,
    /// Replaces the assignees (at most 20 members of the project); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    assignee_ids: Option<Option<Assignees>>,
    /// Replaces the labels (at most 20 of 1 to 50 characters); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    labels: Option<Option<Labels>>,
    /// RFC 3339; `null` removes the due date.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_at: Option<Option<Time>>,
    /// RFC 3339; `null` removes the start date.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = DateTime)]
    start_at: Option<Option<Time>>,
    /// 0 to 100,000 minutes; `null` removes the estimate.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 100000)]
    estimate_minutes: Option<Option<i32>>,
    /// A task of the same project (no cycles, at most five levels deep); `null` makes the task
    /// top-level.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = Uuid)]
    parent_id: Option<Option<String>>,
    /// Refused whatever its value: a task stays in its project.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    project_id: Option<IgnoredAny>,
}

/// Where to put a task in its project's board order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveTaskBody {
    /// Place the task right after this task of the same project.
    #[schema(format = Uuid)]
    after_id: Option<String>,
    /// Place the task right before this task of the same project.
    #[schema(format = Uuid)]
    before_id: Option<String>,
}

/// One patch for many tasks.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkUpdateBody {
    /// 1 to 100 task ids; each is changed (or fails) on its own.
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 100)]
    ids: BoundedVec<String, 100>,
    /// The fields to change on every task; absent fields are left as they are.
    patch: BulkPatch,
}

/// The fields a bulk update may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkPatch {
    /// The new status.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    status: Option<TaskStatus>,
    /// The new priority.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    priority: Option<TaskPriority>,
    /// Replaces the assignees of every task; `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    assignee_ids: Option<Option<Assignees>>,
    /// Replaces the labels of every task (at most 20 of 1 to 50 characters); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    labels: Option<Option<Labels>>,
}

/// `GET /tasks` query parameters. Every filter given must match.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListTasksParams {
    /// Tasks of this project. Required unless `assignee_id` is given (without it the service answers
    /// `422` naming `project_id`); with `assignee_id` and no `project_id`, the list spans every project
    /// the caller can see. Not a UUID: `400`.
    #[param(format = Uuid)]
    project_id: Option<String>,
    /// Any of these statuses, comma-separated (`status=todo,in_progress`). An unknown status: `400`.
    #[param(example = "todo,in_progress")]
    status: Option<String>,
    /// Any of these priorities, comma-separated (`priority=high,urgent`). An unknown priority: `400`.
    #[param(example = "high,urgent")]
    priority: Option<String>,
    /// Tasks assigned to this user: a UUID, or `me` for the caller.
    #[param(example = "me")]
    assignee_id: Option<String>,
    /// Tasks carrying this label (exact match).
    label: Option<String>,
    /// Full-text search over title and description. An empty `q` searches nothing: it is ignored.
    q: Option<String>,
    /// Tasks due strictly before this time (RFC 3339; encode a `+` offset as `%2B`). Tasks without a
    /// due date never match.
    #[param(value_type = Option<String>, format = DateTime)]
    due_before: Option<String>,
    /// Tasks due strictly after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    due_after: Option<String>,
    /// Subtasks of this task (direct children only).
    #[param(format = Uuid)]
    parent_id: Option<String>,
    /// One of `created_at`, `-created_at` (the default: newest first), `updated_at`, `-updated_at`,
    /// `due_at`, `-due_at`, `priority` (`none` first), `-priority` (`urgent` first), `position` (board
    /// order). A leading `-` means descending. With `due_at` and `-due_at`, tasks without a due date come
    /// last in both directions. Ties are broken by id, so pages never overlap.
    #[param(example = "-created_at")]
    sort: Option<String>,
    /// The `next_cursor` of the previous page; only valid with the same filters and sort.
    cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    limit: Option<String>,
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
async fn list_tasks(
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

/// The service's request for a list query: every parameter checked, `400` naming the first bad one.
fn list_request(caller: &Caller, params: ListTasksParams) -> Result<pb::ListTasksRequest, ApiError> {
    let limit = pagination::parse_limit(params.limit.as_deref())?;
    let cursor = pagination::parse_cursor(params.cursor.as_deref())?.to_owned();
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
        limit: limit as i32,
        cursor,
    })
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

/// Applies one patch to up to 100 tasks, each on its own.
///
/// Always `200` once the request itself is valid: every task given is reported either in `updated`
/// (as it is now) or in `failed`, where `status` is the HTTP status `PATCH /tasks/{id}` with the same
/// fields would have answered for that task (`404` for a task the caller may not see, `403` for a
/// viewer, `409` in an archived project, `422` for a rule the patch breaks for that task). Not
/// idempotent by key: applying the same patch twice leaves the same result.
#[utoipa::path(
    post,
    path = "/tasks/bulk",
    tag = "tasks",
    operation_id = "bulk_update_tasks",
    security(("bearer" = [])),
    request_body = BulkUpdateBody,
    responses(
        (status = 200, description = "Each task's outcome.", body = BulkUpdateResult),
        (status = 422, description = "`ids` is empty or longer than 100, or the patch itself breaks a rule (`errors` names the fields).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn bulk_update_tasks(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    Json(body): Json<BulkUpdateBody>,
) -> Result<Json<BulkUpdateResult>, ApiError> {
    let BulkUpdateBody { ids, patch: bulk } = body;
    let mut patch = pb::TaskPatch::default();
    let mut paths = Vec::new();
    if let Some(status) = bulk.status {
        paths.push("status".to_owned());
        patch.status = status.to_proto() as i32;
    }
    if let Some(priority) = bulk.priority {
        paths.push("priority".to_owned());
        patch.priority = priority.to_proto() as i32;
    }
    if let Some(assignee_ids) = bulk.assignee_ids {
        paths.push("assignee_ids".to_owned());
        patch.assignee_ids = assignee_ids.map(BoundedVec::into_vec).unwrap_or_default();
    }
    if let Some(labels) = bulk.labels {
        paths.push("labels".to_owned());
        patch.labels = labels.map(BoundedVec::into_strings).unwrap_or_default();
    }
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::BulkUpdateTasksRequest {
            ids: ids.into_vec(),
            patch: Some(patch),
            update_mask: Some(prost_types::FieldMask { paths }),
            client: Some(client.for_task()),
        },
    );
    let result = state.task().bulk_update_tasks(request).await?.into_inner();
    Ok(Json(BulkUpdateResult::from_proto(result)?))
}

/// `?sort=`: one of the documented values; absent means `-created_at`.
fn parse_sort(raw: Option<&str>) -> Result<pb::TaskSort, ApiError> {
    use pb::TaskSort as S;
    match raw {
        None | Some("-created_at") => Ok(S::CreatedAtDesc),
        Some("created_at") => Ok(S::CreatedAtAsc),
        Some("updated_at") => Ok(S::UpdatedAtAsc),
        Some("-updated_at") => Ok(S::UpdatedAtDesc),
        Some("due_at") => Ok(S::DueAtAsc),
        Some("-due_at") => Ok(S::DueAtDesc),
        Some("priority") => Ok(S::PriorityAsc),
        Some("-priority") => Ok(S::PriorityDesc),
        Some("position") => Ok(S::PositionAsc),
        Some(_) => Err(ApiError::BadRequest(
            "sort must be one of created_at, -created_at, updated_at, -updated_at, due_at, -due_at, priority, \
             -priority, position."
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

/// A time parameter: RFC 3339 (any offset).
fn time_parameter(name: &str, value: &str) -> Result<prost_types::Timestamp, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339).map(timestamp).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 time such as 2026-05-01T17:00:00Z (encode a + offset as %2B)."
        ))
    })
}

fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        // Always below 10^9, so it fits.
        nanos: i32::try_from(time.nanosecond()).unwrap_or_default(),
    }
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

/// For a field whose mere presence matters (even as `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<IgnoredAny>, D::Error> {
    IgnoredAny::deserialize(deserializer).map(Some)
}

/// The `{id}` of a task route; not a UUID means no such task.
pub(crate) fn task_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, no_task)
}

/// The `404` of a task that does not exist or that the caller may not see.
pub(crate) fn no_task() -> ApiError {
    ApiError::NotFound("No task has this id.".to_owned())
}

/// A `Location` header value for `path`.
pub(crate) fn location(path: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::try_from(path)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("the task service sent an id unfit for a URL")))
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
    fn sort_values_are_the_documented_ones() {
        assert_eq!(parse_sort(None).unwrap(), pb::TaskSort::CreatedAtDesc);
        assert_eq!(parse_sort(Some("position")).unwrap(), pb::TaskSort::PositionAsc);
        assert_eq!(parse_sort(Some("-priority")).unwrap(), pb::TaskSort::PriorityDesc);
        for bad in ["", "title", "+due_at", "-position", "CREATED_AT"] {
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
