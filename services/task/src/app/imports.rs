//! Imports of tasks from a file: Ordo's own exports (CSV or JSON), a Trello board's JSON or Jira's
//! CSV of issues, their statuses mapped by the request or by the usual names. The request does the judging:
//! it checks that the caller may create tasks in the project (before reading the file), reads the
//! file ([`ImportDecoder`]), asks the project service whether each account the file assigns is a
//! member, and plans the import ([`plan_import`]): the tasks to create, the rows left out and why.
//! A dry run answers that plan. Otherwise the file is kept in object storage and a job queued under
//! the digest of the project and the file, so the same file sent twice imports once (the second
//! request answers the first job). The job plans the file again (the same plan: it depends on the
//! file and on the accounts found not to be members, which the job keeps) and creates the tasks a
//! chunk at a time, each chunk in one transaction with the job's progress and the task each row
//! became: an attempt taken over resumes after the last chunk committed, and creates no task twice.

use std::collections::{HashMap, HashSet};

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::jobs::{JobView, MAX_UNFINISHED_JOBS, Run, unfinished_error};
use super::placement::append_tasks;
use super::ports::{JobOutcome, JobSettings, Queued};
use super::request::{Caller, ClientInfo};
use super::service::TaskService;
use super::shared::{NO_PROJECT, id_of, now};
use super::{AppError, Result};
use crate::domain::{
    ExportFormat, ImportIssue, Job, JobKind, MAX_IMPORT_ROWS, NewTask, PlannedTask, Status, StatusMap, TaskEvent,
    plan_import,
};

/// The largest file an import reads, in bytes.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;
/// The most distinct accounts one file may assign.
pub const MAX_IMPORT_ASSIGNEES: usize = 200;
/// Issues of each kind a job keeps to show (the counts are of all of them).
pub const MAX_LISTED_ISSUES: usize = 100;
/// Statuses one request may map.
pub const MAX_STATUS_MAP: usize = 50;
/// Tasks created per transaction of an import.
const IMPORT_CHUNK: usize = 200;

/// What an import did, or would do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// Tasks the file holds.
    pub rows: u64,
    /// Tasks it creates.
    pub tasks: u64,
    /// Rows left out: how many, and the first [`MAX_LISTED_ISSUES`] of them.
    pub error_count: u64,
    pub errors: Vec<Issue>,
    /// Rows imported without their parent: how many, and the first of them.
    pub warning_count: u64,
    pub warnings: Vec<Issue>,
}

/// One row's issue, as a job keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub row: u32,
    pub field: String,
    pub message: String,
}

/// How a request to import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A dry run: what the import would do.
    Preview(ImportReport),
    /// The job that imports the file: a new one (`created`), or the one this file already had.
    Job { view: Box<JobView>, created: bool },
}

/// What an import job does, as its row keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ImportSpec {
    pub(super) format: String,
    /// The file, in object storage.
    pub(super) object_key: String,
    /// The project's key, for the new tasks' keys.
    pub(super) project_key: String,
    /// The accounts of the file that were not members of the project.
    pub(super) non_members: Vec<Uuid>,
    /// The request's map of the file's statuses to Ordo's.
    #[serde(default)]
    pub(super) status_map: Vec<(String, String)>,
    pub(super) report: ImportReport,
}

impl TaskService {
    /// Whether the caller may import into the project (members and up, in a project that is not
    /// archived): asked before a byte of the file is read, and again by [`TaskService::create_import`]
    /// once it has arrived (the caller's standing may change meanwhile).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %project_id))]
    pub async fn may_import(&self, caller: &Caller, project_id: &str) -> Result<()> {
        self.jobs()?;
        let project_id = id_of(project_id, NO_PROJECT)?;
        let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_PROJECT))
    }

    /// Imports the tasks of `file`, a file in `format`, into the project (members and up), or with
    /// `dry_run` answers what it would import. The format and the file are judged after the caller's
    /// access: `None` or an empty file is `Invalid` for a caller who may import, and nothing more
    /// for one who may not.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %project_id, bytes = file.len()))]
    pub async fn create_import(
        &self,
        caller: &Caller,
        project_id: &str,
        format: Option<ExportFormat>,
        file: Bytes,
        status_map: Vec<(String, String)>,
        dry_run: bool,
    ) -> Result<ImportOutcome> {
        let settings = self.jobs()?;
        let project_id = id_of(project_id, NO_PROJECT)?;
        // Who may import is decided before a byte of the file is read.
        let (access, project_key) = self.access(caller, project_id, NO_PROJECT).await?;
        access.write().map_err(|d| crate::app::denied(d, NO_PROJECT))?;
        let format = format.ok_or_else(|| AppError::field("format", "must be csv or json"))?;
        if file.is_empty() {
            return Err(AppError::field("file", "is required and must not be empty"));
        }
        if file.len() > MAX_IMPORT_BYTES {
            return Err(AppError::field("file", format!("is larger than {MAX_IMPORT_BYTES} bytes: split it")));
        }
        let statuses = status_map_of(&status_map)?;
        let records = settings.decoder.decode(format, &file, MAX_IMPORT_ROWS)?;
        let mut accounts: HashSet<Uuid> = HashSet::new();
        for id in records.iter().flat_map(|r| &r.assignee_ids) {
            // A malformed id is its row's error, found by the plan.
            if let Ok(id) = Uuid::parse_str(id) {
                accounts.insert(id);
                if accounts.len() > MAX_IMPORT_ASSIGNEES {
                    return Err(AppError::field(
                        "file",
                        format!("assigns more than {MAX_IMPORT_ASSIGNEES} distinct accounts"),
                    ));
                }
            }
        }
        let non_members = self.non_members(caller, project_id, accounts).await?;
        let plan = plan_import(&records, &non_members.iter().copied().collect(), &statuses);
        let report = ImportReport {
            rows: records.len() as u64,
            tasks: plan.tasks.len() as u64,
            error_count: plan.errors.len() as u64,
            errors: listed(&plan.errors),
            warning_count: plan.warnings.len() as u64,
            warnings: listed(&plan.warnings),
        };
        if dry_run {
            return Ok(ImportOutcome::Preview(report));
        }

        let key = import_key(project_id, format, &statuses, &file);
        if let Some(existing) = settings.store.import_job(key).await? {
            return Ok(ImportOutcome::Job {
                view: Box::new(self.view_of(settings, existing, &project_key).await?),
                created: false,
            });
        }
        // Refused before the file is stored; the insert below decides for good.
        if settings.store.unfinished_jobs(caller.user_id).await? >= MAX_UNFINISHED_JOBS {
            return Err(unfinished_error());
        }
        let id = Uuid::now_v7();
        let object_key = format!("imports/{project_id}/{id}.{}", format.as_str());
        // Kept as long as an export's file, as the record of what was imported.
        self.store.schedule_object_deletion(&object_key, now() + settings.retention).await?;
        let body = futures::stream::once(async move { Ok(file) }).boxed();
        settings
            .objects
            .put(&object_key, format.content_type(), body, MAX_IMPORT_BYTES as u64)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        let tasks = report.tasks;
        let spec = ImportSpec {
            format: format.as_str().to_owned(),
            object_key,
            project_key: project_key.clone(),
            non_members,
            status_map,
            report,
        };
        let spec = serde_json::to_string(&spec).map_err(|e| AppError::Internal(e.into()))?;
        let mut job = Job::queue(id, project_id, caller.user_id, JobKind::Import, spec, now());
        job.rows_total = Some(tasks);
        let (job, created) = match settings.store.insert_import_job(&job, key, MAX_UNFINISHED_JOBS).await? {
            Queued::Inserted => (job, true),
            // Sent twice at once: the other request queued it first.
            Queued::Existing(existing) => (*existing, false),
            Queued::Full => return Err(unfinished_error()),
        };
        if created {
            settings.queued.notify_one();
        }
        Ok(ImportOutcome::Job { view: Box::new(self.view_of(settings, job, &project_key).await?), created })
    }

    /// Runs the import `job` as its current attempt, from the first row it has not imported yet.
    pub(super) async fn run_import(&self, settings: &JobSettings, job: &Job) -> Result<Run> {
        let spec = import_spec_of(job)?;
        let format = ExportFormat::parse(&spec.format).ok_or_else(|| corrupt(job))?;
        let Some(mut stream) = settings.objects.get(&spec.object_key).await? else {
            return Ok(Run::Ended(JobOutcome::Failed { error: "the file of the import is gone".to_owned() }));
        };
        let mut file = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| AppError::Unavailable(format!("reading the import's file: {e}")))?;
            if file.len() + chunk.len() > MAX_IMPORT_BYTES {
                return Err(AppError::Internal(anyhow::anyhow!("the import's file grew past its limit")));
            }
            file.extend_from_slice(&chunk);
        }
        let records = settings.decoder.decode(format, &file, MAX_IMPORT_ROWS)?;
        let plan =
            plan_import(&records, &spec.non_members.iter().copied().collect(), &status_map_of(&spec.status_map)?);
        let total = plan.tasks.len() as u64;
        let mut created: HashMap<u32, Uuid> = settings.store.imported_tasks(job.id).await?.into_iter().collect();
        let start = usize::try_from(job.rows_done).unwrap_or(usize::MAX).min(plan.tasks.len());
        let mut done = start as u64;
        for chunk in plan.tasks[start..].chunks(IMPORT_CHUNK) {
            match self.import_chunk(settings, job, &spec.project_key, chunk, &created, done, total).await? {
                Some(rows) => {
                    done += rows.len() as u64;
                    created.extend(rows);
                }
                None => return Ok(Run::Lost),
            }
        }
        Ok(Run::Ended(JobOutcome::Imported { rows: total }))
    }

    /// Creates the tasks of `chunk` in one transaction with the job's progress: the row and task of
    /// each, or `None` when the attempt no longer holds the job (nothing is written then).
    #[allow(clippy::too_many_arguments)]
    async fn import_chunk(
        &self,
        settings: &JobSettings,
        job: &Job,
        project_key: &str,
        chunk: &[PlannedTask],
        created: &HashMap<u32, Uuid>,
        done: u64,
        total: u64,
    ) -> Result<Option<Vec<(u32, Uuid)>>> {
        let project_id = job.project_id;
        self.store.ensure_counter(project_id).await?;
        let mut tx = self.store.begin().await?;
        // Parents come first in the plan: of an earlier chunk, or earlier in this one. The tasks go
        // to the board in runs, a run ending before a task whose parent is in it, so every parent
        // has its id before its subtasks are written.
        let mut written: HashMap<u32, Uuid> = HashMap::with_capacity(chunk.len());
        let mut tasks = Vec::with_capacity(chunk.len());
        let mut run: Vec<&PlannedTask> = Vec::new();
        let mut in_run: HashSet<u32> = HashSet::new();
        for planned in chunk {
            if planned.parent_row.is_some_and(|row| in_run.contains(&row)) {
                let news = resolved(&run, created, &written, job.requester_id)?;
                for (planned, task) in
                    run.drain(..).zip(append_tasks(tx.as_mut(), project_id, project_key, news).await?)
                {
                    written.insert(planned.row, task.id);
                    tasks.push(task);
                }
                in_run.clear();
            }
            in_run.insert(planned.row);
            run.push(planned);
        }
        let news = resolved(&run, created, &written, job.requester_id)?;
        tasks.extend(append_tasks(tx.as_mut(), project_id, project_key, news).await?);
        let rows: Vec<(u32, Uuid)> = chunk.iter().map(|p| p.row).zip(tasks.iter().map(|t| t.id)).collect();
        let at = now();
        let held = tx
            .record_import(job.id, job.attempt, done + rows.len() as u64, total, &rows, at, at + settings.lease)
            .await?;
        if !held {
            return Ok(None);
        }
        // The import is the requester's act, recorded as theirs; it tells no one (a file of a
        // thousand tasks would be a thousand notifications).
        let client = ClientInfo { ip: String::new(), user_agent: "ordo import".to_owned() };
        for task in &tasks {
            tx.record(
                &TaskEvent::Created { task: task.clone(), recipients: Vec::new() },
                Some(job.requester_id),
                &client,
            )
            .await?;
        }
        tx.commit().await?;
        self.lists_changed([project_id]).await;
        Ok(Some(rows))
    }
}

/// The tasks of `run` with their parents' ids (from `created` by earlier chunks, or `written` by
/// this one), each reported by `requester`.
fn resolved(
    run: &[&PlannedTask],
    created: &HashMap<u32, Uuid>,
    written: &HashMap<u32, Uuid>,
    requester: Uuid,
) -> Result<Vec<(NewTask, Uuid)>> {
    run.iter()
        .map(|planned| {
            let mut new = planned.new.clone();
            new.parent_id = planned
                .parent_row
                .map(|row| {
                    created
                        .get(&row)
                        .or_else(|| written.get(&row))
                        .copied()
                        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("an import's parent row went missing")))
                })
                .transpose()?;
            Ok((new, requester))
        })
        .collect()
}

/// The statuses of `pairs`: at most [`MAX_STATUS_MAP`] names of 1 to 100 characters, each mapped to an
/// Ordo status.
fn status_map_of(pairs: &[(String, String)]) -> Result<StatusMap> {
    if pairs.len() > MAX_STATUS_MAP {
        return Err(AppError::field("status_map", format!("maps at most {MAX_STATUS_MAP} statuses")));
    }
    let mut map = Vec::with_capacity(pairs.len());
    for (name, status) in pairs {
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("status_map", "a status name is 1 to 100 characters"));
        }
        let status = Status::parse(status).ok_or_else(|| {
            AppError::field(
                "status_map",
                format!("{status:?} is no status: use backlog, todo, in_progress, in_review, done or cancelled"),
            )
        })?;
        map.push((name.as_str(), status));
    }
    Ok(StatusMap::new(map))
}

/// The first [`MAX_LISTED_ISSUES`] of `issues`.
fn listed(issues: &[ImportIssue]) -> Vec<Issue> {
    issues
        .iter()
        .take(MAX_LISTED_ISSUES)
        .map(|i| Issue { row: i.row, field: i.field.clone(), message: i.message.clone() })
        .collect()
}

/// The key an import of `file` into `project_id`, its statuses read by `statuses`, goes by: the same
/// file sent again with the same map is the same import, while a map that reads it otherwise makes
/// another (an empty map adds nothing, so keys from before maps existed still match).
fn import_key(project_id: Uuid, format: ExportFormat, statuses: &StatusMap, file: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(project_id.as_bytes());
    digest.update(format.as_str().as_bytes());
    for (name, status) in statuses.entries() {
        // Length-prefixed, so no two maps hash alike whatever their names hold.
        digest.update([1]);
        digest.update((name.len() as u64).to_be_bytes());
        digest.update(name.as_bytes());
        digest.update(status.as_str().as_bytes());
    }
    digest.update([0]);
    digest.update(file);
    digest.finalize().into()
}

fn corrupt(job: &Job) -> AppError {
    AppError::Internal(anyhow::anyhow!("job {} has an invalid spec", job.id))
}

/// The spec of an import job.
pub(super) fn import_spec_of(job: &Job) -> Result<ImportSpec> {
    serde_json::from_str(&job.spec).map_err(|_| corrupt(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Status)]) -> StatusMap {
        StatusMap::new(pairs.iter().copied())
    }

    #[test]
    fn an_import_is_known_by_its_project_format_file_and_what_its_map_says() {
        let project = Uuid::now_v7();
        let file = b"title,status\r\nOne,Waiting\r\n";
        let key = |project, format, statuses: &StatusMap, file: &[u8]| import_key(project, format, statuses, file);
        let waiting = map(&[("Waiting", Status::InReview), ("Parked", Status::Backlog)]);
        let same = map(&[("  parked ", Status::Backlog), ("WAITING", Status::InReview)]);
        let base = key(project, ExportFormat::Csv, &waiting, file);
        assert_eq!(base, key(project, ExportFormat::Csv, &same, file), "names compared as the map compares them");
        for other in [
            key(project, ExportFormat::Csv, &map(&[("Waiting", Status::Todo), ("Parked", Status::Backlog)]), file),
            key(project, ExportFormat::Csv, &map(&[("Waiting", Status::InReview)]), file),
            key(project, ExportFormat::Csv, &map(&[]), file),
            key(project, ExportFormat::Json, &waiting, file),
            key(Uuid::now_v7(), ExportFormat::Csv, &waiting, file),
            key(project, ExportFormat::Csv, &waiting, b"title\r\nOne\r\n"),
        ] {
            assert_ne!(base, other);
        }
        // Without a map, the key is what it was before maps existed.
        let mut digest = Sha256::new();
        digest.update(project.as_bytes());
        digest.update(b"csv");
        digest.update([0]);
        digest.update(file);
        let before: [u8; 32] = digest.finalize().into();
        assert_eq!(key(project, ExportFormat::Csv, &map(&[]), file), before);
    }
}
