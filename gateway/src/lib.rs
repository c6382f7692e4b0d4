//! Ordo's REST gateway: the public `/api/v1` over the services' gRPC APIs. It checks the shape of
//! requests (leaving the rules to the services), authenticates callers (JWT signature locally, session
//! in Redis), makes creating `POST`s idempotent, maps every error to an RFC 9457 problem document,
//! serves the OpenAPI document generated from its handlers, and `/healthz`, `/readyz` and `/metrics`
//! on the same port. It keeps no state of its own: any number of instances can run side by side.

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

mod access_keys;
mod auth;
mod backend;
mod config;
mod connections;
pub mod error;
mod extract;
mod idempotency;
mod live_channels;
mod middleware;
mod openapi;
mod pagination;
mod rate_limit;
mod routes;
mod state;

pub use config::{ClientLimits, Config, RateLimitArgs};
pub use state::AppState;

/// The whole HTTP application: the API, the OpenAPI document, the operations routes, and the layers
/// around them.
pub fn app(state: AppState) -> Router {
    let (api, document) = routes::api().split_for_parts();
    let document = openapi::complete(document, routes::ops::documentation());
    let json = document.to_json().unwrap_or_else(|error| {
        tracing::error!(%error, "could not serialize the OpenAPI document");
        "{}".to_owned()
    });

    // `Router::layer` wraps each route (and the fallbacks); the last layer added runs first. So a
    // request meets, in order: the request id (set if missing), the span (which records it), the
    // copy of the id onto the response, the panic guard, the RED metrics (which see the matched
    // route), the body limit, and the handler.
    api.with_state(state.clone())
        // Only the API is rate-limited and shed; the operations routes must answer whatever the load.
        // A request is shed before it costs a rate-limit check.
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::shed_load))
        // Before the shedding: a body is read, within its deadline, before it may hold a slot.
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::bound_request))
        .merge(ordo_platform::ops::router(state.readiness()))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(Extension(routes::OpenApiJson(Bytes::from(json))))
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(middleware::record_red_metrics))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        // 5xx are logged with their cause where they happen (`ApiError`).
        .layer(axum::middleware::from_fn(middleware::trace_request))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn_with_state(state, middleware::close_connections_when_draining))
}

/// The OpenAPI document of the whole application, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, document) = routes::api().split_for_parts();
    openapi::complete(document, routes::ops::documentation())
}

/// Exports the counters of refusals and failures at zero from the start: an alert or a rate on them
/// then sees a zero rather than nothing until the first one happens.
fn export_failure_counters() {
    for name in [
        middleware::SHED_TOTAL,
        middleware::REQUEST_TIMEOUTS_TOTAL,
        middleware::BODY_TIMEOUTS_TOTAL,
        connections::CONNECTIONS_REFUSED_TOTAL,
        rate_limit::RATE_LIMIT_UNAVAILABLE_TOTAL,
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then drains: the lame-duck period
/// (`--drain-grace-ms`), then no new connection and the requests in flight finish.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    export_failure_counters();
    let state = AppState::connect(&config).await?;
    let address = listener.local_addr().context("listener address")?;
    tracing::info!(%address, identity = %config.identity_url, project = %config.project_url, task = %config.task_url, audit = %config.audit_url, notification = %config.notification_url, workers = config.runtime.worker_threads(), "gateway listening");
    // The keys are fetched in the background from the start, so the first requests find them held and
    // the next key of a rotation is held before it signs.
    let (keys, stopping) = (state.clone(), shutdown.clone());
    tokio::spawn(async move { keys.keys().refresh(stopping).await });
    // The drain: streams end at once (they never end on their own; their clients reconnect), and for
    // the grace period the gateway answers as a lame duck (`/readyz` 503, `Connection: close`) before
    // its listener closes and the requests in flight finish.
    let stop_accepting = CancellationToken::new();
    let (closing, stopping, stop, grace) =
        (state.clone(), shutdown.clone(), stop_accepting.clone(), config.drain_grace);
    tokio::spawn(async move {
        stopping.cancelled().await;
        closing.close();
        tracing::info!(
            grace_ms = grace.as_millis(),
            "draining: readiness fails and connections close after their answer"
        );
        tokio::time::sleep(grace).await;
        stop.cancel();
    });
    connections::serve(listener, app(state), config.client_limits, stop_accepting).await;
    tracing::info!("gateway stopped");
    Ok(())
}
