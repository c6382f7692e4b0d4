//! The audit service against the real RabbitMQ and MariaDB: events published on the exchange become
//! records exactly once, the chain verifies, and tampering in the database is named by `seq`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser as _;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{self as pb, Envelope};
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Audit {
    config: ordo_audit::Config,
    db: MySqlPool,
    amqp: lapin::Connection,
    channel: lapin::Channel,
    exchange: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn spawn(env: &TestEnv, consumers: u16) -> Audit {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let (url, db) = env.create_pool("audit").await.unwrap();
    let config = ordo_audit::Config::try_parse_from([
        "ordo-audit",
        "--database-url",
        &url,
        "--events-exchange",
        &env.exchange(),
        "--events-queue",
        &env.queue("audit.events"),
        "--consumers",
        &consumers.to_string(),
    ])
    .unwrap();
    let shutdown = CancellationToken::new();
    let grpc = ordo_testkit::free_listener().await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let ops = ordo_testkit::free_listener().await.unwrap();
    let task = tokio::spawn(ordo_audit::serve(config.clone(), grpc, ops, shutdown.clone()));
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ordo_events::declare_exchange(&channel, &env.exchange()).await.unwrap();
    // Audit declares and binds its queue before it serves gRPC: once it answers, nothing published
    // from here on can miss the queue.
    let mut client = ordo_proto::audit::v1::audit_service_client::AuditServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{grpc_addr}")).unwrap().connect_lazy(),
    );
    for _ in 0..200 {
        match client.verify_log(ordo_proto::audit::v1::VerifyLogRequest {}).await {
            Err(status) if status.code() == tonic::Code::Unavailable => {}
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Audit { config, db, amqp, channel, exchange: env.exchange(), shutdown, task }
}

impl Audit {
    async fn publish(&self, envelope: &Envelope) {
        let properties = BasicProperties::default()
            .with_message_id(envelope.event_id.clone().into())
            .with_content_type("application/x-protobuf".into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                &self.exchange,
                &envelope.r#type,
                BasicPublishOptions::default(),
                &envelope.encode_to_vec(),
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn head(&self) -> u64 {
        sqlx::query_scalar("SELECT seq FROM audit_head WHERE slot = 1").fetch_one(&self.db).await.unwrap()
    }

    async fn wait_for(&self, seq: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.head().await < seq {
            assert!(tokio::time::Instant::now() < deadline, "only {} of {seq} records in time", self.head().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap().unwrap();
        self.amqp.close(0, "done").await.unwrap();
        self.db.close().await;
    }
}

fn envelope(r#type: &str, actor: &str, entity: (&str, &str), project: &str, payload: Payload) -> Envelope {
    ordo_events::EnvelopeBuilder::new(r#type.split('.').next().unwrap(), r#type)
        .actor(actor)
        .client("203.0.113.7", "audit-tests/1.0")
        .entity(entity.0, entity.1)
        .project(project)
        .payload(payload)
        .build()
}

fn login_failed(user: &str) -> Envelope {
    let payload = Payload::LoginFailed(pb::LoginFailed {
        email: "ada@example.com".into(),
        user_id: user.into(),
        reason: "bad_credentials".into(),
    });
    envelope("identity.login_failed", "", ("user", user), "", payload)
}

fn project_created(actor: &str, project: &str, n: usize) -> Envelope {
    let payload = Payload::ProjectCreated(pb::ProjectCreated {
        project_id: project.into(),
        key: format!("K{n}"),
        name: format!("Project {n}"),
        description: String::new(),
        created_by: actor.into(),
    });
    envelope("project.created", actor, ("project", project), project, payload)
}

/// seq, id, action, actor_id, entity_type, entity_id, project_id, ip, user_agent, data
type RecordRow = (u64, Uuid, String, String, String, String, String, String, String, String);

#[tokio::test]
async fn each_event_becomes_one_record_with_its_actor_action_entity_client_and_data() {
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    let user = Uuid::now_v7().to_string();
    let project = Uuid::now_v7().to_string();
    let failed = login_failed(&user);
    let created = project_created(&user, &project, 1);

    audit.publish(&failed).await;
    audit.publish(&created).await;
    // The same event delivered again is recorded once.
    audit.publish(&failed).await;
    audit.wait_for(2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT seq, id, action, actor_id, entity_type, entity_id, project_id, ip, user_agent, data \
         FROM audit_record ORDER BY seq",
    )
    .fetch_all(&audit.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let (seq, id, action, actor, entity_type, entity_id, project_id, ip, user_agent, data) = &rows[0];
    assert_eq!((*seq, id.to_string()), (1, failed.event_id.clone()));
    assert_eq!((action.as_str(), actor.as_str()), ("identity.login_failed", ""));
    assert_eq!((entity_type.as_str(), entity_id.as_str(), project_id.as_str()), ("user", user.as_str(), ""));
    assert_eq!((ip.as_str(), user_agent.as_str()), ("203.0.113.7", "audit-tests/1.0"));
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"loginFailed": {"email": "ada@example.com", "userId": user, "reason": "bad_credentials"}})
    );
    let (seq, _, action, actor, entity_type, _, project_id, _, _, data) = &rows[1];
    assert_eq!((*seq, action.as_str(), actor.as_str()), (2, "project.created", user.as_str()));
    assert_eq!((entity_type.as_str(), project_id.as_str()), ("project", project.as_str()));
    assert!(data.contains("\"key\":\"K1\""), "{data}");

    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!((verdict.checked, verdict.first_bad_seq), (2, None));
    audit.stop().await;
    env.cleanup().await.unwrap();
}

/// Runs the `ordo-audit verify` binary, as an auditor would, and returns its exit success and report.
fn verify_cli(config: &ordo_audit::Config) -> (bool, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo-audit"))
        .args(["--log-format", "pretty", "--database-url", config.database_url.expose(), "verify"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("not JSON: {} {}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    (output.status.success(), report)
}

#[tokio::test]
async fn verify_passes_on_an_honest_log_and_names_the_first_bad_seq_after_an_edit_or_a_delete() {
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    let actor = Uuid::now_v7().to_string();
    for n in 0..6 {
        audit.publish(&project_created(&actor, &Uuid::now_v7().to_string(), n)).await;
    }
    audit.wait_for(6, Duration::from_secs(20)).await;
    assert_eq!(verify_cli(&audit.config), (true, serde_json::json!({"ok": true, "checked": 6})));

    // Someone edits record 3's data behind the service's back.
    let original: String =
        sqlx::query_scalar("SELECT data FROM audit_record WHERE seq = 3").fetch_one(&audit.db).await.unwrap();
    sqlx::query("UPDATE audit_record SET data = '{}' WHERE seq = 3").execute(&audit.db).await.unwrap();
    let (ok, report) = verify_cli(&audit.config);
    assert!(!ok);
    assert_eq!(report, serde_json::json!({"ok": false, "checked": 3, "first_bad_seq": 3}));
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!(verdict.first_bad_seq, Some(3));

    // Put back, it verifies again; then someone deletes record 5.
    sqlx::query("UPDATE audit_record SET data = ? WHERE seq = 3").bind(&original).execute(&audit.db).await.unwrap();
    assert!(verify_cli(&audit.config).0);
    sqlx::query("DELETE FROM audit_record WHERE seq = 5").execute(&audit.db).await.unwrap();
    let (ok, report) = verify_cli(&audit.config);
    assert!(!ok);
    assert_eq!(report["first_bad_seq"], 5);

    // And when the last record is cut off the end, the head still names it.
    sqlx::query("DELETE FROM audit_record WHERE seq >= 5").execute(&audit.db).await.unwrap();
    assert_eq!(verify_cli(&audit.config).1["first_bad_seq"], 5);

    audit.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn four_consumers_appending_at_once_give_a_gap_free_valid_chain() {
    const EVENTS: u64 = 10_000;
    let env = TestEnv::new();
    let audit = spawn(&env, 4).await;
    let actor = Uuid::now_v7().to_string();
    let project = Uuid::now_v7().to_string();
    let mut confirms = Vec::with_capacity(EVENTS as usize);
    for n in 0..EVENTS as usize {
        let event = project_created(&actor, &project, n);
        let properties =
            BasicProperties::default().with_message_id(event.event_id.clone().into()).with_delivery_mode(2);
        confirms.push(
            audit
                .channel
                .basic_publish(
                    &audit.exchange,
                    &event.r#type,
                    BasicPublishOptions::default(),
                    &event.encode_to_vec(),
                    properties,
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
    audit.wait_for(EVENTS, Duration::from_secs(180)).await;

    let (count, min, max): (i64, u64, u64) =
        sqlx::query_as("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit_record").fetch_one(&audit.db).await.unwrap();
    assert_eq!((count, min, max), (EVENTS as i64, 1, EVENTS));
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!((verdict.checked, verdict.first_bad_seq), (EVENTS, None));
    audit.stop().await;
    env.cleanup().await.unwrap();
}
