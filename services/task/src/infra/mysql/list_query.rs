//! The SQL of the lists: the task list with its filters, sort and keyset (a list of one assignee's
//! tasks read through the assignee index), and the oldest-first page of a task's comments or
//! attachments. Only building statements happens here; the store runs them.
//!
//! These statements' shape depends on the request (optional filters, `IN` lists, the sort and its
//! keyset), so they are built at run time rather than checked at compile time. Every value in them
//! is bound; what they splice into the SQL text is only fixed strings of this module (column and
//! table names, comparison operators, `ORDER BY` clauses), never input.

use ordo_platform::db::utc_datetime as utc;
use sqlx::{MySql, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::ports::{ParentFilter, SortValue, TaskQuery, TaskSort};

/// The columns of a task list, those of `TaskRow` (the checked statements reading tasks write the
/// same list out).
const TASK_COLUMNS: &str = "t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, \
    t.priority, t.due_at, t.start_at, t.estimate_minutes, t.parent_id, t.reporter_id, t.position, t.created_at, \
    t.updated_at, t.completed_at, t.version, t.assignee_ids, t.labels";

/// What a task's oldest-first page lists.
#[derive(Debug, Clone, Copy)]
pub(super) enum OfTask {
    /// Its comments, as `CommentRow`s.
    Comments,
    /// Its attachments, as `AttachmentRow`s.
    Attachments,
}

impl OfTask {
    /// The table and the columns its page selects: fixed strings, spliced into the statement.
    fn table_and_columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Comments => ("comment", "id, task_id, project_id, author_id, body, created_at, updated_at, version"),
            Self::Attachments => (
                "attachment",
                "id, task_id, project_id, filename, content_type, size_bytes, sha256, uploaded_by, created_at",
            ),
        }
    }
}

/// The columns a list sorts by: a list of one assignee's tasks is read through the assignee index
/// (`user_id, created_at, task_id`), so it sorts by that table's copies of `created_at` and the id.
#[derive(Debug, Clone, Copy)]
struct SortColumns {
    created_at: &'static str,
    id: &'static str,
}

impl SortColumns {
    fn of(query: &TaskQuery) -> Self {
        if query.assignee_id.is_some() {
            Self { created_at: "a.created_at", id: "a.task_id" }
        } else {
            Self { created_at: "t.created_at", id: "t.id" }
        }
    }

    fn key(self, sort: TaskSort) -> &'static str {
        match sort {
            TaskSort::CreatedAsc | TaskSort::CreatedDesc => self.created_at,
            TaskSort::UpdatedAsc | TaskSort::UpdatedDesc => "t.updated_at",
            TaskSort::PriorityAsc | TaskSort::PriorityDesc => "t.priority",
            TaskSort::DueAsc | TaskSort::DueDesc => "t.due_at",
            TaskSort::Position => "t.position",
        }
    }
}

/// Appends the keyset condition "after (value, id)" of `sort`.
fn push_keyset(sql: &mut QueryBuilder<MySql>, columns: SortColumns, sort: TaskSort, value: &SortValue, id: Uuid) {
    let op = if sort.descending() { "<" } else { ">" };
    let id_column = columns.id;
    match value {
        SortValue::Due(None) => {
            // Tasks without a due date come last, by id.
            sql.push(format!(" AND t.due_missing = TRUE AND {id_column} {op} ")).push_bind(id);
        }
        SortValue::Due(Some(due)) => {
            sql.push(format!(" AND (t.due_missing = TRUE OR (t.due_missing = FALSE AND (t.due_at {op} "))
                .push_bind(utc(*due))
                .push(" OR (t.due_at = ")
                .push_bind(utc(*due))
                .push(format!(" AND {id_column} {op} "))
                .push_bind(id)
                .push("))))");
        }
        other => {
            let column = columns.key(sort);
            // Spelled out rather than as a row comparison, so MariaDB uses the (sort key, id) index.
            sql.push(format!(" AND ({column} {op} "));
            push_value(sql, other);
            sql.push(format!(" OR ({column} = "));
            push_value(sql, other);
            sql.push(format!(" AND {id_column} {op} ")).push_bind(id).push("))");
        }
    }
}

fn push_value(sql: &mut QueryBuilder<MySql>, value: &SortValue) {
    match value {
        SortValue::Time(t) | SortValue::Due(Some(t)) => {
            sql.push_bind(utc(*t));
        }
        SortValue::Due(None) => {
            sql.push("NULL");
        }
        SortValue::Rank(r) => {
            sql.push_bind(*r);
        }
        SortValue::Position(p) => {
            sql.push_bind(p.clone());
        }
    }
}

fn push_order(sql: &mut QueryBuilder<MySql>, columns: SortColumns, query: &TaskQuery) {
    let sort = query.sort;
    let key = columns.key(sort);
    let id = columns.id;
    let order = match sort {
        // Positions are unique within a project, so there the id never breaks a tie, and leaving it
        // out lets MariaDB read the board straight from the (project_id, position) index.
        TaskSort::Position if query.project_id.is_some() => format!(" ORDER BY {key}"),
        // Tasks without a due date last in both directions.
        TaskSort::DueAsc => format!(" ORDER BY t.due_missing, {key}, {id}"),
        TaskSort::DueDesc => format!(" ORDER BY t.due_missing, {key} DESC, {id} DESC"),
        other if other.descending() => format!(" ORDER BY {key} DESC, {id} DESC"),
        _ => format!(" ORDER BY {key}, {id}"),
    };
    sql.push(order);
}

/// The tasks `ids` (at most a batch of them), locked for update.
pub(super) fn tasks_for_update(ids: &[Uuid]) -> QueryBuilder<MySql> {
    let mut sql = QueryBuilder::<MySql>::new(format!("SELECT {TASK_COLUMNS} FROM task t WHERE t.id IN ("));
    let mut list = sql.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    sql.push(") FOR UPDATE");
    sql
}

/// The statement reading the page of tasks `query` asks for.
pub(super) fn tasks(query: &TaskQuery) -> QueryBuilder<MySql> {
    let columns = SortColumns::of(query);
    let mut sql = QueryBuilder::<MySql>::new(format!("SELECT {TASK_COLUMNS} FROM task t"));
    if let Some(assignee) = query.assignee_id {
        sql.push(" JOIN task_assignee a ON a.task_id = t.id AND a.user_id = ").push_bind(assignee);
    }
    sql.push(" WHERE TRUE");
    if let Some(project_id) = query.project_id {
        sql.push(" AND t.project_id = ").push_bind(project_id);
    }
    if !query.statuses.is_empty() {
        sql.push(" AND t.status IN (");
        let mut list = sql.separated(", ");
        for status in &query.statuses {
            list.push_bind(status.as_str());
        }
        sql.push(")");
    }
    if !query.priorities.is_empty() {
        sql.push(" AND t.priority IN (");
        let mut list = sql.separated(", ");
        for priority in &query.priorities {
            list.push_bind(priority.rank());
        }
        sql.push(")");
    }
    if let Some(label) = &query.label {
        sql.push(
            " AND EXISTS (SELECT 1 FROM task_label l WHERE l.project_id = t.project_id AND l.task_id = t.id \
             AND l.label = ",
        )
        .push_bind(label.clone())
        .push(")");
    }
    if let Some(text) = &query.text {
        sql.push(" AND MATCH (t.title, t.description) AGAINST (").push_bind(text.clone()).push(" IN BOOLEAN MODE)");
    }
    if let Some(before) = query.due_before {
        sql.push(" AND t.due_at < ").push_bind(utc(before));
    }
    if let Some(after) = query.due_after {
        sql.push(" AND t.due_at > ").push_bind(utc(after));
    }
    match query.parent {
        None => {}
        Some(ParentFilter::Root) => {
            sql.push(" AND t.parent_id IS NULL");
        }
        Some(ParentFilter::Of(parent)) => {
            sql.push(" AND t.parent_id = ").push_bind(parent);
        }
    }
    if let Some((value, id)) = &query.after {
        push_keyset(&mut sql, columns, query.sort, value, *id);
    }
    push_order(&mut sql, columns, query);
    sql.push(" LIMIT ").push_bind(query.limit);
    sql
}

/// A page of a task's comments or attachments (`of`), oldest first, keyset on (created_at, id).
pub(super) fn oldest_first_of_task(
    of: OfTask,
    task_id: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: u32,
) -> QueryBuilder<MySql> {
    let (table, columns) = of.table_and_columns();
    let mut sql = QueryBuilder::<MySql>::new(format!("SELECT {columns} FROM {table} WHERE task_id = "));
    sql.push_bind(task_id);
    if let Some((created_at, id)) = after {
        sql.push(" AND (created_at > ")
            .push_bind(utc(created_at))
            .push(" OR (created_at = ")
            .push_bind(utc(created_at))
            .push(" AND id > ")
            .push_bind(id)
            .push("))");
    }
    sql.push(" ORDER BY created_at, id LIMIT ").push_bind(limit);
    sql
}
