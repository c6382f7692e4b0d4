//! Access tokens the gateway must refuse. Each forged token names the live session of a real login,
//! so a `401` proves the check named in the test refused it, not the session lookup.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, assert_problem, spawn_app, spawn_app_with};

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The header and claims of a real token.
fn parts(token: &str) -> (Value, Value, String) {
    let mut split = token.split('.');
    let header = decode_part(split.next().unwrap());
    let claims = decode_part(split.next().unwrap());
    (header, claims, split.next().unwrap().to_owned())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_a_bearer_challenge() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/api/v1/users/me")).send().await.unwrap();

    // Assert
    assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="ordo""#);
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_with_alg_none_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (mut header, claims, _) = parts(&tokens.access);
    header["alg"] = "none".into();
    let forged = format!("{}.{}.", encode_part(&header), encode_part(&claims));

    // Act
    let response = app.me(&forged).await;

    // Assert
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_signed_with_hs256_using_the_public_key_as_secret_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (header, mut claims, _) = parts(&tokens.access);
    claims["role"] = "admin".into();
    let jwks: Value = app.client.get(app.url("/api/v1/auth/jwks")).send().await.unwrap().json().await.unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let secrets = [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(&x).unwrap()];

    for secret in secrets {
        let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs_header.typ = header["typ"].as_str().map(str::to_owned);
        hs_header.kid = header["kid"].as_str().map(str::to_owned);
        let forged =
            jsonwebtoken::encode(&hs_header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap())
                .unwrap();

        // Act
        let response = app.me(&forged).await;

        // Assert
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_whose_payload_was_tampered_with_is_refused() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("admin@example.com", "Admin").await;
    let (_, tokens) = app.user("bob@example.com", "Bob").await;
    let (header, mut claims, signature) = parts(&tokens.access);
    assert_eq!(claims["role"], "member");
    claims["role"] = "admin".into();
    let forged = format!("{}.{}.{}", encode_part(&header), encode_part(&claims), signature);

    // Act
    let response = app.get_as(&forged, "/api/v1/users").await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_re_encoded_with_a_past_exp_is_refused_because_its_signature_no_longer_matches() {
    // Arrange: what this proves is that `exp` is covered by the signature; that expiry itself is
    // enforced is proven by the test below with a genuinely expired token.
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (header, mut claims, signature) = parts(&tokens.access);
    claims["exp"] = (now() - 3600).into();
    let forged = format!("{}.{}.{}", encode_part(&header), encode_part(&claims), signature);

    // Act
    let response = app.me(&forged).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_genuinely_signed_but_expired_token_is_refused() {
    // Arrange: identity issues tokens that expired a minute before they were issued (beyond the 5 s
    // leeway), correctly signed by its real key, for a live session.
    let options = Options { identity_args: vec!["--access-token-ttl-secs=-60".to_owned()], ..Options::default() };
    let app = spawn_app_with(options).await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (_, claims, _) = parts(&tokens.access);
    assert!(claims["exp"].as_i64().unwrap() < now() - 30, "the token is not expired: {claims}");

    // Act
    let response = app.me(&tokens.access).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.refresh(&tokens.refresh).await.status(), StatusCode::OK, "the session itself is live");
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_signed_by_another_ed25519_key_under_the_real_key_id_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (header, claims, _) = parts(&tokens.access);
    let kid = header["kid"].as_str().unwrap();
    let impostor = ordo_auth::TokenIssuer::new(ordo_auth::SigningKey::generate(kid).unwrap(), 900);
    let forged =
        impostor.issue(claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap(), "admin", now()).unwrap();

    // Act
    let response = app.me(&forged).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_naming_an_unknown_key_id_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let (_, claims, _) = parts(&tokens.access);
    let impostor = ordo_auth::TokenIssuer::new(ordo_auth::SigningKey::generate("no-such-key").unwrap(), 900);
    let forged =
        impostor.issue(claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap(), "member", now()).unwrap();

    // Act
    let response = app.me(&forged).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK, "real tokens still work");
    app.cleanup().await;
}

#[tokio::test]
async fn a_refresh_token_used_as_an_access_token_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app.me(&tokens.refresh).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_under_another_auth_scheme_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("authorization", format!("Basic {}", tokens.access))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}
