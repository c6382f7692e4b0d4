//! The REST API: one router per area, nested under `/api/v1`, plus the route that serves the OpenAPI
//! document. Each area is a folder: its handlers in `mod.rs`, the JSON it reads and answers with in
//! `types.rs`; what every area's JSON shares is in `representation`. Every route goes through
//! `utoipa_axum::routes!`, which registers the handler and its documentation together; the OpenAPI
//! module builds the whole document from that documentation, and nothing here depends on it.

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub(crate) mod attachments;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod comments;
pub(crate) mod jobs;
pub(crate) mod notifications;
pub(crate) mod ops;
pub(crate) mod projects;
pub(crate) mod reports;
pub(crate) mod representation;
pub(crate) mod tasks;
pub(crate) mod uploads;
pub(crate) mod users;
pub(crate) mod webhooks;

/// Where the API is served.
pub(crate) const API_PREFIX: &str = "/api/v1";

/// Every API route with its documentation.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(projects::router())
        .merge(tasks::router())
        .merge(comments::router())
        .merge(attachments::router())
        .merge(audit::router())
        .merge(notifications::router())
        .merge(webhooks::router())
        .merge(reports::router())
        .merge(jobs::router())
        .routes(routes!(openapi_json));
    OpenApiRouter::new().nest(API_PREFIX, v1)
}

/// The serialized OpenAPI document, made once at start.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiJson(pub(crate) Bytes);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "get_openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = serde_json::Value))
)]
async fn openapi_json(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json)
}
