//! `/auth`: creating an account, signing in and out, refreshing a session, and the public keys that
//! verify access tokens.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ordo_proto::identity::v1 as pb;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::backend;
use crate::error::{ApiError, Problem};
use crate::extract::{Client, Json, JsonWithBytes};
use crate::idempotency::{self, MaybeIdempotencyKey, RequestSignature, Scope};
use crate::routes::API_PREFIX;
use crate::routes::representation::location;
use crate::routes::users::User;
use crate::state::AppState;

mod types;

use self::types::{JwkSet, LoginBody, RefreshBody, RegisterBody, TokenPair};

/// How long clients may cache the key set: well under the time identity publishes a new key before it
/// signs with it (`rotate-key --activate-after-secs`, 600 s by default, README: signing-key rotation),
/// so a client that caches it this long still holds the next key before its first token.
const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// The routes of this area.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(jwks))
}

/// Creates an account.
///
/// The email is trimmed and lower-cased. The first account ever registered is an `admin`, later ones
/// `member`s. Send an `Idempotency-Key` to make retries safe.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    operation_id = "register",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1..255 characters; a retry with the same key and body within 24 h replays the first response.")
    ),
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The new account.", body = User, headers(
            ("Location" = String, description = "`/api/v1/users/{id}`"),
            ("ETag" = String, description = "`\"<version>\"`"),
            ("Idempotent-Replayed" = String, description = "`true` when this is a replay of the first response for the key."),
        )),
        (status = 409, description = "The email is taken (in any letter case), or the first request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks its rule (one `errors` entry per bad field), or the `Idempotency-Key` was used with another body.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    MaybeIdempotencyKey(key): MaybeIdempotencyKey,
    OriginalUri(uri): OriginalUri,
    body: JsonWithBytes<RegisterBody>,
) -> Result<Response, ApiError> {
    let JsonWithBytes { value, bytes } = body;
    let signature = RequestSignature { method: &Method::POST, path: uri.path(), body: &bytes };
    idempotency::run(&state, key, Scope::Anonymous, signature, {
        let state = state.clone();
        async move { create_account(&state, client, value).await.unwrap_or_else(IntoResponse::into_response) }
    })
    .await
}

async fn create_account(state: &AppState, client: pb::ClientInfo, body: RegisterBody) -> Result<Response, ApiError> {
    let request = backend::anonymous(pb::RegisterRequest {
        email: body.email,
        password: body.password,
        display_name: body.display_name,
        client: Some(client),
    });
    let user = User::from_proto(state.identity().register(request).await?.into_inner().user)?;
    let location = location(format!("{API_PREFIX}/users/{}", user.id))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::ETAG, user.etag())], Json(user)).into_response())
}

/// Signs in: exchanges an email and password for a new session's tokens.
///
/// An unknown email and a wrong password get the same `401`. After 5 failures for one email within
/// 15 minutes every attempt for it, even with the right password, gets `429` until the window passes.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A new session's tokens (`Cache-Control: no-store`).", body = TokenPair),
        (status = 401, description = "Wrong email or password, or a disabled account (one answer for all).", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures for this email.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = String, description = "Seconds until the window passes."))),
    )
)]
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    let request =
        backend::anonymous(pb::LoginRequest { email: body.email, password: body.password, client: Some(client) });
    let tokens = TokenPair::from_proto(state.identity().login(request).await?.into_inner().tokens)?;
    Ok(token_response(tokens))
}

/// Spends a refresh token for a new pair of the same session.
///
/// Refresh tokens rotate: the presented one is spent. Presenting a spent one is `401` and revokes the
/// whole session (every access and refresh token descended from its login).
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The session's new tokens (`Cache-Control: no-store`).", body = TokenPair),
        (status = 401, description = "Unknown, expired, revoked or already spent refresh token.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    Json(body): Json<RefreshBody>,
) -> Result<Response, ApiError> {
    let request =
        backend::anonymous(pb::RefreshSessionRequest { refresh_token: body.refresh_token, client: Some(client) });
    let tokens = TokenPair::from_proto(state.identity().refresh_session(request).await?.into_inner().tokens)?;
    Ok(token_response(tokens))
}

/// Signs out: revokes the session of the access token; its access and refresh tokens get `401` at once.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    operation_id = "logout",
    security(("bearer" = [])),
    responses((status = 204, description = "The session is revoked."))
)]
#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, caller: Caller, Client(client): Client) -> Result<StatusCode, ApiError> {
    let request = backend::on_behalf_of(&caller.authorization, pb::LogoutRequest { client: Some(client) });
    state.identity().logout(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The JSON Web Key Set (RFC 7517) of the keys that sign access tokens (EdDSA, Ed25519).
///
/// The key that signs now comes first; during a rotation the set also holds the next key, published
/// ahead of its first token (10 minutes by default), and the previous one, until every token it signed
/// has expired. Pick the key by the token's `kid`, and fetch the set again when a token names a `kid`
/// not held.
#[utoipa::path(
    get,
    path = "/auth/jwks",
    tag = "auth",
    operation_id = "get_jwks",
    responses((status = 200, description = "The key set (`Cache-Control: public, max-age=300`).", body = JwkSet))
)]
#[tracing::instrument(skip_all)]
async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let response = state.identity().get_jwks(backend::anonymous(pb::GetJwksRequest {})).await?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE_CONTROL)),
    ];
    Ok((headers, response.into_inner().jwks_json).into_response())
}

/// Tokens must not be stored by caches (RFC 6749 §5.1).
fn token_response(tokens: TokenPair) -> Response {
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ];
    (headers, Json(tokens)).into_response()
}
