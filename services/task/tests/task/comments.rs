//! Comments.

use super::*;

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
