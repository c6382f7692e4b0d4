//! The use cases of the task service, one method each. Authorization is decided here, from the
//! project service's answer (`CheckAccess`) through the domain's [`Access`] rules.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::attachments::AttachmentSettings;
use super::creates::Lanes;
use super::cursor;
use super::ports::{
    BoardSlot, CachedPage, PageCache, ParentFilter, ProjectAccess, ProjectStanding, Side, SortValue, TaskQuery,
    TaskSort, TaskStore, TaskTx,
};
use super::{AppError, Result};
use crate::domain::{
    Access, Assignees, Comment, CommentBody, Description, Estimate, FieldViolation, Labels, NewTask, Position,
    PositionError, Priority, Schedule, Status, Task, TaskEvent, Title, Unassignment, Violations, check_parent,
    split_key,
};

/// Where a request came from, as the gateway saw it; recorded in the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// The authenticated caller, with the bearer credential the project service is asked with.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id.
    pub user_id: Uuid,
    /// `Bearer <token>`, as it came.
    pub authorization: String,
}

/// A task's writable fields as a request gives them (enums already defaulted by the gRPC layer).
#[derive(Debug, Clone, Default)]
pub struct TaskFields {
    pub title: String,
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub assignee_ids: Vec<String>,
    pub labels: Vec<String>,
    pub due_at: Option<OffsetDateTime>,
    pub start_at: Option<OffsetDateTime>,
    pub estimate_minutes: Option<i32>,
    pub parent_id: Option<String>,
}

/// The filters, sort and page of a task list as requested.
#[derive(Debug, Clone, Default)]
pub struct ListTasks {
    pub project_id: String,
    pub statuses: Vec<Status>,
    pub priorities: Vec<Priority>,
    /// A user id, or `me`.
    pub assignee_id: String,
    pub label: String,
    pub query: String,
    pub due_before: Option<OffsetDateTime>,
    pub due_after: Option<OffsetDateTime>,
    /// A task id; the empty string lists tasks without a parent.
    pub parent_id: Option<String>,
    /// `None` for the default, newest first.
    pub sort: Option<TaskSort>,
    pub limit: i32,
    pub cursor: String,
}

/// A page of tasks.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// A page of comments.
#[derive(Debug, Clone)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// How one task of a bulk update ended.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The tasks changed (or left as they were when nothing changed).
    pub updated: Vec<Task>,
    /// The ids that failed, each with why.
    pub failed: Vec<(String, AppError)>,
}

/// The paths an update may name.
const UPDATE_PATHS: &[&str] = &[
    "title",
    "description",
    "status",
    "priority",
    "assignee_ids",
    "labels",
    "due_at",
    "start_at",
    "estimate_minutes",
    "parent_id",
];
/// The paths a bulk update may name.
const BULK_PATHS: &[&str] = &["status", "priority", "assignee_ids", "labels"];
/// The most tasks a bulk update touches.
pub const MAX_BULK: usize = 100;
/// The most paths an update mask names, repeats included (there are ten fields to name).
pub const MAX_MASK_PATHS: usize = 20;
/// The longest path of an update mask echoed back as a field name; a longer one names no field.
const MAX_PATH_LEN: usize = 64;
/// How many candidate pages a list across projects scans before it returns a short page.
const MAX_SCAN_BATCHES: usize = 10;
/// The longest full-text search.
const MAX_QUERY_LEN: usize = 200;
/// Attempts of a transaction that lost a deadlock.
const ATTEMPTS: u32 = 5;

/// The time now, truncated to the microseconds MySQL keeps, so what is returned equals what is read
/// back later.
pub(super) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

fn check_version(current: i64, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(version) if version != current => Err(AppError::VersionMismatch),
        _ => Ok(()),
    }
}

/// An id from a request; one that is not a UUID names nothing.
pub(super) fn id_of(raw: &str, what: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound(what))
}

const NO_TASK: &str = "no such task";
const NO_COMMENT: &str = "no such comment";
const NO_PROJECT: &str = "no such project";

/// Runs `attempt` again while it loses deadlocks, with a short jittered pause.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(AppError::Contention) if tries < ATTEMPTS => {
                let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 20);
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries) + jitter)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// A full-text search as a boolean-mode expression: every word required, as a prefix. Words shorter
/// than InnoDB's smallest token (3) are left out unless there are no others.
fn full_text(query: &str) -> Result<Option<String>> {
    // Bytes first: more than four per allowed character is too long without counting them.
    if query.len() > 4 * MAX_QUERY_LEN || query.chars().count() > MAX_QUERY_LEN {
        return Err(AppError::field("query", "must be at most 200 characters"));
    }
    if query.trim().is_empty() {
        return Ok(None);
    }
    let words: Vec<&str> = query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let long: Vec<&str> = words.iter().copied().filter(|w| w.chars().count() >= 3).collect();
    let words = if long.is_empty() { words } else { long };
    if words.is_empty() {
        return Err(AppError::field("query", "must contain a word"));
    }
    Ok(Some(words.iter().map(|w| format!("+{w}*")).collect::<Vec<_>>().join(" ")))
}

/// The task service's use cases.
#[derive(Clone)]
pub struct TaskService {
    pub(super) store: Arc<dyn TaskStore>,
    projects: Arc<dyn ProjectAccess>,
    /// Object storage for attachments; `None` when the service runs without it.
    pub(super) attachment_settings: Option<AttachmentSettings>,
    /// Creates waiting for their project's turn.
    pub(super) lanes: Arc<Lanes>,
    /// Encoded pages of project lists; `None` lists from the database every time.
    pages: Option<Arc<dyn PageCache>>,
}

/// Encodes a page of tasks for the cache and the caller (the gRPC layer's response).
pub type PageEncoder<'a> = dyn Fn(TaskPage) -> Vec<u8> + Send + Sync + 'a;

/// A listed page, as the caller asked for it.
enum Listed {
    Page(TaskPage),
    Encoded(Vec<u8>),
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskService").finish_non_exhaustive()
    }
}

/// The masked fields of an update, validated before the transaction.
#[derive(Debug, Default)]
struct Patch {
    paths: Vec<&'static str>,
    title: Option<Title>,
    description: Option<Option<Description>>,
    status: Option<Status>,
    priority: Option<Priority>,
    assignees: Option<Assignees>,
    labels: Option<Labels>,
    due_at: Option<Option<OffsetDateTime>>,
    start_at: Option<Option<OffsetDateTime>>,
    estimate: Option<Option<Estimate>>,
    parent_id: Option<Option<Uuid>>,
}

impl Patch {
    fn has(&self, path: &str) -> bool {
        self.paths.contains(&path)
    }
}

/// Checks an update mask against the paths allowed; every bad path is named.
fn parse_mask(mask: &[String], allowed: &[&'static str]) -> Result<Vec<&'static str>> {
    if mask.is_empty() {
        return Err(AppError::field("update_mask", "name at least one field to change"));
    }
    // Counted before any path is read: a mask of a million paths costs nothing more than one of 21.
    if mask.len() > MAX_MASK_PATHS {
        return Err(AppError::field("update_mask", "name at most 20 paths"));
    }
    let mut violations = Violations::default();
    let mut paths = Vec::new();
    for path in mask {
        match allowed.iter().find(|a| **a == path.as_str()) {
            Some(known) if !paths.contains(known) => paths.push(*known),
            Some(_) => {}
            None if path == "project_id" => {
                violations.push(FieldViolation::new("project_id", "a task cannot move to another project"))
            }
            // Not echoed: a long path is no field name, and the answer stays small.
            None if path.len() > MAX_PATH_LEN => {
                violations.push(FieldViolation::new("update_mask", "names a field that does not exist"))
            }
            None => violations.push(FieldViolation::new(path.clone(), "not a field that can be changed here")),
        }
    }
    if violations.is_empty() { Ok(paths) } else { Err(AppError::Validation(violations.0)) }
}

/// Validates the masked fields of `fields`.
fn parse_patch(paths: Vec<&'static str>, fields: &TaskFields) -> Result<Patch> {
    let mut v = Violations::default();
    let mut patch = Patch { paths, ..Patch::default() };
    for path in patch.paths.clone() {
        match path {
            "title" => patch.title = v.check(Title::parse(&fields.title)),
            "description" => {
                patch.description =
                    v.check(fields.description.as_deref().map(Description::parse).transpose().map(Option::flatten))
            }
            "status" => patch.status = Some(fields.status.unwrap_or(Status::Todo)),
            "priority" => patch.priority = Some(fields.priority.unwrap_or(Priority::None)),
            "assignee_ids" => patch.assignees = v.check(Assignees::parse(&fields.assignee_ids)),
            "labels" => patch.labels = v.check(Labels::parse(&fields.labels)),
            "due_at" => patch.due_at = Some(fields.due_at),
            "start_at" => patch.start_at = Some(fields.start_at),
            "estimate_minutes" => patch.estimate = v.check(fields.estimate_minutes.map(Estimate::new).transpose()),
            "parent_id" => {
                patch.parent_id = v.check(parent_id(fields.parent_id.as_deref()));
            }
            _ => {}
        }
    }
    if v.is_empty() { Ok(patch) } else { Err(AppError::Validation(v.0)) }
}

/// A parent id from a request: absent or empty for none.
fn parent_id(raw: Option<&str>) -> Result<Option<Uuid>, FieldViolation> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => Uuid::parse_str(raw).map(Some).map_err(|_| FieldViolation::new("parent_id", "must be a task id")),
    }
}

impl TaskService {
    /// The use cases over these ports.
    pub fn new(store: Arc<dyn TaskStore>, projects: Arc<dyn ProjectAccess>) -> Self {
        Self { store, projects, attachment_settings: None, lanes: Arc::default(), pages: None }
    }

    /// Serves lists of one project from `pages` while its tasks are unchanged.
    pub fn with_page_cache(mut self, pages: Arc<dyn PageCache>) -> Self {
        self.pages = Some(pages);
        self
    }

    /// Keeps attachments in `settings`' object store.
    pub fn with_attachments(mut self, settings: AttachmentSettings) -> Self {
        self.attachment_settings = Some(settings);
        self
    }

    /// The caller's standing in a project; `None` when it may not see it.
    async fn standing(&self, caller: &Caller, project_id: Uuid) -> Result<Option<ProjectStanding>> {
        self.projects.standing(caller, project_id, caller.user_id).await
    }

    /// The caller's access to a project it can see; `NotFound(what)` otherwise.
    pub(super) async fn access(
        &self,
        caller: &Caller,
        project_id: Uuid,
        what: &'static str,
    ) -> Result<(Access, String)> {
        let standing = self.standing(caller, project_id).await?.ok_or(AppError::NotFound(what))?;
        Ok((Access { role: standing.role, archived: standing.archived }, standing.key))
    }

    /// A task the caller can see, with the caller's access to its project.
    pub(super) async fn visible_task(&self, caller: &Caller, id: &str) -> Result<(Task, Access)> {
        let id = id_of(id, NO_TASK)?;
        let task = self.store.task(id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        let (access, _) = self.access(caller, task.project_id, NO_TASK).await?;
        Ok((task, access))
    }

    /// Checks that every one of `assignees` is a member of the project.
    async fn check_members(&self, caller: &Caller, project_id: Uuid, assignees: &[Uuid]) -> Result<()> {
        for user in assignees {
            let standing = self.projects.standing(caller, project_id, *user).await?;
            if standing.is_none_or(|s| s.role.is_none()) {
                return Err(AppError::field("assignee_ids", format!("{user} is not a member of the project")));
            }
        }
        Ok(())
    }

    /// Writes the events and commits; the projects whose tasks the events are about get their
    /// cached lists made stale.
    pub(super) async fn finish(
        &self,
        mut tx: Box<dyn TaskTx>,
        events: &[TaskEvent],
        caller: &Caller,
        client: &ClientInfo,
    ) -> Result<()> {
        for event in events {
            tx.record(event, Some(caller.user_id), client).await?;
        }
        tx.commit().await?;
        self.lists_changed(events.iter().filter(|e| e.changes_lists()).map(|e| e.task().project_id)).await;
        Ok(())
    }

    /// Makes the cached lists of `projects` stale, after the commit that changed their tasks. A
    /// failure is logged: the pages then last until their TTL.
    pub(super) async fn lists_changed(&self, projects: impl IntoIterator<Item = Uuid>) {
        let Some(pages) = &self.pages else { return };
        let mut projects: Vec<Uuid> = projects.into_iter().collect();
        projects.sort_unstable();
        projects.dedup();
        for project_id in projects {
            if let Err(error) = pages.changed(project_id).await {
                tracing::warn!(%error, %project_id, "cached task lists could not be made stale; they expire on their own");
            }
        }
    }

    /// Creates a task with the next number of its project, at the end of its board (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %project_id))]
    pub async fn create_task(
        &self,
        caller: &Caller,
        project_id: &str,
        fields: &TaskFields,
        client: &ClientInfo,
    ) -> Result<Task> {
        let project_id = id_of(project_id, NO_PROJECT)?;
        // Who may create is decided before the input is judged, so strangers learn nothing.
        let (access, key) = self.access(caller, project_id, NO_PROJECT).await?;
        access.write().map_err(|d| AppError::denied(d, NO_PROJECT))?;

        let mut v = Violations::default();
        let title = v.check(Title::parse(&fields.title));
        let description =
            v.check(fields.description.as_deref().map(Description::parse).transpose().map(Option::flatten));
        let assignees = v.check(Assignees::parse(&fields.assignee_ids));
        let labels = v.check(Labels::parse(&fields.labels));
        let schedule = v.check(Schedule::new(fields.start_at, fields.due_at));
        let estimate = v.check(fields.estimate_minutes.map(Estimate::new).transpose());
        let parent = v.check(parent_id(fields.parent_id.as_deref()));
        let (
            Some(title),
            Some(description),
            Some(assignees),
            Some(labels),
            Some(schedule),
            Some(estimate),
            Some(parent),
        ) = (title, description, assignees, labels, schedule, estimate, parent)
        else {
            return Err(AppError::Validation(v.0));
        };
        // Asked outside the transaction: no lock is held across a network call.
        self.check_members(caller, project_id, assignees.as_slice()).await?;
        let new = NewTask {
            title,
            description,
            status: fields.status.unwrap_or(Status::Todo),
            priority: fields.priority.unwrap_or(Priority::None),
            assignees,
            labels,
            schedule,
            estimate,
            parent_id: parent,
        };
        self.create_in_lane(caller, project_id, key, new, client).await
    }

    /// One task the caller can see.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn get_task(&self, caller: &Caller, id: &str) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.read().map_err(|d| AppError::denied(d, NO_TASK))?;
        Ok(task)
    }

    /// One task by its key, e.g. `ORDO-42`.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, key = %key))]
    pub async fn get_task_by_key(&self, caller: &Caller, key: &str) -> Result<Task> {
        let (project_key, number) = split_key(key).ok_or(AppError::NotFound(NO_TASK))?;
        for task in self.store.tasks_by_key(project_key, number).await? {
            if let Some(standing) = self.standing(caller, task.project_id).await? {
                // A project key reused after a deletion: only the live project's task counts.
                if standing.key == project_key {
                    return Ok(task);
                }
            }
        }
        Err(AppError::NotFound(NO_TASK))
    }

    /// A page of tasks by filters and one sort.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_tasks(&self, caller: &Caller, request: &ListTasks) -> Result<TaskPage> {
        match self.list(caller, request, None).await? {
            Listed::Page(page) => Ok(page),
            Listed::Encoded(_) => Err(AppError::Internal(anyhow::anyhow!("a page was encoded unasked"))),
        }
    }

    /// A page of tasks like [`list_tasks`](Self::list_tasks), encoded by `encode`. A list of one
    /// project is served from the page cache while none of the project's tasks has changed since
    /// it was stored (after the same access check as always).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_tasks_encoded(
        &self,
        caller: &Caller,
        request: &ListTasks,
        encode: &PageEncoder<'_>,
    ) -> Result<Vec<u8>> {
        match self.list(caller, request, Some(encode)).await? {
            Listed::Encoded(bytes) => Ok(bytes),
            Listed::Page(page) => Ok(encode(page)),
        }
    }

    /// A stored page of `project_id`'s list `key`, or the page computed by `compute`, encoded and
    /// stored for the next caller. The cache failing only means computing the page.
    async fn cached_page<F, Fut>(
        &self,
        project_id: Uuid,
        key: &str,
        encode: &PageEncoder<'_>,
        compute: F,
    ) -> Result<Vec<u8>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TaskPage>>,
    {
        let Some(pages) = &self.pages else { return compute().await.map(encode) };
        let generation = match pages.get(project_id, key).await {
            Ok(CachedPage::Hit(bytes)) => return Ok(bytes),
            Ok(CachedPage::Miss { generation }) => Some(generation),
            Err(error) => {
                tracing::debug!(%error, "the page cache is unavailable; listing from the database");
                None
            }
        };
        let bytes = encode(compute().await?);
        if let Some(generation) = generation
            && let Err(error) = pages.put(project_id, generation, key, &bytes).await
        {
            tracing::debug!(%error, "a page could not be cached");
        }
        Ok(bytes)
    }

    async fn list(&self, caller: &Caller, request: &ListTasks, encode: Option<&PageEncoder<'_>>) -> Result<Listed> {
        let mut v = Violations::default();
        // Each value may be named once; the counts are checked before the values are sorted.
        if request.statuses.len() > Status::ALL.len() {
            v.push(FieldViolation::new("statuses", "name each status at most once"));
        }
        if request.priorities.len() > Priority::ALL.len() {
            v.push(FieldViolation::new("priorities", "name each priority at most once"));
        }
        let limit = v.check(cursor::limit(request.limit).map_err(first_violation));
        let project_id = if request.project_id.is_empty() {
            None
        } else {
            v.check(
                Uuid::parse_str(&request.project_id)
                    .map_err(|_| FieldViolation::new("project_id", "must be a project id")),
            )
        };
        let assignee_id = match request.assignee_id.as_str() {
            "" => None,
            "me" => Some(caller.user_id),
            raw => v.check(
                Uuid::parse_str(raw).map_err(|_| FieldViolation::new("assignee_id", "must be a user id or `me`")),
            ),
        };
        if request.project_id.is_empty() && assignee_id.is_none() && request.assignee_id.is_empty() {
            v.push(FieldViolation::new("project_id", "required unless assignee_id is given"));
        }
        let parent = match request.parent_id.as_deref() {
            None => None,
            Some("") => Some(ParentFilter::Root),
            Some(raw) => v
                .check(Uuid::parse_str(raw).map_err(|_| FieldViolation::new("parent_id", "must be a task id")))
                .map(ParentFilter::Of),
        };
        let text = v.check(full_text(&request.query).map_err(first_violation));
        let label = request.label.trim();
        if label.len() > 4 * 50 || label.chars().count() > 50 {
            v.push(FieldViolation::new("label", "labels are at most 50 characters"));
        }
        let (Some(limit), Some(text)) = (limit, text) else {
            return Err(AppError::Validation(v.0));
        };
        if !v.is_empty() {
            return Err(AppError::Validation(v.0));
        }
        let sort = request.sort.unwrap_or(TaskSort::CreatedDesc);
        let mut statuses: Vec<&str> = request.statuses.iter().map(|s| s.as_str()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        let mut priorities: Vec<u8> = request.priorities.iter().map(|p| p.rank()).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let micros = |t: Option<OffsetDateTime>| t.map(|t| t.unix_timestamp_nanos() / 1_000);
        let filters = format!(
            "{project_id:?}|{statuses:?}|{priorities:?}|{assignee_id:?}|{label:?}|{text:?}|{:?}|{:?}|{parent:?}",
            micros(request.due_before),
            micros(request.due_after),
        );
        let fingerprint = cursor::fingerprint(&filters);
        let after = cursor::decode_task(&request.cursor, &fingerprint, sort)?;

        let mut query = TaskQuery {
            project_id,
            statuses: statuses.iter().filter_map(|s| Status::parse(s)).collect(),
            priorities: priorities.iter().filter_map(|p| Priority::from_rank(*p)).collect(),
            assignee_id,
            label: (!label.is_empty()).then(|| label.to_owned()),
            text,
            due_before: request.due_before,
            due_after: request.due_after,
            parent,
            sort,
            after,
            limit: limit + 1,
        };
        let page_of = |mut tasks: Vec<Task>, scanned_to: Option<(SortValue, Uuid)>| {
            let next_cursor = if tasks.len() > limit as usize {
                tasks.truncate(limit as usize);
                tasks.last().map(|t| cursor::encode_task(&fingerprint, sort, &SortValue::of(t, sort), t.id))
            } else {
                scanned_to.map(|(value, id)| cursor::encode_task(&fingerprint, sort, &value, id))
            };
            TaskPage { tasks, next_cursor }
        };

        let out = |page: TaskPage| match encode {
            Some(encode) => Listed::Encoded(encode(page)),
            None => Listed::Page(page),
        };
        if let Some(project_id) = project_id {
            let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
            access.read().map_err(|d| AppError::denied(d, NO_PROJECT))?;
            let Some(encode) = encode else {
                return Ok(Listed::Page(page_of(self.store.list_tasks(&query).await?, None)));
            };
            let key = format!("{filters}|{sort:?}|{limit}|{}", request.cursor);
            let compute = || async { Ok(page_of(self.store.list_tasks(&query).await?, None)) };
            return self.cached_page(project_id, &key, encode, compute).await.map(Listed::Encoded);
        }

        // Across projects: walk the candidates in keyset order and keep those of projects the
        // caller can see, asking once per project; bounded, so a caller who sees few of a busy
        // assignee's tasks gets a short page with a cursor rather than a slow one.
        let mut seen: HashMap<Uuid, bool> = HashMap::new();
        let mut visible = Vec::new();
        let mut scanned_to = None;
        for _ in 0..MAX_SCAN_BATCHES {
            let rows = self.store.list_tasks(&query).await?;
            let exhausted = rows.len() < query.limit as usize;
            for task in rows {
                scanned_to = Some((SortValue::of(&task, sort), task.id));
                let can_see = match seen.get(&task.project_id) {
                    Some(can_see) => *can_see,
                    None => {
                        let can_see = self.standing(caller, task.project_id).await?.is_some();
                        seen.insert(task.project_id, can_see);
                        can_see
                    }
                };
                if can_see {
                    visible.push(task);
                    if visible.len() > limit as usize {
                        return Ok(out(page_of(visible, None)));
                    }
                }
            }
            if exhausted {
                return Ok(out(page_of(visible, None)));
            }
            query.after = scanned_to.clone();
        }
        Ok(out(page_of(visible, scanned_to)))
    }

    /// Changes the fields named in `mask` (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn update_task(
        &self,
        caller: &Caller,
        id: &str,
        fields: &TaskFields,
        mask: &[String],
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| AppError::denied(d, NO_TASK))?;
        let patch = parse_patch(parse_mask(mask, UPDATE_PATHS)?, fields)?;
        self.update_visible(caller, task, &patch, expected_version, client).await
    }

    /// Applies `patch` to `task`, which the caller may change.
    async fn update_visible(
        &self,
        caller: &Caller,
        task: Task,
        patch: &Patch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        if let Some(assignees) = &patch.assignees {
            let added: Vec<Uuid> =
                assignees.as_slice().iter().copied().filter(|a| !task.assignees.contains(*a)).collect();
            self.check_members(caller, task.project_id, &added).await?;
        }
        retrying(|| self.apply_patch(caller, task.id, task.project_id, patch, expected_version, client)).await
    }

    async fn apply_patch(
        &self,
        caller: &Caller,
        id: Uuid,
        project_id: Uuid,
        patch: &Patch,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let mut tx = self.store.begin().await?;
        if patch.has("parent_id") {
            // Tree changes of one project are serialised, so two of them cannot make a cycle
            // together.
            tx.lock_board(project_id).await?;
        }
        let mut task = tx.task_for_update(id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        check_version(task.version, expected_version)?;
        let old = task.clone();
        let now = now();
        let mut changed: Vec<&'static str> = Vec::new();
        if let Some(title) = &patch.title
            && *title != task.title
        {
            task.title = title.clone();
            changed.push("title");
        }
        if let Some(description) = &patch.description
            && *description != task.description
        {
            task.description = description.clone();
            changed.push("description");
        }
        if let Some(status) = patch.status
            && status != task.status()
        {
            task.set_status(status, now);
            changed.push("status");
        }
        if let Some(priority) = patch.priority
            && priority != task.priority
        {
            task.priority = priority;
            changed.push("priority");
        }
        if let Some(assignees) = &patch.assignees
            && *assignees != task.assignees
        {
            task.assignees = assignees.clone();
            changed.push("assignee_ids");
        }
        if let Some(labels) = &patch.labels
            && *labels != task.labels
        {
            task.labels = labels.clone();
            changed.push("labels");
        }
        let start_at = patch.start_at.unwrap_or(task.schedule.start_at());
        let due_at = patch.due_at.unwrap_or(task.schedule.due_at());
        task.schedule = Schedule::new(start_at, due_at).map_err(|v| AppError::Validation(vec![v]))?;
        if task.schedule.due_at() != old.schedule.due_at() {
            changed.push("due_at");
        }
        if task.schedule.start_at() != old.schedule.start_at() {
            changed.push("start_at");
        }
        if let Some(estimate) = patch.estimate
            && estimate != task.estimate
        {
            task.estimate = estimate;
            changed.push("estimate_minutes");
        }
        if let Some(parent) = patch.parent_id
            && parent != task.parent_id
        {
            if let Some(parent) = parent {
                if parent == task.id {
                    return Err(AppError::field("parent_id", "a task cannot be its own parent"));
                }
                let chain = tx
                    .parent_chain(parent)
                    .await?
                    .ok_or_else(|| AppError::field("parent_id", "no such task in this project"))?;
                let (_, height) = tx.subtree(task.id).await?;
                check_parent(task.project_id, Some(task.id), height, &chain)
                    .map_err(|v| AppError::Validation(vec![v]))?;
            }
            task.parent_id = parent;
            changed.push("parent_id");
        }
        if changed.is_empty() {
            return Ok(task);
        }
        task.touch(now);
        tx.update_task(&task, old.version, &changed).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let mut events = Vec::new();
        if changed.contains(&"status") {
            events.push(TaskEvent::StatusChanged {
                task: task.clone(),
                old: old.status(),
                recipients: recipients.clone(),
            });
        }
        events.push(TaskEvent::Updated { task: task.clone(), changed, recipients });
        for added in task.assignees.as_slice().iter().filter(|a| !old.assignees.contains(**a)) {
            events.push(TaskEvent::Assigned { task: task.clone(), assignee: *added });
        }
        for removed in old.assignees.as_slice().iter().filter(|a| !task.assignees.contains(**a)) {
            events.push(TaskEvent::Unassigned { task: task.clone(), assignee: *removed, why: Unassignment::Edit });
        }
        self.finish(tx, &events, caller, client).await?;
        Ok(task)
    }

    /// Moves a task in its project's board order, right after `after_id` and/or right before
    /// `before_id` (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn move_task(
        &self,
        caller: &Caller,
        id: &str,
        after_id: Option<&str>,
        before_id: Option<&str>,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| AppError::denied(d, NO_TASK))?;
        let mut v = Violations::default();
        let mut neighbour = |raw: Option<&str>, field: &'static str| -> Option<Uuid> {
            let raw = raw.filter(|r| !r.is_empty())?;
            match Uuid::parse_str(raw) {
                Ok(id) if id == task.id => {
                    v.push(FieldViolation::new(field, "a task is not its own neighbour"));
                    None
                }
                Ok(id) => Some(id),
                Err(_) => {
                    v.push(FieldViolation::new(field, "must be a task id"));
                    None
                }
            }
        };
        let after = neighbour(after_id, "after_id");
        let before = neighbour(before_id, "before_id");
        if !v.is_empty() {
            return Err(AppError::Validation(v.0));
        }
        if after.is_none() && before.is_none() {
            return Err(AppError::field("after_id", "give after_id, before_id or both"));
        }
        retrying(|| self.reposition(caller, task.id, task.project_id, after, before, expected_version, client)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn reposition(
        &self,
        caller: &Caller,
        id: Uuid,
        project_id: Uuid,
        after: Option<Uuid>,
        before: Option<Uuid>,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Task> {
        let mut tx = self.store.begin().await?;
        // The board lock first: every move and create of the project waits here, so the neighbours
        // read below are the latest and no two moves pick the same gap.
        if !tx.lock_board(project_id).await? {
            return Err(AppError::NotFound(NO_TASK));
        }
        let mut task = tx.task_for_update(id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        check_version(task.version, expected_version)?;
        let position_of = |t: Option<Task>, field: &'static str| -> Result<Position> {
            match t {
                Some(t) if t.project_id == project_id => Ok(t.position),
                _ => Err(AppError::field(field, "no such task in this project")),
            }
        };
        let (lower, upper) = match (after, before) {
            (Some(a), Some(b)) => {
                let lower = position_of(tx.task(a).await?, "after_id")?;
                let upper = position_of(tx.task(b).await?, "before_id")?;
                if lower >= upper {
                    return Err(AppError::field("before_id", "must come after after_id on the board"));
                }
                (Some(lower), Some(upper))
            }
            (Some(a), None) => {
                let lower = position_of(tx.task(a).await?, "after_id")?;
                let upper = tx.neighbour(project_id, &lower, Side::After, id).await?;
                (Some(lower), upper)
            }
            (None, Some(b)) => {
                let upper = position_of(tx.task(b).await?, "before_id")?;
                let lower = tx.neighbour(project_id, &upper, Side::Before, id).await?;
                (lower, Some(upper))
            }
            (None, None) => return Err(AppError::field("after_id", "give after_id, before_id or both")),
        };
        let already_there =
            lower.as_ref().is_none_or(|l| *l < task.position) && upper.as_ref().is_none_or(|u| task.position < *u);
        if already_there {
            return Ok(task);
        }
        let previous = task.version;
        task.position = place(tx.as_mut(), project_id, id, lower.as_ref(), upper.as_ref()).await?;
        task.touch(now());
        tx.update_task(&task, previous, &["position"]).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::Updated { task: task.clone(), changed: vec!["position"], recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(task)
    }

    /// Deletes a task with its subtasks at any depth, their comments and watchers (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn delete_task(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.write().map_err(|d| AppError::denied(d, NO_TASK))?;
        retrying(|| async {
            let mut tx = self.store.begin().await?;
            let task = tx.task_for_update(task.id).await?.ok_or(AppError::NotFound(NO_TASK))?;
            check_version(task.version, expected_version)?;
            let (subtask_ids, _) = tx.subtree(task.id).await?;
            let watchers = tx.watchers(task.id).await?;
            let mut ids = vec![task.id];
            ids.extend(&subtask_ids);
            tx.delete_tasks(&ids).await?;
            let recipients = task.recipients(&watchers);
            let events = [TaskEvent::Deleted { task, subtask_ids, recipients }];
            self.finish(tx, &events, caller, client).await
        })
        .await
    }

    /// The caller watches a task (idempotent; viewers and up). `task.watched` only when it was not
    /// watching already.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn watch_task(&self, caller: &Caller, id: &str, client: &ClientInfo) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.watch().map_err(|d| AppError::denied(d, NO_TASK))?;
        let mut tx = self.store.begin().await?;
        // Locked so the task's events keep their order in the outbox.
        let task = tx.task_for_update(task.id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        if !tx.watch(&task, caller.user_id).await? {
            return tx.commit().await;
        }
        let events = [TaskEvent::Watched { task, user: caller.user_id }];
        self.finish(tx, &events, caller, client).await
    }

    /// The caller stops watching a task (idempotent). `task.unwatched` only when it was watching.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %id))]
    pub async fn unwatch_task(&self, caller: &Caller, id: &str, client: &ClientInfo) -> Result<()> {
        let (task, access) = self.visible_task(caller, id).await?;
        access.read().map_err(|d| AppError::denied(d, NO_TASK))?;
        let mut tx = self.store.begin().await?;
        let task = tx.task_for_update(task.id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        if !tx.unwatch(task.id, caller.user_id).await? {
            return tx.commit().await;
        }
        let events = [TaskEvent::Unwatched { task, user: caller.user_id }];
        self.finish(tx, &events, caller, client).await
    }

    /// Applies one patch (status, priority, assignees, labels) to up to 100 tasks, each on its own.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, tasks = ids.len()))]
    pub async fn bulk_update(
        &self,
        caller: &Caller,
        ids: &[String],
        fields: &TaskFields,
        mask: &[String],
        client: &ClientInfo,
    ) -> Result<BulkOutcome> {
        // Every count is checked on the request as sent, before any id or path is read; only then
        // is the patch parsed (bounded by its own counts), as no task's access can be known sooner.
        let mut v = Violations::default();
        if ids.is_empty() || ids.len() > MAX_BULK {
            v.push(FieldViolation::new("ids", "give 1 to 100 task ids"));
        }
        let paths = match parse_mask(mask, BULK_PATHS) {
            Ok(paths) => Some(paths),
            Err(AppError::Validation(violations)) => {
                v.0.extend(violations);
                None
            }
            Err(other) => return Err(other),
        };
        let (Some(paths), true) = (paths, v.is_empty()) else {
            return Err(AppError::Validation(v.0));
        };
        let patch = parse_patch(paths, fields)?;
        let mut outcome = BulkOutcome { updated: Vec::new(), failed: Vec::new() };
        let mut done: HashSet<&str> = HashSet::with_capacity(ids.len());
        for id in ids {
            if !done.insert(id.as_str()) {
                continue;
            }
            let result = async {
                let (task, access) = self.visible_task(caller, id).await?;
                access.write().map_err(|d| AppError::denied(d, NO_TASK))?;
                self.update_visible(caller, task, &patch, None, client).await
            }
            .await;
            match result {
                Ok(task) => outcome.updated.push(task),
                Err(error @ (AppError::Unavailable(_) | AppError::Internal(_))) => {
                    tracing::warn!(%id, %error, "one task of a bulk update failed");
                    outcome.failed.push((id.clone(), error));
                }
                Err(error) => outcome.failed.push((id.clone(), error)),
            }
        }
        Ok(outcome)
    }

    /// Comments on a task (members and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %task_id))]
    pub async fn add_comment(
        &self,
        caller: &Caller,
        task_id: &str,
        body: &str,
        client: &ClientInfo,
    ) -> Result<Comment> {
        let (task, access) = self.visible_task(caller, task_id).await?;
        access.write().map_err(|d| AppError::denied(d, NO_TASK))?;
        let body = CommentBody::parse(body).map_err(|v| AppError::Validation(vec![v]))?;
        let mut tx = self.store.begin().await?;
        // Locked so the task's events keep their order in the outbox.
        let task = tx.task_for_update(task.id).await?.ok_or(AppError::NotFound(NO_TASK))?;
        let now = now();
        let comment = Comment {
            id: Uuid::now_v7(),
            task_id: task.id,
            project_id: task.project_id,
            author_id: caller.user_id,
            body,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        tx.insert_comment(&comment).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::CommentAdded { task, comment: comment.clone(), recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(comment)
    }

    /// A task's comments, oldest first (viewers and up).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, task = %task_id))]
    pub async fn list_comments(&self, caller: &Caller, task_id: &str, limit: i32, cursor: &str) -> Result<CommentPage> {
        let (task, access) = self.visible_task(caller, task_id).await?;
        access.read().map_err(|d| AppError::denied(d, NO_TASK))?;
        let limit = cursor::limit(limit)?;
        let after = cursor::decode_comment(cursor, task.id)?;
        let mut comments = self.store.list_comments(task.id, after, limit + 1).await?;
        let next_cursor = if comments.len() > limit as usize {
            comments.truncate(limit as usize);
            comments.last().map(|c| cursor::encode_comment(task.id, c.created_at, c.id))
        } else {
            None
        };
        Ok(CommentPage { comments, next_cursor })
    }

    /// A comment the caller can see, with the caller's access to its project.
    async fn visible_comment(&self, caller: &Caller, id: &str) -> Result<(Comment, Access)> {
        let id = id_of(id, NO_COMMENT)?;
        let comment = self.store.comment(id).await?.ok_or(AppError::NotFound(NO_COMMENT))?;
        let (access, _) = self.access(caller, comment.project_id, NO_COMMENT).await?;
        Ok((comment, access))
    }

    /// Edits a comment's body (its author only).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, comment = %id))]
    pub async fn update_comment(
        &self,
        caller: &Caller,
        id: &str,
        body: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Comment> {
        let (comment, access) = self.visible_comment(caller, id).await?;
        access.edit_comment(comment.author_id == caller.user_id).map_err(|d| AppError::denied(d, NO_COMMENT))?;
        let body = CommentBody::parse(body).map_err(|v| AppError::Validation(vec![v]))?;
        let mut tx = self.store.begin().await?;
        // The task first, as when a comment is added: its events keep their order in the outbox,
        // and every comment write takes the two locks in the same order.
        let task = tx.task_for_update(comment.task_id).await?.ok_or(AppError::NotFound(NO_COMMENT))?;
        let mut comment = tx.comment_for_update(comment.id).await?.ok_or(AppError::NotFound(NO_COMMENT))?;
        check_version(comment.version, expected_version)?;
        if comment.body == body {
            return Ok(comment);
        }
        let previous = comment.version;
        comment.body = body;
        comment.updated_at = now();
        comment.version += 1;
        tx.update_comment(&comment, previous).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        let events = [TaskEvent::CommentUpdated { task, comment: comment.clone(), recipients }];
        self.finish(tx, &events, caller, client).await?;
        Ok(comment)
    }

    /// Deletes a comment (its author, or a project admin or owner).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, comment = %id))]
    pub async fn delete_comment(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let (comment, access) = self.visible_comment(caller, id).await?;
        access.delete_comment(comment.author_id == caller.user_id).map_err(|d| AppError::denied(d, NO_COMMENT))?;
        let mut tx = self.store.begin().await?;
        let task = tx.task_for_update(comment.task_id).await?.ok_or(AppError::NotFound(NO_COMMENT))?;
        let comment = tx.comment_for_update(comment.id).await?.ok_or(AppError::NotFound(NO_COMMENT))?;
        check_version(comment.version, expected_version)?;
        tx.delete_comment(comment.id).await?;
        let watchers = tx.watchers(task.id).await?;
        let recipients = task.recipients(&watchers);
        // Recorded whoever deletes it: an admin removing someone else's comment leaves a trace.
        let events = [TaskEvent::CommentDeleted { task, comment, recipients }];
        self.finish(tx, &events, caller, client).await
    }
}

/// How many tasks on each side of a gap a first re-spacing rewrites; each retry doubles it.
const RESPACE_REACH: u32 = 4;

/// The position for task `id` (moving, or being created) between `lower` and `upper`, its new
/// neighbours (`None`: the start or the end of the board). Requires the board lock.
///
/// Normally a key strictly between them, which rewrites no other task. When that key would be
/// long (inserts into one gap over and over lengthen it), the tasks around the gap are re-spaced
/// instead: the `reach` tasks on each side, from the neighbours outwards, get short evenly spaced
/// keys between the window's outer bounds, and the task takes the slot right after `lower`. The
/// reach doubles until the bounds leave room, up to the whole board, so keys stay within
/// [`crate::domain::LONG_POSITION_LEN`] and a move rewrites a handful of rows, amortised.
///
/// Re-spaced tasks keep their `version` and `updated_at` and raise no event: their order is
/// unchanged, only the opaque keys that encode it are; `version` guards a task's writable fields
/// against lost updates, and bumping it (or notifying watchers) for someone else's move elsewhere
/// on the board would fail their `If-Match` writes and notify about nothing they could see.
pub(super) async fn place(
    tx: &mut dyn TaskTx,
    project_id: Uuid,
    id: Uuid,
    lower: Option<&Position>,
    upper: Option<&Position>,
) -> Result<Position> {
    match Position::between(lower, upper) {
        Ok(key) if !key.is_long() => return Ok(key),
        Ok(_) | Err(PositionError::TooLong) => {}
        Err(error @ PositionError::NotOrdered) => return Err(position_error(error)),
    }
    let mut reach = RESPACE_REACH;
    loop {
        let outer_lower = match lower {
            Some(lower) => tx.nth_neighbour(project_id, lower, Side::Before, reach, id).await?,
            None => None,
        };
        let outer_upper = match upper {
            Some(upper) => tx.nth_neighbour(project_id, upper, Side::After, reach, id).await?,
            None => None,
        };
        let window = tx.board_between(project_id, outer_lower.as_ref(), outer_upper.as_ref(), id).await?;
        let whole_board = outer_lower.is_none() && outer_upper.is_none();
        let mut keys = match Position::spread(outer_lower.as_ref(), outer_upper.as_ref(), window.len() + 1) {
            Ok(keys) => keys.into_iter(),
            Err(PositionError::TooLong) if !whole_board => {
                reach = reach.saturating_mul(2);
                continue;
            }
            Err(error) => return Err(position_error(error)),
        };
        // Right after `lower`: past every task at or below it (with both neighbours given, tasks
        // between them stay after the moved one).
        let before = window.iter().take_while(|slot| lower.is_some_and(|lower| slot.position <= *lower)).count();
        let mut slots = Vec::with_capacity(window.len() + 1);
        let mut tasks = window.into_iter();
        slots.extend(
            tasks.by_ref().take(before).zip(keys.by_ref()).map(|(t, position)| BoardSlot { id: t.id, position }),
        );
        let position = keys.next().ok_or_else(|| AppError::Internal(anyhow::anyhow!("a spread fell short")))?;
        // The task itself too: a moving task must leave its old key, which the window may reuse.
        slots.push(BoardSlot { id, position: position.clone() });
        slots.extend(tasks.zip(keys).map(|(t, position)| BoardSlot { id: t.id, position }));
        tx.respace(project_id, &slots).await?;
        tracing::info!(tasks = slots.len(), reach, "board re-spaced around a crowded gap");
        return Ok(position);
    }
}

fn position_error(error: PositionError) -> AppError {
    match error {
        PositionError::NotOrdered => AppError::field("before_id", "must come after after_id on the board"),
        PositionError::TooLong => AppError::Internal(anyhow::anyhow!("board order too dense to place a task")),
    }
}

/// The first field violation of a validation error (for checks that yield one).
fn first_violation(error: AppError) -> FieldViolation {
    match error {
        AppError::Validation(mut v) if !v.is_empty() => v.swap_remove(0),
        other => FieldViolation::new("request", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn versions_match_or_abort() {
        assert!(check_version(3, None).is_ok());
        assert!(check_version(3, Some(3)).is_ok());
        assert!(matches!(check_version(3, Some(2)), Err(AppError::VersionMismatch)));
    }

    #[test]
    fn masks_name_every_bad_path_and_refuse_project_id() {
        let err = parse_mask(&["title".into(), "project_id".into(), "colour".into()], UPDATE_PATHS).unwrap_err();
        let AppError::Validation(v) = err else { panic!("not a validation error") };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["project_id", "colour"]);
        assert!(parse_mask(&[], UPDATE_PATHS).is_err());
        assert!(parse_mask(&["title".into()], BULK_PATHS).is_err());
        assert_eq!(parse_mask(&["status".into(), "status".into()], BULK_PATHS).unwrap(), ["status"]);
    }

    #[test]
    fn full_text_requires_every_long_word_as_a_prefix() {
        assert_eq!(full_text("").unwrap(), None);
        assert_eq!(full_text("fix the login-bug").unwrap().unwrap(), "+fix* +the* +login* +bug*");
        assert_eq!(full_text("a b").unwrap().unwrap(), "+a* +b*");
        assert_eq!(full_text("go to db").unwrap().unwrap(), "+go* +to* +db*");
        assert!(full_text("+-*()").is_err());
        assert!(full_text(&"word ".repeat(41)).is_err());
    }
}
