//! Identity's use cases end with the services' one error vocabulary ([`ordo_error::Error`], mapped to
//! gRPC once by `ordo_service::status`); the errors only identity names are built here.

use std::borrow::Cow;

pub use ordo_error::{Error as AppError, Result};

/// The email is already registered.
pub(crate) fn email_taken() -> AppError {
    AppError::AlreadyExists(Cow::Borrowed("an account with this email already exists"))
}

/// No such user, or the caller may not see it.
pub(crate) fn no_such_user() -> AppError {
    AppError::NotFound(Cow::Borrowed("no such user"))
}

/// The expected version of the user named another one.
pub(crate) fn user_changed() -> AppError {
    AppError::VersionMismatch(Cow::Borrowed("the user was changed by someone else; reload and retry"))
}

/// Too many failed logins for this email; `retry_after_secs` until the window passes.
pub(crate) fn locked_out(retry_after_secs: u64) -> AppError {
    AppError::Exhausted {
        message: Cow::Borrowed("too many failed login attempts; try again later"),
        retry_after_secs: Some(retry_after_secs),
    }
}
