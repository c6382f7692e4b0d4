//! The page cache against the real Redis: a page is served only while its project is at the
//! generation it was stored under.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_task::app::ports::{CachedPage, PageCache};
use ordo_task::infra::RedisPageCache;
use ordo_testkit::TestEnv;
use redis::AsyncCommands as _;
use uuid::Uuid;

async fn cache(env: &TestEnv) -> (RedisPageCache, ordo_platform::redis::ConnectionManager) {
    let client = redis::Client::open(ordo_testkit::redis_url()).unwrap();
    let redis = ordo_platform::redis::ConnectionManager::new(redis::aio::ConnectionManager::new(client).await.unwrap());
    (RedisPageCache::new(redis.clone(), env.redis_prefix(), Duration::from_secs(60)), redis)
}

fn generation_of(page: CachedPage) -> u64 {
    match page {
        CachedPage::Miss { generation } => generation,
        CachedPage::Hit(_) => panic!("expected a miss"),
    }
}

#[tokio::test]
async fn a_page_is_served_until_its_project_changes_and_never_under_an_older_generation() {
    // Arrange
    let env = TestEnv::new();
    let (pages, _) = cache(&env).await;
    let (project, other) = (Uuid::now_v7(), Uuid::now_v7());
    let first = generation_of(pages.get(project, "status=todo").await.unwrap());
    pages.put(project, first, "status=todo", b"page one").await.unwrap();
    let other_generation = generation_of(pages.get(other, "status=todo").await.unwrap());
    pages.put(other, other_generation, "status=todo", b"other page").await.unwrap();

    // Act
    let before = pages.get(project, "status=todo").await.unwrap();
    let another_query = pages.get(project, "status=done").await.unwrap();
    pages.changed(project).await.unwrap();
    let after_change = pages.get(project, "status=todo").await.unwrap();
    // A reader that started before the change stores what it read under the old generation.
    pages.put(project, first, "status=todo", b"stale page").await.unwrap();
    let after_late_put = pages.get(project, "status=todo").await.unwrap();

    // Assert
    assert_eq!(before, CachedPage::Hit(b"page one".to_vec()));
    assert_eq!(another_query, CachedPage::Miss { generation: first });
    assert!(matches!(after_change, CachedPage::Miss { generation } if generation != first));
    assert!(matches!(after_late_put, CachedPage::Miss { .. }));
    assert_eq!(pages.get(other, "status=todo").await.unwrap(), CachedPage::Hit(b"other page".to_vec()));
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_lost_generation_starts_afresh_and_serves_no_earlier_page() {
    // Arrange
    let env = TestEnv::new();
    let (pages, mut redis) = cache(&env).await;
    let project = Uuid::now_v7();
    let first = generation_of(pages.get(project, "q").await.unwrap());
    pages.put(project, first, "q", b"page").await.unwrap();

    // Act: Redis loses the generation (evicted, or flushed) but keeps the page.
    let () = redis.del(format!("{}task:pages:{}", env.redis_prefix(), project.simple())).await.unwrap();
    let after_loss = pages.get(project, "q").await.unwrap();
    pages.changed(project).await.unwrap();
    let after_change = pages.get(project, "q").await.unwrap();

    // Assert
    assert!(matches!(after_loss, CachedPage::Miss { generation } if generation != first));
    assert!(matches!(after_change, CachedPage::Miss { .. }));
    env.cleanup().await.unwrap();
}
