//! The task list. A request's filters, sort and cursor are checked and become one [`TaskQuery`];
//! a list of one project is read after the caller's access to it is checked, through the page
//! cache when the caller wants the answer encoded, and a list across projects (one assignee's
//! tasks) keeps only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::cursor;
use super::ports::{PageCache, ParentFilter, SortValue, TaskQuery, TaskSort};
use super::request::Caller;
use super::service::TaskService;
use super::shared::{EncodedPage, NO_PROJECT, first_violation};
use super::{AppError, Result};
use crate::domain::{FieldViolation, Priority, SearchWords, Status, Task, Violations};

/// How many candidate pages a list across projects scans before it returns a short page.
const MAX_SCAN_BATCHES: usize = 10;

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

/// How the caller of [`TaskService::list_tasks_encoded`] answers with a page, and how that answer
/// is stored in the page cache. Implemented by the transport, which knows its own wire format.
pub trait PageEncoder: Send + Sync {
    /// What the caller answers with.
    type Response: Send;
    /// The answer for a page just read from the database.
    fn respond(&self, page: TaskPage) -> Self::Response;
    /// The bytes of `response` as the page cache keeps them; a hit hands them back as
    /// [`EncodedPage::Stored`].
    fn encode(&self, response: &Self::Response) -> Vec<u8>;
}

/// A list request, checked: the query to run and the names its pages go by.
struct ListPlan {
    query: TaskQuery,
    /// The page size asked for; the query reads one more, to know whether another page follows.
    limit: u32,
    /// The filters in short, so a cursor cannot be replayed against other filters.
    fingerprint: String,
    /// What the page cache knows this page by: the filters, the sort, the size and the cursor.
    cache_key: String,
}

impl ListPlan {
    /// The page of `tasks` (read with one more than the limit). A scan that stopped short
    /// (`scanned_to`) still gives a cursor, so the caller can go on from there.
    fn page(&self, mut tasks: Vec<Task>, scanned_to: Option<(SortValue, Uuid)>) -> TaskPage {
        let sort = self.query.sort;
        let limit = self.limit as usize;
        let next_cursor = if tasks.len() > limit {
            tasks.truncate(limit);
            tasks.last().map(|t| {
                cursor::encode_task(&self.fingerprint, sort, &SortValue::of(t, sort, self.query.search.as_ref()), t.id)
            })
        } else {
            scanned_to.map(|(value, id)| cursor::encode_task(&self.fingerprint, sort, &value, id))
        };
        TaskPage { tasks, next_cursor }
    }
}

impl TaskService {
    /// A page of tasks by filters and one sort.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_tasks(&self, caller: &Caller, request: &ListTasks) -> Result<TaskPage> {
        let plan = plan(caller.user_id, request)?;
        self.read_page(caller, &plan).await
    }

    /// A page of tasks like [`list_tasks`](Self::list_tasks), answered as `encoder` builds it. A
    /// list of one project is served from the page cache while none of the project's tasks has
    /// changed since it was stored (after the same access check as always); a page read from the
    /// database is encoded only to be stored, and answered as built, never decoded again.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_tasks_encoded<E: PageEncoder>(
        &self,
        caller: &Caller,
        request: &ListTasks,
        encoder: &E,
    ) -> Result<EncodedPage<E::Response>> {
        let plan = plan(caller.user_id, request)?;
        match (plan.query.project_id, &self.pages) {
            (Some(project_id), Some(pages)) => {
                self.check_readable(caller, project_id).await?;
                self.cached_page(pages, project_id, &plan, encoder).await
            }
            _ => Ok(EncodedPage::Fresh(encoder.respond(self.read_page(caller, &plan).await?))),
        }
    }

    /// A page of `size` tasks of an export of `project_id`: the list `request` asks for (of that
    /// project), read from the database with no access check — the export's job was checked when it
    /// was asked for — and `me` meaning its requester.
    pub(super) async fn export_page(
        &self,
        me: Uuid,
        project_id: Uuid,
        request: &ListTasks,
        size: u32,
    ) -> Result<TaskPage> {
        let mut plan = plan(me, request)?;
        if plan.query.project_id != Some(project_id) {
            return Err(AppError::field("project_id", "an export reads one project"));
        }
        plan.limit = size;
        plan.query.limit = size + 1;
        Ok(plan.page(self.store.list_tasks(&plan.query).await?, None))
    }

    /// Indexes the words of up to `batch` tasks written before the search index, for the search
    /// to find them; how many (0 when none is left). Their projects' stored pages are stale.
    pub async fn index_words(&self, batch: u32) -> Result<usize> {
        let (indexed, projects) = self.store.index_words(batch).await?;
        if let Some(pages) = &self.pages {
            for project_id in projects {
                pages.changed(project_id).await?;
            }
        }
        Ok(indexed)
    }

    /// `NotFound` unless the caller may read the project's tasks.
    async fn check_readable(&self, caller: &Caller, project_id: Uuid) -> Result<()> {
        let (access, _) = self.access(caller, project_id, NO_PROJECT).await?;
        access.read().map_err(|d| crate::app::denied(d, NO_PROJECT))
    }

    /// The page `plan` asks for, from the database.
    async fn read_page(&self, caller: &Caller, plan: &ListPlan) -> Result<TaskPage> {
        match plan.query.project_id {
            Some(project_id) => {
                self.check_readable(caller, project_id).await?;
                Ok(plan.page(self.store.list_tasks(&plan.query).await?, None))
            }
            None => self.page_across_projects(caller, plan).await,
        }
    }

    /// The stored page of `project_id`'s list, or the page read now, stored for the next caller
    /// (encoded once, for the cache alone). The caller's access to the project is checked already.
    async fn cached_page<E: PageEncoder>(
        &self,
        pages: &Arc<dyn PageCache>,
        project_id: Uuid,
        plan: &ListPlan,
        encoder: &E,
    ) -> Result<EncodedPage<E::Response>> {
        let read = async { Ok(encoder.respond(plan.page(self.store.list_tasks(&plan.query).await?, None))) };
        Self::through_cache(pages, project_id, &plan.cache_key, read, |response| encoder.encode(response)).await
    }

    /// A page of one assignee's tasks across projects: walks the candidates in keyset order and
    /// keeps those of projects the caller can see, asking once per project; bounded, so a caller
    /// who sees few of a busy assignee's tasks gets a short page with a cursor rather than a slow
    /// one.
    async fn page_across_projects(&self, caller: &Caller, plan: &ListPlan) -> Result<TaskPage> {
        let sort = plan.query.sort;
        let mut query = plan.query.clone();
        let mut seen: HashMap<Uuid, bool> = HashMap::new();
        let mut visible = Vec::new();
        let mut scanned_to = None;
        for _ in 0..MAX_SCAN_BATCHES {
            let rows = self.store.list_tasks(&query).await?;
            let exhausted = rows.len() < query.limit as usize;
            for task in rows {
                scanned_to = Some((SortValue::of(&task, sort, query.search.as_ref()), task.id));
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
                    if visible.len() > plan.limit as usize {
                        return Ok(plan.page(visible, None));
                    }
                }
            }
            if exhausted {
                return Ok(plan.page(visible, None));
            }
            query.after = scanned_to.clone();
        }
        Ok(plan.page(visible, scanned_to))
    }
}

/// Checks `request` and turns it into the query to run; every bad field is named.
fn plan(me: Uuid, request: &ListTasks) -> Result<ListPlan> {
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
            Uuid::parse_str(&request.project_id).map_err(|_| FieldViolation::new("project_id", "must be a project id")),
        )
    };
    let assignee_id = match request.assignee_id.as_str() {
        "" => None,
        "me" => Some(me),
        raw => {
            v.check(Uuid::parse_str(raw).map_err(|_| FieldViolation::new("assignee_id", "must be a user id or `me`")))
        }
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
    let search = v.check(SearchWords::parse(&request.query, "query"));
    let label = request.label.trim();
    if label.len() > 4 * 50 || label.chars().count() > 50 {
        v.push(FieldViolation::new("label", "labels are at most 50 characters"));
    }
    let (Some(limit), Some(search)) = (limit, search) else {
        return Err(AppError::Invalid(v.0));
    };
    if !v.is_empty() {
        return Err(AppError::Invalid(v.0));
    }
    // A search of one project is ranked by relevance unless another sort is asked for; relevance
    // ranks within a project (its tie-break is the task's number).
    let sort = match (request.sort, &search, project_id) {
        (Some(TaskSort::Relevance), None, _) => {
            return Err(AppError::field("sort", "`relevance` ranks a search: give `q` too"));
        }
        (Some(TaskSort::Relevance), Some(_), None) => {
            return Err(AppError::field("sort", "`relevance` ranks within one project: give `project_id` too"));
        }
        (Some(sort), _, _) => sort,
        (None, Some(_), Some(_)) => TaskSort::Relevance,
        (None, _, _) => TaskSort::CreatedDesc,
    };
    let mut statuses: Vec<&str> = request.statuses.iter().map(|s| s.as_str()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let mut priorities: Vec<u8> = request.priorities.iter().map(|p| p.rank()).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let micros = |t: Option<OffsetDateTime>| t.map(|t| t.unix_timestamp_nanos() / 1_000);
    let filters = format!(
        "{project_id:?}|{statuses:?}|{priorities:?}|{assignee_id:?}|{label:?}|{search:?}|{:?}|{:?}|{parent:?}",
        micros(request.due_before),
        micros(request.due_after),
    );
    let fingerprint = cursor::fingerprint(&filters);
    let after = cursor::decode_task(&request.cursor, &fingerprint, sort)?;
    let cache_key = format!("{filters}|{sort:?}|{limit}|{}", request.cursor);
    let query = TaskQuery {
        project_id,
        statuses: statuses.iter().filter_map(|s| Status::parse(s)).collect(),
        priorities: priorities.iter().filter_map(|p| Priority::from_rank(*p)).collect(),
        assignee_id,
        label: (!label.is_empty()).then(|| label.to_owned()),
        search,
        due_before: request.due_before,
        due_after: request.due_after,
        parent,
        sort,
        after,
        limit: limit + 1,
    };
    Ok(ListPlan { query, limit, fingerprint, cache_key })
}
