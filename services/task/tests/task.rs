//! The task service over real gRPC, MariaDB, Redis and RabbitMQ, with a real identity service
//! issuing the tokens and a real project service answering `CheckAccess`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::collections::HashSet;

use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::project::v1 as ppb;
use ordo_proto::task::v1 as pb;
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use tonic::Code;
use uuid::Uuid;

mod support;

use support::*;

/// `GET path` on an ops listener: the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

fn ids(tasks: &[pb::Task]) -> Vec<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

fn seconds(t: &Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
    t.as_ref().map(|t| (t.seconds, t.nanos))
}

/// The order a sort promises, computed here from the tasks themselves.
fn expected_order(mut tasks: Vec<pb::Task>, sort: pb::TaskSort) -> Vec<String> {
    use pb::TaskSort as S;
    let id = |t: &pb::Task| Uuid::parse_str(&t.id).unwrap();
    tasks.sort_by(|a, b| {
        let by_id = id(a).cmp(&id(b));
        let (ordering, descending) = match sort {
            S::CreatedAtAsc => (seconds(&a.created_at).cmp(&seconds(&b.created_at)), false),
            S::CreatedAtDesc | S::Unspecified => (seconds(&a.created_at).cmp(&seconds(&b.created_at)), true),
            S::UpdatedAtAsc => (seconds(&a.updated_at).cmp(&seconds(&b.updated_at)), false),
            S::UpdatedAtDesc => (seconds(&a.updated_at).cmp(&seconds(&b.updated_at)), true),
            S::PriorityAsc => (a.priority.cmp(&b.priority), false),
            S::PriorityDesc => (a.priority.cmp(&b.priority), true),
            S::PositionAsc => (a.position.as_bytes().cmp(b.position.as_bytes()), false),
            S::DueAtAsc | S::DueAtDesc => {
                let descending = sort == S::DueAtDesc;
                // Without a due date: last in both directions.
                match (seconds(&a.due_at), seconds(&b.due_at)) {
                    (None, None) => return if descending { by_id.reverse() } else { by_id },
                    (None, Some(_)) => return Ordering::Greater,
                    (Some(_), None) => return Ordering::Less,
                    (Some(x), Some(y)) => (x.cmp(&y), descending),
                }
            }
        };
        let ordering = ordering.then(by_id);
        if descending { ordering.reverse() } else { ordering }
    });
    ids(&tasks)
}

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
async fn every_filter_and_every_sort_returns_the_right_tasks_in_order_across_pages() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "LIST").await;
    let other = stack.project(&owner, "OTHER").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;

    let statuses = [pb::TaskStatus::Todo, pb::TaskStatus::Done, pb::TaskStatus::InProgress, pb::TaskStatus::Backlog];
    let priorities = [
        pb::TaskPriority::None,
        pb::TaskPriority::Urgent,
        pb::TaskPriority::Low,
        pb::TaskPriority::High,
        pb::TaskPriority::Medium,
    ];
    let words = ["database migration", "login page", "search index", "payment gateway"];
    let mut parent = None;
    let mut all = Vec::new();
    for i in 0..14_i64 {
        let mut request = new_task(&project, &format!("Task {i} {}", words[i as usize % 4]));
        request.status = statuses[i as usize % 4].into();
        request.priority = priorities[i as usize % 5].into();
        // Some without a due date; some sharing one.
        request.due_at = match i % 4 {
            0 => None,
            1 => ts(1_900_000_000),
            _ => ts(1_900_000_000 + (i % 5) * 3600),
        };
        if i % 3 == 0 {
            request.assignee_ids = vec![bob.id.to_string()];
        }
        if i % 2 == 0 {
            request.labels = vec!["backend".into()];
        }
        if i == 5 {
            request.description = Some("Remember the quarterly invoices".into());
        }
        if i >= 10 {
            request.parent_id = parent.clone();
        }
        let task = stack.create(&owner, request).await;
        if i == 9 {
            parent = Some(task.id.clone());
        }
        all.push(task);
    }
    // Change a few, so updated_at differs from created_at order; move one, so position differs too.
    for i in [3_usize, 7, 1] {
        let patch = pb::TaskPatch { title: format!("Renamed {i}"), ..Default::default() };
        let updated = stack.update(&owner, &all[i].id, patch, &["title"], None).await.unwrap();
        all[i] = updated;
    }
    let moved = stack.move_task(&owner, &all[12].id, None, Some(&all[0].id)).await.unwrap();
    all[12] = moved;
    // Another project's task never shows up.
    stack.create(&owner, new_task(&other, "Task in another project database")).await;

    let sorts = [
        pb::TaskSort::Unspecified,
        pb::TaskSort::CreatedAtAsc,
        pb::TaskSort::CreatedAtDesc,
        pb::TaskSort::UpdatedAtAsc,
        pb::TaskSort::UpdatedAtDesc,
        pb::TaskSort::DueAtAsc,
        pb::TaskSort::DueAtDesc,
        pb::TaskSort::PriorityAsc,
        pb::TaskSort::PriorityDesc,
        pb::TaskSort::PositionAsc,
    ];
    type Filter = (&'static str, pb::ListTasksRequest, Box<dyn Fn(&pb::Task) -> bool>);
    let base = pb::ListTasksRequest { project_id: project.clone(), ..Default::default() };
    let bob_id = bob.id.to_string();
    let parent_id = parent.clone().unwrap();
    let filters: Vec<Filter> = vec![
        ("none", base.clone(), Box::new(|_| true)),
        (
            "statuses",
            pb::ListTasksRequest {
                statuses: vec![pb::TaskStatus::Done.into(), pb::TaskStatus::Backlog.into()],
                ..base.clone()
            },
            Box::new(|t| t.status == pb::TaskStatus::Done as i32 || t.status == pb::TaskStatus::Backlog as i32),
        ),
        (
            "priorities",
            pb::ListTasksRequest {
                priorities: vec![pb::TaskPriority::Urgent.into(), pb::TaskPriority::High.into()],
                ..base.clone()
            },
            Box::new(|t| t.priority >= pb::TaskPriority::High as i32),
        ),
        (
            "assignee",
            pb::ListTasksRequest { assignee_id: bob_id.clone(), ..base.clone() },
            Box::new(move |t| t.assignee_ids.contains(&bob_id)),
        ),
        (
            "label",
            pb::ListTasksRequest { label: "Backend".into(), ..base.clone() },
            Box::new(|t| t.labels.iter().any(|l| l == "backend")),
        ),
        (
            "query",
            pb::ListTasksRequest { query: "database".into(), ..base.clone() },
            Box::new(|t| t.title.contains("database")),
        ),
        (
            "query in description",
            pb::ListTasksRequest { query: "quarterly invoices".into(), ..base.clone() },
            Box::new(|t| t.description.as_deref().is_some_and(|d| d.contains("quarterly"))),
        ),
        (
            "due before",
            pb::ListTasksRequest { due_before: ts(1_900_000_000 + 2 * 3600), ..base.clone() },
            Box::new(|t| t.due_at.as_ref().is_some_and(|d| d.seconds < 1_900_000_000 + 2 * 3600)),
        ),
        (
            "due after",
            pb::ListTasksRequest { due_after: ts(1_900_000_000), ..base.clone() },
            Box::new(|t| t.due_at.as_ref().is_some_and(|d| d.seconds > 1_900_000_000)),
        ),
        (
            "parent",
            pb::ListTasksRequest { parent_id: Some(parent_id.clone()), ..base.clone() },
            Box::new(move |t| t.parent_id.as_deref() == Some(parent_id.as_str())),
        ),
        (
            "top level",
            pb::ListTasksRequest { parent_id: Some(String::new()), ..base.clone() },
            Box::new(|t| t.parent_id.is_none()),
        ),
        (
            "combined",
            pb::ListTasksRequest {
                label: "backend".into(),
                statuses: vec![pb::TaskStatus::Todo.into(), pb::TaskStatus::InProgress.into()],
                due_after: ts(1_800_000_000),
                ..base.clone()
            },
            Box::new(|t| {
                t.labels.contains(&"backend".to_owned())
                    && (t.status == pb::TaskStatus::Todo as i32 || t.status == pb::TaskStatus::InProgress as i32)
                    && t.due_at.is_some()
            }),
        ),
    ];
    for (name, request, keep) in &filters {
        let matching: Vec<pb::Task> = all.iter().filter(|t| keep(t)).cloned().collect();
        assert!(!matching.is_empty(), "filter {name} matches nothing; the test would prove little");
        if *name != "none" {
            assert!(matching.len() < all.len(), "filter {name} matches everything");
        }
        for sort in sorts {
            let listed = stack.list_all(&owner, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 3).await;
            assert_eq!(ids(&listed), expected_order(matching.clone(), sort), "filter {name}, sort {sort:?}");
        }
    }

    // A cursor belongs to its list.
    let page = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 2, ..Default::default() }), ..base.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_cursor.is_empty());
    for request in [
        pb::ListTasksRequest {
            sort: pb::TaskSort::PriorityAsc.into(),
            page: Some(pb::PageRequest { limit: 2, cursor: page.next_cursor.clone() }),
            ..base.clone()
        },
        pb::ListTasksRequest {
            label: "backend".into(),
            page: Some(pb::PageRequest { limit: 2, cursor: page.next_cursor.clone() }),
            ..base.clone()
        },
        pb::ListTasksRequest {
            page: Some(pb::PageRequest { cursor: "not-a-cursor".into(), ..Default::default() }),
            ..base.clone()
        },
    ] {
        let status = stack.tasks.list_tasks(as_user(&owner, request)).await.unwrap_err();
        assert_eq!(bad_fields(&status), ["cursor"]);
    }
    let status = stack.tasks.list_tasks(as_user(&owner, pb::ListTasksRequest::default())).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["project_id"]);
    let status = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 101, ..Default::default() }), ..base.clone() },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["limit"]);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn an_assignee_list_spans_only_the_projects_the_caller_can_see() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let alice = stack.user("alice@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let carol = stack.user("carol@example.com").await;
    let first = stack.project(&alice, "ONE").await;
    let second = stack.project(&alice, "TWO").await;
    let hidden = stack.project(&carol, "HID").await;
    for project in [&first, &second] {
        stack.add(&alice, project, &bob, ppb::ProjectRole::Member).await;
    }
    stack.add(&carol, &hidden, &bob, ppb::ProjectRole::Member).await;

    let mut seen_by_alice = Vec::new();
    let mut everything = Vec::new();
    for i in 0..9 {
        let (project, by) = match i % 3 {
            0 => (&first, &alice),
            1 => (&second, &alice),
            _ => (&hidden, &carol),
        };
        let mut request = new_task(project, &format!("Assigned {i}"));
        request.assignee_ids = vec![bob.id.to_string()];
        let task = stack.create(by, request).await;
        if i % 3 != 2 {
            seen_by_alice.push(task.clone());
        }
        everything.push(task);
    }
    // Not assigned to bob: never listed.
    stack.create(&alice, new_task(&first, "Someone else's")).await;

    let request = pb::ListTasksRequest { assignee_id: bob.id.to_string(), ..Default::default() };
    for sort in [pb::TaskSort::CreatedAtDesc, pb::TaskSort::CreatedAtAsc, pb::TaskSort::PositionAsc] {
        let listed = stack.list_all(&alice, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 2).await;
        assert_eq!(ids(&listed), expected_order(seen_by_alice.clone(), sort), "{sort:?}");
        let listed = stack.list_all(&bob, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 4).await;
        assert_eq!(ids(&listed), expected_order(everything.clone(), sort), "{sort:?}");
    }
    let mine = stack.list_all(&bob, pb::ListTasksRequest { assignee_id: "me".into(), ..Default::default() }, 50).await;
    assert_eq!(mine.len(), 9);

    // Many newer tasks alice cannot see: the scan is bounded, so a page may come back short (even
    // empty) with a cursor, and walking on still finds exactly what she sees.
    for i in 0..24 {
        let mut request = new_task(&hidden, &format!("Hidden {i}"));
        request.assignee_ids = vec![bob.id.to_string()];
        stack.create(&carol, request).await;
    }
    let first_page = stack
        .tasks
        .list_tasks(as_user(
            &alice,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 1, ..Default::default() }), ..request.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(first_page.tasks.is_empty());
    assert!(!first_page.next_cursor.is_empty());
    let listed = stack.list_all(&alice, request.clone(), 1).await;
    assert_eq!(ids(&listed), expected_order(seen_by_alice.clone(), pb::TaskSort::CreatedAtDesc));

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn moves_land_between_their_neighbours_and_concurrent_moves_keep_a_strict_order() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "MOVE").await;
    let other = stack.project(&owner, "ELSE").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        tasks.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let stranger_task = stack.create(&owner, new_task(&other, "Elsewhere")).await.id;
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };

    // After a neighbour, before one, both, to the start and to the end.
    let moved = stack.move_task(&owner, &tasks[5], Some(&tasks[1]), None).await.unwrap();
    assert_eq!(moved.version, 2);
    let expect = |order: &[usize]| order.iter().map(|i| tasks[*i].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[0, 1, 5, 2, 3, 4, 6, 7]));
    stack.move_task(&owner, &tasks[0], Some(&tasks[7]), None).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[1, 5, 2, 3, 4, 6, 7, 0]));
    stack.move_task(&owner, &tasks[4], None, Some(&tasks[1])).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[4, 1, 5, 2, 3, 6, 7, 0]));
    stack.move_task(&owner, &tasks[7], Some(&tasks[5]), Some(&tasks[2])).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[4, 1, 5, 7, 2, 3, 6, 0]));
    // Already there: nothing changes.
    let same = stack.move_task(&owner, &tasks[7], Some(&tasks[5]), None).await.unwrap();
    assert_eq!(same.version, 2);

    // Neighbours that cannot be.
    let status = stack.move_task(&owner, &tasks[3], Some(&tasks[3]), None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["after_id"]);
    let status = stack.move_task(&owner, &tasks[3], None, Some(&stranger_task)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["before_id"]);
    let status = stack.move_task(&owner, &tasks[3], Some(&tasks[2]), Some(&tasks[4])).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["before_id"]);
    let status = stack.move_task(&owner, &tasks[3], None, None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["after_id"]);

    // A burst of concurrent moves: every one lands, and the board stays a strict order.
    let moves = (0..24).map(|i| {
        let mut client = stack.tasks.clone();
        let id = tasks[i % 8].clone();
        let neighbour = tasks[(i * 5 + 3) % 8].clone();
        let (after, before) = if i % 2 == 0 { (Some(neighbour), None) } else { (None, Some(neighbour)) };
        let request = as_user(
            &owner,
            pb::MoveTaskRequest { id: id.clone(), after_id: after, before_id: before, ..Default::default() },
        );
        async move {
            if id == request.get_ref().after_id.clone().or(request.get_ref().before_id.clone()).unwrap() {
                Ok(())
            } else {
                client.move_task(request).await.map(|_| ())
            }
        }
    });
    for result in futures::future::join_all(moves).await {
        result.unwrap();
    }
    let board_now = stack.list_all(&owner, board.clone(), 100).await;
    assert_eq!(board_now.len(), 8);
    assert_eq!(board_now.iter().map(|t| t.id.clone()).collect::<HashSet<_>>().len(), 8);
    for pair in board_now.windows(2) {
        assert!(
            pair[0].position.as_bytes() < pair[1].position.as_bytes(),
            "{} < {}",
            pair[0].position,
            pair[1].position
        );
    }
    // A move after the last task of this consistent board lands at the very end.
    let last = board_now.last().unwrap().id.clone();
    let first = board_now[0].id.clone();
    let to_end = stack.move_task(&owner, &first, Some(&last), None).await.unwrap();
    let board_after = stack.list_all(&owner, board.clone(), 100).await;
    assert_eq!(board_after.last().unwrap().id, to_end.id);

    let moved_events = stack
        .outbox()
        .await
        .into_iter()
        .filter(|e| match &e.payload {
            Some(Payload::TaskUpdated(u)) => u.changed_fields == ["position"],
            _ => false,
        })
        .count();
    assert!(moved_events >= 5, "{moved_events} position events");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

/// The longest key the task service stores (`LONG_POSITION_LEN`).
const LONG_POSITION: usize = 12;

/// Every key of the project's board as stored, in board order, checked strictly ascending and short.
async fn stored_board(db: &MySqlPool, project: &str) -> Vec<(String, String, i64)> {
    let project = Uuid::parse_str(project).unwrap();
    let rows: Vec<(Uuid, String, i64)> =
        sqlx::query_as("SELECT id, position, version FROM task WHERE project_id = ? ORDER BY position")
            .bind(project)
            .fetch_all(db)
            .await
            .unwrap();
    for pair in rows.windows(2) {
        assert!(pair[0].1.as_bytes() < pair[1].1.as_bytes(), "{} < {}", pair[0].1, pair[1].1);
    }
    for (_, position, _) in &rows {
        assert!(position.len() <= LONG_POSITION, "{position} is {} characters", position.len());
        assert!(position.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()), "{position}");
    }
    rows.into_iter().map(|(id, position, version)| (id.to_string(), position, version)).collect()
}

#[tokio::test]
async fn two_thousand_moves_into_one_gap_keep_every_key_short_and_the_order_exact() {
    // Arrange: a board of 40 cards.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "DENSE").await;
    let mut expected: Vec<String> = Vec::new();
    for i in 0..40 {
        expected.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let mut moves_of: std::collections::HashMap<String, i64> = std::collections::HashMap::new();

    // Act: 2,000 moves into the gap right after the first card (named by after_id, by before_id or
    // by both), the last card each time, with a create now and then.
    for i in 0..2000 {
        let head = expected[0].clone();
        let second = expected[1].clone();
        let moving = expected.last().unwrap().clone();
        let (after, before) = match i % 3 {
            0 => (Some(head.as_str()), None),
            1 => (None, Some(second.as_str())),
            _ => (Some(head.as_str()), Some(second.as_str())),
        };
        let moved = stack.move_task(&owner, &moving, after, before).await.unwrap_or_else(|e| panic!("move {i}: {e}"));
        assert!(moved.position.len() <= LONG_POSITION, "move {i}: {}", moved.position);
        expected.pop();
        expected.insert(1, moving.clone());
        *moves_of.entry(moving).or_default() += 1;
        if i % 250 == 249 {
            let created = stack.create(&owner, new_task(&project, &format!("Late card {i}"))).await;
            assert!(created.position.len() <= LONG_POSITION, "{}", created.position);
            expected.push(created.id);
        }
        if i % 100 == 99 {
            let stored = stored_board(&stack.db, &project).await;
            assert_eq!(stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), expected, "after move {i}");
        }
    }

    // Assert: the board is exactly what the moves imply, and every key short (2,000 inserts into
    // one gap would otherwise need keys of some 400 characters).
    assert_eq!(ids(&stack.list_all(&owner, board, 17).await), expected);
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.len(), 48);
    // Re-spacing is board upkeep: a task's version counts its own moves only, and only moves
    // raised events.
    for (id, _, version) in &stored {
        assert_eq!(*version, 1 + moves_of.get(id).copied().unwrap_or(0), "version of {id}");
    }
    let position_events = stack
        .outbox()
        .await
        .into_iter()
        .filter(|e| matches!(&e.payload, Some(Payload::TaskUpdated(u)) if u.changed_fields == ["position"]))
        .count();
    assert_eq!(position_events, 2000);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_create_after_a_crowded_end_of_the_board_respaces_it_and_lands_last() {
    // Arrange: five cards whose keys, written behind the service's back, leave no short key after
    // the last one and no room for short keys anywhere near the end: only the whole board will do.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "CROWD").await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let crowded = ["zzzzzzzzzzz1", "zzzzzzzzzzz2", "zzzzzzzzzzz3", "zzzzzzzzzzz4", "zzzzzzzzzzzz"];
    for (id, key) in expected.iter().zip(crowded).rev() {
        sqlx::query("UPDATE task SET position = ? WHERE id = ?")
            .bind(key)
            .bind(Uuid::parse_str(id).unwrap())
            .execute(&stack.db)
            .await
            .unwrap();
    }

    // Act
    let created = stack.create(&owner, new_task(&project, "Last card")).await;

    // Assert: last, with a short key, the others in their order with short keys and untouched
    // versions.
    expected.push(created.id.clone());
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), expected);
    assert!(stored.iter().all(|t| t.1.len() < crowded[0].len()), "{stored:?}");
    assert!(stored.iter().all(|t| t.2 == 1), "{stored:?}");
    assert_eq!(created.position, stored[5].1);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn concurrent_moves_into_one_gap_all_land_and_leave_a_strict_order() {
    // Arrange: 30 cards; the first stays first, the others are moved right after it.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "RACE").await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        tasks.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let head = tasks[0].clone();

    // Act: six clients at once, 60 moves each, every one into the gap after the first card.
    let clients = (0..6).map(|c| {
        let mut client = stack.tasks.clone();
        let (owner, head, tasks) = (owner.clone(), head.clone(), tasks.clone());
        async move {
            for i in 0..60 {
                let id = tasks[1 + (c * 7 + i * 5) % 29].clone();
                let request =
                    as_user(&owner, pb::MoveTaskRequest { id, after_id: Some(head.clone()), ..Default::default() });
                client.move_task(request).await.map_err(|e| format!("client {c}, move {i}: {e}"))?;
            }
            Ok::<_, String>(())
        }
    });
    let results = futures::future::join_all(clients).await;

    // Assert: every move landed; the board is a strict order of short keys over all 30 cards, the
    // same through the API as stored, with the first card still first.
    for result in results {
        result.unwrap();
    }
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.len(), 30);
    assert_eq!(stored[0].0, head);
    assert_eq!(stored.iter().map(|t| &t.0).collect::<HashSet<_>>().len(), 30);
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let listed = stack.list_all(&owner, board, 7).await;
    assert_eq!(ids(&listed), stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>());
    assert_eq!(
        listed.iter().map(|t| t.position.clone()).collect::<Vec<_>>(),
        stored.iter().map(|t| t.1.clone()).collect::<Vec<_>>()
    );
    // Some client's last move put its card right after the first one.
    let last_moves: HashSet<String> = (0..6).map(|c| tasks[1 + (c * 7 + 59 * 5) % 29].clone()).collect();
    assert!(last_moves.contains(&stored[1].0), "{} came second", stored[1].0);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn parents_stay_in_the_project_without_cycles_five_deep_and_deletes_take_the_subtree() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "TREE").await;
    let other = stack.project(&owner, "FAR").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;

    // A chain of five levels.
    let mut chain: Vec<pb::Task> = Vec::new();
    for level in 1..=5 {
        let mut request = new_task(&project, &format!("Level {level}"));
        request.parent_id = chain.last().map(|t| t.id.clone());
        chain.push(stack.create(&owner, request).await);
    }
    // A sixth level is refused.
    let mut request = new_task(&project, "Level 6");
    request.parent_id = Some(chain[4].id.clone());
    let status = stack.tasks.create_task(as_user(&owner, request)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_id"]);
    // A parent in another project is refused.
    let far = stack.create(&owner, new_task(&other, "Far away")).await;
    let mut request = new_task(&project, "Misplaced");
    request.parent_id = Some(far.id.clone());
    let status = stack.tasks.create_task(as_user(&owner, request)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_id"]);
    // A cycle is refused: the root under its own grandchild, or a task under itself.
    let patch = pb::TaskPatch { parent_id: Some(chain[2].id.clone()), ..Default::default() };
    let status = stack.update(&owner, &chain[0].id, patch, &["parent_id"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_id"]);
    let patch = pb::TaskPatch { parent_id: Some(chain[1].id.clone()), ..Default::default() };
    let status = stack.update(&owner, &chain[1].id, patch, &["parent_id"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_id"]);
    // Moving a subtree so its deepest task would sit at level 6 is refused too.
    let loose = stack.create(&owner, new_task(&project, "Loose")).await;
    // The refused creates took a number inside their transactions and gave it back.
    assert_eq!(loose.number, 6);
    let mut request = new_task(&project, "Loose child");
    request.parent_id = Some(loose.id.clone());
    let loose_child = stack.create(&owner, request).await;
    let patch = pb::TaskPatch { parent_id: Some(chain[3].id.clone()), ..Default::default() };
    let status = stack.update(&owner, &loose.id, patch, &["parent_id"], None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_id"]);
    // One level higher it fits; clearing the parent makes it a root again.
    let patch = pb::TaskPatch { parent_id: Some(chain[2].id.clone()), ..Default::default() };
    let hung = stack.update(&owner, &loose.id, patch, &["parent_id"], None).await.unwrap();
    assert_eq!(hung.parent_id.as_deref(), Some(chain[2].id.as_str()));

    // Deleting level 2 takes levels 3 to 5 and the moved subtree, with comments and watchers.
    stack
        .tasks
        .add_comment(as_user(
            &bob,
            pb::AddCommentRequest { task_id: chain[3].id.clone(), body: "Deep thought".into(), client: None },
        ))
        .await
        .unwrap();
    stack
        .tasks
        .watch_task(as_user(&bob, pb::WatchTaskRequest { task_id: chain[4].id.clone(), client: None }))
        .await
        .unwrap();
    let stale = stack
        .tasks
        .delete_task(as_user(
            &owner,
            pb::DeleteTaskRequest { id: chain[1].id.clone(), expected_version: Some(9), client: None },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    stack
        .tasks
        .delete_task(as_user(
            &owner,
            pb::DeleteTaskRequest { id: chain[1].id.clone(), expected_version: Some(1), client: client_info() },
        ))
        .await
        .unwrap();
    for gone in chain[1..].iter().map(|t| &t.id).chain([&loose.id, &loose_child.id]) {
        assert_eq!(stack.get(&owner, gone).await.unwrap_err().code(), Code::NotFound);
    }
    assert!(stack.get(&owner, &chain[0].id).await.is_ok());
    for table in ["comment", "task_watcher", "task_assignee", "task_label"] {
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&stack.db)
            .await
            .unwrap();
        assert_eq!(count, 0, "{table}");
    }
    let deleted: Vec<Envelope> = stack.outbox().await.into_iter().filter(|e| e.r#type == "task.deleted").collect();
    assert_eq!(deleted.len(), 1);
    match deleted[0].payload.as_ref().unwrap() {
        Payload::TaskDeleted(event) => {
            let mut subtasks = event.subtask_ids.clone();
            subtasks.sort();
            let mut expected: Vec<String> =
                chain[2..].iter().map(|t| t.id.clone()).chain([loose.id.clone(), loose_child.id.clone()]).collect();
            expected.sort();
            assert_eq!(subtasks, expected);
            assert_eq!(event.task.as_ref().unwrap().task_id, chain[1].id);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn roles_decide_who_reads_and_writes_and_strangers_see_nothing() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let viewer = stack.user("viewer@example.com").await;
    let stranger = stack.user("stranger@example.com").await;
    let project = stack.project(&owner, "AUTH").await;
    stack.add(&owner, &project, &viewer, ppb::ProjectRole::Viewer).await;
    let task = stack.create(&owner, new_task(&project, "Guarded")).await;
    let comment = stack
        .tasks
        .add_comment(as_user(
            &owner,
            pb::AddCommentRequest { task_id: task.id.clone(), body: "Mine".into(), client: None },
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();

    // A viewer reads and watches but does not write.
    assert!(stack.get(&viewer, &task.id).await.is_ok());
    stack
        .tasks
        .watch_task(as_user(&viewer, pb::WatchTaskRequest { task_id: task.id.clone(), client: None }))
        .await
        .unwrap();
    stack
        .tasks
        .watch_task(as_user(&viewer, pb::WatchTaskRequest { task_id: task.id.clone(), client: None }))
        .await
        .unwrap();
    let denied = [
        stack.tasks.create_task(as_user(&viewer, new_task(&project, "No"))).await.map(|_| ()),
        stack
            .update(&viewer, &task.id, pb::TaskPatch { title: "No".into(), ..Default::default() }, &["title"], None)
            .await
            .map(|_| ()),
        stack.move_task(&viewer, &task.id, None, Some(&task.id)).await.map(|_| ()),
        stack
            .tasks
            .delete_task(as_user(&viewer, pb::DeleteTaskRequest { id: task.id.clone(), ..Default::default() }))
            .await
            .map(|_| ()),
        stack
            .tasks
            .add_comment(as_user(
                &viewer,
                pb::AddCommentRequest { task_id: task.id.clone(), body: "No".into(), client: None },
            ))
            .await
            .map(|_| ()),
    ];
    for (i, result) in denied.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), Code::PermissionDenied, "viewer write {i}");
    }

    // A stranger learns nothing: the task, its key, its project's list and its comments do not exist.
    let hidden = [
        stack.get(&stranger, &task.id).await.map(|_| ()),
        stack
            .tasks
            .get_task_by_key(as_user(&stranger, pb::GetTaskByKeyRequest { key: task.key.clone() }))
            .await
            .map(|_| ()),
        stack
            .tasks
            .list_tasks(as_user(&stranger, pb::ListTasksRequest { project_id: project.clone(), ..Default::default() }))
            .await
            .map(|_| ()),
        stack
            .tasks
            .list_comments(as_user(
                &stranger,
                pb::ListCommentsRequest { task_id: task.id.clone(), ..Default::default() },
            ))
            .await
            .map(|_| ()),
        stack
            .tasks
            .update_comment(as_user(
                &stranger,
                pb::UpdateCommentRequest { id: comment.id.clone(), body: "x".into(), ..Default::default() },
            ))
            .await
            .map(|_| ()),
        stack
            .tasks
            .delete_comment(as_user(
                &stranger,
                pb::DeleteCommentRequest { id: comment.id.clone(), ..Default::default() },
            ))
            .await
            .map(|_| ()),
        stack.tasks.create_task(as_user(&stranger, new_task(&project, "Sneaky"))).await.map(|_| ()),
        stack.update(&stranger, &task.id, pb::TaskPatch::default(), &["title"], None).await.map(|_| ()),
        stack
            .tasks
            .watch_task(as_user(&stranger, pb::WatchTaskRequest { task_id: task.id.clone(), client: None }))
            .await
            .map(|_| ()),
    ];
    for (i, result) in hidden.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), Code::NotFound, "stranger call {i}");
    }
    // No token, no caller.
    let anonymous = stack.tasks.get_task(tonic::Request::new(pb::GetTaskRequest { id: task.id.clone() })).await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);

    // A global admin reads every project but writes none it is not a member of.
    assert!(stack.get(&root, &task.id).await.is_ok());
    let status = stack
        .update(&root, &task.id, pb::TaskPatch { title: "Admin".into(), ..Default::default() }, &["title"], None)
        .await;
    assert_eq!(status.unwrap_err().code(), Code::PermissionDenied);

    // An archived project: every write is refused, reads go on.
    stack
        .projects
        .archive_project(as_user(&owner, ppb::ArchiveProjectRequest { id: project.clone(), ..Default::default() }))
        .await
        .unwrap();
    // The cached answer goes when project.archived arrives. Probed with a create that is invalid
    // anyway, so nothing is written while the old answer lasts.
    let (tasks, owner_c, project_c) = (stack.tasks.clone(), owner.clone(), project.clone());
    eventually("the archival", || {
        let mut tasks = tasks.clone();
        let request = as_user(&owner_c, new_task(&project_c, ""));
        async move { tasks.create_task(request).await.err().map(|s| s.code()) == Some(Code::FailedPrecondition) }
    })
    .await;
    let refused = [
        stack.tasks.create_task(as_user(&owner, new_task(&project, "Late"))).await.map(|_| ()),
        stack
            .update(&owner, &task.id, pb::TaskPatch { title: "Late".into(), ..Default::default() }, &["title"], None)
            .await
            .map(|_| ()),
        stack
            .tasks
            .delete_task(as_user(&owner, pb::DeleteTaskRequest { id: task.id.clone(), ..Default::default() }))
            .await
            .map(|_| ()),
        stack
            .tasks
            .add_comment(as_user(
                &owner,
                pb::AddCommentRequest { task_id: task.id.clone(), body: "Late".into(), client: None },
            ))
            .await
            .map(|_| ()),
        stack
            .tasks
            .update_comment(as_user(
                &owner,
                pb::UpdateCommentRequest { id: comment.id.clone(), body: "Late".into(), ..Default::default() },
            ))
            .await
            .map(|_| ()),
        stack
            .tasks
            .delete_comment(as_user(&owner, pb::DeleteCommentRequest { id: comment.id.clone(), ..Default::default() }))
            .await
            .map(|_| ()),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        assert_eq!(result.unwrap_err().code(), Code::FailedPrecondition, "archived write {i}");
    }
    assert_eq!(stack.get(&owner, &task.id).await.unwrap().title, "Guarded");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn comments_are_listed_oldest_first_edited_by_their_author_and_deleted_by_it_or_an_admin() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let carol = stack.user("carol@example.com").await;
    let project = stack.project(&owner, "TALK").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    stack.add(&owner, &project, &carol, ppb::ProjectRole::Member).await;
    let task = stack.create(&owner, new_task(&project, "Discuss")).await;
    stack
        .tasks
        .watch_task(as_user(&carol, pb::WatchTaskRequest { task_id: task.id.clone(), client: None }))
        .await
        .unwrap();

    let mut comments = Vec::new();
    for i in 0..5 {
        let body = if i == 0 { "é".repeat(600) } else { format!("Comment {i}") };
        let request = pb::AddCommentRequest { task_id: task.id.clone(), body, client: client_info() };
        comments.push(stack.tasks.add_comment(as_user(&bob, request)).await.unwrap().into_inner().comment.unwrap());
    }
    let status = stack
        .tasks
        .add_comment(as_user(&bob, pb::AddCommentRequest { task_id: task.id.clone(), body: " ".into(), client: None }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["body"]);

    // Oldest first, across pages.
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let request = pb::ListCommentsRequest {
            task_id: task.id.clone(),
            page: Some(pb::PageRequest { limit: 2, cursor: cursor.clone() }),
        };
        let page = stack.tasks.list_comments(as_user(&carol, request)).await.unwrap().into_inner();
        listed.extend(page.comments.into_iter().map(|c| c.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(listed, comments.iter().map(|c| c.id.clone()).collect::<Vec<_>>());

    // Only the author edits; a stale version aborts.
    let edit = |by: &User, version: Option<i64>| {
        as_user(
            by,
            pb::UpdateCommentRequest {
                id: comments[1].id.clone(),
                body: "Edited".into(),
                expected_version: version,
                client: None,
            },
        )
    };
    assert_eq!(stack.tasks.update_comment(edit(&carol, None)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(stack.tasks.update_comment(edit(&owner, None)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(stack.tasks.update_comment(edit(&bob, Some(7))).await.unwrap_err().code(), Code::Aborted);
    let edited = stack.tasks.update_comment(edit(&bob, Some(1))).await.unwrap().into_inner().comment.unwrap();
    assert_eq!((edited.body.as_str(), edited.version), ("Edited", 2));

    // The author or a project admin deletes; another member does not.
    let delete = |by: &User, id: &str| {
        as_user(by, pb::DeleteCommentRequest { id: id.to_owned(), expected_version: None, client: None })
    };
    assert_eq!(
        stack.tasks.delete_comment(delete(&carol, &comments[2].id)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    stack.tasks.delete_comment(delete(&bob, &comments[2].id)).await.unwrap();
    stack.tasks.delete_comment(delete(&owner, &comments[3].id)).await.unwrap();
    assert_eq!(stack.tasks.delete_comment(delete(&owner, &comments[3].id)).await.unwrap_err().code(), Code::NotFound);
    let request = pb::ListCommentsRequest { task_id: task.id.clone(), ..Default::default() };
    let left: Vec<String> = stack
        .tasks
        .list_comments(as_user(&bob, request))
        .await
        .unwrap()
        .into_inner()
        .comments
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, [comments[0].id.clone(), comments[1].id.clone(), comments[4].id.clone()]);

    // task.comment_added, with a 500-character excerpt and the watchers among the recipients.
    let added: Vec<Envelope> = stack.outbox().await.into_iter().filter(|e| e.r#type == "task.comment_added").collect();
    assert_eq!(added.len(), 5);
    assert_eq!((added[0].entity_type.as_str(), added[0].entity_id.as_str()), ("comment", comments[0].id.as_str()));
    assert_eq!(added[0].project_id, project);
    match added[0].payload.as_ref().unwrap() {
        Payload::TaskCommentAdded(event) => {
            assert_eq!(event.excerpt.chars().count(), 500);
            assert_eq!(event.author_id, bob.id.to_string());
            assert_eq!(event.recipient_ids, [carol.id.to_string(), owner.id.to_string()]);
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

#[tokio::test]
async fn cached_access_follows_role_changes_and_removals_as_their_events_arrive() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "CACHE").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    let task = stack.create(&bob, new_task(&project, "Bob's")).await;
    // Bob's standing is cached now (the service was started with a ten-minute lifetime).
    assert!(stack.get(&bob, &task.id).await.is_ok());

    // Demoted to viewer: writes stop once project.member_role_changed arrives.
    let request = ppb::UpdateMemberRequest {
        project_id: project.clone(),
        user_id: bob.id.to_string(),
        role: ppb::ProjectRole::Viewer.into(),
        ..Default::default()
    };
    stack.projects.update_member(as_user(&owner, request)).await.unwrap();
    let (tasks, bob_c, project_c) = (stack.tasks.clone(), bob.clone(), project.clone());
    eventually("the demotion", || {
        let mut tasks = tasks.clone();
        let request = as_user(&bob_c, new_task(&project_c, ""));
        async move { tasks.create_task(request).await.err().map(|s| s.code()) == Some(Code::PermissionDenied) }
    })
    .await;
    assert!(stack.get(&bob, &task.id).await.is_ok(), "a viewer still reads");

    // Removed: the task disappears for him once project.member_removed arrives.
    let request = ppb::RemoveMemberRequest {
        project_id: project.clone(),
        user_id: bob.id.to_string(),
        expected_version: None,
        client: None,
    };
    stack.projects.remove_member(as_user(&owner, request)).await.unwrap();
    let (tasks, bob_c, task_id) = (stack.tasks.clone(), bob.clone(), task.id.clone());
    eventually("the removal", || {
        let mut tasks = tasks.clone();
        let request = as_user(&bob_c, pb::GetTaskRequest { id: task_id.clone() });
        async move { tasks.get_task(request).await.err().map(|s| s.code()) == Some(Code::NotFound) }
    })
    .await;
    assert!(stack.get(&owner, &task.id).await.is_ok());

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn project_events_unassign_removed_members_and_delete_a_project_s_tasks_once() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "GONE").await;
    let kept = stack.project(&owner, "KEPT").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    stack.add(&owner, &kept, &bob, ppb::ProjectRole::Member).await;
    let mut request = new_task(&project, "Shared");
    request.assignee_ids = vec![bob.id.to_string(), owner.id.to_string()];
    let shared = stack.create(&owner, request).await;
    let mut request = new_task(&kept, "Elsewhere");
    request.assignee_ids = vec![bob.id.to_string()];
    let elsewhere = stack.create(&owner, request).await;
    stack
        .tasks
        .watch_task(as_user(&bob, pb::WatchTaskRequest { task_id: shared.id.clone(), client: None }))
        .await
        .unwrap();
    let comment_request = pb::AddCommentRequest { task_id: shared.id.clone(), body: "Before".into(), client: None };
    stack.tasks.add_comment(as_user(&owner, comment_request)).await.unwrap();

    // Through the real project service: bob is removed from one project.
    let request = ppb::RemoveMemberRequest {
        project_id: project.clone(),
        user_id: bob.id.to_string(),
        expected_version: None,
        client: None,
    };
    stack.projects.remove_member(as_user(&owner, request)).await.unwrap();
    let mut tasks = stack.tasks.clone();
    let (owner_c, shared_id) = (owner.clone(), shared.id.clone());
    eventually("the unassignment", || {
        let mut tasks = tasks.clone();
        let request = as_user(&owner_c, pb::GetTaskRequest { id: shared_id.clone() });
        async move { tasks.get_task(request).await.unwrap().into_inner().task.unwrap().assignee_ids.len() == 1 }
    })
    .await;
    let after = stack.get(&owner, &shared.id).await.unwrap();
    assert_eq!(after.assignee_ids, [owner.id.to_string()]);
    assert_eq!(after.version, shared.version + 1);
    assert_eq!(stack.get(&owner, &elsewhere.id).await.unwrap().assignee_ids, [bob.id.to_string()]);
    let (watchers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM task_watcher").fetch_one(&stack.db).await.unwrap();
    assert_eq!(watchers, 0);
    let unassigned: Vec<Envelope> =
        stack.outbox().await.into_iter().filter(|e| e.r#type == "task.unassigned").collect();
    assert_eq!(unassigned.len(), 1);
    assert_eq!(unassigned[0].actor_id, owner.id.to_string());
    match unassigned[0].payload.as_ref().unwrap() {
        Payload::TaskUnassigned(event) => {
            assert_eq!(
                (event.assignee_id.as_str(), event.reason.as_str()),
                (bob.id.to_string().as_str(), "removed_from_project")
            );
            assert_eq!(event.task.as_ref().unwrap().assignee_ids, [owner.id.to_string()]);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // The same event again (a redelivery): applied once only. Bob is assigned again in between
    // (behind the service's back), so a second application would show.
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let removed = ordo_proto::events::v1::ProjectMemberRemoved {
        project_id: kept.clone(),
        user_id: bob.id.to_string(),
        role: "member".into(),
        left: false,
        project_key: "KEPT".into(),
        project_name: "Project KEPT".into(),
    };
    let envelope = ordo_events::EnvelopeBuilder::new("project", "project.member_removed")
        .actor(owner.id.to_string())
        .project(kept.clone())
        .payload(Payload::ProjectMemberRemoved(removed))
        .build();
    let publish = |envelope: Envelope| {
        let channel = channel.clone();
        let exchange = env.exchange();
        async move {
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    "project.member_removed".into(),
                    lapin::options::BasicPublishOptions::default(),
                    &envelope.encode_to_vec(),
                    lapin::BasicProperties::default().with_message_id(envelope.event_id.clone().into()),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    publish(envelope.clone()).await;
    let (owner_c, elsewhere_id) = (owner.clone(), elsewhere.id.clone());
    tasks = stack.tasks.clone();
    eventually("the first delivery", || {
        let mut tasks = tasks.clone();
        let request = as_user(&owner_c, pb::GetTaskRequest { id: elsewhere_id.clone() });
        async move { tasks.get_task(request).await.unwrap().into_inner().task.unwrap().assignee_ids.is_empty() }
    })
    .await;
    sqlx::query("INSERT INTO task_assignee (task_id, user_id, project_id, ordinal, created_at) VALUES (?, ?, ?, 0, UTC_TIMESTAMP(6))")
        .bind(Uuid::parse_str(&elsewhere.id).unwrap())
        .bind(bob.id)
        .bind(Uuid::parse_str(&kept).unwrap())
        .execute(&stack.db)
        .await
        .unwrap();
    // The task row carries its assignees too.
    sqlx::query("UPDATE task SET assignee_ids = ? WHERE id = ?")
        .bind(bob.id.as_bytes().as_slice())
        .bind(Uuid::parse_str(&elsewhere.id).unwrap())
        .execute(&stack.db)
        .await
        .unwrap();
    publish(envelope).await;
    // A later, different event proves the queue got past the duplicate.
    let marker = ordo_events::EnvelopeBuilder::new("project", "project.deleted")
        .payload(Payload::ProjectDeleted(ordo_proto::events::v1::ProjectDeleted {
            project_id: Uuid::now_v7().to_string(),
            ..Default::default()
        }))
        .build();
    let marker_id = Uuid::parse_str(&marker.event_id).unwrap();
    let channel_marker = channel.clone();
    channel_marker
        .basic_publish(
            env.exchange().into(),
            "project.deleted".into(),
            lapin::options::BasicPublishOptions::default(),
            &marker.encode_to_vec(),
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let db = stack.db.clone();
    eventually("the marker event", || {
        let db = db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM processed_event WHERE event_id = ?")
                .bind(marker_id)
                .fetch_one(&db)
                .await
                .unwrap();
            n == 1
        }
    })
    .await;
    assert_eq!(stack.get(&owner, &elsewhere.id).await.unwrap().assignee_ids, [bob.id.to_string()]);
    let unassigned = stack.outbox().await.into_iter().filter(|e| e.r#type == "task.unassigned").count();
    assert_eq!(unassigned, 2);

    // The project is deleted through the project service: its tasks, comments and counter go.
    let request = ppb::DeleteProjectRequest { id: project.clone(), expected_version: None, client: None };
    stack.projects.delete_project(as_user(&owner, request)).await.unwrap();
    let project_uuid = Uuid::parse_str(&project).unwrap();
    let db = stack.db.clone();
    eventually("the project's tasks to go", || {
        let db = db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM task WHERE project_id = ?")
                .bind(project_uuid)
                .fetch_one(&db)
                .await
                .unwrap();
            n == 0
        }
    })
    .await;
    for (table, column) in [("comment", "project_id"), ("task_counter", "project_id"), ("task_assignee", "project_id")]
    {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?")))
                .bind(project_uuid)
                .fetch_one(&stack.db)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    // The other project is untouched.
    assert!(stack.get(&owner, &elsewhere.id).await.is_ok());

    amqp.close(0, "done".into()).await.unwrap();
    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_disabled_account_can_neither_act_nor_be_assigned() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "DIS").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    let task = stack.create(&bob, new_task(&project, "Bob's")).await;

    let mut request = tonic::Request::new(idpb::UpdateUserRequest {
        id: bob.id.to_string(),
        disabled: Some(true),
        ..Default::default()
    });
    request.metadata_mut().insert("authorization", format!("Bearer {}", root.token).parse().unwrap());
    stack.identity.update_user(request).await.unwrap();

    // identity.user_disabled reaches the project service through the exchange; from then on bob
    // has no role: his still-valid token sees nothing, and he cannot be assigned.
    let tasks = stack.tasks.clone();
    let (bob_c, task_id) = (bob.clone(), task.id.clone());
    eventually("the disabling", || {
        let mut tasks = tasks.clone();
        let request = as_user(&bob_c, pb::GetTaskRequest { id: task_id.clone() });
        async move { tasks.get_task(request).await.err().map(|s| s.code()) == Some(Code::NotFound) }
    })
    .await;
    let mut request = new_task(&project, "For bob");
    request.assignee_ids = vec![bob.id.to_string()];
    let status = stack.tasks.create_task(as_user(&owner, request)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["assignee_ids"]);
    // The owner still sees bob's task.
    assert_eq!(stack.get(&owner, &task.id).await.unwrap().reporter_id, bob.id.to_string());

    stack.stop().await;
    env.cleanup().await.unwrap();
}

impl Stack {
    /// Downloads an attachment: its metadata and its bytes.
    async fn download(&mut self, by: &User, id: &str) -> Result<(pb::Attachment, Vec<u8>), tonic::Status> {
        use pb::download_attachment_response::Part;
        let mut stream = self
            .tasks
            .download_attachment(as_user(by, pb::DownloadAttachmentRequest { id: id.to_owned() }))
            .await?
            .into_inner();
        let Some(pb::DownloadAttachmentResponse { part: Some(Part::Attachment(attachment)) }) =
            stream.message().await?
        else {
            panic!("a download starts with the attachment");
        };
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(Part::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
                other => panic!("unexpected download part {other:?}"),
            }
        }
        Ok((attachment, bytes))
    }

    /// The scheduled object deletions left in the task service's schema.
    async fn pending_object_deletions(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM object_deletion").fetch_one(&self.db).await.unwrap()
    }
}

/// `len` bytes that differ from position to position (so a misplaced part would show).
fn sample(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn attachments_round_trip_their_bytes_refuse_oversized_uploads_and_leave_no_object_behind() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let owner = stack.user("owner@attach.test").await;
    let member = stack.user("member@attach.test").await;
    let viewer = stack.user("viewer@attach.test").await;
    let stranger = stack.user("stranger@attach.test").await;
    let project = stack.project(&owner, "FILES").await;
    stack.add(&owner, &project, &member, ppb::ProjectRole::Member).await;
    stack.add(&owner, &project, &viewer, ppb::ProjectRole::Viewer).await;
    let task = stack.create(&owner, new_task(&project, "Carries files")).await;

    // A small file (one PutObject) and one over a part (a multipart upload of two parts).
    let small = sample(100_000, 1);
    let large = sample(9 * 1024 * 1024 + 123, 2);
    let first = stack.upload(&member, &task.id, "  report.pdf ", &small).await.unwrap();
    assert_eq!(first.filename, "report.pdf");
    assert_eq!(first.content_type, "application/pdf");
    assert_eq!(first.size_bytes, small.len() as i64);
    assert_eq!(first.sha256, sha256_hex(&small));
    assert_eq!(first.uploaded_by, member.id.to_string());
    assert_eq!(first.task_id, task.id);
    let second = stack.upload(&owner, &task.id, "Übersicht (final).pdf", &large).await.unwrap();
    assert_eq!(second.size_bytes, large.len() as i64);
    assert_eq!(second.sha256, sha256_hex(&large));

    let (meta, bytes) = stack.download(&viewer, &first.id).await.unwrap();
    assert_eq!(meta, first);
    assert!(bytes == small, "the small file's bytes round-trip");
    let (_, bytes) = stack.download(&viewer, &second.id).await.unwrap();
    assert!(bytes == large, "the multipart file's bytes round-trip");
    assert_eq!(stack.objects().await.len(), 2);
    assert_eq!(stack.pending_object_deletions().await, 0, "recorded uploads keep no guard");

    // Metadata with a presigned URL; pages oldest first.
    let got = stack
        .tasks
        .get_attachment(as_user(&viewer, pb::GetAttachmentRequest { id: second.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.attachment.as_ref(), Some(&second));
    assert!(got.download_url.contains(&second.id), "{}", got.download_url);
    assert!(got.download_url.contains("X-Amz-Signature="), "{}", got.download_url);
    let page = stack
        .tasks
        .list_attachments(as_user(
            &viewer,
            pb::ListAttachmentsRequest {
                task_id: task.id.clone(),
                page: Some(pb::PageRequest { limit: 1, ..Default::default() }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.attachments, vec![first.clone()]);
    let rest = stack
        .tasks
        .list_attachments(as_user(
            &viewer,
            pb::ListAttachmentsRequest {
                task_id: task.id.clone(),
                page: Some(pb::PageRequest { limit: 1, cursor: page.next_cursor }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.attachments, vec![second.clone()]);
    assert!(rest.next_cursor.is_empty());

    // One event per upload, with what notification and audit need.
    let added: Vec<_> = stack
        .outbox()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::TaskAttachmentAdded(added)) => Some((e.entity_type, e.entity_id, e.ip, added)),
            _ => None,
        })
        .collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0].0, "attachment");
    assert_eq!(added[0].1, first.id);
    assert_eq!(added[0].2, "203.0.113.7");
    assert_eq!(added[0].3.sha256, first.sha256);
    assert_eq!(added[0].3.size_bytes, first.size_bytes);
    assert_eq!(added[0].3.task.as_ref().unwrap().task_id, task.id);

    // Over the limit: refused, and nothing is left behind (no object, no part, no guard).
    let oversized = sample(usize::try_from(MAX_ATTACHMENT).unwrap() + 1, 3);
    let status = stack.upload(&member, &task.id, "huge.bin", &oversized).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(stack.objects().await.len(), 2);
    assert_eq!(stack.pending_object_deletions().await, 0);
    let uploads = stack.s3.list_multipart_uploads().bucket(&stack.bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "the multipart upload was aborted");

    // A stream that stops without its end (a client gone mid-upload) is abandoned the same way, here
    // after a whole part is in storage.
    let cut_short: Vec<pb::UploadAttachmentRequest> = std::iter::once(pb::UploadAttachmentRequest {
        part: Some(pb::upload_attachment_request::Part::Header(pb::AttachmentHeader {
            task_id: task.id.clone(),
            filename: "cut.bin".into(),
            content_type: String::new(),
            client: client_info(),
        })),
    })
    .chain(sample(9 * 1024 * 1024, 4).chunks(64 * 1024).map(|chunk| pb::UploadAttachmentRequest {
        part: Some(pb::upload_attachment_request::Part::Chunk(chunk.to_vec())),
    }))
    .collect();
    let status = stack.tasks.upload_attachment(as_user(&member, futures::stream::iter(cut_short))).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert_eq!(stack.objects().await.len(), 2);
    assert_eq!(stack.pending_object_deletions().await, 0);
    let uploads = stack.s3.list_multipart_uploads().bucket(&stack.bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "the multipart upload was aborted");

    // Who may: viewers read but do not upload; strangers see nothing; bad names are refused.
    assert_eq!(stack.upload(&viewer, &task.id, "v.pdf", b"x").await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(stack.upload(&stranger, &task.id, "s.pdf", b"x").await.unwrap_err().code(), Code::NotFound);
    assert_eq!(stack.download(&stranger, &first.id).await.unwrap_err().code(), Code::NotFound);
    let listed = stack
        .tasks
        .list_attachments(as_user(
            &stranger,
            pb::ListAttachmentsRequest { task_id: task.id.clone(), ..Default::default() },
        ))
        .await;
    assert_eq!(listed.unwrap_err().code(), Code::NotFound);
    let status = stack.upload(&member, &task.id, "../etc/passwd", b"x").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["filename"]);
    let headless = stack
        .tasks
        .upload_attachment(as_user(
            &member,
            futures::stream::iter([pb::UploadAttachmentRequest {
                part: Some(pb::upload_attachment_request::Part::Chunk(b"bytes first".to_vec())),
            }]),
        ))
        .await;
    assert_eq!(headless.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(stack.objects().await.len(), 2);

    // Deleting: a member may not delete another's file; its uploader may, and the object goes at once.
    let delete = |by: &User, id: &str| as_user(by, pb::DeleteAttachmentRequest { id: id.to_owned(), client: None });
    let status = stack.tasks.delete_attachment(delete(&member, &second.id)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    stack.tasks.delete_attachment(delete(&member, &first.id)).await.unwrap();
    assert_eq!(stack.download(&owner, &first.id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(stack.objects().await.len(), 1);

    // Deleting the task takes its remaining attachment and, through the sweeper, its object.
    stack
        .tasks
        .delete_task(as_user(&owner, pb::DeleteTaskRequest { id: task.id.clone(), ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(stack.download(&owner, &second.id).await.unwrap_err().code(), Code::NotFound);
    let s3 = stack.s3.clone();
    let bucket = stack.bucket.clone();
    eventually("the deleted task's object is swept", || {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
            listed.contents().is_empty()
        }
    })
    .await;
    assert_eq!(stack.pending_object_deletions().await, 0);

    stack.stop().await;
    env.cleanup().await.unwrap();
}
