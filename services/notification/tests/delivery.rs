//! The notification service's consumer under the broker's at-least-once delivery: an event delivered
//! twice gives one notification and one mail, and a message that is not an event is dead-lettered
//! while the consumer goes on with the next ones; a mail SES refuses is recorded failed, once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lapin::options::BasicGetOptions;
use ordo_harness::{Service, User, bearer};
use ordo_proto::events::v1 as epb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::notification::v1 as pb;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_testkit::TestEnv;
use prost::Message as _;
use uuid::Uuid;

mod support;

use support::{address, mails_once};

/// A `task.assigned` event of task `number` of one project, assigning `assignee`, caused by `actor`.
fn assigned(actor: &User, assignee: &User, project_id: Uuid, number: u32) -> epb::Envelope {
    let task_id = Uuid::now_v7().to_string();
    let snapshot = epb::TaskSnapshot {
        task_id: task_id.clone(),
        project_id: project_id.to_string(),
        key: format!("DLV-{number}"),
        title: format!("Task {number}"),
        status: "todo".into(),
        priority: "none".into(),
        assignee_ids: vec![assignee.id.clone()],
        reporter_id: actor.id.clone(),
        due_at: None,
        version: 1,
    };
    ordo_events::EnvelopeBuilder::new("task", "task.assigned")
        .actor(actor.id.clone())
        .entity("task", task_id)
        .project(project_id.to_string())
        .payload(Payload::TaskAssigned(epb::TaskAssigned { task: Some(snapshot), assignee_id: assignee.id.clone() }))
        .build()
}

/// The titles of `user`'s notifications, newest first, once there are `count` of them; then a
/// little longer, so a notification too many would show.
async fn titles_once(
    notifications: &mut NotificationServiceClient<tonic::transport::Channel>,
    user: &User,
    count: usize,
) -> Vec<String> {
    let list = || pb::ListNotificationsRequest::default();
    for _ in 0..100 {
        let page = notifications.list_notifications(bearer(&user.access_token, list())).await.unwrap().into_inner();
        if page.notifications.len() >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let page = notifications.list_notifications(bearer(&user.access_token, list())).await.unwrap().into_inner();
            return page.notifications.into_iter().map(|n| n.title).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not get {count} notifications", user.id);
}

#[tokio::test]
async fn an_event_delivered_twice_notifies_once_and_a_poison_message_is_dead_lettered() {
    // Arrange: identity for tokens and the notification service; the events come from the test.
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let env = TestEnv::new();
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Notification])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .start(&env)
        .await;
    let mut notifications = NotificationServiceClient::new(processes.channel(Service::Notification));
    let ann = processes.sign_up(&address(&env, "ann")).await;
    let bob_address = address(&env, "bob");
    let bob = processes.sign_up(&bob_address).await;
    let project = Uuid::now_v7();

    // Act: the first event twice (a redelivery after a lost ack looks just like this), then a second.
    let first = assigned(&ann, &bob, project, 1);
    for _ in 0..2 {
        env.publish("task.assigned", &first.encode_to_vec(), &first.event_id).await.unwrap();
    }
    let second = assigned(&ann, &bob, project, 2);
    env.publish("task.assigned", &second.encode_to_vec(), &second.event_id).await.unwrap();

    // Assert: one notification per event.
    let titles = titles_once(&mut notifications, &bob, 2).await;
    assert_eq!(titles, ["DLV-2 was assigned to you", "DLV-1 was assigned to you"]);

    // Act: bytes that are no envelope, then a third event.
    env.publish("task.assigned", b"\xff\x00 not protobuf", &Uuid::now_v7().to_string()).await.unwrap();
    let third = assigned(&ann, &bob, project, 3);
    env.publish("task.assigned", &third.encode_to_vec(), &third.event_id).await.unwrap();

    // Assert: the consumer went on, and the poison message waits in the dead-letter queue.
    let titles = titles_once(&mut notifications, &bob, 3).await;
    assert_eq!(titles[0], "DLV-3 was assigned to you");
    assert_eq!(titles.len(), 3);
    let mut subjects: Vec<String> = mails_once(&bob_address, 3).await.into_iter().map(|m| m.subject).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["DLV-1 was assigned to you", "DLV-2 was assigned to you", "DLV-3 was assigned to you"]);
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let dead_letters = format!("{}.dlq", env.queue("notification.events"));
    let dead = channel.basic_get(dead_letters.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert_eq!(dead.map(|message| message.delivery.data), Some(b"\xff\x00 not protobuf".to_vec()));
    let _ = amqp.close(200, "done".into()).await;
    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_mail_ses_refuses_is_recorded_failed_and_never_tried_again() {
    // Arrange: a user whose address SES refuses (identity would never register it; the event says so).
    let env = TestEnv::new();
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Notification])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .pool(Service::Notification)
        .start(&env)
        .await;
    let ann = processes.sign_up(&address(&env, "ann")).await;
    let odd = User { id: Uuid::now_v7().to_string(), access_token: String::new() };
    let registered = ordo_events::EnvelopeBuilder::new("identity", "identity.user_registered")
        .entity("user", odd.id.clone())
        .payload(Payload::UserRegistered(epb::UserRegistered {
            user_id: odd.id.clone(),
            email: "no-domain".into(),
            display_name: "Odd".into(),
            role: "member".into(),
        }))
        .build();
    env.publish("identity.user_registered", &registered.encode_to_vec(), &registered.event_id).await.unwrap();

    // Act: Ann assigns them a task.
    let event = assigned(&ann, &odd, Uuid::now_v7(), 1);
    env.publish("task.assigned", &event.encode_to_vec(), &event.event_id).await.unwrap();

    // Assert: the mail failed on its first try, with SES's reason, and stays failed.
    let pool = processes.pool(Service::Notification);
    let user_id = Uuid::parse_str(&odd.id).unwrap();
    let read = || async {
        sqlx::query_as::<_, (String, i16, Option<String>)>("SELECT state, attempts, error FROM email WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .unwrap()
    };
    // A deadline, not a timing claim: on a loaded machine the first try has come after 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut row = None;
    while tokio::time::Instant::now() < deadline {
        row = read().await.filter(|(state, _, _)| state != "open" && state != "sending");
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (state, attempts, error) = row.expect("the mail was tried");
    assert_eq!((state.as_str(), attempts), ("failed", 1), "{error:?}");
    assert!(error.unwrap_or_default().contains("Missing domain"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read().await.map(|(state, attempts, _)| (state, attempts)), Some(("failed".to_owned(), 1)));
    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
