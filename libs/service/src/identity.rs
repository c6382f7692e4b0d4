//! What a service other than identity needs from identity to authenticate its callers: the
//! access-token keys (waited for briefly at start, then refreshed in the background) and a client
//! for session checks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_auth::AuthenticateLayer;
use ordo_auth::remote::{IdentityClient, IdentityKeys};
use ordo_auth::session::{RemoteSessions, Sessions};

use crate::backends::Backends;
use crate::config::{ServiceArgs, UpstreamArgs};
use crate::server::{Listeners, Server};

/// How long the start waits for identity's keys before serving anyway: requests are refused as
/// unauthenticated, and `/readyz` says not ready, until they arrive.
const KEYS_AT_START: Duration = Duration::from_secs(5);

/// Identity's keys, kept fresh, and the client they come from.
#[derive(Debug)]
pub struct IdentityAuth {
    /// A client of identity (for session checks and whatever else the service asks it).
    pub client: IdentityClient,
    /// The keys tokens are verified against; also a readiness check.
    pub keys: IdentityKeys,
}

impl IdentityAuth {
    /// Connects to identity (lazily), waits up to a few seconds for its keys, and keeps them
    /// fresh for as long as `server` runs.
    pub async fn start(upstream: &UpstreamArgs, server: &mut Server) -> anyhow::Result<Self> {
        let client = ordo_auth::remote::identity_client(&upstream.identity_url, upstream.backend_timeout)
            .context("invalid --identity-url")?;
        let keys = IdentityKeys::new(client.clone(), upstream.jwks_refresh);
        match tokio::time::timeout(KEYS_AT_START, keys.fetch()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "identity's keys are not available yet; retrying in the background");
            }
            Err(_) => tracing::warn!("identity's keys are not available yet; retrying in the background"),
        }
        server.spawn(|shutdown| keys.clone().refresh(shutdown));
        Ok(Self { client, keys })
    }

    /// The layer that authenticates every RPC: the token against identity's keys (fetched again
    /// when a token names one not held), then its session (the marker identity writes, else
    /// identity's `CheckSession`), so an ended session is refused here too, not only at the gateway.
    pub fn layer(&self, args: &ServiceArgs, backends: &Backends) -> AuthenticateLayer {
        AuthenticateLayer::with_identity_keys(self.keys.clone(), self.sessions(args, backends))
    }

    /// Serves `server` as [`Server::serve`] does, every RPC authenticated with identity's keys and
    /// session checks, ready once `backends` answer and identity's keys are in.
    ///
    /// # Errors
    ///
    /// As [`Server::serve`].
    pub async fn serve(
        &self,
        server: Server,
        listeners: Listeners,
        args: &ServiceArgs,
        backends: Backends,
    ) -> anyhow::Result<()> {
        let readiness = backends.readiness().with(self.keys.clone());
        let authenticate = self.layer(args, &backends);
        server.serve(listeners, readiness, authenticate, backends.pool).await
    }

    /// The session check the layer uses (identity's marker in Redis, else identity's
    /// `CheckSession`), for work that outlives one call, such as a stream that must end with its
    /// session.
    pub fn sessions(&self, args: &ServiceArgs, backends: &Backends) -> Sessions {
        backends.sessions(args, Arc::new(RemoteSessions::new(self.client.clone())))
    }
}
