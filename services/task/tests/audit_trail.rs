//! Editing and deleting a comment, deleting an attachment, and watching or unwatching a task each
//! leave an event in the outbox, written with the change itself (so the audit log hears of every
//! one), and a refused or idle change leaves none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::project::v1 as ppb;
use ordo_proto::task::v1 as pb;
use ordo_testkit::TestEnv;
use tonic::Code;

mod support;

use support::*;

/// The outbox's events of `event_type`.
async fn events(stack: &Stack, event_type: &str) -> Vec<Envelope> {
    stack.outbox().await.into_iter().filter(|e| e.r#type == event_type).collect()
}

#[tokio::test]
async fn editing_and_deleting_comments_and_deleting_attachments_write_their_events_with_the_change() {
    // Arrange
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@trail.test").await;
    let owner = stack.user("owner@trail.test").await;
    let bob = stack.user("bob@trail.test").await;
    let carol = stack.user("carol@trail.test").await;
    let project = stack.project(&owner, "TRAIL").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;
    stack.add(&owner, &project, &carol, ppb::ProjectRole::Viewer).await;
    let task = stack.create(&owner, new_task(&project, "Discussed")).await;
    stack
        .tasks
        .watch_task(as_user(&carol, pb::WatchTaskRequest { task_id: task.id.clone(), client: None }))
        .await
        .unwrap();
    let add = pb::AddCommentRequest { task_id: task.id.clone(), body: "First take".into(), client: client_info() };
    let comment = stack.tasks.add_comment(as_user(&bob, add)).await.unwrap().into_inner().comment.unwrap();
    let attachment = stack.upload(&bob, &task.id, "notes.pdf", b"%PDF-1.7 notes").await.unwrap();
    let edit = |version: Option<i64>, body: String| pb::UpdateCommentRequest {
        id: comment.id.clone(),
        body,
        expected_version: version,
        client: client_info(),
    };

    // Act: a stale edit (refused), an edit by the author, then the owner deletes bob's comment
    // and bob's attachment.
    let stale = stack.tasks.update_comment(as_user(&bob, edit(Some(9), "Lost".into()))).await.unwrap_err();
    let after_stale = events(&stack, "task.comment_updated").await;
    let edited = stack.tasks.update_comment(as_user(&bob, edit(Some(1), "é".repeat(700)))).await.unwrap();
    let updated = events(&stack, "task.comment_updated").await;
    let delete = pb::DeleteCommentRequest { id: comment.id.clone(), expected_version: None, client: client_info() };
    stack.tasks.delete_comment(as_user(&owner, delete)).await.unwrap();
    let deleted = events(&stack, "task.comment_deleted").await;
    let delete = pb::DeleteAttachmentRequest { id: attachment.id.clone(), client: client_info() };
    stack.tasks.delete_attachment(as_user(&owner, delete)).await.unwrap();
    let removed = events(&stack, "task.attachment_deleted").await;

    // Assert: each write's event is in the outbox as soon as the call returns (the change and its
    // event commit together); the refused edit wrote nothing.
    assert_eq!(stale.code(), Code::Aborted);
    assert!(after_stale.is_empty(), "a refused edit writes no event");
    assert_eq!(edited.into_inner().comment.unwrap().version, 2);
    let recipients = [carol.id.to_string(), owner.id.to_string()];

    assert_eq!(updated.len(), 1);
    let event = &updated[0];
    assert_eq!((event.entity_type.as_str(), event.entity_id.as_str()), ("comment", comment.id.as_str()));
    assert_eq!((event.actor_id.as_str(), event.project_id.as_str()), (bob.id.to_string().as_str(), project.as_str()));
    assert_eq!(event.ip, "203.0.113.7");
    match event.payload.as_ref().unwrap() {
        Payload::TaskCommentUpdated(p) => {
            assert_eq!(p.task.as_ref().unwrap().task_id, task.id);
            assert_eq!((p.comment_id.as_str(), p.author_id.clone()), (comment.id.as_str(), bob.id.to_string()));
            assert_eq!(p.excerpt, "é".repeat(500));
            assert_eq!(p.comment_version, 2);
            assert_eq!(p.recipient_ids, recipients);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    assert_eq!(deleted.len(), 1);
    let event = &deleted[0];
    assert_eq!((event.entity_type.as_str(), event.entity_id.as_str()), ("comment", comment.id.as_str()));
    assert_eq!(event.actor_id, owner.id.to_string(), "the admin who deleted it, not its author");
    assert_eq!(event.project_id, project);
    match event.payload.as_ref().unwrap() {
        Payload::TaskCommentDeleted(p) => {
            assert_eq!(p.task.as_ref().unwrap().task_id, task.id);
            assert_eq!((p.comment_id.as_str(), p.author_id.clone()), (comment.id.as_str(), bob.id.to_string()));
            assert_eq!(p.recipient_ids, recipients);
        }
        other => panic!("unexpected payload {other:?}"),
    }

    assert_eq!(removed.len(), 1);
    let event = &removed[0];
    assert_eq!((event.entity_type.as_str(), event.entity_id.as_str()), ("attachment", attachment.id.as_str()));
    assert_eq!(event.actor_id, owner.id.to_string());
    assert_eq!(event.project_id, project);
    match event.payload.as_ref().unwrap() {
        Payload::TaskAttachmentDeleted(p) => {
            assert_eq!(p.task.as_ref().unwrap().task_id, task.id);
            assert_eq!(p.attachment_id, attachment.id);
            assert_eq!((p.filename.as_str(), p.sha256.as_str()), ("notes.pdf", attachment.sha256.as_str()));
            assert_eq!((p.uploaded_by.clone(), p.size_bytes), (bob.id.to_string(), attachment.size_bytes));
            assert_eq!(p.recipient_ids, recipients);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    // Watching: one event when it starts, none for watching again; likewise when it stops.
    let watch = || pb::WatchTaskRequest { task_id: task.id.clone(), client: client_info() };
    stack.tasks.watch_task(as_user(&carol, watch())).await.unwrap();
    let unwatch = || pb::UnwatchTaskRequest { task_id: task.id.clone(), client: client_info() };
    stack.tasks.unwatch_task(as_user(&carol, unwatch())).await.unwrap();
    stack.tasks.unwatch_task(as_user(&carol, unwatch())).await.unwrap();
    let watched = events(&stack, "task.watched").await;
    let unwatched = events(&stack, "task.unwatched").await;
    assert_eq!((watched.len(), unwatched.len()), (1, 1));
    for event in [&watched[0], &unwatched[0]] {
        assert_eq!((event.entity_type.as_str(), event.entity_id.as_str()), ("task", task.id.as_str()));
        assert_eq!((event.actor_id.clone(), event.project_id.as_str()), (carol.id.to_string(), project.as_str()));
    }
    match unwatched[0].payload.as_ref().unwrap() {
        Payload::TaskUnwatched(p) => assert_eq!(p.user_id, carol.id.to_string()),
        other => panic!("unexpected payload {other:?}"),
    }

    // The changes themselves happened.
    let listed = pb::ListCommentsRequest { task_id: task.id.clone(), ..Default::default() };
    assert!(stack.tasks.list_comments(as_user(&bob, listed)).await.unwrap().into_inner().comments.is_empty());
    let listed = pb::ListAttachmentsRequest { task_id: task.id.clone(), ..Default::default() };
    assert!(stack.tasks.list_attachments(as_user(&bob, listed)).await.unwrap().into_inner().attachments.is_empty());

    stack.stop().await;
    env.cleanup().await.unwrap();
}
