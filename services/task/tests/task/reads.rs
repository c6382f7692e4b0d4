//! `GetTask` answered from the page cache: the answer stored by one read is served to the next (the
//! database is not asked again), only to callers who may read the project, and never after a change
//! to the project's tasks; a task deleted is not found, cached or not.

use super::*;

/// Changes task `id`'s title in the database behind the service's back: a read that still shows
/// the old title came from the cache.
async fn retitle_behind_its_back(stack: &Stack, id: &str, title: &str) {
    sqlx::query("UPDATE task SET title = ? WHERE id = ?")
        .bind(title)
        .bind(Uuid::parse_str(id).unwrap())
        .execute(&stack.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_read_task_is_served_from_the_cache_to_readers_only_until_its_project_changes() {
    // Arrange: a task of Ann's project read once (by Ann), then changed in the database alone.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let ann = stack.user("ann@example.com").await;
    let viewer = stack.user("viewer@example.com").await;
    let stranger = stack.user("stranger@example.com").await;
    let project = stack.project(&ann, "READ").await;
    stack.add(&ann, &project, &viewer, ppb::ProjectRole::Viewer).await;
    let task = stack.create(&ann, new_task(&project, "Cached")).await;
    let other = stack.create(&ann, new_task(&project, "Other")).await;
    stack.get(&ann, &task.id).await.unwrap();
    stack.get(&ann, &task.id).await.unwrap();
    retitle_behind_its_back(&stack, &task.id, "Behind its back").await;

    // Act and assert: the stored answer is served, the same for a viewer; a stranger gets nothing.
    assert_eq!(stack.get(&ann, &task.id).await.unwrap(), task);
    assert_eq!(stack.get(&viewer, &task.id).await.unwrap(), task);
    let hidden = stack.get(&stranger, &task.id).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // Act: another task of the project changes (through the service).
    let patch = pb::TaskPatch { title: "Other, renamed".into(), ..Default::default() };
    stack.update(&ann, &other.id, patch, &["title"], None).await.unwrap();

    // Assert: the project changed, so the task is read again, as the database holds it.
    assert_eq!(stack.get(&ann, &task.id).await.unwrap().title, "Behind its back");

    // Act: the task is deleted.
    let request = pb::DeleteTaskRequest { id: task.id.clone(), ..Default::default() };
    stack.tasks.delete_task(as_user(&ann, request)).await.unwrap();

    // Assert
    assert_eq!(stack.get(&ann, &task.id).await.unwrap_err().code(), Code::NotFound);
    stack.stop().await;
    env.cleanup().await.unwrap();
}
