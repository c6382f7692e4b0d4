//! The one mapping from the services' error vocabulary ([`ordo_error::Error`]) to a gRPC status,
//! and from a database error to that vocabulary. Exhaustive, with no catch-all arm, so a new
//! variant cannot slip through unmapped.

use ordo_error::Error;
use tonic::Status;

/// The status a use case's error is answered with. Unavailable and internal causes are logged
/// here, inside the RPC's span, and answered with a generic message.
pub fn status(error: Error) -> Status {
    match error {
        Error::Invalid(violations) => {
            ordo_platform::grpc::invalid_fields(violations.iter().map(|v| (v.field.as_ref(), v.message.as_str())))
        }
        Error::BadRequest(message) => Status::invalid_argument(message),
        Error::Unauthenticated(message) => Status::unauthenticated(message),
        Error::NotFound(message) => Status::not_found(message),
        Error::AlreadyExists(message) => Status::already_exists(message),
        Error::PermissionDenied(message) => Status::permission_denied(message),
        Error::Conflict(message) => Status::failed_precondition(message),
        Error::VersionMismatch(message) => Status::aborted(message),
        Error::Contention => Status::aborted("too many concurrent changes; retry"),
        Error::Exhausted { message, retry_after_secs } => {
            let mut status = Status::resource_exhausted(message);
            if let Some(value) = retry_after_secs.and_then(|secs| secs.to_string().parse().ok()) {
                status.metadata_mut().insert("retry-after", value);
            }
            status
        }
        Error::Cancelled(message) => Status::cancelled(message),
        Error::Unimplemented(message) => Status::unimplemented(message),
        Error::Unavailable(cause) => {
            tracing::warn!(%cause, "backend unavailable");
            Status::unavailable("a backend is unavailable; retry shortly")
        }
        Error::Internal(cause) => {
            tracing::error!(error = ?cause, "internal error");
            Status::internal("internal error")
        }
    }
}

/// A database error in the vocabulary: a lost lock race (deadlock, lock wait timeout) is
/// [`Error::Contention`], an unreachable or saturated database [`Error::Unavailable`], anything
/// else a bug.
pub fn db_error(error: sqlx::Error) -> Error {
    if ordo_platform::db::is_contention(&error) {
        Error::Contention
    } else if ordo_platform::db::is_unavailable(&error) {
        Error::Unavailable(format!("database: {error}"))
    } else {
        Error::Internal(error.into())
    }
}

/// The result of a write whose one expected failure is a duplicate of a unique key, which `taken`
/// names (say "email already taken"); any other database error as [`db_error`] maps it.
///
/// # Errors
///
/// `taken()` for a duplicate key, else [`db_error`]'s answer.
pub fn unique_or<T>(result: Result<T, sqlx::Error>, taken: impl FnOnce() -> Error) -> Result<T, Error> {
    result.map_err(|error| if ordo_platform::db::is_unique_violation(&error) { taken() } else { db_error(error) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_has_its_code() {
        let cases = [
            (Error::field("title", "must not be blank"), tonic::Code::InvalidArgument),
            (Error::BadRequest("invalid cursor".into()), tonic::Code::InvalidArgument),
            (Error::Unauthenticated("no session".into()), tonic::Code::Unauthenticated),
            (Error::NotFound("no such task".into()), tonic::Code::NotFound),
            (Error::AlreadyExists("key taken".into()), tonic::Code::AlreadyExists),
            (Error::PermissionDenied("viewers may not".into()), tonic::Code::PermissionDenied),
            (Error::Conflict("archived".into()), tonic::Code::FailedPrecondition),
            (Error::VersionMismatch("changed".into()), tonic::Code::Aborted),
            (Error::Contention, tonic::Code::Aborted),
            (Error::Exhausted { message: "too big".into(), retry_after_secs: None }, tonic::Code::ResourceExhausted),
            (Error::Cancelled("interrupted".into()), tonic::Code::Cancelled),
            (Error::Unimplemented("later".into()), tonic::Code::Unimplemented),
            (Error::Unavailable("database down".into()), tonic::Code::Unavailable),
            (Error::Internal(anyhow::anyhow!("bug")), tonic::Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(status(error).code(), code);
        }
    }

    #[test]
    fn a_limit_with_a_wait_says_how_long() {
        let status = status(Error::Exhausted { message: "locked".into(), retry_after_secs: Some(42) });
        assert_eq!(status.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("42"));
    }

    #[test]
    fn causes_of_unavailable_and_internal_errors_stay_out_of_the_answer() {
        assert_eq!(
            status(Error::Unavailable("mysql://root:secret@db".into())).message(),
            "a backend is unavailable; retry shortly"
        );
        assert_eq!(status(Error::Internal(anyhow::anyhow!("secret detail"))).message(), "internal error");
    }

    #[test]
    fn field_violations_travel_as_bad_request_details() {
        use tonic_types::StatusExt as _;
        let status = status(Error::field("labels[2]", "too long"));
        let details = status.get_error_details();
        let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "labels[2]");
    }
}
