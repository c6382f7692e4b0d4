//! The JSON of exports, imports and jobs: the body that asks for an export, the form of an import,
//! and the jobs and reports they answer with, translated from the task service's messages.

use ordo_proto::task::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::{malformed, optional_timestamp, timestamp};
use crate::routes::tasks::TaskFilter;

/// `POST /projects/{id}/exports`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateExportBody {
    /// `csv`: RFC 4180 with a header row, UTF-8, one row per task; assignees and labels one per line
    /// in their cell; a cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return or `'`
    /// gets a leading `'` so no spreadsheet runs it as a formula. `json`: one array of tasks, each as
    /// `GET /tasks/{id}` answers it.
    pub(super) format: ExportFormat,
    /// The tasks to export: the filters and sort of `GET /tasks`, written as its query parameters
    /// are. Every task of the project when absent.
    pub(super) filter: Option<TaskFilter>,
    /// What goes with each task: `comments` (a last CSV column `comments`, each comment as its time
    /// and author on a line and its body below, apart by a line `---`; in JSON a `comments` array of
    /// each task, each as `GET /comments/{id}` answers it). Nothing when absent.
    #[schema(max_items = 10)]
    pub(super) include: Option<Vec<ExportInclude>>,
}

/// What an export may carry beside its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExportInclude {
    Comments,
}

impl ExportInclude {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ExportInclude::Comments => "comments",
        }
    }
}

/// The file an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    /// The format of a file sent as `media_type` (its essence, without parameters).
    pub(super) fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type.to_ascii_lowercase().as_str() {
            "text/csv" => Some(ExportFormat::Csv),
            "application/json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    /// The format of a file named `name`, by its extension.
    pub(super) fn of_file_name(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    pub(super) fn to_proto(self) -> pb::ExportFormat {
        match self {
            ExportFormat::Csv => pb::ExportFormat::Csv,
            ExportFormat::Json => pb::ExportFormat::Json,
        }
    }

    fn from_proto(raw: i32) -> Result<Self, ApiError> {
        match pb::ExportFormat::try_from(raw) {
            Ok(pb::ExportFormat::Csv) => Ok(ExportFormat::Csv),
            Ok(pb::ExportFormat::Json) => Ok(ExportFormat::Json),
            _ => Err(malformed("a job of an unknown format")),
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobState {
    /// Waiting for an instance of the task service to take it.
    Queued,
    /// Running: `progress` says how far it got.
    Running,
    /// Finished: `result` says where its file is.
    Done,
    /// Ended without a result: `error` says why.
    Failed,
    /// Cancelled by its requester.
    Cancelled,
}

impl JobState {
    fn from_proto(raw: i32) -> Result<Self, ApiError> {
        match pb::JobState::try_from(raw) {
            Ok(pb::JobState::Queued) => Ok(JobState::Queued),
            Ok(pb::JobState::Running) => Ok(JobState::Running),
            Ok(pb::JobState::Done) => Ok(JobState::Done),
            Ok(pb::JobState::Failed) => Ok(JobState::Failed),
            Ok(pb::JobState::Cancelled) => Ok(JobState::Cancelled),
            _ => Err(malformed("a job in an unknown state")),
        }
    }
}

/// How far a job got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobProgress {
    /// Rows written so far (by the running attempt; a job started again counts from 0).
    pub(crate) rows_done: u64,
    /// Rows in all, once known (an import's from its start, an export's with its last page); `null`
    /// until then.
    #[schema(required = true)]
    pub(crate) rows_total: Option<u64>,
}

/// The file of a finished export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobResult {
    /// Downloads the file (a presigned URL of the object store, valid for a few minutes: ask for the
    /// job again for a fresh one); `null` once the file has expired, or when the deployment turned
    /// presigned URLs off.
    #[schema(required = true)]
    pub(crate) url: Option<String>,
    /// The file's size in bytes.
    pub(crate) size_bytes: u64,
    /// Until when the file is kept (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) expires_at: OffsetDateTime,
}

/// `POST /projects/{id}/imports`, as `multipart/form-data` (documentation only: the form is read
/// part by part). Parts of other names are skipped.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ImportForm {
    /// The file: CSV or JSON as exports write them, at most 8 MiB and 10,000 tasks. Its format is
    /// the part's `Content-Type` (`text/csv`, `application/json`) or its file name's extension,
    /// unless the part `format` names it.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `csv` or `json`: the file's format, whatever its type or name says.
    #[schema(value_type = Option<String>, pattern = "^(csv|json)$")]
    format: Option<String>,
    /// A JSON object of the file's status names (without case) and the Ordo status each becomes
    /// (`backlog`, `todo`, `in_progress`, `in_review`, `done`, `cancelled`); at most 50.
    #[schema(value_type = Option<String>, example = "{\"Waiting for QA\": \"in_review\"}")]
    status_map: Option<String>,
    /// `true`: import nothing, answer what would be imported. `false` when absent.
    #[schema(value_type = Option<String>, pattern = "^(true|false)$")]
    dry_run: Option<String>,
}

/// One row an import left out, or imported with a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ImportIssue {
    /// The row's number among the file's tasks, from 1 (the CSV header is not counted).
    pub(crate) row: u32,
    /// The field, as tasks name it (`title`, `status`, `parent_id`, ...).
    pub(crate) field: String,
    pub(crate) message: String,
}

/// What an import did, or would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ImportReport {
    /// Tasks the file holds.
    pub(crate) rows: u64,
    /// Tasks it creates.
    pub(crate) tasks: u64,
    /// Rows left out.
    pub(crate) error_count: u64,
    /// The first 100 rows left out, each field with its reason.
    pub(crate) errors: Vec<ImportIssue>,
    /// Rows imported without their parent.
    pub(crate) warning_count: u64,
    /// The first 100 of them.
    pub(crate) warnings: Vec<ImportIssue>,
}

impl ImportReport {
    pub(crate) fn from_proto(report: pb::ImportReport) -> Self {
        let issues = |issues: Vec<pb::ImportIssue>| {
            issues.into_iter().map(|i| ImportIssue { row: i.row, field: i.field, message: i.message }).collect()
        };
        Self {
            rows: report.rows,
            tasks: report.tasks,
            error_count: report.error_count,
            errors: issues(report.errors),
            warning_count: report.warning_count,
            warnings: issues(report.warnings),
        }
    }
}

/// What `POST /projects/{id}/imports` answers with `200`: a dry run's report, or the job of the
/// same file sent before with a `status_map` that reads it alike.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ImportAnswer {
    Job(Box<Job>),
    Report(ImportReport),
}

/// A background job of a project: an export of its tasks, or an import of tasks from a file. Only
/// its requester sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Job {
    /// The job id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub(crate) id: String,
    /// The project it exports.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: String,
    /// `export` or `import`.
    #[schema(example = "export")]
    pub(crate) kind: String,
    /// The format of the export's file, or of the imported one.
    pub(crate) format: ExportFormat,
    pub(crate) state: JobState,
    pub(crate) progress: JobProgress,
    /// An export's file, once `done`; `null` otherwise.
    #[schema(required = true)]
    pub(crate) result: Option<JobResult>,
    /// What an import does: the rows of its file, the tasks it creates (`progress` counts them), the
    /// rows it leaves out; `null` for an export.
    #[schema(required = true)]
    pub(crate) import: Option<ImportReport>,
    /// Why a `failed` job failed; `null` otherwise.
    #[schema(required = true)]
    pub(crate) error: Option<String>,
    /// How many times an instance started it: more than 1 when an instance stopped mid-run and
    /// another started it again.
    pub(crate) attempts: u32,
    /// When it was asked for (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When it last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// When it ended (RFC 3339, UTC); `null` while queued or running.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) finished_at: Option<OffsetDateTime>,
}

impl Job {
    /// The job of a response that must carry one.
    pub(crate) fn from_proto(job: Option<pb::Job>) -> Result<Self, ApiError> {
        let job = job.ok_or_else(|| malformed("a response without its job"))?;
        let result = match (job.result_bytes, job.result_expires_at) {
            (Some(size_bytes), Some(expires_at)) => Some(JobResult {
                url: Some(job.download_url).filter(|url| !url.is_empty()),
                size_bytes,
                expires_at: timestamp(Some(expires_at))?,
            }),
            _ => None,
        };
        Ok(Self {
            format: ExportFormat::from_proto(job.format)?,
            state: JobState::from_proto(job.state)?,
            progress: JobProgress { rows_done: job.rows_done, rows_total: job.rows_total },
            result,
            import: job.import_report.map(ImportReport::from_proto),
            error: Some(job.error).filter(|error| !error.is_empty()),
            attempts: job.attempts,
            created_at: timestamp(job.created_at)?,
            updated_at: timestamp(job.updated_at)?,
            finished_at: optional_timestamp(job.finished_at)?,
            id: job.id,
            project_id: job.project_id,
            kind: job.kind,
        })
    }
}
