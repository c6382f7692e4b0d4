//! `POST /projects/{id}/imports`: a file of tasks in an export's format, sent as
//! `multipart/form-data`, imported by a job of the task service (or, as a dry run, judged and
//! answered at once).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::task::v1 as pb;
use pb::create_import_request::Part;

use super::no_project;
use super::types::{ExportFormat, ImportAnswer, ImportForm, ImportReport, Job};
use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::Json;
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::routes::uploads;
use crate::state::AppState;

/// The largest file an import reads, in bytes (the task service's limit).
pub(crate) const MAX_IMPORT_BYTES: u64 = 8 * 1024 * 1024;
/// The longest value of `format` and `dry_run`.
const MAX_OPTION_BYTES: usize = 16;
/// The longest `status_map`.
const MAX_STATUS_MAP_BYTES: usize = 8 * 1024;

/// Imports the tasks of a file into the project (members and up), or answers what it would import.
///
/// The body is `multipart/form-data` with a part `file`, at most 8 MiB and 10,000 tasks: a CSV
/// (`text/csv`, or a name ending in `.csv`) or JSON (`application/json`, or `.json`) file as Ordo's
/// exports write it, or a Trello board's JSON export (one object with `lists` and `cards`: each open
/// card a task, its list its status, its labels and dates kept), or Jira's CSV export of issues
/// (told by its `Summary` column: summary, description, status, priority, labels, due date,
/// original estimate, sub-tasks under their parents). A part `format` (`csv` or `json`) overrides
/// what the file's type says. A part `status_map`, a JSON object, maps the file's status names
/// (without case) to Ordo's, such as `{"Waiting for QA": "in_review"}`; names it leaves out are read
/// by the usual names of trackers (`To Do`, `Doing`, `In Review`, `Closed`, `Won't Do`, ...), and
/// then by Jira's status category or, for a Trello list, as `todo`. Trello and Jira accounts are not
/// Ordo's: their tasks come unassigned. A part `dry_run` set to `true` imports nothing and answers
/// the report of what would be imported.
///
/// Each row becomes a task at the end of the board, in the file's order (a subtask after its
/// parent), with its title, description, status, priority, assignees, labels, dates and estimate;
/// numbers, keys, positions, the reporter (the importer) and the times are the new project's. A row
/// that breaks a rule (a missing title, an unknown status, an assignee who is not a member, ...) is
/// left out and listed in the report's `errors`; a row whose parent is not a row of the file that is
/// imported (or would nest too deep, or form a cycle) is imported without one, listed in `warnings`.
///
/// Who may import is decided before the file is read: a viewer (`403`) or someone who is not a
/// member (`404`) is answered at once, whatever the form holds, and the rest of the body is not read.
///
/// Answered with the job, `queued` (`202`), which creates the tasks in the background, a few hundred
/// per transaction: follow it at its `Location`. The same file sent to the same project again, with
/// a `status_map` that reads it alike (none, or the same names without case and the same statuses),
/// answers the job of the first (`200`) instead of importing it twice, unless that job failed or was
/// cancelled; sent with another map, it is imported again as that map reads it. A job stopped mid-run is resumed by another instance of the service where it
/// left off; cancelling one keeps the tasks it created so far. Imported tasks notify no one.
#[utoipa::path(
    post,
    path = "/projects/{id}/imports",
    tag = "jobs",
    operation_id = "create_import",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The project id.")),
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "A dry run's report, or the job of this file sent before (with its `Location`).", body = ImportAnswer),
        (status = 202, description = "The job, queued.", body = Job, headers(
            ("Location" = String, description = "`/api/v1/jobs/{id}`"),
        )),
        (status = 400, description = "The multipart body is malformed or ends early.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is over 8 MiB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `multipart/form-data` with a boundary.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `dry_run` or `status_map`; or, for a caller who may import, a format that is neither CSV nor JSON (`errors` names `format`: give the file the type `text/csv` or `application/json`, a name ending in `.csv` or `.json`, or add a part `format`), or no `file` part or two, or a file that is empty, cannot be read as its format or holds more than 10,000 tasks (`errors` names `file`).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller has 5 jobs queued or running already; ask again once one has ended (`Retry-After`).", body = Problem, content_type = "application/problem+json", headers(
            ("Retry-After" = String, description = "Seconds to wait."),
        )),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn create_import(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let project_id = crate::extract::uuid_path(id, no_project)?;
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or(ApiError::NotMultipart)?;
    // Refuse a declared oversize body before reading a byte of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_IMPORT_BYTES + uploads::MULTIPART_ENVELOPE_BYTES) {
        return Err(ApiError::ImportTooLarge(MAX_IMPORT_BYTES));
    }
    let response = import(&state, &caller, project_id, boundary, body).await?;
    if let Some(preview) = response.preview {
        return Ok(Json(ImportAnswer::Report(ImportReport::from_proto(preview))).into_response());
    }
    let job = Job::from_proto(response.job)?;
    let location = location(format!("{API_PREFIX}/jobs/{}", job.id))?;
    let status = if response.created { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, [(header::LOCATION, location)], Json(ImportAnswer::Job(Box::new(job)))).into_response())
}

/// Streams the import to `CreateImport`: the header first, so the service decides whether the caller
/// may import before the body is read (past the few chunks the stream holds), then the file's chunks
/// as the form delivers them, then the options in its end. When the service answers first, its
/// answer is the outcome and the rest of the body is not read; when the form is bad, the service's
/// refusal of the caller still comes first, and the form's error otherwise.
async fn import(
    state: &AppState,
    caller: &Caller,
    project_id: String,
    boundary: String,
    body: Body,
) -> Result<pb::CreateImportResponse, ApiError> {
    let (mut sender, receiver) = futures::channel::mpsc::channel(uploads::QUEUE_CHUNKS);
    let mut client = state.job_transfers();
    let call = client.create_import(backend::on_behalf_of(&caller.authorization, receiver));
    let pump = async move {
        let header = message(Part::Header(pb::ImportHeader { project_id }));
        if uploads::forward(&mut sender, header).await? {
            pump_form(&mut sender, boundary, body).await?;
        }
        Ok::<_, ApiError>(())
    };
    tokio::pin!(call);
    tokio::pin!(pump);
    let response = tokio::select! {
        response = &mut call => response,
        pumped = &mut pump => match pumped {
            Ok(()) => call.await,
            // The stream ends without its end; the service says whether the caller may import at all.
            Err(form) => return match call.await {
                Err(refused) if REFUSALS.contains(&refused.code()) => Err(refused.into()),
                _ => Err(form),
            },
        },
    };
    Ok(response?.into_inner())
}

/// Codes of a service that refuses the caller (or the project) rather than the file.
const REFUSALS: [tonic::Code; 4] = [
    tonic::Code::Unauthenticated,
    tonic::Code::PermissionDenied,
    tonic::Code::NotFound,
    tonic::Code::FailedPrecondition,
];

/// Reads the form part by part: the file's chunks go to the service as they arrive, the options into
/// the end, sent once the form is whole. `Ok` also when the call has ended already (its outcome says
/// why).
async fn pump_form(
    sender: &mut futures::channel::mpsc::Sender<pb::CreateImportRequest>,
    boundary: String,
    body: Body,
) -> Result<(), ApiError> {
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_IMPORT_BYTES + uploads::MULTIPART_ENVELOPE_BYTES)
            .per_field(MAX_IMPORT_BYTES),
    );
    let mut multipart = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut end = pb::ImportEnd::default();
    let mut file_format = None;
    let mut named_format: Option<Option<ExportFormat>> = None;
    let mut has_file = false;
    while let Some(mut field) = uploads::next(multipart.next_field(), form_error).await? {
        match field.name() {
            Some("file") => {
                if has_file {
                    return Err(ApiError::invalid_field("file", "must be sent once"));
                }
                has_file = true;
                file_format = field
                    .content_type()
                    .and_then(|mime| ExportFormat::of_media_type(mime.essence_str()))
                    .or_else(|| field.file_name().and_then(ExportFormat::of_file_name));
                while let Some(chunk) = uploads::next(field.chunk(), form_error).await? {
                    end.size_bytes = end.size_bytes.saturating_add(chunk.len() as u64);
                    if end.size_bytes > MAX_IMPORT_BYTES {
                        return Err(ApiError::ImportTooLarge(MAX_IMPORT_BYTES));
                    }
                    if !chunk.is_empty() && !uploads::forward(sender, message(Part::Chunk(chunk.to_vec()))).await? {
                        return Ok(());
                    }
                }
            }
            Some("format") => {
                // Anything else leaves the format unknown, which the service names.
                named_format = Some(match option(field).await?.as_str() {
                    "csv" => Some(ExportFormat::Csv),
                    "json" => Some(ExportFormat::Json),
                    _ => None,
                });
            }
            Some("status_map") => {
                let bytes = uploads::next(field.bytes(), form_error).await?;
                if bytes.len() > MAX_STATUS_MAP_BYTES {
                    return Err(ApiError::invalid_field("status_map", "is longer than 8 KiB"));
                }
                end.status_map = serde_json::from_slice(&bytes).map_err(|_| {
                    ApiError::invalid_field("status_map", "must be a JSON object of status names to Ordo statuses")
                })?;
            }
            Some("dry_run") => {
                end.dry_run = match option(field).await?.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::invalid_field("dry_run", "must be true or false")),
                };
            }
            // Other parts are skipped; the next call reads past them (within the size limit).
            _ => {}
        }
    }
    // What the form lacks (a file, a format) is named by the service once it has decided the caller
    // may import.
    let format = named_format.unwrap_or(file_format);
    end.format = format.map_or(pb::ExportFormat::Unspecified, ExportFormat::to_proto) as i32;
    uploads::forward(sender, message(Part::End(end))).await?;
    Ok(())
}

/// One message of an import's stream.
fn message(part: Part) -> pb::CreateImportRequest {
    pb::CreateImportRequest { part: Some(part) }
}

/// The value of a small part.
async fn option(field: multer::Field<'static>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let bytes = uploads::next(field.bytes(), form_error).await?;
    if bytes.len() > MAX_OPTION_BYTES {
        return Err(ApiError::invalid_field(name, "is too long"));
    }
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// A multipart body that cannot be read: over the limit (`413`), or malformed or cut short (`400`).
fn form_error(error: multer::Error) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::ImportTooLarge(MAX_IMPORT_BYTES)
        }
        other => ApiError::BadRequest(format!("The multipart body could not be read: {other}.")),
    }
}
