//! The JSON resources of the areas whose routes do not yet hold their own, translated from the
//! services' protobuf messages. A message the service should never send (a task without timestamps,
//! an unknown status) is a `500`: the client cannot fix it, and the cause is logged.

use axum::http::HeaderValue;
use ordo_proto::task::v1 as task_pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::{etag, malformed, optional_timestamp, timestamp};

/// Where a task stands. Entering `done` sets `completed_at`; leaving it clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not planned yet.
    Backlog,
    /// Planned (the default of a new task).
    Todo,
    /// Being worked on.
    InProgress,
    /// Waiting for review.
    InReview,
    /// Finished.
    Done,
    /// Given up.
    Cancelled,
}

/// Read from a string, so that any other JSON value (`null`, a number) is refused as the wrong type of
/// the field (`422` naming it) rather than as malformed JSON, which is what serde's enums report.
impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::ALL.into_iter().find(|value| value.as_str() == text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status `{text}`, expected one of backlog, todo, in_progress, in_review, done, cancelled"
            ))
        })
    }
}

impl TaskStatus {
    /// Every status, in workflow order.
    pub(crate) const ALL: [Self; 6] =
        [Self::Backlog, Self::Todo, Self::InProgress, Self::InReview, Self::Done, Self::Cancelled];

    fn from_proto(status: i32) -> Result<Self, ApiError> {
        match task_pb::TaskStatus::try_from(status) {
            Ok(task_pb::TaskStatus::Backlog) => Ok(Self::Backlog),
            Ok(task_pb::TaskStatus::Todo) => Ok(Self::Todo),
            Ok(task_pb::TaskStatus::InProgress) => Ok(Self::InProgress),
            Ok(task_pb::TaskStatus::InReview) => Ok(Self::InReview),
            Ok(task_pb::TaskStatus::Done) => Ok(Self::Done),
            Ok(task_pb::TaskStatus::Cancelled) => Ok(Self::Cancelled),
            Ok(task_pb::TaskStatus::Unspecified) | Err(_) => Err(malformed("a task without a known status")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> task_pb::TaskStatus {
        match self {
            Self::Backlog => task_pb::TaskStatus::Backlog,
            Self::Todo => task_pb::TaskStatus::Todo,
            Self::InProgress => task_pb::TaskStatus::InProgress,
            Self::InReview => task_pb::TaskStatus::InReview,
            Self::Done => task_pb::TaskStatus::Done,
            Self::Cancelled => task_pb::TaskStatus::Cancelled,
        }
    }

    /// The API string (`in_progress`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Backlog => "backlog",
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::InReview => "in_review",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How urgent a task is, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    /// No priority (the default of a new task).
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

/// Read from a string, so that any other JSON value (`null`, a number) is refused as the wrong type of
/// the field (`422` naming it) rather than as malformed JSON, which is what serde's enums report.
impl<'de> Deserialize<'de> for TaskPriority {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::ALL.into_iter().find(|value| value.as_str() == text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown priority `{text}`, expected one of none, low, medium, high, urgent"
            ))
        })
    }
}

impl TaskPriority {
    /// Every priority, weakest first.
    pub(crate) const ALL: [Self; 5] = [Self::None, Self::Low, Self::Medium, Self::High, Self::Urgent];

    fn from_proto(priority: i32) -> Result<Self, ApiError> {
        match task_pb::TaskPriority::try_from(priority) {
            Ok(task_pb::TaskPriority::None) => Ok(Self::None),
            Ok(task_pb::TaskPriority::Low) => Ok(Self::Low),
            Ok(task_pb::TaskPriority::Medium) => Ok(Self::Medium),
            Ok(task_pb::TaskPriority::High) => Ok(Self::High),
            Ok(task_pb::TaskPriority::Urgent) => Ok(Self::Urgent),
            Ok(task_pb::TaskPriority::Unspecified) | Err(_) => Err(malformed("a task without a known priority")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> task_pb::TaskPriority {
        match self {
            Self::None => task_pb::TaskPriority::None,
            Self::Low => task_pb::TaskPriority::Low,
            Self::Medium => task_pb::TaskPriority::Medium,
            Self::High => task_pb::TaskPriority::High,
            Self::Urgent => task_pb::TaskPriority::Urgent,
        }
    }

    /// The API string (`urgent`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

/// A task of a project.
///
/// Values a task does not have (no description, no due date, no parent, ...) are `null`, never left
/// out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    /// The task id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub id: String,
    /// The project the task belongs to; it never changes.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub project_id: String,
    /// Counts up per project from 1, with no gaps or repeats, even under concurrent creates.
    #[schema(minimum = 1, example = 42)]
    pub number: i64,
    /// `<PROJECT_KEY>-<number>`; `GET /tasks/by-key/{key}` finds the task by it.
    #[schema(example = "ORDO-42")]
    pub key: String,
    /// 1 to 500 characters, trimmed.
    #[schema(example = "Add the Tasks routes to the gateway")]
    pub title: String,
    /// At most 100,000 characters; `null` when the task has none.
    #[schema(required = true, example = "Every route of API.md, with OpenAPI and tests.")]
    pub description: Option<String>,
    /// Where the task stands.
    pub status: TaskStatus,
    /// How urgent it is.
    pub priority: TaskPriority,
    /// The assigned users (members of the project), in the order given; at most 20.
    #[schema(example = json!(["0190b6a4-7c1e-7000-8000-000000000001"]))]
    pub assignee_ids: Vec<String>,
    /// Labels, de-duplicated, in the order given; at most 20 of 1 to 50 characters.
    #[schema(example = json!(["backend", "api"]))]
    pub labels: Vec<String>,
    /// When the task is due (RFC 3339, UTC); `null` when it has no due date.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub due_at: Option<OffsetDateTime>,
    /// When work on the task starts (RFC 3339, UTC); `null` when unset. Never after `due_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub start_at: Option<OffsetDateTime>,
    /// Estimated effort in minutes, 0 to 100,000; `null` when unset.
    #[schema(required = true, minimum = 0, maximum = 100000, example = 90)]
    pub estimate_minutes: Option<i32>,
    /// The parent task (same project; at most five levels deep); `null` for a top-level task.
    #[schema(required = true, format = Uuid)]
    pub parent_id: Option<String>,
    /// The user who created the task.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub reporter_id: String,
    /// The task's place in its project's board order: an opaque string; tasks sort by it bytewise
    /// (`sort=position`). Change it with `POST /tasks/{id}/move`, never by hand.
    #[schema(example = "a0")]
    pub position: String,
    /// When the task was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the task last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// When the task entered `done` (RFC 3339, UTC); `null` unless it is `done`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub completed_at: Option<OffsetDateTime>,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
}

impl Task {
    /// The task of a response that must carry one.
    pub(crate) fn from_proto(task: Option<task_pb::Task>) -> Result<Self, ApiError> {
        let task = task.ok_or_else(|| malformed("a response without its task"))?;
        Ok(Self {
            status: TaskStatus::from_proto(task.status)?,
            priority: TaskPriority::from_proto(task.priority)?,
            due_at: optional_timestamp(task.due_at)?,
            start_at: optional_timestamp(task.start_at)?,
            created_at: timestamp(task.created_at)?,
            updated_at: timestamp(task.updated_at)?,
            completed_at: optional_timestamp(task.completed_at)?,
            id: task.id,
            project_id: task.project_id,
            number: task.number,
            key: task.key,
            title: task.title,
            description: task.description,
            assignee_ids: task.assignee_ids,
            labels: task.labels,
            estimate_minutes: task.estimate_minutes,
            parent_id: task.parent_id,
            reporter_id: task.reporter_id,
            position: task.position,
            version: task.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of tasks, in the order `sort` asked for (ties broken by id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks of this page.
    pub items: Vec<Task>,
    /// Pass as `cursor` (with the same filters and sort) to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Why one task of a bulk update was left unchanged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkFailure {
    /// The task id, as given in `ids`.
    #[schema(example = "0190b6a4-7c1e-7000-8000-0000000000c2")]
    pub id: String,
    /// The HTTP status `PATCH /tasks/{id}` with the same patch would have answered for this task:
    /// `404` (no such task, or the caller may not see it), `403` (a `viewer`), `409` (archived
    /// project), `422` (the patch breaks a rule for this task, such as an assignee who is not a member
    /// of its project), ...
    #[schema(example = 404)]
    pub status: u16,
    /// Why, for humans.
    #[schema(example = "No task has this id.")]
    pub detail: String,
}

/// The outcome of a bulk update: every task given is in exactly one of the two lists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkUpdateResult {
    /// The tasks changed, as they are now, in the order of `ids`.
    pub updated: Vec<Task>,
    /// The tasks left unchanged, and why, in the order of `ids`.
    pub failed: Vec<BulkFailure>,
}

impl BulkUpdateResult {
    /// The JSON form of the task service's report.
    pub(crate) fn from_proto(response: task_pb::BulkUpdateTasksResponse) -> Result<Self, ApiError> {
        let updated =
            response.updated.into_iter().map(|task| Task::from_proto(Some(task))).collect::<Result<_, _>>()?;
        let failed = response
            .failed
            .into_iter()
            .map(|failure| BulkFailure {
                status: bulk_failure_status(tonic::Code::from_i32(failure.code)).as_u16(),
                id: failure.id,
                detail: failure.message,
            })
            .collect();
        Ok(Self { updated, failed })
    }
}

/// The status the single `PATCH` would have answered for a task that failed with `code`. A bulk
/// failure carries no field violations, but a patch refused for one task (an assignee who is not a
/// member of its project) is still a broken field rule: `422`, as the single `PATCH` answers.
fn bulk_failure_status(code: tonic::Code) -> axum::http::StatusCode {
    match code {
        tonic::Code::InvalidArgument => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        code => ApiError::from(tonic::Status::new(code, "")).status(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn proto_task() -> task_pb::Task {
        task_pb::Task {
            id: "0190b6a4-7c1e-7000-8000-0000000000c1".into(),
            project_id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            number: 42,
            key: "ORDO-42".into(),
            title: "T".into(),
            description: None,
            status: task_pb::TaskStatus::InProgress as i32,
            priority: task_pb::TaskPriority::Urgent as i32,
            assignee_ids: Vec::new(),
            labels: vec!["api".into()],
            due_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            start_at: None,
            estimate_minutes: None,
            parent_id: None,
            reporter_id: "0190b6a4-7c1e-7000-8000-000000000001".into(),
            position: "a0".into(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 5_000 }),
            updated_at: Some(prost_types::Timestamp { seconds: 1_714_564_801, nanos: 0 }),
            completed_at: None,
            version: 4,
        }
    }

    #[test]
    fn a_task_has_every_field_with_null_for_absent_values_and_lower_case_enums() {
        let task = Task::from_proto(Some(proto_task())).unwrap();

        let json = serde_json::to_value(&task).unwrap();

        assert_eq!(json["status"], "in_progress");
        assert_eq!(json["priority"], "urgent");
        assert_eq!(json["due_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["created_at"], "2024-05-01T12:00:00.000005Z");
        for field in ["description", "start_at", "estimate_minutes", "parent_id", "completed_at"] {
            assert_eq!(json[field], serde_json::Value::Null, "{field}");
        }
        assert_eq!(json.as_object().unwrap().len(), 20);
        assert_eq!(task.etag(), "\"4\"");
    }

    #[test]
    fn a_task_without_a_known_status_or_priority_is_a_backend_fault() {
        let no_status = task_pb::Task { status: task_pb::TaskStatus::Unspecified as i32, ..proto_task() };
        let no_priority = task_pb::Task { priority: 99, ..proto_task() };
        for task in [no_status, no_priority] {
            assert_eq!(
                Task::from_proto(Some(task)).unwrap_err().status(),
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            );
        }
    }

    #[test]
    fn a_bulk_failure_has_the_status_the_single_patch_would_have_answered() {
        use tonic::Code;
        for (code, status) in [
            (Code::NotFound, 404),
            (Code::PermissionDenied, 403),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 412),
            (Code::InvalidArgument, 422),
            (Code::Unavailable, 503),
        ] {
            let response = task_pb::BulkUpdateTasksResponse {
                updated: vec![proto_task()],
                failed: vec![task_pb::BulkFailure { id: "t".into(), code: code as i32, message: "why".into() }],
            };
            let result = serde_json::to_value(BulkUpdateResult::from_proto(response).unwrap()).unwrap();
            assert_eq!(
                result["failed"][0],
                serde_json::json!({"id": "t", "status": status, "detail": "why"}),
                "{code:?}"
            );
            assert_eq!(result["updated"][0]["key"], "ORDO-42");
        }
    }

    #[test]
    fn statuses_and_priorities_read_only_their_api_strings() {
        for status in TaskStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(serde_json::from_value::<TaskStatus>(json).unwrap(), status);
            assert_eq!(TaskStatus::from_proto(status.to_proto() as i32).unwrap(), status);
        }
        for priority in TaskPriority::ALL {
            let json = serde_json::to_value(priority).unwrap();
            assert_eq!(json, priority.as_str());
            assert_eq!(serde_json::from_value::<TaskPriority>(json).unwrap(), priority);
            assert_eq!(TaskPriority::from_proto(priority.to_proto() as i32).unwrap(), priority);
        }
        for bad in [serde_json::json!("DONE"), serde_json::json!(5), serde_json::Value::Null] {
            assert!(serde_json::from_value::<TaskStatus>(bad).is_err());
        }
    }
}
