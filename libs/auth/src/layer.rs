//! The tower layer every service puts around its gRPC server: it verifies the bearer token the
//! gateway forwards *and* the token's session ([`Sessions`]), then hands the [`Caller`] to the RPC in
//! the request's extensions (tonic copies them into `tonic::Request::extensions()`, where
//! [`crate::caller`] finds it). It is a layer rather than a tonic interceptor because interceptors
//! are synchronous and the session check needs Redis or identity. A request without `authorization`
//! metadata passes on without a caller (some RPCs are public; those that need one refuse it).

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tower::{Layer, Service};

use crate::interceptor::caller_from_metadata;
use crate::session::{Liveness, SessionError, Sessions};
use crate::{Caller, KeyStore};

/// Verifies tokens against `keys` and their sessions with `sessions`.
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    keys: KeyStore,
    sessions: Sessions,
}

impl AuthenticateLayer {
    /// A layer verifying against `keys` and `sessions`.
    pub fn new(keys: KeyStore, sessions: Sessions) -> Self {
        Self { keys, sessions }
    }

    /// The caller of a request carrying `authorization` (a `Bearer` token): `Unauthenticated` for a
    /// bad token or a revoked session, `Unavailable` when the session cannot be checked.
    pub async fn authenticate(&self, authorization: &http::HeaderValue) -> Result<Caller, Status> {
        let caller = caller_from_metadata(&self.keys, authorization.to_str().ok())?;
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
