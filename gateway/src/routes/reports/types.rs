//! The JSON of a project's reports: the query the flow report reads and the report it answers with,
//! translated from the task service's messages.

use ordo_proto::task::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::routes::representation::{malformed, timestamp};

/// `GET /projects/{id}/reports/flow` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FlowParams {
    /// The range's start (RFC 3339; encode a `+` offset as `%2B`): the interval holding it is the
    /// first. Default: 30 days, 12 weeks or 365 days before `to`, by `interval`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-09-07T00:00:00Z")]
    pub(super) from: Option<String>,
    /// The range's end (RFC 3339), after `from`: the interval holding the instant before it is the
    /// last. Default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    pub(super) to: Option<String>,
    /// `day`, `week` (the default) or `month`: whole UTC days, ISO weeks from Monday 00:00 UTC, or
    /// calendar months. Any other value is a `400`. A range holds at most 400 intervals (`422` on
    /// `from` otherwise).
    #[param(value_type = Option<String>, pattern = "^(day|week|month)$", example = "week")]
    pub(super) interval: Option<String>,
}

/// How work flowed through a project over a range of whole intervals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlowReport {
    /// The project.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: String,
    /// The first interval's start (RFC 3339, UTC): `from` rounded down to its interval.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) from: OffsetDateTime,
    /// The last interval's end (RFC 3339, UTC; excluded).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) to: OffsetDateTime,
    /// `day`, `week` or `month`.
    #[schema(example = "week")]
    pub(crate) interval: String,
    /// Every interval of the range, oldest first.
    pub(crate) intervals: Vec<FlowInterval>,
    /// How long tasks took from first in progress to done.
    pub(crate) cycle_time: CycleTime,
    /// Tasks neither `done` nor `cancelled` whose due date has passed, now.
    pub(crate) overdue: u64,
    /// The counts by current assignee, most open tasks first (then most completed); at most 50.
    /// A task with several assignees counts for each; `assignee_id` `null` gathers the tasks with none.
    pub(crate) by_assignee: Vec<AssigneeFlow>,
    /// The counts by current label, most open tasks first (then most completed); at most 50.
    pub(crate) by_label: Vec<LabelFlow>,
}

/// One interval of a flow report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlowInterval {
    /// Its start (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) start: OffsetDateTime,
    /// Its end (RFC 3339, UTC; excluded).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) end: OffsetDateTime,
    /// Tasks created in it.
    pub(crate) created: u64,
    /// Times a task became `done` in it (a task done, reopened and done again counts twice).
    pub(crate) completed: u64,
    /// Tasks neither `done` nor `cancelled` at its end (now, for an interval not over yet).
    pub(crate) open: u64,
    /// Tasks in each status at its end (now, for an interval not over yet): the bands of a
    /// cumulative flow diagram. The first four add up to `open`.
    pub(crate) statuses: StatusCounts,
}

/// How many tasks were in each status at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub(crate) struct StatusCounts {
    pub(crate) backlog: u64,
    pub(crate) todo: u64,
    pub(crate) in_progress: u64,
    pub(crate) in_review: u64,
    pub(crate) done: u64,
    pub(crate) cancelled: u64,
}

impl StatusCounts {
    /// Every status's name and count, in the order of a task's way to done, then `cancelled`.
    pub(crate) fn bands(&self) -> [(&'static str, u64); 6] {
        [
            ("backlog", self.backlog),
            ("todo", self.todo),
            ("in_progress", self.in_progress),
            ("in_review", self.in_review),
            ("done", self.done),
            ("cancelled", self.cancelled),
        ]
    }
}

/// How long tasks took from first in progress to done, over the completions in the range whose task
/// had been `in_progress` before (since it was created or last done).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CycleTime {
    /// Completions measured.
    pub(crate) count: u64,
    /// The median, in seconds (nearest rank); `null` without completions.
    #[schema(required = true, example = 302_400)]
    pub(crate) p50_seconds: Option<i64>,
    /// The 85th percentile, in seconds (nearest rank); `null` without completions.
    #[schema(required = true, example = 604_800)]
    pub(crate) p85_seconds: Option<i64>,
}

/// The counts of one assignee or label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FlowCounts {
    /// Tasks created in the range.
    pub(crate) created: u64,
    /// Times a task became `done` in the range.
    pub(crate) completed: u64,
    /// Tasks open now.
    pub(crate) open: u64,
    /// Open tasks past their due date now.
    pub(crate) overdue: u64,
}

/// The counts of the tasks assigned to one user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AssigneeFlow {
    /// The user; `null` for the tasks with no assignee.
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) assignee_id: Option<String>,
    #[serde(flatten)]
    pub(crate) counts: FlowCounts,
}

/// The counts of the tasks carrying one label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LabelFlow {
    #[schema(example = "bug")]
    pub(crate) label: String,
    #[serde(flatten)]
    pub(crate) counts: FlowCounts,
}

impl FlowReport {
    /// The report the task service answered.
    pub(crate) fn from_proto(report: Option<pb::FlowReport>) -> Result<Self, ApiError> {
        let report = report.ok_or_else(|| malformed("a response without its report"))?;
        let cycle = report.cycle_time.unwrap_or_default();
        Ok(Self {
            project_id: report.project_id,
            from: timestamp(report.from)?,
            to: timestamp(report.to)?,
            interval: report.interval,
            intervals: report
                .intervals
                .into_iter()
                .map(|i| {
                    Ok(FlowInterval {
                        start: timestamp(i.start)?,
                        end: timestamp(i.end)?,
                        created: i.created,
                        completed: i.completed,
                        open: i.open,
                        statuses: i.statuses.map(status_counts).unwrap_or_default(),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            cycle_time: CycleTime {
                count: cycle.count,
                p50_seconds: cycle.p50_seconds,
                p85_seconds: cycle.p85_seconds,
            },
            overdue: report.overdue,
            by_assignee: report
                .by_assignee
                .into_iter()
                .map(|a| AssigneeFlow { assignee_id: a.assignee_id, counts: counts(a.counts) })
                .collect(),
            by_label: report
                .by_label
                .into_iter()
                .map(|l| LabelFlow { label: l.label, counts: counts(l.counts) })
                .collect(),
        })
    }
}

fn counts(counts: Option<pb::FlowCounts>) -> FlowCounts {
    let counts = counts.unwrap_or_default();
    FlowCounts { created: counts.created, completed: counts.completed, open: counts.open, overdue: counts.overdue }
}

fn status_counts(counts: pb::StatusCounts) -> StatusCounts {
    StatusCounts {
        backlog: counts.backlog,
        todo: counts.todo,
        in_progress: counts.in_progress,
        in_review: counts.in_review,
        done: counts.done,
        cancelled: counts.cancelled,
    }
}
