//! What other contexts' events do to tasks and to cached access.

use super::*;

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

    // The project's list, now cached, must not outlive the unassignment.
    let listed = pb::ListTasksRequest { project_id: project.clone(), ..Default::default() };
    let assignees_listed =
        |tasks: Vec<pb::Task>| tasks.into_iter().find(|t| t.id == shared.id).unwrap().assignee_ids.len();
    assert_eq!(assignees_listed(stack.list_all(&owner, listed.clone(), 50).await), 2);

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
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while assignees_listed(stack.list_all(&owner, listed.clone(), 50).await) != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the cached list still shows the removed assignee");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    // Read where it was made, behind the service's back (a read through the service may be answered
    // from the page cache, which no change through the service has made stale since).
    let assignees: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM task_assignee WHERE task_id = ?")
        .bind(Uuid::parse_str(&elsewhere.id).unwrap())
        .fetch_all(&stack.db)
        .await
        .unwrap();
    assert_eq!(assignees, [bob.id]);
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
