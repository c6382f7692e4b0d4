//! Ordo's identity service: users, credentials (argon2id), sessions, access and refresh tokens, and
//! the JSON Web Key Set that lets every other process verify tokens on its own.
//!
//! `main.rs` parses [`Config`] and calls [`serve`] (or [`rotate_key`]); tests call [`serve`] with
//! listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_auth::AuthenticateLayer;
use ordo_auth::session::{SessionAuthority, SessionError};
use ordo_events::OutboxSignal;
use ordo_platform::config::{Secret, parse_millis};
use ordo_proto::identity::v1::identity_service_server::IdentityServiceServer;
use ordo_service::{Backends, CancellationToken, Listeners, Server};
use sqlx::MySqlPool;
use time::OffsetDateTime;

use crate::app::ports::SigningKeyStore;
use crate::app::{IdentityService, IdentitySettings, RotationOutcome, SigningKeys};
use crate::infra::key_encryption::KeyEncryptionKey;
use crate::infra::signing_key::{ConfiguredSigningKey, KeyProtection, MySqlSigningKeys};
use crate::infra::{Argon2Hasher, MySqlIdentityStore, RedisLoginThrottle, RedisSessionCache, RedisUserCache};

ordo_service::config! {
    /// Every setting of the identity service, from flags or `ORDO_*` environment variables.
    #[service(name = "identity", grpc_port = 50051, ops_port = 9101, serve = serve, command = crate::Command)]
    pub struct Config {

        /// Ed25519 signing key, base64 of PKCS#8 DER. When unset, the keys are kept in the database,
        /// sealed with the key-encryption key, shared by every instance and rotated with `rotate-key`.
        #[arg(long, env = "ORDO_JWT_PRIVATE_KEY", hide_env_values = true)]
        pub jwt_private_key: Option<Secret<String>>,
        /// Public keys to publish beside the signing keys, which never sign here, comma-separated: each
        /// the base64url of a raw 32-byte Ed25519 public key (a JWK's `x`). For a rotation by
        /// configuration: the next key before it becomes `ORDO_JWT_PRIVATE_KEY`, then the previous one
        /// until its tokens have expired.
        #[arg(long, env = "ORDO_JWT_PUBLISHED_PUBLIC_KEYS", value_delimiter = ',')]
        pub jwt_published_public_keys: Vec<String>,
        /// Key-encryption key, base64 of 32 random bytes (`openssl rand -base64 32`): seals the signing
        /// keys kept in the database (AES-256-GCM). Without it and without `--jwt-private-key` the
        /// service refuses to start, unless `--allow-plaintext-signing-keys`.
        #[arg(long, env = "ORDO_KEY_ENCRYPTION_KEY", hide_env_values = true)]
        pub key_encryption_key: Option<Secret<String>>,
        /// The key-encryption key being replaced by `--key-encryption-key`: keys sealed with it are
        /// opened with it and sealed again with the new one.
        #[arg(long, env = "ORDO_PREVIOUS_KEY_ENCRYPTION_KEY", hide_env_values = true, requires = "key_encryption_key")]
        pub previous_key_encryption_key: Option<Secret<String>>,
        /// Development only: keep the signing keys in the database unencrypted when no key-encryption
        /// key is given.
        #[arg(long, env = "ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS", default_value_t = false)]
        pub allow_plaintext_signing_keys: bool,
        /// How often each instance reads the signing keys from the database, milliseconds (it also
        /// reads them when it starts a rotation). A rotation publishes its key longer than this before
        /// it signs.
        #[arg(long = "signing-key-reload-ms", env = "ORDO_SIGNING_KEY_RELOAD_MS", default_value = "30000", value_parser = parse_millis)]
        pub signing_key_reload: Duration,
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

/// A command other than serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Create the schema if needed, apply migrations, and exit.
    Migrate,
    /// Start a rotation of the token signing key: a new key is published at once and signs from
    /// `--activate-after-secs` on; the key it replaces stays published until its tokens have expired,
    /// so nobody is logged out. Prints the new key's `kid` and activation time as JSON. While a key
    /// waits to sign, that key is the rotation and nothing is added (so is it when two run at once).
    RotateKey {
        /// How long the new key is published before it signs, seconds: longer than every verifier's
        /// key refresh (`ORDO_JWKS_REFRESH_MS`, 60 s), the key set's HTTP cache lifetime (300 s) and
        /// `--signing-key-reload-ms` together.
        #[arg(long, env = "ORDO_KEY_ACTIVATE_AFTER_SECS", default_value_t = 600,
              value_parser = clap::value_parser!(u32).range(1..=2_592_000))]
        activate_after_secs: u32,
    },
}

/// The most public keys `--jwt-published-public-keys` takes (a next and a previous key need two).
const MAX_PUBLISHED_PUBLIC_KEYS: usize = 4;
/// The bounds of `--signing-key-reload-ms`.
const SIGNING_KEY_RELOAD: std::ops::RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(600);

/// Creates the schema if needed and applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<sqlx::MySqlPool> {
    Backends::migrate(&config.service, &MIGRATOR).await
}

/// The signing keys as `config` says: the configured key, or the keys kept in `pool`'s schema (the
/// first one made when there is none), with the configured public keys published beside them.
pub async fn signing_keys(config: &Config, pool: &MySqlPool) -> anyhow::Result<SigningKeys> {
    let published = published_public_keys(&config.jwt_published_public_keys)?;
    let (store, now) = (signing_key_store(config, pool)?, OffsetDateTime::now_utc());
    let keys = SigningKeys::load(store, config.access_token_ttl_secs, published, now).await?;
    Ok(keys.with_a_signing_key(now).await?)
}

/// Where the signing keys come from: the configuration, or `pool`'s schema.
fn signing_key_store(config: &Config, pool: &MySqlPool) -> anyhow::Result<Arc<dyn SigningKeyStore>> {
    Ok(match &config.jwt_private_key {
        Some(key) => Arc::new(ConfiguredSigningKey::from_base64(key.expose()).context("ORDO_JWT_PRIVATE_KEY")?),
        None => Arc::new(MySqlSigningKeys::new(pool.clone(), key_protection(config)?)),
    })
}

/// How the keys kept in the schema are protected: sealed with the key-encryption key, else plain if
/// development allows it, else the service does not start.
fn key_protection(config: &Config) -> anyhow::Result<KeyProtection> {
    match (&config.key_encryption_key, config.allow_plaintext_signing_keys) {
        (Some(kek), _) => Ok(KeyProtection::Sealed {
            current: {
                let kek = KeyEncryptionKey::from_base64(kek.expose()).context("ORDO_KEY_ENCRYPTION_KEY")?;
                tracing::info!(kek = kek.id_hex(), "the signing keys are sealed with the key-encryption key");
                Box::new(kek)
            },
            previous: match &config.previous_key_encryption_key {
                Some(kek) => Some(Box::new(
                    KeyEncryptionKey::from_base64(kek.expose()).context("ORDO_PREVIOUS_KEY_ENCRYPTION_KEY")?,
                )),
                None => None,
            },
        }),
        (None, true) => {
            tracing::warn!("the signing keys are kept unencrypted in the database (development only)");
            Ok(KeyProtection::Plaintext)
        }
        (None, false) => anyhow::bail!(
            "no key-encryption key: set ORDO_KEY_ENCRYPTION_KEY (base64 of 32 random bytes, `openssl rand -base64 32`) \
             to keep the signing keys sealed in the database, or ORDO_JWT_PRIVATE_KEY to configure the key; \
             ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS=true keeps them unencrypted, for development only"
        ),
    }
}

/// The keys of `--jwt-published-public-keys`.
fn published_public_keys(encoded: &[String]) -> anyhow::Result<Vec<ordo_auth::Jwk>> {
    let keys: Vec<&str> = encoded.iter().map(|key| key.trim()).filter(|key| !key.is_empty()).collect();
    anyhow::ensure!(
        keys.len() <= MAX_PUBLISHED_PUBLIC_KEYS,
        "ORDO_JWT_PUBLISHED_PUBLIC_KEYS: {} keys, at most {MAX_PUBLISHED_PUBLIC_KEYS}",
        keys.len()
    );
    keys.into_iter().map(|key| ordo_auth::public_jwk(key).context("ORDO_JWT_PUBLISHED_PUBLIC_KEYS")).collect()
}

/// Starts a rotation of the signing key in the schema of `config` (see [`Command::RotateKey`]): the
/// new key signs `activate_after` from now.
pub async fn rotate_key(config: &Config, activate_after: Duration) -> anyhow::Result<RotationOutcome> {
    anyhow::ensure!(
        config.jwt_private_key.is_none(),
        "the signing key is configured (ORDO_JWT_PRIVATE_KEY): rotate it by configuration (README: signing-key rotation)"
    );
    anyhow::ensure!(
        activate_after > config.signing_key_reload,
        "the new key must be published for longer than --signing-key-reload-ms, or an instance could miss it \
         before it signs"
    );
    let pool =
        ordo_platform::db::connect(config.service.database_url.expose(), 2).await.context("connect to the database")?;
    let rotated = async {
        let lead = time::Duration::try_from(activate_after).context("--activate-after-secs")?;
        let published = published_public_keys(&config.jwt_published_public_keys)?;
        let now = OffsetDateTime::now_utc();
        // On a schema without a key, the rotation makes the first one, which signs at once.
        let keys =
            SigningKeys::load(signing_key_store(config, &pool)?, config.access_token_ttl_secs, published, now).await?;
        Ok(keys.rotate(now, lead).await?)
    }
    .await;
    pool.close().await;
    rotated
}

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        SIGNING_KEY_RELOAD.contains(&config.signing_key_reload),
        "--signing-key-reload-ms must be between 100 and 600000"
    );
    let (mut server, backends) = Server::start("identity", &config.service, &MIGRATOR, shutdown).await?;
    app::describe_metrics();
    let (pool, redis, prefix) = (&backends.pool, &backends.redis, &config.service.redis.prefix);

    let keys = signing_keys(&config, pool).await.context("load the signing keys")?;
    if config.jwt_private_key.is_none() {
        // Every instance reads the keys again on its own, so all of them follow a rotation.
        let (reloading, interval) = (keys.clone(), config.signing_key_reload);
        server.spawn(move |shutdown| reloading.keep_fresh(interval, shutdown));
    }
    let verifier = keys.verifier();

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
        keys,
        IdentitySettings { refresh_ttl: time::Duration::seconds(config.refresh_token_ttl_secs) },
    )
    .await?;

    server.spawn_relay(&config.service, pool, signal)?;

    // Identity is the source of truth about its sessions: a missing marker is looked up in its own
    // store, not asked of itself over the network.
    let sessions = backends.sessions(&config.service, Arc::new(OwnSessions(service.clone())));
    let readiness = backends.readiness();
    server.add_service(IdentityServiceServer::new(grpc::IdentityGrpc::new(service)));
    server.serve(listeners, readiness, AuthenticateLayer::new(verifier, sessions), backends.pool).await
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
