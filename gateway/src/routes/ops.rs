//! Documentation of the operations routes. They are served by `ordo_platform::ops::router` (the same
//! in every process), not by these stubs, whose only purpose is the `#[utoipa::path]` they carry.

use utoipa::openapi::path::Paths;
use utoipa_axum::routes;

/// The documented paths of `/healthz`, `/readyz` and `/metrics`.
pub(crate) fn documentation() -> Paths {
    // One `routes!` per path: a single method router cannot hold two GET handlers.
    let (_, mut paths, _): (_, _, axum::routing::MethodRouter) = routes!(healthz);
    for (_, more, _) in [routes!(readyz), routes!(metrics)] as [(_, Paths, axum::routing::MethodRouter); 2] {
        paths.paths.extend(more.paths);
    }
    paths
}

/// Liveness: `200 {"status": "ok"}` while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "The process runs.", body = serde_json::Value, example = json!({"status": "ok"})))
)]
async fn healthz() {}

/// Readiness: `200` when Redis and every backend service answer, else `503` naming the failing ones
/// (`draining` while the gateway stops: a load balancer stops sending it requests).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Every backend answers.", body = serde_json::Value, example = json!({"status": "ready"})),
        (status = 503, description = "Some backends do not answer, or the gateway is stopping (`draining`); this body is the ops format, not a problem document.",
            body = serde_json::Value, example = json!({"status": "unavailable", "failing": ["identity"]})),
    )
)]
async fn readyz() {}

/// Prometheus metrics (text format), including `ordo_http_requests_total{method,route,status}` and
/// `ordo_http_request_duration_seconds{method,route}`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain"))
)]
async fn metrics() {}
