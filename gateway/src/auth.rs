//! Authentication of API callers. Every authenticated route takes a [`Caller`], which costs one local
//! token check and one Redis GET: the access token is verified against identity's public keys (the
//! [`AccessKeys`](crate::access_keys::AccessKeys) the shared state holds), then its session is looked
//! up in Redis (`<prefix>session:<sid>`, written by identity: `1` live, `0` revoked). When the key is
//! missing identity is asked (`CheckSession`) and trusted, so a revoked session is refused at once
//! whichever gateway instance the caller reaches. The session check runs on every request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use ordo_proto::identity::v1::CheckSessionRequest;
use tonic::metadata::{Ascii, MetadataValue};
use uuid::Uuid;

use crate::backend;
use crate::error::ApiError;
use crate::rate_limit::SessionSeen;
use crate::state::AppState;

/// The authenticated caller of a request: the token verified, its session live.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user id (`sub`); the idempotency scope of the caller's creating POSTs.
    pub(crate) user_id: Uuid,
    /// `Bearer <token>`, forwarded to the services, which verify it again.
    pub(crate) authorization: MetadataValue<Ascii>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::MissingToken)?;
        let token = bearer_token(header)?;
        let claims = state.keys().verify(token).await?;
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::InvalidToken)?;
        let authorization = forwarded_authorization(header, token)?;
        // The rate limiter read the session's key with its charge, in the same round trip.
        let seen = parts.extensions.get::<SessionSeen>().filter(|seen| seen.session_id == claims.sid);
        ensure_session_is_live(state, &claims.sid, &authorization, seen.map(|seen| seen.state)).await?;
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
        Ok(Self { user_id, authorization })
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer_token(header: &HeaderValue) -> Result<&str, ApiError> {
    let value = header.to_str().map_err(|_| ApiError::InvalidToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::InvalidToken);
    }
    Ok(token)
}

/// The `authorization` metadata for the services: the client's header as is when it is already in
/// canonical form (the common case, no formatting), rebuilt otherwise.
fn forwarded_authorization(header: &HeaderValue, token: &str) -> Result<MetadataValue<Ascii>, ApiError> {
    let bytes = header.as_bytes();
    let canonical = bytes.len() == "Bearer ".len() + token.len() && bytes.starts_with(b"Bearer ");
    let value = if canonical {
        MetadataValue::try_from(bytes)
    } else {
        MetadataValue::try_from(format!("Bearer {token}").as_bytes())
    };
    value.map_err(|_| ApiError::InvalidToken)
}

/// Refuses the request unless session `sid` is live. `seen`: the session key's value as this
/// request already read it from Redis, if it did.
#[tracing::instrument(level = "debug", skip_all, fields(session_id = %session_id))]
async fn ensure_session_is_live(
    state: &AppState,
    session_id: &str,
    authorization: &MetadataValue<Ascii>,
    seen: Option<Option<i64>>,
) -> Result<(), ApiError> {
    let cached: Result<Option<i64>, redis::RedisError> = match seen {
        Some(value) => Ok(value),
        None => {
            let key = format!("{}session:{}", state.redis_prefix(), session_id);
            redis::cmd("GET").arg(&key).query_async(&mut state.redis()).await
        }
    };
    let live = match cached {
        Ok(Some(1)) => true,
        Ok(Some(0)) => false,
        Ok(_) => ask_identity(state, session_id, authorization).await?,
        Err(error) => {
            // Identity holds the truth (MySQL); Redis is only its fast copy.
            tracing::warn!(%error, "session lookup in Redis failed; asking identity");
            ask_identity(state, session_id, authorization).await?
        }
    };
    if live { Ok(()) } else { Err(ApiError::InvalidToken) }
}

#[tracing::instrument(level = "debug", skip_all)]
async fn ask_identity(
    state: &AppState,
    session_id: &str,
    authorization: &MetadataValue<Ascii>,
) -> Result<bool, ApiError> {
    let request = backend::on_behalf_of(authorization, CheckSessionRequest { session_id: session_id.to_owned() });
    // A session identity does not know is refused like every other bad token, with the same body
    // and challenge, so the answer does not tell which check failed.
    match state.identity().check_session(request).await {
        Ok(response) => Ok(response.into_inner().active),
        Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(false),
        Err(status) => Err(status.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&HeaderValue::from_static("bearer abc.def.ghi")).unwrap(), "abc.def.ghi");
        assert_eq!(bearer_token(&HeaderValue::from_static("Bearer abc.def.ghi")).unwrap(), "abc.def.ghi");
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_refused() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "abc.def.ghi"] {
            assert!(bearer_token(&HeaderValue::from_static(value)).is_err(), "{value}");
        }
    }

    #[test]
    fn the_forwarded_authorization_is_canonical() {
        let header = HeaderValue::from_static("bearer   abc.def");
        let token = bearer_token(&header).unwrap();
        assert_eq!(forwarded_authorization(&header, token).unwrap(), "Bearer abc.def");

        let header = HeaderValue::from_static("Bearer abc.def");
        assert_eq!(forwarded_authorization(&header, "abc.def").unwrap(), "Bearer abc.def");
    }
}
