//! The search index's rows (`task_word`): written with a task's text, rewritten when it changes,
//! counted to plan a search, and filled in the background for tasks written before the index.

use sqlx::mysql::MySqlPool;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use uuid::Uuid;

use super::db;
use crate::app::Result;
use crate::domain::{IndexedWord, Task, WORDS_VERSION, WordChanges, index_words};

/// Rows inserted per statement: five placeholders each.
const INSERT_CHUNK: usize = 1_000;

/// One task's text, as the index reads it.
struct Text<'a> {
    id: Uuid,
    project_id: Uuid,
    number: i64,
    title: &'a str,
    description: Option<&'a str>,
}

impl<'a> From<&'a Task> for Text<'a> {
    fn from(task: &'a Task) -> Self {
        Self {
            id: task.id,
            project_id: task.project_id,
            number: task.number,
            title: task.title.as_str(),
            description: task.description.as_ref().map(|d| d.as_str()),
        }
    }
}

/// Writes the words of new tasks (whose rows carry the current [`WORDS_VERSION`] already).
pub(super) async fn insert(conn: &mut MySqlConnection, tasks: &[Task]) -> Result<(), sqlx::Error> {
    write(conn, tasks.iter().map(Text::from)).await
}

async fn write<'a>(conn: &mut MySqlConnection, texts: impl Iterator<Item = Text<'a>>) -> Result<(), sqlx::Error> {
    let mut rows = Vec::new();
    for text in texts {
        for word in index_words(text.title, text.description) {
            rows.push(Row { project_id: text.project_id, word, number: text.number, task_id: text.id });
        }
    }
    insert_rows(conn, &rows).await
}

/// One row of the index.
struct Row {
    project_id: Uuid,
    word: IndexedWord,
    number: i64,
    task_id: Uuid,
}

async fn insert_rows(conn: &mut MySqlConnection, rows: &[Row]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new("INSERT INTO task_word (project_id, word, weight, number, task_id) ");
        sql.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.project_id)
                .push_bind(row.word.word.as_str())
                .push_bind(row.word.weight)
                .push_bind(row.number)
                .push_bind(row.task_id);
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Brings the words of a task whose title or description changed up to date: reads the rows it
/// has (locked, so no other change of the task interleaves), then removes and adds only the words
/// that changed. The caller marks the task as indexed by the current rules.
pub(super) async fn rewrite(conn: &mut MySqlConnection, task: &Task) -> Result<(), sqlx::Error> {
    let stored = sqlx::query!("SELECT word, weight FROM task_word WHERE task_id = ? FOR UPDATE", task.id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| IndexedWord { word: row.word, weight: row.weight })
        .collect();
    let text = Text::from(task);
    let changes = WordChanges::between(stored, index_words(text.title, text.description));
    for chunk in changes.removed.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new("DELETE FROM task_word WHERE task_id = ");
        sql.push_bind(task.id).push(" AND word IN (");
        let mut list = sql.separated(", ");
        for word in chunk {
            list.push_bind(word.as_str());
        }
        sql.push(")");
        sql.build().execute(&mut *conn).await?;
    }
    let rows: Vec<Row> = changes
        .added
        .into_iter()
        .map(|word| Row { project_id: task.project_id, word, number: task.number, task_id: task.id })
        .collect();
    insert_rows(conn, &rows).await
}

/// For each of `words`, how many tasks of the project hold it, counted up to `cap` (an index range
/// read that stops there).
pub(super) async fn counts(pool: &MySqlPool, project_id: Uuid, words: &[String], cap: u32) -> Result<Vec<u32>> {
    let mut sql = QueryBuilder::<MySql>::new("");
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(format!("SELECT {i} AS i, COUNT(*) AS n FROM (SELECT 1 FROM task_word WHERE project_id = "))
            .push_bind(project_id)
            .push(" AND word = ")
            .push_bind(word.as_str())
            .push(" LIMIT ")
            .push_bind(cap)
            .push(format!(") w{i}"));
    }
    let rows: Vec<(i64, i64)> = sql.build_query_as().fetch_all(pool).await.map_err(db)?;
    let mut counts = vec![0; words.len()];
    for (i, n) in rows {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
            *slot = u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    Ok(counts)
}

/// Indexes up to `batch` tasks whose words were written by an older version of the rules (or not
/// at all), in one transaction, skipping tasks another instance is indexing: how many it indexed,
/// and their projects.
pub(super) async fn backfill(pool: &MySqlPool, batch: u32) -> Result<(usize, Vec<Uuid>)> {
    let mut tx = pool.begin().await.map_err(db)?;
    let rows = sqlx::query!(
        "SELECT id AS `id: Uuid`, project_id AS `project_id: Uuid`, number, title, description FROM task \
         WHERE words_version < ? LIMIT ? FOR UPDATE SKIP LOCKED",
        WORDS_VERSION,
        batch
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        return Ok((0, Vec::new()));
    }
    let mut ids = QueryBuilder::<MySql>::new("DELETE FROM task_word WHERE task_id IN (");
    let mut list = ids.separated(", ");
    for row in &rows {
        list.push_bind(row.id);
    }
    ids.push(")");
    ids.build().execute(&mut *tx).await.map_err(db)?;
    let texts = rows.iter().map(|row| Text {
        id: row.id,
        project_id: row.project_id,
        number: row.number,
        title: &row.title,
        description: row.description.as_deref(),
    });
    write(&mut tx, texts).await.map_err(db)?;
    let mut done = QueryBuilder::<MySql>::new("UPDATE task SET words_version = ");
    done.push_bind(WORDS_VERSION).push(" WHERE id IN (");
    let mut list = done.separated(", ");
    for row in &rows {
        list.push_bind(row.id);
    }
    done.push(")");
    done.build().execute(&mut *tx).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut projects: Vec<Uuid> = rows.iter().map(|row| row.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    Ok((rows.len(), projects))
}
