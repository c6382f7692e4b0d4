//! Identity's use cases run in-process over the real MariaDB and Redis adapters, with a test double
//! only where a test must force an interleaving or a failure that cannot be timed from outside: a
//! session cache that holds a write until the test lets it go, a throttle whose Redis is down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use clap::Parser as _;
use ordo_auth::{AccessClaims, Caller};
use ordo_events::OutboxSignal;
use ordo_identity::Config;
use ordo_identity::app::ports::{Attempt, LoginThrottle, PasswordHasher, SessionCache};
use ordo_identity::app::{AppError, ClientInfo, IdentityService, IdentitySettings, Result, SigningKeys};
use ordo_identity::domain::Email;
use ordo_identity::infra::{Argon2Hasher, MySqlIdentityStore, RedisLoginThrottle, RedisSessionCache, RedisUserCache};
use ordo_platform::redis::ConnectionManager;
use ordo_testkit::TestEnv;
use tokio::sync::Notify;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery staple";

/// The real Redis session cache, except that while `hold` is set a `mark_active` stops before
/// writing, says so on `reached`, and goes on only when `release` is notified.
struct HeldSessionCache {
    inner: RedisSessionCache,
    hold: AtomicBool,
    reached: Notify,
    release: Notify,
}

#[async_trait]
impl SessionCache for HeldSessionCache {
    async fn mark_active(&self, session_id: Uuid, ttl_secs: u64) -> Result<bool> {
        if self.hold.load(Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.mark_active(session_id, ttl_secs).await
    }

    async fn mark_revoked(&self, session_ids: &[Uuid]) -> Result<()> {
        self.inner.mark_revoked(session_ids).await
    }
}

/// A throttle whose Redis cannot be reached.
struct UnreachableThrottle;

#[async_trait]
impl LoginThrottle for UnreachableThrottle {
    async fn attempt(&self, _email: &Email) -> Result<Attempt> {
        Err(AppError::Unavailable("redis: connection refused".into()))
    }

    async fn reset(&self, _email: &Email) -> Result<()> {
        Err(AppError::Unavailable("redis: connection refused".into()))
    }
}

/// The real hasher, counting verifications.
struct CountingHasher {
    inner: Argon2Hasher,
    verified: AtomicUsize,
}

#[async_trait]
impl PasswordHasher for CountingHasher {
    async fn hash(&self, password: String) -> Result<String> {
        self.inner.hash(password).await
    }

    async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.verified.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(password, hash).await
    }
}

struct Backends {
    redis: ConnectionManager,
    store: Arc<MySqlIdentityStore>,
    keys: SigningKeys,
    prefix: String,
}

async fn backends(env: &TestEnv) -> Backends {
    let url = env.create_schema("identity").await.unwrap();
    let config =
        Config::try_parse_from(["ordo-identity", "--database-url", &url, "--allow-plaintext-signing-keys"]).unwrap();
    let pool = ordo_identity::migrate(&config).await.unwrap();
    let redis = ConnectionManager::new(
        redis::aio::ConnectionManager::new(redis::Client::open(ordo_testkit::redis_url()).unwrap()).await.unwrap(),
    );
    let prefix = env.redis_prefix();
    let users = RedisUserCache::new(redis.clone(), prefix.clone());
    let store = Arc::new(MySqlIdentityStore::new(pool.clone(), OutboxSignal::default(), users));
    let keys = ordo_identity::signing_keys(&config, &pool).await.unwrap();
    Backends { redis, store, keys, prefix }
}

async fn service(
    backends: &Backends,
    sessions: Arc<dyn SessionCache>,
    throttle: Arc<dyn LoginThrottle>,
    hasher: Arc<dyn PasswordHasher>,
) -> IdentityService {
    let settings = IdentitySettings { refresh_ttl: time::Duration::days(30) };
    IdentityService::new(backends.store.clone(), sessions, throttle, hasher, backends.keys.clone(), settings)
        .await
        .unwrap()
}

fn caller_of(access_token: &str) -> Caller {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: AccessClaims =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    Caller {
        user_id: claims.sub.parse().unwrap(),
        session_id: claims.sid.parse().unwrap(),
        role: claims.role.clone(),
        claims: Arc::new(claims),
    }
}

async fn marker(backends: &Backends, session_id: Uuid) -> Option<String> {
    let mut redis = backends.redis.clone();
    redis::cmd("GET").arg(format!("{}session:{}", backends.prefix, session_id)).query_async(&mut redis).await.unwrap()
}

#[tokio::test]
async fn marking_a_revoked_session_active_leaves_it_revoked() {
    let env = TestEnv::new();
    let backends = backends(&env).await;
    let cache = RedisSessionCache::new(backends.redis.clone(), backends.prefix.clone());
    let (revoked, fresh) = (Uuid::now_v7(), Uuid::now_v7());
    cache.mark_revoked(&[revoked]).await.unwrap();

    let revoked_written = cache.mark_active(revoked, 3600).await.unwrap();
    let fresh_written = cache.mark_active(fresh, 3600).await.unwrap();

    assert!(!revoked_written);
    assert_eq!(marker(&backends, revoked).await.as_deref(), Some("0"));
    assert!(fresh_written);
    assert_eq!(marker(&backends, fresh).await.as_deref(), Some("1"));
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_session_check_that_read_the_session_before_a_logout_cannot_bring_it_back() {
    let env = TestEnv::new();
    let backends = backends(&env).await;
    let sessions = Arc::new(HeldSessionCache {
        inner: RedisSessionCache::new(backends.redis.clone(), backends.prefix.clone()),
        hold: AtomicBool::new(false),
        reached: Notify::new(),
        release: Notify::new(),
    });
    let throttle = Arc::new(RedisLoginThrottle::new(backends.redis.clone(), backends.prefix.clone(), 5, 900));
    let identity = service(&backends, sessions.clone(), throttle, Arc::new(Argon2Hasher::new(1).unwrap())).await;
    let client = ClientInfo::default();
    identity.register("racer@example.com", PASSWORD, "Racer", &client).await.unwrap();
    let caller = caller_of(&identity.login("racer@example.com", PASSWORD, &client).await.unwrap().access_token);
    let sid = caller.session_id;

    // The check reads the live session from the database, then stops before caching it...
    sessions.hold.store(true, Ordering::SeqCst);
    let check = tokio::spawn({
        let identity = identity.clone();
        async move { identity.check_session(&sid.to_string()).await }
    });
    sessions.reached.notified().await;
    // ...while the logout commits and marks the session revoked; then the check goes on.
    identity.logout(&caller, &client).await.unwrap();
    sessions.release.notify_one();
    let active = check.await.unwrap().unwrap();

    assert_eq!(marker(&backends, sid).await.as_deref(), Some("0"), "the logout was undone in Redis");
    assert!(!active);
    sessions.hold.store(false, Ordering::SeqCst);
    assert!(!identity.check_session(&sid.to_string()).await.unwrap());
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_login_fails_closed_without_verifying_when_attempts_cannot_be_counted() {
    let env = TestEnv::new();
    let backends = backends(&env).await;
    let sessions = Arc::new(RedisSessionCache::new(backends.redis.clone(), backends.prefix.clone()));
    let hasher = Arc::new(CountingHasher { inner: Argon2Hasher::new(1).unwrap(), verified: AtomicUsize::new(0) });
    let identity = service(&backends, sessions, Arc::new(UnreachableThrottle), hasher.clone()).await;
    identity.register("closed@example.com", PASSWORD, "Closed", &ClientInfo::default()).await.unwrap();

    let result = identity.login("closed@example.com", PASSWORD, &ClientInfo::default()).await;

    assert!(matches!(result, Err(AppError::Unavailable(_))), "{result:?}");
    assert_eq!(hasher.verified.load(Ordering::SeqCst), 0);
    env.cleanup().await.unwrap();
}
