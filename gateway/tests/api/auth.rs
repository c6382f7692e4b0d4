//! `/auth`: registration, sign-in, refresh rotation, logout, password change, lockout and keys.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Tokens, assert_problem, spawn_app};

#[tokio::test]
async fn register_returns_201_with_the_user_its_location_and_etag() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.register("alice@example.com", PASSWORD, "Alice").await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let user: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/users/{}", user["id"].as_str().unwrap()));
    assert_eq!(etag, format!("\"{}\"", user["version"]));
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["display_name"], "Alice");
    assert_eq!(user["disabled"], false);
    for field in ["created_at", "updated_at"] {
        let at = user[field].as_str().unwrap();
        assert!(at.ends_with('Z'), "{field} is not UTC: {at}");
        assert!(time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok());
    }
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    app.cleanup().await;
}

#[tokio::test]
async fn register_stores_the_email_trimmed_and_lower_cased() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.register("  Alice@Example.COM ", PASSWORD, "Alice").await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn register_returns_409_for_an_email_taken_in_any_letter_case() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("alice@example.com", "Alice").await;

    // Act
    let response = app.register("ALICE@example.com", PASSWORD, "Alice again").await;

    // Assert
    assert_problem(response, StatusCode::CONFLICT).await;
    app.cleanup().await;
}

#[tokio::test]
async fn register_returns_422_with_one_error_per_bad_field() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.register("not-an-email", "short", "   ").await;

    // Assert
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["display_name", "email", "password"], "{body}");
    for error in body["errors"].as_array().unwrap() {
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    app.cleanup().await;
}

#[tokio::test]
async fn the_first_account_is_an_admin_and_the_second_a_member() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let first: Value = app.register("first@example.com", PASSWORD, "First").await.json().await.unwrap();
    let second: Value = app.register("second@example.com", PASSWORD, "Second").await.json().await.unwrap();

    // Assert
    assert_eq!(first["role"], "admin");
    assert_eq!(second["role"], "member");
    app.cleanup().await;
}

#[tokio::test]
async fn login_returns_a_bearer_token_pair_that_must_not_be_cached() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("alice@example.com", "Alice").await;

    // Act
    let response = app.login("Alice@Example.com", PASSWORD).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 2_592_000);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    assert!(!body["refresh_token"].as_str().unwrap().is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn login_gives_the_same_401_body_for_an_unknown_email_and_a_wrong_password() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("alice@example.com", "Alice").await;

    // Act
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let wrong = app.login("alice@example.com", "wrong password, long enough").await;

    // Assert
    assert!(unknown.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let unknown = assert_problem(unknown, StatusCode::UNAUTHORIZED).await;
    let wrong = assert_problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(unknown, wrong);
    app.cleanup().await;
}

#[tokio::test]
async fn five_failed_logins_lock_the_email_with_429_and_retry_after_even_for_the_right_password() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("alice@example.com", "Alice").await;
    for _ in 0..5 {
        let response = app.login("alice@example.com", "wrong password, long enough").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    // Act
    let response = app.login("alice@example.com", PASSWORD).await;

    // Assert
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After: {retry_after}");
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    app.cleanup().await;
}

#[tokio::test]
async fn refresh_returns_a_new_pair_that_works_and_spends_the_old_refresh_token() {
    // Arrange
    let app = spawn_app().await;
    let (_, first) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app.refresh(&first.refresh).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = Tokens::from_json(&response.json().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&second.refresh).await.status(), StatusCode::OK, "the new refresh token works");
    app.cleanup().await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_is_401_and_revokes_the_sessions_newer_tokens() {
    // Arrange
    let app = spawn_app().await;
    let (_, first) = app.user("alice@example.com", "Alice").await;
    let second = Tokens::from_json(&app.refresh(&first.refresh).await.json().await.unwrap());
    assert_eq!(app.me(&second.access).await.status(), StatusCode::OK);

    // Act
    let reuse = app.refresh(&first.refresh).await;

    // Assert
    assert_problem(reuse, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.me(&second.access).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.refresh(&second.refresh).await, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn logout_returns_204_and_the_sessions_tokens_are_refused_at_once() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&tokens.access).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = app.me(&tokens.access).await;
    assert!(me.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_problem(me, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.refresh(&tokens.refresh).await, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.post(app.url("/api/v1/auth/logout")).send().await.unwrap();

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn changing_the_password_revokes_the_other_sessions_but_not_the_current_one() {
    // Arrange
    let app = spawn_app().await;
    let (_, current) = app.user("alice@example.com", "Alice").await;
    let other = app.tokens("alice@example.com").await;
    let new_password = "a brand new password, long enough";

    // Act
    let response = app
        .client
        .post(app.url("/api/v1/users/me/password"))
        .bearer_auth(&current.access)
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me(&current.access).await.status(), StatusCode::OK, "the current session stays");
    assert_problem(app.me(&other.access).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.refresh(&other.refresh).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("alice@example.com", new_password).await.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn changing_the_password_with_a_wrong_current_password_is_422_naming_it() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app
        .client
        .post(app.url("/api/v1/users/me/password"))
        .bearer_auth(&tokens.access)
        .json(&json!({"current_password": "not my password at all", "new_password": "a brand new password"}))
        .send()
        .await
        .unwrap();

    // Assert
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "current_password", "{body}");
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn jwks_serves_the_ed25519_signing_keys_as_cacheable_json() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/api/v1/auth/jwks")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none(), "the private part must never be published");
    app.cleanup().await;
}
