//! The JSON of `/auth`: the bodies its routes read, and the tokens and key set they answer with.

use ordo_proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::routes::representation::malformed;

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    /// Trimmed and lower-cased before it is stored; valid syntax, at most 254 characters; unique.
    #[schema(format = Email, max_length = 254, example = "alice@example.com")]
    pub(super) email: String,
    /// 12 to 128 characters.
    #[schema(format = Password, min_length = 12, max_length = 128, example = "correct horse battery")]
    pub(super) password: String,
    /// 1 to 100 characters after trimming.
    #[schema(min_length = 1, max_length = 100, example = "Alice")]
    pub(super) display_name: String,
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// The account's email (any letter case).
    #[schema(format = Email, example = "alice@example.com")]
    pub(super) email: String,
    /// The password.
    #[schema(format = Password, example = "correct horse battery")]
    pub(super) password: String,
}

/// A refresh token to spend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    /// The refresh token of the latest pair of the session.
    pub(super) refresh_token: String,
}

/// An access and refresh token pair.
#[derive(Clone, Serialize, ToSchema)]
pub(crate) struct TokenPair {
    /// A JWT (EdDSA) to send as `Authorization: Bearer <access_token>`.
    pub(crate) access_token: String,
    /// An opaque token for `POST /auth/refresh`; spent when used.
    pub(crate) refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub(crate) token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub(crate) expires_in: i64,
    /// Seconds until the refresh token expires.
    #[schema(example = 2_592_000)]
    pub(crate) refresh_expires_in: i64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

impl TokenPair {
    pub(crate) fn from_proto(tokens: Option<pb::TokenPair>) -> Result<Self, ApiError> {
        let tokens = tokens.ok_or_else(|| malformed("a response without its tokens"))?;
        Ok(Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
        })
    }
}

/// A JSON Web Key Set (RFC 7517), documentation only: the gateway passes identity's document through.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct JwkSet {
    /// The keys that verify access tokens (the one signing now first, then the next and the previous
    /// keys of a rotation); a token names its key in the `kid` header.
    keys: Vec<Jwk>,
}

/// One Ed25519 public key (RFC 8037), documentation only.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwk {
    /// `OKP`.
    #[schema(example = "OKP")]
    kty: String,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    /// The key id.
    kid: String,
    /// `EdDSA`.
    #[schema(example = "EdDSA")]
    alg: String,
    /// `sig`.
    #[schema(rename = "use", example = "sig")]
    key_use: String,
}
