//! The tonic servers of `ordo.task.v1.TaskService`, and (in `report` and `job`) `ReportService` and
//! `JobService`: they
//! translate protobuf to use-case calls and use-case errors to `tonic::Status`, nothing more.

use ordo_proto::task::v1 as pb;
use ordo_proto::time::{offset_date_time, timestamp};
use ordo_service::status;
use pb::task_service_server::TaskService as TaskRpc;
use prost::Message as _;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

mod job;
mod list_route;
mod report;

pub use job::JobGrpc;
pub use list_route::ListTasksRoute;
pub use report::ReportGrpc;

use crate::app::ports::TaskSort;
use crate::app::{
    AppError, Caller, ClientInfo, EncodedPage, ListTasks, MAX_BULK, MAX_MASK_PATHS, NewAttachment, PageEncoder,
    TaskEncoder, TaskFields, TaskPage, TaskService,
};
use crate::domain::{
    Attachment, Comment, Description, Estimate, FieldViolation, MAX_ASSIGNEES, MAX_LABELS, Priority,
    Status as TaskStatus, Task,
};

/// The gRPC face of [`TaskService`].
#[derive(Debug, Clone)]
pub struct TaskGrpc {
    service: TaskService,
}

impl TaskGrpc {
    /// Serves `service`.
    pub fn new(service: TaskService) -> Self {
        Self { service }
    }

    /// A page of `ListTasks`: read now, or the page cache's bytes.
    async fn list_page(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<EncodedPage<pb::ListTasksResponse>, Status> {
        let caller = caller(&request)?;
        let mut t = Translation::default();
        let list = list_of(request.into_inner(), &mut t);
        t.finish()?;
        self.service.list_tasks_encoded(&caller, &list, &ListPage).await.map_err(status)
    }
}

/// The list a `ListTasksRequest` asks for; what does not translate is noted in `t`.
fn list_of(r: pb::ListTasksRequest, t: &mut Translation) -> ListTasks {
    // Each value may be named once, so no list is longer than the values there are.
    let statuses = if t.at_most(&r.statuses, TaskStatus::ALL.len(), "statuses") {
        r.statuses.iter().filter_map(|s| t.take(status_of(*s, "statuses"))).collect()
    } else {
        Vec::new()
    };
    let priorities = if t.at_most(&r.priorities, Priority::ALL.len(), "priorities") {
        r.priorities.iter().filter_map(|p| t.take(priority_of(*p, "priorities"))).collect()
    } else {
        Vec::new()
    };
    let wanted = r.page.unwrap_or_default();
    ListTasks {
        project_id: r.project_id,
        statuses,
        priorities,
        assignee_id: r.assignee_id,
        label: r.label,
        query: r.query,
        due_before: t.take(time_of(r.due_before, "due_before")),
        due_after: t.take(time_of(r.due_after, "due_after")),
        parent_id: r.parent_id,
        sort: t.take(sort_of(r.sort)),
        limit: wanted.limit,
        cursor: wanted.cursor,
    }
}

/// A page of `ListTasks` as the RPC answers it; the page cache keeps the same message's bytes.
#[derive(Debug, Clone, Copy)]
struct ListPage;

impl PageEncoder for ListPage {
    type Response = pb::ListTasksResponse;

    fn respond(&self, page: TaskPage) -> pb::ListTasksResponse {
        pb::ListTasksResponse {
            tasks: page.tasks.into_iter().map(task).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }
    }

    fn encode(&self, response: &pb::ListTasksResponse) -> Vec<u8> {
        response.encode_to_vec()
    }
}

/// The answers of `GetTask`, as the page cache keeps them.
#[derive(Debug, Clone, Copy)]
struct TaskAnswers;

impl TaskEncoder for TaskAnswers {
    type Response = pb::GetTaskResponse;

    fn respond(&self, found: Task) -> pb::GetTaskResponse {
        pb::GetTaskResponse { task: Some(task(found)) }
    }

    fn encode(&self, response: &pb::GetTaskResponse) -> Vec<u8> {
        response.encode_to_vec()
    }
}

fn client(info: Option<pb::ClientInfo>) -> ClientInfo {
    info.map(|c| ClientInfo { ip: c.ip, user_agent: c.user_agent }).unwrap_or_default()
}

/// A time from a request, truncated to the microseconds the database keeps.
fn time_of(ts: Option<prost_types::Timestamp>, field: &'static str) -> Result<Option<OffsetDateTime>, FieldViolation> {
    let Some(ts) = ts else { return Ok(None) };
    offset_date_time(&ts)
        .and_then(|t| t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).ok())
        // DATETIME holds years 1000 to 9999.
        .filter(|t| (1000..=9999).contains(&t.year()))
        .map(Some)
        .ok_or_else(|| FieldViolation::new(field, "not a valid time"))
}

fn status_of(value: i32, field: &'static str) -> Result<Option<TaskStatus>, FieldViolation> {
    match pb::TaskStatus::try_from(value) {
        Ok(pb::TaskStatus::Unspecified) => Ok(None),
        Ok(pb::TaskStatus::Backlog) => Ok(Some(TaskStatus::Backlog)),
        Ok(pb::TaskStatus::Todo) => Ok(Some(TaskStatus::Todo)),
        Ok(pb::TaskStatus::InProgress) => Ok(Some(TaskStatus::InProgress)),
        Ok(pb::TaskStatus::InReview) => Ok(Some(TaskStatus::InReview)),
        Ok(pb::TaskStatus::Done) => Ok(Some(TaskStatus::Done)),
        Ok(pb::TaskStatus::Cancelled) => Ok(Some(TaskStatus::Cancelled)),
        Err(_) => Err(FieldViolation::new(field, "not a task status")),
    }
}

fn priority_of(value: i32, field: &'static str) -> Result<Option<Priority>, FieldViolation> {
    match pb::TaskPriority::try_from(value) {
        Ok(pb::TaskPriority::Unspecified) => Ok(None),
        Ok(pb::TaskPriority::None) => Ok(Some(Priority::None)),
        Ok(pb::TaskPriority::Low) => Ok(Some(Priority::Low)),
        Ok(pb::TaskPriority::Medium) => Ok(Some(Priority::Medium)),
        Ok(pb::TaskPriority::High) => Ok(Some(Priority::High)),
        Ok(pb::TaskPriority::Urgent) => Ok(Some(Priority::Urgent)),
        Err(_) => Err(FieldViolation::new(field, "not a task priority")),
    }
}

fn status_to_proto(status: TaskStatus) -> pb::TaskStatus {
    match status {
        TaskStatus::Backlog => pb::TaskStatus::Backlog,
        TaskStatus::Todo => pb::TaskStatus::Todo,
        TaskStatus::InProgress => pb::TaskStatus::InProgress,
        TaskStatus::InReview => pb::TaskStatus::InReview,
        TaskStatus::Done => pb::TaskStatus::Done,
        TaskStatus::Cancelled => pb::TaskStatus::Cancelled,
    }
}

fn priority_to_proto(priority: Priority) -> pb::TaskPriority {
    match priority {
        Priority::None => pb::TaskPriority::None,
        Priority::Low => pb::TaskPriority::Low,
        Priority::Medium => pb::TaskPriority::Medium,
        Priority::High => pb::TaskPriority::High,
        Priority::Urgent => pb::TaskPriority::Urgent,
    }
}

fn sort_of(value: i32) -> Result<Option<TaskSort>, FieldViolation> {
    Ok(match pb::TaskSort::try_from(value) {
        Ok(pb::TaskSort::Unspecified) => None,
        Ok(pb::TaskSort::CreatedAtAsc) => Some(TaskSort::CreatedAsc),
        Ok(pb::TaskSort::CreatedAtDesc) => Some(TaskSort::CreatedDesc),
        Ok(pb::TaskSort::UpdatedAtAsc) => Some(TaskSort::UpdatedAsc),
        Ok(pb::TaskSort::UpdatedAtDesc) => Some(TaskSort::UpdatedDesc),
        Ok(pb::TaskSort::DueAtAsc) => Some(TaskSort::DueAsc),
        Ok(pb::TaskSort::DueAtDesc) => Some(TaskSort::DueDesc),
        Ok(pb::TaskSort::PriorityAsc) => Some(TaskSort::PriorityAsc),
        Ok(pb::TaskSort::PriorityDesc) => Some(TaskSort::PriorityDesc),
        Ok(pb::TaskSort::PositionAsc) => Some(TaskSort::Position),
        Ok(pb::TaskSort::Relevance) => Some(TaskSort::Relevance),
        Err(_) => return Err(FieldViolation::new("sort", "not a sort")),
    })
}

/// Collects the violations of request translation; `Err` with all of them at the end.
#[derive(Default)]
struct Translation(Vec<FieldViolation>);

impl Translation {
    fn take<T: Default>(&mut self, result: Result<T, FieldViolation>) -> T {
        result.unwrap_or_else(|v| {
            self.0.push(v);
            T::default()
        })
    }

    fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() { Ok(()) } else { Err(status(AppError::Invalid(self.0))) }
    }

    /// Refuses a repeated field of more than `max` items as it came, before any item is read: what
    /// is done with the items later grows with their number, and a request may hold a great many.
    fn at_most<T>(&mut self, items: &[T], max: usize, field: &'static str) -> bool {
        let within = items.len() <= max;
        if !within {
            self.0.push(FieldViolation::new(field, format!("at most {max} values")));
        }
        within
    }
}

/// The fields of a create or a patch.
#[allow(clippy::too_many_arguments)]
fn fields(
    t: &mut Translation,
    title: String,
    description: Option<String>,
    status: i32,
    priority: i32,
    assignee_ids: Vec<String>,
    labels: Vec<String>,
    due_at: Option<prost_types::Timestamp>,
    start_at: Option<prost_types::Timestamp>,
    estimate_minutes: Option<i32>,
    parent_id: Option<String>,
) -> TaskFields {
    t.at_most(&assignee_ids, MAX_ASSIGNEES, "assignee_ids");
    t.at_most(&labels, MAX_LABELS, "labels");
    TaskFields {
        title,
        description,
        status: t.take(status_of(status, "status")),
        priority: t.take(priority_of(priority, "priority")),
        assignee_ids,
        labels,
        due_at: t.take(time_of(due_at, "due_at")),
        start_at: t.take(time_of(start_at, "start_at")),
        estimate_minutes,
        parent_id,
    }
}

fn patch_fields(t: &mut Translation, patch: Option<pb::TaskPatch>) -> TaskFields {
    let p = patch.unwrap_or_default();
    fields(
        t,
        p.title,
        p.description,
        p.status,
        p.priority,
        p.assignee_ids,
        p.labels,
        p.due_at,
        p.start_at,
        p.estimate_minutes,
        p.parent_id,
    )
}

fn task(task: Task) -> pb::Task {
    pb::Task {
        id: task.id.to_string(),
        project_id: task.project_id.to_string(),
        number: task.number,
        key: task.key(),
        title: task.title.as_str().to_owned(),
        description: task.description.as_ref().map(Description::as_str).map(str::to_owned),
        status: status_to_proto(task.status()).into(),
        priority: priority_to_proto(task.priority).into(),
        assignee_ids: task.assignees.as_slice().iter().map(ToString::to_string).collect(),
        labels: task.labels.as_slice().to_vec(),
        due_at: task.schedule.due_at().map(timestamp),
        start_at: task.schedule.start_at().map(timestamp),
        estimate_minutes: task.estimate.map(Estimate::minutes),
        parent_id: task.parent_id.map(|p| p.to_string()),
        reporter_id: task.reporter_id.to_string(),
        position: task.position.as_str().to_owned(),
        created_at: Some(timestamp(task.created_at)),
        updated_at: Some(timestamp(task.updated_at)),
        completed_at: task.completed_at().map(timestamp),
        version: task.version,
    }
}

fn comment(comment: Comment) -> pb::Comment {
    pb::Comment {
        id: comment.id.to_string(),
        task_id: comment.task_id.to_string(),
        author_id: comment.author_id.to_string(),
        body: comment.body.as_str().to_owned(),
        created_at: Some(timestamp(comment.created_at)),
        updated_at: Some(timestamp(comment.updated_at)),
        version: comment.version,
    }
}

/// The authenticated caller with its bearer credential as it came, to ask the project service on
/// the caller's behalf.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    let user_id = ordo_auth::caller(request)?.user_id;
    Ok(Caller { user_id, authorization: ordo_auth::authorization(request)? })
}

fn mask(mask: Option<prost_types::FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}

#[tonic::async_trait]
impl TaskRpc for TaskGrpc {
    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::CreateTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut t = Translation::default();
        let input = fields(
            &mut t,
            r.title,
            r.description,
            r.status,
            r.priority,
            r.assignee_ids,
            r.labels,
            r.due_at,
            r.start_at,
            r.estimate_minutes,
            r.parent_id,
        );
        t.finish()?;
        let created =
            self.service.create_task(&caller, &r.project_id, &input, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::CreateTaskResponse { task: Some(task(created)) }))
    }

    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Result<Response<pb::GetTaskResponse>, Status> {
        let caller = caller(&request)?;
        let answer = self.service.get_task_encoded(&caller, &request.get_ref().id, &TaskAnswers).await;
        match answer.map_err(status)? {
            EncodedPage::Fresh(response) => Ok(Response::new(response)),
            EncodedPage::Stored(bytes) => pb::GetTaskResponse::decode(bytes.as_slice())
                .map(Response::new)
                .map_err(|error| status(AppError::Internal(anyhow::anyhow!("a stored task does not decode: {error}")))),
        }
    }

    async fn get_task_by_key(
        &self,
        request: Request<pb::GetTaskByKeyRequest>,
    ) -> Result<Response<pb::GetTaskByKeyResponse>, Status> {
        let caller = caller(&request)?;
        let found = self.service.get_task_by_key(&caller, &request.get_ref().key).await.map_err(status)?;
        Ok(Response::new(pb::GetTaskByKeyResponse { task: Some(task(found)) }))
    }

    /// Served by [`list_route::ListTasksRoute`] in front of this server, which answers a page from
    /// the cache with its bytes; this answers the same wherever the server stands alone.
    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let response = match self.list_page(request).await? {
            EncodedPage::Fresh(response) => response,
            EncodedPage::Stored(bytes) => pb::ListTasksResponse::decode(bytes.as_slice()).map_err(|error| {
                status(AppError::Internal(anyhow::anyhow!("a stored page does not decode: {error}")))
            })?,
        };
        Ok(Response::new(response))
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut t = Translation::default();
        t.at_most(r.update_mask.as_ref().map_or(&[][..], |m| &m.paths), MAX_MASK_PATHS, "update_mask");
        let input = patch_fields(&mut t, r.patch);
        t.finish()?;
        let updated = self
            .service
            .update_task(&caller, &r.id, &input, &mask(r.update_mask), r.expected_version, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateTaskResponse { task: Some(task(updated)) }))
    }

    async fn move_task(&self, request: Request<pb::MoveTaskRequest>) -> Result<Response<pb::MoveTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let moved = self
            .service
            .move_task(
                &caller,
                &r.id,
                r.after_id.as_deref(),
                r.before_id.as_deref(),
                r.expected_version,
                &client(r.client),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::MoveTaskResponse { task: Some(task(moved)) }))
    }

    async fn delete_task(
        &self,
        request: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::DeleteTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.service.delete_task(&caller, &r.id, r.expected_version, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::DeleteTaskResponse {}))
    }

    async fn watch_task(
        &self,
        request: Request<pb::WatchTaskRequest>,
    ) -> Result<Response<pb::WatchTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.service.watch_task(&caller, &r.task_id, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::WatchTaskResponse {}))
    }

    async fn unwatch_task(
        &self,
        request: Request<pb::UnwatchTaskRequest>,
    ) -> Result<Response<pb::UnwatchTaskResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.service.unwatch_task(&caller, &r.task_id, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::UnwatchTaskResponse {}))
    }

    async fn bulk_update_tasks(
        &self,
        request: Request<pb::BulkUpdateTasksRequest>,
    ) -> Result<Response<pb::BulkUpdateTasksResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut t = Translation::default();
        t.at_most(&r.ids, MAX_BULK, "ids");
        t.at_most(r.update_mask.as_ref().map_or(&[][..], |m| &m.paths), MAX_MASK_PATHS, "update_mask");
        let input = patch_fields(&mut t, r.patch);
        t.finish()?;
        let outcome = self
            .service
            .bulk_update(&caller, &r.ids, &input, &mask(r.update_mask), &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::BulkUpdateTasksResponse {
            updated: outcome.updated.into_iter().map(task).collect(),
            failed: outcome
                .failed
                .into_iter()
                .map(|(id, error)| {
                    let status = status(error);
                    pb::BulkFailure { id, code: status.code() as i32, message: status.message().to_owned() }
                })
                .collect(),
        }))
    }

    async fn add_comment(
        &self,
        request: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::AddCommentResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let added = self.service.add_comment(&caller, &r.task_id, &r.body, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::AddCommentResponse { comment: Some(comment(added)) }))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let wanted = r.page.unwrap_or_default();
        let page =
            self.service.list_comments(&caller, &r.task_id, wanted.limit, &wanted.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: page.comments.into_iter().map(comment).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn update_comment(
        &self,
        request: Request<pb::UpdateCommentRequest>,
    ) -> Result<Response<pb::UpdateCommentResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let updated = self
            .service
            .update_comment(&caller, &r.id, &r.body, r.expected_version, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateCommentResponse { comment: Some(comment(updated)) }))
    }

    async fn delete_comment(
        &self,
        request: Request<pb::DeleteCommentRequest>,
    ) -> Result<Response<pb::DeleteCommentResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.service.delete_comment(&caller, &r.id, r.expected_version, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::DeleteCommentResponse {}))
    }

    async fn upload_attachment(
        &self,
        request: Request<tonic::Streaming<pb::UploadAttachmentRequest>>,
    ) -> Result<Response<pb::UploadAttachmentResponse>, Status> {
        let caller = caller(&request)?;
        let mut parts = request.into_inner();
        let header = match parts.message().await? {
            Some(pb::UploadAttachmentRequest { part: Some(pb::upload_attachment_request::Part::Header(header)) }) => {
                header
            }
            _ => return Err(Status::invalid_argument("the first message of an upload must be its header")),
        };
        // The rest are the bytes, then `end`: a second header, a broken stream, a stream that ends
        // without `end` or an `end` with another count all fail the upload, which stores nothing.
        let body = futures::stream::try_unfold((parts, 0_u64, false), |(mut parts, mut count, ended)| async move {
            use pb::upload_attachment_request::Part;
            if ended {
                return Ok(None);
            }
            loop {
                let message =
                    parts.message().await.map_err(|status| std::io::Error::other(status.message().to_owned()))?;
                match message.and_then(|m| m.part) {
                    Some(Part::Chunk(chunk)) if chunk.is_empty() => continue,
                    Some(Part::Chunk(chunk)) => {
                        count = count.saturating_add(chunk.len() as u64);
                        return Ok(Some((bytes::Bytes::from(chunk), (parts, count, false))));
                    }
                    Some(Part::End(end)) if u64::try_from(end.size_bytes).ok() == Some(count) => {
                        return Ok(Some((bytes::Bytes::new(), (parts, count, true))));
                    }
                    Some(Part::End(_)) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the end of the upload counts other bytes than arrived",
                        ));
                    }
                    Some(Part::Header(_)) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "an upload carries one header, then only chunks",
                        ));
                    }
                    None => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the upload ended without its end message",
                        ));
                    }
                }
            }
        });
        let new =
            NewAttachment { task_id: header.task_id, filename: header.filename, content_type: header.content_type };
        // On a task of its own: if the client goes away, this handler is dropped, but the upload runs
        // on until its body fails, so it aborts the multipart upload instead of leaving parts behind.
        let service = self.service.clone();
        let client = client(header.client);
        let upload =
            tokio::spawn(async move { service.upload_attachment(&caller, new, Box::pin(body), &client).await });
        let added = match upload.await {
            Ok(result) => result.map_err(status)?,
            Err(error) => {
                tracing::error!(%error, "an upload task failed");
                return Err(Status::internal("internal error"));
            }
        };
        Ok(Response::new(pb::UploadAttachmentResponse { attachment: Some(attachment(added)) }))
    }

    async fn list_attachments(
        &self,
        request: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let wanted = r.page.unwrap_or_default();
        let page =
            self.service.list_attachments(&caller, &r.task_id, wanted.limit, &wanted.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListAttachmentsResponse {
            attachments: page.attachments.into_iter().map(attachment).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::GetAttachmentResponse>, Status> {
        let caller = caller(&request)?;
        let (found, url) = self.service.attachment(&caller, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::GetAttachmentResponse {
            attachment: Some(attachment(found)),
            download_url: url.unwrap_or_default(),
        }))
    }

    type DownloadAttachmentStream = futures::stream::BoxStream<'static, Result<pb::DownloadAttachmentResponse, Status>>;

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        use futures::StreamExt as _;

        let caller = caller(&request)?;
        let (found, bytes) = self.service.download_attachment(&caller, &request.get_ref().id).await.map_err(status)?;
        let first = pb::DownloadAttachmentResponse {
            part: Some(pb::download_attachment_response::Part::Attachment(attachment(found))),
        };
        let chunks = bytes.map(|chunk| match chunk {
            Ok(chunk) => Ok(pb::DownloadAttachmentResponse {
                part: Some(pb::download_attachment_response::Part::Chunk(chunk.to_vec())),
            }),
            Err(error) => {
                tracing::warn!(%error, "an attachment download broke off");
                Err(Status::unavailable("object storage stopped answering; retry the download"))
            }
        });
        Ok(Response::new(futures::stream::once(async move { Ok(first) }).chain(chunks).boxed()))
    }

    async fn delete_attachment(
        &self,
        request: Request<pb::DeleteAttachmentRequest>,
    ) -> Result<Response<pb::DeleteAttachmentResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.service.delete_attachment(&caller, &r.id, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::DeleteAttachmentResponse {}))
    }
}

fn attachment(a: Attachment) -> pb::Attachment {
    pb::Attachment {
        id: a.id.to_string(),
        task_id: a.task_id.to_string(),
        filename: a.filename.as_str().to_owned(),
        content_type: a.content_type.as_str().to_owned(),
        size_bytes: i64::try_from(a.size_bytes).unwrap_or(i64::MAX),
        sha256: a.sha256,
        uploaded_by: a.uploaded_by.to_string(),
        created_at: Some(timestamp(a.created_at)),
    }
}
