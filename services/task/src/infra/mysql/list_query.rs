//! The SQL of the lists: the task list with its filters, sort and keyset (a list of one assignee's
//! tasks read through the assignee index; a search read from the word index or checked task by
//! task, [`WordPlan`]), and the oldest-first page of a task's comments or
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
/// same list out): times as microseconds since the epoch (`TaskRow` says why).
const TASK_COLUMNS: &str = "t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, \
    t.priority, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.due_at) AS due_at, \
    TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.start_at) AS start_at, t.estimate_minutes, t.parent_id, \
    t.reporter_id, t.position, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.created_at) AS created_at, \
    TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.updated_at) AS updated_at, \
    TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.completed_at) AS completed_at, t.version, t.assignee_ids, t.labels";

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
    pub(super) fn table_and_columns(self) -> (&'static str, &'static str) {
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
            // Read from the word index (`tasks` orders by the score there); anywhere else, the
            // tie-break alone: newest first.
            TaskSort::Relevance => "t.number",
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
        SortValue::Relevance { number, .. } => {
            sql.push_bind(*number);
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

/// How a list with a search reads the words' rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WordPlan {
    /// From one word's rows in the project (its `driver`-th), in the order of the word index when
    /// the list is ranked by relevance, the other words joined by task: for a rare word, and for
    /// relevance, which the word index keeps in order.
    FromWord { driver: usize },
    /// In the list's own order, each task checked for the words: for common words, where the
    /// page fills long before the list's end.
    Checked,
}

/// The statement reading the page of tasks `query` asks for; `words` says how a search is read
/// (ignored without one).
pub(super) fn tasks(query: &TaskQuery, words: WordPlan) -> QueryBuilder<MySql> {
    let columns = SortColumns::of(query);
    let search = query.search.as_ref().map(|s| s.as_slice()).filter(|w| !w.is_empty());
    let from_word = match (search, words, query.project_id) {
        (Some(search), WordPlan::FromWord { driver }, Some(project_id)) if driver < search.len() => {
            Some((search, driver, project_id))
        }
        _ => None,
    };
    let mut sql = QueryBuilder::<MySql>::new("SELECT ");
    match from_word {
        Some((search, driver, _)) => {
            // The word's rows first, whatever the optimiser guesses of them.
            sql.push(format!("STRAIGHT_JOIN {TASK_COLUMNS} FROM task_word d"));
            for (i, word) in search.iter().enumerate().filter(|(i, _)| *i != driver) {
                sql.push(format!(" JOIN task_word w{i} ON w{i}.task_id = d.task_id AND w{i}.word = "))
                    .push_bind(word.as_str());
            }
            sql.push(" JOIN task t ON t.id = d.task_id");
        }
        None => {
            sql.push(format!("{TASK_COLUMNS} FROM task t"));
        }
    }
    if let Some(assignee) = query.assignee_id {
        sql.push(" JOIN task_assignee a ON a.task_id = t.id AND a.user_id = ").push_bind(assignee);
    }
    sql.push(" WHERE TRUE");
    if let Some((search, driver, project_id)) = from_word {
        sql.push(" AND d.project_id = ")
            .push_bind(project_id)
            .push(" AND d.word = ")
            .push_bind(search[driver].as_str());
    }
    if let Some(project_id) = query.project_id {
        sql.push(" AND t.project_id = ").push_bind(project_id);
    }
    push_filters(&mut sql, query);
    if let (Some(search), None) = (search, from_word) {
        // One dependent subquery (the words of one task, by the unique (task_id, word) index)
        // rather than EXISTS per word, which MariaDB would turn into a join read from the words.
        sql.push(" AND (SELECT COUNT(*) FROM task_word w WHERE w.task_id = t.id AND w.word IN (");
        let mut list = sql.separated(", ");
        for word in search {
            list.push_bind(word.as_str());
        }
        sql.push(format!(")) = {}", search.len()));
    }
    match (query.sort, from_word) {
        (TaskSort::Relevance, Some((search, driver, _))) => {
            let score = score_of(search.len(), driver);
            if let Some((SortValue::Relevance { score: last, number }, _)) = &query.after {
                sql.push(format!(" AND ({score} < "))
                    .push_bind(*last)
                    .push(format!(" OR ({score} = "))
                    .push_bind(*last)
                    .push(" AND d.number < ")
                    .push_bind(*number)
                    .push("))");
            }
            sql.push(format!(" ORDER BY {score} DESC, d.number DESC"));
        }
        _ => {
            if let Some((value, id)) = &query.after {
                push_keyset(&mut sql, columns, query.sort, value, *id);
            }
            push_order(&mut sql, columns, query);
        }
    }
    sql.push(" LIMIT ").push_bind(query.limit);
    sql
}

/// The relevance of a task read from the `driver`-th of `words` words: the sum of the words'
/// weights (the driver's alone is the word index's own order).
fn score_of(words: usize, driver: usize) -> String {
    let mut score = String::from("d.weight");
    for i in (0..words).filter(|i| *i != driver) {
        score.push_str(&format!(" + w{i}.weight"));
    }
    if words > 1 { format!("({score})") } else { score }
}

/// The filters of `query` on the task row `t` (all but the project, the assignee and the search).
fn push_filters(sql: &mut QueryBuilder<MySql>, query: &TaskQuery) {
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
