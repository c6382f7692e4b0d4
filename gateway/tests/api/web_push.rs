//! Web Push through the gateway with every service and the real broker: a browser subscribes with
//! the key `GET /notifications/push-key` gives, and a notification made through the API reaches its
//! push service signed with that key and decrypts there; a subscription its push service answers
//! `410` for is removed; the caller removes their own subscription, once.

use std::time::Duration;

use ordo_testkit::push::{BrowserSubscription, PushService, vapid_private_key};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

const SUBJECT: &str = "mailto:push@ordo.example";

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `subscription` as a browser's `PushSubscription.toJSON()` gives it.
fn browser_json(subscription: &BrowserSubscription) -> Value {
    json!({
        "endpoint": subscription.endpoint,
        "expirationTime": null,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    })
}

#[tokio::test]
async fn a_notification_reaches_the_browser_signed_and_decrypts_and_a_gone_subscription_is_removed() {
    // Arrange: the notification service signs with a fresh VAPID key; Bob's browser subscribes twice
    // (one subscription its push service has forgotten: 410) with the key the API gives.
    let key = vapid_private_key();
    let app = spawn_app_with(Options {
        notification_args: ["--vapid-private-key", key.as_str(), "--vapid-subject", SUBJECT]
            .map(str::to_owned)
            .to_vec(),
        notification_pool: true,
        ..Options::default()
    })
    .await;
    let (_, ann) = app.user(&format!("ann-{}@example.com", app.env.id), "Ann").await;
    let (bob_id, bob) = app.user(&format!("bob-{}@example.com", app.env.id), "Bob").await;
    let push_key = send(&app, &bob.access, Method::GET, "/notifications/push-key", None).await;
    assert_eq!(push_key.status(), StatusCode::OK);
    let public_key = push_key.json::<Value>().await.unwrap()["public_key"].as_str().unwrap().to_owned();
    let service = PushService::start(SUBJECT).await;
    for path in ["/push/bob", "/push/gone"] {
        let body = browser_json(&service.subscription(path));
        let subscribed = send(&app, &bob.access, Method::POST, "/notifications/push-subscriptions", Some(body)).await;
        assert_eq!(subscribed.status(), StatusCode::OK);
    }

    // Act: Ann adds Bob to her project.
    let created = send(&app, &ann.access, Method::POST, "/projects", Some(json!({"name": "Push", "key": "PSH"}))).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let project = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": bob_id, "role": "member"});
    let added = send(&app, &ann.access, Method::POST, &format!("/projects/{project}/members"), Some(member)).await;
    assert_eq!(added.status(), StatusCode::CREATED);

    // Assert: each subscription got the notification, signed with the key the API gave and
    // decrypted by the browser's keys; it is the one Bob lists.
    let mut received = service.received_once(2).await;
    received.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(received.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/push/bob", "/push/gone"]);
    let list: Value = send(&app, &bob.access, Method::GET, "/notifications", None).await.json().await.unwrap();
    for message in &received {
        assert_eq!(message.vapid_key, public_key);
        let payload: Value = serde_json::from_slice(&message.plaintext).unwrap();
        assert_eq!(payload["kind"], "project.member_added");
        assert_eq!(payload["title"], "You were added to Push");
        assert_eq!(payload["id"], list["items"][0]["id"]);
    }
    // The forgotten one is removed by the service (so removing it finds nothing); the other is
    // removed by Bob, once.
    let remove = |path: &str| {
        let endpoint = service.endpoint(path).replace(':', "%3A").replace('/', "%2F");
        format!("/notifications/push-subscriptions?endpoint={endpoint}")
    };
    for attempt in 0.. {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM push_subscription WHERE endpoint = ?")
            .bind(service.endpoint("/push/gone"))
            .fetch_one(app.notification_pool())
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(attempt < 100, "the subscription answered 410 is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = send(&app, &bob.access, Method::DELETE, &remove("/push/gone"), None).await;
    assert_problem(gone, StatusCode::NOT_FOUND).await;
    let removed = send(&app, &bob.access, Method::DELETE, &remove("/push/bob"), None).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let again = send(&app, &bob.access, Method::DELETE, &remove("/push/bob"), None).await;
    assert_problem(again, StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}
