//! `POST /tasks/bulk`: one patch applied to many tasks, each on its own, with every task's outcome in
//! the answer.

use axum::extract::State;
use ordo_proto::task::v1 as pb;

use super::types::{BulkUpdateBody, BulkUpdateResult};
use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{BoundedVec, Client, Json};
use crate::state::AppState;

/// Applies one patch to up to 100 tasks, each on its own.
///
/// Always `200` once the request itself is valid: every task given is reported either in `updated`
/// (as it is now) or in `failed`, where `status` is the HTTP status `PATCH /tasks/{id}` with the same
/// fields would have answered for that task (`404` for a task the caller may not see, `403` for a
/// viewer, `409` in an archived project, `422` for a rule the patch breaks for that task). Not
/// idempotent by key: applying the same patch twice leaves the same result.
#[utoipa::path(
    post,
    path = "/tasks/bulk",
    tag = "tasks",
    operation_id = "bulk_update_tasks",
    security(("bearer" = [])),
    request_body = BulkUpdateBody,
    responses(
        (status = 200, description = "Each task's outcome.", body = BulkUpdateResult),
        (status = 422, description = "`ids` is empty or longer than 100, or the patch itself breaks a rule (`errors` names the fields).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub(super) async fn bulk_update_tasks(
    State(state): State<AppState>,
    caller: Caller,
    client: Client,
    Json(body): Json<BulkUpdateBody>,
) -> Result<Json<BulkUpdateResult>, ApiError> {
    let BulkUpdateBody { ids, patch: bulk } = body;
    let mut patch = pb::TaskPatch::default();
    let mut paths = Vec::new();
    if let Some(status) = bulk.status {
        paths.push("status".to_owned());
        patch.status = status.to_proto() as i32;
    }
    if let Some(priority) = bulk.priority {
        paths.push("priority".to_owned());
        patch.priority = priority.to_proto() as i32;
    }
    if let Some(assignee_ids) = bulk.assignee_ids {
        paths.push("assignee_ids".to_owned());
        patch.assignee_ids = assignee_ids.map(BoundedVec::into_vec).unwrap_or_default();
    }
    if let Some(labels) = bulk.labels {
        paths.push("labels".to_owned());
        patch.labels = labels.map(BoundedVec::into_strings).unwrap_or_default();
    }
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::BulkUpdateTasksRequest {
            ids: ids.into_vec(),
            patch: Some(patch),
            update_mask: Some(prost_types::FieldMask { paths }),
            client: Some(client.for_task()),
        },
    );
    let result = state.task().bulk_update_tasks(request).await?.into_inner();
    Ok(Json(BulkUpdateResult::from_proto(result)?))
}
