//! What the databases say after a fault, once the load has paused and the events have settled: every
//! acknowledged write is there, every committed event reached audit and notification exactly once in
//! effect, every outbox drained, the board's positions stayed unique. Read straight from each
//! service's schema, beside the API.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::MySqlPool;

use crate::load::Ledger;
use crate::stack::{Service, Stack};

/// How long the events of a round may take to reach every consumer once the load pauses.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);

/// The routing keys the notification service binds (services/notification/src/infra/envelope.rs).
fn notification_hears(routing_key: &str) -> bool {
    matches!(routing_key, "identity.user_registered" | "identity.user_disabled")
        || routing_key.starts_with("project.")
        || routing_key.starts_with("task.")
}

/// The event counts after a round, over the whole run so far.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Events {
    /// Events the producers committed (identity, project and task outboxes).
    pub(crate) committed: usize,
    /// Of them, those audit recorded, and those notification applied (of the keys it binds).
    pub(crate) audited: usize,
    pub(crate) notified: usize,
    /// Committed events a consumer never applied (after the settle wait).
    pub(crate) lost: usize,
    /// Effects applied twice: audit records per event, notifications per event and user and kind,
    /// `task.assigned` notifications per task, notifications listed in two mails.
    pub(crate) duplicates: usize,
    /// Rows still to publish in every outbox.
    pub(crate) backlog: i64,
    /// How long the settle wait took.
    pub(crate) settled_in: Duration,
}

/// Acknowledged writes missing or changed, over the whole run so far.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pub(crate) checked: usize,
    pub(crate) lost: Vec<String>,
}

/// Waits until every outbox has drained and each consumer has applied every committed event it
/// binds (or [`SETTLE_TIMEOUT`] passes), then counts.
pub(crate) async fn events(stack: &Stack, assignee: &str) -> anyhow::Result<Events> {
    let started = Instant::now();
    loop {
        let mut events = count_events(stack, assignee).await?;
        events.settled_in = started.elapsed();
        if (events.lost == 0 && events.backlog == 0) || started.elapsed() > SETTLE_TIMEOUT {
            return Ok(events);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn count_events(stack: &Stack, assignee: &str) -> anyhow::Result<Events> {
    let mut events = Events::default();
    for service in [Service::Identity, Service::Project, Service::Task, Service::Notification] {
        events.backlog += sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox_event WHERE published_at IS NULL")
            .fetch_one(stack.pool(service))
            .await?;
    }
    let audited: HashSet<Vec<u8>> = sqlx::query_scalar("SELECT id FROM audit_record")
        .fetch_all(stack.pool(Service::Audit))
        .await?
        .into_iter()
        .collect();
    let notified: HashSet<Vec<u8>> =
        sqlx::query_scalar("SELECT event_id FROM processed_event WHERE consumer = 'notification'")
            .fetch_all(stack.pool(Service::Notification))
            .await?
            .into_iter()
            .collect();
    for service in [Service::Identity, Service::Project, Service::Task] {
        let committed: Vec<(Vec<u8>, String)> =
            sqlx::query_as("SELECT event_id, routing_key FROM outbox_event").fetch_all(stack.pool(service)).await?;
        for (id, routing_key) in committed {
            events.committed += 1;
            if audited.contains(&id) {
                events.audited += 1;
            } else {
                events.lost += 1;
            }
            if notification_hears(&routing_key) {
                if notified.contains(&id) {
                    events.notified += 1;
                } else {
                    events.lost += 1;
                }
            }
        }
    }
    events.duplicates = duplicates(stack, assignee).await?;
    Ok(events)
}

/// Effects applied more than once, each query counting the rows past the first: a task with two
/// `task.created` audit records or two `task.assigned` notifications for its assignee, a notification
/// listed in two mails. (One audit record and one notification per event, user and kind are held by
/// unique keys; these are the duplicates the keys cannot see: the same change announced twice.)
async fn duplicates(stack: &Stack, assignee: &str) -> anyhow::Result<usize> {
    let audit = stack.pool(Service::Audit);
    let notification = stack.pool(Service::Notification);
    let mut total = scalar(
        audit,
        "SELECT CAST(COUNT(*) - COUNT(DISTINCT entity_id) AS SIGNED) FROM audit_record WHERE action = 'task.created'",
    )
    .await?;
    total += sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) - COUNT(DISTINCT task_id) AS SIGNED) FROM notification \
         WHERE user_id = UNHEX(REPLACE(?, '-', '')) AND kind = 'task.assigned'",
    )
    .bind(assignee)
    .fetch_one(notification)
    .await?;
    total += scalar(notification, "SELECT CAST(COUNT(*) - COUNT(DISTINCT notification_id) AS SIGNED) FROM email_item")
        .await?;
    Ok(usize::try_from(total).unwrap_or(usize::MAX))
}

async fn scalar(pool: &MySqlPool, query: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(query).fetch_one(pool).await?)
}

/// Checks every acknowledged write of the ledgers against the schemas.
pub(crate) async fn writes(stack: &Stack, project: &str, ledgers: &[&Ledger]) -> anyhow::Result<Writes> {
    let task_pool = stack.pool(Service::Task);
    let stored: HashMap<String, (String, String)> = sqlx::query_as::<_, (String, String, String)>(
        "SELECT LOWER(HEX(id)), title, status FROM task WHERE project_id = UNHEX(REPLACE(?, '-', ''))",
    )
    .bind(project)
    .fetch_all(task_pool)
    .await?
    .into_iter()
    .map(|(id, title, status)| (id, (title, status)))
    .collect();
    let comments: HashSet<String> =
        sqlx::query_scalar("SELECT LOWER(HEX(id)) FROM comment WHERE project_id = UNHEX(REPLACE(?, '-', ''))")
            .bind(project)
            .fetch_all(task_pool)
            .await?
            .into_iter()
            .collect();
    let sessions: HashSet<String> = sqlx::query_scalar("SELECT LOWER(HEX(id)) FROM session")
        .fetch_all(stack.pool(Service::Identity))
        .await?
        .into_iter()
        .collect();

    let mut writes = Writes::default();
    for ledger in ledgers {
        for (id, expected) in &ledger.tasks {
            writes.checked += 1;
            match stored.get(&plain(id)) {
                None => writes.lost.push(format!("task {id} was acknowledged and is missing")),
                Some((title, status)) if !expected.allows(title, status) => writes.lost.push(format!(
                    "task {id} is ({title}, {status}); the last acknowledged write made it ({}, {})",
                    expected.title, expected.status
                )),
                Some(_) => {}
            }
        }
        for (task, comment) in &ledger.comments {
            writes.checked += 1;
            if !comments.contains(&plain(comment)) {
                writes.lost.push(format!("comment {comment} on task {task} was acknowledged and is missing"));
            }
        }
        for session in &ledger.sessions {
            writes.checked += 1;
            if !sessions.contains(&plain(session)) {
                writes.lost.push(format!("the session {session} of an acknowledged login is missing"));
            }
        }
        writes.lost.extend(ledger.stale_reads.iter().cloned());
    }
    Ok(writes)
}

/// A UUID as the databases print it in hex: lower case, no hyphens.
pub(crate) fn plain(id: &str) -> String {
    id.replace('-', "").to_lowercase()
}
