//! The project service's use cases end with the services' one error vocabulary
//! ([`ordo_error::Error`], mapped to gRPC once by `ordo_service::status`); the errors only this
//! service names are built here.

use std::borrow::Cow;

pub use ordo_error::{Error as AppError, Result};

use crate::domain::Denied;

/// The key is taken by another project.
pub(crate) fn key_taken() -> AppError {
    AppError::AlreadyExists(Cow::Borrowed("another project has this key"))
}

/// The user is already a member.
pub(crate) fn already_member() -> AppError {
    AppError::AlreadyExists(Cow::Borrowed("the user is already a member of this project"))
}

/// The refusal of an access rule, for a project.
pub(crate) fn denied(denied: Denied) -> AppError {
    match denied {
        Denied::NotFound => AppError::NotFound(Cow::Borrowed("no such project")),
        Denied::Forbidden(why) => AppError::PermissionDenied(Cow::Borrowed(why)),
    }
}
