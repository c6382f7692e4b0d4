//! Extractors whose rejections are problem documents: JSON bodies (`415` without a JSON content type,
//! `413` over the limit, `400` when malformed, `422` naming the field when the shape or a type is
//! wrong), query strings (`400`), `If-Match` (`400` when malformed) and the client's address and user
//! agent for the audit trail.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::identity::v1::ClientInfo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// The largest JSON body accepted (API.md: 1 MiB).
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Longest `User-Agent` recorded; the rest is cut, so a client cannot bloat the audit log.
const MAX_USER_AGENT_CHARS: usize = 512;

/// A JSON request body (and, as a response, a JSON body).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON request body together with its raw bytes (to fingerprint the request for idempotency).
#[derive(Debug, Clone)]
pub(crate) struct JsonWithBytes<T> {
    /// The parsed body.
    pub(crate) value: T,
    /// The body as received.
    pub(crate) bytes: Bytes,
}

impl<S, T> FromRequest<S> for JsonWithBytes<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        let value = parse_json(&bytes)?;
        Ok(Self { value, bytes })
    }
}

/// Checks the content type and length, then reads the body.
async fn json_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json_content_type(request.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Refuse a declared oversize body before reading a byte of it.
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > JSON_BODY_LIMIT as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("The request body could not be read.".to_owned())
        }
    })
}

/// `application/json`, or any `application/*+json` (such as `application/merge-patch+json`).
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype.as_bytes()[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Parses a JSON body: `400` for malformed JSON, `422` naming the field for the wrong shape or type.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("Malformed JSON: {}", without_location(&error))))?;
    Ok(value)
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = without_location(&inner);
    match inner.classify() {
        serde_json::error::Category::Data => {
            // serde reports a missing field at the enclosing object; name the field itself.
            let field = match quoted_field(&message, "missing field `") {
                Some(name) => join_path(&path, name),
                None => path,
            };
            if field == "." {
                ApiError::Validation { detail: format!("The body has the wrong shape: {message}."), errors: Vec::new() }
            } else {
                let detail = format!("{field}: {message}");
                ApiError::Validation { detail, errors: vec![FieldError::new(field, message)] }
            }
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::BadRequest(format!("Malformed JSON: {message}."))
        }
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn without_location(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

/// The name between backquotes after `prefix`, as serde writes `missing field `x``.
fn quoted_field<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

fn join_path(path: &str, field: &str) -> String {
    if path == "." { field.to_owned() } else { format!("{path}.{field}") }
}

/// For a field that may be absent but not `null`: `null` is refused (`422`) like any other wrong type.
pub(crate) fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For a field where absent means "leave it" and `null` means "remove it": `Some(None)` for `null`.
pub(crate) fn null_is_a_value<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A query string; any problem with it is a `400`. Parameters the target type does not name are
/// ignored.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::BadRequest(format!("Bad query string: {}", rejection.body_text())))
    }
}

/// `If-Match`: `None` when absent or `*`, the version for `"<version>"`; anything else is a `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfMatch(pub(crate) Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_if_match(parts.headers.get(header::IF_MATCH).map(|v| v.as_bytes())).map(IfMatch)
    }
}

/// The `{id}` of a route when it is a UUID; anything else names nothing, so it is `missing` (a `404`,
/// the same answer as for an id that exists but the caller may not see).
pub(crate) fn uuid_path(
    id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    missing: impl FnOnce() -> ApiError,
) -> Result<String, ApiError> {
    match id {
        Ok(axum::extract::Path(id)) if uuid::Uuid::try_parse(&id).is_ok() => Ok(id),
        _ => Err(missing()),
    }
}

/// Only one strong entity tag of our form (`"<version>"`) or `*` means something here: a weak tag
/// never matches under the strong comparison `If-Match` uses (RFC 9110 §13.1.1), and a list cannot be
/// checked against one version.
pub(crate) fn parse_if_match(value: Option<&[u8]>) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let text = std::str::from_utf8(value).map(str::trim).unwrap_or_default();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(r#"If-Match must be one entity tag as sent in ETag, such as "3", or *."#.to_owned())
        })
}

/// The client's address and user agent, recorded by the services in the events a request causes.
#[derive(Debug, Clone)]
pub(crate) struct Client(pub(crate) ClientInfo);

impl Client {
    /// The same information in the project service's message.
    pub(crate) fn for_project(self) -> ordo_proto::project::v1::ClientInfo {
        let ClientInfo { ip, user_agent } = self.0;
        ordo_proto::project::v1::ClientInfo { ip, user_agent }
    }

    /// The same information in the task service's message.
    pub(crate) fn for_task(self) -> ordo_proto::task::v1::ClientInfo {
        let ClientInfo { ip, user_agent } = self.0;
        ordo_proto::task::v1::ClientInfo { ip, user_agent }
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(client_info(&parts.headers, peer, state.trust_forwarded_for())))
    }
}

/// The client's address: the first `X-Forwarded-For` hop when trusted, else the peer's.
pub(crate) fn client_address(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
    forwarded.or(peer)
}

/// The client's address (the first `X-Forwarded-For` hop only when trusted) and user agent.
pub(crate) fn client_info(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> ClientInfo {
    let ip = client_address(headers, peer, trust_forwarded_for).map(|ip| ip.to_string()).unwrap_or_default();
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(MAX_USER_AGENT_CHARS).collect())
        .unwrap_or_default();
    ClientInfo { ip, user_agent }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: Option<u8>,
    }

    fn field_errors(error: ApiError) -> (StatusCode, Vec<String>) {
        let status = error.status();
        match error {
            ApiError::Validation { errors, .. } => (status, errors.into_iter().map(|e| e.field).collect()),
            other => (other.status(), Vec::new()),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let error = parse_json::<Body>(br#"{"email": "a@b.c",,}"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn trailing_garbage_is_a_bad_request() {
        let error = parse_json::<Body>(br#"{"email": "a@b.c"} x"#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let (status, fields) = field_errors(parse_json::<Body>(br#"{"email": "a@b.c", "age": "old"}"#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields, ["age"]);
    }

    #[test]
    fn a_missing_field_names_the_field() {
        let (status, fields) = field_errors(parse_json::<Body>(br#"{"age": 3}"#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields, ["email"]);
    }

    #[test]
    fn an_unknown_field_names_the_field() {
        let (status, fields) = field_errors(parse_json::<Body>(br#"{"email": "a", "emali": "b"}"#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields, ["emali"]);
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_unprocessable_without_a_field() {
        let (status, fields) = field_errors(parse_json::<Body>(br#""just a string""#).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(fields.is_empty());
    }

    #[test]
    fn json_content_types_are_recognised() {
        let accepted =
            ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"];
        for value in accepted {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert!(is_json_content_type(&headers), "{value}");
        }
        for value in ["text/plain", "application/x-www-form-urlencoded", "json", "application/+json"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert!(!is_json_content_type(&headers), "{value}");
        }
        assert!(!is_json_content_type(&HeaderMap::new()));
    }

    #[test]
    fn if_match_accepts_one_quoted_version_or_a_star() {
        assert_eq!(parse_if_match(None).unwrap(), None);
        assert_eq!(parse_if_match(Some(b"*")).unwrap(), None);
        assert_eq!(parse_if_match(Some(br#""7""#)).unwrap(), Some(7));
        assert_eq!(parse_if_match(Some(br#" "12" "#)).unwrap(), Some(12));
    }

    #[test]
    fn if_match_refuses_anything_else_with_a_bad_request() {
        for value in [&b"7"[..], br#"W/"7""#, br#""7", "8""#, br#""""#, br#""-1""#, br#""seven""#, b"\"7"] {
            let error = parse_if_match(Some(value)).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn the_client_address_is_the_peer_unless_forwarded_for_is_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        headers.insert(header::USER_AGENT, HeaderValue::from_static("curl/8"));
        let peer = Some("127.0.0.1".parse().unwrap());

        assert_eq!(client_info(&headers, peer, false).ip, "127.0.0.1");
        assert_eq!(client_info(&headers, peer, true).ip, "203.0.113.9");
        assert_eq!(client_info(&headers, peer, true).user_agent, "curl/8");
    }

    #[test]
    fn a_forwarded_for_that_is_not_an_address_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("evil"));
        let peer = Some("127.0.0.1".parse().unwrap());
        assert_eq!(client_info(&headers, peer, true).ip, "127.0.0.1");
    }
}
