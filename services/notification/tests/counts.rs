//! The badge counts against MariaDB, at the store: every change of a user's notifications (new ones,
//! seen, read, read all, archived, deleted, swept by the retention) moves them in step with the
//! rows, also when those changes race each other and new arrivals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ordo_notification::app::ports::{Counts, IngestTx as _, ListQuery, Notification, NotificationStore as _};
use ordo_notification::domain::{Draft, Kind};
use ordo_notification::infra::ingest::MySqlIngest;
use ordo_notification::infra::mysql::MySqlNotificationStore;
use ordo_testkit::TestEnv;
use sqlx::MySqlPool;
use time::OffsetDateTime;
use uuid::Uuid;

mod support;

/// The counts as the rows tell them.
async fn recount(pool: &MySqlPool, user_id: Uuid) -> Counts {
    let (unread, unseen): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(archived_at IS NULL AND read_at IS NULL), 0) AS SIGNED),
                CAST(COALESCE(SUM(archived_at IS NULL AND seen_at IS NULL), 0) AS SIGNED)
         FROM notification WHERE user_id = ?",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
    .unwrap();
    Counts { unread, unseen }
}

/// Stores `n` notifications for `user_id` of one event, as the consumer does; their ids.
async fn arrive(pool: &MySqlPool, user_id: Uuid, n: usize, created_at: OffsetDateTime) -> Vec<Uuid> {
    let notifications: Vec<Notification> = (0..n)
        .map(|i| Notification {
            id: Uuid::now_v7(),
            seq: 0,
            draft: Draft {
                recipient: user_id,
                kind: [Kind::TaskAssigned, Kind::TaskCommented, Kind::TaskStatusChanged][i % 3],
                title: format!("Notification {i}"),
                body: String::new(),
                project_id: Uuid::now_v7(),
                task_id: None,
                task_key: None,
            },
            actor_id: None,
            created_at,
            seen_at: None,
            read_at: None,
            archived_at: None,
        })
        .collect();
    // One kind per user and event: each notification its own event.
    let mut ids = Vec::new();
    for notification in notifications {
        let mut tx = pool.begin().await.unwrap();
        ids.push(notification.id);
        MySqlIngest::new(&mut tx).insert(&mut [(Uuid::now_v7(), notification)]).await.unwrap();
        tx.commit().await.unwrap();
    }
    ids
}

async fn listed_counts(store: &MySqlNotificationStore, user_id: Uuid) -> Counts {
    let query = ListQuery { user_id, unread_only: false, archived: false, before: None, limit: 1 };
    store.list(&query).await.unwrap().1
}

#[tokio::test]
async fn every_change_moves_the_counts_with_the_rows() {
    // Arrange: a migrated schema; Bob has six notifications, Ann two.
    let env = TestEnv::new();
    let (processes, pool) = support::schema(&env).await;
    let store = MySqlNotificationStore::new(pool.clone());
    let (bob, ann) = (Uuid::now_v7(), Uuid::now_v7());
    let now = OffsetDateTime::now_utc();
    let ids = arrive(&pool, bob, 6, now).await;
    arrive(&pool, ann, 2, now).await;
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 6, unseen: 6 });
    assert_eq!(listed_counts(&store, Uuid::now_v7()).await, Counts { unread: 0, unseen: 0 }, "a user with none");

    // Act and assert: each change, and the same change again, which changes nothing.
    for _ in 0..2 {
        assert!(store.mark_read(bob, ids[0]).await.unwrap());
    }
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 5, unseen: 5 });
    store.mark_seen(bob).await.unwrap();
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 5, unseen: 0 });
    for _ in 0..2 {
        assert!(store.archive(bob, ids[1]).await.unwrap());
    }
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 4, unseen: 0 });
    assert!(store.delete(bob, ids[2]).await.unwrap());
    assert!(!store.delete(bob, ids[2]).await.unwrap(), "deleted twice");
    assert!(!store.mark_read(ann, ids[3]).await.unwrap(), "another user's");
    assert!(!store.archive(ann, ids[3]).await.unwrap(), "another user's");
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 3, unseen: 0 });
    arrive(&pool, bob, 2, now).await;
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 5, unseen: 2 });
    store.mark_all_read(bob).await.unwrap();
    assert_eq!(listed_counts(&store, bob).await, Counts { unread: 0, unseen: 0 });
    assert_eq!(listed_counts(&store, ann).await, Counts { unread: 2, unseen: 2 }, "Ann's are hers");

    // The retention sweep, in batches smaller than what it deletes: old ones go with their counts.
    let old = now - time::Duration::days(100);
    arrive(&pool, bob, 3, old).await;
    arrive(&pool, ann, 4, old).await;
    assert_eq!(listed_counts(&store, ann).await, Counts { unread: 6, unseen: 6 });
    let mut swept = 0;
    loop {
        let deleted = store.delete_older_than(now - time::Duration::days(90), 2).await.unwrap();
        assert!(deleted <= 2, "a batch deleted {deleted}");
        swept += deleted;
        if deleted == 0 {
            break;
        }
    }
    assert_eq!(swept, 7);
    for user in [bob, ann] {
        assert_eq!(listed_counts(&store, user).await, recount(&pool, user).await);
    }
    assert_eq!(listed_counts(&store, ann).await, Counts { unread: 2, unseen: 2 });

    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_counts_stay_exact_when_changes_race_new_arrivals() {
    // Arrange: Bob has 40 notifications.
    let env = TestEnv::new();
    let (processes, pool) = support::schema(&env).await;
    let store = Arc::new(MySqlNotificationStore::new(pool.clone()));
    let bob = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let ids = arrive(&pool, bob, 40, now).await;

    // Act: reads, archives, deletes, "seen" and "read all" race 30 new arrivals.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        let store = store.clone();
        tasks.spawn(async move {
            match i % 4 {
                0 => drop(store.mark_read(bob, id).await.unwrap()),
                1 => drop(store.archive(bob, id).await.unwrap()),
                2 => drop(store.delete(bob, id).await.unwrap()),
                _ if i % 8 == 3 => store.mark_seen(bob).await.unwrap(),
                _ => store.mark_all_read(bob).await.unwrap(),
            }
        });
    }
    for _ in 0..3 {
        let pool = pool.clone();
        tasks.spawn(async move { drop(arrive(&pool, bob, 10, now).await) });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // Assert: what the list says is what the rows say.
    let truth = recount(&pool, bob).await;
    assert_eq!(listed_counts(&store, bob).await, truth);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notification WHERE user_id = ?")
        .bind(bob)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 60, "40 + 30 arrived, 10 deleted");

    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

/// The titles and read marks of `user_id`'s first page, as `store` lists them.
async fn page(store: &MySqlNotificationStore, user_id: Uuid) -> Vec<(String, bool)> {
    let query = ListQuery { user_id, unread_only: false, archived: false, before: None, limit: 50 };
    store.list(&query).await.unwrap().0.into_iter().map(|n| (n.draft.title, n.read_at.is_some())).collect()
}

#[tokio::test]
async fn a_page_kept_in_memory_is_served_only_until_any_instance_changes_something() {
    // Arrange: two instances' stores on one schema, each keeping pages; Bob has three notifications,
    // and instance A has listed them (so keeps the page).
    let env = TestEnv::new();
    let (processes, pool) = support::schema(&env).await;
    let a = MySqlNotificationStore::new(pool.clone()).with_page_cache(1 << 20);
    let b = MySqlNotificationStore::new(pool.clone()).with_page_cache(1 << 20);
    let bob = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let ids = arrive(&pool, bob, 3, now).await;
    let first = page(&a, bob).await;
    assert_eq!(first.len(), 3);

    // Act and assert: a row changed behind the version's back (no real change does this) is not
    // seen, which shows A serves the page it keeps...
    sqlx::query("UPDATE notification SET title = 'edited behind its back' WHERE id = ?")
        .bind(ids[0])
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(page(&a, bob).await, first, "served from memory");

    // ...and every real change, made on the other instance, is seen at once, with its counts.
    assert!(b.mark_read(bob, ids[1]).await.unwrap());
    let after_read = page(&a, bob).await;
    assert!(after_read.contains(&("edited behind its back".to_owned(), false)), "read again: {after_read:?}");
    assert!(after_read.contains(&("Notification 1".to_owned(), true)), "{after_read:?}");
    assert_eq!(listed_counts(&a, bob).await, recount(&pool, bob).await);
    assert!(b.archive(bob, ids[2]).await.unwrap());
    assert_eq!(page(&a, bob).await.len(), 2, "archived elsewhere");
    arrive(&pool, bob, 1, now).await;
    assert_eq!(page(&a, bob).await.len(), 3, "a new arrival");
    b.mark_all_read(bob).await.unwrap();
    assert!(page(&a, bob).await.iter().all(|(_, read)| *read), "all read elsewhere");
    assert!(b.delete(bob, ids[0]).await.unwrap());
    assert_eq!(page(&a, bob).await.len(), 2, "deleted elsewhere");
    assert_eq!(listed_counts(&a, bob).await, recount(&pool, bob).await);

    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
