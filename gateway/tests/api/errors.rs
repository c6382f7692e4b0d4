//! Errors the framework would answer in its own way, all as problem documents; and request ids.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, assert_problem, spawn_app};

#[tokio::test]
async fn an_unknown_route_returns_a_404_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();

    // Assert
    assert_problem(response, StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_wrong_method_returns_a_405_problem_with_allow() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.delete(app.url("/api/v1/auth/login")).send().await.unwrap();

    // Assert
    assert_eq!(response.headers()["allow"], "POST");
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_json_returns_a_400_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "#)
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    app.cleanup().await;
}

#[tokio::test]
async fn json_of_the_wrong_type_returns_a_422_problem_naming_the_field() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.post_json("/api/v1/auth/login", &json!({"email": "a@example.com", "password": 12})).await;

    // Assert
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "password", "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn json_missing_a_field_or_with_an_unknown_one_returns_a_422_problem_naming_it() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let missing = app.post_json("/api/v1/auth/login", &json!({"email": "a@example.com"})).await;
    let unknown = app
        .post_json("/api/v1/auth/login", &json!({"email": "a@example.com", "password": PASSWORD, "pasword": "x"}))
        .await;

    // Assert
    let missing = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(missing["errors"][0]["field"], "password", "{missing}");
    let unknown = assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(unknown["errors"][0]["field"], "pasword", "{unknown}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_body_without_a_json_content_type_returns_a_415_problem() {
    // Arrange
    let app = spawn_app().await;
    let body = r#"{"email": "a@example.com", "password": "correct horse battery staple"}"#;

    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut request = app.client.post(app.url("/api/v1/auth/login")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }

        // Act
        let response = request.send().await.unwrap();

        // Assert
        assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_2_mib_body_returns_a_413_problem() {
    // Arrange
    let app = spawn_app().await;
    let big = format!(r#"{{"email": "a@example.com", "password": "{}"}}"#, "x".repeat(2 * 1024 * 1024));

    // Act
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_2_mib_chunked_body_without_a_length_returns_a_413_problem() {
    // Arrange: raw HTTP/1.1, so the body is streamed in chunks with no Content-Length to check.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

    // Act
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for _ in 0..32 {
        // The server may answer and stop reading once the limit is passed.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;

    // Assert
    let response = String::from_utf8_lossy(&response).to_lowercase();
    assert!(response.starts_with("http/1.1 413"), "{response}");
    assert!(response.contains("content-type: application/problem+json"), "{response}");
    app.cleanup().await;
}

#[tokio::test]
async fn the_request_id_sent_is_echoed() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let ok = app.client.get(app.url("/healthz")).header("x-request-id", "req-123").send().await.unwrap();
    let error = app.client.get(app.url("/api/v1/nope")).header("x-request-id", "req-456").send().await.unwrap();

    // Assert
    assert_eq!(ok.headers()["x-request-id"], "req-123");
    assert_eq!(error.headers()["x-request-id"], "req-456");
    app.cleanup().await;
}

#[tokio::test]
async fn a_request_id_is_generated_when_none_is_sent() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.post(app.url("/api/v1/auth/login")).send().await.unwrap();

    // Assert
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    app.cleanup().await;
}
