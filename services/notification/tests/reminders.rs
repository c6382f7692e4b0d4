//! Due-date reminders with real identity, project and task services: with two notification instances
//! running, a reminder fires once (one notification, one mail); a due date moved after arming fires
//! at the new time only; a task done before its reminder gets none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::{Service, User, bearer};
use ordo_proto::notification::v1 as pb;
use ordo_proto::task::v1 as tpb;
use ordo_testkit::TestEnv;
use time::OffsetDateTime;

mod support;

use support::{Stack, address, spawn_with};

/// The lead of these tests: reminders fire a minute before the due date.
const LEAD: Duration = Duration::from_secs(60);

fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: 0 }
}

/// A task of `project` assigned to `assignee`, due `LEAD + in_secs` from now: its reminder fires in
/// `in_secs`.
async fn task_due(stack: &mut Stack, by: &User, project: &str, assignee: &User, in_secs: u64) -> tpb::Task {
    let due_at = OffsetDateTime::now_utc() + LEAD + Duration::from_secs(in_secs);
    let request = tpb::CreateTaskRequest {
        project_id: project.to_owned(),
        title: "Ship the release".to_owned(),
        assignee_ids: vec![assignee.id.clone()],
        due_at: Some(timestamp(due_at)),
        ..Default::default()
    };
    stack.tasks.create_task(bearer(&by.access_token, request)).await.unwrap().into_inner().task.unwrap()
}

/// `user`'s `task.due_soon` notifications, newest first.
async fn reminders(stack: &mut Stack, user: &User) -> Vec<pb::Notification> {
    let list = stack.list(user, pb::ListNotificationsRequest::default()).await;
    list.notifications.into_iter().filter(|n| n.kind == "task.due_soon").collect()
}

async fn reminders_once(stack: &mut Stack, user: &User, count: usize) -> Vec<pb::Notification> {
    for _ in 0..200 {
        if reminders(stack, user).await.len() >= count {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return reminders(stack, user).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not get {count} reminders", user.id);
}

#[tokio::test]
async fn with_two_instances_a_reminder_fires_once() {
    // Arrange: two notification instances on one schema and queue.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--reminder-lead-mins", "1"]).await;
    let second = stack.processes.another(Service::Notification).await;
    let bob_address = address(&env, "bob");
    let ann = stack.processes.sign_up(&address(&env, "ann")).await;
    let bob = stack.processes.sign_up(&bob_address).await;
    let project = stack.project(&ann, "RMA", &[&bob]).await;

    // Act: a task for Bob whose reminder is due in two seconds.
    task_due(&mut stack, &ann, &project, &bob, 2).await;

    // Assert: one reminder, and one mail of it, though both instances look every 200 ms.
    let fired = reminders_once(&mut stack, &bob, 1).await;
    assert_eq!(fired.len(), 1);
    assert!(fired[0].title.starts_with("RMA-1 is due "), "{}", fired[0].title);
    assert_eq!(fired[0].actor_id, "");
    // (The reminder may share a mail with the assignment when both fall in one window.)
    let due_mails = || async {
        let mails = ordo_testkit::sent_mails(&bob_address).await.unwrap();
        mails.iter().filter(|m| m.body.contains("RMA-1 is due")).count()
    };
    for _ in 0..150 {
        if due_mails().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(due_mails().await, 1);
    let _ = second.stop().await;
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_moved_due_date_fires_at_the_new_time_only_and_a_done_task_not_at_all() {
    // Arrange: one task due in three seconds (its reminder), another in two.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--reminder-lead-mins", "1"]).await;
    let ann = stack.processes.sign_up(&address(&env, "ann")).await;
    let bob = stack.processes.sign_up(&address(&env, "bob")).await;
    let project = stack.project(&ann, "RMB", &[&bob]).await;
    let moved = task_due(&mut stack, &ann, &project, &bob, 3).await;
    let done = task_due(&mut stack, &ann, &project, &bob, 2).await;

    // Act: the first moves six seconds later; the second is done.
    let later = OffsetDateTime::now_utc() + LEAD + Duration::from_secs(9);
    let patch = tpb::TaskPatch { due_at: Some(timestamp(later)), ..Default::default() };
    stack.update(&ann, &moved.id, patch, &["due_at"]).await;
    let patch = tpb::TaskPatch { status: tpb::TaskStatus::Done.into(), ..Default::default() };
    stack.update(&ann, &done.id, patch, &["status"]).await;

    // Assert: nothing at the old times; one reminder, of the moved task, at its new time.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(reminders(&mut stack, &bob).await.is_empty());
    let fired = reminders_once(&mut stack, &bob, 1).await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].task_id, moved.id);
    let created = fired[0].created_at.as_ref().unwrap().seconds;
    assert!(created >= (later - LEAD).unix_timestamp(), "fired at {created}, before its time");
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
