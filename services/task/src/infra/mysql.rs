//! The MySQL store: tasks, assignees, labels, watchers, comments and the per-project counter in the
//! `ordo_task` schema, and the outbox rows written in the same transactions.

use async_trait::async_trait;
use ordo_events::OutboxSignal;
use ordo_platform::db::utc_datetime as utc;
use sqlx::mysql::{MySqlDatabaseError, MySqlPool};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Transaction};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::app::ports::{BoardSlot, ParentFilter, Side, SortValue, TaskQuery, TaskSort, TaskStore, TaskTx};
use crate::app::{AppError, ClientInfo, Result};
use crate::domain::{
    Assignees, Attachment, Comment, CommentBody, ContentType, Description, Estimate, Filename, Labels, NewTask,
    ParentChain, Position, Priority, Schedule, Status, Task, TaskEvent, Title,
};

const TASK_COLUMNS: &str = "t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, \
    t.priority, t.due_at, t.start_at, t.estimate_minutes, t.parent_id, t.reporter_id, t.position, t.created_at, \
    t.updated_at, t.completed_at, t.version, t.assignee_ids, t.labels";

/// Rows inserted per statement: at most twenty placeholders each, well within MariaDB's 65,535.
const INSERT_CHUNK: usize = 500;

/// Tasks re-spaced per statement: three placeholders each, well within MariaDB's 65,535.
const RESPACE_CHUNK: usize = 1000;

/// A position as stored; one this service could not have written is an internal error.
fn stored_position(raw: &str) -> Result<Position> {
    Position::parse(raw).ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored position {raw:?}")))
}

const COMMENT_COLUMNS: &str = "id, task_id, project_id, author_id, body, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    project_id: Uuid,
    number: i64,
    project_key: String,
    title: String,
    description: Option<String>,
    status: String,
    priority: u8,
    due_at: Option<PrimitiveDateTime>,
    start_at: Option<PrimitiveDateTime>,
    estimate_minutes: Option<i32>,
    parent_id: Option<Uuid>,
    reporter_id: Uuid,
    position: String,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    completed_at: Option<PrimitiveDateTime>,
    version: i64,
    /// The assignees' ids, 16 bytes each.
    assignee_ids: Vec<u8>,
    /// A JSON array of the labels.
    labels: String,
}

/// How the task row carries its assignees: their ids' bytes, one after the other.
fn packed_assignees(assignees: &Assignees) -> Vec<u8> {
    assignees.as_slice().iter().flat_map(|id| *id.as_bytes()).collect()
}

/// How the task row carries its labels: a JSON array of strings.
fn packed_labels(labels: &Labels) -> Result<String, sqlx::Error> {
    serde_json::to_string(labels.as_slice()).map_err(|e| sqlx::Error::Encode(e.into()))
}

fn corrupt(what: &str, id: Uuid) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored task {id} has an invalid {what}").into())
}

impl TaskRow {
    fn into_task(self) -> Result<Task, sqlx::Error> {
        let id = self.id;
        let (chunks, rest) = self.assignee_ids.as_chunks::<16>();
        if !rest.is_empty() {
            return Err(corrupt("assignee list", id));
        }
        let assignees = chunks.iter().map(|bytes| Uuid::from_bytes(*bytes)).collect();
        let labels: Vec<String> = serde_json::from_str(&self.labels).map_err(|_| corrupt("label list", id))?;
        let new = NewTask {
            title: Title::from_stored(&self.title).map_err(|_| corrupt("title", id))?,
            description: match self.description {
                Some(text) => Description::from_stored(&text).map_err(|_| corrupt("description", id))?,
                None => None,
            },
            status: Status::Todo,
            priority: Priority::from_rank(self.priority).ok_or_else(|| corrupt("priority", id))?,
            assignees: Assignees::from_stored(assignees),
            labels: Labels::from_stored(&labels).map_err(|_| corrupt("labels", id))?,
            schedule: Schedule::new(self.start_at.map(|t| t.assume_utc()), self.due_at.map(|t| t.assume_utc()))
                .map_err(|_| corrupt("schedule", id))?,
            estimate: self.estimate_minutes.map(Estimate::new).transpose().map_err(|_| corrupt("estimate", id))?,
            parent_id: self.parent_id,
        };
        let status = Status::parse(&self.status).ok_or_else(|| corrupt("status", id))?;
        let position = Position::parse(&self.position).ok_or_else(|| corrupt("position", id))?;
        let mut task = Task::create(
            id,
            self.project_id,
            self.project_key,
            self.number,
            new,
            self.reporter_id,
            position,
            self.created_at.assume_utc(),
        );
        task.updated_at = self.updated_at.assume_utc();
        task.version = self.version;
        Ok(task.restore(status, self.completed_at.map(|t| t.assume_utc())))
    }
}

const ATTACHMENT_COLUMNS: &str =
    "id, task_id, project_id, filename, content_type, size_bytes, sha256, uploaded_by, created_at";

#[derive(sqlx::FromRow)]
struct AttachmentRow {
    id: Uuid,
    task_id: Uuid,
    project_id: Uuid,
    filename: String,
    content_type: String,
    size_bytes: u64,
    sha256: String,
    uploaded_by: Uuid,
    created_at: PrimitiveDateTime,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = AppError;

    fn try_from(row: AttachmentRow) -> Result<Self> {
        let corrupt =
            |what: &str| AppError::Internal(anyhow::anyhow!("stored attachment {} has an invalid {what}", row.id));
        Ok(Attachment {
            id: row.id,
            task_id: row.task_id,
            project_id: row.project_id,
            filename: Filename::parse(&row.filename).map_err(|_| corrupt("filename"))?,
            content_type: ContentType::parse(&row.content_type).map_err(|_| corrupt("content type"))?,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            uploaded_by: row.uploaded_by,
            created_at: row.created_at.assume_utc(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct CommentRow {
    id: Uuid,
    task_id: Uuid,
    project_id: Uuid,
    author_id: Uuid,
    body: String,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    version: i64,
}

impl TryFrom<CommentRow> for Comment {
    type Error = AppError;

    fn try_from(row: CommentRow) -> Result<Self> {
        Ok(Comment {
            id: row.id,
            task_id: row.task_id,
            project_id: row.project_id,
            author_id: row.author_id,
            body: CommentBody::from_stored(&row.body)
                .map_err(|_| AppError::Internal(anyhow::anyhow!("stored comment {} has an invalid body", row.id)))?,
            created_at: row.created_at.assume_utc(),
            updated_at: row.updated_at.assume_utc(),
            version: row.version,
        })
    }
}

/// Whether `error` is a lost lock race worth retrying the transaction for (a deadlock, or a lock
/// wait timeout).
fn is_contention(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<MySqlDatabaseError>().is_some_and(|e| matches!(e.number(), 1205 | 1213))
        }
        _ => false,
    }
}

pub(crate) fn db(error: sqlx::Error) -> AppError {
    if is_contention(&error) {
        AppError::Contention
    } else if ordo_platform::db::is_unavailable(&error) {
        AppError::Unavailable(format!("database: {error}"))
    } else {
        AppError::Internal(error.into())
    }
}

/// The tasks of `rows`, in the rows' order.
fn tasks_of(rows: Vec<TaskRow>) -> Result<Vec<Task>, sqlx::Error> {
    rows.into_iter().map(TaskRow::into_task).collect()
}

/// One task, optionally locked for update.
pub(crate) async fn fetch_task(conn: &mut MySqlConnection, id: Uuid, lock: bool) -> Result<Option<Task>, sqlx::Error> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM task t WHERE t.id = ?{}", if lock { " FOR UPDATE" } else { "" });
    let row: Option<TaskRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await?;
    row.map(TaskRow::into_task).transpose()
}

async fn write_assignees(conn: &mut MySqlConnection, tasks: &[Task], replace: bool) -> Result<(), sqlx::Error> {
    if replace {
        for task in tasks {
            sqlx::query("DELETE FROM task_assignee WHERE task_id = ?").bind(task.id).execute(&mut *conn).await?;
        }
    }
    let rows: Vec<(&Task, usize, Uuid)> = tasks
        .iter()
        .flat_map(|task| task.assignees.as_slice().iter().enumerate().map(move |(i, user)| (task, i, *user)))
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO task_assignee (task_id, user_id, project_id, ordinal, created_at) ",
        );
        sql.push_values(chunk, |mut row, (task, i, user)| {
            row.push_bind(task.id)
                .push_bind(*user)
                .push_bind(task.project_id)
                .push_bind(u16::try_from(*i).unwrap_or(u16::MAX))
                .push_bind(utc(task.created_at));
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn write_labels(conn: &mut MySqlConnection, tasks: &[Task], replace: bool) -> Result<(), sqlx::Error> {
    if replace {
        for task in tasks {
            sqlx::query("DELETE FROM task_label WHERE task_id = ?").bind(task.id).execute(&mut *conn).await?;
        }
    }
    let rows: Vec<(&Task, usize, &String)> = tasks
        .iter()
        .flat_map(|task| task.labels.as_slice().iter().enumerate().map(move |(i, label)| (task, i, label)))
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new("INSERT INTO task_label (task_id, ordinal, project_id, label) ");
        sql.push_values(chunk, |mut row, (task, i, label)| {
            row.push_bind(task.id)
                .push_bind(u16::try_from(*i).unwrap_or(u16::MAX))
                .push_bind(task.project_id)
                .push_bind(label.as_str());
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes a changed task whose stored version is `previous_version`; `false` when it is not.
pub(crate) async fn update_task_row(
    conn: &mut MySqlConnection,
    task: &Task,
    previous_version: i64,
    changed: &[&str],
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE task SET title = ?, description = ?, status = ?, priority = ?, due_at = ?, start_at = ?, \
         estimate_minutes = ?, parent_id = ?, position = ?, updated_at = ?, completed_at = ?, version = ?, \
         assignee_ids = ?, labels = ? WHERE id = ? AND version = ?",
    )
    .bind(task.title.as_str())
    .bind(task.description.as_ref().map(Description::as_str))
    .bind(task.status().as_str())
    .bind(task.priority.rank())
    .bind(task.schedule.due_at().map(utc))
    .bind(task.schedule.start_at().map(utc))
    .bind(task.estimate.map(Estimate::minutes))
    .bind(task.parent_id)
    .bind(task.position.as_str())
    .bind(utc(task.updated_at))
    .bind(task.completed_at().map(utc))
    .bind(task.version)
    .bind(packed_assignees(&task.assignees))
    .bind(packed_labels(&task.labels)?)
    .bind(task.id)
    .bind(previous_version)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    if changed.contains(&"assignee_ids") {
        write_assignees(conn, std::slice::from_ref(task), true).await?;
    }
    if changed.contains(&"labels") {
        write_labels(conn, std::slice::from_ref(task), true).await?;
    }
    Ok(true)
}

/// The task's watchers.
pub(crate) async fn watchers(conn: &mut MySqlConnection, task_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM task_watcher WHERE task_id = ? ORDER BY user_id")
        .bind(task_id)
        .fetch_all(conn)
        .await
}

/// Appends `event` to the outbox.
pub(crate) async fn record(
    conn: &mut MySqlConnection,
    event: &TaskEvent,
    actor: Option<String>,
    client: &ClientInfo,
) -> Result<()> {
    let envelope = super::envelope::envelope(event, actor, client);
    ordo_events::enqueue(conn, &envelope).await.map_err(outbox_error)
}

fn outbox_error(error: ordo_events::Error) -> AppError {
    match error {
        ordo_events::Error::Database(e) => db(e),
        other => AppError::Internal(other.into()),
    }
}

/// The task service's MySQL store.
#[derive(Debug, Clone)]
pub struct MySqlTaskStore {
    pool: MySqlPool,
    signal: OutboxSignal,
}

impl MySqlTaskStore {
    /// A store on `pool` that wakes the relay through `signal` after each commit.
    pub fn new(pool: MySqlPool, signal: OutboxSignal) -> Self {
        Self { pool, signal }
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
fn push_keyset(sql: &mut QueryBuilder<'_, MySql>, columns: SortColumns, sort: TaskSort, value: &SortValue, id: Uuid) {
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

fn push_value(sql: &mut QueryBuilder<'_, MySql>, value: &SortValue) {
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

fn push_order(sql: &mut QueryBuilder<'_, MySql>, columns: SortColumns, query: &TaskQuery) {
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

#[async_trait]
impl TaskStore for MySqlTaskStore {
    async fn begin(&self) -> Result<Box<dyn TaskTx>> {
        let tx = self.pool.begin().await.map_err(db)?;
        Ok(Box::new(MySqlTaskTx { tx, signal: self.signal.clone(), events: Vec::new() }))
    }

    async fn ensure_counter(&self, project_id: Uuid) -> Result<()> {
        sqlx::query("INSERT IGNORE INTO task_counter (project_id, last_number) VALUES (?, 0)")
            .bind(project_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn task(&self, id: Uuid) -> Result<Option<Task>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        fetch_task(&mut conn, id, false).await.map_err(db)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn tasks_by_key(&self, project_key: &str, number: i64) -> Result<Vec<Task>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM task t WHERE t.project_key = ? AND t.number = ? ORDER BY t.created_at DESC"
        );
        let rows: Vec<TaskRow> =
            sqlx::query_as(&sql).bind(project_key).bind(number).fetch_all(&self.pool).await.map_err(db)?;
        tasks_of(rows).map_err(db)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
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
        let rows: Vec<TaskRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        tasks_of(rows).map_err(db)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn comment(&self, id: Uuid) -> Result<Option<Comment>> {
        let sql = format!("SELECT {COMMENT_COLUMNS} FROM comment WHERE id = ?");
        let row: Option<CommentRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(Comment::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_comments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        let mut sql = oldest_first_of_task(COMMENT_COLUMNS, "comment", task_id, after, limit);
        let rows: Vec<CommentRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows.into_iter().map(Comment::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachment WHERE id = ?");
        let row: Option<AttachmentRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(Attachment::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Attachment>> {
        let mut sql = oldest_first_of_task(ATTACHMENT_COLUMNS, "attachment", task_id, after, limit);
        let rows: Vec<AttachmentRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows.into_iter().map(Attachment::try_from).collect()
    }

    async fn schedule_object_deletion(&self, key: &str, due_at: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO object_deletion (object_key, due_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE due_at = ?",
        )
        .bind(key)
        .bind(utc(due_at))
        .bind(utc(due_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn due_object_deletions(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT object_key FROM object_deletion WHERE due_at <= ? ORDER BY due_at LIMIT ?")
            .bind(utc(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn forget_object_deletion(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM object_deletion WHERE object_key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// A page of a task's comments or attachments (`table`), oldest first, keyset on (created_at, id).
fn oldest_first_of_task(
    columns: &str,
    table: &str,
    task_id: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: u32,
) -> QueryBuilder<'static, MySql> {
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

/// One MySQL transaction of the task service.
struct MySqlTaskTx {
    tx: Transaction<'static, MySql>,
    signal: OutboxSignal,
    /// The transaction's events, written to the outbox together just before the commit.
    events: Vec<ordo_proto::events::v1::Envelope>,
}

#[async_trait]
impl TaskTx for MySqlTaskTx {
    async fn take_numbers(&mut self, project_id: Uuid, count: usize) -> Result<i64> {
        let count = i64::try_from(count).map_err(|_| AppError::Internal(anyhow::anyhow!("too many numbers")))?;
        // `LAST_INSERT_ID(expr)` hands the new value back with the update's result: one round trip.
        let updated =
            sqlx::query("UPDATE task_counter SET last_number = LAST_INSERT_ID(last_number + ?) WHERE project_id = ?")
                .bind(count)
                .bind(project_id)
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
        if updated.rows_affected() != 1 {
            return Err(AppError::Internal(anyhow::anyhow!("project {project_id} has no task counter")));
        }
        let last = i64::try_from(updated.last_insert_id())
            .map_err(|_| AppError::Internal(anyhow::anyhow!("task counter out of range")))?;
        Ok(last - count + 1)
    }

    async fn lock_board(&mut self, project_id: Uuid) -> Result<bool> {
        let row: Option<i64> =
            sqlx::query_scalar("SELECT last_number FROM task_counter WHERE project_id = ? FOR UPDATE")
                .bind(project_id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(db)?;
        Ok(row.is_some())
    }

    async fn last_position(&mut self, project_id: Uuid) -> Result<Option<Position>> {
        let last: Option<String> =
            sqlx::query_scalar("SELECT position FROM task WHERE project_id = ? ORDER BY position DESC LIMIT 1")
                .bind(project_id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(db)?;
        last.map(|p| stored_position(&p)).transpose()
    }

    async fn neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        except: Uuid,
    ) -> Result<Option<Position>> {
        self.nth_neighbour(project_id, of, side, 1, except).await
    }

    async fn nth_neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        nth: u32,
        except: Uuid,
    ) -> Result<Option<Position>> {
        let sql = match side {
            Side::After => {
                "SELECT position FROM task WHERE project_id = ? AND position > ? AND id <> ? \
                 ORDER BY position LIMIT 1 OFFSET ?"
            }
            Side::Before => {
                "SELECT position FROM task WHERE project_id = ? AND position < ? AND id <> ? \
                 ORDER BY position DESC LIMIT 1 OFFSET ?"
            }
        };
        let found: Option<String> = sqlx::query_scalar(sql)
            .bind(project_id)
            .bind(of.as_str())
            .bind(except)
            .bind(nth.saturating_sub(1))
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db)?;
        found.map(|p| stored_position(&p)).transpose()
    }

    async fn board_between(
        &mut self,
        project_id: Uuid,
        lower: Option<&Position>,
        upper: Option<&Position>,
        except: Uuid,
    ) -> Result<Vec<BoardSlot>> {
        let mut sql = QueryBuilder::<MySql>::new("SELECT id, position FROM task WHERE project_id = ");
        sql.push_bind(project_id).push(" AND id <> ").push_bind(except);
        if let Some(lower) = lower {
            sql.push(" AND position > ").push_bind(lower.as_str());
        }
        if let Some(upper) = upper {
            sql.push(" AND position < ").push_bind(upper.as_str());
        }
        sql.push(" ORDER BY position");
        let rows: Vec<(Uuid, String)> = sql.build_query_as().fetch_all(&mut *self.tx).await.map_err(db)?;
        rows.into_iter().map(|(id, p)| Ok(BoardSlot { id, position: stored_position(&p)? })).collect()
    }

    async fn respace(&mut self, project_id: Uuid, slots: &[BoardSlot]) -> Result<()> {
        // MariaDB checks the unique (project_id, position) row by row, so a task cannot take a
        // position another of these tasks still holds. Every one is first parked on a key of its
        // own that no real key can equal (`~` is outside the alphabet, and sorts after it), then
        // each takes its new key, which by then only other tasks' keys could collide with. The
        // parked keys live only inside this transaction, which holds the board lock, so no one
        // sees them.
        for chunk in slots.chunks(RESPACE_CHUNK) {
            let mut park =
                QueryBuilder::<MySql>::new("UPDATE task SET position = CONCAT('~', HEX(id)) WHERE project_id = ");
            park.push_bind(project_id).push(" AND id IN (");
            let mut ids = park.separated(", ");
            for slot in chunk {
                ids.push_bind(slot.id);
            }
            park.push(")");
            park.build().execute(&mut *self.tx).await.map_err(db)?;
        }
        for chunk in slots.chunks(RESPACE_CHUNK) {
            let mut place = QueryBuilder::<MySql>::new("UPDATE task SET position = CASE id");
            for slot in chunk {
                place.push(" WHEN ").push_bind(slot.id).push(" THEN ").push_bind(slot.position.as_str());
            }
            place.push(" END WHERE project_id = ").push_bind(project_id).push(" AND id IN (");
            let mut ids = place.separated(", ");
            for slot in chunk {
                ids.push_bind(slot.id);
            }
            place.push(")");
            place.build().execute(&mut *self.tx).await.map_err(db)?;
        }
        Ok(())
    }

    async fn task_for_update(&mut self, id: Uuid) -> Result<Option<Task>> {
        fetch_task(&mut self.tx, id, true).await.map_err(db)
    }

    async fn task(&mut self, id: Uuid) -> Result<Option<Task>> {
        fetch_task(&mut self.tx, id, false).await.map_err(db)
    }

    async fn parent_chain(&mut self, parent_id: Uuid) -> Result<Option<ParentChain>> {
        // Bounded at 10 levels, so even a corrupted tree cannot loop.
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "WITH RECURSIVE chain (id, parent_id, project_id, lvl) AS ( \
               SELECT id, parent_id, project_id, CAST(1 AS SIGNED) FROM task WHERE id = ? \
               UNION ALL \
               SELECT t.id, t.parent_id, t.project_id, c.lvl + 1 FROM task t JOIN chain c ON t.id = c.parent_id \
               WHERE c.lvl < 10) \
             SELECT id, project_id FROM chain ORDER BY lvl",
        )
        .bind(parent_id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        let Some((_, project_id)) = rows.first().copied() else { return Ok(None) };
        Ok(Some(ParentChain { project_id, ancestors: rows.into_iter().map(|(id, _)| id).collect() }))
    }

    async fn subtree(&mut self, id: Uuid) -> Result<(Vec<Uuid>, usize)> {
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "WITH RECURSIVE sub (id, lvl) AS ( \
               SELECT id, CAST(1 AS SIGNED) FROM task WHERE parent_id = ? \
               UNION ALL \
               SELECT t.id, s.lvl + 1 FROM task t JOIN sub s ON t.parent_id = s.id WHERE s.lvl < 10) \
             SELECT id, lvl FROM sub ORDER BY lvl, id",
        )
        .bind(id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        let depth = rows.iter().map(|(_, lvl)| *lvl).max().unwrap_or(0);
        let height = usize::try_from(depth).unwrap_or(usize::MAX).saturating_add(1);
        Ok((rows.into_iter().map(|(id, _)| id).collect(), height))
    }

    async fn watchers(&mut self, task_id: Uuid) -> Result<Vec<Uuid>> {
        watchers(&mut self.tx, task_id).await.map_err(db)
    }

    async fn insert_tasks(&mut self, tasks: &[Task]) -> Result<()> {
        for chunk in tasks.chunks(INSERT_CHUNK) {
            let mut sql = QueryBuilder::<MySql>::new(
                "INSERT INTO task (id, project_id, number, project_key, title, description, status, priority, \
                 due_at, start_at, estimate_minutes, parent_id, reporter_id, position, created_at, updated_at, \
                 completed_at, version, assignee_ids, labels) ",
            );
            let mut labels = Vec::with_capacity(chunk.len());
            for task in chunk {
                labels.push(packed_labels(&task.labels).map_err(db)?);
            }
            sql.push_values(chunk.iter().zip(labels), |mut row, (task, labels)| {
                row.push_bind(task.id)
                    .push_bind(task.project_id)
                    .push_bind(task.number)
                    .push_bind(&task.project_key)
                    .push_bind(task.title.as_str())
                    .push_bind(task.description.as_ref().map(Description::as_str))
                    .push_bind(task.status().as_str())
                    .push_bind(task.priority.rank())
                    .push_bind(task.schedule.due_at().map(utc))
                    .push_bind(task.schedule.start_at().map(utc))
                    .push_bind(task.estimate.map(Estimate::minutes))
                    .push_bind(task.parent_id)
                    .push_bind(task.reporter_id)
                    .push_bind(task.position.as_str())
                    .push_bind(utc(task.created_at))
                    .push_bind(utc(task.updated_at))
                    .push_bind(task.completed_at().map(utc))
                    .push_bind(task.version)
                    .push_bind(packed_assignees(&task.assignees))
                    .push_bind(labels);
            });
            sql.build().execute(&mut *self.tx).await.map_err(db)?;
        }
        write_assignees(&mut self.tx, tasks, false).await.map_err(db)?;
        write_labels(&mut self.tx, tasks, false).await.map_err(db)?;
        Ok(())
    }

    async fn update_task(&mut self, task: &Task, previous_version: i64, changed: &[&'static str]) -> Result<()> {
        if update_task_row(&mut self.tx, task, previous_version, changed).await.map_err(db)? {
            Ok(())
        } else {
            Err(AppError::VersionMismatch)
        }
    }

    async fn delete_tasks(&mut self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Assignees, labels, watchers and comments go by the foreign keys' cascades; deepest first,
        // so no cascade has to reach a row this statement deletes anyway.
        for id in ids.iter().rev() {
            // The attachments go by the cascade too; their objects are scheduled for deletion first.
            sqlx::query(
                "INSERT INTO object_deletion (object_key, due_at) SELECT object_key, UTC_TIMESTAMP(6) \
                 FROM attachment WHERE task_id = ? ON DUPLICATE KEY UPDATE due_at = VALUES(due_at)",
            )
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
            sqlx::query("DELETE FROM task WHERE id = ?").bind(id).execute(&mut *self.tx).await.map_err(db)?;
        }
        Ok(())
    }

    async fn watch(&mut self, task: &Task, user_id: Uuid) -> Result<bool> {
        let done = sqlx::query("INSERT IGNORE INTO task_watcher (task_id, user_id, project_id) VALUES (?, ?, ?)")
            .bind(task.id)
            .bind(user_id)
            .bind(task.project_id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn unwatch(&mut self, task_id: Uuid, user_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM task_watcher WHERE task_id = ? AND user_id = ?")
            .bind(task_id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_comment(&mut self, comment: &Comment) -> Result<()> {
        sqlx::query(
            "INSERT INTO comment (id, task_id, project_id, author_id, body, created_at, updated_at, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(comment.id)
        .bind(comment.task_id)
        .bind(comment.project_id)
        .bind(comment.author_id)
        .bind(comment.body.as_str())
        .bind(utc(comment.created_at))
        .bind(utc(comment.updated_at))
        .bind(comment.version)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn comment_for_update(&mut self, id: Uuid) -> Result<Option<Comment>> {
        let sql = format!("SELECT {COMMENT_COLUMNS} FROM comment WHERE id = ? FOR UPDATE");
        let row: Option<CommentRow> = sqlx::query_as(&sql).bind(id).fetch_optional(&mut *self.tx).await.map_err(db)?;
        row.map(Comment::try_from).transpose()
    }

    async fn update_comment(&mut self, comment: &Comment, previous_version: i64) -> Result<()> {
        let result =
            sqlx::query("UPDATE comment SET body = ?, updated_at = ?, version = ? WHERE id = ? AND version = ?")
                .bind(comment.body.as_str())
                .bind(utc(comment.updated_at))
                .bind(comment.version)
                .bind(comment.id)
                .bind(previous_version)
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
        if result.rows_affected() == 1 { Ok(()) } else { Err(AppError::VersionMismatch) }
    }

    async fn delete_comment(&mut self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM comment WHERE id = ?").bind(id).execute(&mut *self.tx).await.map_err(db)?;
        Ok(())
    }

    async fn insert_attachment(&mut self, attachment: &Attachment) -> Result<()> {
        let key = attachment.key();
        sqlx::query(
            "INSERT INTO attachment (id, task_id, project_id, filename, content_type, size_bytes, sha256, \
             uploaded_by, created_at, object_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(attachment.id)
        .bind(attachment.task_id)
        .bind(attachment.project_id)
        .bind(attachment.filename.as_str())
        .bind(attachment.content_type.as_str())
        .bind(attachment.size_bytes)
        .bind(&attachment.sha256)
        .bind(attachment.uploaded_by)
        .bind(utc(attachment.created_at))
        .bind(&key)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        // The object is an attachment's now: its upload guard goes.
        sqlx::query("DELETE FROM object_deletion WHERE object_key = ?")
            .bind(&key)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn attachment_for_update(&mut self, id: Uuid) -> Result<Option<Attachment>> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachment WHERE id = ? FOR UPDATE");
        let row: Option<AttachmentRow> =
            sqlx::query_as(&sql).bind(id).fetch_optional(&mut *self.tx).await.map_err(db)?;
        row.map(Attachment::try_from).transpose()
    }

    async fn delete_attachment(&mut self, attachment: &Attachment) -> Result<()> {
        sqlx::query(
            "INSERT INTO object_deletion (object_key, due_at) SELECT object_key, UTC_TIMESTAMP(6) FROM attachment \
             WHERE id = ? ON DUPLICATE KEY UPDATE due_at = VALUES(due_at)",
        )
        .bind(attachment.id)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM attachment WHERE id = ?")
            .bind(attachment.id)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn record(&mut self, event: &TaskEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()> {
        // The rows the events describe are locked until the commit, so writing the events last
        // keeps their outbox order: one statement for all of them instead of one each.
        self.events.push(super::envelope::envelope(event, actor.map(|a| a.to_string()), client));
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Self { mut tx, signal, events } = *self;
        if !events.is_empty() {
            ordo_events::enqueue_all(&mut tx, &events).await.map_err(outbox_error)?;
        }
        tx.commit().await.map_err(db)?;
        if !events.is_empty() {
            signal.notify();
        }
        Ok(())
    }
}
