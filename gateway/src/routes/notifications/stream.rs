//! `GET /notifications/stream`: the caller's new notifications as Server-Sent Events, fed by the
//! notification service's `StreamNotifications`. Each notification is an event `notification` whose
//! `id:` is the notification id, so a browser's `EventSource` resumes after the last one it received
//! (`Last-Event-ID`); count changes are events `counts`. A comment every 15 s keeps proxies and load
//! balancers (an ALB closes an idle connection after 60 s) from cutting the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt as _, stream};
use ordo_proto::notification::v1 as pb;
use pb::stream_notifications_response::Event as Item;

use super::types::{Counts, JobProgress, Notification};
use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The interval of the keep-alive comments.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// How long a client should wait before reconnecting after the stream drops (the `retry:` advice).
const RETRY: Duration = Duration::from_secs(3);

/// The longest `Last-Event-ID` taken (a notification id is 36 characters).
const MAX_LAST_EVENT_ID: usize = 64;

/// The caller's notifications as they arrive (Server-Sent Events).
///
/// `text/event-stream`. The first event only advises `retry: 3000`. Then `event: counts` with
/// `{"unread_count", "unseen_count"}`, sent first and after every change; `event: notification` with
/// a `Notification` as `data` and its id as `id:`, in the order they were stored for the caller, from
/// whichever instance. With `Last-Event-ID` (as `EventSource` sends it on reconnecting) every
/// notification stored after that one comes first, in order, then live ones, with no gap and no
/// duplicate; an id the caller has no notification with starts live. While one of the caller's
/// background jobs (an export, an import) runs, `event: job` tells how far it got, with
/// `{"job_id", "project_id", "kind", "rows_done", "rows_total"}` (`rows_total` `null` until known),
/// after each page or chunk; these are not kept, so a stream opened later does not replay them (the
/// job's end is a `job.ended` notification). A comment (`:`) every 15 s keeps the connection open. At most a few streams per user at once (`429` past it); a client that stops
/// reading is dropped.
#[utoipa::path(
    get,
    path = "/notifications/stream",
    tag = "notifications",
    operation_id = "stream_notifications",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last notification received; the stream resumes after it.")),
    responses(
        (status = 200, description = "The stream: `counts`, `notification` and `job` events.", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A `Last-Event-ID` longer than 64 characters.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller has too many streams open.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn stream_notifications(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        None => String::new(),
        Some(value) => match value.to_str() {
            Ok(id) if id.len() <= MAX_LAST_EVENT_ID => id.to_owned(),
            _ => return Err(ApiError::BadRequest("Last-Event-ID must be a notification id".into())),
        },
    };
    let request = backend::on_behalf_of(&caller.authorization, pb::StreamNotificationsRequest { last_event_id });
    let (items, lease) = state.notification_stream(request).await?;
    let advice = stream::once(async { Ok::<_, Infallible>(Event::default().retry(RETRY)) });
    let events = advice
        .chain(events(items))
        .take_until(state.closing().clone().cancelled_owned())
        // The stream's place on its connection is held as long as the response is: given back
        // when the client goes or the stream ends.
        .map(move |event| {
            let _held = &lease;
            event
        });
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT));
    // `X-Accel-Buffering: no`: a buffering proxy (nginx) would hold events back.
    Ok(([("x-accel-buffering", "no"), ("cache-control", "no-store")], sse).into_response())
}

/// The SSE events of the service's items; the stream ends at the first error (the client reconnects
/// with its `Last-Event-ID` and misses nothing).
fn events(
    items: tonic::Streaming<pb::StreamNotificationsResponse>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    items
        .map(|item| item.ok().and_then(event))
        .take_while(|event| std::future::ready(event.is_some()))
        .filter_map(|event| std::future::ready(event.map(Ok)))
}

/// The SSE event of one item; `None` for what cannot be sent (which ends the stream).
fn event(item: pb::StreamNotificationsResponse) -> Option<Event> {
    match item.event? {
        Item::Notification(notification) => {
            // Parsed, so the `id:` line can hold nothing but the id.
            let id = uuid::Uuid::parse_str(&notification.id).ok()?.to_string();
            let json = Notification::from_proto(notification).ok()?;
            Event::default().event("notification").id(id).json_data(json).ok()
        }
        Item::Counts(counts) => Event::default().event("counts").json_data(Counts::from_proto(&counts)).ok(),
        Item::Job(progress) => Event::default().event("job").json_data(JobProgress::from_proto(progress)).ok(),
    }
}
