//! The JSON resources the API answers with, translated from the services' protobuf messages. A
//! message the service should never send (a user without timestamps, an unknown role) is a `500`:
//! the client cannot fix it, and the cause is logged.

use axum::http::HeaderValue;
use ordo_proto::audit::v1 as audit_pb;
use ordo_proto::project::v1 as project_pb;
use ordo_proto::task::v1 as task_pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::{etag, malformed, non_empty, optional_timestamp, timestamp};

/// A role in a project, strongest first. Each role may do what the weaker ones may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// Also archives, unarchives and deletes the project, and grants, changes and removes `owner`.
    Owner,
    /// Also changes the project's name and description and manages the members below `owner`.
    Admin,
    /// Also creates and edits tasks and comments.
    Member,
    /// Reads the project, its members and its tasks.
    Viewer,
}

impl ProjectRole {
    fn from_proto(role: i32) -> Result<Self, ApiError> {
        match project_pb::ProjectRole::try_from(role) {
            Ok(project_pb::ProjectRole::Owner) => Ok(Self::Owner),
            Ok(project_pb::ProjectRole::Admin) => Ok(Self::Admin),
            Ok(project_pb::ProjectRole::Member) => Ok(Self::Member),
            Ok(project_pb::ProjectRole::Viewer) => Ok(Self::Viewer),
            Ok(project_pb::ProjectRole::Unspecified) | Err(_) => Err(malformed("a member without a known role")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> project_pb::ProjectRole {
        match self {
            Self::Owner => project_pb::ProjectRole::Owner,
            Self::Admin => project_pb::ProjectRole::Admin,
            Self::Member => project_pb::ProjectRole::Member,
            Self::Viewer => project_pb::ProjectRole::Viewer,
        }
    }
}

/// A project: the home of tasks, and the unit of membership.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Project {
    /// The project id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub id: String,
    /// `^[A-Z][A-Z0-9]{1,9}$`, unique across projects; prefixes the keys of its tasks (`ORDO-42`).
    #[schema(pattern = "^[A-Z][A-Z0-9]{1,9}$", example = "ORDO")]
    pub key: String,
    /// 1 to 200 characters.
    #[schema(example = "Ordo backend")]
    pub name: String,
    /// At most 10,000 characters; `null` when the project has none.
    #[schema(required = true, example = "The services and the gateway.")]
    pub description: Option<String>,
    /// An archived project is read-only: every task write in it answers `409`.
    pub archived: bool,
    /// The user who created the project (its first owner).
    #[schema(format = Uuid)]
    pub created_by: String,
    /// When the project was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the project last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
}

impl Project {
    /// The project of a response that must carry one.
    pub(crate) fn from_proto(project: Option<project_pb::Project>) -> Result<Self, ApiError> {
        let project = project.ok_or_else(|| malformed("a response without its project"))?;
        Ok(Self {
            created_at: timestamp(project.created_at)?,
            updated_at: timestamp(project.updated_at)?,
            id: project.id,
            key: project.key,
            name: project.name,
            description: project.description,
            archived: project.archived,
            created_by: project.created_by,
            version: project.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of projects, sorted by name, then id.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectPage {
    /// The projects of this page.
    pub items: Vec<Project>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A user's membership of a project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    /// The member's user id.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub user_id: String,
    /// The member's role in the project.
    pub role: ProjectRole,
    /// When the user became a member (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
    /// Increases on every change of the membership; sent as `ETag: "<version>"`, checked against
    /// `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
    /// The account is disabled: it keeps its membership but cannot act.
    pub user_disabled: bool,
}

impl Member {
    /// The member of a response that must carry one.
    pub(crate) fn from_proto(member: Option<project_pb::Member>) -> Result<Self, ApiError> {
        let member = member.ok_or_else(|| malformed("a response without its member"))?;
        Ok(Self {
            role: ProjectRole::from_proto(member.role)?,
            added_at: timestamp(member.added_at)?,
            user_id: member.user_id,
            version: member.version,
            user_disabled: member.user_disabled,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of a project's members, oldest membership first (by `added_at`, then user id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberPage {
    /// The members of this page.
    pub items: Vec<Member>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One record of the audit log: one domain or security event, placed in the log's SHA-256 hash chain.
///
/// Values the event did not carry (no actor for the system, no project, no client address) are `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    /// The event's id (UUID v7); each event is recorded once.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000e1")]
    pub id: String,
    /// The record's position in the chain: 1, 2, 3, ... with no gap. Lists are sorted by it.
    #[schema(minimum = 1, example = 42)]
    pub seq: u64,
    /// When the event happened (RFC 3339, UTC, to the microsecond).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    /// The event type, `<context>.<event>`: `identity.user_registered`, `identity.login_succeeded`,
    /// `identity.login_failed`, `identity.session_revoked`, `identity.refresh_reuse_detected`,
    /// `identity.password_changed`, `identity.user_role_changed`, `identity.user_disabled`,
    /// `project.created`, `project.updated`, `project.archived`, `project.unarchived`, `project.deleted`,
    /// `project.member_added`, `project.member_role_changed`, `project.member_removed`, and those of
    /// services to come.
    #[schema(example = "project.member_added")]
    pub action: String,
    /// The user who caused the event; `null` for the system, and for a failed login with an unknown
    /// email.
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub actor_id: Option<String>,
    /// The service that announced the event (`identity`, `project`, ...).
    #[schema(example = "project")]
    pub producer: String,
    /// What the event is about: `user`, `session`, `project`, `project_member`, ...
    #[schema(example = "project_member")]
    pub entity_type: String,
    /// Its id (for a `project_member`, the member's user id); `null` when there is none, such as a
    /// failed login with an unknown email.
    #[schema(required = true, example = "0190b6a4-7c1e-7000-8000-000000000002")]
    pub entity_id: Option<String>,
    /// The project the event belongs to; `null` for events outside projects (accounts, sessions).
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub project_id: Option<String>,
    /// The client's address as the gateway saw it; `null` when the event was not caused by a request.
    #[schema(required = true, example = "203.0.113.7")]
    pub ip: Option<String>,
    /// The client's `User-Agent` (at most 512 characters); `null` when it sent none.
    #[schema(required = true, example = "ordo-web/1.4")]
    pub user_agent: Option<String>,
    /// The event's own fields: one member named after the event (`userRegistered`, `loginFailed`,
    /// `projectMemberAdded`, ...) holding its fields in protobuf's JSON mapping (camelCase names, 64-bit
    /// integers as strings, fields at their default value left out), such as
    /// `{"loginFailed": {"email": "alice@example.com", "userId": "0190...", "reason": "bad_credentials"}}`;
    /// `{}` for an event the audit service could not read.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The `hash` of record `seq - 1`, lower-case hex; 64 zeros for record 1.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub prev_hash: String,
    /// SHA-256 of the record's canonical bytes, lower-case hex: `prev_hash` is inside them, so each
    /// record seals the whole log before it, and a record edited, removed or inserted breaks the chain
    /// from there on (`GET /audit/verify` finds where).
    ///
    /// The canonical bytes (version 1; the reference is the audit service's
    /// `services/audit/src/domain/record.rs`) are, in order: the 13 ASCII bytes `ordo-audit-v1`;
    /// `seq` as 8 bytes big-endian; `prev_hash` as its 32 bytes; `id` as the UUID's 16 bytes;
    /// `occurred_at` as microseconds since the Unix epoch, 8 bytes big-endian signed; then `action`,
    /// `actor_id`, `producer`, `entity_type`, `entity_id`, `project_id`, `ip`, `user_agent` and `data`,
    /// each as its length in bytes (4 bytes big-endian) followed by its UTF-8 bytes. A `null` here is
    /// the empty string there, and `data` is the compact JSON text of the `data` member (no whitespace,
    /// members in the order served).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

impl AuditRecord {
    /// The JSON form of a record of the audit service.
    pub(crate) fn from_proto(record: audit_pb::Record) -> Result<Self, ApiError> {
        let data: serde_json::Value =
            serde_json::from_str(&record.data_json).map_err(|_| malformed("an audit record whose data is not JSON"))?;
        if !data.is_object() {
            return Err(malformed("an audit record whose data is not a JSON object"));
        }
        Ok(Self {
            occurred_at: timestamp(record.occurred_at)?,
            id: record.id,
            seq: record.seq,
            action: record.action,
            actor_id: non_empty(record.actor_id),
            producer: record.producer,
            entity_type: record.entity_type,
            entity_id: non_empty(record.entity_id),
            project_id: non_empty(record.project_id),
            ip: non_empty(record.ip),
            user_agent: non_empty(record.user_agent),
            data,
            prev_hash: record.prev_hash,
            hash: record.hash,
        })
    }
}

/// A page of audit records, by `seq` ascending.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecordPage {
    /// The records of this page, by `seq`.
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The outcome of recomputing the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditVerification {
    /// `true` when every record's `hash` matches its canonical bytes, every `prev_hash` is the `hash`
    /// of the record before, and `seq` runs from 1 with no gap.
    pub ok: bool,
    /// How many records were checked (all of them when `ok`).
    #[schema(example = 1234)]
    pub checked: u64,
    /// The first record that was edited, unlinked or is missing; present only when `ok` is `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, example = 17)]
    pub first_bad_seq: Option<u64>,
    /// Where the check started: the lowest `seq` present and its `prev_hash`. `seq` is 1 (and
    /// `prev_hash` 64 zeros) unless older records were archived by partition; then `prev_hash` must
    /// equal the `hash` of the archived segment's last record. Absent while the log is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub anchor: Option<AuditAnchor>,
}

/// The first record a verification checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditAnchor {
    #[schema(minimum = 1, example = 1)]
    pub seq: u64,
    /// Lower-case hex SHA-256.
    #[schema(example = "0000000000000000000000000000000000000000000000000000000000000000")]
    pub prev_hash: String,
}

impl AuditVerification {
    /// The JSON form of the audit service's verdict.
    pub(crate) fn from_proto(verdict: audit_pb::VerifyLogResponse) -> Self {
        Self {
            ok: verdict.ok,
            checked: verdict.checked,
            first_bad_seq: verdict.first_bad_seq,
            anchor: verdict.anchor_seq.map(|seq| AuditAnchor { seq, prev_hash: verdict.anchor_prev_hash }),
        }
    }
}

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

/// A comment on a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    /// The comment id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000d1")]
    pub id: String,
    /// The task it is on.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub task_id: String,
    /// The user who wrote it; only they may edit it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub author_id: String,
    /// 1 to 20,000 characters.
    #[schema(example = "Looks good to me.")]
    pub body: String,
    /// When the comment was written (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the comment was last edited (RFC 3339, UTC); `created_at` when never edited.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Increases on every edit; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
}

impl Comment {
    /// The comment of a response that must carry one.
    pub(crate) fn from_proto(comment: Option<task_pb::Comment>) -> Result<Self, ApiError> {
        let comment = comment.ok_or_else(|| malformed("a response without its comment"))?;
        Ok(Self {
            created_at: timestamp(comment.created_at)?,
            updated_at: timestamp(comment.updated_at)?,
            id: comment.id,
            task_id: comment.task_id,
            author_id: comment.author_id,
            body: comment.body,
            version: comment.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of a task's comments, oldest first (by `created_at`, then id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommentPage {
    /// The comments of this page.
    pub items: Vec<Comment>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A file attached to a task. Attachments never change, so they have no `version`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attachment {
    /// The attachment id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub id: String,
    /// The task it is attached to.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub task_id: String,
    /// The file name the client sent (1 to 255 characters, without path separators).
    #[schema(example = "design.pdf")]
    pub filename: String,
    /// The media type the client declared for the part; `application/octet-stream` when it declared
    /// none.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// The size in bytes.
    #[schema(minimum = 0, example = 48213)]
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the bytes.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// The user who uploaded it; they (and the project's admins and owners) may delete it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub uploaded_by: String,
    /// When it was uploaded (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl Attachment {
    /// The attachment of a response that must carry one.
    pub(crate) fn from_proto(attachment: Option<task_pb::Attachment>) -> Result<Self, ApiError> {
        let attachment = attachment.ok_or_else(|| malformed("a response without its attachment"))?;
        Ok(Self {
            created_at: timestamp(attachment.created_at)?,
            id: attachment.id,
            task_id: attachment.task_id,
            filename: attachment.filename,
            content_type: attachment.content_type,
            size_bytes: attachment.size_bytes,
            sha256: attachment.sha256,
            uploaded_by: attachment.uploaded_by,
        })
    }
}

/// A page of a task's attachments, oldest first (by `created_at`, then id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentPage {
    /// The attachments of this page.
    pub items: Vec<Attachment>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn proto_project() -> project_pb::Project {
        project_pb::Project {
            id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            key: "ORDO".into(),
            name: "Ordo".into(),
            description: None,
            archived: false,
            created_by: "0190b6a4-7c1e-7000-8000-000000000001".into(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 5_000 }),
            updated_at: Some(prost_types::Timestamp { seconds: 1_714_564_801, nanos: 0 }),
            version: 2,
        }
    }

    #[test]
    fn a_project_without_a_description_has_a_null_one() {
        let project = Project::from_proto(Some(proto_project())).unwrap();

        let json = serde_json::to_value(&project).unwrap();

        assert_eq!(json["description"], serde_json::Value::Null);
        assert_eq!(json["created_at"], "2024-05-01T12:00:00.000005Z");
        assert_eq!(json["version"], 2);
        assert_eq!(project.etag(), "\"2\"");
    }

    #[test]
    fn a_project_role_is_a_lowercase_string_both_ways() {
        for (role, text) in [
            (ProjectRole::Owner, "owner"),
            (ProjectRole::Admin, "admin"),
            (ProjectRole::Member, "member"),
            (ProjectRole::Viewer, "viewer"),
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), text);
            assert_eq!(serde_json::from_value::<ProjectRole>(text.into()).unwrap(), role);
            assert_eq!(ProjectRole::from_proto(role.to_proto() as i32).unwrap(), role);
        }
    }

    #[test]
    fn a_member_without_a_role_is_a_backend_fault() {
        let member = project_pb::Member {
            user_id: "u1".into(),
            role: project_pb::ProjectRole::Unspecified as i32,
            added_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            version: 1,
            user_disabled: false,
        };
        assert_eq!(
            Member::from_proto(Some(member)).unwrap_err().status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    fn proto_record() -> audit_pb::Record {
        audit_pb::Record {
            id: "0190b6a4-7c1e-7000-8000-0000000000e1".into(),
            seq: 7,
            occurred_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 123_456_000 }),
            action: "identity.login_failed".into(),
            actor_id: String::new(),
            entity_type: "user".into(),
            entity_id: String::new(),
            project_id: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            data_json: r#"{"loginFailed":{"email":"nobody@example.com","reason":"bad_credentials"}}"#.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
            producer: "identity".into(),
        }
    }

    #[test]
    fn an_audit_record_has_null_for_empty_values_and_its_data_as_an_object() {
        let json = serde_json::to_value(AuditRecord::from_proto(proto_record()).unwrap()).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "id": "0190b6a4-7c1e-7000-8000-0000000000e1",
                "seq": 7,
                "occurred_at": "2024-05-01T12:00:00.123456Z",
                "action": "identity.login_failed",
                "actor_id": null,
                "producer": "identity",
                "entity_type": "user",
                "entity_id": null,
                "project_id": null,
                "ip": null,
                "user_agent": null,
                "data": {"loginFailed": {"email": "nobody@example.com", "reason": "bad_credentials"}},
                "prev_hash": "a".repeat(64),
                "hash": "b".repeat(64),
            })
        );
    }

    #[test]
    fn an_audit_record_serves_its_data_as_the_text_that_was_hashed() {
        // The chain covers the text the audit service stored, which it wrote compactly with serde_json;
        // a client writing the served `data` back compactly must get exactly that text again.
        let event = serde_json::json!({"projectCreated": {
            "projectId": "p1", "name": "Café \"Ordo\"\n\u{1}", "key": "K", "createdBy": "u1", "description": "",
        }});
        let stored = serde_json::to_string(&event).unwrap();
        let record = audit_pb::Record { data_json: stored.clone(), ..proto_record() };

        let served = serde_json::to_value(AuditRecord::from_proto(record).unwrap()).unwrap();

        assert_eq!(serde_json::to_string(&served["data"]).unwrap(), stored);
    }

    #[test]
    fn an_audit_record_whose_data_is_not_a_json_object_is_a_backend_fault() {
        for data_json in ["", "not json", "[1]", "\"text\""] {
            let record = audit_pb::Record { data_json: data_json.into(), ..proto_record() };
            assert_eq!(
                AuditRecord::from_proto(record).unwrap_err().status(),
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "{data_json:?}"
            );
        }
    }

    #[test]
    fn a_verification_names_the_first_bad_seq_only_when_the_chain_is_broken() {
        let ok = audit_pb::VerifyLogResponse { ok: true, checked: 12, first_bad_seq: None, ..Default::default() };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(ok)).unwrap(),
            serde_json::json!({"ok": true, "checked": 12})
        );
        let broken =
            audit_pb::VerifyLogResponse { ok: false, checked: 12, first_bad_seq: Some(5), ..Default::default() };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(broken)).unwrap(),
            serde_json::json!({"ok": false, "checked": 12, "first_bad_seq": 5})
        );
        let archived = audit_pb::VerifyLogResponse {
            ok: true,
            checked: 3,
            anchor_seq: Some(1001),
            anchor_prev_hash: "ab".repeat(32),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(archived)).unwrap(),
            serde_json::json!({"ok": true, "checked": 3, "anchor": {"seq": 1001, "prev_hash": "ab".repeat(32)}})
        );
    }

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
