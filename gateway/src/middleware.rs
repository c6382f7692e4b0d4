//! The layers around every route: the request id (echoed or generated), the request span (child of
//! the caller's W3C `traceparent`, carrying the request id, so every log line of a request can be
//! found and the trace continues into the services), RED metrics per matched route, deadlines on the
//! body and the request, load shedding, panics turned into a generic `500` problem, and
//! `Connection: close` on every response while the gateway drains.

use std::any::Any;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::error::ApiError;
use crate::state::AppState;

/// Requests whose body did not arrive within the body timeout.
pub(crate) const BODY_TIMEOUTS_TOTAL: &str = "ordo_http_body_timeouts_total";
/// Requests answered 504 because the whole request took longer than its timeout.
pub(crate) const REQUEST_TIMEOUTS_TOTAL: &str = "ordo_http_request_timeouts_total";
/// Requests refused with 503 because `--max-in-flight` were already being served.
pub(crate) const SHED_TOTAL: &str = "ordo_http_shed_total";

/// The request header carrying the request id.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Route label of requests that matched no route (a raw path would explode the label set).
const UNMATCHED_ROUTE: &str = "unmatched";

/// The span of one HTTP request.
pub(crate) fn request_span(request: &Request) -> tracing::Span {
    let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        http.method = %request.method(),
        url.path = %request.uri().path(),
        http.route = Empty,
        request_id,
        trace_id = Empty,
        user_id = Empty,
    );
    // With the span filtered out (say RUST_LOG=warn) there is no trace to continue: skip the work.
    if !span.is_disabled() {
        ordo_platform::telemetry::set_parent_from_http(&span, request.headers());
        if let Some(trace_id) = span.in_scope(ordo_platform::telemetry::current_trace_id) {
            span.record("trace_id", trace_id);
        }
    }
    span
}

/// Runs the request in its span ([`request_span`]), which ends when the response's head is ready:
/// a body that streams for hours (the notification stream) neither holds a span all that time nor
/// shows in traces as an hours-long request. The status and the time to the head are logged at
/// `DEBUG`.
pub(crate) async fn trace_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let span = request_span(&request);
    let response = next.run(request).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), latency_ms, "finished processing request"));
    response
}

/// Records `ordo_http_requests_total{method,route,status}` and
/// `ordo_http_request_duration_seconds{method,route}`, the route being the matched template
/// (`/api/v1/users/{id}`), never the raw path.
pub(crate) async fn record_red_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    if let Some(route) = &route {
        tracing::Span::current().record("http.route", route.as_str());
    }
    let response = next.run(request).await;
    let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!("ordo_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("ordo_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a static label (any other method is `other`, to bound the label set).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The response to a handler that panicked: a generic `500`; the panic message is logged only.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// Reads a request's whole body before it may take a load-shedding slot, within
/// `--body-read-timeout-ms` (`408` past it; `413` over the JSON limit), then gives the rest of the
/// request `--request-timeout-ms` (`504` past it). So a client that dribbles its body holds no slot,
/// and nothing waits forever. Uploads (`multipart/form-data`) stream instead: their own rule ends a
/// transfer that stalls.
pub(crate) async fn bound_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_multipart(request.headers()) {
        return next.run(request).await;
    }
    let limits = state.client_limits();
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read_body(&parts.headers, body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return error.into_response(),
        Err(_) => {
            metrics::counter!(BODY_TIMEOUTS_TOTAL).increment(1);
            return ApiError::RequestTimeout.into_response();
        }
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!(REQUEST_TIMEOUTS_TOTAL).increment(1);
            ApiError::GatewayTimeout.into_response()
        }
    }
}

/// The whole body, refused (`413`) once it is over the JSON limit, declared or read.
async fn read_body(headers: &axum::http::HeaderMap, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    use futures::StreamExt as _;
    let limit = crate::extract::JSON_BODY_LIMIT;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest("The request body could not be read.".to_owned()))?;
        if collected.len().saturating_add(chunk.len()) > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.into())
}

/// `multipart/form-data`: an upload, streamed by its handler rather than read whole here.
fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// While the gateway drains, asks the client to close its connection after this response
/// (`Connection: close`): it opens a new one for its next request, which reaches another instance (or
/// this one, until its listener closes) instead of being sent on a connection the drain is closing.
pub(crate) async fn close_connections_when_draining(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if state.is_draining() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Answers `503` with `Retry-After` at once when the gateway already serves its maximum of API
/// requests: under overload, a fast refusal the client can retry beats a queue where every request
/// times out.
pub(crate) async fn shed_load(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.in_flight().try_acquire() {
        // The permit lives until the handler has produced its response.
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            metrics::counter!(SHED_TOTAL).increment(1);
            ApiError::Unavailable("the gateway is at capacity".to_owned()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use tower::ServiceExt as _;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt as _};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;

    #[test]
    fn the_callers_traceparent_becomes_the_parent_and_travels_on_to_the_services() {
        // Arrange: telemetry as in production (nextest runs each test in its own process, so the
        // global subscriber is this test's).
        let _telemetry = ordo_platform::telemetry::init("gateway-test", ordo_platform::LogFormat::Json);
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let request = Request::builder()
            .uri("/api/v1/users/me")
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .header(REQUEST_ID, "req-1")
            .body(Body::empty())
            .unwrap();

        // Act
        let span = request_span(&request);
        let outgoing = span.in_scope(|| ordo_platform::grpc::propagate_trace(tonic::Request::new(())).unwrap());

        // Assert
        let traceparent = outgoing.metadata().get("traceparent").expect("traceparent propagated");
        let traceparent = traceparent.to_str().unwrap();
        assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
        assert!(!traceparent.contains("00f067aa0ba902b7"), "the gateway's own span is the parent: {traceparent}");
    }

    /// Counts the closed `http.request` spans.
    struct ClosedRequestSpans(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ClosedRequestSpans {
        fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
            if ctx.span(&id).is_some_and(|span| span.name() == "http.request") {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[tokio::test]
    async fn the_request_span_ends_with_the_response_head_while_the_body_still_streams() {
        // Arrange: a route whose body never ends, as the notification stream's.
        let closed = Arc::new(AtomicUsize::new(0));
        let _subscriber =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(ClosedRequestSpans(closed.clone())));
        let app = axum::Router::new()
            .route(
                "/stream",
                axum::routing::get(|| async {
                    Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>())
                }),
            )
            .layer(axum::middleware::from_fn(trace_request));

        // Act
        let response = app.oneshot(Request::get("/stream").body(Body::empty()).unwrap()).await.unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(closed.load(Ordering::SeqCst), 1, "the span closed while the body is still open");
        drop(response);
    }

    #[test]
    fn only_known_methods_become_labels() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
