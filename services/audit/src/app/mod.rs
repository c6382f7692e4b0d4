//! The audit service's queries. They depend on the ports below only; `infra` implements them with
//! MySQL and the project service. Who may read what is decided here.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_auth::Caller;
use time::OffsetDateTime;

use crate::domain::{Record, Verdict};

/// The queries end with the services' one error vocabulary ([`ordo_error::Error`], mapped to gRPC
/// once by `ordo_service::status`).
pub use ordo_error::{Error as AppError, Result};

/// A malformed cursor.
fn bad_cursor() -> AppError {
    AppError::BadRequest(std::borrow::Cow::Borrowed("invalid cursor"))
}

/// The filters of a listing; empty strings match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Who caused the event.
    pub actor_id: String,
    /// The event type.
    pub action: String,
    /// What it is about.
    pub entity_type: String,
    /// Its id.
    pub entity_id: String,
    /// The project.
    pub project_id: String,
    /// `occurred_at` at or after.
    pub from: Option<OffsetDateTime>,
    /// `occurred_at` before.
    pub to: Option<OffsetDateTime>,
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct RecordPage {
    /// The records, by `seq`.
    pub records: Vec<Record>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// The stored log.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Records matching `filter` with `seq` above `after`, by `seq`, at most `limit`.
    async fn list(&self, filter: &RecordFilter, after: u64, limit: u32) -> Result<Vec<Record>>;
    /// Recomputes the chain from `from` (from its first record when `None`) through at most
    /// `limit` records; `None` when `from` is past the head.
    async fn verify(&self, from: Option<u64>, limit: u64) -> Result<Option<Verdict>>;
}

/// A part of the chain checked, and where the next part starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The verdict on the records checked.
    pub verdict: Verdict,
    /// The cursor of the next part, when this one stopped at its limit before the head.
    pub next_cursor: Option<String>,
}

/// Records a verification checks when the caller does not say: well within the gateway's backend
/// timeout on a small machine (see BENCHMARKS.md).
pub const DEFAULT_VERIFY_LIMIT: u32 = 100_000;

/// The most records one verification call checks: the work of one call is bounded whatever the
/// log's length; a longer log is checked in parts, each naming where the next starts.
pub const MAX_VERIFY_LIMIT: u32 = 200_000;

/// The project service's answer about the caller.
#[async_trait]
pub trait ProjectRoles: Send + Sync + 'static {
    /// Whether the caller (`authorization` is its bearer credential) is an owner or admin of
    /// `project_id`; `false` also for a project it cannot see.
    async fn manages(&self, authorization: &str, project_id: &str, user_id: &str) -> Result<bool>;
}

/// The audit service's queries.
#[derive(Clone)]
pub struct AuditQueries {
    log: Arc<dyn AuditLog>,
    projects: Arc<dyn ProjectRoles>,
}

impl std::fmt::Debug for AuditQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditQueries").finish_non_exhaustive()
    }
}

fn encode_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(seq.to_be_bytes())
}

/// The longest cursor handed out: eight bytes in unpadded base64url.
const MAX_CURSOR_LEN: usize = 11;

fn decode_cursor(cursor: &str) -> Result<u64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(bad_cursor());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad_cursor())?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| bad_cursor())?;
    Ok(u64::from_be_bytes(bytes))
}

/// Refuses a filter longer than its column holds (it could match nothing), before it is sent to the
/// project service or the database. Bytes first: more than four per character is too long uncounted.
fn check_filter(filter: &RecordFilter) -> Result<()> {
    // The widths of the columns (see `domain::record`): ids and names 64 characters, actions 100.
    let fields = [
        ("actor_id", filter.actor_id.as_str(), 64),
        ("action", filter.action.as_str(), 100),
        ("entity_type", filter.entity_type.as_str(), 64),
        ("entity_id", filter.entity_id.as_str(), 64),
        ("project_id", filter.project_id.as_str(), 64),
    ];
    for (field, value, max) in fields {
        if value.len() > 4 * max || (value.len() > max && value.chars().count() > max) {
            return Err(AppError::field(field, "is longer than any recorded value"));
        }
    }
    Ok(())
}

fn is_global_admin(caller: &Caller) -> bool {
    caller.role == "admin"
}

impl AuditQueries {
    /// Queries over `log`, asking `projects` about project roles.
    pub fn new(log: Arc<dyn AuditLog>, projects: Arc<dyn ProjectRoles>) -> Self {
        Self { log, projects }
    }

    /// A page of records the caller may read.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_records(
        &self,
        caller: &Caller,
        authorization: &str,
        filter: RecordFilter,
        limit: i32,
        cursor: &str,
    ) -> Result<RecordPage> {
        let limit = match limit {
            0 => 50,
            1..=100 => limit.unsigned_abs(),
            _ => return Err(AppError::field("limit", "must be 1..100")),
        };
        let after = decode_cursor(cursor)?;
        check_filter(&filter)?;
        if !is_global_admin(caller) {
            const WHO: &str = "the audit log is for admins, and for a project's owners and admins with its project_id";
            if filter.project_id.is_empty()
                || !self.projects.manages(authorization, &filter.project_id, &caller.user_id.to_string()).await?
            {
                return Err(AppError::PermissionDenied(WHO.into()));
            }
        }
        let mut records = self.log.list(&filter, after, limit + 1).await?;
        let next_cursor = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|r| encode_cursor(r.seq))
        } else {
            None
        };
        Ok(RecordPage { records, next_cursor })
    }

    /// Recomputes a part of the chain (global admins only): from the record `cursor` names (the
    /// first record present when it is empty) through at most `limit` records (0: the default).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn verify_log(&self, caller: &Caller, limit: u32, cursor: &str) -> Result<Verification> {
        if !is_global_admin(caller) {
            return Err(AppError::PermissionDenied("only admins verify the audit log".into()));
        }
        let limit = match limit {
            0 => DEFAULT_VERIFY_LIMIT,
            1..=MAX_VERIFY_LIMIT => limit,
            _ => return Err(AppError::field("limit", format!("must be 1..{MAX_VERIFY_LIMIT}"))),
        };
        let from = match decode_cursor(cursor)? {
            0 if cursor.is_empty() => None,
            0 => return Err(bad_cursor()),
            seq => Some(seq),
        };
        let verdict = self.log.verify(from, u64::from(limit)).await?.ok_or_else(bad_cursor)?;
        Ok(Verification { next_cursor: verdict.next_seq.map(encode_cursor), verdict })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A log and a project service that count how often they are asked.
    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
    }

    #[async_trait]
    impl AuditLog for Counting {
        async fn list(&self, _: &RecordFilter, _: u64, _: u32) -> Result<Vec<Record>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }

        async fn verify(&self, _: Option<u64>, _: u64) -> Result<Option<Verdict>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    }

    #[async_trait]
    impl ProjectRoles for Counting {
        async fn manages(&self, _: &str, _: &str, _: &str) -> Result<bool> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }
    }

    fn caller(role: &str) -> Caller {
        let (user_id, session_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let claims = ordo_auth::AccessClaims {
            iss: "ordo".into(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            role: role.to_owned(),
            iat: 0,
            exp: 0,
            jti: String::new(),
        };
        Caller { user_id, session_id, role: role.to_owned(), claims: Arc::new(claims) }
    }

    #[tokio::test]
    async fn a_filter_longer_than_its_column_is_refused_on_its_field_before_anyone_is_asked() {
        // Arrange
        let counting = Arc::new(Counting::default());
        let queries = AuditQueries::new(counting.clone(), counting.clone());
        let at_limit = RecordFilter {
            actor_id: "a".repeat(64),
            action: "é".repeat(100),
            entity_type: "t".repeat(64),
            entity_id: "i".repeat(64),
            project_id: "p".repeat(64),
            ..RecordFilter::default()
        };
        type Grow = fn(&mut RecordFilter);
        let over: [(&str, Grow); 6] = [
            ("actor_id", |f| f.actor_id.push('a')),
            ("action", |f| f.action.push('é')),
            ("entity_type", |f| f.entity_type.push('t')),
            ("entity_id", |f| f.entity_id.push('i')),
            ("project_id", |f| f.project_id.push('p')),
            ("project_id", |f| f.project_id = "p".repeat(150_000)),
        ];

        for (expected, grow) in over {
            let mut filter = at_limit.clone();
            grow(&mut filter);
            // Act
            let result = queries.list_records(&caller("member"), "Bearer t", filter, 10, "").await;
            // Assert
            match result {
                Err(AppError::Invalid(violations)) => assert_eq!(violations[0].field, expected),
                other => panic!("expected a field error on {expected}, got {other:?}"),
            }
        }
        assert_eq!(counting.asked.load(Ordering::SeqCst), 0, "neither the project service nor the log was asked");
        // At the limits the query runs (asking the project service, then the log).
        assert!(queries.list_records(&caller("member"), "Bearer t", at_limit, 10, "").await.is_ok());
        assert_eq!(counting.asked.load(Ordering::SeqCst), 2);
        assert!(matches!(
            queries.list_records(&caller("admin"), "Bearer t", RecordFilter::default(), 10, &"A".repeat(5000)).await,
            Err(AppError::BadRequest(_))
        ));
    }

    #[tokio::test]
    async fn a_verification_is_refused_before_the_log_is_read_unless_the_caller_is_an_admin_with_a_bounded_limit() {
        // Arrange
        let counting = Arc::new(Counting::default());
        let queries = AuditQueries::new(counting.clone(), counting.clone());
        let refused = [
            ("member", 10, String::new()),
            ("admin", MAX_VERIFY_LIMIT + 1, String::new()),
            ("admin", 10, "!!".to_owned()),
            ("admin", 10, encode_cursor(0)),
        ];

        for (role, limit, cursor) in refused {
            // Act
            let result = queries.verify_log(&caller(role), limit, &cursor).await;
            // Assert
            assert!(
                matches!(result, Err(AppError::PermissionDenied(_) | AppError::Invalid(_) | AppError::BadRequest(_))),
                "{role} {limit} {cursor:?}: {result:?}"
            );
        }
        assert_eq!(counting.asked.load(Ordering::SeqCst), 0, "the log was not read");
        // A cursor past the head (the log answers `None`) is one we did not issue.
        let past = queries.verify_log(&caller("admin"), 0, &encode_cursor(7)).await;
        assert!(matches!(past, Err(AppError::BadRequest(_))), "{past:?}");
        assert_eq!(counting.asked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        assert_eq!(decode_cursor("").ok(), Some(0));
        assert!(matches!(decode_cursor("!!"), Err(AppError::BadRequest(_))));
        assert!(matches!(decode_cursor("AAAA"), Err(AppError::BadRequest(_))));
    }
}
