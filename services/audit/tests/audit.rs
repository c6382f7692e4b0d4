//! The audit service against the real RabbitMQ and MariaDB: events published on the exchange become
//! records exactly once, the chain verifies, and tampering in the database is named by `seq`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use ordo_audit::domain::Verdict;
use ordo_audit::infra::mysql::{Part, verify};
use ordo_harness::{Service, Stack};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{self as pb, Envelope};
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use uuid::Uuid;

struct Audit {
    config: ordo_audit::Config,
    db: MySqlPool,
    amqp: lapin::Connection,
    channel: lapin::Channel,
    exchange: String,
    processes: Stack,
}

async fn spawn(env: &TestEnv, consumers: u16) -> Audit {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    // Audit declares and binds its queue before it serves gRPC, and the harness waits until it does:
    // nothing published from here on can miss the queue.
    let processes = Stack::of([Service::Audit])
        .args(Service::Audit, ["--consumers".to_owned(), consumers.to_string()])
        .pool(Service::Audit)
        .start(env)
        .await;
    let config = processes.audit_config().clone();
    let db = processes.pool(Service::Audit).clone();
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ordo_events::declare_exchange(&channel, &env.exchange()).await.unwrap();
    Audit { config, db, amqp, channel, exchange: env.exchange(), processes }
}

impl Audit {
    async fn publish(&self, envelope: &Envelope) {
        let properties = BasicProperties::default()
            .with_message_id(envelope.event_id.clone().into())
            .with_content_type("application/x-protobuf".into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                envelope.r#type.as_str().into(),
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

    /// Publishes `n` project events and waits until all are recorded.
    async fn record_projects(&self, n: usize) {
        let actor = Uuid::now_v7().to_string();
        for i in 0..n {
            self.publish(&project_created(&actor, &Uuid::now_v7().to_string(), i)).await;
        }
        self.wait_for(n as u64, Duration::from_secs(20)).await;
    }

    async fn stop(self) {
        self.processes.stop().await.unwrap();
        self.amqp.close(0, "done".into()).await.unwrap();
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
        serde_json::json!({"login_failed": {"email": "ada@example.com", "user_id": user, "reason": "bad_credentials"}})
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

fn task_snapshot(task: &str, project: &str) -> Option<pb::TaskSnapshot> {
    Some(pb::TaskSnapshot {
        task_id: task.into(),
        project_id: project.into(),
        key: "AUD-1".into(),
        title: "Audited".into(),
        status: "todo".into(),
        priority: "none".into(),
        version: 1,
        ..Default::default()
    })
}

#[tokio::test]
async fn comment_edits_and_deletions_and_attachment_deletions_become_records_with_actor_entity_project_and_data() {
    // Arrange: the events as the task service writes them (an admin deleting another's comment).
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    let (author, admin) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let (project, task) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let (comment, attachment) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let updated = Payload::TaskCommentUpdated(pb::TaskCommentUpdated {
        task: task_snapshot(&task, &project),
        comment_id: comment.clone(),
        author_id: author.clone(),
        excerpt: "Second thoughts".into(),
        comment_version: 2,
        recipient_ids: vec![admin.clone()],
    });
    let deleted = Payload::TaskCommentDeleted(pb::TaskCommentDeleted {
        task: task_snapshot(&task, &project),
        comment_id: comment.clone(),
        author_id: author.clone(),
        recipient_ids: vec![author.clone()],
    });
    let removed = Payload::TaskAttachmentDeleted(pb::TaskAttachmentDeleted {
        task: task_snapshot(&task, &project),
        attachment_id: attachment.clone(),
        filename: "notes.pdf".into(),
        content_type: "application/pdf".into(),
        size_bytes: 14,
        sha256: "ab".repeat(32),
        uploaded_by: author.clone(),
        recipient_ids: vec![author.clone()],
    });
    let events = [
        envelope("task.comment_updated", &author, ("comment", &comment), &project, updated),
        envelope("task.comment_deleted", &admin, ("comment", &comment), &project, deleted),
        envelope("task.attachment_deleted", &admin, ("attachment", &attachment), &project, removed),
    ];

    // Act
    for event in &events {
        audit.publish(event).await;
    }
    audit.wait_for(3, Duration::from_secs(20)).await;

    // Assert
    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT seq, id, action, actor_id, entity_type, entity_id, project_id, ip, user_agent, data \
         FROM audit_record ORDER BY seq",
    )
    .fetch_all(&audit.db)
    .await
    .unwrap();
    let seen: Vec<(&str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|(_, _, action, actor, entity_type, entity_id, project_id, _, _, _)| {
            (action.as_str(), actor.as_str(), entity_type.as_str(), entity_id.as_str(), project_id.as_str())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("task.comment_updated", author.as_str(), "comment", comment.as_str(), project.as_str()),
            ("task.comment_deleted", admin.as_str(), "comment", comment.as_str(), project.as_str()),
            ("task.attachment_deleted", admin.as_str(), "attachment", attachment.as_str(), project.as_str()),
        ]
    );
    let data: Vec<serde_json::Value> = rows.iter().map(|row| serde_json::from_str(&row.9).unwrap()).collect();
    assert_eq!(data[0]["task_comment_updated"]["excerpt"], "Second thoughts");
    assert_eq!(data[0]["task_comment_updated"]["task"]["task_id"], task.as_str());
    assert_eq!(data[1]["task_comment_deleted"]["author_id"], author.as_str());
    assert_eq!(data[2]["task_attachment_deleted"]["filename"], "notes.pdf");
    assert_eq!(data[2]["task_attachment_deleted"]["uploaded_by"], author.as_str());

    audit.stop().await;
    env.cleanup().await.unwrap();
}

/// Runs the `ordo-audit verify` binary, as an auditor would, and returns its exit success and report.
fn verify_cli(config: &ordo_audit::Config) -> (bool, serde_json::Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ordo-audit"))
        .args(["--log-format", "pretty", "--database-url", config.service.database_url.expose(), "verify"])
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
    audit.record_projects(6).await;
    let genesis = "0".repeat(64);
    assert_eq!(
        verify_cli(&audit.config),
        (true, serde_json::json!({"ok": true, "checked": 6, "anchor": {"seq": 1, "prev_hash": genesis}}))
    );

    // Someone edits record 3's data behind the service's back.
    let original: String =
        sqlx::query_scalar("SELECT data FROM audit_record WHERE seq = 3").fetch_one(&audit.db).await.unwrap();
    sqlx::query("UPDATE audit_record SET data = '{}' WHERE seq = 3").execute(&audit.db).await.unwrap();
    let (ok, report) = verify_cli(&audit.config);
    assert!(!ok);
    assert_eq!(
        report,
        serde_json::json!({"ok": false, "checked": 3, "first_bad_seq": 3, "anchor": {"seq": 1, "prev_hash": genesis}})
    );
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

/// Checks the chain in parts of `limit` records from the first, each resumed from the one before's
/// `next_seq`, as `GET /audit/verify` callers do: the verdicts of the parts.
async fn verify_in_parts(db: &MySqlPool, limit: u64) -> Vec<Verdict> {
    let mut parts = Vec::new();
    let mut from = None;
    loop {
        let verdict = verify(db, Part { from, limit: Some(limit) }).await.unwrap().unwrap();
        parts.push(verdict);
        match verdict.next_seq {
            Some(next) => from = Some(next),
            None => return parts,
        }
    }
}

#[tokio::test]
async fn a_chain_verified_in_parts_checks_each_record_once_and_finds_tampering_at_a_parts_edge() {
    // Arrange
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    audit.record_projects(10).await;
    let before = hashes(&audit.db).await;

    // Act: parts of 4 records.
    let parts = verify_in_parts(&audit.db, 4).await;

    // Assert: 1-4, 5-8, 9-10; the second part anchored at record 4's hash; only the last compares
    // the head.
    let shape: Vec<(u64, Option<u64>, Option<u64>)> =
        parts.iter().map(|p| (p.checked, p.anchor.map(|a| a.seq), p.next_seq)).collect();
    assert_eq!(shape, [(4, Some(1), Some(5)), (4, Some(5), Some(9)), (2, Some(9), None)]);
    assert!(parts.iter().all(Verdict::ok));
    assert_eq!(parts[1].anchor.map(|a| hex::encode(a.prev_hash)), Some(before[3].1.clone()));
    // A part that ends exactly at the head compares it and names no next part.
    let exact = verify_in_parts(&audit.db, 5).await;
    assert_eq!(exact.iter().map(|p| p.next_seq).collect::<Vec<_>>(), [Some(6), None]);
    // A part never starts past the head: no cursor names it.
    assert_eq!(verify(&audit.db, Part { from: Some(12), limit: Some(4) }).await.unwrap(), None);

    // Act: record 5, the first of the second part, relinked to another hash.
    sqlx::query("UPDATE audit_record SET prev_hash = UNHEX(REPEAT('ab', 32)) WHERE seq = 5")
        .execute(&audit.db)
        .await
        .unwrap();
    // Assert: the part that starts there checks its link to the part before.
    let resumed = verify(&audit.db, Part { from: Some(5), limit: Some(4) }).await.unwrap().unwrap();
    assert_eq!((resumed.first_bad_seq, resumed.next_seq), (Some(5), None));
    sqlx::query("UPDATE audit_record SET prev_hash = UNHEX(?) WHERE seq = 5")
        .bind(&before[3].1)
        .execute(&audit.db)
        .await
        .unwrap();
    assert!(verify_in_parts(&audit.db, 4).await.iter().all(Verdict::ok));

    // Act: record 4, the last of the first part, deleted: the next part cannot anchor on it.
    sqlx::query("DELETE FROM audit_record WHERE seq = 4").execute(&audit.db).await.unwrap();
    // Assert: both the part that held it and the one after name it.
    assert_eq!(verify_in_parts(&audit.db, 4).await[0].first_bad_seq, Some(4));
    let after = verify(&audit.db, Part { from: Some(5), limit: Some(4) }).await.unwrap().unwrap();
    assert_eq!(after.first_bad_seq, Some(4));

    audit.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_verification_checks_up_to_the_head_it_read_so_records_appended_meanwhile_are_not_past_the_end() {
    // Arrange: 6 records; the head set back to record 5, as a verification sees it when it reads
    // the head just before record 6's transaction commits and then reads the records after it.
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    audit.record_projects(6).await;
    let before = hashes(&audit.db).await;
    // Nothing more is published, so the service appends nothing more.
    let db = audit.db.clone();
    sqlx::query("UPDATE audit_head SET seq = 5, hash = UNHEX(?) WHERE slot = 1")
        .bind(&before[4].1)
        .execute(&db)
        .await
        .unwrap();

    // Act
    let verdict = verify(&db, Part::WHOLE).await.unwrap().unwrap();

    // Assert: records 1 to 5 verified; record 6 is left for a later check, not taken for tampering.
    assert_eq!((verdict.ok(), verdict.checked, verdict.next_seq), (true, 5, None));
    audit.stop().await;
    env.cleanup().await.unwrap();
}

/// `hash` of every record, by seq.
async fn hashes(db: &MySqlPool) -> Vec<(u64, String)> {
    sqlx::query_as("SELECT seq, LOWER(HEX(hash)) FROM audit_record ORDER BY seq").fetch_all(db).await.unwrap()
}

#[tokio::test]
async fn after_the_oldest_records_are_archived_verify_starts_from_the_first_remaining_one_and_reports_that_anchor() {
    // Arrange
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    audit.record_projects(10).await;
    let before = hashes(&audit.db).await;

    // Act: the operator's archival removes records 1 to 4 (root, behind the service's back).
    sqlx::query("DELETE FROM audit_record WHERE seq <= 4").execute(&audit.db).await.unwrap();
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    let (ok, report) = verify_cli(&audit.config);

    // Assert: verified from record 5, whose prev_hash is the last archived record's hash.
    assert_eq!((verdict.checked, verdict.first_bad_seq), (6, None));
    let anchor = verdict.anchor.unwrap();
    assert_eq!((anchor.seq, hex::encode(anchor.prev_hash)), (5, before[3].1.clone()));
    assert!(ok);
    assert_eq!(report, serde_json::json!({"ok": true, "checked": 6, "anchor": {"seq": 5, "prev_hash": before[3].1}}));

    // A record missing after the anchor is still tampering, named by its seq.
    sqlx::query("DELETE FROM audit_record WHERE seq = 7").execute(&audit.db).await.unwrap();
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!(verdict.first_bad_seq, Some(7));
    assert_eq!(verdict.anchor.map(|a| a.seq), Some(5));
    let (ok, report) = verify_cli(&audit.config);
    assert!(!ok);
    assert_eq!(report["first_bad_seq"], 7);

    audit.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_partition_archived_as_the_readme_says_leaves_a_log_that_keeps_appending_and_verifies_from_its_anchor() {
    // Arrange
    let env = TestEnv::new();
    let audit = spawn(&env, 2).await;
    audit.record_projects(10).await;
    let before = hashes(&audit.db).await;

    // Act: the README's retention steps, as the migration user would run them (root here).
    for statement in [
        "ALTER TABLE audit_record PARTITION BY RANGE (seq) \
         (PARTITION p0 VALUES LESS THAN (6), PARTITION pmax VALUES LESS THAN MAXVALUE)",
        "CREATE TABLE audit_archive_p0 LIKE audit_record",
        "ALTER TABLE audit_archive_p0 REMOVE PARTITIONING",
        "ALTER TABLE audit_record EXCHANGE PARTITION p0 WITH TABLE audit_archive_p0",
        "ALTER TABLE audit_record DROP PARTITION p0",
    ] {
        sqlx::query(statement).execute(&audit.db).await.unwrap();
    }
    let archived = hashes_of(&audit.db, "audit_archive_p0").await;
    // The service keeps appending to the partitioned table.
    let actor = Uuid::now_v7().to_string();
    for n in 10..13 {
        audit.publish(&project_created(&actor, &Uuid::now_v7().to_string(), n)).await;
    }
    audit.wait_for(13, Duration::from_secs(20)).await;
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();

    // Assert: the archive holds 1..5, the log 6..13, and they link up at the anchor.
    assert_eq!(archived, before[..5].to_vec());
    assert_eq!((verdict.checked, verdict.first_bad_seq), (8, None));
    let anchor = verdict.anchor.unwrap();
    assert_eq!((anchor.seq, hex::encode(anchor.prev_hash)), (6, archived[4].1.clone()));
    let remaining = hashes(&audit.db).await;
    assert_eq!(remaining[..5].to_vec(), before[5..].to_vec());

    audit.stop().await;
    env.cleanup().await.unwrap();
}

async fn hashes_of(db: &MySqlPool, table: &str) -> Vec<(u64, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT seq, LOWER(HEX(hash)) FROM {table} ORDER BY seq")))
        .fetch_all(db)
        .await
        .unwrap()
}

fn entry(id: Uuid, n: u32) -> ordo_audit::domain::Entry {
    ordo_audit::domain::Entry::new(
        id,
        time::OffsetDateTime::now_utc(),
        "project.created",
        "actor",
        "project",
        "project",
        &n.to_string(),
        "",
        "",
        "",
        "{}".to_owned(),
    )
}

#[tokio::test]
async fn the_same_event_appended_by_concurrent_transactions_is_recorded_once_even_without_its_dedup_row() {
    // Arrange: the append path alone, without the consumer's processed_event claim (as after the
    // dedup rows were pruned); `audit_record.id` is not a unique key any more.
    let env = TestEnv::new();
    let audit = spawn(&env, 1).await;
    let shared = Uuid::now_v7();

    // Act: eight transactions append the same event, each beside one of its own, at once.
    let mut appends = Vec::new();
    for n in 0..8 {
        let db = audit.db.clone();
        appends.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let records =
                ordo_audit::infra::mysql::append_batch(&mut tx, vec![entry(shared, n), entry(Uuid::now_v7(), n)])
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            records.len()
        }));
    }
    let mut appended = 0;
    for append in appends {
        appended += append.await.unwrap();
    }

    // Assert
    let copies: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_record WHERE id = ?")
        .bind(shared)
        .fetch_one(&audit.db)
        .await
        .unwrap();
    assert_eq!(copies, 1);
    assert_eq!(appended, 9);
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!((verdict.checked, verdict.first_bad_seq), (9, None));
    audit.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn two_instances_of_two_consumers_record_each_of_many_events_published_three_times_once() {
    // Arrange: a second instance on the same schema and queue.
    const EVENTS: usize = 600;
    let env = TestEnv::new();
    let audit = spawn(&env, 2).await;
    let second = audit.processes.another(Service::Audit).await;
    let actor = Uuid::now_v7().to_string();
    let events: Vec<_> = (0..EVENTS).map(|n| project_created(&actor, &Uuid::now_v7().to_string(), n)).collect();

    // Act: every event three times, the copies spread out so that different batches, consumers and
    // instances get them, and some at the same time.
    let mut confirms = Vec::new();
    for round in 0..3 {
        for (n, event) in events.iter().enumerate() {
            let event = if round == 1 { &events[EVENTS - 1 - n] } else { event };
            let properties =
                BasicProperties::default().with_message_id(event.event_id.clone().into()).with_delivery_mode(2);
            confirms.push(
                audit
                    .channel
                    .basic_publish(
                        audit.exchange.as_str().into(),
                        event.r#type.as_str().into(),
                        BasicPublishOptions::default(),
                        &event.encode_to_vec(),
                        properties,
                    )
                    .await
                    .unwrap(),
            );
        }
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
    audit.wait_for(EVENTS as u64, Duration::from_secs(120)).await;
    // Let any straggling copy arrive and be dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Assert
    let (count, distinct, min, max): (i64, i64, u64, u64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT id), MIN(seq), MAX(seq) FROM audit_record")
            .fetch_one(&audit.db)
            .await
            .unwrap();
    assert_eq!((count, distinct, min, max), (EVENTS as i64, EVENTS as i64, 1, EVENTS as u64));
    let verdict = ordo_audit::verify(&audit.config).await.unwrap();
    assert_eq!((verdict.checked, verdict.first_bad_seq), (EVENTS as u64, None));
    second.stop().await.unwrap();
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
                    audit.exchange.as_str().into(),
                    event.r#type.as_str().into(),
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
