//! The live stream of the notification service: a notification reaches an open stream once it is
//! stored, a stream resumed after its last notification gets exactly what it missed and then live
//! ones, and one user's streams are limited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::{Service, User, bearer};
use ordo_proto::events::v1 as epb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::notification::v1 as pb;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_proto::notification::v1::stream_notifications_response::Event;
use ordo_testkit::TestEnv;
use prost::Message as _;
use tonic::Streaming;
use uuid::Uuid;

struct Stack {
    notifications: NotificationServiceClient<tonic::transport::Channel>,
    env: TestEnv,
    processes: ordo_harness::Stack,
}

async fn spawn() -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let env = TestEnv::new();
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Notification])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .args(Service::Notification, ["--max-streams-per-user", "2"])
        .start(&env)
        .await;
    Stack { notifications: NotificationServiceClient::new(processes.channel(Service::Notification)), env, processes }
}

impl Stack {
    /// Publishes a `task.assigned` of task `<key>` from `actor` to `assignee`, as the task service would.
    async fn assign(&self, actor: &User, assignee: &User, key: &str) {
        let task_id = Uuid::now_v7().to_string();
        let project_id = Uuid::now_v7().to_string();
        let snapshot = epb::TaskSnapshot {
            task_id: task_id.clone(),
            project_id: project_id.clone(),
            key: key.to_owned(),
            title: format!("Task {key}"),
            assignee_ids: vec![assignee.id.clone()],
            ..Default::default()
        };
        let payload = epb::TaskAssigned { task: Some(snapshot), assignee_id: assignee.id.clone() };
        let envelope = ordo_events::EnvelopeBuilder::new("task", "task.assigned")
            .actor(actor.id.clone())
            .entity("task", task_id)
            .project(project_id)
            .payload(Payload::TaskAssigned(payload))
            .build();
        self.env.publish("task.assigned", &envelope.encode_to_vec(), &envelope.event_id).await.unwrap();
    }

    async fn open(
        &mut self,
        user: &User,
        last_event_id: &str,
    ) -> Result<Streaming<pb::StreamNotificationsResponse>, tonic::Status> {
        let request = pb::StreamNotificationsRequest { last_event_id: last_event_id.to_owned() };
        self.notifications
            .stream_notifications(bearer(&user.access_token, request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn stop(self) {
        self.processes.stop().await.unwrap();
        self.env.cleanup().await.unwrap();
    }
}

/// The next notification on `stream` (counts in between are skipped), within a few seconds.
async fn next_notification(stream: &mut Streaming<pb::StreamNotificationsResponse>) -> pb::Notification {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
        if let Some(Event::Notification(notification)) = item.event {
            return notification;
        }
    }
}

/// The next counts on `stream`.
async fn next_counts(stream: &mut Streaming<pb::StreamNotificationsResponse>) -> pb::Counts {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.unwrap().unwrap().unwrap();
        if let Some(Event::Counts(counts)) = item.event {
            return counts;
        }
    }
}

/// Nothing but counts arrives on `stream` for a moment.
async fn no_notification_for_a_moment(stream: &mut Streaming<pb::StreamNotificationsResponse>) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Ok(item) = tokio::time::timeout_at(deadline, stream.message()).await {
        let item = item.unwrap().unwrap();
        assert!(!matches!(item.event, Some(Event::Notification(_))), "unexpected {item:?}");
    }
}

#[tokio::test]
async fn a_stream_gets_each_notification_live_and_a_resumed_one_exactly_what_it_missed() {
    // Arrange: Bob's stream is open, with his counts first.
    let mut stack = spawn().await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let mut live = stack.open(&bob, "").await.unwrap();
    assert_eq!(next_counts(&mut live).await, pb::Counts { unread_count: 0, unseen_count: 0 });

    // Act and assert: a notification arrives live, followed by the new counts.
    stack.assign(&ann, &bob, "STR-1").await;
    let first = next_notification(&mut live).await;
    assert_eq!(first.title, "STR-1 was assigned to you");
    assert_eq!(next_counts(&mut live).await, pb::Counts { unread_count: 1, unseen_count: 1 });

    // The client goes away; two more arrive meanwhile.
    drop(live);
    stack.assign(&ann, &bob, "STR-2").await;
    stack.assign(&ann, &bob, "STR-3").await;
    let list = || pb::ListNotificationsRequest::default();
    for _ in 0..100 {
        let page = stack.notifications.list_notifications(bearer(&bob.access_token, list())).await.unwrap();
        if page.into_inner().notifications.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Resumed after the first: the two it missed, in order, then a live one, and no other.
    let mut resumed = stack.open(&bob, &first.id).await.unwrap();
    let missed = [next_notification(&mut resumed).await.title, next_notification(&mut resumed).await.title];
    assert_eq!(missed, ["STR-2 was assigned to you", "STR-3 was assigned to you"]);
    stack.assign(&ann, &bob, "STR-4").await;
    assert_eq!(next_notification(&mut resumed).await.title, "STR-4 was assigned to you");
    no_notification_for_a_moment(&mut resumed).await;

    // A fresh stream (no last id) starts live: none of the four is replayed.
    let mut fresh = stack.open(&bob, "").await.unwrap();
    assert_eq!(next_counts(&mut fresh).await.unread_count, 4);
    no_notification_for_a_moment(&mut fresh).await;
    drop((resumed, fresh));
    stack.stop().await;
}

#[tokio::test]
async fn a_user_has_a_limited_number_of_streams_and_a_closed_one_frees_its_place() {
    let mut stack = spawn().await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let first = stack.open(&bob, "").await.unwrap();
    let _second = stack.open(&bob, "").await.unwrap();

    let refused = stack.open(&bob, "").await.err().map(|status| status.code());

    assert_eq!(refused, Some(tonic::Code::ResourceExhausted));
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        match stack.open(&bob, "").await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "the closed stream's place was freed");
    // Open streams do not hold the service's drain.
    stack.stop().await;
}

#[tokio::test]
async fn a_stream_ends_within_seconds_of_its_session() {
    // Arrange: Bob's stream is open.
    let mut stack = spawn().await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let mut stream = stack.open(&bob, "").await.unwrap();
    next_counts(&mut stream).await;

    // Act: Bob logs out.
    let mut identity = ordo_proto::identity::v1::identity_service_client::IdentityServiceClient::new(
        stack.processes.channel(Service::Identity),
    );
    let logout = ordo_proto::identity::v1::LogoutRequest { client: None };
    identity.logout(bearer(&bob.access_token, logout)).await.unwrap();

    // Assert: the stream ends, saying why, within the recheck interval and a little more.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the stream ended");
    assert_eq!(ended, Some(tonic::Code::Unauthenticated));
    stack.stop().await;
}

#[tokio::test]
async fn a_change_of_counts_on_another_instance_reaches_the_stream_at_once() {
    // Arrange: two instances; Bob's stream is open on the first, with one unread notification.
    let mut stack = spawn().await;
    let second = stack.processes.another(Service::Notification).await;
    let mut elsewhere = NotificationServiceClient::new(second.channel());
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let mut live = stack.open(&bob, "").await.unwrap();
    assert_eq!(next_counts(&mut live).await, pb::Counts { unread_count: 0, unseen_count: 0 });
    stack.assign(&ann, &bob, "CNT-1").await;
    let notification = next_notification(&mut live).await;
    assert_eq!(next_counts(&mut live).await, pb::Counts { unread_count: 1, unseen_count: 1 });

    // Act: Bob reads it through the other instance (another tab, another gateway).
    let read = pb::MarkReadRequest { id: notification.id };
    elsewhere.mark_read(bearer(&bob.access_token, read)).await.unwrap();

    // Assert: the stream shows the new counts well before its 30 s safety poll would.
    let counts = tokio::time::timeout(Duration::from_secs(5), next_counts(&mut live)).await.expect("counts in time");
    assert_eq!(counts, pb::Counts { unread_count: 0, unseen_count: 0 });
    drop(live);
    second.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_jobs_progress_reaches_its_requesters_open_streams_and_no_one_elses() {
    let mut stack = spawn().await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let mut ann_stream = stack.open(&ann, "").await.unwrap();
    let mut bob_stream = stack.open(&bob, "").await.unwrap();
    next_counts(&mut ann_stream).await;
    next_counts(&mut bob_stream).await;

    // The task service tells how far Ann's export got.
    let (job_id, project_id) = (Uuid::now_v7(), Uuid::now_v7());
    let progressed = epb::JobProgressed {
        job_id: job_id.to_string(),
        project_id: project_id.to_string(),
        requester_id: ann.id.to_string(),
        kind: "export".into(),
        rows_done: 500,
        rows_total: None,
    };
    let envelope = ordo_events::EnvelopeBuilder::new("task", "job.progressed")
        .entity("job", job_id.to_string())
        .project(project_id.to_string())
        .payload(Payload::JobProgressed(progressed))
        .build();
    stack.env.publish("job.progressed", &envelope.encode_to_vec(), &envelope.event_id).await.unwrap();

    let job = loop {
        let item = tokio::time::timeout(Duration::from_secs(10), ann_stream.message()).await.unwrap().unwrap().unwrap();
        if let Some(Event::Job(job)) = item.event {
            break job;
        }
    };
    assert_eq!((job.job_id, job.project_id), (job_id.to_string(), project_id.to_string()));
    assert_eq!((job.kind.as_str(), job.rows_done, job.rows_total), ("export", 500, None));
    // Bob hears nothing of it, and it is no notification of Ann's.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Ok(item) = tokio::time::timeout_at(deadline, bob_stream.message()).await {
        let item = item.unwrap().unwrap();
        assert!(!matches!(item.event, Some(Event::Job(_))), "unexpected {item:?}");
    }
    let list =
        stack.notifications.list_notifications(bearer(&ann.access_token, pb::ListNotificationsRequest::default()));
    assert!(list.await.unwrap().into_inner().notifications.is_empty());
    drop((ann_stream, bob_stream));
    stack.stop().await;
}
