//! The task rows: reading tasks (one, by key, a parent's chain, a subtree) and writing them with
//! their assignee, label and search-word rows, deletions and watchers. The project-event consumer writes
//! through [`fetch_task`] and [`update_task_row`] too, inside its own transactions.

use ordo_platform::db::utc_datetime as utc;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use uuid::Uuid;

use super::rows::{TaskRow, packed_assignees, packed_labels, tasks_of};
use super::{db, words};
use crate::app::{AppError, Result};
use crate::domain::{Description, Estimate, ParentChain, Task, WORDS_VERSION};

/// Rows inserted per statement: at most twenty-one placeholders each, well within MariaDB's 65,535.
const INSERT_CHUNK: usize = 500;

/// One task, optionally locked for update.
pub(crate) async fn fetch_task(conn: &mut MySqlConnection, id: Uuid, lock: bool) -> Result<Option<Task>, sqlx::Error> {
    let row = if lock {
        sqlx::query_as!(
            TaskRow,
            "SELECT t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, t.priority, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.due_at) AS due_at, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.start_at) AS start_at, t.estimate_minutes, t.parent_id, \
             t.reporter_id, t.position, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.created_at) AS `created_at!`, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.updated_at) AS `updated_at!`, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.completed_at) AS completed_at, t.version, t.assignee_ids, \
             t.labels \
             FROM task t WHERE t.id = ? FOR UPDATE",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        sqlx::query_as!(
            TaskRow,
            "SELECT t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, t.priority, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.due_at) AS due_at, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.start_at) AS start_at, t.estimate_minutes, t.parent_id, \
             t.reporter_id, t.position, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.created_at) AS `created_at!`, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.updated_at) AS `updated_at!`, \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.completed_at) AS completed_at, t.version, t.assignee_ids, \
             t.labels \
             FROM task t WHERE t.id = ?",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    row.map(TaskRow::into_task).transpose()
}

async fn write_assignees(conn: &mut MySqlConnection, tasks: &[Task], replace: bool) -> Result<(), sqlx::Error> {
    if replace {
        for task in tasks {
            sqlx::query!("DELETE FROM task_assignee WHERE task_id = ?", task.id).execute(&mut *conn).await?;
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
            sqlx::query!("DELETE FROM task_label WHERE task_id = ?", task.id).execute(&mut *conn).await?;
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
    // The words are rewritten below in the same transaction, by the current rules.
    let text_changed = changed.contains(&"title") || changed.contains(&"description");
    let result = sqlx::query!(
        "UPDATE task SET title = ?, description = ?, status = ?, priority = ?, due_at = ?, start_at = ?, \
         estimate_minutes = ?, parent_id = ?, position = ?, updated_at = ?, completed_at = ?, version = ?, \
         assignee_ids = ?, labels = ?, words_version = IF(?, ?, words_version) WHERE id = ? AND version = ?",
        task.title.as_str(),
        task.description.as_ref().map(Description::as_str),
        task.status().as_str(),
        task.priority.rank(),
        task.schedule.due_at().map(utc),
        task.schedule.start_at().map(utc),
        task.estimate.map(Estimate::minutes),
        task.parent_id,
        task.position.as_str(),
        utc(task.updated_at),
        task.completed_at().map(utc),
        task.version,
        packed_assignees(&task.assignees),
        packed_labels(&task.labels)?,
        text_changed,
        WORDS_VERSION,
        task.id,
        previous_version
    )
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
    if text_changed {
        words::rewrite(conn, task).await?;
    }
    Ok(true)
}

/// The task's watchers.
pub(super) async fn watchers(conn: &mut MySqlConnection, task_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT user_id FROM task_watcher WHERE task_id = ? ORDER BY user_id", task_id)
        .fetch_all(conn)
        .await
}

/// The tasks with this key (normally one; a deleted project's key may have been reused).
/// The watchers of each of `task_ids` that has any, as `(task, watcher)` pairs.
pub(super) async fn watchers_of(conn: &mut MySqlConnection, task_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    // Built at run time: an `IN` list. Every value is bound.
    let mut sql = QueryBuilder::<MySql>::new("SELECT task_id, user_id FROM task_watcher WHERE task_id IN (");
    let mut list = sql.separated(", ");
    for id in task_ids {
        list.push_bind(*id);
    }
    sql.push(") ORDER BY task_id, user_id");
    sql.build_query_as().fetch_all(&mut *conn).await.map_err(db)
}

pub(super) async fn by_key(pool: &MySqlPool, project_key: &str, number: i64) -> Result<Vec<Task>> {
    let rows = sqlx::query_as!(
        TaskRow,
        "SELECT t.id, t.project_id, t.number, t.project_key, t.title, t.description, t.status, t.priority, \
         TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.due_at) AS due_at, \
         TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.start_at) AS start_at, t.estimate_minutes, t.parent_id, \
         t.reporter_id, t.position, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.created_at) AS `created_at!`, \
         TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.updated_at) AS `updated_at!`, \
         TIMESTAMPDIFF(MICROSECOND, '1970-01-01', t.completed_at) AS completed_at, t.version, t.assignee_ids, \
         t.labels \
         FROM task t WHERE t.project_key = ? AND t.number = ? ORDER BY t.created_at DESC",
        project_key,
        number
    )
    .fetch_all(pool)
    .await
    .map_err(db)?;
    tasks_of(rows).map_err(db)
}

/// The ids of `parent_id` and its ancestors, nearest first, with the project they are in; `None`
/// when there is no such task.
pub(super) async fn parent_chain(conn: &mut MySqlConnection, parent_id: Uuid) -> Result<Option<ParentChain>> {
    // Bounded at 10 levels, so even a corrupted tree cannot loop.
    let rows: Vec<(Uuid, Uuid)> = sqlx::query!(
        r#"WITH RECURSIVE chain (id, parent_id, project_id, lvl) AS (
             SELECT id, parent_id, project_id, CAST(1 AS SIGNED) FROM task WHERE id = ?
             UNION ALL
             SELECT t.id, t.parent_id, t.project_id, c.lvl + 1 FROM task t JOIN chain c ON t.id = c.parent_id
             WHERE c.lvl < 10)
           SELECT id AS "id!: Uuid", project_id AS "project_id!: Uuid" FROM chain ORDER BY lvl"#,
        parent_id
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .into_iter()
    .map(|row| (row.id, row.project_id))
    .collect();
    let Some((_, project_id)) = rows.first().copied() else { return Ok(None) };
    Ok(Some(ParentChain { project_id, ancestors: rows.into_iter().map(|(id, _)| id).collect() }))
}

/// The ids of the task's descendants, shallowest first, and the height of its subtree.
pub(super) async fn subtree(conn: &mut MySqlConnection, id: Uuid) -> Result<(Vec<Uuid>, usize)> {
    let rows: Vec<(Uuid, i64)> = sqlx::query!(
        r#"WITH RECURSIVE sub (id, lvl) AS (
             SELECT id, CAST(1 AS SIGNED) FROM task WHERE parent_id = ?
             UNION ALL
             SELECT t.id, s.lvl + 1 FROM task t JOIN sub s ON t.parent_id = s.id WHERE s.lvl < 10)
           SELECT id AS "id!: Uuid", lvl AS "lvl!: i64" FROM sub ORDER BY lvl, id"#,
        id
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .into_iter()
    .map(|row| (row.id, row.lvl))
    .collect();
    let depth = rows.iter().map(|(_, lvl)| *lvl).max().unwrap_or(0);
    let height = usize::try_from(depth).unwrap_or(usize::MAX).saturating_add(1);
    Ok((rows.into_iter().map(|(id, _)| id).collect(), height))
}

/// Writes new tasks with their assignees and labels, in multi-row statements.
pub(super) async fn insert(conn: &mut MySqlConnection, tasks: &[Task]) -> Result<()> {
    for chunk in tasks.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO task (id, project_id, number, project_key, title, description, status, priority, \
             due_at, start_at, estimate_minutes, parent_id, reporter_id, position, created_at, updated_at, \
             completed_at, version, assignee_ids, labels, words_version) ",
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
                .push_bind(labels)
                .push_bind(WORDS_VERSION);
        });
        sql.build().execute(&mut *conn).await.map_err(db)?;
    }
    write_assignees(&mut *conn, tasks, false).await.map_err(db)?;
    write_labels(&mut *conn, tasks, false).await.map_err(db)?;
    words::insert(&mut *conn, tasks).await.map_err(db)?;
    Ok(())
}

/// Writes a changed task whose stored version is `previous_version`; `VersionMismatch` when it is
/// not.
pub(super) async fn update(
    conn: &mut MySqlConnection,
    task: &Task,
    previous_version: i64,
    changed: &[&'static str],
) -> Result<()> {
    if update_task_row(&mut *conn, task, previous_version, changed).await.map_err(db)? {
        Ok(())
    } else {
        Err(AppError::changed())
    }
}

/// Deletes the tasks `ids` (subtasks after their parents), scheduling their attachments' objects
/// for deletion.
pub(super) async fn delete(conn: &mut MySqlConnection, ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // Assignees, labels, watchers and comments go by the foreign keys' cascades; deepest first,
    // so no cascade has to reach a row this statement deletes anyway.
    for id in ids.iter().rev() {
        // The attachments go by the cascade too; their objects are scheduled for deletion first.
        sqlx::query!(
            "INSERT INTO object_deletion (object_key, due_at) SELECT object_key, UTC_TIMESTAMP(6) \
             FROM attachment WHERE task_id = ? ON DUPLICATE KEY UPDATE due_at = VALUES(due_at)",
            id
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query!("DELETE FROM task WHERE id = ?", id).execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// The user watches the task; `false` when it did already.
pub(super) async fn watch(conn: &mut MySqlConnection, task: &Task, user_id: Uuid) -> Result<bool> {
    let done = sqlx::query!(
        "INSERT IGNORE INTO task_watcher (task_id, user_id, project_id) VALUES (?, ?, ?)",
        task.id,
        user_id,
        task.project_id
    )
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

/// The user stops watching the task; `false` when it was not.
pub(super) async fn unwatch(conn: &mut MySqlConnection, task_id: Uuid, user_id: Uuid) -> Result<bool> {
    let done = sqlx::query!("DELETE FROM task_watcher WHERE task_id = ? AND user_id = ?", task_id, user_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
