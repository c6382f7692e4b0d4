//! Attachment bytes through the gateway, against a stand-in task service that implements only the
//! attachment streams (the real one stores attachments in its S3 phase). These pin down what the
//! gateway itself does: an upload reaches the service as a header and then the file in several chunks
//! as it arrives; past the limit the call is cancelled unfinished and the client gets `413`; the
//! service's own refusal ends the upload early; a download streams with its headers.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordo_proto::task::v1 as pb;
use ordo_proto::task::v1::task_service_server::{TaskService, TaskServiceServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

const NOT_HERE: &str = "not in the stand-in";
/// The task id the stand-in knows nothing about.
const UNKNOWN_TASK: &str = "0190b6a4-7c1e-7000-8000-00000000dead";
/// The task id whose uploads the stand-in refuses as over its own limit.
const FULL_TASK: &str = "0190b6a4-7c1e-7000-8000-00000000f011";
const TASK: &str = "0190b6a4-7c1e-7000-8000-0000000000c1";

/// What the stand-in saw of one upload.
#[derive(Debug, Clone)]
struct Upload {
    header: pb::AttachmentHeader,
    bytes: Vec<u8>,
    chunks: usize,
    completed: bool,
}

#[derive(Debug, Default)]
struct StandIn {
    uploads: Mutex<Vec<Upload>>,
    download: Vec<u8>,
}

fn attachment(header: &pb::AttachmentHeader, bytes: &[u8]) -> pb::Attachment {
    pb::Attachment {
        id: "0190b6a4-7c1e-7000-8000-0000000000f1".to_owned(),
        task_id: header.task_id.clone(),
        filename: header.filename.clone(),
        content_type: header.content_type.clone(),
        size_bytes: bytes.len() as i64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        uploaded_by: "0190b6a4-7c1e-7000-8000-000000000001".to_owned(),
        created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
    }
}

#[tonic::async_trait]
impl TaskService for StandIn {
    type DownloadAttachmentStream =
        Pin<Box<dyn futures::Stream<Item = Result<pb::DownloadAttachmentResponse, Status>> + Send>>;

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadAttachmentRequest>>,
    ) -> Result<Response<pb::UploadAttachmentResponse>, Status> {
        use pb::upload_attachment_request::Part;
        let mut stream = request.into_inner();
        let Some(pb::UploadAttachmentRequest { part: Some(Part::Header(header)) }) = stream.message().await? else {
            return Err(Status::invalid_argument("the header comes first"));
        };
        match header.task_id.as_str() {
            UNKNOWN_TASK => return Err(Status::not_found("no such task")),
            FULL_TASK => return Err(Status::resource_exhausted("over the limit")),
            _ => {}
        }
        let index = {
            let mut uploads = self.uploads.lock().unwrap();
            uploads.push(Upload { header: header.clone(), bytes: Vec::new(), chunks: 0, completed: false });
            uploads.len() - 1
        };
        loop {
            match stream.message().await {
                Ok(Some(pb::UploadAttachmentRequest { part: Some(Part::Chunk(chunk)) })) => {
                    let mut uploads = self.uploads.lock().unwrap();
                    uploads[index].bytes.extend_from_slice(&chunk);
                    uploads[index].chunks += 1;
                }
                Ok(Some(pb::UploadAttachmentRequest { part: Some(Part::End(end)) })) => {
                    let uploads = self.uploads.lock().unwrap();
                    if end.size_bytes != uploads[index].bytes.len() as i64 {
                        return Err(Status::invalid_argument("the end counts other bytes"));
                    }
                    break;
                }
                Ok(Some(_)) => return Err(Status::invalid_argument("one header only")),
                // A stream without `end` is abandoned: nothing is stored.
                Ok(None) => return Err(Status::cancelled("the upload ended without its end")),
                // The gateway cancelled the call: nothing is stored.
                Err(status) => return Err(status),
            }
        }
        let mut uploads = self.uploads.lock().unwrap();
        uploads[index].completed = true;
        Ok(Response::new(pb::UploadAttachmentResponse { attachment: Some(attachment(&header, &uploads[index].bytes)) }))
    }

    async fn download_attachment(
        &self,
        _: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        use pb::download_attachment_response::Part;
        let header = pb::AttachmentHeader {
            task_id: TASK.to_owned(),
            filename: "Quarterly report; \"final\" €.csv".to_owned(),
            content_type: "text/csv".to_owned(),
            client: None,
        };
        let mut messages = vec![Ok(pb::DownloadAttachmentResponse {
            part: Some(Part::Attachment(attachment(&header, &self.download))),
        })];
        for chunk in self.download.chunks(64 * 1024) {
            messages.push(Ok(pb::DownloadAttachmentResponse { part: Some(Part::Chunk(chunk.to_vec())) }));
        }
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn create_task(&self, _: Request<pb::CreateTaskRequest>) -> Result<Response<pb::CreateTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn get_task(&self, _: Request<pb::GetTaskRequest>) -> Result<Response<pb::GetTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn get_task_by_key(
        &self,
        _: Request<pb::GetTaskByKeyRequest>,
    ) -> Result<Response<pb::GetTaskByKeyResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn list_tasks(&self, _: Request<pb::ListTasksRequest>) -> Result<Response<pb::ListTasksResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn update_task(&self, _: Request<pb::UpdateTaskRequest>) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn move_task(&self, _: Request<pb::MoveTaskRequest>) -> Result<Response<pb::MoveTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn delete_task(&self, _: Request<pb::DeleteTaskRequest>) -> Result<Response<pb::DeleteTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn watch_task(&self, _: Request<pb::WatchTaskRequest>) -> Result<Response<pb::WatchTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn unwatch_task(
        &self,
        _: Request<pb::UnwatchTaskRequest>,
    ) -> Result<Response<pb::UnwatchTaskResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn bulk_update_tasks(
        &self,
        _: Request<pb::BulkUpdateTasksRequest>,
    ) -> Result<Response<pb::BulkUpdateTasksResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn add_comment(&self, _: Request<pb::AddCommentRequest>) -> Result<Response<pb::AddCommentResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn list_comments(
        &self,
        _: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn update_comment(
        &self,
        _: Request<pb::UpdateCommentRequest>,
    ) -> Result<Response<pb::UpdateCommentResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn delete_comment(
        &self,
        _: Request<pb::DeleteCommentRequest>,
    ) -> Result<Response<pb::DeleteCommentResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn list_attachments(
        &self,
        _: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn get_attachment(
        &self,
        _: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::GetAttachmentResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }

    async fn delete_attachment(
        &self,
        _: Request<pb::DeleteAttachmentRequest>,
    ) -> Result<Response<pb::DeleteAttachmentResponse>, Status> {
        Err(Status::unimplemented(NOT_HERE))
    }
}

/// The whole stack with the gateway's task URL pointing at a stand-in; returns the app, the stand-in,
/// a signed-in user and what stops the stand-in.
async fn spawn_with_stand_in(max_attachment_bytes: u64) -> (TestApp, Arc<StandIn>, String, CancellationToken) {
    let download: Vec<u8> = (0..200_000_u32).map(|i| (i % 253) as u8).collect();
    let stand_in = Arc::new(StandIn { uploads: Mutex::default(), download });
    let listener = ordo_testkit::free_listener().await.unwrap();
    let address = listener.local_addr().unwrap();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<TaskServiceServer<StandIn>>().await;
    let shutdown = CancellationToken::new();
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(TaskServiceServer::from_arc(stand_in.clone()))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.clone().cancelled_owned(),
        );
    tokio::spawn(server);
    let options = Options {
        task_url: Some(format!("http://{address}")),
        gateway_args: vec![format!("--max-attachment-bytes={max_attachment_bytes}")],
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let (_, tokens) = app.user("alice@example.com", "alice").await;
    (app, stand_in, tokens.access, shutdown)
}

/// A `multipart/form-data` body: a short `note` part, then `file` with `bytes`.
fn form(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\nContent-Type: application/x-test\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &TestApp, token: &str, task: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .request(Method::POST, app.url(&format!("/api/v1/tasks/{task}/attachments")))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .header("User-Agent", "upload-test/1")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_upload_reaches_the_task_service_as_its_header_then_the_file_in_chunks() {
    // Arrange
    let (app, stand_in, token, shutdown) = spawn_with_stand_in(26_214_400).await;
    let bytes: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 241) as u8).collect();
    let (content_type, body) = form(&bytes);

    // Act
    let response = upload(&app, &token, TASK, &content_type, body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/api/v1/attachments/0190b6a4-7c1e-7000-8000-0000000000f1");
    let attachment: Value = response.json().await.unwrap();
    assert_eq!(attachment["size_bytes"], bytes.len());
    assert_eq!(attachment["filename"], "data.bin");
    assert_eq!(attachment["content_type"], "application/x-test");
    assert_eq!(attachment["created_at"], "2024-05-01T12:00:00Z");
    let uploads = stand_in.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert!(upload.completed);
    assert_eq!(upload.bytes, bytes, "every byte, in order, and nothing of the other part");
    assert!(upload.chunks > 1, "streamed in chunks, not as one message: {}", upload.chunks);
    assert_eq!(upload.header.task_id, TASK);
    let client = upload.header.client.clone().unwrap();
    assert_eq!(client.user_agent, "upload-test/1");
    assert_eq!(client.ip, "127.0.0.1");
    shutdown.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn an_upload_that_streams_past_the_limit_is_413_and_its_call_is_cancelled_unfinished() {
    // Arrange: the declared length is within the limit plus the multipart allowance, the file is not.
    let (app, stand_in, token, shutdown) = spawn_with_stand_in(100_000).await;
    let (content_type, body) = form(&vec![7_u8; 130_000]);

    // Act
    let response = upload(&app, &token, TASK, &content_type, body).await;

    // Assert
    let problem = assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(problem["detail"].as_str().unwrap().contains("100000"), "{problem}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let uploads = stand_in.uploads.lock().unwrap().clone();
    assert!(uploads.iter().all(|upload| !upload.completed), "no upload completed: {uploads:?}");
    assert!(uploads.iter().all(|upload| upload.bytes.len() <= 100_000), "nothing past the limit was sent");
    shutdown.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn the_task_services_refusal_ends_an_upload_early_with_its_status() {
    // Arrange
    let (app, stand_in, token, shutdown) = spawn_with_stand_in(26_214_400).await;
    let (content_type, body) = form(&vec![1_u8; 2_000_000]);

    // Act
    let unknown = upload(&app, &token, UNKNOWN_TASK, &content_type, body.clone()).await;
    let full = upload(&app, &token, FULL_TASK, &content_type, body).await;
    let (no_file_type, no_file) = {
        let boundary = "b0undary";
        let body =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}--\r\n");
        (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
    };
    let without_file = upload(&app, &token, TASK, &no_file_type, no_file).await;

    // Assert
    assert_problem(unknown, StatusCode::NOT_FOUND).await;
    assert_problem(full, StatusCode::PAYLOAD_TOO_LARGE).await;
    let problem = assert_problem(without_file, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "file");
    assert!(stand_in.uploads.lock().unwrap().is_empty());
    shutdown.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn a_download_streams_the_bytes_with_their_type_length_and_an_encoded_file_name() {
    // Arrange
    let (app, stand_in, token, shutdown) = spawn_with_stand_in(26_214_400).await;

    // Act
    let response = app
        .client
        .get(app.url("/api/v1/attachments/0190b6a4-7c1e-7000-8000-0000000000f1/content"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv");
    assert_eq!(response.headers()["content-length"], stand_in.download.len().to_string().as_str());
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename*=UTF-8''Quarterly%20report%3B%20%22final%22%20%E2%82%AC.csv"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.unwrap().as_ref(), stand_in.download.as_slice());
    let not_found = app.client.get(app.url("/api/v1/attachments/nope/content")).bearer_auth(&token).send().await;
    assert_problem(not_found.unwrap(), StatusCode::NOT_FOUND).await;
    shutdown.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn an_upload_retried_with_its_idempotency_key_replays_the_first_201_and_stores_once() {
    // Arrange
    let (app, stand_in, token, shutdown) = spawn_with_stand_in(26_214_400).await;
    let (content_type, body) = form(b"the same file");
    let send = |body: Vec<u8>| {
        app.client
            .post(app.url(&format!("/api/v1/tasks/{TASK}/attachments")))
            .bearer_auth(&token)
            .header("Content-Type", &content_type)
            .header("Idempotency-Key", "upload-1")
            .body(body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();

    // Act
    let retry = send(body).await.unwrap();
    let (_, longer) = form(b"another, longer file");
    let other = send(longer).await.unwrap();

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], first_location);
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stand_in.uploads.lock().unwrap().len(), 1, "the retries streamed nothing to the service");
    shutdown.cancel();
    app.cleanup().await;
}
