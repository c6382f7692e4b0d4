//! Identity's public keys, which verify access tokens: fetched lazily, and again when a token names a
//! key we do not know, at most once per [`MIN_REFETCH_INTERVAL`]. Tokens that verified are remembered
//! by [`KeyStore::verify`], since the Ed25519 check is the largest cost of an authenticated request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_auth::{AccessClaims, KeySet, KeyStore, TokenError};
use ordo_proto::identity::v1::GetJwksRequest;

use crate::backend::{self, IdentityClient};
use crate::error::ApiError;

/// The shortest time between two fetches of the key set, so tokens naming made-up key ids cannot
/// make the gateway hammer identity.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// Identity's public keys, fetched on demand.
pub(crate) struct AccessKeys {
    store: KeyStore,
    identity: IdentityClient,
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeys").field("keys", &self.store.current()).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_failed: bool,
}

impl AccessKeys {
    /// An empty key set, filled from `identity` on first use.
    pub(crate) fn new(identity: IdentityClient) -> Self {
        Self { store: KeyStore::default(), identity, refresh: tokio::sync::Mutex::new(RefreshState::default()) }
    }

    /// Verifies an access token: signature (EdDSA only), `typ`, `iss`, `exp`.
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, ApiError> {
        match self.store.verify(token) {
            Ok(claims) => Ok(claims),
            Err(TokenError::UnknownKey) => {
                self.refresh_for(token).await?;
                self.store.verify(token).map_err(refused)
            }
            Err(error) => Err(refused(error)),
        }
    }

    /// Fetches the key set again if `token`'s key is unknown and the last fetch is old enough.
    async fn refresh_for(&self, token: &str) -> Result<(), ApiError> {
        let kid = KeySet::token_kid(token).map_err(|_| ApiError::InvalidToken)?;
        let mut refresh = self.refresh.lock().await;
        // Another request may have fetched the key while this one waited for the lock.
        if self.store.current().contains(&kid) {
            return Ok(());
        }
        if let Some(at) = refresh.last_attempt
            && at.elapsed() < MIN_REFETCH_INTERVAL
        {
            return if refresh.last_failed {
                Err(ApiError::Unavailable("the signing keys could not be fetched recently".to_owned()))
            } else {
                Err(ApiError::InvalidToken)
            };
        }
        refresh.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                // Replacing also forgets the tokens a withdrawn key verified.
                self.store.replace(keys);
                refresh.last_failed = false;
                Ok(())
            }
            Err(error) => {
                refresh.last_failed = true;
                Err(error)
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn fetch(&self) -> Result<KeySet, ApiError> {
        let response = self.identity.clone().get_jwks(backend::anonymous(GetJwksRequest {})).await?;
        let keys = KeySet::from_jwks_json(&response.into_inner().jwks_json)
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("identity sent an unreadable key set: {error}")))?;
        tracing::info!(?keys, "fetched the access-token keys");
        Ok(keys)
    }
}

fn refused(error: TokenError) -> ApiError {
    tracing::debug!(%error, "access token refused");
    ApiError::InvalidToken
}
