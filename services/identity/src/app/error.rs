//! The errors a use case can end with; the gRPC layer maps each to one status code.

use crate::domain::FieldViolation;

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input broke field rules. → `InvalidArgument` with field violations
    #[error("invalid input")]
    Validation(Vec<FieldViolation>),
    /// Malformed input that is not a field rule (a bad cursor). → `InvalidArgument`
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials or session. → `Unauthenticated`
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many failed logins for this email. → `ResourceExhausted` + `retry-after`
    #[error("too many failed login attempts")]
    LockedOut {
        /// Seconds until the window passes.
        retry_after_secs: u64,
    },
    /// The email is already registered. → `AlreadyExists`
    #[error("email already registered")]
    EmailTaken,
    /// No such user (or not visible). → `NotFound`
    #[error("not found")]
    NotFound,
    /// The caller's role does not allow it. → `PermissionDenied`
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The state forbids the action. → `FailedPrecondition`
    #[error("{0}")]
    Conflict(&'static str),
    /// `If-Match` named another version. → `Aborted`
    #[error("the resource was changed by someone else")]
    VersionMismatch,
    /// A backend is down or saturated. → `Unavailable`
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected backend error; logged, answered generically. → `Internal`
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A use case's result.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
