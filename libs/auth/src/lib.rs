//! Access tokens: Ed25519-signed JWTs (RFC 9068 `at+jwt`) issued by identity and verified by the
//! gateway and by every service again (zero trust between services). The algorithm is pinned to
//! EdDSA; `iss`, `exp` and the `typ` header are checked, so `alg: none`, HMAC tokens signed with a
//! public key, and refresh tokens presented as access tokens are all refused.

mod held;
mod interceptor;
mod keys;
mod layer;
pub mod remote;
pub mod session;

use serde::{Deserialize, Serialize};

pub use held::{HeldKeys, MAX_HELD_KEYS};
pub use interceptor::{Authenticator, Caller, authorization, caller};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keys::{KeySet, KeyStore, LEEWAY_SECONDS, SigningKey, TokenIssuer, derived_kid, public_jwk};
pub use layer::{Authenticate, AuthenticateLayer};

/// The `iss` of every Ordo access token.
pub const ISSUER: &str = "ordo";
/// The JOSE `typ` header of an access token (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Always [`ISSUER`].
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The session id; revoking the session revokes the token.
    pub sid: String,
    /// The user's global role when the token was issued (`admin` or `member`).
    pub role: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// A unique token id.
    pub jti: String,
}

/// Why a token was refused. Callers answer every variant with the same `401`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is not a well-formed JWT or its header is not ours.
    #[error("malformed token")]
    Malformed,
    /// The token names a key we do not know.
    #[error("unknown signing key")]
    UnknownKey,
    /// The token is not an access token.
    #[error("not an access token")]
    WrongType,
    /// The signature, algorithm, issuer or lifetime is wrong.
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The token says it was issued, or becomes valid, in the future (beyond the clock leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The claims are not ours (for instance `sub` is not a UUID).
    #[error("invalid claims")]
    InvalidClaims,
    /// A key could not be built.
    #[error("key error: {0}")]
    Key(String),
}
