//! `/notifications`: the caller's own notifications — listing them with the unread and unseen counts,
//! the bell's seen state, reading, archiving and deleting them — the caller's delivery preferences,
//! and the caller's Web Push subscriptions (in `push`). Every call acts for the caller alone: the
//! notification service answers `NOT_FOUND` for another user's notification, so it is a `404` here,
//! never a `403`. The gateway checks the shape of requests and bounds the preferences and push
//! subscriptions before they are forwarded.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ordo_proto::notification::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::pagination;
use crate::state::AppState;

mod push;
mod stream;
mod types;

use self::types::{
    ListNotificationsParams, NotificationPage, NotificationPreferences, UpdateNotificationPreferencesBody,
};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(stream::stream_notifications))
        .routes(routes!(mark_notifications_seen))
        .routes(routes!(mark_all_notifications_read))
        .routes(routes!(get_notification_preferences, update_notification_preferences))
        .routes(routes!(push::get_push_key))
        .routes(routes!(push::subscribe_push, push::unsubscribe_push))
        .routes(routes!(mark_notification_read))
        .routes(routes!(archive_notification))
        .routes(routes!(delete_notification))
}

/// The caller's notifications, newest first, with its unread and unseen counts.
///
/// Notifications not archived unless `archived=true`; `unread_only=true` keeps the unread ones.
/// Keyset pagination: notifications made while paging do not shift later pages. `unread_count` and
/// `unseen_count` count every notification of the caller that is not archived, whatever the filters,
/// at the moment of the answer.
#[utoipa::path(
    get,
    path = "/notifications",
    tag = "notifications",
    operation_id = "list_notifications",
    security(("bearer" = [])),
    params(ListNotificationsParams),
    responses(
        (status = 200, description = "A page of notifications, newest first, with the caller's counts.", body = NotificationPage),
        (status = 400, description = "A bad parameter value, named in `detail`: `unread_only` or `archived` other than `true` or `false`, a `limit` out of 1..100, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListNotificationsParams>,
) -> Result<Json<NotificationPage>, ApiError> {
    let request = pb::ListNotificationsRequest {
        unread_only: pagination::flag("unread_only", params.unread_only.as_deref())?,
        archived: pagination::flag("archived", params.archived.as_deref())?,
        page: Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?),
    };
    let page = state
        .notification()
        .list_notifications(backend::on_behalf_of(&caller.authorization, request))
        .await
        .map_err(|status| {
            pagination::query_errors_are_bad_requests(status.into(), &["unread_only", "archived", "cursor", "limit"])
        })?
        .into_inner();
    NotificationPage::from_proto(page).map(Json)
}

/// The caller opened the bell: every notification it has now counts as seen (`unseen_count` drops to
/// 0); their `read_at` is left as it is.
#[utoipa::path(
    post,
    path = "/notifications/seen",
    tag = "notifications",
    operation_id = "mark_notifications_seen",
    security(("bearer" = [])),
    responses((status = 204, description = "Every notification of the caller is seen."))
)]
#[tracing::instrument(skip_all)]
async fn mark_notifications_seen(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::MarkSeenRequest {});
    state.notification().mark_seen(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks every notification of the caller read (and seen).
#[utoipa::path(
    post,
    path = "/notifications/read-all",
    tag = "notifications",
    operation_id = "mark_all_notifications_read",
    security(("bearer" = [])),
    responses((status = 204, description = "Every notification of the caller is read."))
)]
#[tracing::instrument(skip_all)]
async fn mark_all_notifications_read(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::MarkAllReadRequest {});
    state.notification().mark_all_read(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks one of the caller's notifications read; reading a read notification changes nothing.
#[utoipa::path(
    post,
    path = "/notifications/{id}/read",
    tag = "notifications",
    operation_id = "mark_notification_read",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The notification id.")),
    responses(
        (status = 204, description = "The notification is read."),
        (status = 404, description = "No notification of the caller has this id.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn mark_notification_read(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = notification_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::MarkReadRequest { id });
    state.notification().mark_read(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Archives one of the caller's notifications: it leaves the list (see `archived=true`), and counts
/// as read and seen.
#[utoipa::path(
    post,
    path = "/notifications/{id}/archive",
    tag = "notifications",
    operation_id = "archive_notification",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The notification id.")),
    responses(
        (status = 204, description = "The notification is archived."),
        (status = 404, description = "No notification of the caller has this id.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn archive_notification(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = notification_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::ArchiveNotificationRequest { id });
    state.notification().archive_notification(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one of the caller's notifications for good.
#[utoipa::path(
    delete,
    path = "/notifications/{id}",
    tag = "notifications",
    operation_id = "delete_notification",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The notification id.")),
    responses(
        (status = 204, description = "The notification is gone."),
        (status = 404, description = "No notification of the caller has this id.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_notification(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = notification_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::DeleteNotificationRequest { id });
    state.notification().delete_notification(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's delivery preferences: per channel (`in_app`, `email`, `push`), every kind, `true`
/// unless turned off; and how their notification mail goes out (`email_delivery`).
#[utoipa::path(
    get,
    path = "/notifications/preferences",
    tag = "notifications",
    operation_id = "get_notification_preferences",
    security(("bearer" = [])),
    responses((status = 200, description = "Every kind on each channel.", body = NotificationPreferences))
)]
#[tracing::instrument(skip_all)]
async fn get_notification_preferences(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<NotificationPreferences>, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::GetPreferencesRequest {});
    let preferences = state.notification().get_preferences(request).await?.into_inner();
    Ok(Json(NotificationPreferences::from_proto(preferences)?))
}

/// Turns kinds on or off per channel (`in_app`, `email`, `push`), and sets how mail goes out
/// (`email_delivery`: at once, a daily digest at an hour of the caller's time zone, or none); what
/// is left out keeps its setting.
///
/// Each channel names at most 32 kinds, each at most 64 characters. A kind the service does not know
/// is a `422` naming it; so are an unknown mode, an hour past 23 and a time zone the IANA database
/// does not name. `push` is kept even while the caller has no push subscription, or the deployment
/// sends no push messages.
#[utoipa::path(
    put,
    path = "/notifications/preferences",
    tag = "notifications",
    operation_id = "update_notification_preferences",
    security(("bearer" = [])),
    request_body = UpdateNotificationPreferencesBody,
    responses(
        (status = 200, description = "The caller's preferences after the change: every kind on each channel.", body = NotificationPreferences),
        (status = 422, description = "A channel names more than 32 kinds, a kind longer than 64 characters or one that does not exist, or a value that is not a boolean; an email delivery mode other than `immediate`, `daily` or `off`, an hour past 23, or a time zone longer than 64 characters or not in the IANA database; `errors` names each.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_notification_preferences(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<UpdateNotificationPreferencesBody>,
) -> Result<Json<NotificationPreferences>, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, body.into_proto());
    let preferences = state.notification().update_preferences(request).await?.into_inner();
    Ok(Json(NotificationPreferences::from_proto(preferences)?))
}

/// The `{id}` of a notification route; not a UUID means no such notification.
fn notification_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, || ApiError::NotFound("No notification of yours has this id.".to_owned()))
}
