//! Background jobs: exports of a project's tasks. A request checks the caller's access and the
//! filter, and queues the job; whichever instance claims it ([`TaskService::run_next_job`]) pages
//! through the tasks the filter keeps, encodes them ([`ExportEncoder`]) and streams the file into
//! object storage as it goes, never holding the project in memory. The attempt renews its lease
//! with every page it records, and stops as soon as it learns it no longer holds the job
//! (cancelled, or taken over after its lease ran out); its object is then left to its guard. Only
//! the requester sees a job; a finished export is downloaded through a short-lived presigned URL.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::imports::{ImportReport, import_spec_of};
use super::ports::{ByteStream, JobOutcome, JobSettings, PutError, TaskSort};
use super::request::Caller;
use super::service::TaskService;
use super::shared::{NO_PROJECT, id_of, now};
use super::{AppError, ListTasks, Result};
use crate::domain::{ExportFormat, Job, JobKind, JobResult, JobState, Priority, Status, job_error};

/// The name a hidden or missing job goes by.
const NO_JOB: &str = "no such job";
/// How long an export's object may take to finish before it counts as abandoned (its guard).
const EXPORT_GUARD: Duration = Duration::from_secs(3600);
/// Tasks read and written per page of an export.
pub const EXPORT_PAGE: u32 = 500;
/// The largest export file, in bytes.
pub const MAX_EXPORT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Jobs one user may have queued or running at once.
pub const MAX_UNFINISHED_JOBS: u64 = 5;
/// Attempts of a job that a failing backend ends before it is recorded as failed.
pub const MAX_JOB_ATTEMPTS: u32 = 3;

/// The tasks an export keeps: the filters of the task list, as its job's row keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ExportFilter {
    #[serde(default)]
    statuses: Vec<String>,
    #[serde(default)]
    priorities: Vec<String>,
    /// A user id (`me` is kept as the requester's).
    #[serde(default)]
    assignee_id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    query: String,
    /// Microseconds since the epoch.
    #[serde(default)]
    due_before: Option<i64>,
    /// Microseconds since the epoch.
    #[serde(default)]
    due_after: Option<i64>,
    /// A task id; the empty string keeps tasks without a parent.
    #[serde(default)]
    parent_id: Option<String>,
    /// The order of the rows ([`TaskSort::code`]); `None` for the list's default.
    #[serde(default)]
    sort: Option<String>,
}

impl ExportFilter {
    /// The filters of `list`, with `me` as `requester`.
    fn of(list: &ListTasks, requester: Uuid) -> Self {
        let micros = |t: Option<OffsetDateTime>| t.and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000).ok());
        Self {
            statuses: list.statuses.iter().map(|s| s.as_str().to_owned()).collect(),
            priorities: list.priorities.iter().map(|p| p.as_str().to_owned()).collect(),
            assignee_id: if list.assignee_id == "me" { requester.to_string() } else { list.assignee_id.clone() },
            label: list.label.clone(),
            query: list.query.clone(),
            due_before: micros(list.due_before),
            due_after: micros(list.due_after),
            parent_id: list.parent_id.clone(),
            sort: list.sort.map(|s| s.code().to_owned()),
        }
    }

    /// The list request of the page of `project_id` after `cursor` ("": the first).
    fn page(&self, project_id: Uuid, cursor: String) -> Result<ListTasks> {
        let corrupt = |what: &str| AppError::Internal(anyhow::anyhow!("an export's filter has an invalid {what}"));
        let time = |micros: Option<i64>| {
            micros
                .map(|m| OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1_000).map_err(|_| corrupt("time")))
                .transpose()
        };
        Ok(ListTasks {
            project_id: project_id.to_string(),
            statuses: self
                .statuses
                .iter()
                .map(|s| Status::parse(s).ok_or_else(|| corrupt("status")))
                .collect::<Result<_>>()?,
            priorities: self
                .priorities
                .iter()
                .map(|p| Priority::ALL.into_iter().find(|known| known.as_str() == p).ok_or_else(|| corrupt("priority")))
                .collect::<Result<_>>()?,
            assignee_id: self.assignee_id.clone(),
            label: self.label.clone(),
            query: self.query.clone(),
            due_before: time(self.due_before)?,
            due_after: time(self.due_after)?,
            parent_id: self.parent_id.clone(),
            sort: self
                .sort
                .as_deref()
                .map(|code| TaskSort::from_code(code).ok_or_else(|| corrupt("sort")))
                .transpose()?,
            limit: 0,
            cursor,
        })
    }
}

/// What an export job does, as its row keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ExportSpec {
    format: String,
    filter: ExportFilter,
    /// Whether each task's comments go with it.
    #[serde(default)]
    comments: bool,
}

/// A job as its requester sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub job: Job,
    /// The format of the export's file, or of the imported file.
    pub format: ExportFormat,
    /// What an import did, or is doing.
    pub import: Option<ImportReport>,
    /// Where a finished export's file downloads from, for a short while.
    pub download_url: Option<String>,
    /// Until when a finished export's file is kept.
    pub expires_at: Option<OffsetDateTime>,
}

/// How a run of a job went.
pub(super) enum Run {
    /// It ended: record this.
    Ended(JobOutcome),
    /// The attempt no longer holds the job: record nothing.
    Lost,
}

impl TaskService {
    /// Queues an export of the project's tasks that `filter` keeps, as `format` (viewers and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %project_id))]
    pub async fn create_export(
        &self,
        caller: &Caller,
        project_id: &str,
        format: ExportFormat,
        filter: &ListTasks,
        with_comments: bool,
    ) -> Result<JobView> {
        let settings = self.jobs()?;
        let project_id = id_of(project_id, NO_PROJECT)?;
        let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_PROJECT))?;
        // The filter is checked now, as the list checks it, so a bad one is the request's error.
        let filter = ExportFilter::of(filter, caller.user_id);
        self.export_page(caller.user_id, project_id, &filter.page(project_id, String::new())?, 1).await?;
        let spec = ExportSpec { format: format.as_str().to_owned(), filter, comments: with_comments };
        let spec = serde_json::to_string(&spec).map_err(|e| AppError::Internal(e.into()))?;
        let job = Job::queue(Uuid::now_v7(), project_id, caller.user_id, JobKind::Export, spec, now());
        if !settings.store.insert_job(&job, MAX_UNFINISHED_JOBS).await? {
            return Err(unfinished_error());
        }
        settings.queued.notify_one();
        Ok(JobView { job, format, import: None, download_url: None, expires_at: None })
    }

    /// One of the caller's jobs, with a download URL when it is a finished export still kept. Another
    /// user's job, or one of a project the caller no longer sees, is `NotFound`.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, job = %id))]
    pub async fn job(&self, caller: &Caller, id: &str) -> Result<JobView> {
        let settings = self.jobs()?;
        let job = self.own_job(caller, id).await?;
        let (_, key) = self.access(caller, job.project_id, NO_JOB).await?;
        self.view_of(settings, job, &key).await
    }

    /// `job` as its requester sees it: an export's download URL while its file is kept, an
    /// import's report. `project_key` names an export's file.
    pub(super) async fn view_of(&self, settings: &JobSettings, job: Job, project_key: &str) -> Result<JobView> {
        if job.kind == JobKind::Import {
            let spec = import_spec_of(&job)?;
            let format = ExportFormat::parse(&spec.format)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("job {} has an invalid spec", job.id)))?;
            return Ok(JobView { job, format, import: Some(spec.report), download_url: None, expires_at: None });
        }
        let format = spec_of(&job)?.0;
        let expires_at = match (&job.result, job.finished_at) {
            (Some(_), Some(finished)) => Some(finished + settings.retention),
            _ => None,
        };
        let download_url = match (&job.result, expires_at, settings.presign_ttl) {
            (Some(result), Some(expires), Some(ttl)) if job.state == JobState::Done && expires > now() => {
                let filename = format!("{project_key}-tasks.{}", format.as_str());
                Some(settings.objects.presign(&result.object_key, &filename, ttl).await?)
            }
            _ => None,
        };
        Ok(JobView { job, format, import: None, download_url, expires_at })
    }

    /// Cancels one of the caller's jobs unless it has ended already; the job as it is after.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, job = %id))]
    pub async fn cancel_job(&self, caller: &Caller, id: &str) -> Result<JobView> {
        let settings = self.jobs()?;
        let job = self.own_job(caller, id).await?;
        self.access(caller, job.project_id, NO_JOB).await?;
        settings.store.cancel_job(job.id, now()).await?;
        self.job(caller, id).await
    }

    /// Claims the next job to run and runs it to its end; whether there was one.
    pub async fn run_next_job(&self) -> Result<bool> {
        let settings = self.jobs()?;
        let claimed_at = now();
        let Some(job) = settings.store.claim_job(claimed_at, claimed_at + settings.lease).await? else {
            return Ok(false);
        };
        tracing::info!(job = %job.id, attempt = job.attempt, project = %job.project_id, "running a job");
        let run = match job.kind {
            JobKind::Export => self.run_export(settings, &job).await,
            JobKind::Import => self.run_import(settings, &job).await,
        };
        let outcome = match run {
            Ok(Run::Ended(outcome)) => outcome,
            Ok(Run::Lost) => {
                tracing::info!(job = %job.id, attempt = job.attempt, "the job was cancelled or taken over");
                return Ok(true);
            }
            Err(error @ (AppError::Invalid(_) | AppError::NotFound(_))) => {
                JobOutcome::Failed { error: job_error(&error.to_string()) }
            }
            Err(error) if job.attempt >= MAX_JOB_ATTEMPTS => {
                // The cause is the operators' (it may name hosts or statements); the requester is told
                // what happened and what to do.
                tracing::warn!(job = %job.id, attempt = job.attempt, %error, "the job failed on its last attempt");
                JobOutcome::Failed {
                    error: format!(
                        "the {} failed {} times on a backend error; ask for it again later",
                        job.kind.as_str(),
                        job.attempt
                    ),
                }
            }
            Err(error) => {
                // Left running: once its lease runs out, an instance tries it again.
                tracing::warn!(job = %job.id, attempt = job.attempt, %error, "the job failed; it will be tried again");
                return Err(error);
            }
        };
        if !settings.store.finish_job(job.id, job.attempt, &outcome, now()).await? {
            tracing::info!(job = %job.id, attempt = job.attempt, "the job was cancelled or taken over at its end");
        }
        Ok(true)
    }

    /// The job settings; `Unavailable` when the service runs without them.
    pub(super) fn jobs(&self) -> Result<&JobSettings> {
        self.job_settings.as_ref().ok_or_else(|| AppError::Unavailable("background jobs are not configured".into()))
    }

    /// Job `id` if the caller asked for it; `NotFound` otherwise.
    async fn own_job(&self, caller: &Caller, id: &str) -> Result<Job> {
        let id = id_of(id, NO_JOB)?;
        let job = self.jobs()?.store.job(id).await?;
        job.filter(|job| job.requester_id == caller.user_id).ok_or_else(|| AppError::NotFound(NO_JOB.into()))
    }

    /// Runs the export `job` as its current attempt.
    async fn run_export(&self, settings: &JobSettings, job: &Job) -> Result<Run> {
        let (format, spec) = spec_of(job)?;
        let key = job.object_key(job.attempt, format);
        // Deleted unless the end of this attempt keeps it: an attempt that dies leaves nothing.
        self.store.schedule_object_deletion(&key, now() + EXPORT_GUARD).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
        let body: ByteStream =
            futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|item| (item, r)) }).boxed();
        let upload = settings.objects.put(&key, format.content_type(), body, MAX_EXPORT_BYTES);
        let write = self.write_export(settings, job, format, &spec, sender);
        let (stored, written) = tokio::join!(upload, write);
        let rows = match written? {
            Some(rows) => rows,
            None => return Ok(Run::Lost),
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(PutError::TooLarge { limit }) => {
                return Ok(Run::Ended(JobOutcome::Failed {
                    error: format!("the export is larger than {limit} bytes: narrow its filter"),
                }));
            }
            Err(error) => return Err(AppError::Unavailable(error.to_string())),
        };
        let finished = now();
        Ok(Run::Ended(JobOutcome::Done {
            result: JobResult { object_key: key, size_bytes: stored.size_bytes },
            rows,
            expires_at: finished + settings.retention,
        }))
    }

    /// Sends the file of the export into `sender`, a page at a time, recording progress after each
    /// page: the rows written, or `None` when the attempt lost the job (the upload is then failed,
    /// so nothing is stored).
    async fn write_export(
        &self,
        settings: &JobSettings,
        job: &Job,
        format: ExportFormat,
        spec: &ExportSpec,
        sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    ) -> Result<Option<u64>> {
        let filter = &spec.filter;
        let fail = |sender: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, why: &str| {
            // The upload sees the error and aborts; if it is gone already there is nothing to abort.
            let _ = sender.try_send(Err(std::io::Error::other(why.to_owned())));
        };
        let mut file = settings.encoder.begin(format, spec.comments);
        let mut rows = 0_u64;
        let mut cursor = String::new();
        loop {
            let page = match self
                .export_page(job.requester_id, job.project_id, &filter.page(job.project_id, cursor)?, EXPORT_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    fail(&sender, "reading the tasks failed");
                    return Err(error);
                }
            };
            let comments = if spec.comments {
                let ids: Vec<Uuid> = page.tasks.iter().map(|t| t.id).collect();
                match self.store.comments_of(&ids).await {
                    Ok(comments) => comments,
                    Err(error) => {
                        fail(&sender, "reading the comments failed");
                        return Err(error);
                    }
                }
            } else {
                Vec::new()
            };
            let bytes = file.rows(&page.tasks, &comments)?;
            rows += page.tasks.len() as u64;
            if sender.send(Ok(bytes)).await.is_err() {
                // The upload ended early (it failed or went past its limit): its outcome says why.
                return Ok(Some(rows));
            }
            // The total is known once the last page is read.
            let total = page.next_cursor.is_none().then_some(rows);
            let at = now();
            match settings.store.job_progress(job.id, job.attempt, rows, total, at, at + settings.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    fail(&sender, "the job was cancelled or taken over");
                    return Ok(None);
                }
                Err(error) => {
                    fail(&sender, "recording progress failed");
                    return Err(error);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let _ = sender.send(Ok(file.end())).await;
        Ok(Some(rows))
    }
}

/// `Exhausted`: the caller has the most unfinished jobs a user may have.
pub(super) fn unfinished_error() -> AppError {
    AppError::Exhausted {
        message: format!(
            "at most {MAX_UNFINISHED_JOBS} of your jobs may be queued or running at once; ask again once one has ended"
        )
        .into(),
        retry_after_secs: Some(10),
    }
}

/// The format and spec of an export job.
fn spec_of(job: &Job) -> Result<(ExportFormat, ExportSpec)> {
    let corrupt = || AppError::Internal(anyhow::anyhow!("job {} has an invalid spec", job.id));
    let spec: ExportSpec = serde_json::from_str(&job.spec).map_err(|_| corrupt())?;
    let format = ExportFormat::parse(&spec.format).ok_or_else(corrupt)?;
    Ok((format, spec))
}
