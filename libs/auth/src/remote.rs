//! Identity's public keys for every process that verifies tokens without being identity (the
//! services and the gateway): fetched from `GetJwks` at start, fetched again every refresh interval
//! (so the next key of a rotation, which identity publishes before it signs with it, is held before
//! the first token it signs arrives), and fetched again when a token names a key not held, at most
//! once per [`MIN_REFETCH_INTERVAL`] (made-up key ids must not make a verifier hammer identity). Each
//! fetched set is merged into the held keys ([`HeldKeys`]), never replaces them: a key still in use
//! is not dropped because one answer lacked it. `/readyz` reports not ready until the keys are in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use ordo_platform::ReadinessCheck;
use ordo_proto::identity::v1::GetJwksRequest;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::held::HeldKeys;
use crate::{AccessClaims, KeySet, KeyStore, TokenError};

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Identity did not answer.
    #[error("identity: {0}")]
    Identity(#[from] tonic::Status),
    /// Identity answered with a key set that does not parse.
    #[error("identity sent an unreadable key set: {0}")]
    Unreadable(#[from] serde_json::Error),
}

/// Why a token was not verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token is not valid (with every key held, and after a fetch if it named an unknown one).
    #[error(transparent)]
    Refused(#[from] TokenError),
    /// The token names a key not held, and identity's keys could not be fetched lately: the token
    /// may well be good, so this is not an authentication failure.
    #[error("identity's keys could not be fetched lately")]
    KeysUnavailable,
}

/// A client of the identity service that carries the current trace context.
pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, ordo_platform::grpc::TraceInterceptor>>;

/// A lazily connected client of identity at `url`, every call bounded by `timeout`.
pub fn identity_client(url: &str, timeout: Duration) -> Result<IdentityClient, tonic::transport::Error> {
    let channel = ordo_platform::grpc::lazy_channel(url, timeout)?;
    Ok(IdentityServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _))
}

/// How often the key set is fetched again by default: identity publishes a new key longer than this
/// before it signs with it (README: signing-key rotation).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest time between two fetches for a token naming an unknown key.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// How soon a failed periodic fetch is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest refresh interval taken (a test's); a shorter one would only load identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// Identity's public keys in a [`KeyStore`] (what tokens are verified against), fetched from
/// `GetJwks`, kept fresh in the background and on demand.
#[derive(Clone)]
pub struct IdentityKeys {
    client: IdentityClient,
    store: KeyStore,
    refresh_interval: Duration,
    state: Arc<tokio::sync::Mutex<FetchState>>,
    loaded: Arc<AtomicBool>,
}

/// What the fetches share: the held keys, and when the last fetch was and whether it failed (the
/// rate limit of fetches for unknown keys).
#[derive(Debug, Default)]
struct FetchState {
    held: HeldKeys,
    last_attempt: Option<Instant>,
    last_failed: bool,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("keys", &self.store.current())
            .field("refresh_interval", &self.refresh_interval)
            .field("loaded", &self.loaded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl IdentityKeys {
    /// No keys yet, to be fetched from `client` every `refresh_interval` (and on demand).
    pub fn new(client: IdentityClient, refresh_interval: Duration) -> Self {
        Self {
            client,
            store: KeyStore::default(),
            refresh_interval: refresh_interval.max(MIN_REFRESH_INTERVAL),
            state: Arc::default(),
            loaded: Arc::default(),
        }
    }

    /// The store tokens are verified against.
    pub fn store(&self) -> KeyStore {
        self.store.clone()
    }

    /// Fetches the key set once and merges it into the held keys.
    pub async fn fetch(&self) -> Result<(), FetchError> {
        let mut state = self.state.lock().await;
        self.fetch_locked(&mut state).await
    }

    async fn fetch_locked(&self, state: &mut FetchState) -> Result<(), FetchError> {
        state.last_attempt = Some(Instant::now());
        let fetched = self.get_jwks().await;
        state.last_failed = fetched.is_err();
        let fetched = fetched?;
        // A key missing from the answers is dropped once it has been missing for a refresh interval:
        // from two fetches at least, a refresh interval apart.
        if state.held.merge(&fetched, Instant::now(), self.refresh_interval) {
            let keys = KeySet::from_jwks(&state.held.jwks());
            tracing::info!(?keys, "holding the access-token keys");
            self.store.replace(keys);
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn get_jwks(&self) -> Result<JwkSet, FetchError> {
        let response = self.client.clone().get_jwks(GetJwksRequest {}).await?;
        Ok(serde_json::from_str(&response.into_inner().jwks_json)?)
    }

    /// Verifies `token` (see [`KeyStore::verify`]); when it names a key not held, fetches the keys
    /// first, unless they were fetched less than [`MIN_REFETCH_INTERVAL`] ago.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        match self.store.verify(token) {
            Err(TokenError::UnknownKey) => {
                self.fetch_for(token).await?;
                Ok(self.store.verify(token)?)
            }
            verified => Ok(verified?),
        }
    }

    /// Fetches the key set if `token`'s key is not held and the last fetch is old enough.
    async fn fetch_for(&self, token: &str) -> Result<(), VerifyError> {
        let kid = KeySet::token_kid(token)?;
        let mut state = self.state.lock().await;
        // Another request may have fetched the key while this one waited for the lock.
        if self.store.current().contains(&kid) {
            return Ok(());
        }
        if let Some(at) = state.last_attempt
            && at.elapsed() < MIN_REFETCH_INTERVAL
        {
            return if state.last_failed { Err(VerifyError::KeysUnavailable) } else { Ok(()) };
        }
        self.fetch_locked(&mut state).await.map_err(|error| {
            tracing::warn!(%error, "could not fetch the access-token keys");
            VerifyError::KeysUnavailable
        })
    }

    /// Keeps the keys fresh until `shutdown`: a fetch every refresh interval, every second after a
    /// failure.
    pub async fn refresh(self, shutdown: CancellationToken) {
        loop {
            let wait = match self.fetch().await {
                Ok(()) => self.refresh_interval,
                Err(error) => {
                    tracing::warn!(%error, "could not fetch the access-token keys");
                    RETRY_INTERVAL.min(self.refresh_interval)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl ReadinessCheck for IdentityKeys {
    fn name(&self) -> &str {
        "identity-keys"
    }

    fn check(&self) -> BoxFuture<'_, std::result::Result<(), String>> {
        let loaded = self.loaded.load(Ordering::Acquire);
        Box::pin(
            async move { if loaded { Ok(()) } else { Err("the access-token keys are not loaded yet".to_owned()) } },
        )
    }
}
