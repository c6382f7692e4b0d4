//! Attachments of tasks: `/tasks/{id}/attachments` and `/attachments/{id}`. Files stream through the
//! gateway without being held in memory: an upload's `file` part goes to the task service's
//! `UploadAttachment` stream chunk by chunk as it arrives, and a download is the `DownloadAttachment`
//! stream written out as the response body. The 1 MiB JSON limit does not apply here; the attachment
//! limit (`--max-attachment-bytes`) does, checked on the declared `Content-Length` before a byte is
//! read and again on the bytes as they stream.

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use ordo_proto::task::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Client, Json, Query};
use crate::idempotency::{self, IDEMPOTENCY_KEY, IdempotencyKey, NoEffect, RequestSignature, Scope};
use crate::pagination;
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::routes::tasks::task_id;
use crate::routes::uploads;
use crate::state::AppState;

mod types;

use self::types::{Attachment, AttachmentPage, UploadForm};

/// The name of the form part that holds the file.
const FILE_PART: &str = "file";

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_attachment, list_attachments))
        .routes(routes!(get_attachment, delete_attachment))
        .routes(routes!(download_attachment))
}

/// Attaches a file to a task (`member`s and up).
///
/// Send `multipart/form-data` with one part named `file`; other parts are skipped, and parts after
/// `file` are not read. The bytes stream to object storage as they arrive. At most
/// `ORDO_MAX_ATTACHMENT_BYTES` (default 25 MiB): a declared `Content-Length` over the limit plus 64 KiB
/// of multipart envelope is refused with `413` before the body is read, and an upload that streams more
/// than the limit is cut off with `413` and leaves nothing behind. With an `Idempotency-Key`, a retry
/// with the same key, task and declared `Content-Length` gets the first `201` again without its body
/// being read (the file is not compared: it is known only once streamed); another length is `422`;
/// `409` while the first still streams. Only a `201` is kept: a failed upload stored nothing, so its
/// key is free for a retry. An upload that stands still for 30 seconds is abandoned (`400`) and stores
/// nothing.
#[utoipa::path(
    post,
    path = "/tasks/{id}/attachments",
    tag = "tasks",
    operation_id = "upload_attachment",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The task id."),
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters, scoped to the caller; a retry with the same key, task and `Content-Length` within 24 h replays the first `201`."),
    ),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The new attachment.", body = Attachment, headers(
            ("Location" = String, description = "`/api/v1/attachments/{id}`"),
        )),
        (status = 400, description = "The multipart body is malformed, ends early, or stands still for 30 seconds.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is a `viewer` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived, or the first upload with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is over the attachment limit.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `multipart/form-data` with a boundary.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "There is no `file` part, its file name breaks the rules (`errors` names the field), or the `Idempotency-Key` was used with another task or length.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn upload_attachment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let task_id = task_id(id)?;
    let key = headers.get(IDEMPOTENCY_KEY).map(IdempotencyKey::parse).transpose()?;
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or(ApiError::NotMultipart)?;
    let limit = state.max_attachment_bytes();
    let whole_limit = limit.saturating_add(uploads::MULTIPART_ENVELOPE_BYTES);
    // Refuse a declared oversize body before reading a byte of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > whole_limit) {
        return Err(ApiError::AttachmentTooLarge(limit));
    }
    // The file is known only once streamed, after the key must be claimed; so a retry is recognised by
    // its task and declared length (the multipart boundary differs between clients, so not the type).
    let declared_text = format!("multipart; content-length={}", declared.map_or_else(String::new, |n| n.to_string()));
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: declared_text.as_bytes() };
    idempotency::run(&state, key, Scope::User(caller.user_id), signature, {
        let (state, caller) = (state.clone(), caller.clone());
        async move {
            receive(&state, &caller, client, task_id, body, boundary, limit).await.unwrap_or_else(|error| {
                // Only a created attachment is an effect: every failure stored nothing (the service
                // abandons an upload without its end), so the key is freed for a retry that resends.
                let mut response = error.into_response();
                response.extensions_mut().insert(NoEffect);
                response
            })
        }
    })
    .await
}

/// Reads the multipart body up to its `file` part and streams that to the task service.
async fn receive(
    state: &AppState,
    caller: &Caller,
    client: Client,
    task_id: String,
    body: Body,
    boundary: String,
    limit: u64,
) -> Result<Response, ApiError> {
    let whole_limit = limit.saturating_add(uploads::MULTIPART_ENVELOPE_BYTES);
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole_limit).per_field(limit));
    let mut multipart = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let field = loop {
        match multipart.next_field().await.map_err(|error| multipart_error(error, limit))? {
            Some(field) if field.name() == Some(FILE_PART) => break field,
            // Skipped; the next call reads past it (within the size limit).
            Some(_) => {}
            None => {
                return Err(ApiError::invalid_field(FILE_PART, "is required: send the file as a part named `file`"));
            }
        }
    };
    let header = pb::AttachmentHeader {
        task_id,
        filename: field.file_name().map(str::to_owned).unwrap_or_default(),
        content_type: field.content_type().map(ToString::to_string).unwrap_or_default(),
        client: Some(client.for_task()),
    };
    let attachment = upload(state, caller, header, field, limit).await?;
    let location = location(format!("{API_PREFIX}/attachments/{}", attachment.id))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(attachment)).into_response())
}

/// Streams the header, then the file's chunks, to `UploadAttachment`. If the client's bytes go over
/// the limit or stop making sense, the call is dropped unfinished (cancelled), so the service stores
/// nothing; if the service answers first (say, `404`), its answer is the outcome and the rest of the
/// body is not read.
async fn upload(
    state: &AppState,
    caller: &Caller,
    header: pb::AttachmentHeader,
    mut field: multer::Field<'static>,
    limit: u64,
) -> Result<Attachment, ApiError> {
    use pb::upload_attachment_request::Part;

    let (mut sender, receiver) = futures::channel::mpsc::channel(uploads::QUEUE_CHUNKS);
    let mut client = state.task_transfers();
    let call = client.upload_attachment(backend::on_behalf_of(&caller.authorization, receiver));
    let pump = async move {
        let header = pb::UploadAttachmentRequest { part: Some(Part::Header(header)) };
        if !uploads::forward(&mut sender, header).await? {
            // The call ended already; its outcome says why.
            return Ok(());
        }
        let mut sent: u64 = 0;
        loop {
            let chunk = uploads::next(field.chunk(), |error| multipart_error(error, limit)).await?;
            let Some(chunk) = chunk else { break };
            sent = sent.saturating_add(chunk.len() as u64);
            if sent > limit {
                return Err(ApiError::AttachmentTooLarge(limit));
            }
            let message = pb::UploadAttachmentRequest { part: Some(Part::Chunk(chunk.to_vec())) };
            if !uploads::forward(&mut sender, message).await? {
                return Ok(());
            }
        }
        // `end` completes the upload; a stream that stops without it (this request cut off or
        // refused above, whatever the transport does then) is abandoned by the service.
        let end = pb::UploadAttachmentRequest {
            part: Some(Part::End(pb::UploadEnd { size_bytes: i64::try_from(sent).unwrap_or(i64::MAX) })),
        };
        uploads::forward(&mut sender, end).await?;
        Ok(())
    };
    tokio::pin!(call);
    tokio::pin!(pump);
    let response = tokio::select! {
        response = &mut call => response,
        pumped = &mut pump => {
            pumped?;
            call.await
        }
    };
    let response = response.map_err(|status| match status.code() {
        // The service's own limit (it may be lower than ours).
        tonic::Code::ResourceExhausted => ApiError::AttachmentTooLarge(limit),
        _ => status.into(),
    })?;
    Attachment::from_proto(response.into_inner().attachment)
}

/// A multipart body that cannot be read: over the limit (`413`), or malformed or cut short (`400`).
fn multipart_error(error: multer::Error, limit: u64) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::AttachmentTooLarge(limit)
        }
        other => ApiError::BadRequest(format!("The multipart body could not be read: {other}.")),
    }
}

/// A task's attachments, oldest first (viewers and up).
#[utoipa::path(
    get,
    path = "/tasks/{id}/attachments",
    tag = "tasks",
    operation_id = "list_attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The task id."), pagination::PageParams),
    responses(
        (status = 200, description = "A page of attachments, oldest first (by `created_at`, then id).", body = AttachmentPage),
        (status = 404, description = "No such task, or the caller may not see its project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list_attachments(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<pagination::PageParams>,
) -> Result<Json<AttachmentPage>, ApiError> {
    let task_id = task_id(id)?;
    let page = Some(pagination::page(params.limit.as_deref(), params.cursor.as_deref())?);
    let request = backend::on_behalf_of(&caller.authorization, pb::ListAttachmentsRequest { task_id, page });
    let page = state
        .task()
        .list_attachments(request)
        .await
        .map_err(|status| pagination::query_errors_are_bad_requests(status.into(), &["cursor", "limit"]))?
        .into_inner();
    let items = page
        .attachments
        .into_iter()
        .map(|attachment| Attachment::from_proto(Some(attachment)))
        .collect::<Result<_, _>>()?;
    Ok(Json(AttachmentPage { items, next_cursor: pagination::next_cursor(page.next_cursor) }))
}

/// One attachment's metadata (viewers and up); `Location` of a new attachment names this.
#[utoipa::path(
    get,
    path = "/attachments/{id}",
    tag = "tasks",
    operation_id = "get_attachment",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The attachment id.")),
    responses(
        (status = 200, description = "The attachment; its bytes are at `/attachments/{id}/content`.", body = Attachment),
        (status = 404, description = "No such attachment, or the caller may not see its task's project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn get_attachment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Attachment>, ApiError> {
    let id = attachment_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::GetAttachmentRequest { id });
    let attachment = Attachment::from_proto(state.task().get_attachment(request).await?.into_inner().attachment)?;
    Ok(Json(attachment))
}

/// One attachment's bytes (viewers and up), streamed.
///
/// Always served by the gateway (never a redirect), as `Content-Disposition: attachment` so a browser
/// saves rather than renders it, with `X-Content-Type-Options: nosniff`.
#[utoipa::path(
    get,
    path = "/attachments/{id}/content",
    tag = "tasks",
    operation_id = "download_attachment",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The attachment id.")),
    responses(
        (status = 200, description = "The bytes, with the `Content-Type` declared at upload.", content_type = "application/octet-stream", body = Vec<u8>, headers(
            ("Content-Length" = String, description = "`size_bytes` of the attachment."),
            ("Content-Disposition" = String, description = "`attachment; filename*=UTF-8''<percent-encoded file name>` (RFC 6266, RFC 8187)."),
        )),
        (status = 404, description = "No such attachment, or the caller may not see its task's project.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn download_attachment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    use pb::download_attachment_response::Part;

    let id = attachment_id(id)?;
    let request = backend::on_behalf_of(&caller.authorization, pb::DownloadAttachmentRequest { id });
    let mut client = state.task_transfers();
    // The call has no deadline of its own (the bytes may take long); its start must not hang.
    let started = tokio::time::timeout(state.backend_timeout(), async {
        let mut stream = client.download_attachment(request).await?.into_inner();
        let first = stream.message().await?;
        Ok::<_, tonic::Status>((stream, first))
    })
    .await
    .map_err(|_| ApiError::Unavailable("the task service did not start the download in time".to_owned()))?;
    let (stream, first) = started?;
    let attachment = match first.and_then(|message| message.part) {
        Some(Part::Attachment(attachment)) => Attachment::from_proto(Some(attachment))?,
        _ => return Err(ApiError::Internal(anyhow::anyhow!("a download that does not start with its metadata"))),
    };
    let chunks = stream.map(|message| match message {
        Ok(pb::DownloadAttachmentResponse { part: Some(Part::Chunk(chunk)) }) => Ok(Bytes::from(chunk)),
        Ok(_) => Err(std::io::Error::other("a download message that is not a chunk")),
        // The headers are sent: all that is left is to cut the body short, which the client notices
        // (fewer bytes than Content-Length).
        Err(status) => Err(std::io::Error::other(status)),
    });
    let content_type = HeaderValue::from_str(&attachment.content_type)
        .ok()
        .filter(|value| value.to_str().is_ok_and(|text| text.parse::<mime_check::MediaType>().is_ok()))
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, HeaderValue::from(attachment.size_bytes.max(0))),
        (header::CONTENT_DISPOSITION, content_disposition(&attachment.filename)),
        (HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, Body::from_stream(chunks)).into_response())
}

/// Deletes an attachment and its bytes (its uploader, or a project `admin` or `owner`).
#[utoipa::path(
    delete,
    path = "/attachments/{id}",
    tag = "tasks",
    operation_id = "delete_attachment",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The attachment id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is neither the uploader nor an `admin` or `owner` of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such attachment, or the caller may not see its task's project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is archived.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn delete_attachment(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    client: Client,
) -> Result<StatusCode, ApiError> {
    let id = attachment_id(id)?;
    let request = backend::on_behalf_of(
        &caller.authorization,
        pb::DeleteAttachmentRequest { id, client: Some(client.for_task()) },
    );
    state.task().delete_attachment(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{id}` of an attachment route; not a UUID means no such attachment.
fn attachment_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    crate::extract::uuid_path(id, || ApiError::NotFound("No attachment has this id.".to_owned()))
}

/// `attachment; filename*=UTF-8''<name>` with every byte outside RFC 8187's `attr-char` percent-encoded,
/// so any file name (quotes, semicolons, non-ASCII) is safe in the header.
fn content_disposition(filename: &str) -> HeaderValue {
    let mut value = String::from("attachment; filename*=UTF-8''");
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            value.push(char::from(byte));
        } else {
            value.push_str(&format!("%{byte:02X}"));
        }
    }
    // Only visible ASCII was written, so this never fails.
    HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A check that a declared content type is a plain `type/subtype[; parameters]` (a client could have
/// declared anything at upload), without a MIME crate.
mod mime_check {
    /// A syntactically valid media type.
    pub(super) struct MediaType;

    impl std::str::FromStr for MediaType {
        type Err = ();

        fn from_str(text: &str) -> Result<Self, ()> {
            let essence = text.split(';').next().unwrap_or_default().trim();
            let (kind, subtype) = essence.split_once('/').ok_or(())?;
            let token =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
            if token(kind) && token(subtype) { Ok(Self) } else { Err(()) }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_file_name_is_percent_encoded_in_content_disposition() {
        assert_eq!(content_disposition("report.pdf"), "attachment; filename*=UTF-8''report.pdf");
        assert_eq!(
            content_disposition("résumé \"final\";.txt"),
            "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B.txt"
        );
    }

    #[test]
    fn only_plain_media_types_are_served_as_declared() {
        assert!("text/plain; charset=utf-8".parse::<mime_check::MediaType>().is_ok());
        assert!("application/vnd.ms-excel".parse::<mime_check::MediaType>().is_ok());
        for bad in ["", "text", "text/", "/plain", "text/plain\r\nX: y", "a b/c"] {
            assert!(bad.parse::<mime_check::MediaType>().is_err(), "{bad:?}");
        }
    }
}
