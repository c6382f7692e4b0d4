//! What the routes that stream a multipart body to a service share (attachment uploads, imports):
//! the client's chunks go to a client-streaming call through a short queue, so a slow service slows
//! the client down instead of filling memory, and a transfer that stands still is given up.

use std::time::Duration;

use futures::SinkExt as _;
use futures::channel::mpsc::Sender;

use crate::error::ApiError;

/// What a multipart body may carry beyond the file itself (boundaries, part headers, a short field or
/// two) before its declared length alone makes it too large: a file of exactly the limit must fit.
pub(crate) const MULTIPART_ENVELOPE_BYTES: u64 = 64 * 1024;

/// Messages queued between the client's body and the service: enough to keep both sides busy, few
/// enough that a slow service slows the client down, and that a service which refuses the call on its
/// first message has little of the body read.
pub(crate) const QUEUE_CHUNKS: usize = 4;

/// How long a transfer may stand still (the client sending nothing, or the service taking nothing)
/// before it is given up: it has no overall deadline, since a large file over a slow link takes long,
/// so a stall has to end it instead.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The next step of reading a multipart body, within [`IDLE_TIMEOUT`]; `unreadable` says what a body
/// that cannot be read is.
pub(crate) async fn next<T>(
    step: impl Future<Output = Result<T, multer::Error>>,
    unreadable: impl FnOnce(multer::Error) -> ApiError,
) -> Result<T, ApiError> {
    tokio::time::timeout(IDLE_TIMEOUT, step)
        .await
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "The upload stalled: no bytes arrived for {} seconds.",
                IDLE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(unreadable)
}

/// Queues one message of a transfer for the service: `false` when the call has ended already (its
/// outcome says why), an error when the service takes nothing for [`IDLE_TIMEOUT`].
pub(crate) async fn forward<T>(sender: &mut Sender<T>, message: T) -> Result<bool, ApiError> {
    match tokio::time::timeout(IDLE_TIMEOUT, sender.send(message)).await {
        Ok(sent) => Ok(sent.is_ok()),
        Err(_) => Err(ApiError::Unavailable("the task service stopped taking the upload".to_owned())),
    }
}
