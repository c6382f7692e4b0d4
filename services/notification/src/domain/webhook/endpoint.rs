//! The rules of an endpoint beside its URL, types and secret: how many a project has, how it is
//! described and throttled, how an attempt is logged, and when the service turns it off.

use time::OffsetDateTime;

use super::{Answer, DISABLE_AFTER, Verdict};

/// The most endpoints one project has.
pub const MAX_ENDPOINTS_PER_PROJECT: u64 = 20;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The highest throttle, deliveries per second (0 is no limit).
pub const MAX_RATE_LIMIT: u32 = 1000;
/// A delivery waits behind an earlier one of the same task to the same endpoint while that one is
/// pending within its first this many attempts (about 35 minutes); past them the task's later
/// events go ahead rather than wait a day behind it.
pub const ORDER_HOLD_ATTEMPTS: u32 = 3;

/// Why a description was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    #[error("at most {MAX_DESCRIPTION_CHARS} characters")]
    TooLong,
    #[error("no control characters")]
    Control,
}

/// `raw` trimmed, checked as an endpoint's description (empty is none).
///
/// # Errors
///
/// [`DescriptionError`] for a text too long or with control characters.
pub fn description(raw: &str) -> Result<String, DescriptionError> {
    // Counted before anything that grows with it; 4 bytes is the widest character.
    if raw.len() > MAX_DESCRIPTION_CHARS * 4 || raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DescriptionError::TooLong);
    }
    let trimmed = raw.trim();
    if trimmed.chars().any(char::is_control) {
        return Err(DescriptionError::Control);
    }
    Ok(trimmed.to_owned())
}

/// How one attempt ended, as the log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Any other HTTP status.
    Failed,
    /// No answer in time.
    Timeout,
    /// No connection, a refused address, a broken response.
    Unreachable,
}

impl Outcome {
    /// The outcome of `answer`.
    pub fn of(answer: Answer) -> Self {
        match answer {
            Answer::Status { code: 200..=299, .. } => Self::Delivered,
            Answer::Status { .. } => Self::Failed,
            Answer::Timeout => Self::Timeout,
            Answer::Unreachable => Self::Unreachable,
        }
    }

    /// Its name in the log and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
        }
    }

    /// The outcome named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Delivered, Self::Failed, Self::Timeout, Self::Unreachable].into_iter().find(|o| o.as_str() == name)
    }
}

/// Why the service turned an endpoint off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReason {
    /// It answered `410 Gone`.
    Gone,
    /// It failed for [`DISABLE_AFTER`] without one success.
    Failing,
}

impl DisableReason {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }

    /// The reason named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Gone, Self::Failing].into_iter().find(|r| r.as_str() == name)
    }
}

/// Whether an attempt with `verdict`, at `now`, turns its endpoint off: a `410`, or a failure when
/// the endpoint has failed since `failing_since` for [`DISABLE_AFTER`] or more.
pub fn disable_reason(
    verdict: Verdict,
    failing_since: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<DisableReason> {
    match verdict {
        Verdict::Delivered => None,
        Verdict::Gone => Some(DisableReason::Gone),
        Verdict::Retry(_) | Verdict::Failed => {
            let since = failing_since.unwrap_or(now);
            (now - since >= DISABLE_AFTER).then_some(DisableReason::Failing)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    #[test]
    fn descriptions_are_trimmed_and_bounded() {
        assert_eq!(description("  CI hook ").unwrap(), "CI hook");
        assert_eq!(description("").unwrap(), "");
        assert_eq!(description(&"é".repeat(MAX_DESCRIPTION_CHARS)).unwrap().chars().count(), MAX_DESCRIPTION_CHARS);
        assert_eq!(description(&"a".repeat(MAX_DESCRIPTION_CHARS + 1)), Err(DescriptionError::TooLong));
        assert_eq!(description("a\u{0}b"), Err(DescriptionError::Control));
    }

    #[test]
    fn outcomes_follow_the_answer() {
        let status = |code| Answer::Status { code, retry_after: None };
        assert_eq!(Outcome::of(status(204)), Outcome::Delivered);
        assert_eq!(Outcome::of(status(302)), Outcome::Failed);
        assert_eq!(Outcome::of(status(500)), Outcome::Failed);
        assert_eq!(Outcome::of(Answer::Timeout), Outcome::Timeout);
        assert_eq!(Outcome::of(Answer::Unreachable), Outcome::Unreachable);
        for outcome in [Outcome::Delivered, Outcome::Failed, Outcome::Timeout, Outcome::Unreachable] {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("lost"), None);
    }

    #[test]
    fn gone_or_five_days_of_failures_disable() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let retry = Verdict::Retry(Duration::from_secs(5));
        assert_eq!(disable_reason(Verdict::Gone, None, now), Some(DisableReason::Gone));
        assert_eq!(disable_reason(Verdict::Delivered, Some(now - time::Duration::days(9)), now), None);
        assert_eq!(disable_reason(retry, None, now), None);
        assert_eq!(disable_reason(retry, Some(now - time::Duration::days(4)), now), None);
        assert_eq!(disable_reason(retry, Some(now - time::Duration::days(5)), now), Some(DisableReason::Failing));
        assert_eq!(
            disable_reason(Verdict::Failed, Some(now - time::Duration::days(6)), now),
            Some(DisableReason::Failing)
        );
        assert_eq!(DisableReason::parse("gone"), Some(DisableReason::Gone));
        assert_eq!(DisableReason::parse(DisableReason::Failing.as_str()), Some(DisableReason::Failing));
    }
}
