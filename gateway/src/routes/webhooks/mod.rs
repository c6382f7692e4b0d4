//! `/projects/{id}/webhooks`: a project's outgoing webhooks — endpoints that receive the project's
//! events as signed HTTP `POST`s (Standard Webhooks) — their signing secrets, their delivery log,
//! redelivery and a test ping. The notification service serves them and decides who may: a project's
//! `owner`s and `admin`s; it answers `NOT_FOUND` for a project the caller may not see and for a
//! webhook of another project (a `404` here) and `PERMISSION_DENIED` for a weaker member (a `403`).
//! The gateway checks the shape of requests and bounds them before they are forwarded, makes the
//! creating `POST` idempotent per caller, and turns versions into `ETag`s.

use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::notification::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{IfMatch, Json, JsonWithBytes, Query};
use crate::idempotency::{self, MaybeIdempotencyKey, RequestSignature, Scope};
use crate::pagination;
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::state::AppState;

mod types;

use self::types::{
    CreateWebhookBody, UpdateWebhookBody, Webhook, WebhookAttemptPage, WebhookDelivery, WebhookPage, WebhookWithSecret,
};

/// How deliveries are made, signed, retried and turned off: the contract a receiver is written
/// against, stated in the descriptions of the create, list and get operations (and nowhere else).
macro_rules! delivery_contract {
    () => {
        r#"## How deliveries work

**Body.** Each event of the project whose type matches one of the webhook's `event_types` is `POST`ed to its
`url` as JSON (`Content-Type: application/json`):
`{"id": "<event id>", "type": "task.created", "timestamp": "<when it happened, RFC 3339>", "project_id": "<project id>", "actor_id": "<user id>" | null, "data": {...}}`,
where `data` is the event's payload with `snake_case` field names (a ping's is `{"webhook_id": "<webhook id>"}`).

**Signature** ([Standard Webhooks](https://www.standardwebhooks.com/)). Every request carries
`webhook-id` (the event id: the same on every retry and redelivery of the event, so a receiver can drop
repeats), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`:
`v1,<base64 of HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the
base64-decoded part of the secret after `whsec_`. For 24 hours after a rotation a second signature, by the
previous secret, follows the first, separated by a space: accept the request when any of them matches.

**Success and retries.** A `2xx` answer within 15 seconds is success. Anything else — `3xx` included
(redirects are not followed), a timeout, no connection — is tried again about 5 s, 5 min, 30 min, 2 h, 5 h,
10 h and 10 h after the attempt before (each wait ±20 % at random; 8 attempts in all). A `Retry-After`
longer than the wait is honoured up to 10 h; after a `429` or a timeout the next attempt waits at least
60 s. Every attempt is in the delivery log (`GET .../deliveries`).

**Turning off.** A `410 Gone` answer, or 5 days of failures without one success, turns the webhook off:
`active` becomes `false` and `disabled_reason` `gone` or `failing`, and the project's `owner`s and
`admin`s get a `project.webhook_disabled` notification; its deliveries still waiting fail
(`POST .../redeliver` sends one again once the webhook is back on). `PATCH` with `"active": true` turns
it back on and clears the reason.

**Order.** The events of one task reach a webhook in the order they happened: a later event waits
while an earlier one is still within its first 3 attempts (about 35 minutes), then goes ahead.

**Event types** are exact names — `task.created`, `task.status_changed`, `task.comment_added`,
`project.member_added`, ... — prefixes such as `task.*`, or `*` for every event. A test ping
(`POST .../ping`) has the type `webhook.ping` and is sent whatever the event types.

**Addresses.** A `url` whose host is, or resolves to, a private, loopback, link-local or other
non-public address is refused (`422` on `url`) unless the deployment allows private or loopback ones
(link-local ones never); the address a name resolves to is checked again at every attempt."#
    };
}

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(redeliver_webhook))
        .routes(routes!(ping_webhook))
}

/// Makes a webhook of a project (project `owner`s and `admin`s), answered with its signing secret.
#[utoipa::path(
    post,
    path = "/projects/{id}/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    description = concat!(
        "The answer shows the signing `secret`; only it and the answer of `POST .../rotate-secret` ever do, so store it now. ",
        "A project has at most 20 webhooks.\n\n",
        "Send an `Idempotency-Key` to make retries safe; keys are the caller's own.\n\n",
        delivery_contract!(),
    ),
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key and body within 24 h replays the first response."),
    ),
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "The new webhook with its signing secret (`Cache-Control: no-store`).", body = WebhookWithSecret, headers(
            ("Location" = String, description = "`/api/v1/projects/{id}/webhooks/{webhook_id}`"),
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Cache-Control" = String, description = "`no-store`: the answer holds a secret."),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project has 20 webhooks already, or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each bad field): a `url` that is not an absolute `http` or `https` URL, carries credentials or a fragment, or points at an address the deployment does not send to; an event type that is not one; a description or `rate_limit` out of bounds. Or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<CreateWebhookBody>,
) -> Result<Response, ApiError> {
    let project_id = project_id(id)?;
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    let response = idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move { create(&state, &caller, project_id, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await?;
    // Set on the first answer and on every replay alike: the replay holds the secret too.
    Ok(not_stored(response))
}

/// Makes the webhook; every outcome, failures included, is a response to store for replay.
async fn create(
    state: &AppState,
    caller: &Caller,
    project_id: String,
    body: CreateWebhookBody,
) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, body.into_proto(project_id.clone()));
    let created = state.webhook().create_webhook(request).await?.into_inner();
    let created = WebhookWithSecret::from_proto(created.webhook, created.secret)?;
    let location = location(format!("{API_PREFIX}/projects/{project_id}/webhooks/{}", created.webhook.id))?;
    let etag = created.etag();
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, etag)], Json(created)).into_response())
}

/// Lists a project's webhooks (project `owner`s and `admin`s), oldest first.
#[utoipa::path(
    get,
    path = "/projects/{id}/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    description = concat!(
        "Keyset pagination: stable under inserts. Signing secrets are never shown here.\n\n",
        delivery_contract!(),
    ),
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The project id."), pagination::PageParams),
    responses(
        (status = 200, description = "A page of webhooks, oldest first.", body = WebhookPage),
        (status = 400, description = "A bad parameter value, named in `detail`: a `limit` out of 1..100, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<pagination::PageParams>,
) -> Result<Json<WebhookPage>, ApiError> {
    let project_id = project_id(id)?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = backend::on_behalf_of(&caller.authorization, pb::ListWebhooksRequest { project_id, page });
    let page = state
        .webhook()
        .list_webhooks(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit"]))?
        .into_inner();
    WebhookPage::from_proto(page).map(Json)
}

/// One webhook of a project (project `owner`s and `admin`s).
#[utoipa::path(
    get,
    path = "/projects/{id}/webhooks/{webhook_id}",
    tag = "webhooks",
    operation_id = "get_webhook",
    description = concat!(
        "Its signing secret is never shown here (rotate it for a new one).\n\n",
        delivery_contract!(),
    ),
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
    ),
    responses(
        (status = 200, description = "The webhook.", body = Webhook,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetWebhookRequest { project_id, webhook_id });
    let webhook = Webhook::from_proto(Some(state.webhook().get_webhook(request).await?.into_inner()))?;
    Ok(webhook_response(webhook))
}

/// Changes a webhook (project `owner`s and `admin`s): its URL, event types, description, whether it
/// is active, and its rate limit.
///
/// Turning on (`"active": true`) a webhook the service turned off clears `disabled_reason`.
#[utoipa::path(
    patch,
    path = "/projects/{id}/webhooks/{webhook_id}",
    tag = "webhooks",
    operation_id = "update_webhook",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): apply only if the webhook is still at that version."),
    ),
    request_body(content = UpdateWebhookBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed webhook.", body = Webhook,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each bad field), as when making a webhook.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    if_match: IfMatch,
    Json(body): Json<UpdateWebhookBody>,
) -> Result<Response, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let (state, caller, body) = (&state, &caller, &body);
    let webhook = if_match
        .each_version(|expected_version| {
            let request =
                backend::on_behalf_of(&caller.authorization, body.to_proto(&project_id, &webhook_id, expected_version));
            async move { Ok::<_, ApiError>(state.webhook().update_webhook(request).await?.into_inner()) }
        })
        .await?;
    Ok(webhook_response(Webhook::from_proto(Some(webhook))?))
}

/// Deletes a webhook (project `owner`s and `admin`s) with its deliveries still waiting and its
/// delivery log; nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/projects/{id}/webhooks/{webhook_id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` from `ETag`, or a comma-separated list of them (any current one matches; weak tags `W/\"..\"` never match, `412`): delete only if the webhook is still at that version."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version than the current one.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let (state, caller) = (&state, &caller);
    if_match
        .each_version(|expected_version| {
            let request = backend::on_behalf_of(
                &caller.authorization,
                pb::DeleteWebhookRequest {
                    project_id: project_id.clone(),
                    webhook_id: webhook_id.clone(),
                    expected_version,
                },
            );
            async move { Ok::<_, ApiError>(state.webhook().delete_webhook(request).await?) }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a webhook a new signing secret (project `owner`s and `admin`s), answered with it.
///
/// The secret it replaces keeps signing beside the new one for 24 hours (a second signature in
/// `webhook-signature`), so a receiver can switch to the new one without missing a delivery.
#[utoipa::path(
    post,
    path = "/projects/{id}/webhooks/{webhook_id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
    ),
    responses(
        (status = 200, description = "The webhook with its new signing secret, shown only here (`Cache-Control: no-store`).", body = WebhookWithSecret, headers(
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Cache-Control" = String, description = "`no-store`: the answer holds a secret."),
        )),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let request =
        backend::on_behalf_of(&caller.authorization, pb::RotateWebhookSecretRequest { project_id, webhook_id });
    let rotated = state.webhook().rotate_webhook_secret(request).await?.into_inner();
    let rotated = WebhookWithSecret::from_proto(rotated.webhook, rotated.secret)?;
    let etag = rotated.etag();
    Ok(not_stored(([(header::ETAG, etag)], Json(rotated)).into_response()))
}

/// A webhook's delivery log (project `owner`s and `admin`s): every attempt, newest first.
///
/// Keyset pagination: attempts made while paging do not shift later pages.
#[utoipa::path(
    get,
    path = "/projects/{id}/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
        pagination::PageParams,
    ),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = WebhookAttemptPage),
        (status = 400, description = "A bad parameter value, named in `detail`: a `limit` out of 1..100, or a cursor we did not issue.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
    Query(params): Query<pagination::PageParams>,
) -> Result<Json<WebhookAttemptPage>, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request =
        backend::on_behalf_of(&caller.authorization, pb::ListWebhookDeliveriesRequest { project_id, webhook_id, page });
    let page = state
        .webhook()
        .list_webhook_deliveries(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit"]))?
        .into_inner();
    WebhookAttemptPage::from_proto(page).map(Json)
}

/// Sends a delivery's event to the webhook again (project `owner`s and `admin`s), as a new delivery
/// with the same `webhook-id`, whatever became of the first.
#[utoipa::path(
    post,
    path = "/projects/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliver_webhook",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
        ("delivery_id" = String, Path, format = Uuid, description = "The delivery to send again: a `delivery_id` of the delivery log."),
    ),
    responses(
        (status = 202, description = "The new delivery, queued: its attempts show in the delivery log.", body = WebhookDelivery),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, webhook of it or delivery of the webhook, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The webhook is not active: turn it on first.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn redeliver_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((project_id, webhook_id, delivery_id))) = ids else { return Err(no_project()) };
    let (project_id, webhook_id) = checked_webhook_ids(project_id, webhook_id)?;
    if uuid::Uuid::try_parse(&delivery_id).is_err() {
        return Err(ApiError::NotFound("The webhook has no delivery with this id.".to_owned()));
    }
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::RedeliverWebhookRequest { project_id, webhook_id, delivery_id },
    );
    let delivery = WebhookDelivery::from_proto(state.webhook().redeliver_webhook(request).await?.into_inner())?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// Sends a `webhook.ping` event to a webhook (project `owner`s and `admin`s), to try the receiver.
///
/// The ping goes whatever the webhook's event types; its body's `data` is
/// `{"webhook_id": "<webhook id>"}`, and it is signed, retried and logged like any delivery.
#[utoipa::path(
    post,
    path = "/projects/{id}/webhooks/{webhook_id}/ping",
    tag = "webhooks",
    operation_id = "ping_webhook",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        ("webhook_id" = String, Path, format = Uuid, description = "The webhook id."),
    ),
    responses(
        (status = 202, description = "The ping's delivery, queued: its attempts show in the delivery log.", body = WebhookDelivery),
        (status = 403, description = "The caller is a `member` or `viewer` of the project (or a global admin who is no `owner` or `admin` of it).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project or webhook of it, or the caller is not a member of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The webhook is not active: turn it on first.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn ping_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (project_id, webhook_id) = webhook_ids(ids)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::PingWebhookRequest { project_id, webhook_id });
    let delivery = WebhookDelivery::from_proto(state.webhook().ping_webhook(request).await?.into_inner())?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// The `{id}` of a project's webhooks route; not a UUID means no such project.
fn project_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, no_project)
}

/// The `{id}` and `{webhook_id}` of a webhook route; either not a UUID means no such webhook.
fn webhook_ids(ids: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    let Ok(Path((project_id, webhook_id))) = ids else { return Err(no_project()) };
    checked_webhook_ids(project_id, webhook_id)
}

/// `project_id` and `webhook_id` when both are UUIDs; else the `404` of the one that is not.
fn checked_webhook_ids(project_id: String, webhook_id: String) -> Result<(String, String), ApiError> {
    if uuid::Uuid::try_parse(&project_id).is_err() {
        return Err(no_project());
    }
    if uuid::Uuid::try_parse(&webhook_id).is_err() {
        return Err(ApiError::NotFound("The project has no webhook with this id.".to_owned()));
    }
    Ok((project_id, webhook_id))
}

/// The `404` of a project that does not exist or that the caller may not see.
fn no_project() -> ApiError {
    ApiError::NotFound("No project has this id.".to_owned())
}

/// A webhook with its `ETag`.
fn webhook_response(webhook: Webhook) -> Response {
    ([(header::ETAG, webhook.etag())], Json(webhook)).into_response()
}

/// `response` marked for no cache to keep (RFC 9111 §5.2.2.5): it holds a signing secret.
fn not_stored(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;

    use super::*;

    fn path(project: &str, webhook: &str) -> Result<Path<(String, String)>, PathRejection> {
        Ok(Path((project.to_owned(), webhook.to_owned())))
    }

    #[test]
    fn ids_that_are_not_uuids_are_404_naming_what_is_missing() {
        let project = "0190b6a4-7c1e-7000-8000-0000000000a1";
        let webhook = "0190b6a4-7c1e-7000-8000-0000000000c1";

        assert_eq!(webhook_ids(path(project, webhook)).unwrap(), (project.to_owned(), webhook.to_owned()));
        let no_project = webhook_ids(path("ORDO", webhook)).unwrap_err();
        assert!(matches!(no_project, ApiError::NotFound(ref detail) if detail.contains("project")), "{no_project:?}");
        let no_webhook = webhook_ids(path(project, "1")).unwrap_err();
        assert!(matches!(no_webhook, ApiError::NotFound(ref detail) if detail.contains("webhook")), "{no_webhook:?}");
        assert_eq!(no_webhook.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn an_answer_with_a_secret_is_not_stored_by_caches() {
        let response = not_stored(StatusCode::OK.into_response());
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
