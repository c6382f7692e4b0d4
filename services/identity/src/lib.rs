//! Ordo's identity service: users, credentials (argon2id), sessions, access and refresh tokens, and
//! the JSON Web Key Set that lets every other process verify tokens on its own.
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use ordo_auth::session::{SessionAuthority, SessionError};
use ordo_auth::{AuthenticateLayer, KeySet, KeyStore, TokenIssuer};
use ordo_events::OutboxSignal;
use ordo_platform::config::Secret;
use ordo_proto::identity::v1::identity_service_server::IdentityServiceServer;
pub use ordo_service::Command;
use ordo_service::{Backends, CancellationToken, Listeners, Server};

use crate::app::{IdentityService, IdentitySettings};
use crate::infra::{Argon2Hasher, MySqlIdentityStore, RedisLoginThrottle, RedisSessionCache, RedisUserCache};

ordo_service::config! {
    /// Every setting of the identity service, from flags or `ORDO_*` environment variables.
    #[service(name = "identity", grpc_port = 50051, ops_port = 9101, serve = serve)]
    pub struct Config {

        /// Ed25519 signing key, base64 of PKCS#8 DER; when unset, a key generated at first start is kept
        /// in the database and shared by every instance.
        #[arg(long, env = "ORDO_JWT_PRIVATE_KEY", hide_env_values = true)]
        pub jwt_private_key: Option<Secret<String>>,
        /// Access token lifetime, seconds.
        #[arg(long, env = "ORDO_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
        pub access_token_ttl_secs: i64,
        /// Refresh token (and idle session) lifetime, seconds.
        #[arg(long, env = "ORDO_REFRESH_TOKEN_TTL_SECS", default_value_t = 2_592_000)]
        pub refresh_token_ttl_secs: i64,
        /// Failed logins for one email before it is locked out.
        #[arg(long, env = "ORDO_LOGIN_MAX_FAILURES", default_value_t = 5)]
        pub login_max_failures: u64,
        /// The lockout window, seconds.
        #[arg(long, env = "ORDO_LOGIN_WINDOW_SECS", default_value_t = 900)]
        pub login_window_secs: u64,
        /// Password hashes computed at once (default: half the cores, at least one).
        #[arg(long, env = "ORDO_HASH_CONCURRENCY")]
        pub hash_concurrency: Option<usize>,
    }
}

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    Backends::migrate(&config.service, &MIGRATOR).await
}

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut server, backends) = Server::start("identity", &config.service, &MIGRATOR, shutdown).await?;
    let (pool, redis, prefix) = (&backends.pool, &backends.redis, &config.service.redis.prefix);

    let key = infra::signing_key::load(pool, config.jwt_private_key.as_ref().map(|k| k.expose().as_str()))
        .await
        .context("load the signing key")?;
    let issuer = Arc::new(TokenIssuer::new(key, config.access_token_ttl_secs));
    let keys = KeyStore::new(KeySet::from_jwks(&issuer.jwks()));

    let signal = OutboxSignal::default();
    let hash_concurrency = config
        .hash_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1));
    let service = IdentityService::new(
        Arc::new(MySqlIdentityStore::new(
            pool.clone(),
            signal.clone(),
            RedisUserCache::new(redis.clone(), prefix.clone()),
        )),
        Arc::new(RedisSessionCache::new(redis.clone(), prefix.clone())),
        Arc::new(RedisLoginThrottle::new(
            redis.clone(),
            prefix.clone(),
            config.login_max_failures,
            config.login_window_secs,
        )),
        Arc::new(Argon2Hasher::new(hash_concurrency)?),
        issuer,
        IdentitySettings { refresh_ttl: time::Duration::seconds(config.refresh_token_ttl_secs) },
    )
    .await?;

    server.spawn_relay(&config.service, pool, signal)?;

    // Identity is the source of truth about its sessions: a missing marker is looked up in its own
    // store, not asked of itself over the network.
    let sessions = backends.sessions(&config.service, Arc::new(OwnSessions(service.clone())));
    let readiness = backends.readiness();
    server.add_service(IdentityServiceServer::new(grpc::IdentityGrpc::new(service)));
    server.serve(listeners, readiness, AuthenticateLayer::new(keys, sessions), backends.pool).await
}

/// Identity's own answer about a session: its store (MySQL), which also writes the marker again.
#[derive(Debug, Clone)]
struct OwnSessions(IdentityService);

impl SessionAuthority for OwnSessions {
    fn is_live(&self, session_id: uuid::Uuid) -> Pin<Box<dyn Future<Output = Result<bool, SessionError>> + Send + '_>> {
        Box::pin(async move {
            self.0
                .check_session(&session_id.to_string())
                .await
                .map_err(|error| SessionError::Unavailable(error.to_string()))
        })
    }
}
