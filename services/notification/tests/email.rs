//! Notification email through the local SES stand-in (moto), with real identity, project and task
//! services: an assignment mails the assignee once and the actor nothing, a burst of edits of one task
//! becomes one mail that lists them, and a kind turned off by email stops only its mail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::bearer;
use ordo_proto::notification::v1 as pb;
use ordo_proto::task::v1 as tpb;
use ordo_testkit::TestEnv;

mod support;

use support::{address, mails_once, spawn_with};

#[tokio::test]
async fn an_assignment_mails_the_assignee_once_and_the_actor_nothing() {
    // Arrange: Ann owns a project with Bob as a member.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &[]).await;
    let (ann_address, bob_address) = (address(&env, "ann"), address(&env, "bob"));
    let ann = stack.processes.sign_up(&ann_address).await;
    let bob = stack.processes.sign_up(&bob_address).await;
    let project = stack.project(&ann, "EMA", &[&bob]).await;

    // Act: Ann assigns Bob a task.
    stack.task(&ann, &project, &[&bob]).await;

    // Assert: Bob got the mail of being added and the one of the assignment, each once, from the
    // configured sender; Ann got none.
    let mails = mails_once(&bob_address, 2).await;
    let mut subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["EMA-1 was assigned to you", "You were added to Project EMA"]);
    let assigned = mails.iter().find(|m| m.subject.starts_with("EMA-1")).unwrap();
    assert!(assigned.body.contains("Fix login"), "{}", assigned.body);
    assert_eq!(assigned.from, "Ordo <notifications@ordo.test>");
    assert!(ordo_testkit::sent_mails(&ann_address).await.unwrap().is_empty());
    let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email WHERE state = 'sent' AND attempts = 1")
        .fetch_one(stack.processes.pool(ordo_harness::Service::Notification))
        .await
        .unwrap();
    assert_eq!(sent, 2);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_burst_of_edits_is_one_mail_and_a_kind_turned_off_by_email_stays_in_the_app() {
    // Arrange: a window of three seconds; Bob is assigned a task and has had its mail.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--email-window-secs", "3"]).await;
    let bob_address = address(&env, "bob");
    let ann = stack.processes.sign_up(&address(&env, "ann")).await;
    let bob = stack.processes.sign_up(&bob_address).await;
    let project = stack.project(&ann, "EMB", &[&bob]).await;
    let task = stack.task(&ann, &project, &[&bob]).await;
    mails_once(&bob_address, 2).await;

    // Act: Ann renames the task five times in a row.
    for n in 1..=5 {
        let patch = tpb::TaskPatch { title: format!("Title {n}"), ..Default::default() };
        stack.update(&ann, &task.id, patch, &["title"]).await;
    }

    // Assert: one more mail, listing the five changes in order.
    let mails = mails_once(&bob_address, 3).await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    let burst = mails.iter().find(|m| m.subject == "5 updates on EMB-1").expect("the burst's mail");
    let at: Vec<usize> = (1..=5).map(|n| burst.body.find(&format!("Title {n}")).expect("each change")).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {}", burst.body);

    // Act: Bob turns renames off by email only, and Ann renames the task again.
    let off = pb::UpdatePreferencesRequest { email: [("task.updated".to_owned(), false)].into(), ..Default::default() };
    stack.notifications.update_preferences(bearer(&bob.access_token, off)).await.unwrap();
    let patch = tpb::TaskPatch { title: "Title 6".into(), ..Default::default() };
    stack.update(&ann, &task.id, patch, &["title"]).await;

    // Assert: the rename is in the app, and no mail came of it.
    let kinds = stack.kinds_once(&bob, 8).await;
    assert_eq!(kinds[0], "task.updated");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ordo_testkit::sent_mails(&bob_address).await.unwrap().len(), 3);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
