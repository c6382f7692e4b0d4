//! Pages of notifications kept in this instance's memory. Each user's `notification_sequence` row
//! holds a page version that every change of their notifications moves on in its own transaction
//! (see `counts`); a page is kept with the version it was read at and served only while that is
//! still the committed version, which one primary-key read tells. So a page served from memory is
//! never older than the last committed change, whichever instance made it, and a user's first page
//! costs that one read instead of reading and decoding fifty rows.
//!
//! The memory is bounded: pages are weighed by the bytes of their text, and the least used go first.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use uuid::Uuid;

use crate::app::ports::{ListQuery, Notification};

/// How long a page nobody asks for stays.
const IDLE: Duration = Duration::from_secs(10 * 60);

/// The bytes a notification weighs beside its text (ids, times, the struct itself).
const NOTIFICATION_OVERHEAD: usize = 160;

/// Which page: every field of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    user_id: Uuid,
    unread_only: bool,
    archived: bool,
    before: Option<Uuid>,
    limit: u32,
}

impl From<&ListQuery> for Key {
    fn from(query: &ListQuery) -> Self {
        Self {
            user_id: query.user_id,
            unread_only: query.unread_only,
            archived: query.archived,
            before: query.before,
            limit: query.limit,
        }
    }
}

/// A page and the version it was read at.
#[derive(Debug)]
pub(crate) struct Page {
    /// The user's page version when it was read.
    pub(crate) version: i64,
    /// Its notifications.
    pub(crate) notifications: Vec<Notification>,
}

/// Pages by query, bounded by weight.
#[derive(Clone)]
pub(crate) struct PageCache {
    pages: Cache<Key, Arc<Page>>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").field("weighted_bytes", &self.pages.weighted_size()).finish()
    }
}

fn weight(page: &Page) -> usize {
    page.notifications
        .iter()
        .map(|n| {
            NOTIFICATION_OVERHEAD
                + n.draft.title.len()
                + n.draft.body.len()
                + n.draft.task_key.as_ref().map_or(0, String::len)
        })
        .sum()
}

impl PageCache {
    /// A cache of at most about `max_bytes` of pages.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let pages = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &Key, page: &Arc<Page>| u32::try_from(weight(page)).unwrap_or(u32::MAX))
            .time_to_idle(IDLE)
            .build();
        Self { pages }
    }

    /// The page of `query` kept, if any, with the version it was read at.
    pub(crate) fn get(&self, query: &ListQuery) -> Option<Arc<Page>> {
        self.pages.get(&Key::from(query))
    }

    /// Keeps the page of `query` read at `version`.
    pub(crate) fn put(&self, query: &ListQuery, version: i64, notifications: &[Notification]) {
        let page = Page { version, notifications: notifications.to_vec() };
        self.pages.insert(Key::from(query), Arc::new(page));
    }
}
