//! The session check: identity's Redis keys (`<prefix>session:<sid>`, `1` live, `0` revoked) answer
//! it; a missing key is settled by asking identity.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, spawn_app};

fn session_key(app: &TestApp, access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    format!("{}session:{}", app.env.redis_prefix(), claims["sid"].as_str().unwrap())
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(ordo_testkit::redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn identity_marks_a_session_live_in_redis_at_login_and_revoked_at_logout() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let key = session_key(&app, &tokens.access);
    let mut redis = redis().await;

    // Act
    let live: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
    app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&tokens.access).send().await.unwrap();
    let revoked: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();

    // Assert
    assert_eq!(live.as_deref(), Some("1"));
    assert_eq!(revoked.as_deref(), Some("0"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_session_marked_revoked_in_redis_is_refused_without_asking_identity() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let key = session_key(&app, &tokens.access);
    redis::cmd("SET").arg(&key).arg("0").query_async::<()>(&mut redis().await).await.unwrap();

    // Act
    let response = app.me(&tokens.access).await;

    // Assert
    assert_problem(response, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_session_missing_from_redis_is_settled_by_identity() {
    // Arrange
    let app = spawn_app().await;
    let (_, live) = app.user("alice@example.com", "Alice").await;
    let revoked = app.tokens("alice@example.com").await;
    app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&revoked.access).send().await.unwrap();
    let mut redis = redis().await;
    for tokens in [&live, &revoked] {
        redis::cmd("DEL").arg(session_key(&app, &tokens.access)).query_async::<()>(&mut redis).await.unwrap();
    }

    // Act
    let live = app.me(&live.access).await;
    let revoked = app.me(&revoked.access).await;

    // Assert
    assert_eq!(live.status(), StatusCode::OK);
    assert_problem(revoked, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}
