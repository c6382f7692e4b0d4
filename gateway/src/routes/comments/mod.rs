//! Comments on tasks: `/tasks/{id}/comments` and `/comments/{id}`. Members and up comment; only the
//! author edits a comment; the author or a project `admin` or `owner` deletes it. A comment of a task
//! the caller may not see is a `404`, like the task.

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
use crate::extract::{Client, IfMatch, Json, JsonWithBytes, Query};
use crate::idempotency::{self, MaybeIdempotencyKey, RequestSignature, Scope};
use crate::pagination;
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::routes::tasks::task_id;
use crate::state::AppState;

mod types;

use self::types::{Comment, CommentBody, CommentPage};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_comment, list_comments)).routes(routes!(update_comment, delete_comment))
}

/// Comments on a task (`member`s and up).
///
/// Send an `Idempotency-Key` to make retries safe; keys are the caller's own. The new comment's
/// `Location` serves `PATCH` and `DELETE`; comments are read through the task's list.
#[utoipa::path(
    post,
    path = "/tasks/{id}/comments",
    tag = "tasks",
    operation_id = "add_comment",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The task id."),
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key and body within 24 h replays the first response."),
    ),
    request_body = CommentBody,
    responses(
        (status = 201, description = "The new comment.", body = Comment, headers(
            ("Location" = String, description = "`/api/v1/comments/{id}`"),
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived, or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`body` is empty or too long, or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn add_comment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<CommentBody>,
) -> Result<Response, ApiError> {
    let task_id = task_id(id)?;
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move { add(&state, &caller, client, task_id, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await
}

/// Adds the comment; every outcome, failures included, is a response to store for replay.
async fn add(
    state: &AppState,
    caller: &Caller,
    client: Client,
    task_id: String,
    body: CommentBody,
) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::AddCommentRequest { task_id, body: body.body, client: Some(client.for_task()) },
    );
    let comment = Comment::from_proto(state.task().add_comment(request).await?.into_inner().comment)?;
    let location = location(format!("{API_PREFIX}/comments/{}", comment.id))?;
    let etag = comment.etag();
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, etag)], Json(comment)).into_response())
}

/// A task's comments, oldest first (viewers and up).
#[utoipa::path(
    get,
    path = "/tasks/{id}/comments",
    tag = "tasks",
    operation_id = "list_comments",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The task id."), pagination::PageParams),
    responses(
        (status = 200, description = "A page of comments, oldest first (by `created_at`, then id).", body = CommentPage),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_comments(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<pagination::PageParams>,
) -> Result<Json<CommentPage>, ApiError> {
    let task_id = task_id(id)?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = backend::on_behalf_of(&caller.authorization, pb::ListCommentsRequest { task_id, page });
    let page = state
        .task()
        .list_comments(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit"]))?
        .into_inner();
    let items =
        page.comments.into_iter().map(|comment| Comment::from_proto(Some(comment))).collect::<Result<_, _>>()?;
    Ok(Json(CommentPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// Edits a comment's text (its author only).
#[utoipa::path(
    patch,
    path = "/comments/{id}",
    tag = "tasks",
    operation_id = "update_comment",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The comment id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the comment is still at that version."),
    ),
    request_body(content = CommentBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The edited comment.", body = Comment,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is not the comment's author.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment, or the caller may not see its task's project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_comment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
    Json(body): Json<CommentBody>,
) -> Result<Response, ApiError> {
    let id = comment_id(id)?;
    let (state, caller) = (&state, &caller);
    let comment = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateCommentRequest {
                    id: id.clone(),
                    body: body.body.clone(),
                    expected_version,
                    client: Some(client.clone().for_task()),
                },
            );
            async move { Ok::<_, ApiError>(state.task().update_comment(request).await?.into_inner().comment) }
        })
        .await?;
    let comment = Comment::from_proto(comment)?;
    Ok(([(header::ETAG, comment.etag())], Json(comment)).into_response())
}

/// Deletes a comment (its author, or a project `admin` or `owner`).
#[utoipa::path(
    delete,
    path = "/comments/{id}",
    tag = "tasks",
    operation_id = "delete_comment",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The comment id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): delete only if the comment is still at that version."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the author nor an `admin` or `owner` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such comment, or the caller may not see its task's project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_comment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let id = comment_id(id)?;
    let (state, caller) = (&state, &caller);
    if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::DeleteCommentRequest { id: id.clone(), expected_version, client: Some(client.clone().for_task()) },
            );
            async move { Ok::<_, ApiError>(state.task().delete_comment(request).await?) }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{id}` of a comment route; not a UUID means no such comment.
fn comment_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, || ApiError::NotFound("No comment has this id.".to_owned()))
}
