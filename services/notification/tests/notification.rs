//! The notification service with real identity, project and task services, MariaDB, Redis and
//! RabbitMQ: what users do in projects and tasks reaches the right people's notifications (and never
//! the actor's), each user sees and changes only their own, and preferences take effect at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::bearer;
use ordo_proto::notification::v1 as pb;
use ordo_testkit::TestEnv;
use tonic::Code;

mod support;

use support::spawn;

#[tokio::test]
async fn events_reach_their_recipients_once_and_never_the_actor() {
    // Arrange: Ann owns a project with Bob and Cat as members.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let cat = stack.processes.sign_up("cat@example.com").await;
    let project = stack.project(&ann, "NTF", &[&bob, &cat]).await;

    // Act: Ann creates a task assigned to Bob and comments on it, mentioning Cat.
    let task = stack.task(&ann, &project, &[&bob]).await;
    stack.comment(&ann, &task.id, "@cat can you pair with Bob?").await;

    // Assert: Bob was added, assigned and told of the comment; Cat was added and mentioned; Ann, who
    // did everything, heard of nothing.
    let bob_kinds = stack.kinds_once(&bob, 3).await;
    assert_eq!(bob_kinds, ["task.commented", "task.assigned", "project.member_added"]);
    let cat_kinds = stack.kinds_once(&cat, 2).await;
    assert_eq!(cat_kinds, ["task.mentioned", "project.member_added"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob_list = stack.list(&bob, pb::ListNotificationsRequest::default()).await;
    assert_eq!(bob_list.notifications.len(), 3, "no duplicate arrived later");
    assert!(stack.list(&ann, pb::ListNotificationsRequest::default()).await.notifications.is_empty());
    let assigned = &bob_list.notifications[1];
    assert_eq!(assigned.task_id, task.id);
    assert_eq!(assigned.task_key, "NTF-1");
    assert_eq!(assigned.actor_id, ann.id);
    assert_eq!(assigned.title, "NTF-1 was assigned to you");
    assert_eq!((bob_list.unread_count, bob_list.unseen_count), (3, 3));
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_user_changes_only_their_own_notifications_and_the_counts_follow() {
    // Arrange: Bob has two notifications (added to a project, assigned a task).
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let project = stack.project(&ann, "OWN", &[&bob]).await;
    stack.task(&ann, &project, &[&bob]).await;
    stack.kinds_once(&bob, 2).await;
    let list = stack.list(&bob, pb::ListNotificationsRequest::default()).await;
    let (newest, oldest) = (list.notifications[0].id.clone(), list.notifications[1].id.clone());

    // Act and assert: Ann cannot read, archive or delete Bob's notification: it does not exist for her.
    let read =
        stack.notifications.mark_read(bearer(&ann.access_token, pb::MarkReadRequest { id: newest.clone() })).await;
    assert_eq!(read.err().map(|status| status.code()), Some(Code::NotFound));
    let delete = pb::DeleteNotificationRequest { id: newest.clone() };
    let deleted = stack.notifications.delete_notification(bearer(&ann.access_token, delete)).await;
    assert_eq!(deleted.err().map(|status| status.code()), Some(Code::NotFound));
    let archive = pb::ArchiveNotificationRequest { id: newest.clone() };
    let refused = stack.notifications.archive_notification(bearer(&ann.access_token, archive)).await;
    assert_eq!(refused.err().map(|status| status.code()), Some(Code::NotFound));
    let not_an_id = pb::MarkReadRequest { id: "not-a-uuid".to_owned() };
    let refused = stack.notifications.mark_read(bearer(&bob.access_token, not_an_id)).await;
    assert_eq!(refused.err().map(|status| status.code()), Some(Code::NotFound));

    // Bob opens the bell, reads the newest, archives the oldest.
    stack.notifications.mark_seen(bearer(&bob.access_token, pb::MarkSeenRequest {})).await.unwrap();
    let seen = stack.list(&bob, pb::ListNotificationsRequest::default()).await;
    assert_eq!((seen.unread_count, seen.unseen_count), (2, 0));
    stack.notifications.mark_read(bearer(&bob.access_token, pb::MarkReadRequest { id: newest.clone() })).await.unwrap();
    let unread = stack.list(&bob, pb::ListNotificationsRequest { unread_only: true, ..Default::default() }).await;
    assert_eq!(unread.notifications.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), [oldest.as_str()]);
    assert_eq!(unread.unread_count, 1);
    let archive = pb::ArchiveNotificationRequest { id: oldest.clone() };
    stack.notifications.archive_notification(bearer(&bob.access_token, archive)).await.unwrap();
    let active = stack.list(&bob, pb::ListNotificationsRequest::default()).await;
    assert_eq!(active.notifications.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), [newest.as_str()]);
    assert_eq!(active.unread_count, 0, "an archived notification counts as read");
    let archived = stack.list(&bob, pb::ListNotificationsRequest { archived: true, ..Default::default() }).await;
    assert_eq!(archived.notifications.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), [oldest.as_str()]);
    assert!(archived.notifications[0].archived_at.is_some());

    // Bob deletes one; deleting it again is NOT_FOUND.
    let delete = || pb::DeleteNotificationRequest { id: newest.clone() };
    stack.notifications.delete_notification(bearer(&bob.access_token, delete())).await.unwrap();
    let again = stack.notifications.delete_notification(bearer(&bob.access_token, delete())).await;
    assert_eq!(again.err().map(|status| status.code()), Some(Code::NotFound));
    assert!(stack.list(&bob, pb::ListNotificationsRequest::default()).await.notifications.is_empty());
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn pages_walk_every_notification_once_newest_first() {
    // Arrange: Bob is assigned five tasks, after being added to the project.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let project = stack.project(&ann, "PGS", &[&bob]).await;
    for _ in 0..5 {
        stack.task(&ann, &project, &[&bob]).await;
    }
    let all = stack.kinds_once(&bob, 6).await;

    // Act: pages of two.
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = pb::PageRequest { limit: 2, cursor: cursor.clone() };
        let list = stack.list(&bob, pb::ListNotificationsRequest { page: Some(page), ..Default::default() }).await;
        ids.extend(list.notifications.into_iter().map(|n| n.id));
        if list.next_cursor.is_empty() {
            break;
        }
        cursor = list.next_cursor;
    }

    // Assert: six, each once, newest (largest v7 id) first; a made-up cursor is INVALID_ARGUMENT.
    assert_eq!(all.len(), 6);
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(ids, sorted);
    let bad = pb::PageRequest { limit: 2, cursor: "not a cursor".to_owned() };
    let refused = stack
        .notifications
        .list_notifications(bearer(
            &bob.access_token,
            pb::ListNotificationsRequest { page: Some(bad), ..Default::default() },
        ))
        .await;
    assert_eq!(refused.err().map(|status| status.code()), Some(Code::InvalidArgument));
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_kind_turned_off_in_the_app_stops_at_the_next_event_and_unknown_kinds_are_refused() {
    // Arrange: Bob turns comments off in the app.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let project = stack.project(&ann, "PRF", &[&bob]).await;
    let update =
        pb::UpdatePreferencesRequest { in_app: [("task.commented".to_owned(), false)].into(), ..Default::default() };
    let prefs = stack.notifications.update_preferences(bearer(&bob.access_token, update)).await.unwrap().into_inner();
    assert_eq!(prefs.in_app.get("task.commented"), Some(&false));
    assert_eq!(prefs.in_app.get("task.assigned"), Some(&true));
    assert_eq!(prefs.email.get("task.commented"), Some(&true), "the other channel keeps its setting");
    assert_eq!(prefs.in_app.len(), 11);
    assert_eq!(prefs.push.len(), 11, "every kind is listed for push too");

    // Act: Ann assigns Bob a task and comments on it.
    let task = stack.task(&ann, &project, &[&bob]).await;
    stack.comment(&ann, &task.id, "first!").await;
    stack.kinds_once(&bob, 2).await;
    // One more event from the same producer: once it has arrived, the comment before it was handled.
    stack.task(&ann, &project, &[&bob]).await;
    let kinds = stack.kinds_once(&bob, 3).await;

    // Assert: no comment notification; an unknown kind is INVALID_ARGUMENT naming it.
    assert_eq!(kinds, ["task.assigned", "task.assigned", "project.member_added"]);
    let unknown = pb::UpdatePreferencesRequest {
        in_app: [("task.exploded".to_owned(), false)].into(),
        push: [("task.imploded".to_owned(), true)].into(),
        ..Default::default()
    };
    let refused = stack.notifications.update_preferences(bearer(&bob.access_token, unknown)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = tonic_types::StatusExt::get_error_details(&refused)
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["in_app.task.exploded", "push.task.imploded"]);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
