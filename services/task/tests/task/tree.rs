//! Subtasks: parents, depth, cycles and subtree deletes.

use super::*;

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
