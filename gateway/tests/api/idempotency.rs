//! `Idempotency-Key` on `POST /auth/register`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app};

async fn register_with_key(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url("/api/v1/auth/register")).header("idempotency-key", key).json(body).send().await.unwrap()
}

#[tokio::test]
async fn a_register_retried_with_the_same_key_and_body_replays_the_first_response_and_creates_one_user() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;
    let body = json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"});
    let first = register_with_key(&app, "signup-bob-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();

    // Act
    let retry = register_with_key(&app, "signup-bob-1", &body).await;

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], first_location);
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    let users: Value = app.get_as(&admin.access, "/api/v1/users").await.json().await.unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 2, "{users}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_retry_whose_json_differs_only_in_layout_is_a_replay() {
    // Arrange
    let app = spawn_app().await;
    let first = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("idempotency-key", "k-layout")
        .header("content-type", "application/json")
        .body(format!(r#"{{"email":"bob@example.com","password":"{PASSWORD}","display_name":"Bob"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);

    // Act
    let retry = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("idempotency-key", "k-layout")
        .header("content-type", "application/json")
        .body(format!(
            "{{\n  \"display_name\": \"Bob\",\n  \"password\": \"{PASSWORD}\",\n  \"email\": \"bob@example.com\"\n}}"
        ))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_key_with_another_body_returns_422() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"});
    assert_eq!(register_with_key(&app, "k1", &body).await.status(), StatusCode::CREATED);

    // Act
    let other = json!({"email": "carol@example.com", "password": PASSWORD, "display_name": "Carol"});
    let response = register_with_key(&app, "k1", &other).await;

    // Assert
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["type"], "https://ordo.dev/problems/idempotency-key-reused");
    let lookup = app.login("carol@example.com", PASSWORD).await;
    assert_eq!(lookup.status(), StatusCode::UNAUTHORIZED, "carol was not created");
    app.cleanup().await;
}

#[tokio::test]
async fn a_failed_register_is_replayed_with_its_error() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("bob@example.com", "Bob").await;
    let body = json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob again"});
    let first = register_with_key(&app, "k-dup", &body).await;
    assert_eq!(first.status(), StatusCode::CONFLICT);
    let first_body: Value = first.json().await.unwrap();

    // Act
    let retry = register_with_key(&app, "k-dup", &body).await;

    // Assert
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["content-type"], "application/problem+json");
    assert_eq!(assert_problem(retry, StatusCode::CONFLICT).await, first_body);
    app.cleanup().await;
}

#[tokio::test]
async fn an_idempotency_key_of_more_than_255_characters_returns_400() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"});

    // Act
    let response = register_with_key(&app, &"k".repeat(256), &body).await;

    // Assert
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "nothing was created");
    app.cleanup().await;
}
