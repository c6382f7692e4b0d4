//! `/projects/{id}/reports`: reports on a project's tasks, answered on request by the task service
//! from the tasks and their status history. Any member of the project may read them; the service
//! answers `NOT_FOUND` for a project the caller may not see. The flow report is JSON, or an SVG
//! chart for a client that prefers `image/svg+xml` (see [`negotiate`]).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Query};
use crate::pagination;
use crate::routes::representation::time_parameter;
use crate::state::AppState;

mod chart;
mod negotiate;
mod types;

use self::negotiate::Representation;
use self::types::{FlowParams, FlowReport};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(flow_report))
}

/// How work flowed through a project (viewers and up): tasks created, completed and open per
/// interval, the time from in progress to done, what is overdue, by assignee and by label.
///
/// Counted from each task's status history, which the service keeps from the release that brought
/// it on; a task older than that counts in the status it had then from its creation (its completion,
/// when done), with no time in progress.
///
/// A report is kept for the next request until the project's tasks change (a change shows at once)
/// or the minute turns: overdue counts, which move with the clock alone, may lag it by up to a
/// minute.
///
/// With `Accept: image/svg+xml` (preferred over `application/json` by its `q`), the same report as an
/// SVG image, 960 × 720, readable without JavaScript: a cumulative flow diagram (the tasks in each
/// status at each interval's end, stacked, `done` at the bottom) above the tasks created and
/// completed per interval as pairs of bars, each with its legend. JSON otherwise, also when the
/// `Accept` header admits neither (as HTTP allows); both answers carry `Vary: Accept`.
#[utoipa::path(
    get,
    path = "/projects/{id}/reports/flow",
    tag = "reports",
    operation_id = "get_flow_report",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The project id."),
        FlowParams,
    ),
    responses(
        (status = 200, description = "The report over whole intervals: `from` rounded down to its interval's start, `to` up to its end.", content(
            (FlowReport = "application/json"),
            (String = "image/svg+xml"),
        )),
        (status = 400, description = "A bad parameter value, named in `detail`: an unparseable time or an unknown `interval`.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project holds more than 50,000 tasks or 250,000 status changes: too many for a report on request.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` is not after `from` (`errors` names `to`), or the range holds more than 400 intervals (`errors` names `from`).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn flow_report(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<FlowParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let representation = negotiate::choose(headers.get_all(header::ACCEPT));
    let project_id = crate::extract::uuid_path(id, no_project)?;
    let request = pb_request(project_id, params)?;
    let report = state
        .report()
        .get_flow_report(backend::on_behalf_of(&caller.authorization, request))
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["interval"]))?
        .into_inner();
    let report = FlowReport::from_proto(report.report)?;
    let vary = [(header::VARY, HeaderValue::from_static("accept"))];
    Ok(match representation {
        Representation::Json => (vary, Json(report)).into_response(),
        Representation::Svg => {
            let svg = chart::render(&report)?;
            (vary, [(header::CONTENT_TYPE, HeaderValue::from_static(negotiate::SVG))], svg).into_response()
        }
    })
}

/// The service's request: the parameters checked here, `400` naming the first bad one.
fn pb_request(project_id: String, params: FlowParams) -> Result<ordo_proto::task::v1::GetFlowReportRequest, ApiError> {
    Ok(ordo_proto::task::v1::GetFlowReportRequest {
        project_id,
        from: params.from.as_deref().map(|t| time_parameter("from", t)).transpose()?,
        to: params.to.as_deref().map(|t| time_parameter("to", t)).transpose()?,
        interval: match params.interval.as_deref() {
            None => String::new(),
            Some(name @ ("day" | "week" | "month")) => name.to_owned(),
            Some(_) => return Err(ApiError::BadRequest("interval must be one of day, week, month.".to_owned())),
        },
    })
}

fn no_project() -> ApiError {
    ApiError::NotFound("No project has this id.".to_owned())
}
