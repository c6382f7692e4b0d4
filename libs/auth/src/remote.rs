//! Identity's public keys for the services that verify tokens without being identity: fetched from
//! `GetJwks` at start, kept fresh in the background, and reported by `/readyz` until loaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use ordo_platform::ReadinessCheck;
use ordo_proto::identity::v1::GetJwksRequest;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{KeySet, KeyStore};

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Identity did not answer.
    #[error("identity: {0}")]
    Identity(#[from] tonic::Status),
    /// Identity answered with a key set that does not parse.
    #[error("identity sent an unreadable key set: {0}")]
    Unreadable(#[from] crate::TokenError),
}

/// A client of the identity service that carries the current trace context.
pub type IdentityClient = IdentityServiceClient<InterceptedService<Channel, ordo_platform::grpc::TraceInterceptor>>;

/// A lazily connected client of identity at `url`, every call bounded by `timeout`.
pub fn identity_client(url: &str, timeout: Duration) -> Result<IdentityClient, tonic::transport::Error> {
    let channel = ordo_platform::grpc::lazy_channel(url, timeout)?;
    Ok(IdentityServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _))
}

/// How often the key set is fetched again once loaded (a rotated key is picked up within this).
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How soon a failed fetch is tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Identity's public keys in a [`KeyStore`] (what the gRPC interceptor verifies against), loaded
/// from `GetJwks` and refreshed in the background.
#[derive(Clone)]
pub struct IdentityKeys {
    client: IdentityClient,
    store: KeyStore,
    loaded: Arc<AtomicBool>,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys").field("loaded", &self.loaded.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl IdentityKeys {
    /// Empty keys, to be loaded from `client`.
    pub fn new(client: IdentityClient) -> Self {
        Self { client, store: KeyStore::default(), loaded: Arc::default() }
    }

    /// The store the interceptor verifies against.
    pub fn store(&self) -> KeyStore {
        self.store.clone()
    }

    /// Fetches the key set once; replaces the store's only when it changed, so the memory of
    /// verified tokens survives routine refreshes.
    pub async fn fetch(&self, last: &mut String) -> Result<(), FetchError> {
        let response = self.client.clone().get_jwks(GetJwksRequest {}).await?;
        let json = response.into_inner().jwks_json;
        if json != *last {
            let keys = KeySet::from_jwks_json(&json)?;
            tracing::info!(?keys, "loaded the access-token keys");
            self.store.replace(keys);
            *last = json;
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Keeps the keys fresh until `shutdown`.
    pub async fn refresh(self, mut last: String, shutdown: CancellationToken) {
        loop {
            let wait = match self.fetch(&mut last).await {
                Ok(()) => REFRESH_INTERVAL,
                Err(error) => {
                    tracing::warn!(%error, "could not fetch the access-token keys");
                    RETRY_INTERVAL
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
