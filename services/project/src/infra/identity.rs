//! The identity service as this service sees it: the directory of accounts (does this user exist?)
//! and the public keys that verify access tokens, fetched at start and kept fresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use ordo_auth::{KeySet, KeyStore};
use ordo_platform::ReadinessCheck;
use ordo_platform::shutdown::CancellationToken;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::identity::v1::{GetJwksRequest, GetUserRequest};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use crate::app::ports::UserDirectory;
use crate::app::{AppError, Result};

/// A client of the identity service that carries the current trace context.
pub type IdentityClient =
    IdentityServiceClient<InterceptedService<Channel, fn(tonic::Request<()>) -> tonic::Result<tonic::Request<()>>>>;

/// A lazily connected client of identity at `url`, every call bounded by `timeout`.
pub fn client(url: &str, timeout: Duration) -> anyhow::Result<IdentityClient> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(timeout)
        .connect_lazy();
    Ok(IdentityServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _))
}

fn backend(status: &tonic::Status) -> AppError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            AppError::Unavailable(format!("identity: {}", status.message()))
        }
        _ => AppError::Internal(anyhow::anyhow!("identity answered {:?}: {}", status.code(), status.message())),
    }
}

/// The accounts identity knows, asked over gRPC on behalf of the caller.
#[derive(Clone)]
pub struct IdentityDirectory {
    client: IdentityClient,
}

impl std::fmt::Debug for IdentityDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityDirectory").finish_non_exhaustive()
    }
}

impl IdentityDirectory {
    /// A directory over `client`.
    pub fn new(client: IdentityClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl UserDirectory for IdentityDirectory {
    #[tracing::instrument(level = "debug", skip(self, authorization))]
    async fn user_exists(&self, authorization: &str, user_id: Uuid) -> Result<bool> {
        let mut request = tonic::Request::new(GetUserRequest { id: user_id.to_string() });
        let value = authorization
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the caller's authorization is not valid metadata")))?;
        request.metadata_mut().insert("authorization", value);
        match self.client.clone().get_user(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(backend(&status)),
        }
    }
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
    pub async fn fetch(&self, last: &mut String) -> Result<()> {
        let response = self.client.clone().get_jwks(GetJwksRequest {}).await.map_err(|s| backend(&s))?;
        let json = response.into_inner().jwks_json;
        if json != *last {
            let keys = KeySet::from_jwks_json(&json)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("identity sent an unreadable key set: {e}")))?;
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
