//! `/healthz`, `/readyz`, `/metrics`, and the gateway's behaviour while identity is down.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, assert_problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_says_ok() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    app.cleanup().await;
}

#[tokio::test]
async fn metrics_count_requests_per_matched_route_not_per_raw_path() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    app.get_as(&tokens.access, "/api/v1/users/0190b6a4-7c1e-7000-8000-000000000001").await;

    // Act
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();

    // Assert
    assert!(
        metrics.lines().any(|l| l.starts_with("ordo_http_requests_total")
            && l.contains(r#"route="/api/v1/users/{id}""#)
            && l.contains(r#"method="GET""#)),
        "{metrics}"
    );
    assert!(metrics.contains("ordo_http_request_duration_seconds"), "{metrics}");
    assert!(!metrics.contains("0190b6a4-7c1e-7000-8000-000000000001"), "raw paths must not become labels");
    app.cleanup().await;
}

#[tokio::test]
async fn when_identity_stops_the_gateway_answers_503_quickly_and_recovers_when_it_returns() {
    // Arrange
    let timeout = Duration::from_millis(500);
    let options = Options { backend_timeout_ms: timeout.as_millis() as u64, ..Options::default() };
    let mut app = spawn_app_with(options).await;
    app.register_user("alice@example.com", "Alice").await;

    // Act
    app.stop_identity().await;
    let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
    let started = Instant::now();
    let login = app.login("alice@example.com", PASSWORD).await;
    let login_took = started.elapsed();

    // Assert
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    let readyz: Value = readyz.json().await.unwrap();
    assert_eq!(readyz["failing"], json!(["identity"]), "{readyz}");
    assert_eq!(login.headers()["retry-after"], "1");
    assert!(login_took < timeout + Duration::from_millis(500), "took {login_took:?}");
    let problem = assert_problem(login, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!problem.to_string().contains("127.0.0.1"), "no internal address in {problem}");

    // Act: identity comes back on the same port; nobody touches the gateway.
    app.start_identity().await;
    app.wait_until_ready().await;

    // Assert
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn at_capacity_the_api_sheds_load_with_503_while_operations_routes_still_answer() {
    use tokio::io::AsyncWriteExt as _;

    // Arrange: one request at a time; a client holds the only slot with an upload that has sent half
    // its body (a JSON body is read before it takes a slot; an upload streams, so it holds one).
    let options = Options { gateway_args: vec!["--max-in-flight=1".to_owned()], ..Options::default() };
    let app = spawn_app_with(options).await;
    let (_, bob) = app.user("bob@example.com", "Bob").await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/tasks/0190b6a4-7c1e-7000-8000-0000000000a1/attachments HTTP/1.1\r\nHost: ordo\r\n\
         Authorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 640\r\n\r\n--b\r\n",
        bob.access
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();

    // Act: wait until the slow request holds the slot, then ask again.
    let mut shed = None;
    for _ in 0..50 {
        let response = app.login("alice@example.com", PASSWORD).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let healthz = app.client.get(app.url("/healthz")).send().await.unwrap();

    // Assert
    let shed = shed.expect("a request beyond the limit is shed");
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_problem(shed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(healthz.status(), StatusCode::OK);

    // Act: the slow client gives up; the slot is free again.
    drop(slow);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = app.login("alice@example.com", PASSWORD).await.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert: served again (an unknown account: 401, not 503).
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}
