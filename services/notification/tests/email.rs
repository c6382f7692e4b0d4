//! Notification email through the local SES stand-in (moto), with real identity, project and task
//! services: an assignment mails the assignee once and the actor nothing, a burst of edits of one task
//! becomes one mail that lists them, a kind turned off by email stops only its mail, and a mail's
//! outcome that meets the database away is recorded once it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ordo_harness::{Service, bearer};
use ordo_notification::app::ports::{Mail, Mailer, SendError};
use ordo_notification::app::{EmailSender, SendPolicy};
use ordo_notification::infra::{MySqlEmailStore, SesMailer, SesSettings};
use ordo_platform::Secret;
use ordo_platform::aws::AwsSettings;
use ordo_proto::notification::v1 as pb;
use ordo_proto::task::v1 as tpb;
use ordo_testkit::{TcpProxy, TestEnv};
use sqlx::mysql::MySqlPoolOptions;
use time::OffsetDateTime;
use uuid::Uuid;

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

/// The SES client, with the database cut away right after SES took a mail and back a second later:
/// the moment between a send and the record of its outcome that a database restart can hit.
struct CutAfterSend {
    ses: SesMailer,
    database: Arc<TcpProxy>,
}

#[async_trait::async_trait]
impl Mailer for CutAfterSend {
    async fn send(&self, to: &str, mail: &Mail) -> Result<String, SendError> {
        let sent = self.ses.send(to, mail).await;
        self.database.cut();
        let database = self.database.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            database.restore();
        });
        sent
    }
}

#[tokio::test]
async fn a_mail_whose_outcome_meets_the_database_away_is_recorded_sent_once_it_is_back() {
    // Arrange: a migrated schema holding one mail due now for Bob, and a sender whose store reaches
    // MariaDB through a proxy that goes away right after SES takes the mail (found by `just chaos`:
    // 18 mails SES took during a MariaDB restart were left `sending`, then `unknown`).
    // The service's own sender is off, so the mail is this test's sender's alone.
    let env = TestEnv::new();
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Notification])
        .args(Service::Notification, ["--email-enabled=false"])
        .pool(Service::Notification)
        .start(&env)
        .await;
    let pool = processes.pool(Service::Notification).clone();
    let to = address(&env, "bob");
    let (user, email) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query("INSERT INTO directory_user (user_id, email, display_name) VALUES (?, ?, 'Bob')")
        .bind(user)
        .bind(&to)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO email (id, user_id, state, due_at, created_at) \
         VALUES (?, ?, 'open', UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, UTC_TIMESTAMP(6))",
    )
    .bind(email)
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO email_item (email_id, notification_id, kind, title, body, task_key) \
         VALUES (?, ?, 'task.assigned', 'EMR-1 was assigned to you', 'Fix login', 'EMR-1')",
    )
    .bind(email)
    .bind(Uuid::now_v7())
    .execute(&pool)
    .await
    .unwrap();
    let database = Arc::new(TcpProxy::mysql().await.unwrap());
    let proxied = MySqlPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect(&database.url_of(processes.database_url(Service::Notification)))
        .await
        .unwrap();
    let aws = AwsSettings::new(
        &ordo_testkit::ses_endpoint(),
        "us-east-1",
        Some(&"ordo-test".to_owned()),
        Some(&Secret::new("ordo-test".to_owned())),
    );
    let settings = SesSettings { aws, from: "Ordo <notifications@ordo.test>".to_owned(), configuration_set: None };
    let ses = SesMailer::new(&settings, Duration::from_secs(5)).await.unwrap();
    ses.ensure_sender_identity().await.unwrap();
    let mailer = CutAfterSend { ses, database: database.clone() };
    let sender = EmailSender::new(Arc::new(MySqlEmailStore::new(proxied)), Arc::new(mailer), SendPolicy::default());

    // Act: the sender claims and sends the mail; its record meets the database away.
    sender.send_due(OffsetDateTime::now_utc()).await.unwrap();

    // Assert: SES took it once, and the row says so once the database is back.
    let (state, attempts): (String, i16) =
        sqlx::query_as("SELECT CAST(state AS CHAR), attempts FROM email WHERE id = ?")
            .bind(email)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("sent", 1));
    assert_eq!(ordo_testkit::sent_mails(&to).await.unwrap().len(), 1);
    processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
