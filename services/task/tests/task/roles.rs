//! Who reads and writes what.

use super::*;

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
