//! Background jobs of a project: an export of its tasks, or an import of tasks from a file. A request queues a job; one instance at a
//! time runs it, holding it under a lease that it renews as it goes; it ends done (with its result),
//! failed (with a reason for its requester) or cancelled by its requester. An instance that dies
//! mid-run leaves its lease to run out, and another instance runs the job again from the start, as a
//! new attempt: only the attempt that holds the job may record progress or an end.

use std::borrow::Cow;

use time::OffsetDateTime;
use uuid::Uuid;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for an instance to take it.
    Queued,
    /// An instance is running it.
    Running,
    /// Finished, with its result.
    Done,
    /// Ended without a result; [`Job::error`] says why.
    Failed,
    /// Its requester cancelled it before it ended.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job has ended: nothing changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// The file an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// RFC 4180, a header row, UTF-8; cells that a spreadsheet would read as a formula are escaped
    /// ([`neutralise_formula`]).
    Csv,
    /// One JSON array of tasks, each in the API's shape.
    Json,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(ExportFormat::Csv),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    /// The media type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Writes a project's tasks (those a filter keeps) to a file.
    Export,
    /// Creates tasks in a project from a file.
    Import,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Export => "export",
            JobKind::Import => "import",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "export" => Some(JobKind::Export),
            "import" => Some(JobKind::Import),
            _ => None,
        }
    }
}

/// The file a finished export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// Its key in object storage.
    pub object_key: String,
    pub size_bytes: u64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    pub project_id: Uuid,
    /// Who asked for it; the only user who sees it.
    pub requester_id: Uuid,
    pub kind: JobKind,
    /// What to do, as the use case that runs it wrote it.
    pub spec: String,
    pub state: JobState,
    /// Claims so far: the running attempt's number (0 while queued).
    pub attempt: u32,
    pub rows_done: u64,
    /// How many rows the running attempt found to do; `None` until it has counted.
    pub rows_total: Option<u64>,
    pub result: Option<JobResult>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

impl Job {
    /// A new job, queued.
    pub fn queue(
        id: Uuid,
        project_id: Uuid,
        requester_id: Uuid,
        kind: JobKind,
        spec: String,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            project_id,
            requester_id,
            kind,
            spec,
            state: JobState::Queued,
            attempt: 0,
            rows_done: 0,
            rows_total: None,
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    /// Where the result of `attempt` of an export in `format` is kept: every attempt writes an object
    /// of its own, so one taken over never mixes its rows with the next one's.
    pub fn object_key(&self, attempt: u32, format: ExportFormat) -> String {
        format!("exports/{}/{}/{attempt}.{}", self.project_id, self.id, format.as_str())
    }
}

/// The longest failure reason kept, in characters.
pub const MAX_JOB_ERROR_CHARS: usize = 1000;

/// `reason` cut to [`MAX_JOB_ERROR_CHARS`].
pub fn job_error(reason: &str) -> String {
    reason.chars().take(MAX_JOB_ERROR_CHARS).collect()
}

/// A CSV cell as a spreadsheet will not run it: a cell that starts with `=`, `+`, `-`, `@`, a tab or
/// a carriage return is read as a formula by Excel, LibreOffice and Google Sheets, so it gets a
/// leading `'`, as OWASP's "CSV Injection" advises (the quoting of separators and quotes is the CSV
/// writer's). A cell that starts with `'` gets one more, so [`restore_formula`] gives every cell back
/// exactly. Other cells are left as they are.
pub fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// The cell [`neutralise_formula`] was given: one leading `'` less.
pub fn restore_formula(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_reads_as_formulas_get_a_leading_quote() {
        for cell in ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "=HYPERLINK(\"http://x\")"] {
            assert_eq!(neutralise_formula(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn other_cells_are_left_as_they_are() {
        for cell in ["", "plain", "a=b", " =1", "1-2", "ÄÖ", "\"=1\""] {
            assert!(matches!(neutralise_formula(cell), Cow::Borrowed(c) if c == cell), "{cell:?}");
        }
    }

    #[test]
    fn every_cell_is_given_back_exactly() {
        for cell in ["=1+2", "'=1+2", "'quoted", "''", "'", "plain", "", "-", "@@"] {
            assert_eq!(restore_formula(&neutralise_formula(cell)), cell, "{cell:?}");
        }
        assert_eq!(neutralise_formula("'quoted"), "''quoted");
    }

    #[test]
    fn names_round_trip() {
        for state in [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled] {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        for format in [ExportFormat::Csv, ExportFormat::Json] {
            assert_eq!(ExportFormat::parse(format.as_str()), Some(format));
        }
        for kind in [JobKind::Export, JobKind::Import] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobState::parse("Done"), None);
        assert_eq!(ExportFormat::parse("xlsx"), None);
    }

    #[test]
    fn only_done_failed_and_cancelled_are_final() {
        assert!(!JobState::Queued.is_final() && !JobState::Running.is_final());
        assert!(JobState::Done.is_final() && JobState::Failed.is_final() && JobState::Cancelled.is_final());
    }

    #[test]
    fn each_attempt_writes_an_object_of_its_own() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let job =
            Job::queue(Uuid::from_u128(2), Uuid::from_u128(1), Uuid::from_u128(3), JobKind::Export, "{}".into(), now);
        assert_ne!(job.object_key(1, ExportFormat::Csv), job.object_key(2, ExportFormat::Csv));
        assert!(job.object_key(1, ExportFormat::Json).ends_with("/1.json"));
        assert!(job.object_key(1, ExportFormat::Csv).starts_with(&format!("exports/{}/{}/", job.project_id, job.id)));
    }

    #[test]
    fn a_long_reason_is_cut_to_its_limit() {
        assert_eq!(job_error(&"é".repeat(MAX_JOB_ERROR_CHARS + 5)).chars().count(), MAX_JOB_ERROR_CHARS);
        assert_eq!(job_error("short"), "short");
    }
}
