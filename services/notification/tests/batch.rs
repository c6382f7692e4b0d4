//! A batch of events ingested in one transaction, against MariaDB, at the consumer's handler: the
//! same notifications, sequence places, counts, mails and reminder states as ingesting its events
//! one at a time, including an event in its middle that takes a user's access away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ordo_events::{BatchEventHandler as _, OutboxSignal};
use ordo_notification::app::IngestSettings;
use ordo_notification::app::ports::{Counts, NotificationStore as _, Settings};
use ordo_notification::domain::{Channel, Kind};
use ordo_notification::infra::{MySqlNotificationStore, NotificationHandler};
use ordo_proto::events::v1 as epb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use uuid::Uuid;

mod support;

/// The people and things of one run.
#[derive(Clone, Copy)]
struct Cast {
    ann: Uuid,
    bob: Uuid,
    carol: Uuid,
    dave: Uuid,
    project: Uuid,
    other_project: Uuid,
    task_a: Uuid,
    task_b: Uuid,
    task_c: Uuid,
}

impl Cast {
    fn new() -> Self {
        let id = Uuid::now_v7;
        Self {
            ann: id(),
            bob: id(),
            carol: id(),
            dave: id(),
            project: id(),
            other_project: id(),
            task_a: id(),
            task_b: id(),
            task_c: id(),
        }
    }
}

fn snapshot(project: Uuid, task: Uuid, key: &str, assignees: &[Uuid], due_day: u32, version: i64) -> epb::TaskSnapshot {
    epb::TaskSnapshot {
        task_id: task.to_string(),
        project_id: project.to_string(),
        key: key.to_owned(),
        title: format!("Task {key}"),
        status: "todo".into(),
        priority: "none".into(),
        assignee_ids: assignees.iter().map(Uuid::to_string).collect(),
        reporter_id: Uuid::nil().to_string(),
        due_at: Some(prost_types::Timestamp { seconds: 4_102_444_800 + i64::from(due_day) * 86_400, nanos: 0 }),
        version,
    }
}

fn envelope(actor: Uuid, routing_key: &str, payload: Payload) -> epb::Envelope {
    ordo_events::EnvelopeBuilder::new("task", routing_key).actor(actor.to_string()).payload(payload).build()
}

/// Ann's changes, in order: tasks A and B assigned to Bob and Carol, A's status changed (to Bob and
/// Carol), Carol removed from the project, a comment on B (to Bob and Carol: Carol no longer hears
/// of it), task C of another project assigned to Dave (who turned that off in the app), and a late
/// event carrying A's first state (older than the one recorded: no change to its reminder).
fn events(c: &Cast) -> Vec<epb::Envelope> {
    let a1 = snapshot(c.project, c.task_a, "BAT-1", &[c.bob], 1, 1);
    let a2 = snapshot(c.project, c.task_a, "BAT-1", &[c.bob], 2, 2);
    let b1 = snapshot(c.project, c.task_b, "BAT-2", &[c.carol], 3, 1);
    let b2 = snapshot(c.project, c.task_b, "BAT-2", &[c.carol], 3, 2);
    let c1 = snapshot(c.other_project, c.task_c, "OTH-1", &[c.dave], 4, 1);
    let assigned = |task: &epb::TaskSnapshot, to: Uuid| {
        Payload::TaskAssigned(epb::TaskAssigned { task: Some(task.clone()), assignee_id: to.to_string() })
    };
    vec![
        envelope(c.ann, "task.assigned", assigned(&a1, c.bob)),
        envelope(c.ann, "task.assigned", assigned(&b1, c.carol)),
        envelope(
            c.ann,
            "task.status_changed",
            Payload::TaskStatusChanged(epb::TaskStatusChanged {
                task: Some(a2),
                old_status: "todo".into(),
                new_status: "in_progress".into(),
                recipient_ids: vec![c.bob.to_string(), c.carol.to_string()],
            }),
        ),
        envelope(
            c.ann,
            "project.member_removed",
            Payload::ProjectMemberRemoved(epb::ProjectMemberRemoved {
                project_id: c.project.to_string(),
                user_id: c.carol.to_string(),
                role: "member".into(),
                ..Default::default()
            }),
        ),
        envelope(
            c.ann,
            "task.comment_added",
            Payload::TaskCommentAdded(epb::TaskCommentAdded {
                task: Some(b2),
                comment_id: Uuid::now_v7().to_string(),
                author_id: c.ann.to_string(),
                excerpt: "Looks good".into(),
                recipient_ids: vec![c.bob.to_string(), c.carol.to_string()],
            }),
        ),
        envelope(c.ann, "task.assigned", assigned(&c1, c.dave)),
        envelope(
            c.ann,
            "task.updated",
            Payload::TaskUpdated(epb::TaskUpdated {
                task: Some(a1),
                changed_fields: vec!["labels".into()],
                recipient_ids: vec![c.bob.to_string()],
            }),
        ),
    ]
}

/// What a run left, per user: (seq, kind, title) in sequence order, counts, and the titles their
/// mails list; and each task's recorded (version, due day).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    notifications: Vec<Vec<(i64, String, String)>>,
    counts: Vec<Counts>,
    mailed: Vec<Vec<String>>,
    tasks: Vec<Option<(i64, i64)>>,
}

async fn outcome(pool: &MySqlPool, store: &MySqlNotificationStore, c: &Cast) -> Outcome {
    let users = [c.bob, c.carol, c.dave];
    let mut notifications = Vec::new();
    let mut counts = Vec::new();
    let mut mailed = Vec::new();
    for user in users {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, kind, title FROM notification WHERE user_id = ? ORDER BY seq")
                .bind(user)
                .fetch_all(pool)
                .await
                .unwrap();
        notifications.push(rows);
        counts.push(store.counts(user).await.unwrap());
        let titles: Vec<String> = sqlx::query_scalar(
            "SELECT i.title FROM email_item i JOIN email e ON e.id = i.email_id WHERE e.user_id = ? ORDER BY i.title",
        )
        .bind(user)
        .fetch_all(pool)
        .await
        .unwrap();
        mailed.push(titles);
    }
    let mut tasks = Vec::new();
    for task in [c.task_a, c.task_b, c.task_c] {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT version, CAST(TIMESTAMPDIFF(DAY, '2100-01-01', due_at) AS SIGNED) FROM task_due WHERE task_id = ?",
        )
        .bind(task)
        .fetch_optional(pool)
        .await
        .unwrap();
        tasks.push(row);
    }
    Outcome { notifications, counts, mailed, tasks }
}

/// Bob takes no mail of status changes; Dave takes no assignment in the app.
async fn preferences(store: &MySqlNotificationStore, c: &Cast) {
    let bob: Settings = BTreeMap::from([((Channel::Email, Kind::TaskStatusChanged), false)]);
    store.set_settings(c.bob, &bob).await.unwrap();
    let dave: Settings = BTreeMap::from([((Channel::InApp, Kind::TaskAssigned), false)]);
    store.set_settings(c.dave, &dave).await.unwrap();
}

async fn wake_ups(pool: &MySqlPool) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT payload FROM outbox_event WHERE routing_key = 'notification.created' ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_gives_what_its_events_give_one_at_a_time() {
    // Arrange: a migrated schema and the consumer's handler, with email on.
    let env = TestEnv::new();
    let (processes, pool) = support::schema(&env).await;
    let store = MySqlNotificationStore::new(pool.clone());
    let settings = IngestSettings {
        email_window: Some(time::Duration::hours(1)),
        reminder_lead: time::Duration::hours(24),
        push: false,
    };
    let handler = NotificationHandler::new(OutboxSignal::new(), settings);
    let (batched, alone) = (Cast::new(), Cast::new());
    preferences(&store, &batched).await;
    preferences(&store, &alone).await;
    let before = wake_ups(&pool).await.len();

    // Act: one cast's events in one batch, the other's one transaction each.
    let batch = events(&batched);
    let refs: Vec<&epb::Envelope> = batch.iter().collect();
    let mut tx = pool.begin().await.unwrap();
    handler.handle_batch(&mut tx, &refs).await.unwrap();
    tx.commit().await.unwrap();
    let after_batch = wake_ups(&pool).await;
    for event in events(&alone) {
        let mut tx = pool.begin().await.unwrap();
        handler.handle_batch(&mut tx, &[&event]).await.unwrap();
        tx.commit().await.unwrap();
    }

    // Assert: what the batch left, spelled out, and the same as one at a time.
    let got = outcome(&pool, &store, &batched).await;
    let row = |seq: i64, kind: &str, title: &str| (seq, kind.to_owned(), title.to_owned());
    assert_eq!(
        got.notifications,
        [
            vec![
                row(1, "task.assigned", "BAT-1 was assigned to you"),
                row(2, "task.status_changed", "BAT-1 moved to in progress"),
                row(3, "task.commented", "New comment on BAT-2"),
            ],
            vec![
                row(1, "task.assigned", "BAT-2 was assigned to you"),
                row(2, "task.status_changed", "BAT-1 moved to in progress"),
            ],
            vec![],
        ],
        "Carol hears nothing after her removal, Dave nothing he turned off"
    );
    assert_eq!(got.counts, [Counts { unread: 3, unseen: 3 }, Counts { unread: 2, unseen: 2 }, Counts::default()]);
    assert_eq!(
        got.mailed,
        [
            vec!["BAT-1 was assigned to you".to_owned(), "New comment on BAT-2".to_owned()],
            vec!["BAT-1 moved to in progress".to_owned(), "BAT-2 was assigned to you".to_owned()],
            vec![],
        ],
        "Bob's status change stays out of his mail"
    );
    assert_eq!(got.tasks, [Some((2, 2)), Some((2, 3)), Some((1, 4))], "the late first state of A changed nothing");
    assert_eq!(after_batch.len() - before, 1, "one wake-up for the whole batch");
    let wake_up = epb::Envelope::decode(after_batch[before].as_slice()).unwrap();
    let Some(Payload::NotificationsCreated(created)) = wake_up.payload else { panic!("not a wake-up: {wake_up:?}") };
    let mut woken = created.user_ids;
    woken.sort_unstable();
    let mut expected = vec![batched.bob.to_string(), batched.carol.to_string()];
    expected.sort_unstable();
    assert_eq!(woken, expected, "each user once");
    assert_eq!(outcome(&pool, &store, &alone).await, got);

    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
