//! Daily digests with real identity, project and task services: a digest lists the tasks still open,
//! still assigned to its user and not deleted (however each left), and a user whose mail is off gets
//! none, neither at once nor as a digest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::{Service, User, bearer};
use ordo_proto::notification::v1 as pb;
use ordo_proto::task::v1 as tpb;
use ordo_testkit::TestEnv;
use time::OffsetDateTime;
use uuid::Uuid;

mod support;

use support::{Stack, address, mails_once, spawn_with};

fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: 0 }
}

/// A task of `project` titled `title`, assigned to `assignees`, due yesterday.
async fn overdue(stack: &mut Stack, by: &User, project: &str, title: &str, assignees: &[&User]) -> tpb::Task {
    let request = tpb::CreateTaskRequest {
        project_id: project.to_owned(),
        title: title.to_owned(),
        assignee_ids: assignees.iter().map(|user| user.id.clone()).collect(),
        due_at: Some(timestamp(OffsetDateTime::now_utc() - Duration::from_secs(86_400))),
        ..Default::default()
    };
    stack.tasks.create_task(bearer(&by.access_token, request)).await.unwrap().into_inner().task.unwrap()
}

async fn deliver(stack: &mut Stack, user: &User, mode: &str) -> pb::EmailDelivery {
    let request = pb::UpdatePreferencesRequest {
        email_delivery: Some(pb::EmailDeliveryChange {
            mode: Some(mode.to_owned()),
            hour: Some(6),
            time_zone: Some("America/New_York".to_owned()),
        }),
        ..Default::default()
    };
    let preferences = stack.notifications.update_preferences(bearer(&user.access_token, request)).await.unwrap();
    preferences.into_inner().email_delivery.unwrap()
}

/// The titles of the open, assigned, due tasks the service records for `user`.
async fn assigned(stack: &Stack, user: &User) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT t.title FROM due_assignment a JOIN task_due t ON t.task_id = a.task_id WHERE a.user_id = ?",
    )
    .bind(Uuid::parse_str(&user.id).unwrap())
    .fetch_all(stack.processes.pool(Service::Notification))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_digest_lists_only_tasks_still_open_assigned_and_there_and_mail_off_sends_nothing() {
    // Arrange: Bob takes a daily digest, Dee no mail at all; both were told by mail they joined.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--digest-poll-ms", "200"]).await;
    let (bob_address, dee_address) = (address(&env, "bob"), address(&env, "dee"));
    let ann = stack.processes.sign_up(&address(&env, "ann")).await;
    let bob = stack.processes.sign_up(&bob_address).await;
    let dee = stack.processes.sign_up(&dee_address).await;
    let project = stack.project(&ann, "DGT", &[&bob, &dee]).await;
    mails_once(&bob_address, 1).await;
    mails_once(&dee_address, 1).await;
    let daily = deliver(&mut stack, &bob, "daily").await;
    let off = deliver(&mut stack, &dee, "off").await;

    // Act: four overdue tasks of Bob's: one is done, one unassigned, one deleted; the last, Dee's
    // too, stays.
    let done = overdue(&mut stack, &ann, &project, "Finished already", &[&bob]).await;
    let unassigned = overdue(&mut stack, &ann, &project, "Handed over", &[&bob]).await;
    let deleted = overdue(&mut stack, &ann, &project, "Not needed", &[&bob]).await;
    overdue(&mut stack, &ann, &project, "Still waiting", &[&bob, &dee]).await;
    let patch = tpb::TaskPatch { status: tpb::TaskStatus::Done.into(), ..Default::default() };
    stack.update(&ann, &done.id, patch, &["status"]).await;
    stack.update(&ann, &unassigned.id, tpb::TaskPatch::default(), &["assignee_ids"]).await;
    let request = tpb::DeleteTaskRequest { id: deleted.id.clone(), ..Default::default() };
    stack.tasks.delete_task(bearer(&ann.access_token, request)).await.unwrap();
    // Four were recorded (the last created is there) and three left again.
    for attempt in 0.. {
        if assigned(&stack, &bob).await == ["Still waiting"] {
            break;
        }
        assert!(attempt < 100, "{:?}", assigned(&stack, &bob).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The hour comes (the stored time of the next digest moved to now), for Dee too, whose mode
    // alone must keep her from a digest.
    let due = ordo_platform::db::utc_datetime(OffsetDateTime::now_utc() - Duration::from_secs(1));
    for user in [&bob, &dee] {
        sqlx::query("UPDATE email_schedule SET next_digest_at = ? WHERE user_id = ?")
            .bind(due)
            .bind(Uuid::parse_str(&user.id).unwrap())
            .execute(stack.processes.pool(Service::Notification))
            .await
            .unwrap();
    }

    // Assert: the schedules read back (06:00 in New York is 11:00 UTC in winter, 10:00 in summer);
    // Bob's digest lists one task, the one still open and his; Dee got no mail past the first.
    assert_eq!((daily.mode.as_str(), daily.hour, daily.time_zone.as_str()), ("daily", 6, "America/New_York"));
    let next = daily.next_digest_at.unwrap().seconds;
    let next = OffsetDateTime::from_unix_timestamp(next).unwrap();
    assert!([10, 11].contains(&next.hour()) && next.minute() == 0, "{next}");
    assert_eq!((off.mode.as_str(), off.next_digest_at), ("off", None));
    let mails = mails_once(&bob_address, 2).await;
    assert_eq!(mails.len(), 2);
    let digest = mails.iter().find(|m| m.subject.starts_with("Your Ordo digest")).unwrap();
    assert!(digest.subject.ends_with(", 1 task due"), "{}", digest.subject);
    assert!(digest.body.contains("Still waiting"), "{}", digest.body);
    assert_eq!(digest.body.matches("(overdue since").count(), 1, "{}", digest.body);
    let dee_mails = ordo_testkit::sent_mails(&dee_address).await.unwrap();
    assert_eq!(dee_mails.len(), 1, "{:?}", dee_mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
