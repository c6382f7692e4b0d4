//! Whether the session behind an access token is still live, for every process that accepts tokens
//! (the gateway and every service), so a revoked token (logout, password change, disabled user, role
//! change) is refused everywhere and not only at the gateway.
//!
//! Identity writes a marker per session in Redis, `<prefix>session:<sid>`: `1` live, `0` revoked; a
//! missing marker means "ask identity" ([`SessionAuthority`], `CheckSession`, which reads MySQL and
//! writes the marker again). A live answer is remembered in-process for a short time (about a
//! second, bounded in size) so a hot token costs no Redis call per request; a revoked answer is not
//! remembered — it is final anyway, and the marker says so again. When Redis fails, identity is
//! asked; when identity fails too the check is `Unavailable`: a token is never accepted unchecked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ordo_platform::redis::ConnectionManager;
use ordo_proto::identity::v1::CheckSessionRequest;
use uuid::Uuid;

use crate::remote::IdentityClient;

/// The state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The session may be used.
    Live,
    /// The session was revoked, expired or never existed.
    Revoked,
}

/// Why the state of a session could not be told.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Neither Redis nor identity answered; refuse the request as unavailable (gRPC `Unavailable`,
    /// HTTP 503), never accept it.
    #[error("the session could not be checked: {0}")]
    Unavailable(String),
}

/// The source of truth about sessions, asked when the Redis marker is missing or unreadable.
pub trait SessionAuthority: Send + Sync + 'static {
    /// Whether session `session_id` is live.
    fn is_live(&self, session_id: Uuid) -> BoxFuture<'_, Result<bool, SessionError>>;
}

/// Identity's `CheckSession` over gRPC, for every process but identity. The call is made without the
/// caller's token (the RPC is public), each bounded by the client's timeout.
#[derive(Debug, Clone)]
pub struct RemoteSessions(IdentityClient);

impl RemoteSessions {
    /// Asks identity through `client`.
    pub fn new(client: IdentityClient) -> Self {
        Self(client)
    }
}

impl SessionAuthority for RemoteSessions {
    fn is_live(&self, session_id: Uuid) -> BoxFuture<'_, Result<bool, SessionError>> {
        let mut client = self.0.clone();
        Box::pin(async move {
            let request = CheckSessionRequest { session_id: session_id.to_string() };
            match client.check_session(request).await {
                Ok(response) => Ok(response.into_inner().active),
                Err(status) => Err(SessionError::Unavailable(format!("identity: {}", status.message()))),
            }
        })
    }
}

/// Tuning of [`Sessions`].
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// How long a live answer is reused without asking again; a revocation reaches this process
    /// within it.
    pub live_ttl: Duration,
    /// How many live answers are remembered at most.
    pub capacity: usize,
    /// The longest a Redis lookup may take before identity is asked instead.
    pub redis_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self { live_ttl: Duration::from_secs(1), capacity: 100_000, redis_timeout: Duration::from_millis(500) }
    }
}

/// The one session check of every process; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    redis: ConnectionManager,
    prefix: String,
    authority: Arc<dyn SessionAuthority>,
    settings: SessionSettings,
    /// Session ids answered live, with when that answer stops being reused.
    live: Mutex<HashMap<Uuid, Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("prefix", &self.inner.prefix)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Checks markers under `prefix` (the prefix identity writes with) in `redis`, then `authority`.
    pub fn new(
        redis: ConnectionManager,
        prefix: impl Into<String>,
        authority: Arc<dyn SessionAuthority>,
        settings: SessionSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                prefix: prefix.into(),
                authority,
                settings,
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether session `session_id` is live: a recent live answer, else the Redis marker, else the
    /// authority.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn check(&self, session_id: Uuid) -> Result<Liveness, SessionError> {
        if self.recently_live(session_id) {
            metrics::counter!("ordo_session_checks_total", "answered_by" => "memory").increment(1);
            return Ok(Liveness::Live);
        }
        let live = match self.marker(session_id).await {
            Ok(Some(1)) => {
                metrics::counter!("ordo_session_checks_total", "answered_by" => "redis").increment(1);
                true
            }
            Ok(Some(_)) => {
                metrics::counter!("ordo_session_checks_total", "answered_by" => "redis").increment(1);
                false
            }
            Ok(None) => self.ask_authority(session_id).await?,
            Err(error) => {
                // Identity holds the truth (MySQL); Redis is only its fast copy.
                tracing::warn!(%error, "session lookup in Redis failed; asking identity");
                self.ask_authority(session_id).await?
            }
        };
        if live {
            self.remember_live(session_id);
            Ok(Liveness::Live)
        } else {
            Ok(Liveness::Revoked)
        }
    }

    async fn marker(&self, session_id: Uuid) -> Result<Option<i64>, String> {
        let key = format!("{}session:{}", self.inner.prefix, session_id);
        let mut redis = self.inner.redis.clone();
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let lookup = get.query_async::<Option<i64>>(&mut redis);
        match tokio::time::timeout(self.inner.settings.redis_timeout, lookup).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    }

    async fn ask_authority(&self, session_id: Uuid) -> Result<bool, SessionError> {
        metrics::counter!("ordo_session_checks_total", "answered_by" => "identity").increment(1);
        self.inner.authority.is_live(session_id).await
    }

    fn recently_live(&self, session_id: Uuid) -> bool {
        let live = self.inner.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(&session_id).is_some_and(|until| *until > Instant::now())
    }

    fn remember_live(&self, session_id: Uuid) {
        let now = Instant::now();
        let mut live = self.inner.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.len() >= self.inner.settings.capacity {
            live.retain(|_, until| *until > now);
            // Still full of fresh answers: start over rather than grow (they are a second's worth).
            if live.len() >= self.inner.settings.capacity {
                live.clear();
            }
        }
        live.insert(session_id, now + self.inner.settings.live_ttl);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use ordo_testkit::{TcpProxy, TestEnv};

    use super::*;

    /// An authority with a fixed answer (or none) that counts its calls.
    #[derive(Default)]
    struct Counting {
        answer: Option<bool>,
        calls: AtomicUsize,
    }

    impl SessionAuthority for Counting {
        fn is_live(&self, _session_id: Uuid) -> BoxFuture<'_, Result<bool, SessionError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer;
            Box::pin(async move { answer.ok_or_else(|| SessionError::Unavailable("down".into())) })
        }
    }

    async fn redis(url: &str) -> ConnectionManager {
        let settings = ordo_platform::redis::RedisSettings {
            response_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_millis(200),
        };
        ordo_platform::redis::connect(url, &settings).await.unwrap()
    }

    async fn set_marker(env: &TestEnv, session_id: Uuid, value: &str) {
        let mut conn = redis(&ordo_testkit::redis_url()).await;
        redis::cmd("SET")
            .arg(format!("{}session:{session_id}", env.redis_prefix()))
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }

    fn sessions(env: &TestEnv, conn: ConnectionManager, authority: Arc<Counting>, live_ttl: Duration) -> Sessions {
        let settings = SessionSettings { live_ttl, capacity: 4, redis_timeout: Duration::from_millis(300) };
        Sessions::new(conn, env.redis_prefix(), authority, settings)
    }

    #[tokio::test]
    async fn a_revoked_marker_is_refused_without_asking_identity() {
        let env = TestEnv::new();
        let session_id = Uuid::now_v7();
        set_marker(&env, session_id, "0").await;
        let authority = Arc::new(Counting { answer: Some(true), ..Counting::default() });
        let sessions = sessions(&env, redis(&ordo_testkit::redis_url()).await, authority.clone(), Duration::ZERO);

        let liveness = sessions.check(session_id).await.unwrap();

        assert_eq!(liveness, Liveness::Revoked);
        assert_eq!(authority.calls.load(Ordering::SeqCst), 0);
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_marker_asks_identity() {
        let env = TestEnv::new();
        let authority = Arc::new(Counting { answer: Some(false), ..Counting::default() });
        let sessions = sessions(&env, redis(&ordo_testkit::redis_url()).await, authority.clone(), Duration::ZERO);

        let liveness = sessions.check(Uuid::now_v7()).await.unwrap();

        assert_eq!(liveness, Liveness::Revoked);
        assert_eq!(authority.calls.load(Ordering::SeqCst), 1);
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn a_hot_live_session_is_answered_from_memory_until_its_answer_expires() {
        // Arrange: live in Redis, checked once.
        let env = TestEnv::new();
        let session_id = Uuid::now_v7();
        set_marker(&env, session_id, "1").await;
        let authority = Arc::new(Counting::default());
        let sessions =
            sessions(&env, redis(&ordo_testkit::redis_url()).await, authority.clone(), Duration::from_secs(2));
        assert_eq!(sessions.check(session_id).await.unwrap(), Liveness::Live);

        // Act: revoked in Redis behind the memory's back.
        set_marker(&env, session_id, "0").await;
        let remembered = sessions.check(session_id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let after = sessions.check(session_id).await.unwrap();

        // Assert: the second check did not read Redis (it would have said revoked); the third did.
        assert_eq!(remembered, Liveness::Live);
        assert_eq!(after, Liveness::Revoked);
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn with_redis_down_identity_decides_and_without_identity_the_check_is_unavailable() {
        // Arrange: Redis behind a proxy, then cut.
        let env = TestEnv::new();
        let proxy = TcpProxy::redis().await.unwrap();
        let conn = redis(&proxy.redis_url()).await;
        let answering = Arc::new(Counting { answer: Some(true), ..Counting::default() });
        let silent = Arc::new(Counting::default());
        let with_identity = sessions(&env, conn.clone(), answering.clone(), Duration::ZERO);
        let without_identity = sessions(&env, conn, silent, Duration::ZERO);
        proxy.blackhole();
        let started = Instant::now();

        // Act
        let decided = with_identity.check(Uuid::now_v7()).await;
        let undecided = without_identity.check(Uuid::now_v7()).await;

        // Assert
        assert_eq!(decided.unwrap(), Liveness::Live);
        assert_eq!(answering.calls.load(Ordering::SeqCst), 1);
        assert!(matches!(undecided, Err(SessionError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        env.cleanup().await.unwrap();
    }

    #[tokio::test]
    async fn the_memory_stays_within_its_capacity() {
        let env = TestEnv::new();
        let authority = Arc::new(Counting { answer: Some(true), ..Counting::default() });
        let sessions =
            sessions(&env, redis(&ordo_testkit::redis_url()).await, authority.clone(), Duration::from_secs(60));

        for _ in 0..10 {
            sessions.check(Uuid::now_v7()).await.unwrap();
        }

        assert!(sessions.inner.live.lock().unwrap().len() <= 4);
        env.cleanup().await.unwrap();
    }
}
