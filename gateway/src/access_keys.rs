//! Identity's public keys, which verify access tokens: held as identity publishes them (fetched at
//! start and every `--jwks-refresh-ms`, so the next key of a rotation is held before it signs), and
//! fetched again when a token names a key not held, at most once per
//! [`MIN_REFETCH_INTERVAL`](ordo_auth::remote::MIN_REFETCH_INTERVAL). Tokens that verified are
//! remembered by [`KeyStore::verify`](ordo_auth::KeyStore::verify), since the Ed25519 check is the
//! largest cost of an authenticated request.

use std::sync::Arc;
use std::time::Duration;

use ordo_auth::AccessClaims;
use ordo_auth::remote::{IdentityKeys, VerifyError};
use tokio_util::sync::CancellationToken;

use crate::backend::IdentityClient;
use crate::error::ApiError;

/// Identity's public keys, as the gateway holds them.
#[derive(Debug)]
pub(crate) struct AccessKeys {
    keys: IdentityKeys,
}

impl AccessKeys {
    /// No keys yet: fetched from `identity` on first use and by [`AccessKeys::refresh`] every
    /// `refresh_interval`.
    pub(crate) fn new(identity: IdentityClient, refresh_interval: Duration) -> Self {
        Self { keys: IdentityKeys::new(identity, refresh_interval) }
    }

    /// Verifies an access token: signature (EdDSA only), `typ`, `iss`, `exp`.
    pub(crate) async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, ApiError> {
        self.keys.verify(token).await.map_err(|error| match error {
            VerifyError::Refused(error) => {
                tracing::debug!(%error, "access token refused");
                ApiError::InvalidToken
            }
            VerifyError::KeysUnavailable => {
                ApiError::Unavailable("the signing keys could not be fetched recently".to_owned())
            }
        })
    }

    /// Keeps the keys fresh until `shutdown`.
    pub(crate) async fn refresh(&self, shutdown: CancellationToken) {
        self.keys.clone().refresh(shutdown).await;
    }
}
