//! `/notifications/push-key` and `/notifications/push-subscriptions`: Web Push for the caller's
//! browsers. A client reads the deployment's VAPID key, subscribes with it in the browser
//! (`PushManager.subscribe`) and posts the subscription as `toJSON()` gives it; the notification
//! service then sends each new notification to every subscription of the caller. A subscription is
//! named by its endpoint, which is what a browser still knows when it unsubscribes, so posting the
//! same endpoint again replaces its keys and removing it takes the endpoint, not our id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordo_proto::notification::v1 as pb;

use super::types::{PushKey, PushSubscription, PushSubscriptionBody, UnsubscribePushParams};
use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::pagination;
use crate::state::AppState;

/// What a push message carries and how it is sent: the contract a service worker is written
/// against, stated in the descriptions of the key and subscribe operations.
macro_rules! push_contract {
    () => {
        r#"## What a push message carries

While `push` is on for a notification's kind (`GET /notifications/preferences`), each new notification of
the caller is sent to every push subscription of the caller through the push service its `endpoint` names
(RFC 8030). The payload is JSON, the in-app notification's fields:
`{"id": "<notification id>", "kind": "task.assigned", "title": "...", "body": "...", "project_id": "<project id>", "task_id": "<task id>" | null, "task_key": "ORDO-42" | null, "created_at": "<RFC 3339>"}`
(the same values as in `GET /notifications`; a long `body` is shortened so that the message fits what push
services take), encrypted for the subscription's `keys` as RFC 8291 defines
(`Content-Encoding: aes128gcm`) and sent with a VAPID signature (RFC 8292) by the key of
`GET /notifications/push-key`. A service worker reads it with `event.data.json()` in its `push` handler.
A subscription the push service answers `404` or `410 Gone` for is removed: the browser must subscribe
again."#
    };
}

/// The application server (VAPID) key a browser subscribes with.
#[utoipa::path(
    get,
    path = "/notifications/push-key",
    tag = "notifications",
    operation_id = "get_push_key",
    description = concat!(
        "Pass `public_key` as `applicationServerKey` to `PushManager.subscribe`, then post the subscription to ",
        "`POST /notifications/push-subscriptions`. The key is the deployment's, the same for every caller.\n\n",
        push_contract!(),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key.", body = PushKey),
        (status = 409, description = "This deployment sends no push messages (no VAPID key is configured).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn get_push_key(State(state): State<AppState>, caller: Caller) -> Result<Json<PushKey>, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::GetPushKeyRequest {});
    let key = state.notification().get_push_key(request).await?.into_inner();
    PushKey::from_proto(key).map(Json)
}

/// Subscribes one of the caller's browsers to push messages.
#[utoipa::path(
    post,
    path = "/notifications/push-subscriptions",
    tag = "notifications",
    operation_id = "subscribe_push",
    description = concat!(
        "The body is the browser's `PushSubscription.toJSON()`, unchanged. Posting an endpoint the caller ",
        "has subscribed already replaces its keys and answers the same subscription (same `id`), so a client ",
        "may post its subscription on every start. No `Idempotency-Key` is taken: the call is an upsert by ",
        "endpoint, so a retry has the same effect as the first request. A caller has at most 10 ",
        "subscriptions.\n\n",
        push_contract!(),
    ),
    security(("bearer" = [])),
    request_body = PushSubscriptionBody,
    responses(
        (status = 200, description = "The subscription, new or with its keys replaced (an upsert by endpoint, so `200` either way and no `Location`: a subscription is named and removed by its endpoint).", body = PushSubscription),
        (status = 409, description = "This deployment sends no push messages, or the caller has 10 subscriptions already (remove one first).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (`errors` names each of `endpoint`, `keys.p256dh`, `keys.auth`): an `endpoint` over 2048 bytes, not an absolute `https` URL, with credentials or a fragment, or at an address the deployment does not send to; a `keys.p256dh` that is not base64url of an uncompressed P-256 point or over 100 bytes; a `keys.auth` that is not base64url of 16 bytes or over 40 bytes; an `expirationTime` that is neither a number nor `null`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn subscribe_push(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PushSubscriptionBody>,
) -> Result<Response, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, body.into_proto());
    let subscription = state
        .notification()
        .subscribe_push(request)
        .await
        .map_err(|status| PushSubscriptionBody::fields_as_sent(status.into()))?
        .into_inner();
    Ok(Json(PushSubscription::from_proto(subscription)?).into_response())
}

/// Removes the caller's push subscription with this endpoint (what a browser knows after
/// `PushSubscription.unsubscribe()`); its messages not yet sent are dropped.
#[utoipa::path(
    delete,
    path = "/notifications/push-subscriptions",
    tag = "notifications",
    operation_id = "unsubscribe_push",
    security(("bearer" = [])),
    params(UnsubscribePushParams),
    responses(
        (status = 204, description = "The subscription is gone."),
        (status = 400, description = "`endpoint` is missing, empty or over 2048 bytes.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no subscription with this endpoint.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn unsubscribe_push(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UnsubscribePushParams>,
) -> Result<StatusCode, ApiError> {
    let endpoint = params.endpoint()?;
    let request = backend::on_behalf_of(&caller.authorization, pb::UnsubscribePushRequest { endpoint });
    state
        .notification()
        .unsubscribe_push(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["endpoint"]))?;
    Ok(StatusCode::NO_CONTENT)
}
