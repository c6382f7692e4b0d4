//! What the use cases need from the outside world, as traits. Writes go through a unit of work
//! ([`TaskTx`]) so the change and its events commit together (the outbox pattern).

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::request::{Caller, ClientInfo};
use crate::domain::{
    Attachment, Comment, Job, JobResult, ParentChain, Position, Priority, ProjectRole, SearchWords, Status,
    StatusChange, Task, TaskEvent, TaskFacts, Transition,
};

/// What the project service says of one user in one project the caller can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStanding {
    /// The user's role; `None` for a non-member or a disabled account.
    pub role: Option<ProjectRole>,
    /// The project is archived.
    pub archived: bool,
    /// The project's key.
    pub key: String,
}

/// The project service: "may user U do X in project P".
#[async_trait]
pub trait ProjectAccess: Send + Sync + 'static {
    /// `user_id`'s standing in `project_id`, asked as `caller` (with its bearer token); `None` when the
    /// project does not exist or the caller may not see it.
    async fn standing(&self, caller: &Caller, project_id: Uuid, user_id: Uuid) -> Result<Option<ProjectStanding>>;
}

/// What the page cache holds for one list query of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedPage {
    /// The page as stored since the project's last change.
    Hit(Vec<u8>),
    /// None is current; a page computed now is stored with [`PageCache::put`] under `generation`
    /// (which a change in the meantime makes stale at once).
    Miss { generation: u64 },
}

/// Encoded pages of project task lists, keyed by their query. Every change to a project's tasks
/// makes all of the project's pages stale at once ([`PageCache::changed`], called after the commit).
#[async_trait]
pub trait PageCache: Send + Sync + 'static {
    /// The page stored under `key` for the project as it is now.
    async fn get(&self, project_id: Uuid, key: &str) -> Result<CachedPage>;
    /// Stores `page` under `key`, valid while the project is at `generation`.
    async fn put(&self, project_id: Uuid, generation: u64, key: &str, page: &[u8]) -> Result<()>;
    /// The project's tasks changed: its stored pages are stale.
    async fn changed(&self, project_id: Uuid) -> Result<()>;
}

/// Bytes as they stream: an upload's body, a download's content.
pub type ByteStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// What a finished upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Why an upload was not stored; in every case nothing is left in the store.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The body went past the size limit.
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body itself failed (the client went away).
    #[error("the upload stream failed: {0}")]
    Body(std::io::Error),
    /// The store failed or did not answer.
    #[error("object storage failed: {0}")]
    Unavailable(String),
}

/// Object storage for attachment bytes (S3).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Streams `body` into `key`, hashing and counting it; more than `limit` bytes is refused.
    async fn put(&self, key: &str, content_type: &str, body: ByteStream, limit: u64) -> Result<StoredObject, PutError>;
    /// The object's bytes; `None` if there is no such object.
    async fn get(&self, key: &str) -> Result<Option<ByteStream>>;
    /// Deletes the object; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// A URL that downloads the object for `ttl`, saved as `filename`.
    async fn presign(&self, key: &str, filename: &str, ttl: Duration) -> Result<String>;
}

/// The order of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSort {
    CreatedAsc,
    CreatedDesc,
    UpdatedAsc,
    UpdatedDesc,
    /// Tasks without a due date last.
    DueAsc,
    /// Tasks without a due date last.
    DueDesc,
    PriorityAsc,
    PriorityDesc,
    Position,
    /// Best match of a search first ([`crate::domain::SearchWords::relevance`]), newest first
    /// among equals; only with a search.
    Relevance,
}

impl TaskSort {
    /// Whether the sort (and its tie-break by id) runs downwards.
    pub fn descending(self) -> bool {
        matches!(
            self,
            TaskSort::CreatedDesc
                | TaskSort::UpdatedDesc
                | TaskSort::DueDesc
                | TaskSort::PriorityDesc
                | TaskSort::Relevance
        )
    }

    /// Every sort.
    pub const ALL: [TaskSort; 10] = [
        TaskSort::CreatedAsc,
        TaskSort::CreatedDesc,
        TaskSort::UpdatedAsc,
        TaskSort::UpdatedDesc,
        TaskSort::DueAsc,
        TaskSort::DueDesc,
        TaskSort::PriorityAsc,
        TaskSort::PriorityDesc,
        TaskSort::Position,
        TaskSort::Relevance,
    ];

    /// The sort of [`code`](Self::code).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.code() == code)
    }

    /// A short stable name, kept in cursors.
    pub fn code(self) -> &'static str {
        match self {
            TaskSort::CreatedAsc => "c",
            TaskSort::CreatedDesc => "-c",
            TaskSort::UpdatedAsc => "u",
            TaskSort::UpdatedDesc => "-u",
            TaskSort::DueAsc => "d",
            TaskSort::DueDesc => "-d",
            TaskSort::PriorityAsc => "p",
            TaskSort::PriorityDesc => "-p",
            TaskSort::Position => "b",
            TaskSort::Relevance => "r",
        }
    }
}

/// The sort key of one task under some [`TaskSort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    /// `created_at` or `updated_at`.
    Time(OffsetDateTime),
    /// `due_at`, which may be absent.
    Due(Option<OffsetDateTime>),
    /// The priority's rank.
    Rank(u8),
    /// The board position.
    Position(String),
    /// How well the task matches the search, and its number.
    Relevance { score: u16, number: i64 },
}

impl SortValue {
    /// The key of `task` under `sort`, in a list searching for `search`.
    pub fn of(task: &Task, sort: TaskSort, search: Option<&SearchWords>) -> Self {
        match sort {
            TaskSort::Relevance => SortValue::Relevance {
                score: search
                    .map_or(0, |s| s.relevance(task.title.as_str(), task.description.as_ref().map(|d| d.as_str()))),
                number: task.number,
            },
            TaskSort::CreatedAsc | TaskSort::CreatedDesc => SortValue::Time(task.created_at),
            TaskSort::UpdatedAsc | TaskSort::UpdatedDesc => SortValue::Time(task.updated_at),
            TaskSort::DueAsc | TaskSort::DueDesc => SortValue::Due(task.schedule.due_at()),
            TaskSort::PriorityAsc | TaskSort::PriorityDesc => SortValue::Rank(task.priority.rank()),
            TaskSort::Position => SortValue::Position(task.position.as_str().to_owned()),
        }
    }
}

/// Which subtasks a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentFilter {
    /// Tasks without a parent.
    Root,
    /// The subtasks of this task.
    Of(Uuid),
}

/// The filters, order and page of a task list.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    /// Only this project's tasks; `None` only with `assignee_id`.
    pub project_id: Option<Uuid>,
    /// Any of these statuses; empty means any.
    pub statuses: Vec<Status>,
    /// Any of these priorities; empty means any.
    pub priorities: Vec<Priority>,
    pub assignee_id: Option<Uuid>,
    pub label: Option<String>,
    /// Only tasks holding every one of these words.
    pub search: Option<SearchWords>,
    /// Due strictly before.
    pub due_before: Option<OffsetDateTime>,
    /// Due strictly after.
    pub due_after: Option<OffsetDateTime>,
    pub parent: Option<ParentFilter>,
    pub sort: TaskSort,
    /// Resume after this (sort value, id).
    pub after: Option<(SortValue, Uuid)>,
    /// Rows to return.
    pub limit: u32,
}

/// Which way from a board position to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The nearest position below.
    Before,
    /// The nearest position above.
    After,
}

/// A task and its place on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSlot {
    pub id: Uuid,
    pub position: Position,
}

/// Opens units of work and answers read-only queries.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Begins a unit of work.
    async fn begin(&self) -> Result<Box<dyn TaskTx>>;
    /// Makes sure the project's counter row exists (committed on its own, so the first creates of
    /// a project do not race to insert it inside their transactions).
    async fn ensure_counter(&self, project_id: Uuid) -> Result<()>;
    /// One task.
    async fn task(&self, id: Uuid) -> Result<Option<Task>>;
    /// The tasks with this key (normally one; a deleted project's key may have been reused).
    async fn tasks_by_key(&self, project_key: &str, number: i64) -> Result<Vec<Task>>;
    /// A page of tasks.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>>;
    /// What a report of `project_id` reads: its tasks as they are now, and their status history
    /// before `until`, oldest first. `Conflict` when the project holds more than
    /// [`MAX_REPORT_TASKS`](super::MAX_REPORT_TASKS) tasks or
    /// [`MAX_REPORT_CHANGES`](super::MAX_REPORT_CHANGES) changes: too many to read on request.
    async fn flow_facts(&self, project_id: Uuid, until: OffsetDateTime) -> Result<(Vec<TaskFacts>, Vec<Transition>)>;
    /// Indexes the words of up to `batch` tasks written before the search index (or by older
    /// rules), skipping any another instance is indexing: how many it indexed (0: none is left), and
    /// the projects they are in.
    async fn index_words(&self, batch: u32) -> Result<(usize, Vec<Uuid>)>;
    /// One comment.
    async fn comment(&self, id: Uuid) -> Result<Option<Comment>>;
    /// A page of a task's comments, oldest first, after (created_at, id).
    async fn list_comments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Comment>>;
    /// The comments of `task_ids` (at most a page of an export), each task's oldest first.
    async fn comments_of(&self, task_ids: &[Uuid]) -> Result<Vec<Comment>>;
    /// One attachment.
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>>;
    /// A page of a task's attachments, oldest first, after (created_at, id).
    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Attachment>>;
    /// Schedules the deletion of object `key` at `due_at` (committed on its own): an upload's guard.
    async fn schedule_object_deletion(&self, key: &str, due_at: OffsetDateTime) -> Result<()>;
    /// Up to `limit` object keys whose deletion is due at `now`, oldest first.
    async fn due_object_deletions(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<String>>;
    /// Forgets a scheduled deletion: the object is gone.
    async fn forget_object_deletion(&self, key: &str) -> Result<()>;
}

/// One transaction: changes and their events commit together or not at all. Dropping it without
/// [`TaskTx::commit`] rolls back.
#[async_trait]
pub trait TaskTx: Send {
    /// Takes the project's next `count` task numbers and returns the first; the counter row (which
    /// must exist) stays locked until the end of the transaction, which serialises creates and moves
    /// of one project.
    async fn take_numbers(&mut self, project_id: Uuid, count: usize) -> Result<i64>;
    /// Locks the project's counter row (the board lock); `false` when the project has none.
    async fn lock_board(&mut self, project_id: Uuid) -> Result<bool>;
    /// The highest board position of the project.
    async fn last_position(&mut self, project_id: Uuid) -> Result<Option<Position>>;
    /// The nearest position to `of` on `side`, leaving out task `except`.
    async fn neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        except: Uuid,
    ) -> Result<Option<Position>>;
    /// The `nth` nearest position to `of` on `side` (1: the neighbour), leaving out task `except`;
    /// `None` when the board ends sooner.
    async fn nth_neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        nth: u32,
        except: Uuid,
    ) -> Result<Option<Position>>;
    /// The project's tasks strictly between `lower` and `upper` (`None`: the start or the end of
    /// the board), in board order, leaving out task `except`.
    async fn board_between(
        &mut self,
        project_id: Uuid,
        lower: Option<&Position>,
        upper: Option<&Position>,
        except: Uuid,
    ) -> Result<Vec<BoardSlot>>;
    /// Gives tasks of the project new positions, all at once: the new positions need only be free
    /// of the project's other tasks (these tasks' old positions may be reused among them), and a
    /// slot naming no stored task is skipped. Board upkeep: `version` and `updated_at` stay as they
    /// are. Requires the board lock.
    async fn respace(&mut self, project_id: Uuid, slots: &[BoardSlot]) -> Result<()>;
    /// A task, locked for update.
    async fn task_for_update(&mut self, id: Uuid) -> Result<Option<Task>>;
    /// A task as the transaction sees it (no lock).
    async fn task(&mut self, id: Uuid) -> Result<Option<Task>>;
    /// The tasks of `ids` that exist (at most [`MAX_BATCH`](super::lanes::MAX_BATCH) times three of
    /// them), locked for update, in no particular order.
    async fn tasks_for_update(&mut self, ids: &[Uuid]) -> Result<Vec<Task>>;
    /// The chain from `parent_id` up to its root; `None` if there is no such task.
    async fn parent_chain(&mut self, parent_id: Uuid) -> Result<Option<ParentChain>>;
    /// Every subtask of `id` at any depth (nearest first), and how many levels the subtree spans
    /// counting `id` itself.
    async fn subtree(&mut self, id: Uuid) -> Result<(Vec<Uuid>, usize)>;
    /// The task's watchers.
    async fn watchers(&mut self, task_id: Uuid) -> Result<Vec<Uuid>>;
    /// The watchers of each of `task_ids`, as `(task, watcher)` pairs ordered by task and watcher.
    async fn watchers_of(&mut self, task_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>>;
    /// Inserts new tasks with their assignees and labels.
    async fn insert_tasks(&mut self, tasks: &[Task]) -> Result<()>;
    /// Writes a changed task whose stored version is `previous_version`; `changed` names the fields
    /// that changed (assignees and labels are rewritten only when named).
    async fn update_task(&mut self, task: &Task, previous_version: i64, changed: &[&'static str]) -> Result<()>;
    /// Deletes tasks with their assignees, labels, watchers, comments and attachments, scheduling
    /// the attachments' objects for deletion.
    async fn delete_tasks(&mut self, ids: &[Uuid]) -> Result<()>;
    /// Appends changes to the tasks' status history, in order.
    async fn record_status_changes(&mut self, changes: &[StatusChange]) -> Result<()>;
    /// Adds a watcher (idempotent); whether it was not one before.
    async fn watch(&mut self, task: &Task, user_id: Uuid) -> Result<bool>;
    /// Removes a watcher (idempotent); whether it was one.
    async fn unwatch(&mut self, task_id: Uuid, user_id: Uuid) -> Result<bool>;
    /// Inserts a comment.
    async fn insert_comment(&mut self, comment: &Comment) -> Result<()>;
    /// A comment, locked for update.
    async fn comment_for_update(&mut self, id: Uuid) -> Result<Option<Comment>>;
    /// Writes a changed comment whose stored version is `previous_version`.
    async fn update_comment(&mut self, comment: &Comment, previous_version: i64) -> Result<()>;
    /// Deletes a comment.
    async fn delete_comment(&mut self, id: Uuid) -> Result<()>;
    /// Inserts an attachment; its object's upload guard (scheduled deletion) goes.
    async fn insert_attachment(&mut self, attachment: &Attachment) -> Result<()>;
    /// An attachment, locked for update.
    async fn attachment_for_update(&mut self, id: Uuid) -> Result<Option<Attachment>>;
    /// Deletes an attachment and schedules its object's deletion now.
    async fn delete_attachment(&mut self, attachment: &Attachment) -> Result<()>;
    /// Appends an event to the outbox.
    async fn record(&mut self, event: &TaskEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()>;
    /// Records in the transaction that `attempt` of import job `id` has imported `rows_done` of its
    /// `rows_total` tasks, renewing its lease, and the task each of `imported`'s rows became;
    /// `false` (and nothing recorded) when the attempt no longer holds the job, so the transaction
    /// must not commit.
    #[allow(clippy::too_many_arguments)]
    async fn record_import(
        &mut self,
        id: Uuid,
        attempt: u32,
        rows_done: u64,
        rows_total: u64,
        imported: &[(u32, Uuid)],
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool>;
    /// Commits and wakes the outbox relay.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// How an attempt of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done: its result, kept until `expires_at` (its object's deletion is scheduled then).
    Done { result: JobResult, rows: u64, expires_at: OffsetDateTime },
    /// An import is done: it created `rows` tasks.
    Imported { rows: u64 },
    /// Failed, and why.
    Failed { error: String },
}

/// What asking to record an import job came to.
#[derive(Debug)]
pub enum Queued {
    /// Recorded.
    Inserted,
    /// The job that holds the import's key already.
    Existing(Box<Job>),
    /// The requester has the most unfinished jobs a user may have: nothing was recorded.
    Full,
}

/// The jobs of projects, and their claims.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Records a new job unless its requester has `max_unfinished` jobs queued or running already;
    /// whether it did. Requests of one requester count and record their jobs one at a time, so the
    /// cap holds however many arrive at once.
    async fn insert_job(&self, job: &Job, max_unfinished: u64) -> Result<bool>;
    /// Records a new import job under `key` (its project's and file's digest) as
    /// [`JobStore::insert_job`] records a job, or answers the job that holds the key already: one
    /// queued, running or done (a failed or cancelled one frees it).
    async fn insert_import_job(&self, job: &Job, key: [u8; 32], max_unfinished: u64) -> Result<Queued>;
    /// The job that holds import key `key`, if any.
    async fn import_job(&self, key: [u8; 32]) -> Result<Option<Job>>;
    /// The tasks an import job has created so far: each row's number and its task.
    async fn imported_tasks(&self, id: Uuid) -> Result<Vec<(u32, Uuid)>>;
    /// One job.
    async fn job(&self, id: Uuid) -> Result<Option<Job>>;
    /// How many of `requester`'s jobs are queued or running.
    async fn unfinished_jobs(&self, requester: Uuid) -> Result<u64>;
    /// Claims the oldest job that is queued, or running with its lease run out at `now` (its instance
    /// died), for a new attempt held until `lease_until`, skipping any another instance is claiming;
    /// the job as claimed, or `None` when there is none to run.
    async fn claim_job(&self, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<Job>>;
    /// Records how far `attempt` of the job got and renews its lease; `false` when the attempt no
    /// longer holds the job (cancelled, or taken over after its lease ran out).
    async fn job_progress(
        &self,
        id: Uuid,
        attempt: u32,
        rows_done: u64,
        rows_total: Option<u64>,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool>;
    /// Ends `attempt` of the job with `outcome` (a result's object deletion scheduled, and the end
    /// announced (`job.ended`), in the same transaction); `false` when the attempt no longer holds
    /// the job.
    async fn finish_job(&self, id: Uuid, attempt: u32, outcome: &JobOutcome, now: OffsetDateTime) -> Result<bool>;
    /// Cancels the job unless it has ended, announcing it (`job.ended`) in the same transaction;
    /// whether it did.
    async fn cancel_job(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;
}

/// Reads the files of imports. Implemented outside the use cases, which know no file format.
pub trait ImportDecoder: Send + Sync + 'static {
    /// The tasks of `file`, a file in `format`, each as its row holds it; more than `max_rows` of
    /// them, or a file that is not one of `format`, is `Invalid` (naming the field `file`).
    fn decode(
        &self,
        format: crate::domain::ExportFormat,
        file: &[u8],
        max_rows: usize,
    ) -> Result<Vec<crate::domain::ImportRecord>>;
}

/// Writes the files of exports. Implemented outside the use cases, which know no file format.
pub trait ExportEncoder: Send + Sync + 'static {
    /// A new file in `format`; `with_comments` adds each task's comments (a column of the CSV, a
    /// member of each JSON task).
    fn begin(&self, format: crate::domain::ExportFormat, with_comments: bool) -> Box<dyn ExportFile>;
}

/// One export's file as it is written, a page of tasks at a time.
pub trait ExportFile: Send {
    /// The bytes of `tasks`, the next rows of the file, with `comments`: the comments of those
    /// tasks, each task's oldest first (empty unless the file has them).
    fn rows(&mut self, tasks: &[Task], comments: &[Comment]) -> Result<bytes::Bytes>;
    /// The bytes that end the file.
    fn end(self: Box<Self>) -> bytes::Bytes;
}

/// How attachments are stored: the object store, the size limit and presigned downloads.
#[derive(Clone)]
pub struct AttachmentSettings {
    pub objects: std::sync::Arc<dyn ObjectStore>,
    /// The largest upload, in bytes.
    pub max_bytes: u64,
    /// How long a presigned download URL lives; `None` turns presigning off.
    pub presign_ttl: Option<Duration>,
}

impl std::fmt::Debug for AttachmentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentSettings")
            .field("max_bytes", &self.max_bytes)
            .field("presign_ttl", &self.presign_ttl)
            .finish_non_exhaustive()
    }
}

/// How jobs run: where they are kept, where their files go, and for how long.
#[derive(Clone)]
pub struct JobSettings {
    pub store: std::sync::Arc<dyn JobStore>,
    pub objects: std::sync::Arc<dyn ObjectStore>,
    /// Writes the files of exports.
    pub encoder: std::sync::Arc<dyn ExportEncoder>,
    /// Reads the files of imports.
    pub decoder: std::sync::Arc<dyn ImportDecoder>,
    /// How long an attempt holds a job without renewing its lease.
    pub lease: Duration,
    /// How long a finished export's file is kept.
    pub retention: Duration,
    /// How long a download URL lives; `None` turns them off (a job then has none).
    pub presign_ttl: Option<Duration>,
    /// Woken when this instance queues a job, so that its runner starts the job at once rather than
    /// at its next look.
    pub queued: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for JobSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSettings")
            .field("lease", &self.lease)
            .field("retention", &self.retention)
            .field("presign_ttl", &self.presign_ttl)
            .finish_non_exhaustive()
    }
}
