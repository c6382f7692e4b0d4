//! The tonic server of `ordo.task.v1.JobService`: job requests (exports, imports) to use-case calls,
//! jobs and import reports to protobuf.

use ordo_proto::task::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::job_service_server::JobService as JobRpc;
use tonic::{Request, Response, Status};

use super::{Translation, caller, list_of};
use crate::app::{AppError, ImportOutcome, ImportReport, Issue, JobView, MAX_IMPORT_BYTES, TaskService};
use crate::domain::{ExportFormat, FieldViolation, JobState};

/// The gRPC face of the background jobs of [`TaskService`].
#[derive(Debug, Clone)]
pub struct JobGrpc {
    service: TaskService,
}

impl JobGrpc {
    /// Serves `service`'s jobs.
    pub fn new(service: TaskService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl JobRpc for JobGrpc {
    async fn create_export(
        &self,
        request: Request<pb::CreateExportRequest>,
    ) -> Result<Response<pb::CreateExportResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut t = Translation::default();
        let format = t.take(format_of(r.format).map(Some));
        let filter = list_of(r.filter.unwrap_or_default(), &mut t);
        let with_comments = t.take(include_of(&r.include));
        t.finish()?;
        let format = format.ok_or_else(|| status(AppError::field("format", "must be csv or json")))?;
        let view =
            self.service.create_export(&caller, &r.project_id, format, &filter, with_comments).await.map_err(status)?;
        Ok(Response::new(pb::CreateExportResponse { job: Some(job_of(view)) }))
    }

    async fn create_import(
        &self,
        request: Request<tonic::Streaming<pb::CreateImportRequest>>,
    ) -> Result<Response<pb::CreateImportResponse>, Status> {
        use pb::create_import_request::Part;

        let caller = caller(&request)?;
        let mut parts = request.into_inner();
        let project_id = match parts.message().await?.and_then(|m| m.part) {
            Some(Part::Header(header)) => header.project_id,
            _ => return Err(Status::invalid_argument("the first message of an import must be its header")),
        };
        // Who may import is decided before a byte of the file is read.
        self.service.may_import(&caller, &project_id).await.map_err(status)?;
        let mut file = Vec::new();
        let end = loop {
            match parts.message().await?.and_then(|m| m.part) {
                Some(Part::Chunk(chunk)) => {
                    if file.len().saturating_add(chunk.len()) > MAX_IMPORT_BYTES {
                        let message = format!("is larger than {MAX_IMPORT_BYTES} bytes: split it");
                        return Err(status(AppError::field("file", message)));
                    }
                    file.extend_from_slice(&chunk);
                }
                Some(Part::End(end)) => break end,
                Some(Part::Header(_)) => {
                    return Err(Status::invalid_argument("an import carries one header, then chunks and its end"));
                }
                None => return Err(Status::invalid_argument("the import ended without its end message")),
            }
        };
        if end.size_bytes != file.len() as u64 {
            return Err(Status::invalid_argument("the end of the import counts other bytes than arrived"));
        }
        // An unknown format is the request's error once the caller may import at all.
        let format = format_of(end.format).ok();
        let outcome = self
            .service
            .create_import(&caller, &project_id, format, file.into(), sorted(end.status_map), end.dry_run)
            .await
            .map_err(status)?;
        Ok(Response::new(match outcome {
            ImportOutcome::Preview(report) => {
                pb::CreateImportResponse { job: None, created: false, preview: Some(report_of(report)) }
            }
            ImportOutcome::Job { view, created } => {
                pb::CreateImportResponse { job: Some(job_of(*view)), created, preview: None }
            }
        }))
    }

    async fn get_job(&self, request: Request<pb::GetJobRequest>) -> Result<Response<pb::GetJobResponse>, Status> {
        let caller = caller(&request)?;
        let view = self.service.job(&caller, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::GetJobResponse { job: Some(job_of(view)) }))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let caller = caller(&request)?;
        let view = self.service.cancel_job(&caller, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::CancelJobResponse { job: Some(job_of(view)) }))
    }
}

/// Whether an export's `include` asks for comments: its only item so far.
fn include_of(include: &[String]) -> Result<bool, FieldViolation> {
    if include.len() > 10 {
        return Err(FieldViolation::new("include", "names at most 10 items"));
    }
    match include.iter().find(|item| item.as_str() != "comments") {
        Some(other) => {
            Err(FieldViolation::new("include", format!("{other:?} is nothing an export includes: only comments")))
        }
        None => Ok(!include.is_empty()),
    }
}

/// The pairs of a map in the order of their keys, so the same map is always the same list.
fn sorted(map: std::collections::HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = map.into_iter().collect();
    pairs.sort_unstable();
    pairs
}

/// The export format of the request.
fn format_of(raw: i32) -> Result<ExportFormat, FieldViolation> {
    match pb::ExportFormat::try_from(raw) {
        Ok(pb::ExportFormat::Csv) => Ok(ExportFormat::Csv),
        Ok(pb::ExportFormat::Json) => Ok(ExportFormat::Json),
        Ok(pb::ExportFormat::Unspecified) | Err(_) => Err(FieldViolation::new("format", "must be csv or json")),
    }
}

/// A job as the RPCs answer it.
fn job_of(view: JobView) -> pb::Job {
    let JobView { job, format, import, download_url, expires_at } = view;
    pb::Job {
        id: job.id.to_string(),
        project_id: job.project_id.to_string(),
        kind: job.kind.as_str().to_owned(),
        format: match format {
            ExportFormat::Csv => pb::ExportFormat::Csv,
            ExportFormat::Json => pb::ExportFormat::Json,
        }
        .into(),
        state: match job.state {
            JobState::Queued => pb::JobState::Queued,
            JobState::Running => pb::JobState::Running,
            JobState::Done => pb::JobState::Done,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
        }
        .into(),
        rows_done: job.rows_done,
        rows_total: job.rows_total,
        download_url: download_url.unwrap_or_default(),
        result_expires_at: expires_at.map(timestamp),
        result_bytes: job.result.as_ref().map(|r| r.size_bytes),
        error: job.error.unwrap_or_default(),
        attempts: job.attempt,
        created_at: Some(timestamp(job.created_at)),
        updated_at: Some(timestamp(job.updated_at)),
        finished_at: job.finished_at.map(timestamp),
        import_report: import.map(report_of),
    }
}

/// An import's report as the RPCs answer it.
fn report_of(report: ImportReport) -> pb::ImportReport {
    let issues = |issues: Vec<Issue>| {
        issues.into_iter().map(|i| pb::ImportIssue { row: i.row, field: i.field, message: i.message }).collect()
    };
    pb::ImportReport {
        rows: report.rows,
        tasks: report.tasks,
        error_count: report.error_count,
        errors: issues(report.errors),
        warning_count: report.warning_count,
        warnings: issues(report.warnings),
    }
}
