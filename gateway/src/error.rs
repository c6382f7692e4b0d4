//! Every error the gateway answers with, as an RFC 9457 problem document
//! (`Content-Type: application/problem+json`), and the one mapping from backend `tonic::Status` codes
//! to HTTP (<https://www.rfc-editor.org/rfc/rfc9457>). 5xx bodies are generic; their cause is logged
//! inside the request's span, so it carries the request and trace ids.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic_types::StatusExt as _;
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The base of every problem `type` URI; the slug after it names the kind of problem.
const PROBLEM_TYPE_BASE: &str = "https://ordo.dev/problems/";

/// `Retry-After` (seconds) when a backend is down: short, because a backend restart is quick and the
/// request had no effect.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// `Retry-After` (seconds) for a `429` whose backend did not say how long to wait.
const DEFAULT_RATE_LIMIT_RETRY_AFTER_SECONDS: u64 = 60;

/// `WWW-Authenticate` of every `401` (RFC 6750 §3): a refused access token says `invalid_token`;
/// a missing token, or credentials a backend refused, get the bare challenge.
const BEARER_CHALLENGE: &str = r#"Bearer realm="ordo""#;
const BEARER_INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="ordo", error="invalid_token""#;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://ordo.dev/problems/validation-failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request has invalid fields.",
    "errors": [{"field": "email", "message": "must be a valid email address"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem (`https://ordo.dev/problems/<slug>`); stable, for machines.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub problem_type: String,
    /// A short human summary of the kind of problem; the same for every occurrence of a `type`.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for humans.
    pub detail: String,
    /// Field-level problems; present only on `422` validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field name (a path such as `items[0].title` for nested fields).
    pub field: String,
    /// Why the value was refused.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An error the gateway answers with. Each variant's comment names the status it produces.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `400 Bad Request`: malformed JSON, a bad query parameter value, header or cursor.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `401 Unauthorized`: no bearer token was sent (`WWW-Authenticate: Bearer realm="ordo"`).
    #[error("missing bearer token")]
    MissingToken,
    /// `401 Unauthorized`: the token is malformed, expired, revoked or wrongly signed
    /// (`WWW-Authenticate` with `error="invalid_token"`).
    #[error("invalid access token")]
    InvalidToken,
    /// `401 Unauthorized`: a backend refused the credentials (wrong password, spent refresh token).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// `403 Forbidden`: the caller's role does not allow the action.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// `404 Not Found`: no such resource, or the caller may not see it; also unknown routes.
    #[error("not found: {0}")]
    NotFound(String),
    /// `405 Method Not Allowed`: the route exists but not with this method (axum adds `Allow`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `408 Request Timeout`: the body did not arrive within `--body-read-timeout-ms`.
    #[error("request body timed out")]
    RequestTimeout,
    /// `409 Conflict`: a uniqueness conflict, or a state that forbids the action.
    #[error("conflict: {0}")]
    Conflict(String),
    /// `409 Conflict`: the first request with this `Idempotency-Key` is still in flight.
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// `412 Precondition Failed`: `If-Match` does not match the current version.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// `413 Content Too Large`: the body is over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// `413 Content Too Large`: an attachment is over the limit (bytes).
    #[error("attachment over {0} bytes")]
    AttachmentTooLarge(u64),
    /// `413 Content Too Large`: a file to import is over the limit (bytes).
    #[error("import file over {0} bytes")]
    ImportTooLarge(u64),
    /// `415 Unsupported Media Type`: the body is not `application/json` (or `+json`).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// `415 Unsupported Media Type`: an upload that is not `multipart/form-data` with a boundary.
    #[error("upload is not multipart/form-data")]
    NotMultipart,
    /// `422 Unprocessable Content`: well-formed input that breaks a field rule.
    #[error("validation failed: {detail}")]
    Validation {
        /// What went wrong, for humans.
        detail: String,
        /// One entry per bad field (empty when the field is unknown).
        errors: Vec<FieldError>,
    },
    /// `422 Unprocessable Content`: an `Idempotency-Key` reused with another request.
    #[error("idempotency key reused with another request")]
    IdempotencyKeyReused,
    /// `429 Too Many Requests`, with `Retry-After` in seconds.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        /// What went wrong, for humans.
        detail: String,
        /// Seconds the client should wait.
        retry_after: u64,
    },
    /// `503 Service Unavailable` with `Retry-After: 1`: a backend the request needs is down or too
    /// slow; the request had no effect. The cause is logged, never sent.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// `504 Gateway Timeout`: the request ran past `--request-timeout-ms`; its effect is unknown (a
    /// retry with the same `Idempotency-Key` gets the outcome).
    #[error("request timed out")]
    GatewayTimeout,
    /// `500 Internal Server Error`: anything else. The cause is logged, never sent.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A `422` for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        Self::Validation { detail: format!("{}: {}", error.field, error.message), errors: vec![error] }
    }

    /// The status, problem `type` slug and title of this error.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::MissingToken | Self::InvalidToken | Self::Unauthorized(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            }
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request-timeout", "Request timeout"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::IdempotencyKeyInUse => (StatusCode::CONFLICT, "idempotency-key-in-use", "Idempotency key in use"),
            Self::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, "precondition-failed", "Precondition failed")
            }
            Self::PayloadTooLarge | Self::AttachmentTooLarge(_) | Self::ImportTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "content-too-large", "Content too large")
            }
            Self::UnsupportedMediaType | Self::NotMultipart => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation-failed", "Validation failed"),
            Self::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency key reused")
            }
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service-unavailable", "Service unavailable"),
            Self::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "gateway-timeout", "Gateway timeout"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal-error", "Internal server error"),
        }
    }

    /// The HTTP status this error produces.
    pub fn status(&self) -> StatusCode {
        self.kind().0
    }

    /// The problem document's `detail` and `errors`.
    fn detail(self) -> (String, Option<Vec<FieldError>>) {
        let detail = match self {
            Self::BadRequest(detail)
            | Self::Unauthorized(detail)
            | Self::Forbidden(detail)
            | Self::NotFound(detail)
            | Self::Conflict(detail)
            | Self::PreconditionFailed(detail)
            | Self::TooManyRequests { detail, .. } => detail,
            Self::Validation { detail, errors } => {
                return (detail, (!errors.is_empty()).then_some(errors));
            }
            Self::MissingToken => "This endpoint needs an access token: `Authorization: Bearer <token>`.".to_owned(),
            Self::InvalidToken => "The access token is malformed, expired, revoked or wrongly signed.".to_owned(),
            Self::MethodNotAllowed => "The resource does not support this method; see the Allow header.".to_owned(),
            Self::IdempotencyKeyInUse => {
                "A request with this Idempotency-Key is still in progress; retry after it finishes.".to_owned()
            }
            Self::PayloadTooLarge => "The request body is over the 1 MiB limit.".to_owned(),
            Self::AttachmentTooLarge(limit) => format!("The file is over the {limit}-byte limit of attachments."),
            Self::ImportTooLarge(limit) => format!("The file is over the {limit}-byte limit of imports: split it."),
            Self::UnsupportedMediaType => {
                "The request body must be JSON (`Content-Type: application/json`).".to_owned()
            }
            Self::NotMultipart => {
                "An upload must be `multipart/form-data` (with a boundary) holding one part named `file`.".to_owned()
            }
            Self::IdempotencyKeyReused => {
                "This Idempotency-Key was already used with another request; use a new key.".to_owned()
            }
            Self::Unavailable(_) => "A service this request needs is unavailable; retry shortly.".to_owned(),
            Self::RequestTimeout => "The request body did not arrive in time.".to_owned(),
            Self::GatewayTimeout => {
                "The request took too long; its effect is unknown. Retry with the same Idempotency-Key.".to_owned()
            }
            Self::Internal(_) => "Something went wrong on our side.".to_owned(),
        };
        (detail, None)
    }
}

impl From<tonic::Status> for ApiError {
    /// The one mapping of backend status codes to HTTP. Exhaustive on purpose: a new code must be
    /// placed here before the gateway compiles.
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        // A status made on the client side from a transport failure carries its source; one the
        // server sent does not. Whatever code tonic gave it (a stream a draining backend refused with
        // its GOAWAY is `Internal`, a connection reset mid-call `Unknown`), the backend did not answer:
        // worth a retry, never a 500.
        if std::error::Error::source(&status).is_some() {
            return Self::Unavailable(status.to_string());
        }
        let message = || status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => match status.get_details_bad_request() {
                Some(bad) if !bad.field_violations.is_empty() => Self::Validation {
                    detail: message(),
                    errors: bad.field_violations.into_iter().map(|v| FieldError::new(v.field, v.description)).collect(),
                },
                _ => Self::BadRequest(message()),
            },
            Code::OutOfRange => Self::BadRequest(message()),
            Code::Unauthenticated => Self::Unauthorized(message()),
            Code::PermissionDenied => Self::Forbidden(message()),
            Code::NotFound => Self::NotFound(message()),
            Code::AlreadyExists | Code::FailedPrecondition => Self::Conflict(message()),
            Code::Aborted => Self::PreconditionFailed(message()),
            Code::ResourceExhausted => Self::TooManyRequests {
                detail: message(),
                retry_after: status
                    .metadata()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(DEFAULT_RATE_LIMIT_RETRY_AFTER_SECONDS),
            },
            // `Cancelled` is what tonic reports when the channel's per-request timeout fires: the
            // gateway never cancels a call itself, so it means "too slow", like `DeadlineExceeded`.
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable(status.to_string()),
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                Self::Internal(anyhow::anyhow!("backend error: {status}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind();
        match &self {
            Self::Internal(cause) => tracing::error!(error = format!("{cause:#}"), "request failed"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "backend unavailable"),
            _ => {}
        }
        let extra = match &self {
            // A backend's refusal (a wrong password, a spent refresh token) says nothing about the
            // access token, so it gets the bare challenge.
            Self::MissingToken | Self::Unauthorized(_) => {
                Some((header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE)))
            }
            Self::InvalidToken => {
                Some((header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_INVALID_TOKEN_CHALLENGE)))
            }
            Self::TooManyRequests { retry_after, .. } => Some((header::RETRY_AFTER, HeaderValue::from(*retry_after))),
            Self::Unavailable(_) => Some((header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS))),
            _ => None,
        };
        let (detail, errors) = self.detail();
        let problem = Problem {
            problem_type: format!("{PROBLEM_TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = match serde_json::to_vec(&problem) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "could not serialize a problem document");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        if let Some((name, value)) = extra {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The fallback of unknown routes: `404` as a problem document.
pub async fn route_not_found() -> ApiError {
    ApiError::NotFound("No route matches this path.".to_owned())
}

/// The fallback of known routes called with another method: `405` as a problem document.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn status_of(code: Code) -> StatusCode {
        ApiError::from(tonic::Status::new(code, "x")).status()
    }

    #[test]
    fn each_grpc_code_maps_to_the_agreed_http_status() {
        let expected = [
            (Code::InvalidArgument, StatusCode::BAD_REQUEST),
            (Code::OutOfRange, StatusCode::BAD_REQUEST),
            (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            (Code::PermissionDenied, StatusCode::FORBIDDEN),
            (Code::NotFound, StatusCode::NOT_FOUND),
            (Code::AlreadyExists, StatusCode::CONFLICT),
            (Code::FailedPrecondition, StatusCode::CONFLICT),
            (Code::Aborted, StatusCode::PRECONDITION_FAILED),
            (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (Code::DeadlineExceeded, StatusCode::SERVICE_UNAVAILABLE),
            (Code::Cancelled, StatusCode::SERVICE_UNAVAILABLE),
            (Code::Unknown, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::Unimplemented, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::DataLoss, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::Ok, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, status) in expected {
            assert_eq!(status_of(code), status, "{code:?}");
        }
    }

    #[test]
    fn a_status_made_from_a_transport_failure_is_unavailable_whatever_its_code() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let status = tonic::Status::from_error(Box::new(reset));
        assert!(std::error::Error::source(&status).is_some(), "made on the client side: {status:?}");

        let response = ApiError::from(status).into_response();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn field_violations_become_one_error_entry_per_field() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("email", "must be a valid email address");
        details.add_bad_request_violation("password", "must be 12 to 128 characters");
        let status = tonic::Status::with_error_details(Code::InvalidArgument, "invalid registration", details);

        let response = ApiError::from(status).into_response();

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_of(response).await;
        assert_eq!(body["type"], "https://ordo.dev/problems/validation-failed");
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["errors"][1]["field"], "password");
        assert_eq!(body["errors"][1]["message"], "must be 12 to 128 characters");
    }

    #[test]
    fn invalid_argument_without_violations_is_a_bad_request() {
        let error = ApiError::from(tonic::Status::invalid_argument("bad cursor"));
        assert!(matches!(error, ApiError::BadRequest(ref detail) if detail == "bad cursor"));
    }

    #[test]
    fn resource_exhausted_takes_retry_after_from_the_metadata() {
        let mut status = tonic::Status::resource_exhausted("locked");
        status.metadata_mut().insert("retry-after", "840".parse().unwrap());

        let response = ApiError::from(status).into_response();

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "840");
    }

    #[test]
    fn resource_exhausted_without_metadata_still_says_when_to_retry() {
        let response = ApiError::from(tonic::Status::resource_exhausted("slow down")).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
    }

    #[tokio::test]
    async fn an_unavailable_backend_is_a_503_with_retry_after_and_no_internals() {
        let status = tonic::Status::unavailable("tcp connect error: 10.0.3.7:50051 refused");

        let response = ApiError::from(status).into_response();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = body_of(response).await.to_string();
        assert!(!body.contains("10.0.3.7"), "{body}");
        assert!(!body.contains("tcp"), "{body}");
    }

    #[tokio::test]
    async fn an_internal_error_has_a_generic_body() {
        let status = tonic::Status::internal("SQL: SELECT * FROM user WHERE 1=1 -- deadlock");

        let response = ApiError::from(status).into_response();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert_eq!(body["detail"], "Something went wrong on our side.");
        assert!(!body.to_string().contains("SELECT"));
    }

    #[test]
    fn a_missing_token_gets_the_bearer_challenge() {
        let response = ApiError::MissingToken.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], r#"Bearer realm="ordo""#);
    }

    #[test]
    fn an_invalid_token_says_invalid_token_in_the_challenge() {
        let response = ApiError::InvalidToken.into_response();
        assert!(response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer "));
        assert!(response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));
    }

    #[tokio::test]
    async fn errors_without_field_problems_have_no_errors_member() {
        let body = body_of(ApiError::Conflict("email taken".into()).into_response()).await;
        assert!(body.get("errors").is_none());
        assert_eq!(body["title"], "Conflict");
        assert_eq!(body["detail"], "email taken");
    }
}
