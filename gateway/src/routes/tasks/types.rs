//! The JSON of `/tasks`: the bodies and query its routes read, and the tasks and bulk outcomes they
//! answer with, translated from the task service's messages.

use axum::http::HeaderValue;
use ordo_proto::task::v1 as pb;
use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{BoundedString, BoundedVec, not_null, null_is_a_value};
use crate::routes::representation::{etag, malformed, optional_timestamp, proto_timestamp, timestamp};

/// A point in time in a request body: RFC 3339 with any offset (stored as the instant, answered in
/// UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time(OffsetDateTime);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(Time)
            .map_err(|_| D::Error::custom("must be an RFC 3339 time such as 2026-05-01T17:00:00Z"))
    }
}

impl Time {
    /// The services' timestamp of this instant.
    pub(super) fn to_proto(self) -> prost_types::Timestamp {
        proto_timestamp(self.0)
    }
}

/// At most 20 assignees (API.md), bounded while the body is read.
type Assignees = BoundedVec<String, 20>;

/// At most 20 labels of at most 50 characters (API.md), bounded while the body is read; the
/// service checks the rest of the rule (not empty, de-duplicated).
type Labels = BoundedVec<BoundedString<50>, 20>;

/// A new task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTaskBody {
    /// The project; the caller must be one of its `member`s, `admin`s or `owner`s.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(super) project_id: String,
    /// 1 to 500 characters after trimming.
    #[schema(min_length = 1, max_length = 500, example = "Add the Tasks routes to the gateway")]
    pub(super) title: String,
    /// At most 100,000 characters; absent, `null` or `""` for none.
    #[schema(max_length = 100000)]
    pub(super) description: Option<String>,
    /// Default `todo`.
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    pub(super) status: Option<TaskStatus>,
    /// Default `none`.
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    pub(super) priority: Option<TaskPriority>,
    /// At most 20 user ids, each a member of the project (`422` otherwise); absent or `null` for none.
    #[schema(value_type = Option<Vec<String>>, max_items = 20, example = json!(["0190b6a4-7c1e-7000-8000-000000000001"]))]
    pub(super) assignee_ids: Option<Assignees>,
    /// At most 20 labels of 1 to 50 characters; duplicates are dropped.
    #[schema(value_type = Option<Vec<String>>, max_items = 20, example = json!(["backend"]))]
    pub(super) labels: Option<Labels>,
    /// RFC 3339; not before `start_at` when both are given.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-05-01T17:00:00Z")]
    pub(super) due_at: Option<Time>,
    /// RFC 3339.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-04-28T09:00:00Z")]
    pub(super) start_at: Option<Time>,
    /// 0 to 100,000 minutes.
    #[schema(minimum = 0, maximum = 100000, example = 90)]
    pub(super) estimate_minutes: Option<i32>,
    /// A task of the same project; the new task may be at most five levels deep, and no cycle may form.
    #[schema(format = Uuid)]
    pub(super) parent_id: Option<String>,
}

/// Changes to a task. Only the fields present change; every other field is left as it is.
///
/// `null` clears a field that may be empty (`description`, `assignee_ids`, `labels`, `due_at`,
/// `start_at`, `estimate_minutes`, `parent_id`); `null` for `title`, `status` or `priority` is a `422`.
/// A task never moves to another project: `project_id` in the body is a `422` naming it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTaskBody {
    /// 1 to 500 characters after trimming.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, min_length = 1, max_length = 500)]
    pub(super) title: Option<String>,
    /// At most 100,000 characters; `null` or `""` removes it.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, max_length = 100000)]
    pub(super) description: Option<Option<String>>,
    /// The new status; entering `done` sets `completed_at`, leaving it clears it.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    pub(super) status: Option<TaskStatus>,
    /// The new priority.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    pub(super) priority: Option<TaskPriority>,
    /// Replaces the assignees (at most 20 members of the project); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    pub(super) assignee_ids: Option<Option<Assignees>>,
    /// Replaces the labels (at most 20 of 1 to 50 characters); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    pub(super) labels: Option<Option<Labels>>,
    /// RFC 3339; `null` removes the due date.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) due_at: Option<Option<Time>>,
    /// RFC 3339; `null` removes the start date.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(super) start_at: Option<Option<Time>>,
    /// 0 to 100,000 minutes; `null` removes the estimate.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 100000)]
    pub(super) estimate_minutes: Option<Option<i32>>,
    /// A task of the same project (no cycles, at most five levels deep); `null` makes the task
    /// top-level.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub(super) parent_id: Option<Option<String>>,
    /// Refused whatever its value: a task stays in its project.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    pub(super) project_id: Option<IgnoredAny>,
}

/// Where to put a task in its project's board order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveTaskBody {
    /// Place the task right after this task of the same project.
    #[schema(format = Uuid)]
    pub(super) after_id: Option<String>,
    /// Place the task right before this task of the same project.
    #[schema(format = Uuid)]
    pub(super) before_id: Option<String>,
}

/// One patch for many tasks.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkUpdateBody {
    /// 1 to 100 task ids; each is changed (or fails) on its own.
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 100)]
    pub(super) ids: BoundedVec<String, 100>,
    /// The fields to change on every task; absent fields are left as they are.
    pub(super) patch: BulkPatch,
}

/// The fields a bulk update may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkPatch {
    /// The new status.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskStatus>, nullable = false)]
    pub(super) status: Option<TaskStatus>,
    /// The new priority.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<TaskPriority>, nullable = false)]
    pub(super) priority: Option<TaskPriority>,
    /// Replaces the assignees of every task; `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    pub(super) assignee_ids: Option<Option<Assignees>>,
    /// Replaces the labels of every task (at most 20 of 1 to 50 characters); `null` or `[]` removes them all.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    pub(super) labels: Option<Option<Labels>>,
}

/// The filters and sort of a task list in a body (an export's `filter`): the query parameters of
/// `GET /tasks`, with their names and written as they are (`"status": "todo,in_progress"`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskFilter {
    /// Any of these statuses, comma-separated, each at most once.
    #[schema(
        example = "todo,in_progress",
        max_length = 100,
        pattern = "^(backlog|todo|in_progress|in_review|done|cancelled)(,(backlog|todo|in_progress|in_review|done|cancelled))*$"
    )]
    pub(crate) status: Option<String>,
    /// Any of these priorities, comma-separated, each at most once.
    #[schema(
        example = "high,urgent",
        max_length = 100,
        pattern = "^(none|low|medium|high|urgent)(,(none|low|medium|high|urgent))*$"
    )]
    pub(crate) priority: Option<String>,
    /// Tasks assigned to this user: a UUID, or `me`.
    #[schema(
        example = "me",
        pattern = "^(me|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub(crate) assignee_id: Option<String>,
    /// Tasks carrying this label (exact match).
    #[schema(min_length = 1, max_length = 50)]
    pub(crate) label: Option<String>,
    /// Tasks holding every word of `q`, as `GET /tasks` searches (at most 200 characters and 10
    /// distinct words).
    #[schema(max_length = 200)]
    pub(crate) q: Option<String>,
    /// Tasks due strictly before this time (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) due_before: Option<String>,
    /// Tasks due strictly after this time (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) due_after: Option<String>,
    /// Subtasks of this task.
    #[schema(format = Uuid)]
    pub(crate) parent_id: Option<String>,
    /// The order of the rows, one of the values of `GET /tasks`'s `sort` (`relevance` needs `q`).
    #[schema(example = "-created_at", pattern = "^(-?(created_at|updated_at|due_at|priority)|position|relevance)$")]
    pub(crate) sort: Option<String>,
}

impl TaskFilter {
    /// The list parameters of this filter for `project_id`, a page of every size.
    pub(super) fn into_params(self, project_id: String) -> ListTasksParams {
        ListTasksParams {
            project_id: Some(project_id),
            status: self.status,
            priority: self.priority,
            assignee_id: self.assignee_id,
            label: self.label,
            q: self.q,
            due_before: self.due_before,
            due_after: self.due_after,
            parent_id: self.parent_id,
            sort: self.sort,
            cursor: None,
            limit: None,
        }
    }
}

/// `GET /tasks` query parameters. Every filter given must match.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListTasksParams {
    /// Tasks of this project. Required unless `assignee_id` is given (without it the service answers
    /// `422` naming `project_id`); with `assignee_id` and no `project_id`, the list spans every project
    /// the caller can see. Not a UUID: `400`.
    #[param(format = Uuid)]
    pub(super) project_id: Option<String>,
    /// Any of these statuses, comma-separated (`status=todo,in_progress`). An unknown status: `400`.
    #[param(example = "todo,in_progress")]
    pub(super) status: Option<String>,
    /// Any of these priorities, comma-separated (`priority=high,urgent`). An unknown priority: `400`.
    #[param(example = "high,urgent")]
    pub(super) priority: Option<String>,
    /// Tasks assigned to this user: a UUID, or `me` for the caller.
    #[param(example = "me")]
    pub(super) assignee_id: Option<String>,
    /// Tasks carrying this label (exact match).
    pub(super) label: Option<String>,
    /// Search of title and description: tasks holding every word of `q` (whole words, any case; a
    /// word is a run of letters and digits, and a word of over 40 characters matches by its first
    /// 40). Common words such as `the` or `of` are left out unless `q` has no other. At most 200
    /// characters and 10 distinct words (`422` on `query` otherwise). An empty `q` is ignored. A
    /// search of one project is ranked by relevance unless `sort` asks for another order.
    pub(super) q: Option<String>,
    /// Tasks due strictly before this time (RFC 3339; encode a `+` offset as `%2B`). Tasks without a
    /// due date never match.
    #[param(value_type = Option<String>, format = DateTime)]
    pub(super) due_before: Option<String>,
    /// Tasks due strictly after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(super) due_after: Option<String>,
    /// Subtasks of this task (direct children only).
    #[param(format = Uuid)]
    pub(super) parent_id: Option<String>,
    /// One of `created_at`, `-created_at` (the default: newest first), `updated_at`, `-updated_at`,
    /// `due_at`, `-due_at`, `priority` (`none` first), `-priority` (`urgent` first), `position` (board
    /// order), `relevance` (the default of a search of one project). A leading `-` means descending.
    /// With `due_at` and `-due_at`, tasks without a due date come last in both directions. Ties are
    /// broken by id, so pages never overlap. `relevance` puts first the tasks holding the most of the
    /// search's words in their title (a word of the title counts 2, one only in the description 1),
    /// newest first among equals; it needs `q` and `project_id` (`422` on `sort` otherwise).
    #[param(example = "-created_at")]
    pub(super) sort: Option<String>,
    /// The `next_cursor` of the previous page; only valid with the same filters and sort.
    pub(super) cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(super) limit: Option<String>,
}

/// For a field whose mere presence matters (even as `null`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<IgnoredAny>, D::Error> {
    IgnoredAny::deserialize(deserializer).map(Some)
}

/// Where a task stands. Entering `done` sets `completed_at`; leaving it clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskStatus {
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
        match pb::TaskStatus::try_from(status) {
            Ok(pb::TaskStatus::Backlog) => Ok(Self::Backlog),
            Ok(pb::TaskStatus::Todo) => Ok(Self::Todo),
            Ok(pb::TaskStatus::InProgress) => Ok(Self::InProgress),
            Ok(pb::TaskStatus::InReview) => Ok(Self::InReview),
            Ok(pb::TaskStatus::Done) => Ok(Self::Done),
            Ok(pb::TaskStatus::Cancelled) => Ok(Self::Cancelled),
            Ok(pb::TaskStatus::Unspecified) | Err(_) => Err(malformed("a task without a known status")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> pb::TaskStatus {
        match self {
            Self::Backlog => pb::TaskStatus::Backlog,
            Self::Todo => pb::TaskStatus::Todo,
            Self::InProgress => pb::TaskStatus::InProgress,
            Self::InReview => pb::TaskStatus::InReview,
            Self::Done => pb::TaskStatus::Done,
            Self::Cancelled => pb::TaskStatus::Cancelled,
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
pub(crate) enum TaskPriority {
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
        match pb::TaskPriority::try_from(priority) {
            Ok(pb::TaskPriority::None) => Ok(Self::None),
            Ok(pb::TaskPriority::Low) => Ok(Self::Low),
            Ok(pb::TaskPriority::Medium) => Ok(Self::Medium),
            Ok(pb::TaskPriority::High) => Ok(Self::High),
            Ok(pb::TaskPriority::Urgent) => Ok(Self::Urgent),
            Ok(pb::TaskPriority::Unspecified) | Err(_) => Err(malformed("a task without a known priority")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> pb::TaskPriority {
        match self {
            Self::None => pb::TaskPriority::None,
            Self::Low => pb::TaskPriority::Low,
            Self::Medium => pb::TaskPriority::Medium,
            Self::High => pb::TaskPriority::High,
            Self::Urgent => pb::TaskPriority::Urgent,
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
pub(crate) struct Task {
    /// The task id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub(crate) id: String,
    /// The project the task belongs to; it never changes.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: String,
    /// Counts up per project from 1, with no gaps or repeats, even under concurrent creates.
    #[schema(minimum = 1, example = 42)]
    pub(crate) number: i64,
    /// `<PROJECT_KEY>-<number>`; `GET /tasks/by-key/{key}` finds the task by it.
    #[schema(example = "ORDO-42")]
    pub(crate) key: String,
    /// 1 to 500 characters, trimmed.
    #[schema(example = "Add the Tasks routes to the gateway")]
    pub(crate) title: String,
    /// At most 100,000 characters; `null` when the task has none.
    #[schema(required = true, example = "Every route of API.md, with OpenAPI and tests.")]
    pub(crate) description: Option<String>,
    /// Where the task stands.
    pub(crate) status: TaskStatus,
    /// How urgent it is.
    pub(crate) priority: TaskPriority,
    /// The assigned users (members of the project), in the order given; at most 20.
    #[schema(example = json!(["0190b6a4-7c1e-7000-8000-000000000001"]))]
    pub(crate) assignee_ids: Vec<String>,
    /// Labels, de-duplicated, in the order given; at most 20 of 1 to 50 characters.
    #[schema(example = json!(["backend", "api"]))]
    pub(crate) labels: Vec<String>,
    /// When the task is due (RFC 3339, UTC); `null` when it has no due date.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) due_at: Option<OffsetDateTime>,
    /// When work on the task starts (RFC 3339, UTC); `null` when unset. Never after `due_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) start_at: Option<OffsetDateTime>,
    /// Estimated effort in minutes, 0 to 100,000; `null` when unset.
    #[schema(required = true, minimum = 0, maximum = 100000, example = 90)]
    pub(crate) estimate_minutes: Option<i32>,
    /// The parent task (same project; at most five levels deep); `null` for a top-level task.
    #[schema(required = true, format = Uuid)]
    pub(crate) parent_id: Option<String>,
    /// The user who created the task.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) reporter_id: String,
    /// The task's place in its project's board order: an opaque string; tasks sort by it bytewise
    /// (`sort=position`). Change it with `POST /tasks/{id}/move`, never by hand.
    #[schema(example = "a0")]
    pub(crate) position: String,
    /// When the task was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When the task last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// When the task entered `done` (RFC 3339, UTC); `null` unless it is `done`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) completed_at: Option<OffsetDateTime>,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
}

impl Task {
    /// The task of a response that must carry one.
    pub(crate) fn from_proto(task: Option<pb::Task>) -> Result<Self, ApiError> {
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
pub(crate) struct TaskPage {
    /// The tasks of this page.
    pub(crate) items: Vec<Task>,
    /// Pass as `cursor` (with the same filters and sort) to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

/// Why one task of a bulk update was left unchanged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BulkFailure {
    /// The task id, as given in `ids`.
    #[schema(example = "0190b6a4-7c1e-7000-8000-0000000000c2")]
    pub(crate) id: String,
    /// The HTTP status `PATCH /tasks/{id}` with the same patch would have answered for this task:
    /// `404` (no such task, or the caller may not see it), `403` (a `viewer`), `409` (archived
    /// project), `422` (the patch breaks a rule for this task, such as an assignee who is not a member
    /// of its project), ...
    #[schema(example = 404)]
    pub(crate) status: u16,
    /// Why, for humans.
    #[schema(example = "No task has this id.")]
    pub(crate) detail: String,
}

/// The outcome of a bulk update: every task given is in exactly one of the two lists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BulkUpdateResult {
    /// The tasks changed, as they are now, in the order of `ids`.
    pub(crate) updated: Vec<Task>,
    /// The tasks left unchanged, and why, in the order of `ids`.
    pub(crate) failed: Vec<BulkFailure>,
}

impl BulkUpdateResult {
    /// The JSON form of the task service's report.
    pub(crate) fn from_proto(response: pb::BulkUpdateTasksResponse) -> Result<Self, ApiError> {
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

    fn proto_task() -> pb::Task {
        pb::Task {
            id: "0190b6a4-7c1e-7000-8000-0000000000c1".into(),
            project_id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            number: 42,
            key: "ORDO-42".into(),
            title: "T".into(),
            description: None,
            status: pb::TaskStatus::InProgress as i32,
            priority: pb::TaskPriority::Urgent as i32,
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
        let no_status = pb::Task { status: pb::TaskStatus::Unspecified as i32, ..proto_task() };
        let no_priority = pb::Task { priority: 99, ..proto_task() };
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
            let response = pb::BulkUpdateTasksResponse {
                updated: vec![proto_task()],
                failed: vec![pb::BulkFailure { id: "t".into(), code: code as i32, message: "why".into() }],
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
