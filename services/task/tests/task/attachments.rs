//! Attachments: uploads, downloads, limits and object cleanup.

use super::*;

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
