//! The tonic server of `ordo.audit.v1.AuditService`: translation and error mapping only.

use ordo_auth::caller;
use ordo_proto::audit::v1 as pb;
use ordo_proto::time::{offset_date_time, timestamp};
use ordo_service::status;
use pb::audit_service_server::AuditService as AuditRpc;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::app::{AuditQueries, RecordFilter};
use crate::domain::Record;

/// The gRPC face of [`AuditQueries`].
#[derive(Debug, Clone)]
pub struct AuditGrpc {
    queries: AuditQueries,
}

impl AuditGrpc {
    /// Serves `queries`.
    pub fn new(queries: AuditQueries) -> Self {
        Self { queries }
    }
}

fn time(field: &'static str, value: Option<prost_types::Timestamp>) -> Result<Option<OffsetDateTime>, Status> {
    value
        .map(|t| offset_date_time(&t).ok_or_else(|| ordo_platform::grpc::invalid_fields([(field, "is out of range")])))
        .transpose()
}

fn record(record: Record) -> pb::Record {
    let e = record.entry;
    pb::Record {
        id: e.id.to_string(),
        seq: record.seq,
        occurred_at: Some(timestamp(e.occurred_at)),
        action: e.action,
        actor_id: e.actor_id,
        entity_type: e.entity_type,
        entity_id: e.entity_id,
        project_id: e.project_id,
        ip: e.ip,
        user_agent: e.user_agent,
        data_json: e.data,
        prev_hash: hex::encode(record.prev_hash),
        hash: hex::encode(record.hash),
        producer: e.producer,
    }
}

#[tonic::async_trait]
impl AuditRpc for AuditGrpc {
    async fn list_records(
        &self,
        request: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let authorization = ordo_auth::authorization(&request)?;
        let r = request.into_inner();
        let filter = RecordFilter {
            actor_id: r.actor_id,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            project_id: r.project_id,
            from: time("from", r.from)?,
            to: time("to", r.to)?,
        };
        let wanted = r.page.unwrap_or_default();
        let page = self
            .queries
            .list_records(&caller, &authorization, filter, wanted.limit, &wanted.cursor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListRecordsResponse {
            records: page.records.into_iter().map(record).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogResponse>, Status> {
        let caller = caller(&request)?;
        let part = request.get_ref();
        let checked = self.queries.verify_log(caller, part.limit, &part.cursor).await.map_err(status)?;
        let verdict = checked.verdict;
        Ok(Response::new(pb::VerifyLogResponse {
            ok: verdict.ok(),
            checked: verdict.checked,
            first_bad_seq: verdict.first_bad_seq,
            anchor_seq: verdict.anchor.as_ref().map(|anchor| anchor.seq),
            anchor_prev_hash: verdict.anchor.map(|anchor| hex::encode(anchor.prev_hash)).unwrap_or_default(),
            next_cursor: checked.next_cursor.unwrap_or_default(),
        }))
    }
}
