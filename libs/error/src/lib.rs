//! The one error vocabulary of Ordo's services. Every use case of every service ends with an
//! [`Error`] of this crate, so there is exactly one mapping to a gRPC status (`ordo_service::status`)
//! and one from it to HTTP (the gateway's), as GreptimeDB keeps one status-code vocabulary for all
//! its crates. Each variant names the gRPC code it becomes; a service says what it means in the
//! message (`Error::AlreadyExists("an account with this email already exists")`).
//!
//! Plain Rust with no I/O, so domain code builds [`FieldViolation`]s and [`Violations`] directly.

use std::borrow::Cow;

/// A message: usually a literal, sometimes formatted.
pub type Message = Cow<'static, str>;

/// One broken field rule, named by its field in the API (`title`, `assignee_ids[2]`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field, as named in the API.
    pub field: Message,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<Message>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Every field rule a request broke, so a client can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    /// Records the error of `result` and returns its value.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    /// Records one violation.
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when no rule was broken, else every violation as an [`Error::Invalid`].
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::Invalid(self.0)) }
    }
}

/// How a use case failed. The arrow in each variant's documentation names the gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input broke field rules. → `InvalidArgument` with one field violation each
    #[error("invalid input")]
    Invalid(Vec<FieldViolation>),
    /// Malformed input that is not a field rule (a bad cursor). → `InvalidArgument`
    #[error("{0}")]
    BadRequest(Message),
    /// No valid credentials or session. → `Unauthenticated`
    #[error("{0}")]
    Unauthenticated(Message),
    /// No such thing, or the caller may not know it exists. → `NotFound`
    #[error("{0}")]
    NotFound(Message),
    /// The thing to create exists already (a taken email or key, a member twice). → `AlreadyExists`
    #[error("{0}")]
    AlreadyExists(Message),
    /// The caller sees the thing but may not do this to it. → `PermissionDenied`
    #[error("{0}")]
    PermissionDenied(Message),
    /// The state forbids the action (an archived project, the last owner). → `FailedPrecondition`
    #[error("{0}")]
    Conflict(Message),
    /// The expected version named another one: someone changed it first. → `Aborted`
    #[error("{0}")]
    VersionMismatch(Message),
    /// A concurrent transaction won a lock race and retries ran out. → `Aborted`
    #[error("too many concurrent changes; retry")]
    Contention,
    /// A limit was reached (failed logins, an upload's size); `retry_after_secs` when waiting
    /// helps. → `ResourceExhausted`, with a `retry-after` entry when known
    #[error("{message}")]
    Exhausted {
        /// What was exceeded, for a human.
        message: Message,
        /// Seconds until trying again can succeed.
        retry_after_secs: Option<u64>,
    },
    /// The client broke off (an upload interrupted). → `Cancelled`
    #[error("{0}")]
    Cancelled(Message),
    /// The service has no such operation. → `Unimplemented`
    #[error("{0}")]
    Unimplemented(Message),
    /// A backend is down or saturated; the cause is logged. → `Unavailable`
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected backend error; logged, answered generically. → `Internal`
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// One field violation.
    pub fn field(field: impl Into<Message>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldViolation::new(field, message)])
    }

    /// The expected version named another one: someone changed the thing first.
    pub fn changed() -> Self {
        Error::VersionMismatch(Cow::Borrowed("changed by someone else; reload and retry"))
    }

    /// `Ok` unless the client expected a version (an `If-Match`) other than `current`; then
    /// [`Error::changed`].
    ///
    /// # Errors
    ///
    /// [`Error::VersionMismatch`] when `expected` names another version.
    pub fn check_version(current: i64, expected: Option<i64>) -> Result<(), Self> {
        match expected {
            Some(version) if version != current => Err(Self::changed()),
            _ => Ok(()),
        }
    }

    /// An unexpected failure, from anything that is an error.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }
}

/// A use case's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and each of its causes, on one line (`outer: cause: root cause`), for logs and delivery
/// records: many errors (the AWS SDK's, reqwest's) say only their outermost layer in `Display`.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|cause| cause as _)
        }
    }

    #[test]
    fn an_error_is_described_with_every_cause() {
        let error = Layer("request failed", Some(Box::new(Layer("connect", Some(Box::new(Layer("refused", None)))))));

        assert_eq!(with_causes(&error), "request failed: connect: refused");
        assert_eq!(with_causes(&Layer("alone", None)), "alone");
    }

    #[test]
    fn violations_collect_every_broken_rule() {
        let mut violations = Violations::default();
        assert_eq!(violations.check::<u8>(Err(FieldViolation::new("title", "must not be blank"))), None);
        assert_eq!(violations.check(Ok(3)), Some(3));
        violations.push(FieldViolation::new(format!("labels[{}]", 2), "too long"));
        match violations.into_result() {
            Err(Error::Invalid(all)) => {
                let fields: Vec<_> = all.iter().map(|v| v.field.as_ref()).collect();
                assert_eq!(fields, ["title", "labels[2]"]);
            }
            other => panic!("expected every violation, got {other:?}"),
        }
    }

    #[test]
    fn versions_match_or_abort() {
        assert!(Error::check_version(3, None).is_ok());
        assert!(Error::check_version(3, Some(3)).is_ok());
        assert!(matches!(Error::check_version(3, Some(2)), Err(Error::VersionMismatch(_))));
    }

    #[test]
    fn no_violation_is_ok() {
        assert!(Violations::default().into_result().is_ok());
    }
}
