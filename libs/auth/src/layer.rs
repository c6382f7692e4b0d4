//! The tower layer every service puts around its gRPC server: it verifies the bearer token the
//! gateway forwards *and* the token's session ([`Sessions`]), then hands the [`Caller`] to the RPC in
//! the request's extensions (tonic copies them into `tonic::Request::extensions()`, where
//! [`crate::caller`] finds it). A service verifies against identity's keys as it holds them
//! ([`IdentityKeys`], fetched again when a token names a key not held); identity against its own. It is a layer rather than a tonic interceptor because interceptors
//! are synchronous and the session check needs Redis or identity. A request without `authorization`
//! metadata passes on without a caller (some RPCs are public; those that need one refuse it).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tower::{Layer, Service};

use crate::interceptor::{bearer_token, caller_from_claims};
use crate::remote::{IdentityKeys, VerifyError};
use crate::session::{Liveness, SessionError, Sessions};
use crate::{Caller, KeyStore};

/// Verifies tokens against `keys` and their sessions with `sessions`.
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    keys: Keys,
    sessions: Sessions,
}

/// The keys tokens are verified against.
#[derive(Debug, Clone)]
enum Keys {
    /// Identity's own, which it keeps up to date itself.
    Own(KeyStore),
    /// Identity's, as fetched from it (shared: the layer is cloned for every request).
    Identity(Arc<IdentityKeys>),
}

impl AuthenticateLayer {
    /// A layer verifying against `keys` (identity's own) and `sessions`.
    pub fn new(keys: KeyStore, sessions: Sessions) -> Self {
        Self { keys: Keys::Own(keys), sessions }
    }

    /// A layer verifying against identity's keys as fetched from it, and `sessions`.
    pub fn with_identity_keys(keys: IdentityKeys, sessions: Sessions) -> Self {
        Self { keys: Keys::Identity(Arc::new(keys)), sessions }
    }

    /// The caller of a request carrying `authorization` (a `Bearer` token): `Unauthenticated` for a
    /// bad token or a revoked session, `Unavailable` when the session cannot be checked (or the token
    /// names a key not held and identity's keys cannot be fetched).
    pub async fn authenticate(&self, authorization: &http::HeaderValue) -> Result<Caller, Status> {
        let token = bearer_token(authorization.to_str().ok())?;
        let claims = match &self.keys {
            Keys::Own(keys) => keys.verify(token).map_err(|_| invalid_token()),
            Keys::Identity(keys) => keys.verify(token).await.map_err(|error| match error {
                VerifyError::Refused(_) => invalid_token(),
                VerifyError::KeysUnavailable => {
                    Status::unavailable("the token keys could not be fetched; retry shortly")
                }
            }),
        }?;
        let caller = caller_from_claims(claims)?;
        match self.sessions.check(caller.session_id).await {
            Ok(Liveness::Live) => Ok(caller),
            Ok(Liveness::Revoked) => Err(Status::unauthenticated("the session has ended")),
            Err(SessionError::Unavailable(cause)) => {
                tracing::warn!(%cause, "the session could not be checked");
                Err(Status::unavailable("the session could not be checked; retry shortly"))
            }
        }
    }
}

fn invalid_token() -> Status {
    Status::unauthenticated("invalid access token")
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, layer: self.clone() }
    }
}

/// The service built by [`AuthenticateLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    layer: AuthenticateLayer,
}

impl<S, B, ResBody> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(authorization) = request.headers().get(http::header::AUTHORIZATION).cloned() else {
            return Box::pin(self.inner.call(request));
        };
        // The clone is not ready; the service that was polled ready goes with this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.authenticate(&authorization).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
