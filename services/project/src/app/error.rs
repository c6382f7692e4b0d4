//! The errors a use case can end with; the gRPC layer maps each to one status code.

use crate::domain::{Denied, FieldViolation};

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input broke field rules. → `InvalidArgument` with field violations
    #[error("invalid input")]
    Validation(Vec<FieldViolation>),
    /// Malformed input that is not a field rule (a bad cursor). → `InvalidArgument`
    #[error("{0}")]
    BadRequest(String),
    /// The key is taken by another project. → `AlreadyExists`
    #[error("project key already in use")]
    KeyTaken,
    /// The user is already a member. → `AlreadyExists`
    #[error("already a member")]
    AlreadyMember,
    /// No such project or member, or the caller may not see it. → `NotFound`
    #[error("{0}")]
    NotFound(&'static str),
    /// The caller sees the project but its role does not allow the action. → `PermissionDenied`
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The state forbids the action (last owner, archived project). → `FailedPrecondition`
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

impl AppError {
    /// The refusal of an access rule, for a project.
    pub fn denied(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => AppError::NotFound("no such project"),
            Denied::Forbidden(why) => AppError::PermissionDenied(why),
        }
    }

    /// One field violation.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldViolation::new(field, message)])
    }
}

/// A use case's result.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
