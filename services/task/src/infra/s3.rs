//! Attachment bytes in S3 (or any S3-compatible store, such as MinIO or moto locally), through
//! `aws-sdk-s3`.
//!
//! Uploads stream: bytes arrive in chunks of any size, are hashed (SHA-256) and counted as they
//! pass, and leave in parts of [`PART_SIZE`] through a multipart upload, so at most one part is
//! held in memory per upload whatever the file's size. A file smaller than one part is sent with a
//! single `PutObject`. Going past the size limit, or any failure, aborts the multipart upload, so
//! no object (and no orphaned part) is left behind.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use ordo_platform::aws::{AwsSettings, sdk_config};
use sha2::{Digest as _, Sha256};

use crate::app::ports::{ByteStream, ObjectStore, PutError, StoredObject};
use crate::app::{self, AppError};

/// The size of every part of a multipart upload but the last (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where attachment objects live, and how to reach the store.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The endpoint, region and credentials.
    pub aws: AwsSettings,
    pub bucket: String,
    /// Path-style addressing (`endpoint/bucket/key`), which local stores need.
    pub force_path_style: bool,
}

/// Why an upload did not finish. In every case nothing is left in the store.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload stream failed")]
    Source(#[source] std::io::Error),
    #[error("object storage failed: {0}")]
    Storage(String),
}

/// Why a download, delete or presign failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such object")]
    NotFound,
    #[error("object storage failed: {0}")]
    Unavailable(String),
}

/// The attachment bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
}

impl S3ObjectStore {
    /// A client for `settings`; makes no request yet.
    pub async fn new(settings: &S3Settings, timeout: Duration) -> Self {
        // Per attempt of one request; an upload is many requests, each bounded.
        let shared = sdk_config(&settings.aws, timeout, timeout.max(Duration::from_secs(30))).await;
        let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.force_path_style).build();
        Self { client: Client::from_conf(config), bucket: settings.bucket.clone() }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists (local stores start empty; in AWS it is provisioned
    /// and this only checks it answers).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => {
                match self.client.create_bucket().bucket(&self.bucket).send().await {
                    Ok(_) => Ok(()),
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) =>
                    {
                        Ok(())
                    }
                    Err(error) => Err(StorageError::Unavailable(ordo_error::with_causes(&error))),
                }
            }
            Err(error) => Err(StorageError::Unavailable(ordo_error::with_causes(&error))),
        }
    }

    /// Streams `body` into the object `key`, refusing more than `limit` bytes.
    pub async fn put_stream<S>(
        &self,
        key: &str,
        content_type: &str,
        body: S,
        limit: u64,
    ) -> Result<StoredObject, UploadError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buffer = BytesMut::new();
        // Fill the first part: a small file never starts a multipart upload.
        while buffer.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(UploadError::Source)?;
                    size = counted(size, chunk.len(), limit)?;
                    hasher.update(&chunk);
                    buffer.extend_from_slice(&chunk);
                }
                None => {
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .content_type(content_type)
                        .body(Body::from(buffer.freeze()))
                        .send()
                        .await
                        .map_err(|error| UploadError::Storage(ordo_error::with_causes(&error)))?;
                    return Ok(StoredObject { size_bytes: size, sha256: hex::encode(hasher.finalize()) });
                }
            }
        }

        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|error| UploadError::Storage(ordo_error::with_causes(&error)))?;
        let Some(upload_id) = upload.upload_id().map(str::to_owned) else {
            return Err(UploadError::Storage("the store returned no upload id".to_owned()));
        };
        let outcome = self.upload_parts(key, &upload_id, body, buffer, &mut hasher, &mut size, limit).await;
        match outcome {
            Ok(parts) => {
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await;
                if let Err(error) = completed {
                    self.abort(key, &upload_id).await;
                    return Err(UploadError::Storage(ordo_error::with_causes(&error)));
                }
                Ok(StoredObject { size_bytes: size, sha256: hex::encode(hasher.finalize()) })
            }
            Err(error) => {
                self.abort(key, &upload_id).await;
                Err(error)
            }
        }
    }

    /// Sends `first` and the rest of `body` as parts of `upload_id`, in order.
    #[allow(clippy::too_many_arguments)]
    async fn upload_parts<S>(
        &self,
        key: &str,
        upload_id: &str,
        mut body: std::pin::Pin<&mut S>,
        first: BytesMut,
        hasher: &mut Sha256,
        size: &mut u64,
        limit: u64,
    ) -> Result<Vec<CompletedPart>, UploadError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send,
    {
        let mut parts = Vec::new();
        let mut buffer = first;
        let mut ended = false;
        loop {
            while !ended && buffer.len() < PART_SIZE {
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(UploadError::Source)?;
                        *size = counted(*size, chunk.len(), limit)?;
                        hasher.update(&chunk);
                        buffer.extend_from_slice(&chunk);
                    }
                    None => ended = true,
                }
            }
            if buffer.is_empty() {
                break;
            }
            // Every part but the last is exactly PART_SIZE; bytes beyond it wait for the next one.
            let part = buffer.split_to(buffer.len().min(PART_SIZE)).freeze();
            let number =
                i32::try_from(parts.len() + 1).map_err(|_| UploadError::Storage("too many parts".to_owned()))?;
            let sent = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(Body::from(part))
                .send()
                .await
                .map_err(|error| UploadError::Storage(ordo_error::with_causes(&error)))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag().map(str::to_owned)).build());
            if ended && buffer.is_empty() {
                break;
            }
        }
        Ok(parts)
    }

    /// Best effort: an abort that fails leaves parts that the bucket's lifecycle rule for
    /// incomplete multipart uploads removes.
    async fn abort(&self, key: &str, upload_id: &str) {
        if let Err(error) =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await
        {
            tracing::warn!(key, error = %ordo_error::with_causes(&error), "could not abort a multipart upload");
        }
    }

    /// The object's bytes, as they arrive from the store.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, StorageError>> + Send + use<>, StorageError> {
        let object = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|error| {
            if error.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                StorageError::NotFound
            } else {
                StorageError::Unavailable(ordo_error::with_causes(&error))
            }
        })?;
        let body = object.body;
        Ok(futures::stream::try_unfold(body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(error) => Err(StorageError::Unavailable(error.to_string())),
            }
        })
        .into_stream())
    }

    /// Deletes the object; deleting a missing object succeeds.
    pub async fn delete_object(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| StorageError::Unavailable(ordo_error::with_causes(&error)))
    }

    /// A URL that downloads the object for `ttl`, saving it as `filename`.
    pub async fn presign_get(&self, key: &str, filename: &str, ttl: Duration) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|error| StorageError::Unavailable(error.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(content_disposition(filename))
            .presigned(config)
            .await
            .map_err(|error| StorageError::Unavailable(ordo_error::with_causes(&error)))?;
        Ok(request.uri().to_owned())
    }
}

/// `size + more`, or [`UploadError::TooLarge`] past `limit`.
fn counted(size: u64, more: usize, limit: u64) -> Result<u64, UploadError> {
    let total = size.saturating_add(u64::try_from(more).unwrap_or(u64::MAX));
    if total > limit { Err(UploadError::TooLarge { limit }) } else { Ok(total) }
}

/// `attachment; filename*=UTF-8''<percent-encoded name>` (RFC 6266 / RFC 8187).
pub fn content_disposition(filename: &str) -> String {
    let mut encoded = String::with_capacity(filename.len());
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename*=UTF-8''{encoded}")
}

#[async_trait::async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, content_type: &str, body: ByteStream, limit: u64) -> Result<StoredObject, PutError> {
        self.put_stream(key, content_type, body, limit).await.map_err(|error| match error {
            UploadError::TooLarge { limit } => PutError::TooLarge { limit },
            UploadError::Source(error) => PutError::Body(error),
            UploadError::Storage(why) => PutError::Unavailable(why),
        })
    }

    async fn get(&self, key: &str) -> app::Result<Option<ByteStream>> {
        match self.get_stream(key).await {
            Ok(stream) => Ok(Some(stream.map_err(|error| std::io::Error::other(error.to_string())).boxed())),
            Err(StorageError::NotFound) => Ok(None),
            Err(StorageError::Unavailable(why)) => Err(AppError::Unavailable(why)),
        }
    }

    async fn delete(&self, key: &str) -> app::Result<()> {
        self.delete_object(key).await.map_err(|error| AppError::Unavailable(error.to_string()))
    }

    async fn presign(&self, key: &str, filename: &str, ttl: Duration) -> app::Result<String> {
        self.presign_get(key, filename, ttl).await.map_err(|error| AppError::Unavailable(error.to_string()))
    }
}

/// `/readyz`: the attachment bucket answers (created first if it is missing, so a store that was down
/// at start needs no restart).
#[derive(Debug, Clone)]
pub struct BucketCheck(pub S3ObjectStore);

impl ordo_platform::ops::ReadinessCheck for BucketCheck {
    fn name(&self) -> &str {
        "s3"
    }

    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.ensure_bucket().await.map_err(|error| error.to_string()) })
    }
}
