//! `/projects/{id}/webhooks` through the gateway with every service and the real broker: a task
//! created through the API reaches a receiver on loopback signed with the secret the create showed
//! once, after three failures on the fourth attempt, which the delivery log shows; a member who is
//! no admin can neither list webhooks nor get a secret; a deployment that does not allow loopback
//! refuses such a URL at creation and never calls it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

/// What a receiver got, and the statuses it answers next (then 204).
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<(HeaderMap, Bytes)>>,
    answers: Mutex<VecDeque<u16>>,
}

async fn answer(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
    receiver.received.lock().unwrap().push((headers, body));
    let next = receiver.answers.lock().unwrap().pop_front().unwrap_or(204);
    axum::http::StatusCode::from_u16(next).unwrap()
}

/// A receiver on a free loopback port answering `answers` in turn, then 204; its URL.
async fn receiver(answers: &[u16]) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    receiver.answers.lock().unwrap().extend(answers);
    let app = Router::new().fallback(answer).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/ordo/hooks", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A project of `token`'s user, with `member_id` as a member when given; its id.
async fn project(app: &TestApp, token: &str, key: &str, member_id: Option<&str>) -> String {
    let body = json!({"name": format!("Hooks {key}"), "key": key});
    let created = send(app, token, Method::POST, "/projects", Some(body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    if let Some(member_id) = member_id {
        let body = json!({"user_id": member_id, "role": "member"});
        let added = send(app, token, Method::POST, &format!("/projects/{id}/members"), Some(body)).await;
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    id
}

#[tokio::test]
async fn a_task_created_through_the_api_reaches_the_receiver_signed_on_the_fourth_attempt() {
    // Arrange: waits between attempts a thousandth of production's; Ann owns a project with Bob as a
    // member, and makes a webhook for task events at a receiver that answers 500 three times.
    let app = spawn_app_with(Options {
        notification_args: vec!["--webhook-retry-scale".to_owned(), "0.001".to_owned()],
        ..Options::default()
    })
    .await;
    let (ann_address, bob_address) =
        (format!("ann-{}@example.com", app.env.id), format!("bob-{}@example.com", app.env.id));
    let (_, ann) = app.user(&ann_address, "Ann").await;
    let (bob_id, bob) = app.user(&bob_address, "Bob").await;
    let project = project(&app, &ann.access, "HOOK", Some(&bob_id)).await;
    let (url, receiver) = receiver(&[500, 500, 500]).await;
    let body = json!({"url": url, "event_types": ["task.created"], "description": "CI"});
    let created = send(&app, &ann.access, Method::POST, &format!("/projects/{project}/webhooks"), Some(body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let webhook: Value = created.json().await.unwrap();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    let webhook_id = webhook["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/projects/{project}/webhooks/{webhook_id}"));

    // Act: Ann creates a task.
    let task = json!({"project_id": project, "title": "Ship the hooks"});
    let task = send(&app, &ann.access, Method::POST, "/tasks", Some(task)).await;
    assert_eq!(task.status(), StatusCode::CREATED);
    let task: Value = task.json().await.unwrap();

    // Assert: the fourth request carries the task, signed with the secret; the log shows four
    // attempts, the last delivered; the webhook as read again never shows its secret.
    let mut received = Vec::new();
    for _ in 0..200 {
        received = receiver.received.lock().unwrap().clone();
        if received.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received.len(), 4, "four attempts reached the receiver");
    let (headers, body) = &received[3];
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    assert!(verifier.verify(body, headers).is_ok(), "the signature verifies with the shared secret");
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["type"], "task.created");
    assert_eq!(event["data"]["task"]["task_id"], task["id"]);
    assert_eq!(event["data"]["task"]["key"], "HOOK-1");
    let path = format!("/projects/{project}/webhooks/{webhook_id}/deliveries");
    let mut log = Value::Null;
    for _ in 0..100 {
        log = send(&app, &ann.access, Method::GET, &path, None).await.json().await.unwrap();
        if log["items"].as_array().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts: Vec<_> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].as_u64().unwrap(), a["outcome"].as_str().unwrap().to_owned(), a["status_code"].clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            (4, "delivered".to_owned(), json!(204)),
            (3, "failed".to_owned(), json!(500)),
            (2, "failed".to_owned(), json!(500)),
            (1, "failed".to_owned(), json!(500)),
        ]
    );
    let read = send(&app, &ann.access, Method::GET, &format!("/projects/{project}/webhooks/{webhook_id}"), None).await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert!(read.get("secret").is_none());
    assert_eq!(read["description"], "CI");

    // Bob, a member who is no admin, may neither list the webhooks nor rotate (and so read) a secret.
    let listed = send(&app, &bob.access, Method::GET, &format!("/projects/{project}/webhooks"), None).await;
    assert_problem(listed, StatusCode::FORBIDDEN).await;
    let rotate = format!("/projects/{project}/webhooks/{webhook_id}/rotate-secret");
    let rotated = send(&app, &bob.access, Method::POST, &rotate, None).await;
    assert_problem(rotated, StatusCode::FORBIDDEN).await;
    app.cleanup().await;
}

#[tokio::test]
async fn without_loopback_allowed_a_loopback_url_is_refused_at_creation_and_never_called() {
    // Arrange: a deployment that does not let webhooks reach loopback; a receiver there.
    let app = spawn_app_with(Options {
        notification_args: vec!["--webhook-allow-loopback".to_owned(), "false".to_owned()],
        ..Options::default()
    })
    .await;
    let (_, ann) = app.user(&format!("ann-{}@example.com", app.env.id), "Ann").await;
    let project = project(&app, &ann.access, "LOOP", None).await;
    let (url, receiver) = receiver(&[]).await;

    // Act: Ann asks for a webhook there, then creates a task.
    let body = json!({"url": url, "event_types": ["task.*"]});
    let refused = send(&app, &ann.access, Method::POST, &format!("/projects/{project}/webhooks"), Some(body)).await;
    let task = json!({"project_id": project, "title": "Nothing to hear"});
    assert_eq!(send(&app, &ann.access, Method::POST, "/tasks", Some(task)).await.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert: refused on `url`; no webhook exists; the receiver was never called.
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "url");
    let listed = send(&app, &ann.access, Method::GET, &format!("/projects/{project}/webhooks"), None).await;
    assert_eq!(listed.json::<Value>().await.unwrap()["items"], json!([]));
    assert!(receiver.received.lock().unwrap().is_empty());
    app.cleanup().await;
}
