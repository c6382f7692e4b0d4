//! Slow and greedy clients: a body dribbled slower than `--body-read-timeout-ms` gets `408` and holds
//! no load-shedding slot meanwhile; headers never finished get the connection closed after
//! `--header-read-timeout-ms`; connections past `--max-connections-per-ip` are closed at once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Options, TestApp, connect, read_until_closed, spawn_app_with};

async fn spawn_with(gateway_args: &[&str]) -> TestApp {
    let options =
        Options { gateway_args: gateway_args.iter().map(|arg| (*arg).to_owned()).collect(), ..Options::default() };
    spawn_app_with(options).await
}

#[tokio::test]
async fn a_body_dribbled_slower_than_the_timeout_gets_408_and_holds_no_slot() {
    // Arrange: one API request at a time, and half a second for a body.
    let app = spawn_with(&["--max-in-flight=1", "--body-read-timeout-ms=500"]).await;
    let mut slow = connect(&app).await;
    let head = "POST /api/v1/auth/register HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\nConnection: close\r\n\r\n{";
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = slow.into_split();
    let dribble = tokio::spawn(async move {
        // One byte every 300 ms: never 100 bytes within the deadline.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });

    // Act: a normal request while the slow body is being read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let normal = app.client.get(app.url("/api/v1/auth/jwks")).send().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer)).await;

    // Assert
    assert_eq!(normal.status(), StatusCode::OK, "the slow body held no slot");
    assert!(read.is_ok(), "the slow client got no answer within 5 s");
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");
    assert!(elapsed < Duration::from_millis(500 + 1500), "answered after {elapsed:?}");
    dribble.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    // Arrange
    let app = spawn_with(&["--header-read-timeout-ms=500"]).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /api/v1/users/me HTTP/1.1\r\nHost: gateway\r\n").await.unwrap();

    // Act
    let closed = read_until_closed(&mut stream, Duration::from_secs(3)).await;

    // Assert
    assert!(closed.is_some(), "the connection was still open after 3 s");
    app.cleanup().await;
}

#[tokio::test]
async fn connections_past_the_per_address_cap_are_closed_at_once() {
    // Arrange: the test's own client may hold pooled connections too, so count up to the refusal.
    let app = spawn_with(&["--max-connections-per-ip=4"]).await;
    let mut held = Vec::new();
    let mut refused = None;

    // Act: open connections, each answering one request and kept open, until one is refused.
    for _ in 0..6 {
        let mut stream = connect(&app).await;
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n").await;
        let mut buffer = [0_u8; 1024];
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => {
                assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
                held.push(stream);
            }
            Ok(_) => {
                refused = Some(held.len());
                break;
            }
            Err(_) => panic!("a connection was neither served nor closed within 3 s"),
        }
    }
    held.clear();
    let mut after = None;
    for _ in 0..40 {
        if let Ok(response) = reqwest::Client::new().get(app.url("/healthz")).send().await {
            after = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert
    let served = refused.expect("no connection was refused");
    assert!(served <= 4, "{served} connections were served beside the cap of 4");
    assert_eq!(after, Some(StatusCode::OK), "closed connections free their places");
    app.cleanup().await;
}
