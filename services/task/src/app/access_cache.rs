//! A short-lived, in-process cache of the project service's answers (`CheckAccess`), in front of any
//! [`ProjectAccess`]. Almost every request of the task service asks "what is this user's standing in
//! this project"; asking the project service each time is a network hop, a token check and a Redis
//! read on its side. Here a repeated question costs a hash lookup.
//!
//! Entries live for `ttl` at most, and the project's and identity's events drop them sooner: the
//! service subscribes every instance to those events (see `infra::access_events`) and calls
//! [`AccessCache::forget_project`] and [`AccessCache::forget_user`]; a lost subscription calls
//! [`AccessCache::clear`]. A question in flight while its entry is dropped does not put a stale
//! answer back: every drop raises a generation, and an answer fetched under an older one is
//! returned but not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::ports::{ProjectAccess, ProjectStanding};
use super::{Caller, Result};

/// What one entry answers: `user`'s standing in `project`, as asked by `caller` (the project
/// service only answers about projects the caller can see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    project: Uuid,
    caller: Uuid,
    user: Uuid,
}

#[derive(Debug)]
struct Entry {
    standing: Option<ProjectStanding>,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Raised by every drop; an answer fetched under an older generation is not kept.
    generation: u64,
    /// Users whose answers are not kept until the instant given: their account changed, and the
    /// project service may not have heard of it yet.
    unsettled_users: HashMap<Uuid, Instant>,
}

/// The cache; cheap to clone (clones share entries).
#[derive(Clone)]
pub struct AccessCache {
    inner: Arc<dyn ProjectAccess>,
    ttl: Duration,
    capacity: usize,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessCache").field("ttl", &self.ttl).field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl AccessCache {
    /// Caches `inner`'s answers for `ttl`, keeping at most `capacity` of them; a zero `ttl` keeps none.
    pub fn new(inner: Arc<dyn ProjectAccess>, ttl: Duration, capacity: usize) -> Self {
        Self { inner, ttl, capacity: capacity.max(1), state: Arc::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state whole, so a panic elsewhere cannot have broken it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops every answer about `project` (its members, roles or archival changed).
    pub fn forget_project(&self, project: Uuid) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|key, _| key.project != project);
    }

    /// Drops every answer about or for `user`, and keeps none for `settle` from now: the account
    /// changed (disabled, role), and the project service learns that from the same event.
    pub fn forget_user(&self, user: Uuid, settle: Duration) {
        let now = Instant::now();
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|key, _| key.user != user && key.caller != user);
        state.unsettled_users.retain(|_, until| *until > now);
        state.unsettled_users.insert(user, now + settle);
    }

    /// Drops everything (events may have been missed).
    pub fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }

    /// How many answers are kept now.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps `standing` unless a drop happened since `generation` or a user of `key` is unsettled.
    fn keep(&self, key: Key, standing: &Option<ProjectStanding>, generation: u64) {
        let now = Instant::now();
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        let unsettled = |user: &Uuid| state.unsettled_users.get(user).is_some_and(|until| *until > now);
        if unsettled(&key.user) || unsettled(&key.caller) {
            return;
        }
        if state.entries.len() >= self.capacity {
            state.entries.retain(|_, entry| entry.expires_at > now);
            if state.entries.len() >= self.capacity {
                // Full of live answers: start over rather than track recency on every hit.
                state.entries.clear();
            }
        }
        state.entries.insert(key, Entry { standing: standing.clone(), expires_at: now + self.ttl });
    }
}

#[async_trait]
impl ProjectAccess for AccessCache {
    async fn standing(&self, caller: &Caller, project_id: Uuid, user_id: Uuid) -> Result<Option<ProjectStanding>> {
        if self.ttl.is_zero() {
            return self.inner.standing(caller, project_id, user_id).await;
        }
        let key = Key { project: project_id, caller: caller.user_id, user: user_id };
        let generation = {
            let state = self.state();
            if let Some(entry) = state.entries.get(&key)
                && entry.expires_at > Instant::now()
            {
                return Ok(entry.standing.clone());
            }
            state.generation
        };
        let standing = self.inner.standing(caller, project_id, user_id).await?;
        self.keep(key, &standing, generation);
        Ok(standing)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;
    use crate::domain::ProjectRole;

    /// The project service as the cache sees it: answers "member", counts questions, and can hold
    /// an answer until told to let it go.
    #[derive(Default)]
    struct Projects {
        asked: AtomicUsize,
        hold: Option<(Arc<Notify>, Arc<Notify>)>,
    }

    #[async_trait]
    impl ProjectAccess for Projects {
        async fn standing(&self, _: &Caller, _: Uuid, _: Uuid) -> Result<Option<ProjectStanding>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            if let Some((asked, release)) = &self.hold {
                asked.notify_one();
                release.notified().await;
            }
            Ok(Some(ProjectStanding { role: Some(ProjectRole::Member), archived: false, key: "ORDO".into() }))
        }
    }

    fn caller() -> Caller {
        Caller { user_id: Uuid::now_v7(), authorization: "Bearer t".into() }
    }

    fn cache(projects: &Arc<Projects>, ttl: Duration) -> AccessCache {
        AccessCache::new(projects.clone(), ttl, 100)
    }

    #[tokio::test]
    async fn a_repeated_question_is_answered_from_the_cache() {
        let projects = Arc::new(Projects::default());
        let cache = cache(&projects, Duration::from_secs(60));
        let (alice, project) = (caller(), Uuid::now_v7());

        let first = cache.standing(&alice, project, alice.user_id).await.unwrap();
        let second = cache.standing(&alice, project, alice.user_id).await.unwrap();

        assert_eq!(first, second);
        assert_eq!(projects.asked.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn another_caller_another_user_or_another_project_is_asked_anew() {
        let projects = Arc::new(Projects::default());
        let cache = cache(&projects, Duration::from_secs(60));
        let (alice, bob, project) = (caller(), caller(), Uuid::now_v7());
        cache.standing(&alice, project, alice.user_id).await.unwrap();

        cache.standing(&bob, project, alice.user_id).await.unwrap();
        cache.standing(&alice, project, bob.user_id).await.unwrap();
        cache.standing(&alice, Uuid::now_v7(), alice.user_id).await.unwrap();

        assert_eq!(projects.asked.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn forgetting_a_project_drops_its_answers_only() {
        let projects = Arc::new(Projects::default());
        let cache = cache(&projects, Duration::from_secs(60));
        let (alice, changed, other) = (caller(), Uuid::now_v7(), Uuid::now_v7());
        cache.standing(&alice, changed, alice.user_id).await.unwrap();
        cache.standing(&alice, other, alice.user_id).await.unwrap();

        cache.forget_project(changed);
        cache.standing(&alice, changed, alice.user_id).await.unwrap();
        cache.standing(&alice, other, alice.user_id).await.unwrap();

        assert_eq!(projects.asked.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn forgetting_a_user_drops_answers_about_and_for_them_and_keeps_none_while_unsettled() {
        let projects = Arc::new(Projects::default());
        let cache = cache(&projects, Duration::from_secs(60));
        let (alice, bob, project) = (caller(), caller(), Uuid::now_v7());
        cache.standing(&alice, project, bob.user_id).await.unwrap();
        cache.standing(&bob, project, bob.user_id).await.unwrap();
        cache.standing(&alice, project, alice.user_id).await.unwrap();

        cache.forget_user(bob.user_id, Duration::from_secs(60));

        assert_eq!(cache.len(), 1, "only alice's own answer is left");
        cache.standing(&alice, project, bob.user_id).await.unwrap();
        cache.standing(&alice, project, bob.user_id).await.unwrap();
        assert_eq!(projects.asked.load(Ordering::SeqCst), 5, "bob's answers are asked each time while unsettled");
    }

    #[tokio::test]
    async fn an_answer_fetched_across_a_drop_is_returned_but_not_kept() {
        let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let projects = Arc::new(Projects { hold: Some((asked.clone(), release.clone())), ..Projects::default() });
        let cache = cache(&projects, Duration::from_secs(60));
        let (alice, project) = (caller(), Uuid::now_v7());
        let pending = {
            let (cache, alice) = (cache.clone(), alice.clone());
            tokio::spawn(async move { cache.standing(&alice, project, alice.user_id).await })
        };
        asked.notified().await;

        cache.forget_project(project);
        release.notify_one();

        assert!(pending.await.unwrap().unwrap().is_some());
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_zero_ttl_keeps_nothing_and_an_expired_answer_is_asked_again() {
        let projects = Arc::new(Projects::default());
        let off = cache(&projects, Duration::ZERO);
        let short = cache(&projects, Duration::from_millis(1));
        let (alice, project) = (caller(), Uuid::now_v7());

        off.standing(&alice, project, alice.user_id).await.unwrap();
        off.standing(&alice, project, alice.user_id).await.unwrap();
        short.standing(&alice, project, alice.user_id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        short.standing(&alice, project, alice.user_id).await.unwrap();

        assert_eq!(projects.asked.load(Ordering::SeqCst), 4);
        assert!(off.is_empty());
    }

    #[tokio::test]
    async fn a_full_cache_makes_room() {
        let projects = Arc::new(Projects::default());
        let cache = AccessCache::new(projects.clone(), Duration::from_secs(60), 2);
        let alice = caller();

        for _ in 0..5 {
            cache.standing(&alice, Uuid::now_v7(), alice.user_id).await.unwrap();
        }

        assert!(cache.len() <= 2);
    }
}
