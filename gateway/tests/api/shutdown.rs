//! The gateway's drain (SIGTERM, `--drain-grace-ms`): for the grace period it goes on serving as a
//! lame duck — `/readyz` fails naming `draining`, every answer carries `Connection: close` and its
//! connection then closes, so a client with a kept-alive connection moves off it after one more answer
//! instead of sending on it just as the drain closes it; new connections are still taken. After the
//! grace the listener is closed.

use std::time::{Duration, Instant};

use ordo_harness::Service;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{Options, connect, read_until_closed, spawn_app_with};

const GRACE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_draining_gateway_answers_kept_alive_and_new_connections_with_connection_close_fails_readiness_then_closes_its_port()
 {
    // Arrange: a gateway with a grace period, and a connection opened and left idle before the drain.
    let grace = format!("--drain-grace-ms={}", GRACE.as_millis());
    let mut app = spawn_app_with(Options { gateway_args: vec![grace], ..Options::default() }).await;
    let mut kept_alive = connect(&app).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.headers().get("connection").is_none(), "no close before the drain");

    // Act: the drain starts.
    let began = Instant::now();
    app.begin_stop(Service::Gateway);

    // Assert: a request on the connection opened before it is answered, told to close, and closed.
    kept_alive.write_all(b"GET /api/v1/auth/jwks HTTP/1.1\r\nHost: gateway\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut kept_alive, GRACE).await.expect("the connection closed after its answer");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert_eq!(answer.matches("http/1.1 ").count(), 1, "one answer: {answer}");

    // Assert: readiness fails naming the drain, and a new connection is still served, told to close.
    let fresh = reqwest::Client::new();
    let ready = fresh.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.headers()["connection"], "close");
    let failing = ready.json::<Value>().await.unwrap()["failing"].clone();
    assert_eq!(failing, serde_json::json!(["draining"]));
    let keys = fresh.get(app.url("/api/v1/auth/jwks")).send().await.unwrap();
    assert_eq!(keys.status(), StatusCode::OK);
    assert_eq!(keys.headers()["connection"], "close");

    // Assert: the stop waits out the grace, and then the port takes no connection.
    app.stop_service(Service::Gateway).await;
    assert!(began.elapsed() >= GRACE, "stopped after {:?}, before its grace", began.elapsed());
    assert!(tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.is_err());

    app.cleanup().await;
}
