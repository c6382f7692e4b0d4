//! The MySQL store of the task service (the `ordo_task` schema): the [`MySqlTaskStore`] and its
//! transactions, the mapping of database errors to the service's, and the store ports' methods,
//! each a call into the module that owns its rows: `tasks`, `board`, `comments`, `attachments`,
//! `objects` (scheduled object deletions), `jobs` (background jobs and their claims), `words` (the search index), `history` (status changes),
//! `reports` (what reports read) and `outbox`, with `rows` for the row types and `list_query` for
//! the list statements. Every fixed statement is checked at compile time (`sqlx::query!` and its
//! kin, against the schema `sqlx.toml` names); only the statements whose shape depends on their
//! input (lists, bulk inserts, re-spacing the board) are built at run time.

mod attachments;
mod board;
mod comments;
mod history;
mod jobs;
mod list_query;
mod objects;
mod outbox;
mod reports;
mod rows;
mod tasks;
mod words;

use async_trait::async_trait;
use ordo_events::OutboxSignal;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) use self::jobs::fail_jobs_of_project;
use self::list_query::WordPlan;
pub(crate) use self::outbox::record;
pub(crate) use self::tasks::{fetch_task, update_task_row};
use crate::app::ports::{BoardSlot, JobOutcome, JobStore, Queued, Side, TaskQuery, TaskSort, TaskStore, TaskTx};
use crate::app::{ClientInfo, Result};
use crate::domain::{
    Attachment, Comment, Job, ParentChain, Position, StatusChange, Task, TaskEvent, TaskFacts, Transition,
};

/// The service's error for a database error.
pub(crate) use ordo_service::db_error as db;

/// The task service's MySQL store.
#[derive(Debug, Clone)]
pub struct MySqlTaskStore {
    pool: MySqlPool,
    signal: OutboxSignal,
    /// How many tasks of a project hold a word (counted up to [`RARE_WORD_TASKS`] + 1), as
    /// recently counted: a search plans by it, so a repeated search does not count again. Only the
    /// plan depends on it, never the answer, so an entry a little out of date costs at most a
    /// slower plan until it expires.
    word_counts: moka::sync::Cache<(Uuid, String), u32>,
}

/// Word counts kept for search plans, and for how long.
const WORD_COUNT_ENTRIES: u64 = 10_000;
const WORD_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl MySqlTaskStore {
    /// A store on `pool` that wakes the relay through `signal` after each commit.
    pub fn new(pool: MySqlPool, signal: OutboxSignal) -> Self {
        let word_counts =
            moka::sync::Cache::builder().max_capacity(WORD_COUNT_ENTRIES).time_to_live(WORD_COUNT_TTL).build();
        Self { pool, signal, word_counts }
    }

    /// For each of `words`, how many of the project's tasks hold it (up to the cap), from the
    /// recent counts where there is one, the others counted in one statement.
    async fn word_counts(&self, project_id: Uuid, words: &[String]) -> Result<Vec<u32>> {
        let known: Vec<Option<u32>> =
            words.iter().map(|word| self.word_counts.get(&(project_id, word.clone()))).collect();
        let missing: Vec<String> =
            words.iter().zip(&known).filter(|(_, n)| n.is_none()).map(|(word, _)| word.clone()).collect();
        let mut counted = if missing.is_empty() {
            Vec::new()
        } else {
            words::counts(&self.pool, project_id, &missing, RARE_WORD_TASKS + 1).await?
        }
        .into_iter();
        let mut fresh = missing.into_iter();
        Ok(known
            .into_iter()
            .map(|known| {
                known.unwrap_or_else(|| {
                    let n = counted.next().unwrap_or(0);
                    if let Some(word) = fresh.next() {
                        self.word_counts.insert((project_id, word), n);
                    }
                    n
                })
            })
            .collect())
    }

    /// How a list reads its search. Within a project: relevance, and a search with a word in at most
    /// [`RARE_WORD_TASKS`] tasks, start from a word's rows (the rarest's; for relevance of one
    /// word, its rows are the order itself); a search whose every word is common walks the list's
    /// own order and checks each task, and its page fills after about `limit × tasks / matches`
    /// rows. Either way the rows read stay far below the matches of a common word.
    async fn word_plan(&self, query: &TaskQuery) -> Result<WordPlan> {
        let (Some(search), Some(project_id)) = (&query.search, query.project_id) else {
            return Ok(WordPlan::Checked);
        };
        let words = search.as_slice();
        if query.sort == TaskSort::Relevance && words.len() == 1 {
            return Ok(WordPlan::FromWord { driver: 0 });
        }
        let counts = self.word_counts(project_id, words).await?;
        let Some((driver, fewest)) = counts.iter().copied().enumerate().min_by_key(|(_, n)| *n) else {
            return Ok(WordPlan::Checked);
        };
        if query.sort == TaskSort::Relevance || fewest <= RARE_WORD_TASKS {
            Ok(WordPlan::FromWord { driver })
        } else {
            Ok(WordPlan::Checked)
        }
    }
}

/// A word in at most this many tasks of a project is rare: a search reads its rows and sorts them.
const RARE_WORD_TASKS: u32 = 500;

#[async_trait]
impl TaskStore for MySqlTaskStore {
    async fn begin(&self) -> Result<Box<dyn TaskTx>> {
        let tx = self.pool.begin().await.map_err(db)?;
        Ok(Box::new(MySqlTaskTx { tx, signal: self.signal.clone(), events: Vec::new() }))
    }

    async fn ensure_counter(&self, project_id: Uuid) -> Result<()> {
        board::ensure_counter(&self.pool, project_id).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn task(&self, id: Uuid) -> Result<Option<Task>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        fetch_task(&mut conn, id, false).await.map_err(db)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn tasks_by_key(&self, project_key: &str, number: i64) -> Result<Vec<Task>> {
        tasks::by_key(&self.pool, project_key, number).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        let plan = self.word_plan(query).await?;
        let rows: Vec<rows::TaskRow> =
            list_query::tasks(query, plan).build_query_as().fetch_all(&self.pool).await.map_err(db)?;
        rows::tasks_of(rows).map_err(db)
    }

    async fn flow_facts(&self, project_id: Uuid, until: OffsetDateTime) -> Result<(Vec<TaskFacts>, Vec<Transition>)> {
        reports::flow_facts(&self.pool, project_id, until).await
    }

    async fn index_words(&self, batch: u32) -> Result<(usize, Vec<Uuid>)> {
        words::backfill(&self.pool, batch).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn comment(&self, id: Uuid) -> Result<Option<Comment>> {
        comments::comment(&self.pool, id).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_comments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Comment>> {
        comments::list(&self.pool, task_id, after, limit).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(tasks = task_ids.len()))]
    async fn comments_of(&self, task_ids: &[Uuid]) -> Result<Vec<Comment>> {
        comments::of_tasks(&self.pool, task_ids).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>> {
        attachments::attachment(&self.pool, id).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Attachment>> {
        attachments::list(&self.pool, task_id, after, limit).await
    }

    async fn schedule_object_deletion(&self, key: &str, due_at: OffsetDateTime) -> Result<()> {
        objects::schedule(&self.pool, key, due_at).await
    }

    async fn due_object_deletions(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<String>> {
        objects::due(&self.pool, now, limit).await
    }

    async fn forget_object_deletion(&self, key: &str) -> Result<()> {
        objects::forget(&self.pool, key).await
    }
}

#[async_trait]
impl JobStore for MySqlTaskStore {
    async fn insert_job(&self, job: &Job, max_unfinished: u64) -> Result<bool> {
        jobs::insert(&self.pool, job, max_unfinished).await
    }

    async fn insert_import_job(&self, job: &Job, key: [u8; 32], max_unfinished: u64) -> Result<Queued> {
        jobs::insert_import(&self.pool, job, key, max_unfinished).await
    }

    async fn import_job(&self, key: [u8; 32]) -> Result<Option<Job>> {
        jobs::by_import_key(&self.pool, key).await
    }

    async fn imported_tasks(&self, id: Uuid) -> Result<Vec<(u32, Uuid)>> {
        jobs::imported_tasks(&self.pool, id).await
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>> {
        jobs::job(&self.pool, id).await
    }

    async fn unfinished_jobs(&self, requester: Uuid) -> Result<u64> {
        jobs::unfinished(&self.pool, requester).await
    }

    async fn claim_job(&self, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<Option<Job>> {
        jobs::claim(&self.pool, now, lease_until).await
    }

    async fn job_progress(
        &self,
        id: Uuid,
        attempt: u32,
        rows_done: u64,
        rows_total: Option<u64>,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        jobs::progress(&self.pool, &self.signal, id, attempt, rows_done, rows_total, now, lease_until).await
    }

    async fn finish_job(&self, id: Uuid, attempt: u32, outcome: &JobOutcome, now: OffsetDateTime) -> Result<bool> {
        jobs::finish(&self.pool, &self.signal, id, attempt, outcome, now).await
    }

    async fn cancel_job(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        jobs::cancel(&self.pool, &self.signal, id, now).await
    }
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
        board::take_numbers(&mut self.tx, project_id, count).await
    }

    async fn lock_board(&mut self, project_id: Uuid) -> Result<bool> {
        board::lock_board(&mut self.tx, project_id).await
    }

    async fn last_position(&mut self, project_id: Uuid) -> Result<Option<Position>> {
        board::last_position(&mut self.tx, project_id).await
    }

    async fn neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        except: Uuid,
    ) -> Result<Option<Position>> {
        board::nth_neighbour(&mut self.tx, project_id, of, side, 1, except).await
    }

    async fn nth_neighbour(
        &mut self,
        project_id: Uuid,
        of: &Position,
        side: Side,
        nth: u32,
        except: Uuid,
    ) -> Result<Option<Position>> {
        board::nth_neighbour(&mut self.tx, project_id, of, side, nth, except).await
    }

    async fn board_between(
        &mut self,
        project_id: Uuid,
        lower: Option<&Position>,
        upper: Option<&Position>,
        except: Uuid,
    ) -> Result<Vec<BoardSlot>> {
        board::board_between(&mut self.tx, project_id, lower, upper, except).await
    }

    async fn respace(&mut self, project_id: Uuid, slots: &[BoardSlot]) -> Result<()> {
        board::respace(&mut self.tx, project_id, slots).await
    }

    async fn task_for_update(&mut self, id: Uuid) -> Result<Option<Task>> {
        fetch_task(&mut self.tx, id, true).await.map_err(db)
    }

    async fn task(&mut self, id: Uuid) -> Result<Option<Task>> {
        fetch_task(&mut self.tx, id, false).await.map_err(db)
    }

    async fn tasks_for_update(&mut self, ids: &[Uuid]) -> Result<Vec<Task>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<rows::TaskRow> =
            list_query::tasks_for_update(ids).build_query_as().fetch_all(&mut *self.tx).await.map_err(db)?;
        rows::tasks_of(rows).map_err(db)
    }

    async fn watchers_of(&mut self, task_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        tasks::watchers_of(&mut self.tx, task_ids).await
    }

    async fn parent_chain(&mut self, parent_id: Uuid) -> Result<Option<ParentChain>> {
        tasks::parent_chain(&mut self.tx, parent_id).await
    }

    async fn subtree(&mut self, id: Uuid) -> Result<(Vec<Uuid>, usize)> {
        tasks::subtree(&mut self.tx, id).await
    }

    async fn watchers(&mut self, task_id: Uuid) -> Result<Vec<Uuid>> {
        tasks::watchers(&mut self.tx, task_id).await.map_err(db)
    }

    async fn insert_tasks(&mut self, tasks: &[Task]) -> Result<()> {
        tasks::insert(&mut self.tx, tasks).await
    }

    async fn update_task(&mut self, task: &Task, previous_version: i64, changed: &[&'static str]) -> Result<()> {
        tasks::update(&mut self.tx, task, previous_version, changed).await
    }

    async fn delete_tasks(&mut self, ids: &[Uuid]) -> Result<()> {
        tasks::delete(&mut self.tx, ids).await
    }

    async fn record_status_changes(&mut self, changes: &[StatusChange]) -> Result<()> {
        history::append(&mut self.tx, changes).await
    }

    async fn watch(&mut self, task: &Task, user_id: Uuid) -> Result<bool> {
        tasks::watch(&mut self.tx, task, user_id).await
    }

    async fn unwatch(&mut self, task_id: Uuid, user_id: Uuid) -> Result<bool> {
        tasks::unwatch(&mut self.tx, task_id, user_id).await
    }

    async fn insert_comment(&mut self, comment: &Comment) -> Result<()> {
        comments::insert(&mut self.tx, comment).await
    }

    async fn comment_for_update(&mut self, id: Uuid) -> Result<Option<Comment>> {
        comments::for_update(&mut self.tx, id).await
    }

    async fn update_comment(&mut self, comment: &Comment, previous_version: i64) -> Result<()> {
        comments::update(&mut self.tx, comment, previous_version).await
    }

    async fn delete_comment(&mut self, id: Uuid) -> Result<()> {
        comments::delete(&mut self.tx, id).await
    }

    async fn insert_attachment(&mut self, attachment: &Attachment) -> Result<()> {
        attachments::insert(&mut self.tx, attachment).await
    }

    async fn attachment_for_update(&mut self, id: Uuid) -> Result<Option<Attachment>> {
        attachments::for_update(&mut self.tx, id).await
    }

    async fn delete_attachment(&mut self, attachment: &Attachment) -> Result<()> {
        attachments::delete(&mut self.tx, attachment).await
    }

    async fn record(&mut self, event: &TaskEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()> {
        // The rows the events describe are locked until the commit, so writing the events last
        // keeps their outbox order: one statement for all of them instead of one each.
        self.events.push(outbox::envelope_of(event, actor, client));
        Ok(())
    }

    async fn record_import(
        &mut self,
        id: Uuid,
        attempt: u32,
        rows_done: u64,
        rows_total: u64,
        imported: &[(u32, Uuid)],
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        jobs::record_import(&mut self.tx, id, attempt, rows_done, rows_total, imported, now, lease_until).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let Self { mut tx, signal, events } = *self;
        if !events.is_empty() {
            outbox::enqueue_all(&mut tx, &events).await?;
        }
        tx.commit().await.map_err(db)?;
        if !events.is_empty() {
            signal.notify();
        }
        Ok(())
    }
}
