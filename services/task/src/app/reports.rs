//! Reports on a project's tasks, answered on request: the flow report (created, completed and open
//! per interval, cycle time, overdue, by assignee and by label) from the tasks and their status
//! history.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::request::Caller;
use super::service::TaskService;
use super::shared::{NO_PROJECT, id_of, now};
use super::{AppError, Result};
use crate::domain::{FlowRange, FlowReport, Interval};

/// The most tasks of a project a report reads on request.
pub const MAX_REPORT_TASKS: u32 = 50_000;
/// The most status changes of a project a report reads on request.
pub const MAX_REPORT_CHANGES: u32 = 250_000;

/// A flow report as requested; what is left out takes its default: 12 weeks, 30 days or 12 months
/// up to now.
#[derive(Debug, Clone, Default)]
pub struct FlowRequest {
    pub project_id: String,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// `day`, `week` or `month`; empty for `week`.
    pub interval: String,
}

/// A flow report and the range it covers.
#[derive(Debug, Clone)]
pub struct Flow {
    pub range: FlowRange,
    pub report: FlowReport,
}

impl TaskService {
    /// The flow report of a project the caller may read (any role).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %request.project_id))]
    pub async fn flow_report(&self, caller: &Caller, request: &FlowRequest) -> Result<Flow> {
        let project_id: Uuid = id_of(&request.project_id, NO_PROJECT)?;
        let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_PROJECT))?;

        let interval = match request.interval.as_str() {
            "" => Interval::Week,
            name => Interval::parse(name).ok_or_else(|| AppError::field("interval", "must be day, week or month"))?,
        };
        let now = now();
        let to = request.to.unwrap_or(now);
        let from = request.from.unwrap_or_else(|| {
            let span = match interval {
                Interval::Day => Duration::days(30),
                Interval::Week => Duration::weeks(12),
                Interval::Month => Duration::days(365),
            };
            // At the calendar's start there is nothing before `to`: the range is then refused.
            to.checked_sub(span).unwrap_or(to)
        });
        let range = FlowRange::new(from, to, interval).map_err(|v| AppError::Invalid(vec![v]))?;
        let (tasks, history) = self.store.flow_facts(project_id, range.end()).await?;
        let report = FlowReport::compute(&range, &tasks, &history, now);
        Ok(Flow { range, report })
    }
}
