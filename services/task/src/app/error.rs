//! The task service's use cases end with the services' one error vocabulary
//! ([`ordo_error::Error`], mapped to gRPC once by `ordo_service::status`); the errors only this
//! service names are built here.

use std::borrow::Cow;

pub use ordo_error::{Error as AppError, Result};

use crate::domain::Denied;

/// The refusal of an access rule; `what` names the resource a hidden project hides.
pub(crate) fn denied(denied: Denied, what: &'static str) -> AppError {
    match denied {
        Denied::NotFound => AppError::NotFound(Cow::Borrowed(what)),
        Denied::Forbidden(why) => AppError::PermissionDenied(Cow::Borrowed(why)),
        Denied::Archived => {
            AppError::Conflict(Cow::Borrowed("the project is archived; unarchive it to change its tasks"))
        }
    }
}

/// An upload went past the size limit.
pub(crate) fn too_large(limit: u64) -> AppError {
    AppError::Exhausted { message: format!("the file is larger than {limit} bytes").into(), retry_after_secs: None }
}

/// The client's upload stream broke off.
pub(crate) fn interrupted(cause: impl std::fmt::Display) -> AppError {
    AppError::Cancelled(format!("the upload was interrupted: {cause}").into())
}
