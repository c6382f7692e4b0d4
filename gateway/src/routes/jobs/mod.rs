//! Background jobs: `POST /projects/{id}/exports` asks for an export of a project's tasks, which the
//! task service runs after answering (`202`), and `POST /projects/{id}/imports` for an import of a
//! file of tasks (`imports`); `GET /jobs/{id}` follows a job (progress, then a download URL of an
//! export's file) and `DELETE /jobs/{id}` cancels it. Any member of the project, viewers too, may
//! export it; members and up may import into it. Only the requester sees a job (anyone else gets
//! `404`, as for a job that does not exist).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::task::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::Json;
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::routes::tasks::filter_request;
use crate::state::AppState;

mod imports;
mod types;

use self::types::{CreateExportBody, Job};

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_export))
        .routes(routes!(imports::create_import))
        .routes(routes!(get_job, cancel_job))
}

/// Asks for an export of the project's tasks that `filter` keeps, as CSV or JSON (viewers and up).
///
/// Answered at once with the job, `queued`; the task service writes the file in the background, a
/// page of tasks at a time, straight into object storage. Follow the job at its `Location`
/// (`GET /jobs/{id}`): `progress` while it runs, then `result.url`, a short-lived download link. A job
/// whose service instance stops mid-run is started again by another (`attempts` counts the starts);
/// its file is always whole, every task once. Files are kept for a week (`result.expires_at`). A user
/// may have 5 jobs queued or running at once.
#[utoipa::path(
    post,
    path = "/projects/{id}/exports",
    tag = "jobs",
    operation_id = "create_export",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The project id.")),
    request_body = CreateExportBody,
    responses(
        (status = 202, description = "The job, queued.", body = Job, headers(
            ("Location" = String, description = "`/api/v1/jobs/{id}`"),
        )),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown `format`, or a bad value in `filter` (`errors` names it, as `filter` or `filter.<parameter>`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller has 5 jobs queued or running already; ask again once one has ended (`Retry-After`).", body = Problem, content_type = "application/problem+json", headers(
            ("Retry-After" = String, description = "Seconds to wait."),
        )),
    )
)]
#[tracing::instrument(skip_all)]
async fn create_export(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Json(body): Json<CreateExportBody>,
) -> Result<Response, ApiError> {
    let project_id = crate::extract::uuid_path(id, no_project)?;
    let filter =
        filter_request(&caller, project_id.clone(), body.filter.unwrap_or_default()).map_err(|error| match error {
            ApiError::BadRequest(detail) => {
                ApiError::Validation { errors: vec![FieldError::new("filter", detail.clone())], detail }
            }
            other => other,
        })?;
    let include = body.include.unwrap_or_default();
    if include.len() > 10 {
        return Err(ApiError::invalid_field("include", "names at most 10 items"));
    }
    let request = pb::CreateExportRequest {
        project_id,
        format: body.format.to_proto() as i32,
        filter: Some(filter),
        include: include.iter().map(|item| item.as_str().to_owned()).collect(),
    };
    let job = state
        .job()
        .create_export(backend::on_behalf_of(&caller.authorization, request))
        .await
        .map_err(|status| in_filter(status.into()))?
        .into_inner()
        .job;
    let job = Job::from_proto(job)?;
    let location = location(format!("{API_PREFIX}/jobs/{}", job.id))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job)).into_response())
}

/// One of the caller's jobs: its state and progress, and once it is `done`, its file.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    tag = "jobs",
    operation_id = "get_job",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The job id.")),
    responses(
        (status = 200, description = "The job.", body = Job),
        (status = 404, description = "No such job, or another user's, or one of a project the caller is no longer a member of.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let id = crate::extract::uuid_path(id, no_job)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetJobRequest { id });
    Ok(Json(Job::from_proto(state.job().get_job(request).await?.into_inner().job)?))
}

/// Cancels one of the caller's jobs that has not ended; the job as it is after (`cancelled`, or the
/// state it ended in first). A running export stops at its next page and leaves no file.
#[utoipa::path(
    delete,
    path = "/jobs/{id}",
    tag = "jobs",
    operation_id = "cancel_job",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The job id.")),
    responses(
        (status = 200, description = "The job after the cancellation.", body = Job),
        (status = 404, description = "No such job, or another user's, or one of a project the caller is no longer a member of.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Job>, ApiError> {
    let id = crate::extract::uuid_path(id, no_job)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::CancelJobRequest { id });
    Ok(Json(Job::from_proto(state.job().cancel_job(request).await?.into_inner().job)?))
}

/// The service names the list's own fields; in the body they sit under `filter`.
fn in_filter(error: ApiError) -> ApiError {
    match error {
        ApiError::Validation { detail, errors } => ApiError::Validation {
            detail,
            errors: errors
                .into_iter()
                .map(
                    |e| if e.field == "format" { e } else { FieldError::new(format!("filter.{}", e.field), e.message) },
                )
                .collect(),
        },
        other => other,
    }
}

fn no_project() -> ApiError {
    ApiError::NotFound("No project has this id.".to_owned())
}

fn no_job() -> ApiError {
    ApiError::NotFound("No job has this id.".to_owned())
}
