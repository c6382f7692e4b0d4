//! The access cache in Redis: one entry per (project, user), read by `CheckAccess` on every task,
//! comment and attachment request of the other services.
//!
//! Keys (the `{project}` hash tag keeps one project's keys in one cluster slot):
//! - `<prefix>access:{<project>}:<user>` = `<epoch>|<record>`, with a TTL;
//! - `<prefix>access:{<project>}:epoch` = a random value that every change replaces;
//! - `<prefix>access:{<project>}:lock` = present for a few seconds after a change begins to commit.
//!
//! A reader takes the three in one `MGET`. An entry counts only if it was written under the current
//! epoch, so one `SET` of the epoch drops every entry of the project at once. Writers replace the
//! epoch and set the lock *before* they commit; while the lock is there readers go to the database
//! and do not fill. A reader fills with the epoch it saw before reading the database: if a change
//! began in between, that epoch is already stale and the entry never counts. So no instance can
//! keep serving an access that a committed change took away — a removed member is refused on the
//! very next request.

use async_trait::async_trait;
use ordo_platform::redis::ConnectionManager;
use uuid::Uuid;

use crate::app::ports::{AccessCache, AccessRecord, CacheLookup, CacheTicket};
use crate::app::{AppError, Result};
use crate::domain::ProjectRole;

/// How long the lock keeps readers off the cache after a change: far longer than the commit that
/// follows the invalidation.
const LOCK_TTL_SECS: u64 = 10;
/// How long an epoch is kept; longer than any entry lives.
const EPOCH_TTL_SECS: u64 = 86_400;

fn unavailable(error: redis::RedisError) -> AppError {
    AppError::Unavailable(format!("redis: {error}"))
}

/// The access cache in Redis.
#[derive(Clone)]
pub struct RedisAccessCache {
    conn: ConnectionManager,
    prefix: String,
    entry_ttl_secs: u64,
}

impl std::fmt::Debug for RedisAccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAccessCache")
            .field("prefix", &self.prefix)
            .field("entry_ttl_secs", &self.entry_ttl_secs)
            .finish()
    }
}

impl RedisAccessCache {
    /// A cache writing keys under `prefix`, keeping entries for `entry_ttl_secs`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, entry_ttl_secs: u64) -> Self {
        Self { conn, prefix: prefix.into(), entry_ttl_secs: entry_ttl_secs.max(1) }
    }

    fn entry_key(&self, project_id: Uuid, user_id: Uuid) -> String {
        format!("{}access:{{{project_id}}}:{user_id}", self.prefix)
    }

    fn epoch_key(&self, project_id: Uuid) -> String {
        format!("{}access:{{{project_id}}}:epoch", self.prefix)
    }

    fn lock_key(&self, project_id: Uuid) -> String {
        format!("{}access:{{{project_id}}}:lock", self.prefix)
    }
}

/// `x` for no project; `p|<archived>|<role or ->|<disabled>|<key>` otherwise.
fn encode(record: &AccessRecord) -> String {
    match record {
        AccessRecord::NoProject => "x".to_owned(),
        AccessRecord::Project { key, archived, role, user_disabled } => format!(
            "p|{}|{}|{}|{key}",
            u8::from(*archived),
            role.map_or("-", ProjectRole::as_str),
            u8::from(*user_disabled)
        ),
    }
}

fn decode(value: &str) -> Option<AccessRecord> {
    if value == "x" {
        return Some(AccessRecord::NoProject);
    }
    let mut parts = value.splitn(5, '|');
    let (Some("p"), Some(archived), Some(role), Some(disabled), Some(key)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let flag = |s: &str| match s {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    };
    let role = if role == "-" { None } else { Some(ProjectRole::parse(role)?) };
    Some(AccessRecord::Project { key: key.to_owned(), archived: flag(archived)?, role, user_disabled: flag(disabled)? })
}

#[async_trait]
impl AccessCache for RedisAccessCache {
    async fn get(&self, project_id: Uuid, user_id: Uuid) -> Result<CacheLookup> {
        let mut conn = self.conn.clone();
        let (entry, epoch, lock): (Option<String>, Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(self.entry_key(project_id, user_id))
            .arg(self.epoch_key(project_id))
            .arg(self.lock_key(project_id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if lock.is_some() {
            return Ok(CacheLookup::Bypass);
        }
        let current = epoch.as_deref().unwrap_or("");
        if let Some(entry) = entry
            && let Some((entry_epoch, value)) = entry.split_once('|')
            && entry_epoch == current
            && let Some(record) = decode(value)
        {
            return Ok(CacheLookup::Hit(record));
        }
        Ok(CacheLookup::Miss(CacheTicket(epoch)))
    }

    async fn fill(&self, project_id: Uuid, user_id: Uuid, ticket: CacheTicket, record: &AccessRecord) -> Result<()> {
        let value = format!("{}|{}", ticket.0.as_deref().unwrap_or(""), encode(record));
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.entry_key(project_id, user_id))
            .arg(value)
            .arg("EX")
            .arg(self.entry_ttl_secs)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn invalidate(&self, project_ids: &[Uuid]) -> Result<()> {
        if project_ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for id in project_ids {
            let epoch = format!("{:016x}", rand::random::<u64>());
            pipe.set_ex(self.epoch_key(*id), epoch, EPOCH_TTL_SECS).ignore();
            pipe.set_ex(self.lock_key(*id), "1", LOCK_TTL_SECS).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            AccessRecord::NoProject,
            AccessRecord::Project { key: "ORDO".into(), archived: false, role: None, user_disabled: false },
            AccessRecord::Project {
                key: "A1".into(),
                archived: true,
                role: Some(ProjectRole::Owner),
                user_disabled: true,
            },
        ];
        for record in records {
            assert_eq!(decode(&encode(&record)), Some(record.clone()), "{record:?}");
        }
        for role in ProjectRole::ALL {
            let record =
                AccessRecord::Project { key: "AB".into(), archived: false, role: Some(role), user_disabled: false };
            assert_eq!(decode(&encode(&record)), Some(record));
        }
    }

    #[test]
    fn garbage_is_no_record() {
        for value in ["", "p", "p|2|owner|0|AB", "p|0|boss|0|AB", "q|0|owner|0|AB", "p|0|owner|0"] {
            assert_eq!(decode(value), None, "{value}");
        }
    }
}
