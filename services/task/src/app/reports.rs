//! Reports on a project's tasks, answered on request: the flow report (created, completed and open
//! per interval, cycle time, overdue, by assignee and by label) from the tasks and their status
//! history.
//!
//! A report is kept in the page cache beside the project's list pages, under the same generation:
//! every change to the project's tasks makes it stale at once. What changes with time alone — a due
//! date passing makes a task overdue — is why the key also holds the minute it was computed in: a
//! cached report is at most a minute behind the clock, never behind a change.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::request::Caller;
use super::service::TaskService;
use super::shared::{EncodedPage, NO_PROJECT, id_of, now};
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

/// How the gRPC layer answers with a flow report, and the bytes the cache keeps of that answer.
pub trait FlowEncoder: Send + Sync {
    /// What the caller answers with.
    type Response: Send;
    /// The answer for a report of `project_id` just computed.
    fn respond(&self, project_id: Uuid, flow: Flow) -> Self::Response;
    /// The bytes of `response` as the cache keeps them; a hit hands them back as
    /// [`EncodedPage::Stored`].
    fn encode(&self, response: &Self::Response) -> Vec<u8>;
}

/// How long a cached report may lag the clock (never a change): the span of its key's time.
const REPORT_CLOCK_SECS: i64 = 60;

impl TaskService {
    /// The flow report of a project the caller may read (any role), encoded by `encoder`: from the
    /// cache while the project is unchanged since it was computed in the same minute, else computed
    /// now (and stored).
    ///
    /// # Errors
    ///
    /// `NotFound` for a project the caller may not see; `Invalid` naming a bad `interval`, `to` or
    /// `from`; `Conflict` for a project too large to report on request; what the store answers.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %request.project_id))]
    pub async fn flow_report_encoded<E: FlowEncoder>(
        &self,
        caller: &Caller,
        request: &FlowRequest,
        encoder: &E,
    ) -> Result<EncodedPage<E::Response>> {
        let project_id: Uuid = id_of(&request.project_id, NO_PROJECT)?;
        let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_PROJECT))?;

        let now = now();
        let range = flow_range(request, now)?;
        let compute = async {
            let (tasks, history) = self.store.flow_facts(project_id, range.end()).await?;
            let report = FlowReport::compute(&range, &tasks, &history, now);
            Ok(encoder.respond(project_id, Flow { range: range.clone(), report }))
        };
        let Some(pages) = &self.pages else {
            return compute.await.map(EncodedPage::Fresh);
        };
        let key = format!(
            "flow:{}:{}:{}:{}",
            range.interval().as_str(),
            range.start().unix_timestamp(),
            range.end().unix_timestamp(),
            now.unix_timestamp().div_euclid(REPORT_CLOCK_SECS)
        );
        Self::through_cache(pages, project_id, &key, compute, |response| encoder.encode(response)).await
    }
}

/// The range `request` asks for, its defaults taken from `now`.
fn flow_range(request: &FlowRequest, now: OffsetDateTime) -> Result<FlowRange> {
    let interval = match request.interval.as_str() {
        "" => Interval::Week,
        name => Interval::parse(name).ok_or_else(|| AppError::field("interval", "must be day, week or month"))?,
    };
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
    FlowRange::new(from, to, interval).map_err(|v| AppError::Invalid(vec![v]))
}
