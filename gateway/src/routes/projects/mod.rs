//! `/projects`: projects, archiving them, and their members. Who may do what is the project service's
//! to decide; it answers `NOT_FOUND` for a project the caller may not see, so a non-member gets `404`
//! on every route here and never learns whether the project exists. The gateway checks the shape of
//! requests, makes the creating `POST`s idempotent per caller, and turns versions into `ETag`s.

use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::project::v1 as pb;
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
use crate::state::AppState;

mod types;

use self::types::{
    AddMemberBody, CreateProjectBody, ListProjectsParams, Member, MemberPage, Project, ProjectPage, UpdateMemberBody,
    UpdateProjectBody,
};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(archive_project))
        .routes(routes!(unarchive_project))
        .routes(routes!(list_members, add_member))
        .routes(routes!(get_member, update_member, remove_member))
}

/// Creates a project; the caller becomes its `owner`.
///
/// Send an `Idempotency-Key` to make retries safe; keys are the caller's own.
#[utoipa::path(
    post,
    path = "/projects",
    tag = "projects",
    operation_id = "create_project",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key and body within 24 h replays the first response.")
    ),
    request_body = CreateProjectBody,
    responses(
        (status = 201, description = "The new project; the caller is its owner.", body = Project, headers(
            ("Location" = String, description = "`/api/v1/projects/{id}`"),
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 409, description = "The key is taken by another project (archived ones included), or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each bad field), or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<CreateProjectBody>,
) -> Result<Response, ApiError> {
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move { create(&state, &caller, client, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await
}

/// Creates the project; every outcome, failures included, is a response to store for replay.
async fn create(
    state: &AppState,
    caller: &Caller,
    client: Client,
    body: CreateProjectBody,
) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::CreateProjectRequest {
            name: body.name,
            key: body.key,
            description: body.description,
            client: Some(client.for_project()),
        },
    );
    let project = Project::from_proto(state.project().create_project(request).await?.into_inner().project)?;
    let location = location(format!("{API_PREFIX}/projects/{}", project.id))?;
    let etag = project.etag();
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, etag)], Json(project)).into_response())
}

/// Lists the caller's projects (a global admin's: every project), sorted by name, then id.
///
/// Active projects unless `archived=true`. Keyset pagination: stable under inserts.
#[utoipa::path(
    get,
    path = "/projects",
    tag = "projects",
    operation_id = "list_projects",
    security(("bearer" = [])),
    params(ListProjectsParams),
    responses(
        (status = 200, description = "A page of projects, sorted by name, then id.", body = ProjectPage),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListProjectsParams>,
) -> Result<Json<ProjectPage>, ApiError> {
    let archived = pagination::flag("archived", params.archived.as_deref())?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = backend::on_behalf_of(&caller.authorization, pb::ListProjectsRequest { archived, page });
    let page = state
        .project()
        .list_projects(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["archived", "cursor", "limit"]))?
        .into_inner();
    let items =
        page.projects.into_iter().map(|project| Project::from_proto(Some(project))).collect::<Result<_, _>>()?;
    Ok(Json(ProjectPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// One project (any member, and global admins).
///
/// An `id` that is not a UUID, or names a project the caller may not see, is a `404`.
#[utoipa::path(
    get,
    path = "/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The project id.")),
    responses(
        (status = 200, description = "The project.", body = Project,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = project_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetProjectRequest { id });
    let project = Project::from_proto(state.project().get_project(request).await?.into_inner().project)?;
    Ok(project_response(project))
}

/// Changes a project's name or description (project `admin`s and `owner`s).
#[utoipa::path(
    patch,
    path = "/projects/{id}",
    tag = "projects",
    operation_id = "update_project",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the project is still at that version."),
    ),
    request_body(content = UpdateProjectBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed project.", body = Project,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is a `member` or `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each bad field).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_project(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
    Json(body): Json<UpdateProjectBody>,
) -> Result<Response, ApiError> {
    let id = project_id(id)?;
    let (state, caller) = (&state, &caller);
    let project = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateProjectRequest {
                    id: id.clone(),
                    name: body.name.clone(),
                    // The service reads an empty description as "remove it".
                    description: body.description.clone().map(Option::unwrap_or_default),
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().update_project(request).await?.into_inner().project) }
        })
        .await?;
    let project = Project::from_proto(project)?;
    Ok(project_response(project))
}

/// Archives a project (`owner`s). Archiving an archived project changes nothing.
///
/// In an archived project every task write answers `409`.
#[utoipa::path(
    post,
    path = "/projects/{id}/archive",
    tag = "projects",
    operation_id = "archive_project",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the project is still at that version."),
    ),
    responses(
        (status = 200, description = "The archived project.", body = Project,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is not an `owner` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn archive_project(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<Response, ApiError> {
    let id = project_id(id)?;
    let (state, caller) = (&state, &caller);
    let project = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::ArchiveProjectRequest {
                    id: id.clone(),
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().archive_project(request).await?.into_inner().project) }
        })
        .await?;
    let project = Project::from_proto(project)?;
    Ok(project_response(project))
}

/// Brings an archived project back (`owner`s). Unarchiving an active project changes nothing.
#[utoipa::path(
    post,
    path = "/projects/{id}/unarchive",
    tag = "projects",
    operation_id = "unarchive_project",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the project is still at that version."),
    ),
    responses(
        (status = 200, description = "The active project.", body = Project,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is not an `owner` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn unarchive_project(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<Response, ApiError> {
    let id = project_id(id)?;
    let (state, caller) = (&state, &caller);
    let project = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UnarchiveProjectRequest {
                    id: id.clone(),
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().unarchive_project(request).await?.into_inner().project) }
        })
        .await?;
    let project = Project::from_proto(project)?;
    Ok(project_response(project))
}

/// Deletes a project and its memberships (`owner`s); its tasks, comments and attachments follow
/// (eventually, by event).
#[utoipa::path(
    delete,
    path = "/projects/{id}",
    tag = "projects",
    operation_id = "delete_project",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): delete only if the project is still at that version."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is not an `owner` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let id = project_id(id)?;
    let (state, caller) = (&state, &caller);
    if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::DeleteProjectRequest {
                    id: id.clone(),
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().delete_project(request).await?) }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a project's members (any member, and global admins), oldest membership first: by
/// `added_at`, then user id.
///
/// Keyset pagination: stable under inserts.
#[utoipa::path(
    get,
    path = "/projects/{id}/members",
    tag = "projects",
    operation_id = "list_members",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The project id."), pagination::PageParams),
    responses(
        (status = 200, description = "A page of members, by `added_at`, then user id.", body = MemberPage),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<pagination::PageParams>,
) -> Result<Json<MemberPage>, ApiError> {
    let project_id = project_id(id)?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = backend::on_behalf_of(&caller.authorization, pb::ListMembersRequest { project_id, page });
    let page = state
        .project()
        .list_members(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit"]))?
        .into_inner();
    let items = page.members.into_iter().map(|member| Member::from_proto(Some(member))).collect::<Result<_, _>>()?;
    Ok(Json(MemberPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// Adds a member (project `admin`s and `owner`s; only an `owner` grants `owner`).
///
/// Send an `Idempotency-Key` to make retries safe; keys are the caller's own.
#[utoipa::path(
    post,
    path = "/projects/{id}/members",
    tag = "projects",
    operation_id = "add_member",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key and body within 24 h replays the first response."),
    ),
    request_body = AddMemberBody,
    responses(
        (status = 201, description = "The new membership.", body = Member, headers(
            ("Location" = String, description = "`/api/v1/projects/{id}/members/{user_id}`"),
            ("ETag" = String, description = "`\"<version>\"` of the membership"),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 403, description = "The caller is a `member` or `viewer` of the project, or an `admin` granting `owner`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is already a member, or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`user_id` names no user (or is not a UUID), `role` is not a role, or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<AddMemberBody>,
) -> Result<Response, ApiError> {
    let project_id = project_id(id)?;
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move { add(&state, &caller, client, project_id, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await
}

/// Adds the member; every outcome, failures included, is a response to store for replay.
async fn add(
    state: &AppState,
    caller: &Caller,
    client: Client,
    project_id: String,
    body: AddMemberBody,
) -> Result<Response, ApiError> {
    if uuid::Uuid::try_parse(&body.user_id).is_err() {
        return Err(ApiError::invalid_field("user_id", "must be a user id (a UUID)"));
    }
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::AddMemberRequest {
            project_id: project_id.clone(),
            user_id: body.user_id,
            role: body.role.to_proto() as i32,
            client: Some(client.for_project()),
        },
    );
    let member = Member::from_proto(state.project().add_member(request).await?.into_inner().member)?;
    let location = location(format!("{API_PREFIX}/projects/{project_id}/members/{}", member.user_id))?;
    let etag = member.etag();
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, etag)], Json(member)).into_response())
}

/// One member of a project (anyone who can see the project).
#[utoipa::path(
    get,
    path = "/projects/{id}/members/{user_id}",
    tag = "projects",
    operation_id = "get_member",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("user_id" = String, Path, format = Uuid, description = "The member's user id."),
    ),
    responses(
        (status = 200, description = "The membership.", body = Member,
            headers(("ETag" = String, description = "`\"<version>\"` of the membership"))),
        (status = 404, description = "No such project or member, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_member(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (project_id, user_id) = member_ids(ids)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetMemberRequest { project_id, user_id });
    let member = Member::from_proto(state.project().get_member(request).await?.into_inner().member)?;
    let etag = member.etag();
    Ok(([(header::ETAG, etag)], Json(member)).into_response())
}

/// Changes a member's role (project `admin`s for members below `owner`; `owner`s for anyone).
///
/// Only an `owner` grants `owner` or changes an owner's role, and the last owner cannot be demoted.
#[utoipa::path(
    patch,
    path = "/projects/{id}/members/{user_id}",
    tag = "projects",
    operation_id = "update_member",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("user_id" = String, Path, format = Uuid, description = "The member's user id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from the membership's `ETag`, or a comma-separated list of them (any current one matches; weak tags never match, `412`): apply only if it is still at that version."),
    ),
    request_body(content = UpdateMemberBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed membership.", body = Member,
            headers(("ETag" = String, description = "`\"<version>\"` of the membership"))),
        (status = 403, description = "The caller is a `member` or `viewer`, or an `admin` granting `owner` or changing an owner.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or member, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The member is the project's last owner.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_member(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    if_match: IfMatch,
    client: Client,
    Json(body): Json<UpdateMemberBody>,
) -> Result<Response, ApiError> {
    let (project_id, user_id) = member_ids(ids)?;
    let (state, caller) = (&state, &caller);
    let member = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateMemberRequest {
                    project_id: project_id.clone(),
                    user_id: user_id.clone(),
                    role: body.role.to_proto() as i32,
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().update_member(request).await?.into_inner().member) }
        })
        .await?;
    let member = Member::from_proto(member)?;
    let etag = member.etag();
    Ok(([(header::ETAG, etag)], Json(member)).into_response())
}

/// Removes a member (project `admin`s for members below `owner`; `owner`s for anyone), or the caller
/// leaves (any member). The last owner can be neither removed nor leave.
#[utoipa::path(
    delete,
    path = "/projects/{id}/members/{user_id}",
    tag = "projects",
    operation_id = "remove_member",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("user_id" = String, Path, format = Uuid, description = "The member's user id (the caller's own to leave)."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from the membership's `ETag`, or a comma-separated list of them (any current one matches; weak tags never match, `412`): remove only if it is still at that version."),
    ),
    responses(
        (status = 204, description = "Removed; the user's access to the project ends at once."),
        (status = 403, description = "The caller is a `member` or `viewer` removing someone else, or an `admin` removing an owner.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or member, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The member is the project's last owner.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    if_match: IfMatch,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let (project_id, user_id) = member_ids(ids)?;
    let (state, caller) = (&state, &caller);
    if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::RemoveMemberRequest {
                    project_id: project_id.clone(),
                    user_id: user_id.clone(),
                    expected_version,
                    client: Some(client.clone().for_project()),
                },
            );
            async move { Ok::<_, ApiError>(state.project().remove_member(request).await?) }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{id}` of a project route; not a UUID means no such project.
fn project_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, no_project)
}

/// The `{id}` and `{user_id}` of a member route; either not a UUID means no such member.
fn member_ids(ids: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    let Ok(Path((project_id, user_id))) = ids else { return Err(no_project()) };
    if uuid::Uuid::try_parse(&project_id).is_err() {
        return Err(no_project());
    }
    if uuid::Uuid::try_parse(&user_id).is_err() {
        return Err(ApiError::NotFound("The project has no member with this user id.".to_owned()));
    }
    Ok((project_id, user_id))
}

/// The `404` of a project that does not exist or that the caller may not see.
fn no_project() -> ApiError {
    ApiError::NotFound("No project has this id.".to_owned())
}

/// A project with its `ETag`.
fn project_response(project: Project) -> Response {
    ([(header::ETAG, project.etag())], Json(project)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;
    use crate::extract::parse_json;

    fn update(body: &str) -> Result<UpdateProjectBody, ApiError> {
        parse_json(body.as_bytes())
    }

    #[test]
    fn an_absent_description_is_left_and_a_null_or_empty_one_removes_it() {
        assert_eq!(update("{}").unwrap().description, None);
        assert_eq!(update(r#"{"description": null}"#).unwrap().description, Some(None));
        assert_eq!(
            update(r#"{"description": ""}"#).unwrap().description.map(Option::unwrap_or_default),
            Some(String::new())
        );
        assert_eq!(update(r#"{"description": "x"}"#).unwrap().description, Some(Some("x".to_owned())));
    }

    #[test]
    fn a_null_name_is_422_naming_it() {
        let error = update(r#"{"name": null}"#).err().unwrap();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(matches!(error, ApiError::Validation { ref errors, .. } if errors[0].field == "name"), "{error:?}");
        assert_eq!(update(r#"{"name": "N"}"#).unwrap().name.as_deref(), Some("N"));
    }

    #[test]
    fn an_unknown_role_is_422_naming_it() {
        let error = parse_json::<AddMemberBody>(br#"{"user_id": "u", "role": "boss"}"#).err().unwrap();
        assert!(matches!(error, ApiError::Validation { ref errors, .. } if errors[0].field == "role"), "{error:?}");
    }
}
