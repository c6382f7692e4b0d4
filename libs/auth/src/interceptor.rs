//! The caller of an RPC ([`Caller`], found with [`caller`]) and the synchronous tonic interceptor
//! that verifies a bearer token's signature only. Services use [`crate::AuthenticateLayer`], which
//! also checks the token's session; the interceptor is for callers that cannot await.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::{AccessClaims, KeyStore};

/// The authenticated caller of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id (`sub`).
    pub user_id: uuid::Uuid,
    /// The session id (`sid`).
    pub session_id: uuid::Uuid,
    /// The global role the token carries.
    pub role: String,
    /// The verified claims.
    pub claims: Arc<AccessClaims>,
}

impl Caller {
    fn from_claims(claims: Arc<AccessClaims>) -> Option<Self> {
        Some(Self {
            user_id: uuid::Uuid::parse_str(&claims.sub).ok()?,
            session_id: uuid::Uuid::parse_str(&claims.sid).ok()?,
            role: claims.role.clone(),
            claims,
        })
    }
}

/// Verifies `authorization: Bearer <token>` when present and stores the [`Caller`] in the request's
/// extensions. A request without the header passes on without a caller (some RPCs are public); a
/// request with a bad token is refused here.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: KeyStore,
}

impl Authenticator {
    /// An interceptor verifying against `keys`.
    pub fn new(keys: KeyStore) -> Self {
        Self { keys }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Ok(request);
        };
        let caller = caller_from_metadata(&self.keys, value.to_str().ok())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller named by `authorization` metadata (`Bearer <token>`), its token verified against
/// `keys` (signature, type, issuer, lifetime; not the session).
fn caller_from_metadata(keys: &KeyStore, authorization: Option<&str>) -> Result<Caller, Status> {
    let token = bearer_token(authorization)?;
    let claims = keys.verify(token).map_err(|_| Status::unauthenticated("invalid access token"))?;
    caller_from_claims(claims)
}

/// The token of `authorization` metadata (`Bearer <token>`).
pub(crate) fn bearer_token(authorization: Option<&str>) -> Result<&str, Status> {
    authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("malformed authorization metadata"))
}

/// The caller a verified token names.
pub(crate) fn caller_from_claims(claims: Arc<AccessClaims>) -> Result<Caller, Status> {
    Caller::from_claims(claims).ok_or_else(|| Status::unauthenticated("invalid access token"))
}

/// The caller's bearer credential as it came (`authorization` metadata), to ask another service on
/// the caller's behalf; `Unauthenticated` when the request carried none.
pub fn authorization<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Status::unauthenticated("an access token is required"))
}

/// The caller of an RPC that requires one; `Unauthenticated` when the request carried no token.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request.extensions().get::<Caller>().ok_or_else(|| Status::unauthenticated("an access token is required"))
}
