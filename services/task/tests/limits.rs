//! Every count and length limit of the task service's requests, refused on the request as it came:
//! just over each limit is `InvalidArgument` naming the field, and so is a request a great many
//! times over it, sent by a user of no project at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordo_proto::task::v1 as pb;
use ordo_testkit::TestEnv;
use uuid::Uuid;

mod support;

use support::*;

fn strings(n: usize, f: impl Fn(usize) -> String) -> Vec<String> {
    (0..n).map(f).collect()
}

#[tokio::test]
async fn every_repeated_field_just_over_its_limit_is_refused_on_that_field() {
    // Arrange
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@limits.test").await;
    let owner = stack.user("owner@limits.test").await;
    let project = stack.project(&owner, "LIM").await;
    let task = stack.create(&owner, new_task(&project, "Limited")).await;
    // Twenty distinct labels and one repeat: the count is of the list as sent.
    let mut labels = strings(20, |i| format!("l{i}"));
    labels.push("L0".into());
    let assignees = strings(21, |_| Uuid::now_v7().to_string());
    let paths: Vec<&str> = ["status"; 21].to_vec();

    // Act
    let create_labels = pb::CreateTaskRequest { labels: labels.clone(), ..new_task(&project, "T") };
    let create_labels = stack.tasks.create_task(as_user(&owner, create_labels)).await.unwrap_err();
    let create_assignees = pb::CreateTaskRequest { assignee_ids: assignees.clone(), ..new_task(&project, "T") };
    let create_assignees = stack.tasks.create_task(as_user(&owner, create_assignees)).await.unwrap_err();
    let patch = pb::TaskPatch { labels: labels.clone(), ..Default::default() };
    let update_labels = stack.update(&owner, &task.id, patch, &["labels"], None).await.unwrap_err();
    let update_mask = stack.update(&owner, &task.id, pb::TaskPatch::default(), &paths, None).await.unwrap_err();
    let long_path = "x".repeat(1000);
    let unknown_long =
        stack.update(&owner, &task.id, pb::TaskPatch::default(), &[long_path.as_str()], None).await.unwrap_err();
    let bulk = |ids: Vec<String>, patch: pb::TaskPatch, paths: &[&str]| pb::BulkUpdateTasksRequest {
        ids,
        patch: Some(patch),
        update_mask: mask(paths),
        client: None,
    };
    let bulk_ids = stack
        .tasks
        .bulk_update_tasks(as_user(&owner, bulk(vec![task.id.clone(); 101], pb::TaskPatch::default(), &["status"])))
        .await
        .unwrap_err();
    let bulk_mask = stack
        .tasks
        .bulk_update_tasks(as_user(&owner, bulk(vec![task.id.clone()], pb::TaskPatch::default(), &paths)))
        .await
        .unwrap_err();
    let bulk_assignees = pb::TaskPatch { assignee_ids: assignees.clone(), ..Default::default() };
    let bulk_assignees = stack
        .tasks
        .bulk_update_tasks(as_user(&owner, bulk(vec![task.id.clone()], bulk_assignees, &["assignee_ids"])))
        .await
        .unwrap_err();
    let list = |f: fn(&mut pb::ListTasksRequest)| {
        let mut request = pb::ListTasksRequest { project_id: project.clone(), ..Default::default() };
        f(&mut request);
        request
    };
    let statuses = list(|r| r.statuses = vec![pb::TaskStatus::Todo as i32; 7]);
    let statuses = stack.tasks.list_tasks(as_user(&owner, statuses)).await.unwrap_err();
    let priorities = list(|r| r.priorities = vec![pb::TaskPriority::High as i32; 6]);
    let priorities = stack.tasks.list_tasks(as_user(&owner, priorities)).await.unwrap_err();
    let label = list(|r| r.label = "é".repeat(51));
    let label = stack.tasks.list_tasks(as_user(&owner, label)).await.unwrap_err();
    let query = list(|r| r.query = "ü".repeat(201));
    let query = stack.tasks.list_tasks(as_user(&owner, query)).await.unwrap_err();
    let cursor = list(|r| r.page = Some(pb::PageRequest { cursor: "A".repeat(3000), ..Default::default() }));
    let cursor = stack.tasks.list_tasks(as_user(&owner, cursor)).await.unwrap_err();

    // Assert
    assert_eq!(bad_fields(&create_labels), ["labels"]);
    assert_eq!(bad_fields(&create_assignees), ["assignee_ids"]);
    assert_eq!(bad_fields(&update_labels), ["labels"]);
    assert_eq!(bad_fields(&update_mask), ["update_mask"]);
    assert_eq!(bad_fields(&unknown_long), ["update_mask"]);
    assert_eq!(bad_fields(&bulk_ids), ["ids"]);
    assert_eq!(bad_fields(&bulk_mask), ["update_mask"]);
    assert_eq!(bad_fields(&bulk_assignees), ["assignee_ids"]);
    assert_eq!(bad_fields(&statuses), ["statuses"]);
    assert_eq!(bad_fields(&priorities), ["priorities"]);
    assert_eq!(bad_fields(&label), ["label"]);
    assert_eq!(bad_fields(&query), ["query"]);
    assert_eq!(bad_fields(&cursor), ["cursor"]);
    // At the limits themselves, the same requests pass.
    let at_limit = pb::TaskPatch { labels: labels[..20].to_vec(), ..Default::default() };
    let updated = stack.update(&owner, &task.id, at_limit, &["labels"], None).await.unwrap();
    assert_eq!(updated.labels.len(), 20);
    let every_status = list(|r| {
        use pb::TaskStatus::*;
        r.statuses = [Backlog, Todo, InProgress, InReview, Done, Cancelled].map(|s| s as i32).to_vec();
    });
    assert_eq!(stack.tasks.list_tasks(as_user(&owner, every_status)).await.unwrap().into_inner().tasks.len(), 1);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_user_of_no_project_sending_150000_labels_or_ids_is_refused_on_the_count() {
    // Arrange
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@flood.test").await;
    let stranger = stack.user("stranger@flood.test").await;
    // Distinct labels (the costliest to de-duplicate) and short ids (so the request stays within
    // gRPC's default message size).
    let labels = strings(150_000, |i| format!("label-{i}"));
    let ids = strings(150_000, |i| format!("{i:x}"));
    let someone_elses_task = Uuid::now_v7().to_string();

    // Act
    let by_labels = pb::BulkUpdateTasksRequest {
        ids: vec![someone_elses_task.clone()],
        patch: Some(pb::TaskPatch { labels: labels.clone(), ..Default::default() }),
        update_mask: mask(&["labels"]),
        client: None,
    };
    let by_labels = stack.tasks.bulk_update_tasks(as_user(&stranger, by_labels)).await.unwrap_err();
    let by_ids = pb::BulkUpdateTasksRequest {
        ids,
        patch: Some(pb::TaskPatch { status: pb::TaskStatus::Done.into(), ..Default::default() }),
        update_mask: mask(&["status"]),
        client: None,
    };
    let by_ids = stack.tasks.bulk_update_tasks(as_user(&stranger, by_ids)).await.unwrap_err();
    let create = pb::CreateTaskRequest { labels, ..new_task(&Uuid::now_v7().to_string(), "T") };
    let create = stack.tasks.create_task(as_user(&stranger, create)).await.unwrap_err();

    // Assert
    assert_eq!(bad_fields(&by_labels), ["labels"]);
    assert_eq!(bad_fields(&by_ids), ["ids"]);
    assert_eq!(bad_fields(&create), ["labels"]);

    stack.stop().await;
    env.cleanup().await.unwrap();
}
