//! The tonic server of `ordo.task.v1.ReportService`: report requests to use-case calls, reports to
//! protobuf.

use ordo_proto::task::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::report_service_server::ReportService as ReportRpc;
use prost::Message as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Translation, caller, time_of};
use crate::app::{AppError, EncodedPage, Flow, FlowEncoder, FlowRequest, TaskService};
use crate::domain::Breakdown;

/// The gRPC face of the reports of [`TaskService`].
#[derive(Debug, Clone)]
pub struct ReportGrpc {
    service: TaskService,
}

impl ReportGrpc {
    /// Serves `service`'s reports.
    pub fn new(service: TaskService) -> Self {
        Self { service }
    }
}

#[tonic::async_trait]
impl ReportRpc for ReportGrpc {
    async fn get_flow_report(
        &self,
        request: Request<pb::GetFlowReportRequest>,
    ) -> Result<Response<pb::GetFlowReportResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut t = Translation::default();
        let wanted = FlowRequest {
            from: t.take(time_of(r.from, "from")),
            to: t.take(time_of(r.to, "to")),
            project_id: r.project_id,
            interval: r.interval,
        };
        t.finish()?;
        match self.service.flow_report_encoded(&caller, &wanted, &FlowAnswers).await.map_err(status)? {
            EncodedPage::Fresh(response) => Ok(Response::new(response)),
            EncodedPage::Stored(bytes) => {
                pb::GetFlowReportResponse::decode(bytes.as_slice()).map(Response::new).map_err(|error| {
                    status(AppError::Internal(anyhow::anyhow!("a stored report does not decode: {error}")))
                })
            }
        }
    }
}

/// Flow reports as `GetFlowReport` answers them, and as the cache keeps them.
struct FlowAnswers;

impl FlowEncoder for FlowAnswers {
    type Response = pb::GetFlowReportResponse;

    fn respond(&self, project_id: Uuid, flow: Flow) -> Self::Response {
        pb::GetFlowReportResponse { report: Some(report(project_id.to_string(), flow)) }
    }

    fn encode(&self, response: &Self::Response) -> Vec<u8> {
        response.encode_to_vec()
    }
}

fn report(project_id: String, Flow { range, report }: Flow) -> pb::FlowReport {
    pb::FlowReport {
        project_id,
        from: Some(timestamp(range.start())),
        to: Some(timestamp(range.end())),
        interval: range.interval().as_str().to_owned(),
        intervals: report
            .intervals
            .into_iter()
            .map(|i| pb::FlowInterval {
                start: Some(timestamp(i.start)),
                end: Some(timestamp(i.end)),
                created: i.created,
                completed: i.completed,
                open: i.open,
                statuses: Some(status_counts(i.statuses)),
            })
            .collect(),
        cycle_time: Some(pb::CycleTime {
            count: report.cycle_time.count,
            p50_seconds: report.cycle_time.p50_seconds,
            p85_seconds: report.cycle_time.p85_seconds,
        }),
        overdue: report.overdue,
        by_assignee: report
            .by_assignee
            .into_iter()
            .map(|(assignee, counts)| pb::AssigneeFlow {
                assignee_id: assignee.map(|id| id.to_string()),
                counts: Some(counts_of(counts)),
            })
            .collect(),
        by_label: report
            .by_label
            .into_iter()
            .map(|(label, counts)| pb::LabelFlow { label, counts: Some(counts_of(counts)) })
            .collect(),
    }
}

fn counts_of(counts: Breakdown) -> pb::FlowCounts {
    pb::FlowCounts { created: counts.created, completed: counts.completed, open: counts.open, overdue: counts.overdue }
}

/// The counts of each status, in the order of `Status::ALL`.
fn status_counts(counts: [u64; 6]) -> pb::StatusCounts {
    let [backlog, todo, in_progress, in_review, done, cancelled] = counts;
    pb::StatusCounts { backlog, todo, in_progress, in_review, done, cancelled }
}
