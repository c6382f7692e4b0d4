//! Extractors whose rejections are problem documents: JSON bodies (`415` without a JSON content type,
//! `413` over the limit, `400` when malformed, `422` naming the field when the shape or a type is
//! wrong), query strings (`400`), `If-Match` (a list of versions; `400` only when malformed) and the client's address and user
//! agent for the audit trail.

use std::collections::BTreeMap;
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
    // A number beyond what any field holds (`1e400`) is valid JSON (RFC 8259 §6 leaves the range to
    // the implementation), so it is a bad value of its field, not malformed JSON.
    let category = match inner.classify() {
        serde_json::error::Category::Syntax if message == "number out of range" => serde_json::error::Category::Data,
        category => category,
    };
    match category {
        serde_json::error::Category::Data => {
            // serde reports a missing or repeated field at the enclosing object; name the field itself.
            let named =
                quoted_field(&message, "missing field `").or_else(|| quoted_field(&message, "duplicate field `"));
            let field = match named {
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

/// For a field that holds a JSON object: serde's derive also reads a struct from an array of its
/// fields in order, a form the API does not offer (and its schema does not allow).
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Object<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(Object(std::marker::PhantomData))
}

/// [`object`] for a field that may be absent but not `null`.
pub(crate) fn object_not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    object(deserializer).map(Some)
}

/// For a field where absent means "leave it" and `null` means "remove it": `Some(None)` for `null`.
pub(crate) fn null_is_a_value<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A JSON array of at most `N` items, refused while reading its `N + 1`st item (API4:2023,
/// unrestricted resource consumption): a body of 150,000 labels costs 21 parsed strings, not
/// 150,000, before its `422`. The error names the field (through `serde_path_to_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> BoundedVec<T, N> {
    /// The items.
    pub(crate) fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Into<String>, const N: usize> BoundedVec<T, N> {
    /// The items (bounded strings) as plain strings.
    pub(crate) fn into_strings(self) -> Vec<String> {
        self.0.into_iter().map(Into::into).collect()
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Items<T, N> {
            type Value = BoundedVec<T, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {N} items")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the client: trust it only up to the bound.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(item) = seq.next_element()? {
                    if items.len() == N {
                        return Err(serde::de::Error::custom(format_args!("must have at most {N} items")));
                    }
                    items.push(item);
                }
                Ok(BoundedVec(items))
            }
        }

        deserializer.deserialize_seq(Items::<T, N>(std::marker::PhantomData))
    }
}

/// A JSON object of at most `N` members, refused while reading its `N + 1`st key, before its value
/// (as [`BoundedVec`] bounds an array). A key that repeats is refused too (`422`, as a repeated field
/// is), where a plain map would keep the last value without a word. The error names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundedMap<K, V, const N: usize>(BTreeMap<K, V>);

impl<V, const M: usize, const N: usize> BoundedMap<BoundedString<M>, V, N> {
    /// The members, with plain string keys.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (String, V)> {
        self.0.into_iter().map(|(BoundedString(key), value)| (key, value))
    }
}

impl<K, V, const N: usize> Default for BoundedMap<K, V, N> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedMap<K, V, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<K, V, const N: usize>(std::marker::PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Members<K, V, N> {
            type Value = BoundedMap<K, V, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an object of at most {N} members")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = BTreeMap::new();
                while let Some(key) = map.next_key()? {
                    if members.len() == N {
                        return Err(serde::de::Error::custom(format_args!("must have at most {N} members")));
                    }
                    if members.insert(key, map.next_value()?).is_some() {
                        return Err(serde::de::Error::custom("must not name a key twice"));
                    }
                }
                Ok(BoundedMap(members))
            }
        }

        deserializer.deserialize_map(Members::<K, V, N>(std::marker::PhantomData))
    }
}

/// A JSON string of at most `MAX` characters (the gateway's bound; the service applies the rest of
/// the field's rule).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> From<BoundedString<MAX>> for String {
    fn from(BoundedString(text): BoundedString<MAX>) -> Self {
        text
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.chars().count() > MAX {
            return Err(serde::de::Error::custom(format_args!("must be at most {MAX} characters")));
        }
        Ok(Self(text))
    }
}

/// A JSON string of at most `MAX` bytes of UTF-8, for a field whose rule counts bytes rather than
/// characters (a URL, an event type); the service applies the rest of the field's rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ByteBoundedString<const MAX: usize>(String);

impl<const MAX: usize> From<ByteBoundedString<MAX>> for String {
    fn from(ByteBoundedString(text): ByteBoundedString<MAX>) -> Self {
        text
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for ByteBoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() > MAX {
            return Err(serde::de::Error::custom(format_args!("must be at most {MAX} bytes")));
        }
        Ok(Self(text))
    }
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

/// `If-Match` (RFC 9110 §13.1.1): absent or `*` writes whatever the current version is; a list of
/// entity tags writes only if the current version is one of its strong tags of our form
/// (`"<version>"`). Weak tags never match for a write, and neither do strong tags we never send
/// (`"abc"`), so a list of only those is a `412` without asking a service. Only a value that is not
/// an `If-Match` at all is a `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// No header, or `*`: no version to check.
    Any,
    /// The versions that may be current, distinct, in the order sent (never empty).
    Versions(Vec<i64>),
    /// A list in which no tag can ever match.
    Never,
}

/// Most distinct versions one `If-Match` may name: each is tried in turn against the service, so the
/// list is bounded (a client has no reason to send more than the few versions it holds).
pub(crate) const MAX_IF_MATCH_VERSIONS: usize = 8;

impl IfMatch {
    /// Runs a conditional write once per version named, until one is not refused with `412`: the
    /// services compare one `expected_version`, and each attempt is atomic there, so the write happens
    /// at most once and only while the current version is in the list. Without versions, runs it once
    /// with none; with a list that cannot match, answers `412` without running it.
    pub(crate) async fn each_version<T, F, Fut>(&self, mut write: F) -> Result<T, ApiError>
    where
        F: FnMut(Option<i64>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        match self {
            Self::Any => write(None).await,
            Self::Never => Err(never_matches()),
            Self::Versions(versions) => {
                let mut outcome = Err(never_matches());
                for &version in versions {
                    outcome = write(Some(version)).await;
                    if !matches!(outcome, Err(ApiError::PreconditionFailed(_))) {
                        break;
                    }
                }
                outcome
            }
        }
    }
}

fn never_matches() -> ApiError {
    ApiError::PreconditionFailed(
        "If-Match names no current version: weak entity tags never match a write, and ETags are \"<version>\"."
            .to_owned(),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_if_match(parts.headers.get(header::IF_MATCH).map(|v| v.as_bytes()))
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

/// Parses `If-Match = "*" / #entity-tag` (RFC 9110 §8.8.3, §13.1.1), where
/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`. Weak tags and opaque tags that are not a version
/// are kept out of the list (they can never match); `400` only for what is not this syntax, or for
/// more than [`MAX_IF_MATCH_VERSIONS`] distinct versions.
pub(crate) fn parse_if_match(value: Option<&[u8]>) -> Result<IfMatch, ApiError> {
    let Some(value) = value else { return Ok(IfMatch::Any) };
    let malformed = || {
        ApiError::BadRequest(
            r#"If-Match must be * or a comma-separated list of entity tags as sent in ETag, such as "3"."#.to_owned(),
        )
    };
    let text = std::str::from_utf8(value).map_err(|_| malformed())?.trim();
    if text == "*" {
        return Ok(IfMatch::Any);
    }
    let mut versions = Vec::new();
    let mut any_tag = false;
    // Empty list elements are allowed and ignored (RFC 9110 §5.6.1).
    for member in text.split(',').map(str::trim).filter(|member| !member.is_empty()) {
        any_tag = true;
        let (weak, tag) = match member.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, member),
        };
        let opaque = tag
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|opaque| opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80))
            .ok_or_else(malformed)?;
        let version = (!weak && !opaque.is_empty() && opaque.bytes().all(|b| b.is_ascii_digit()))
            .then(|| opaque.parse::<i64>().ok())
            .flatten();
        if let Some(version) = version.filter(|version| !versions.contains(version)) {
            versions.push(version);
        }
    }
    if !any_tag {
        return Err(malformed());
    }
    if versions.len() > MAX_IF_MATCH_VERSIONS {
        return Err(ApiError::BadRequest(format!("If-Match may name at most {MAX_IF_MATCH_VERSIONS} versions.")));
    }
    Ok(if versions.is_empty() { IfMatch::Never } else { IfMatch::Versions(versions) })
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

/// The client's address: when `X-Forwarded-For` is trusted, its last entry, the address the load
/// balancer in front of the gateway saw and appended (every entry before it is whatever the client
/// sent, and a client may send any); else, or when that entry is not an address, the peer's.
pub(crate) fn client_address(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| headers.get_all("x-forwarded-for").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
    forwarded.or(peer)
}

/// The client's address (see [`client_address`]) and user agent.
pub(crate) fn client_info(headers: &HeaderMap, peer: Option<IpAddr>, trust_forwarded_for: bool) -> ClientInfo {
    let ip = client_address(headers, peer, trust_forwarded_for).map(|ip| ip.to_string()).unwrap_or_default();
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(MAX_USER_AGENT_CHARS).collect())
        .unwrap_or_default();
    ClientInfo { ip, user_agent }
}

#[cfg(test)]
mod tests;
