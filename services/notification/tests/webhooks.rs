//! Project webhooks end to end with real identity, project, task and notification services,
//! MariaDB and RabbitMQ, and receivers on loopback (the only address tests send to): events arrive
//! signed with the endpoint's secret, failures are retried and logged, a `410` turns the endpoint
//! off, only owners and admins manage webhooks, and a deployment that does not allow loopback refuses
//! such an endpoint and never calls it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ordo_harness::{Service, User, bearer};
use ordo_proto::notification::v1 as pb;
use ordo_proto::notification::v1::webhook_service_client::WebhookServiceClient;
use ordo_testkit::TestEnv;
use tonic::Code;
use tonic::transport::Channel;

mod support;

use support::{Stack, spawn_with};

/// What a receiver got, and the statuses it answers next (then 204).
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<(HeaderMap, Bytes)>>,
    answers: Mutex<VecDeque<u16>>,
}

impl Receiver {
    fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().unwrap().clone()
    }
}

/// A receiver on a free loopback port that answers `answers` in turn, then 204; its URL.
async fn receiver(answers: &[u16]) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    receiver.answers.lock().unwrap().extend(answers);
    let app = Router::new().fallback(answer).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/ordo", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

async fn answer(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.received.lock().unwrap().push((headers, body));
    let next = receiver.answers.lock().unwrap().pop_front().unwrap_or(204);
    StatusCode::from_u16(next).unwrap()
}

/// What `receiver` got once it has `count` requests.
async fn received_once(receiver: &Receiver, count: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..200 {
        let received = receiver.received();
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the receiver got {} requests, not {count}", receiver.received().len());
}

fn webhooks(stack: &Stack) -> WebhookServiceClient<Channel> {
    WebhookServiceClient::new(stack.processes.channel(Service::Notification))
}

/// A webhook of `project` to `url` for `types`, made by `owner`: the webhook and its secret.
async fn create(stack: &Stack, owner: &User, project: &str, url: &str, types: &[&str]) -> (pb::Webhook, String) {
    let request = pb::CreateWebhookRequest {
        project_id: project.to_owned(),
        url: url.to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    };
    let created = webhooks(stack).create_webhook(bearer(&owner.access_token, request)).await.unwrap().into_inner();
    (created.webhook.unwrap(), created.secret)
}

/// Whether `body` with `headers` verifies with `secret`, as a receiver checks it.
fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    standardwebhooks::Webhook::new(secret).unwrap().verify(body, headers).is_ok()
}

/// The attempts of `webhook`'s log once it has `count`, newest first.
async fn log_once(stack: &Stack, owner: &User, webhook: &pb::Webhook, count: usize) -> Vec<pb::WebhookAttempt> {
    for _ in 0..200 {
        let request = pb::ListWebhookDeliveriesRequest {
            project_id: webhook.project_id.clone(),
            webhook_id: webhook.id.clone(),
            page: None,
        };
        let log = webhooks(stack).list_webhook_deliveries(bearer(&owner.access_token, request)).await.unwrap();
        let attempts = log.into_inner().attempts;
        if attempts.len() >= count {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log of {} did not reach {count} attempts", webhook.id);
}

async fn get(stack: &Stack, owner: &User, webhook: &pb::Webhook) -> pb::Webhook {
    let request = pb::GetWebhookRequest { project_id: webhook.project_id.clone(), webhook_id: webhook.id.clone() };
    webhooks(stack).get_webhook(bearer(&owner.access_token, request)).await.unwrap().into_inner()
}

#[tokio::test]
async fn a_task_event_arrives_signed_and_retries_follow_failures_until_one_succeeds() {
    // Arrange: Ann's project has a webhook for task events at a receiver that answers 500 three times,
    // and one for comments only at another receiver.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--webhook-retry-scale", "0.001"]).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let project = stack.project(&ann, "HOOK", &[]).await;
    let (url, flaky) = receiver(&[500, 500, 500]).await;
    let (webhook, secret) = create(&stack, &ann, &project, &url, &["task.*"]).await;
    let (comments_url, comments) = receiver(&[]).await;
    create(&stack, &ann, &project, &comments_url, &["task.comment_added"]).await;
    assert!(secret.starts_with("whsec_"));
    assert!(webhook.active);
    assert_eq!(webhook.event_types, ["task.*"]);

    // Act: Ann creates a task.
    let task = stack.task(&ann, &project, &[]).await;

    // Assert: the fourth attempt delivers the same signed message; the log shows four attempts, the
    // last delivered; the comments-only receiver got nothing.
    let received = received_once(&flaky, 4).await;
    let ids: Vec<_> = received.iter().map(|(headers, _)| headers["webhook-id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "every attempt carries the same webhook-id");
    let (headers, body) = &received[3];
    assert!(verifies(&secret, headers, body), "the signature verifies with the shared secret");
    assert!(!verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body), "and with no other");
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["type"], "task.created");
    assert_eq!(event["project_id"], project.as_str());
    assert_eq!(event["actor_id"], ann.id.as_str());
    assert_eq!(event["data"]["task"]["task_id"], task.id.as_str());
    assert_eq!(event["data"]["task"]["key"], "HOOK-1");
    assert_eq!(headers["webhook-id"].to_str().unwrap(), event["id"].as_str().unwrap());
    let log = log_once(&stack, &ann, &webhook, 4).await;
    let outcomes: Vec<_> = log.iter().map(|a| (a.attempt, a.outcome.as_str(), a.status_code)).collect();
    assert_eq!(outcomes, [(4, "delivered", 204), (3, "failed", 500), (2, "failed", 500), (1, "failed", 500)]);
    assert!(log.iter().all(|a| a.event_type == "task.created" && a.delivery_id == log[0].delivery_id));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flaky.received().len(), 4, "a delivered message is not sent again");
    assert!(comments.received().is_empty());
    assert!(get(&stack, &ann, &webhook).await.active);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn redelivery_ping_rotation_and_gone() {
    // Arrange: Ann's project has a webhook for created tasks, and a task already delivered to it.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &[]).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let project = stack.project(&ann, "ROT", &[]).await;
    let (url, receiver) = receiver(&[]).await;
    let (webhook, old_secret) = create(&stack, &ann, &project, &url, &["task.created"]).await;
    stack.task(&ann, &project, &[]).await;
    let first = received_once(&receiver, 1).await;
    let log = log_once(&stack, &ann, &webhook, 1).await;

    // Act: redeliver it; ping; rotate the secret and create another task.
    let request = pb::RedeliverWebhookRequest {
        project_id: project.clone(),
        webhook_id: webhook.id.clone(),
        delivery_id: log[0].delivery_id.clone(),
    };
    let again = webhooks(&stack).redeliver_webhook(bearer(&ann.access_token, request)).await.unwrap().into_inner();
    let redelivered = received_once(&receiver, 2).await;
    let request = pb::PingWebhookRequest { project_id: project.clone(), webhook_id: webhook.id.clone() };
    let ping = webhooks(&stack).ping_webhook(bearer(&ann.access_token, request)).await.unwrap().into_inner();
    let pinged = received_once(&receiver, 3).await;
    let request = pb::RotateWebhookSecretRequest { project_id: project.clone(), webhook_id: webhook.id.clone() };
    let rotated =
        webhooks(&stack).rotate_webhook_secret(bearer(&ann.access_token, request)).await.unwrap().into_inner();
    stack.task(&ann, &project, &[]).await;
    let after_rotation = received_once(&receiver, 4).await;

    // Assert: the redelivery is the same message as a new delivery; the ping is a `webhook.ping`; after
    // the rotation both secrets verify (two signatures) and the webhook tells when it rotated.
    assert_ne!(again.id, log[0].delivery_id);
    assert_eq!(redelivered[1].0["webhook-id"], first[0].0["webhook-id"]);
    assert_eq!(redelivered[1].1, first[0].1);
    assert_eq!(ping.event_type, "webhook.ping");
    let ping_body: serde_json::Value = serde_json::from_slice(&pinged[2].1).unwrap();
    assert_eq!(ping_body["type"], "webhook.ping");
    assert_eq!(ping_body["data"]["webhook_id"], webhook.id.as_str());
    assert!(verifies(&old_secret, &pinged[2].0, &pinged[2].1));
    let (headers, body) = &after_rotation[3];
    assert_ne!(rotated.secret, old_secret);
    assert!(verifies(&rotated.secret, headers, body));
    assert!(verifies(&old_secret, headers, body), "the replaced secret signs for a day");
    assert_eq!(headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    let rotated_webhook = rotated.webhook.unwrap();
    assert!(rotated_webhook.secret_rotated_at.is_some());
    assert!(rotated_webhook.version > webhook.version);

    // Act: the receiver is gone (410) at the next event.
    receiver.answers.lock().unwrap().push_back(410);
    stack.task(&ann, &project, &[]).await;
    received_once(&receiver, 5).await;
    let mut state = get(&stack, &ann, &webhook).await;
    for _ in 0..100 {
        if !state.active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = get(&stack, &ann, &webhook).await;
    }

    // Assert: the webhook is off because the receiver is gone, Ann (its project's owner) was told,
    // and nothing more is sent to it.
    assert!(!state.active);
    assert_eq!(state.disabled_reason, "gone");
    assert_eq!(stack.kinds_once(&ann, 1).await, ["project.webhook_disabled"]);
    let notice = stack.list(&ann, Default::default()).await.notifications.remove(0);
    assert_eq!(notice.project_id, project);
    assert!(notice.body.starts_with(&format!("{url} answered 410 Gone")), "{}", notice.body);
    stack.task(&ann, &project, &[]).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), 5);
    let request = pb::PingWebhookRequest { project_id: project.clone(), webhook_id: webhook.id.clone() };
    let refused = webhooks(&stack).ping_webhook(bearer(&ann.access_token, request)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn only_owners_and_admins_manage_webhooks_and_bad_input_is_refused() {
    // Arrange: Ann owns a project with Bob as a member; Cat is not in it. Ann has a webhook.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &[]).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let cat = stack.processes.sign_up("cat@example.com").await;
    let project = stack.project(&ann, "ADM", &[&bob]).await;
    let (url, _receiver) = receiver(&[]).await;
    let (webhook, _) = create(&stack, &ann, &project, &url, &["task.created"]).await;
    let list = |user: &User| {
        let request = pb::ListWebhooksRequest { project_id: project.clone(), page: None };
        bearer(&user.access_token, request)
    };

    // Act and assert: Ann lists it; Bob, a member, may not; Cat does not see the project.
    let listed = webhooks(&stack).list_webhooks(list(&ann)).await.unwrap().into_inner();
    assert_eq!(listed.webhooks.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), [webhook.id.as_str()]);
    assert_eq!(webhooks(&stack).list_webhooks(list(&bob)).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(webhooks(&stack).list_webhooks(list(&cat)).await.unwrap_err().code(), Code::NotFound);
    let request = pb::RotateWebhookSecretRequest { project_id: project.clone(), webhook_id: webhook.id.clone() };
    let refused = webhooks(&stack).rotate_webhook_secret(bearer(&bob.access_token, request)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "a member never gets a secret");

    // Bad fields are named; a stale version is refused; an update applies.
    let bad = pb::CreateWebhookRequest {
        project_id: project.clone(),
        url: "ftp://example.com/".to_owned(),
        event_types: vec!["Task.Created".to_owned()],
        rate_limit: 5000,
        ..Default::default()
    };
    let refused = webhooks(&stack).create_webhook(bearer(&ann.access_token, bad)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_details_bad_request(&refused).unwrap();
    let fields: Vec<_> = details.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["event_types", "rate_limit"], "the URL is checked once the rest is right");
    let update = |expected_version| pb::UpdateWebhookRequest {
        project_id: project.clone(),
        webhook_id: webhook.id.clone(),
        active: Some(false),
        event_types: Some(pb::EventTypes { event_types: vec!["task.*".to_owned()] }),
        expected_version,
        ..Default::default()
    };
    let stale = webhooks(&stack).update_webhook(bearer(&ann.access_token, update(Some(7)))).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let updated =
        webhooks(&stack).update_webhook(bearer(&ann.access_token, update(Some(1)))).await.unwrap().into_inner();
    assert!(!updated.active);
    assert_eq!(updated.event_types, ["task.*"]);
    assert_eq!(updated.version, 2);

    // Deleted, it is gone.
    let request = pb::DeleteWebhookRequest {
        project_id: project.clone(),
        webhook_id: webhook.id.clone(),
        expected_version: None,
    };
    webhooks(&stack).delete_webhook(bearer(&ann.access_token, request)).await.unwrap();
    let request = pb::GetWebhookRequest { project_id: project.clone(), webhook_id: webhook.id.clone() };
    let gone = webhooks(&stack).get_webhook(bearer(&ann.access_token, request)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn without_loopback_allowed_a_loopback_receiver_is_refused_and_never_called() {
    // Arrange: a deployment that does not let webhooks reach loopback.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--webhook-allow-loopback", "false"]).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let project = stack.project(&ann, "LOOP", &[]).await;
    let (url, receiver) = receiver(&[]).await;
    let port = url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_owned();

    // Act: Ann asks for webhooks at the receiver by address (v4, v6, mapped) and by name.
    let mut codes = Vec::new();
    for url in [
        url.clone(),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let request = pb::CreateWebhookRequest {
            project_id: project.clone(),
            url,
            event_types: vec!["*".to_owned()],
            ..Default::default()
        };
        let refused = webhooks(&stack).create_webhook(bearer(&ann.access_token, request)).await.unwrap_err();
        let details = tonic_types::StatusExt::get_details_bad_request(&refused).unwrap();
        codes.push((refused.code(), details.field_violations[0].field.clone()));
    }
    stack.task(&ann, &project, &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert: each is refused on `url`, and the receiver was never called.
    assert!(codes.iter().all(|(code, field)| *code == Code::InvalidArgument && field == "url"), "{codes:?}");
    assert!(receiver.received().is_empty());
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn concurrent_creates_stop_at_the_cap_without_refusing_any_below_it() {
    // Arrange: Ann's project and one other project, both new.
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &[]).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let project = stack.project(&ann, "CAP", &[]).await;
    let other = stack.project(&ann, "CAPB", &[]).await;

    // Act: 24 webhooks of the first project and 4 of the other asked for at once.
    let creates = (0..28).map(|n| {
        let (client, token) = (webhooks(&stack), ann.access_token.clone());
        let project_id = if n < 24 { project.clone() } else { other.clone() };
        async move {
            let request = pb::CreateWebhookRequest {
                project_id,
                url: format!("http://127.0.0.1:9/cap/{n}"),
                event_types: vec!["project.archived".to_owned()],
                ..Default::default()
            };
            let mut client = client;
            client.create_webhook(bearer(&token, request)).await.map(|_| ()).map_err(|status| status.code())
        }
    });
    let answers = futures::future::join_all(creates).await;

    // Assert: exactly 20 of the first project's were made, the rest refused for the cap (never a lost
    // race), and all of the other's.
    let first: Vec<_> = answers[..24].iter().collect();
    assert_eq!(first.iter().filter(|a| a.is_ok()).count(), 20, "{first:?}");
    assert!(first.iter().all(|a| matches!(a, Ok(()) | Err(Code::FailedPrecondition))), "{first:?}");
    assert!(answers[24..].iter().all(Result::is_ok), "{:?}", &answers[24..]);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
