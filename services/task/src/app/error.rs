//! The errors a use case can end with; the gRPC layer maps each to one status code.

use crate::domain::{Denied, FieldViolation};

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input broke field rules. → `InvalidArgument` with field violations
    #[error("invalid input")]
    Validation(Vec<FieldViolation>),
    /// No such task, comment or project, or the caller may not see it. → `NotFound`
    #[error("{0}")]
    NotFound(&'static str),
    /// The caller sees the project but its role does not allow the action. → `PermissionDenied`
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The state forbids the action (an archived project). → `FailedPrecondition`
    #[error("{0}")]
    Conflict(&'static str),
    /// `expected_version` named another version. → `Aborted`
    #[error("the resource was changed by someone else")]
    VersionMismatch,
    /// A concurrent transaction won a lock race (a deadlock) and retries ran out. → `Aborted`
    #[error("too much contention; retry")]
    Contention,
    /// An upload went past the size limit. → `ResourceExhausted`
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The client's stream broke off (an upload interrupted). → `Cancelled`
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The service has no such operation yet. → `Unimplemented`
    #[error("{0}")]
    Unimplemented(&'static str),
    /// A backend is down or saturated. → `Unavailable`
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected backend error; logged, answered generically. → `Internal`
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// The refusal of an access rule; `what` names the resource a hidden project hides.
    pub fn denied(denied: Denied, what: &'static str) -> Self {
        match denied {
            Denied::NotFound => AppError::NotFound(what),
            Denied::Forbidden(why) => AppError::PermissionDenied(why),
            Denied::Archived => AppError::Conflict("the project is archived; unarchive it to change its tasks"),
        }
    }

    /// One field violation.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldViolation::new(field, message)])
    }
}

/// A use case's result.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
