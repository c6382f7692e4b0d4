//! `/users`: the caller's own account, finding users by email, and user administration.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::identity::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Client, IfMatch, Json, Query};
use crate::pagination;
use crate::state::AppState;

mod types;

pub(crate) use self::types::User;
use self::types::{
    ChangePasswordBody, ListUsersParams, Role, UpdateMeBody, UpdateUserBody, UserContact, UserContactPage, UserListing,
    UserPage, UserView,
};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(list_users))
        .routes(routes!(get_user, update_user))
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "users",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = User,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
#[tracing::instrument(level = "debug", skip_all)]
async fn get_me(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::GetMeRequest {});
    let user = User::from_proto(state.identity().get_me(request).await?.into_inner().user)?;
    Ok(user_response(user))
}

/// Changes the caller's own profile.
#[utoipa::path(
    patch,
    path = "/users/me",
    tag = "users",
    operation_id = "update_me",
    security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the account is still at that version.")),
    request_body(content = UpdateMeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed account.", body = User,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Json(body): Json<UpdateMeBody>,
) -> Result<Response, ApiError> {
    let (state, caller) = (&state, &caller);
    let user = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateMeRequest { display_name: body.display_name.clone(), expected_version },
            );
            async move { Ok::<_, ApiError>(state.identity().update_me(request).await?.into_inner().user) }
        })
        .await?;
    let user = User::from_proto(user)?;
    Ok(user_response(user))
}

/// Changes the caller's password; every other session of the caller is revoked, this one stays.
#[utoipa::path(
    post,
    path = "/users/me/password",
    tag = "users",
    operation_id = "change_password",
    security(("bearer" = [])),
    request_body = ChangePasswordBody,
    responses(
        (status = 204, description = "Changed; the other sessions are revoked."),
        (status = 422, description = "`current_password` is wrong, or `new_password` breaks its rule (`errors` names the field).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for this account: wrong current passwords and failed logins share one budget of 5 per 15 minutes.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = String, description = "Seconds until the window passes."))),
    )
)]
#[tracing::instrument(skip_all)]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Client(client): Client,
    Json(body): Json<ChangePasswordBody>,
) -> Result<StatusCode, ApiError> {
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::ChangePasswordRequest {
            current_password: body.current_password,
            new_password: body.new_password,
            client: Some(client),
        },
    );
    state.identity().change_password(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Finds a user by exact email (anyone), or lists every user (admins only).
///
/// With `email`: a page of 0 or 1 `{id, display_name, email}` and `next_cursor: null`. Without it:
/// admins get every user in a stable keyset order (stable under inserts), filtered by `q`; others get
/// `403`.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    operation_id = "list_users",
    security(("bearer" = [])),
    params(ListUsersParams),
    responses(
        (status = 200, description = "A lookup result (`UserContactPage`) or a page of users (`UserPage`).", body = UserListing),
        (status = 403, description = "Listing without `email` is for admins.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListUsersParams>,
) -> Result<Json<UserListing>, ApiError> {
    // Checked even when a lookup does not use them: a bad value of a defined parameter is a `400`.
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    if let Some(email) = params.email {
        let request = backend::on_behalf_of(&caller.authorization, pb::LookupUserByEmailRequest { email });
        let found = state.identity().lookup_user_by_email(request).await?.into_inner().user;
        let items = found
            .map(|user| UserContact { id: user.id, display_name: user.display_name, email: user.email })
            .into_iter()
            .collect();
        return Ok(Json(UserListing::Lookup(UserContactPage { items, next_cursor: None })));
    }
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::ListUsersRequest { query: params.q.unwrap_or_default(), page },
    );
    let page = state
        .identity()
        .list_users(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit", "query"]))?
        .into_inner();
    let items = page.users.into_iter().map(|user| User::from_proto(Some(user))).collect::<Result<_, _>>()?;
    Ok(Json(UserListing::Users(UserPage { items, next_cursor: pagination::next_cursor(page.next_cursor) })))
}

/// One user: the whole account for the user themself and admins, `{id, display_name}` for others.
///
/// An `id` that is not a UUID is a `404`, like any id that names no user.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    operation_id = "get_user",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The user id.")),
    responses(
        (status = 200, description = "The full user (with `ETag`) or the public profile.", body = UserView),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetUserRequest { id });
    match UserView::from_proto(state.identity().get_user(request).await?.into_inner())? {
        UserView::User(user) => Ok(user_response(user)),
        profile @ UserView::Profile(_) => Ok(Json(profile).into_response()),
    }
}

/// Changes a user's role or disabled flag (admins only). Disabling revokes all the user's sessions.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    operation_id = "update_user",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The user id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the user is still at that version."),
    ),
    request_body(content = UpdateUserBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed user.", body = User,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "Only admins change users.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An admin cannot demote or disable themself.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    if_match: IfMatch,
    Client(client): Client,
    Json(body): Json<UpdateUserBody>,
) -> Result<Response, ApiError> {
    let id = user_id(id)?;
    let (state, caller) = (&state, &caller);
    let user = if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::UpdateUserRequest {
                    id: id.clone(),
                    role: body.role.map_or(pb::Role::Unspecified, Role::to_proto) as i32,
                    disabled: body.disabled,
                    expected_version,
                    client: Some(client.clone()),
                },
            );
            async move { Ok::<_, ApiError>(state.identity().update_user(request).await?.into_inner().user) }
        })
        .await?;
    let user = User::from_proto(user)?;
    Ok(user_response(user))
}

/// The `{id}` of a user route; not a UUID means no such user.
fn user_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if uuid::Uuid::try_parse(&id).is_ok() => Ok(id),
        _ => Err(ApiError::NotFound("No user has this id.".to_owned())),
    }
}

/// A user with its `ETag`.
fn user_response(user: User) -> Response {
    ([(header::ETAG, user.etag())], Json(user)).into_response()
}
