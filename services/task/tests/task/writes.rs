//! Creates, updates and bulk updates.

use super::*;

#[tokio::test]
async fn fifty_concurrent_creates_in_one_project_are_numbered_1_to_50_in_board_order() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "NUM").await;

    let creates = (0..50).map(|i| {
        let mut tasks = stack.tasks.clone();
        let request = as_user(&owner, new_task(&project, &format!("Task {i}")));
        async move { tasks.create_task(request).await.map(|r| r.into_inner().task.unwrap()) }
    });
    let created: Vec<pb::Task> = futures::future::join_all(creates).await.into_iter().map(Result::unwrap).collect();

    let mut numbers: Vec<i64> = created.iter().map(|t| t.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>());
    for task in &created {
        assert_eq!(task.key, format!("NUM-{}", task.number));
        assert_eq!(
            (task.version, task.status, task.priority),
            (1, pb::TaskStatus::Todo as i32, pb::TaskPriority::None as i32)
        );
    }
    // Each new task went to the end of the board: board order is creation order.
    let mut by_number = created.clone();
    by_number.sort_by_key(|t| t.number);
    for pair in by_number.windows(2) {
        assert!(
            pair[0].position.as_bytes() < pair[1].position.as_bytes(),
            "{} < {}",
            pair[0].position,
            pair[1].position
        );
    }
    let by_key = stack
        .tasks
        .get_task_by_key(as_user(&owner, pb::GetTaskByKeyRequest { key: "NUM-17".into() }))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(by_key.number, 17);
    let missing = stack.tasks.get_task_by_key(as_user(&owner, pb::GetTaskByKeyRequest { key: "NUM-51".into() })).await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);

    // One task.created per task, through the outbox, each with what consumers need.
    let events = stack.outbox().await;
    let created_events: Vec<&Envelope> = events.iter().filter(|e| e.r#type == "task.created").collect();
    assert_eq!(created_events.len(), 50);
    let first = created_events[0];
    assert_eq!((first.producer.as_str(), first.entity_type.as_str()), ("task", "task"));
    assert_eq!(first.project_id, project);
    assert_eq!(first.actor_id, owner.id.to_string());
    assert_eq!((first.ip.as_str(), first.user_agent.as_str()), ("203.0.113.7", "task-tests/1.0"));
    match first.payload.as_ref().unwrap() {
        Payload::TaskCreated(created) => {
            let snapshot = created.task.as_ref().unwrap();
            assert_eq!(snapshot.task_id, first.entity_id);
            assert!(snapshot.key.starts_with("NUM-"));
            assert_eq!(created.recipient_ids, [owner.id.to_string()]);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // The relay publishes every row with confirms and marks it sent.
    let db = stack.db.clone();
    eventually("the relay to publish the outbox", || {
        let db = db.clone();
        async move {
            let (pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox_event WHERE published_at IS NULL")
                .fetch_one(&db)
                .await
                .unwrap();
            pending == 0
        }
    })
    .await;
    // Ready: MariaDB, Redis and identity's keys all answer.
    let ready = http_get(stack.task_ops, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = http_get(stack.task_ops, "/metrics").await;
    assert!(metrics.contains("ordo_grpc_requests_total"), "{metrics}");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn updates_follow_the_mask_and_a_stale_version_aborts_without_changing_anything() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "UPD").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    let task = stack.create(&owner, new_task(&project, "  Write the spec  ")).await;
    assert_eq!(task.title, "Write the spec");

    // A stale version: ABORTED, and the task is as it was.
    let patch = pb::TaskPatch { title: "Changed".into(), ..Default::default() };
    let stale = stack.update(&owner, &task.id, patch.clone(), &["title"], Some(task.version + 1)).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let unchanged = stack.get(&owner, &task.id).await.unwrap();
    assert_eq!((unchanged.title.as_str(), unchanged.version), ("Write the spec", 1));

    // The current version: applied, version + 1.
    let updated = stack.update(&owner, &task.id, patch, &["title"], Some(1)).await.unwrap();
    assert_eq!((updated.title.as_str(), updated.version), ("Changed", 2));

    // Done sets completed_at, leaving done clears it; assignees become events.
    let patch = pb::TaskPatch {
        status: pb::TaskStatus::Done.into(),
        assignee_ids: vec![bob.id.to_string()],
        labels: vec!["ui".into(), "UI".into(), " backend ".into()],
        ..Default::default()
    };
    let done = stack.update(&owner, &task.id, patch, &["status", "assignee_ids", "labels"], None).await.unwrap();
    assert!(done.completed_at.is_some());
    assert_eq!(done.labels, ["ui", "backend"]);
    assert_eq!(done.version, 3);
    let patch = pb::TaskPatch { status: pb::TaskStatus::InReview.into(), ..Default::default() };
    let reopened = stack.update(&owner, &task.id, patch, &["status", "assignee_ids"], None).await.unwrap();
    assert!(reopened.completed_at.is_none());
    assert!(reopened.assignee_ids.is_empty());

    // Nothing changes: no new version and no event.
    let events_before = stack.outbox().await.len();
    let patch = pb::TaskPatch { title: "Changed".into(), ..Default::default() };
    let same = stack.update(&owner, &task.id, patch, &["title"], None).await.unwrap();
    assert_eq!(same.version, reopened.version);
    assert_eq!(stack.outbox().await.len(), events_before);

    // Bad masks and values name their fields.
    let status = stack.update(&owner, &task.id, pb::TaskPatch::default(), &["project_id"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["project_id"]);
    let status =
        stack.update(&owner, &task.id, pb::TaskPatch::default(), &["colour", "title"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["colour"]);
    let status = stack.update(&owner, &task.id, pb::TaskPatch::default(), &[], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["update_mask"]);
    let patch = pb::TaskPatch {
        title: " ".into(),
        estimate_minutes: Some(100_001),
        labels: vec!["x".repeat(51)],
        ..Default::default()
    };
    let status =
        stack.update(&owner, &task.id, patch, &["title", "estimate_minutes", "labels"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["title", "estimate_minutes", "labels"]);
    let patch = pb::TaskPatch { start_at: ts(2_000_000_000), due_at: ts(1_999_999_999), ..Default::default() };
    let status = stack.update(&owner, &task.id, patch, &["start_at", "due_at"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["due_at"]);
    let status = stack
        .tasks
        .create_task(as_user(
            &owner,
            pb::CreateTaskRequest { assignee_ids: vec![Uuid::now_v7().to_string()], ..new_task(&project, "x") },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["assignee_ids"]);
    let after = stack.get(&owner, &task.id).await.unwrap();
    assert_eq!(after.version, reopened.version);

    // The events of the changes, in order, for this task.
    let events: Vec<Envelope> = stack.outbox().await.into_iter().filter(|e| e.entity_id == task.id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "task.created",
            "task.updated",
            "task.status_changed",
            "task.updated",
            "task.assigned",
            "task.status_changed",
            "task.updated",
            "task.unassigned",
        ]
    );
    match events[2].payload.as_ref().unwrap() {
        Payload::TaskStatusChanged(changed) => {
            assert_eq!((changed.old_status.as_str(), changed.new_status.as_str()), ("todo", "done"));
            // Watchers, assignees and the reporter.
            assert_eq!(changed.recipient_ids, [bob.id.to_string(), owner.id.to_string()]);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match events[3].payload.as_ref().unwrap() {
        Payload::TaskUpdated(updated) => {
            assert_eq!(updated.changed_fields, ["status", "assignee_ids", "labels"]);
            assert_eq!(updated.task.as_ref().unwrap().version, 3);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match events[7].payload.as_ref().unwrap() {
        Payload::TaskUnassigned(unassigned) => {
            assert_eq!(unassigned.assignee_id, bob.id.to_string());
            assert_eq!(unassigned.reason, "");
        }
        other => panic!("unexpected payload {other:?}"),
    }

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_bulk_update_reports_every_task_on_its_own() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let carol = stack.user("carol@example.com").await;
    let project = stack.project(&owner, "BULK").await;
    let hidden = stack.project(&carol, "SECRET").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(stack.create(&owner, new_task(&project, &format!("Bulk {i}"))).await.id);
    }
    let secret = stack.create(&carol, new_task(&hidden, "Secret")).await.id;
    let mut all = ids.clone();
    all.push(secret.clone());
    all.push("not-an-id".into());

    let request = pb::BulkUpdateTasksRequest {
        ids: all.clone(),
        patch: Some(pb::TaskPatch {
            status: pb::TaskStatus::InProgress.into(),
            priority: pb::TaskPriority::High.into(),
            labels: vec!["sprint".into()],
            ..Default::default()
        }),
        update_mask: mask(&["status", "priority", "labels"]),
        client: client_info(),
    };
    let outcome = stack.tasks.bulk_update_tasks(as_user(&owner, request)).await.unwrap().into_inner();
    assert_eq!(outcome.updated.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), ids);
    for task in &outcome.updated {
        assert_eq!(
            (task.status, task.priority, task.version),
            (pb::TaskStatus::InProgress as i32, pb::TaskPriority::High as i32, 2)
        );
        assert_eq!(task.labels, ["sprint"]);
    }
    let failed: Vec<(String, i32)> = outcome.failed.iter().map(|f| (f.id.clone(), f.code)).collect();
    assert_eq!(failed, [(secret.clone(), Code::NotFound as i32), ("not-an-id".to_owned(), Code::NotFound as i32)]);
    assert_eq!(stack.get(&carol, &secret).await.unwrap().version, 1);

    // The mask allows only the bulk fields; 1 to 100 ids.
    let bad = |ids: Vec<String>, paths: &[&str]| pb::BulkUpdateTasksRequest {
        ids,
        patch: Some(pb::TaskPatch::default()),
        update_mask: mask(paths),
        client: None,
    };
    let status = stack.tasks.bulk_update_tasks(as_user(&owner, bad(ids.clone(), &["title"]))).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["title"]);
    let status = stack.tasks.bulk_update_tasks(as_user(&owner, bad(Vec::new(), &["status"]))).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ids"]);
    let many = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    let status = stack.tasks.bulk_update_tasks(as_user(&owner, bad(many, &["status"]))).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["ids"]);

    stack.stop().await;
    env.cleanup().await.unwrap();
}
