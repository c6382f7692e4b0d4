//! The small rules every use case of the task service applies the same way: the time a change is
//! stamped with, how an id from a request is read, the optimistic version check, the retry of a
//! transaction that lost a deadlock, and the names a hidden or missing thing goes by. Use-case
//! modules import these from here, never from one another.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppError, Result};
use crate::domain::FieldViolation;

/// The name a hidden or missing task goes by.
pub(super) const NO_TASK: &str = "no such task";
/// The name a hidden or missing comment goes by.
pub(super) const NO_COMMENT: &str = "no such comment";
/// The name a hidden or missing project goes by.
pub(super) const NO_PROJECT: &str = "no such project";

/// Attempts of a transaction that lost a deadlock.
const ATTEMPTS: u32 = 5;

/// The time now, truncated to the microseconds MySQL keeps, so what is returned equals what is read
/// back later.
pub(super) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

/// An id from a request; one that is not a UUID names nothing.
pub(super) fn id_of(raw: &str, what: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound(what.into()))
}

/// Runs `attempt` again while it loses deadlocks, with a short jittered pause.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(AppError::Contention) if tries < ATTEMPTS => {
                let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 20);
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries) + jitter)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// The first field violation of a validation error (for checks that yield one).
pub(super) fn first_violation(error: AppError) -> FieldViolation {
    match error {
        AppError::Invalid(mut v) if !v.is_empty() => v.swap_remove(0),
        other => FieldViolation::new("request", other.to_string()),
    }
}

/// An answer the page cache may hold: a page of [`TaskService::list_tasks_encoded`], or one task of
/// [`TaskService::get_task_encoded`].
///
/// [`TaskService::list_tasks_encoded`]: super::TaskService::list_tasks_encoded
/// [`TaskService::get_task_encoded`]: super::TaskService::get_task_encoded
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedPage<R> {
    /// Read from the database for this call; its encoding went to the page cache, if one is used.
    Fresh(R),
    /// The bytes the page cache held, exactly as the encoder once wrote them.
    Stored(Vec<u8>),
}
