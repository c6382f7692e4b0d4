//! The page cache in Redis. Each project has a *generation*, a number that every change to its
//! tasks moves on; a page is stored with the generation it was computed under and served only while
//! the project is still at it. A generation starts at a random value (and is re-created at one if
//! Redis lost it), so a page from an earlier lifetime of the key can never match by accident.
//!
//! Keys: `<prefix>task:pages:<project>` holds the generation; `<prefix>task:pages:<project>:<query>`
//! holds eight bytes of generation followed by the encoded page, and expires after the page TTL.

use std::time::Duration;

use async_trait::async_trait;
use ordo_platform::redis::ConnectionManager;
use redis::AsyncCommands as _;
use uuid::Uuid;

use crate::app::ports::{CachedPage, PageCache};
use crate::app::{AppError, Result};

/// How long a project's generation outlives its last change or first read.
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Pages of project task lists in Redis.
#[derive(Clone)]
pub struct RedisPageCache {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl std::fmt::Debug for RedisPageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPageCache").field("prefix", &self.prefix).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

fn unavailable(error: redis::RedisError) -> AppError {
    AppError::Unavailable(format!("redis: {error}"))
}

impl RedisPageCache {
    /// Pages under `prefix`, each kept for `ttl` at most.
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self { redis, prefix: prefix.into(), ttl }
    }

    fn generation_key(&self, project_id: Uuid) -> String {
        format!("{}task:pages:{}", self.prefix, project_id.simple())
    }

    fn page_key(&self, project_id: Uuid, query: &str) -> String {
        format!("{}task:pages:{}:{query}", self.prefix, project_id.simple())
    }

    /// Moves the project to a new generation: a random one if it has none, the next otherwise.
    async fn advance(&self, project_id: Uuid) -> Result<u64> {
        let key = self.generation_key(project_id);
        let (generation,): (u64,) = redis::pipe()
            .atomic()
            .set_nx(&key, fresh_generation())
            .ignore()
            .incr(&key, 1)
            .expire(&key, GENERATION_TTL.as_secs() as i64)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
            .map_err(unavailable)?;
        Ok(generation)
    }
}

/// A random starting generation, kept well below `u64::MAX` so it can count up for ever.
fn fresh_generation() -> u64 {
    let bytes = Uuid::new_v4().into_bytes();
    u64::from_be_bytes([0, 0, bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

#[async_trait]
impl PageCache for RedisPageCache {
    async fn get(&self, project_id: Uuid, key: &str) -> Result<CachedPage> {
        let keys = [self.generation_key(project_id), self.page_key(project_id, key)];
        let (generation, page): (Option<u64>, Option<Vec<u8>>) =
            self.redis.clone().mget(&keys).await.map_err(unavailable)?;
        let Some(generation) = generation else {
            return Ok(CachedPage::Miss { generation: self.advance(project_id).await? });
        };
        match page {
            Some(page) if page.len() >= 8 && page[..8] == generation.to_be_bytes() => {
                Ok(CachedPage::Hit(page[8..].to_vec()))
            }
            _ => Ok(CachedPage::Miss { generation }),
        }
    }

    async fn put(&self, project_id: Uuid, generation: u64, key: &str, page: &[u8]) -> Result<()> {
        let mut value = Vec::with_capacity(8 + page.len());
        value.extend_from_slice(&generation.to_be_bytes());
        value.extend_from_slice(page);
        let () = self
            .redis
            .clone()
            .set_ex(self.page_key(project_id, key), value, self.ttl.as_secs().max(1))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn changed(&self, project_id: Uuid) -> Result<()> {
        self.advance(project_id).await.map(|_| ())
    }
}
