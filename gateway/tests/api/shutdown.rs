//! The gateway's drain (SIGTERM, `--drain-grace-ms`): for the grace period it goes on serving as a
//! lame duck — `/readyz` fails naming `draining`, every answer carries `Connection: close` and its
//! connection then closes, so a client with a kept-alive connection moves off it after one more answer
//! instead of sending on it just as the drain closes it; new connections are still taken. After the
//! grace the listener is closed; the connections it had accepted are served a moment longer, so a
//! request already on its way on one is answered rather than reset.
//!
//! A backend's drain seen from the gateway: calls that meet a backend stopping or stopped are `503`
//! with `Retry-After`, never a 500.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordo_harness::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};
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

#[tokio::test]
async fn a_connection_accepted_before_the_port_closes_has_its_first_request_answered_after_the_close() {
    // Arrange: a gateway with a short grace, draining, and a connection made in its grace that has
    // not sent its request yet (as a client whose request is still on its way when the port closes).
    let grace = Duration::from_millis(300);
    let flag = format!("--drain-grace-ms={}", grace.as_millis());
    let mut app = spawn_app_with(Options { gateway_args: vec![flag], ..Options::default() }).await;
    app.begin_stop(Service::Gateway);
    let mut late = connect(&app).await;

    // Act: once the port refuses connections, the request goes out on that connection.
    let address = app.address.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + grace * 10;
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "the port was still open {:?} into a grace of {grace:?}", grace * 10);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    late.write_all(b"GET /api/v1/auth/jwks HTTP/1.1\r\nHost: gateway\r\n\r\n").await.unwrap();

    // Assert: it is answered, told to close, and then closed — not reset unanswered.
    let answer = read_until_closed(&mut late, Duration::from_secs(5)).await.expect("closed after its answer");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "answered {answer:?}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");

    app.stop_service(Service::Gateway).await;
    app.cleanup().await;
}

/// How many times the task service is stopped and started under the reads.
const RESTARTS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_meeting_a_backend_as_it_drains_and_restarts_are_served_or_answered_503_never_500() {
    // Arrange: a task, and readers asking for it without pause on the gateway's kept-alive channel.
    let mut app = spawn_app_with(Options::default()).await;
    let (_, owner) = app.user(&format!("owner-{}@example.com", app.env.id), "Owner").await;
    let project = app.post_json_as(&owner.access, "/api/v1/projects", &json!({"name": "Drain", "key": "DRN"})).await;
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let task =
        app.post_json_as(&owner.access, "/api/v1/tasks", &json!({"project_id": project, "title": "read me"})).await;
    assert_eq!(task.status(), StatusCode::CREATED);
    let url = app.url(&format!("/api/v1/tasks/{}", task.json::<Value>().await.unwrap()["id"].as_str().unwrap()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, client, url, token) = (stop.clone(), app.client.clone(), url.clone(), owner.access.clone());
            tokio::spawn(async move {
                let mut answers: BTreeMap<(u16, bool), usize> = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let answer = client.get(&url).bearer_auth(&token).send().await.unwrap();
                    let retry_after = answer.headers().contains_key("retry-after");
                    *answers.entry((answer.status().as_u16(), retry_after)).or_default() += 1;
                }
                answers
            })
        })
        .collect();

    // Act: the task service drains (what SIGTERM starts) and comes back, again and again, under them.
    for _ in 0..RESTARTS {
        tokio::time::sleep(Duration::from_millis(700)).await;
        app.stop_service(Service::Task).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.start_service(Service::Task).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers: BTreeMap<(u16, bool), usize> = BTreeMap::new();
    for reader in readers {
        for (answer, count) in reader.await.unwrap() {
            *answers.entry(answer).or_default() += count;
        }
    }

    // Assert: every answer was the task or a 503 saying when to retry; both happened.
    let allowed = |(status, retry_after): &(u16, bool)| *status == 200 || (*status == 503 && *retry_after);
    assert!(answers.keys().all(allowed), "(status, Retry-After) → count: {answers:?}");
    assert!(answers.contains_key(&(503, true)), "no read met the stopped service: {answers:?}");
    assert!(answers.contains_key(&(200, false)), "{answers:?}");
    let after = app.client.get(&url).bearer_auth(&owner.access).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::OK, "the gateway reaches the restarted service");

    app.cleanup().await;
}
