//! Web Push messages to a push service on loopback (the only address tests send to) that does what a
//! real one and the browser behind it do: it checks each request's VAPID signature and decrypts its
//! payload with the subscription's keys. What arrives, how the push service's answers read, and
//! what is never sent (an address the deployment does not allow, a payload too large, a bad
//! subscription); and end to end, with identity, project, task and notification running: a
//! notification reaches its user's subscriptions as the preferences allow, a subscription the push
//! service says is gone is removed, and subscriptions are checked and kept per user.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ordo_harness::bearer;
use ordo_notification::domain::webhook::Reach;
use ordo_notification::infra::web_push::{
    MAX_ENDPOINT_LEN, MAX_PAYLOAD_BYTES, PushOutcome, Subscription, SubscriptionError, Urgency, VapidKey,
    VapidKeyError, WebPush,
};

use ordo_proto::notification::v1 as pb;
use ordo_testkit::push::{Browser, BrowserSubscription, PushService, vapid_private_key};

mod support;

const SUBJECT: &str = "mailto:push@ordo.example";

/// The VAPID test key of the `web-push` crate and the public key it derives (its own test vector).
const KNOWN_PRIVATE: &str = "IQ9Ur0ykXoHS9gzfYX0aBjy9lvdrjx_PFUXmie9YRcY";
const KNOWN_PUBLIC: &str = "BMjQIp55pdbU8pfCBKyXcZjlmER_mXt5LqNrN1hrXbdBS5EnhIbMu3Au-RV53iIpztzNXkGI56BFB1udQ8Bq_H4";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A fresh VAPID key.
fn vapid_key() -> VapidKey {
    VapidKey::new(&vapid_private_key(), SUBJECT).unwrap()
}

/// The service's form of a browser's subscription.
fn sub(subscription: BrowserSubscription) -> Subscription {
    Subscription { endpoint: subscription.endpoint, p256dh: subscription.p256dh, auth: subscription.auth }
}

/// `browser`'s subscription at `endpoint`, in the service's form.
fn sub_at(browser: &Browser, endpoint: &str) -> Subscription {
    sub(browser.subscription(endpoint))
}

async fn push_service() -> Arc<PushService> {
    PushService::start(SUBJECT).await
}

fn loopback() -> Reach {
    Reach { loopback: true, private: false }
}

fn sender(reach: Reach) -> WebPush {
    WebPush::new(vapid_key(), reach, Duration::from_secs(5)).unwrap()
}

const HOUR: Duration = Duration::from_secs(3600);

/// Sends `hi` to the subscription of `service`'s browser at `path`.
async fn hi(push: &WebPush, service: &PushService, path: &str) -> PushOutcome {
    push.send(&sub(service.subscription(path)), b"hi", HOUR, Urgency::Normal).await
}

#[tokio::test]
async fn a_message_arrives_signed_with_vapid_and_decrypts_to_the_payload() {
    // Arrange: a push service for one browser's subscription, and a sender with a fresh key.
    let service = push_service().await;
    let push = sender(loopback());
    let subscription = sub(service.subscription("/push/ok"));
    let payload = br#"{"title":"Ann assigned you a task","url":"/tasks/42"}"#;

    // Act: send it to be kept an hour, urgently.
    let outcome = push.send(&subscription, payload, HOUR, Urgency::High).await;

    // Assert: delivered; the push service verified the VAPID token (audience, subject, expiry) with
    // the sender's public key and decrypted the payload; TTL, urgency and encoding are set.
    assert_eq!(outcome, PushOutcome::Delivered);
    let received = service.received();
    let [message] = received.as_slice() else { panic!("one message, not {}", received.len()) };
    assert_eq!(message.plaintext, payload);
    assert_eq!(message.vapid_key, push.key().public_key());
    assert_eq!((message.claims.aud.as_str(), message.claims.sub.as_str()), (service.origin(), SUBJECT));
    assert!(message.claims.exp > now(), "the token has not expired");
    assert_eq!(message.headers["ttl"], "3600");
    assert_eq!(message.headers["urgency"], "high");
    assert_eq!(message.headers["content-encoding"], "aes128gcm");
    assert_eq!(message.headers["content-type"], "application/octet-stream");
    assert!(message.headers["user-agent"].to_str().unwrap().starts_with("Ordo-WebPush/"));
}

#[tokio::test]
async fn a_payload_of_the_largest_size_arrives_and_a_larger_one_is_refused_without_sending() {
    // Arrange
    let service = push_service().await;
    let push = sender(loopback());
    let subscription = sub(service.subscription("/push/ok"));
    let largest = vec![b'a'; MAX_PAYLOAD_BYTES];
    let larger = vec![b'a'; MAX_PAYLOAD_BYTES + 1];

    // Act
    let sent = push.send(&subscription, &largest, HOUR, Urgency::Normal).await;
    let refused = push.send(&subscription, &larger, HOUR, Urgency::Normal).await;

    // Assert: the largest arrives whole; the larger is rejected and only one message was sent.
    assert_eq!(sent, PushOutcome::Delivered);
    let PushOutcome::Rejected(why) = refused else { panic!("{refused:?}") };
    assert!(why.contains("payload"), "{why}");
    let received = service.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].plaintext, largest);
}

#[tokio::test]
async fn a_subscription_the_push_service_no_longer_knows_is_gone() {
    // Arrange
    let service = push_service().await;
    let push = sender(loopback());

    // Act
    let gone = hi(&push, &service, "/push/gone").await;
    let unknown = hi(&push, &service, "/push/unknown").await;

    // Assert: 410 and 404 both mean the subscription is to be removed.
    assert_eq!(gone, PushOutcome::Gone);
    assert_eq!(unknown, PushOutcome::Gone);
    assert_eq!(service.received().len(), 2, "both were verified and decrypted");
}

#[tokio::test]
async fn an_overloaded_or_failing_push_service_is_tried_again() {
    // Arrange
    let service = push_service().await;
    let push = sender(loopback());

    // Act
    let busy = hi(&push, &service, "/push/busy").await;
    let broken = hi(&push, &service, "/push/broken").await;

    // Assert: 429 after its Retry-After; 500 whenever.
    assert_eq!(busy, PushOutcome::Retry { after: Some(Duration::from_secs(120)) });
    assert_eq!(broken, PushOutcome::Retry { after: None });
}

#[tokio::test]
async fn a_push_service_that_does_not_answer_in_time_is_tried_again() {
    // Arrange
    let service = push_service().await;
    let push = WebPush::new(vapid_key(), loopback(), Duration::from_millis(300)).unwrap();
    let subscription = sub(service.subscription("/push/slow"));

    // Act
    let outcome = push.send(&subscription, b"hi", HOUR, Urgency::Normal).await;

    // Assert
    assert_eq!(outcome, PushOutcome::Retry { after: None });
}

#[tokio::test]
async fn a_bad_request_is_rejected_with_an_excerpt_of_the_reason() {
    // Arrange
    let service = push_service().await;
    let push = sender(loopback());

    // Act
    let outcome = hi(&push, &service, "/push/bad").await;

    // Assert: not worth another try; the reason has the status and the start of the body only.
    let PushOutcome::Rejected(why) = outcome else { panic!("{outcome:?}") };
    assert!(why.contains("400") && why.contains(r#"{"reason":"xxx"#), "{why}");
    assert!(why.len() < 1024, "{} bytes", why.len());
}

#[tokio::test]
async fn a_token_the_push_service_does_not_accept_is_rejected() {
    // Arrange: a sender whose VAPID subject is not the one the push service expects.
    let service = push_service().await;
    let key = VapidKey::new(KNOWN_PRIVATE, "mailto:someone@else.example").unwrap();
    let push = WebPush::new(key, loopback(), Duration::from_secs(5)).unwrap();

    // Act
    let outcome = hi(&push, &service, "/push/ok").await;

    // Assert: the push service answered 401, which no retry mends.
    let PushOutcome::Rejected(why) = outcome else { panic!("{outcome:?}") };
    assert!(why.contains("401") && why.contains("vapid"), "{why}");
    assert!(service.received().is_empty());
}

#[tokio::test]
async fn a_redirect_is_rejected_and_not_followed() {
    // Arrange
    let service = push_service().await;
    let push = sender(loopback());

    // Act
    let outcome = hi(&push, &service, "/push/moved").await;

    // Assert
    let PushOutcome::Rejected(why) = outcome else { panic!("{outcome:?}") };
    assert!(why.contains("307"), "{why}");
    let paths: Vec<String> = service.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/push/moved"]);
}

#[tokio::test]
async fn a_loopback_push_service_is_never_called_when_the_deployment_does_not_allow_loopback() {
    // Arrange: a deployment that sends to the public internet only.
    let service = push_service().await;
    let push = sender(Reach::default());
    let port = service.origin().rsplit(':').next().unwrap();

    for endpoint in [
        service.endpoint("/push/ok"),
        format!("https://127.0.0.1:{port}/push/ok"),
        format!("https://[::1]:{port}/push/ok"),
        format!("https://[::ffff:127.0.0.1]:{port}/push/ok"),
        format!("https://localhost:{port}/push/ok"),
    ] {
        // Act
        let outcome = push.send(&sub(service.browser().subscription(&endpoint)), b"hi", HOUR, Urgency::Normal).await;

        // Assert: rejected (never worth another try), saying why.
        let PushOutcome::Rejected(why) = outcome else { panic!("{endpoint}: {outcome:?}") };
        assert!(
            why.contains("https") || why.contains("may not reach") || why.contains("does not send"),
            "{endpoint}: {why}"
        );
    }
    assert!(service.received().is_empty(), "nothing was sent");
}

#[test]
fn a_vapid_key_gives_its_public_key_and_never_shows_its_private_key() {
    // Act
    let key = VapidKey::new(KNOWN_PRIVATE, SUBJECT).unwrap();

    // Assert
    assert_eq!(key.public_key(), KNOWN_PUBLIC);
    assert_eq!(key.subject(), SUBJECT);
    let shown = format!("{key:?}");
    assert!(!shown.contains(KNOWN_PRIVATE), "{shown}");
    assert!(shown.contains(KNOWN_PUBLIC), "{shown}");
}

#[test]
fn a_bad_vapid_key_or_subject_is_refused() {
    // Arrange
    let zero = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let order_or_more = URL_SAFE_NO_PAD.encode([0xffu8; 32]);
    let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
    let long = URL_SAFE_NO_PAD.encode([1u8; 33]);

    // Act and assert
    for bad in ["", "not base64!", short.as_str(), long.as_str(), &"A".repeat(10_000)] {
        assert_eq!(VapidKey::new(bad, SUBJECT).unwrap_err(), VapidKeyError::Encoding, "{bad:?}");
    }
    for bad in [zero.as_str(), order_or_more.as_str()] {
        assert_eq!(VapidKey::new(bad, SUBJECT).unwrap_err(), VapidKeyError::Key, "{bad:?}");
    }
    for bad in ["", "push@ordo.example", "mailto:", "http://ordo.example", "https://user:pw@ordo.example", "ftp://x"] {
        assert_eq!(VapidKey::new(KNOWN_PRIVATE, bad).unwrap_err(), VapidKeyError::Subject, "{bad:?}");
    }
    assert!(VapidKey::new(KNOWN_PRIVATE, "https://ordo.example/contact").is_ok());
}

#[test]
fn a_browser_subscription_is_taken() {
    // Arrange
    let browser = Browser::new();
    let subscription = sub_at(&browser, "https://fcm.googleapis.com/fcm/send/abc:APA91b");
    let padded = Subscription { auth: format!("{}==", subscription.auth), ..subscription.clone() };

    // Act and assert: padding is tolerated; http only where loopback is allowed.
    assert_eq!(subscription.check(Reach::default()), Ok(()));
    assert_eq!(padded.check(Reach::default()), Ok(()));
    assert_eq!(sub_at(&browser, "http://127.0.0.1:9000/push").check(loopback()), Ok(()));
    assert!(!format!("{subscription:?}").contains(&subscription.auth), "the secret is not shown");
}

#[test]
fn bad_subscriptions_are_refused_with_the_rule_they_break() {
    // Arrange
    let browser = Browser::new();
    let good = sub_at(&browser, "https://push.example.com/s/1");
    let with_endpoint = |endpoint: &str| Subscription { endpoint: endpoint.to_owned(), ..good.clone() };
    let with_p256dh = |p256dh: &str| Subscription { p256dh: p256dh.to_owned(), ..good.clone() };
    let with_auth = |auth: &str| Subscription { auth: auth.to_owned(), ..good.clone() };
    let compressed = {
        let mut point = browser.public_key()[..33].to_vec();
        point[0] = 0x02;
        URL_SAFE_NO_PAD.encode(point)
    };
    let not_uncompressed = {
        let mut point = browser.public_key().to_vec();
        point[0] = 0x05;
        URL_SAFE_NO_PAD.encode(point)
    };
    let long = format!("https://push.example.com/{}", "a".repeat(MAX_ENDPOINT_LEN));
    let open = Reach { loopback: true, private: true };
    let check = |subscription: Subscription| subscription.check(Reach::default()).unwrap_err();

    // Act and assert
    assert_eq!(check(with_endpoint(&long)), SubscriptionError::EndpointTooLong);
    for invalid in
        ["push.example.com/s/1", "http://push.example.com/s/1", "ftp://push.example.com/", "file:///etc/passwd", ""]
    {
        assert_eq!(check(with_endpoint(invalid)), SubscriptionError::EndpointInvalid, "{invalid}");
    }
    assert_eq!(check(with_endpoint("https://u:p@push.example.com/s")), SubscriptionError::EndpointCredentials);
    assert_eq!(check(with_endpoint("https://push.example.com/s#x")), SubscriptionError::EndpointFragment);
    for unreachable in ["https://10.0.0.1/s", "https://[::1]/s", "https://169.254.169.254/latest"] {
        assert_eq!(check(with_endpoint(unreachable)), SubscriptionError::EndpointUnreachable, "{unreachable}");
    }
    assert_eq!(
        with_endpoint("https://169.254.169.254/latest").check(open).unwrap_err(),
        SubscriptionError::EndpointUnreachable
    );
    for bad in ["", "!!!", compressed.as_str(), not_uncompressed.as_str(), &"A".repeat(200)] {
        assert_eq!(check(with_p256dh(bad)), SubscriptionError::P256dh, "{bad:?}");
    }
    for bad in ["", "!!!", &URL_SAFE_NO_PAD.encode([1u8; 15]), &URL_SAFE_NO_PAD.encode([1u8; 17])] {
        assert_eq!(check(with_auth(bad)), SubscriptionError::Auth, "{bad:?}");
    }
}

#[tokio::test]
async fn a_subscription_whose_key_is_not_on_the_curve_is_rejected_without_sending() {
    // Arrange: 65 bytes starting with 0x04 that pass `check` but are no point of P-256.
    let service = push_service().await;
    let push = sender(loopback());
    let mut point = [0x04u8; 65];
    point[1..].fill(0x01);
    let subscription = Subscription { p256dh: URL_SAFE_NO_PAD.encode(point), ..sub(service.subscription("/push/ok")) };

    // Act
    let outcome = push.send(&subscription, b"hi", HOUR, Urgency::Normal).await;

    // Assert
    assert!(matches!(outcome, PushOutcome::Rejected(_)), "{outcome:?}");
    assert!(service.received().is_empty());
}

/// Identity, project, task and notification, the notification service signing push messages with
/// the `web-push` crate's test key.
async fn stack_with_push(env: &ordo_testkit::TestEnv) -> support::Stack {
    support::spawn_with(env, &["--vapid-private-key", KNOWN_PRIVATE, "--vapid-subject", SUBJECT]).await
}

/// `user`'s subscription of `service`'s browser at `path`, registered through the API.
async fn subscribe(stack: &mut support::Stack, user: &ordo_harness::User, service: &PushService, path: &str) {
    let subscription = service.subscription(path);
    let request = pb::SubscribePushRequest {
        endpoint: subscription.endpoint,
        p256dh: subscription.p256dh,
        auth: subscription.auth,
    };
    stack.notifications.subscribe_push(bearer(&user.access_token, request)).await.unwrap();
}

#[tokio::test]
async fn a_notification_reaches_every_push_subscription_of_its_user_and_decrypts() {
    // Arrange: Bob's browser subscribes with the key the service gives; Cat turned push off for
    // being added to a project.
    let env = ordo_testkit::TestEnv::new();
    let mut stack = stack_with_push(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let cat = stack.processes.sign_up("cat@example.com").await;
    let key = stack.notifications.get_push_key(bearer(&bob.access_token, pb::GetPushKeyRequest {})).await.unwrap();
    assert_eq!(key.into_inner().public_key, KNOWN_PUBLIC);
    let (bobs, cats) = (push_service().await, push_service().await);
    subscribe(&mut stack, &bob, &bobs, "/push/bob").await;
    subscribe(&mut stack, &cat, &cats, "/push/cat").await;
    let off = pb::UpdatePreferencesRequest {
        push: [("project.member_added".to_owned(), false)].into(),
        ..Default::default()
    };
    let prefs = stack.notifications.update_preferences(bearer(&cat.access_token, off)).await.unwrap().into_inner();
    assert_eq!(prefs.push.get("project.member_added"), Some(&false));

    // Act: Ann adds both to her project.
    stack.project(&ann, "PSH", &[&bob, &cat]).await;

    // Assert: Bob's push service verified and decrypted the notification; Cat's got nothing.
    let received = bobs.received_once(1).await;
    let message: serde_json::Value = serde_json::from_slice(&received[0].plaintext).unwrap();
    assert_eq!(message["kind"], "project.member_added");
    assert_eq!(message["title"], "You were added to Project PSH");
    assert_eq!(received[0].vapid_key, KNOWN_PUBLIC);
    let listed = stack.list(&bob, Default::default()).await;
    assert_eq!(message["id"], listed.notifications[0].id.as_str());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cats.received().is_empty());
    assert_eq!(bobs.received().len(), 1, "sent once");
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_subscription_the_push_service_says_is_gone_is_removed() {
    // Arrange: Bob's subscription is one its push service no longer knows (410).
    let env = ordo_testkit::TestEnv::new();
    let mut stack = stack_with_push(&env).await;
    let ann = stack.processes.sign_up("ann@example.com").await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let service = push_service().await;
    subscribe(&mut stack, &bob, &service, "/push/gone").await;

    // Act: Ann adds Bob to a project, then assigns him a task.
    let project = stack.project(&ann, "GONE", &[&bob]).await;
    service.received_once(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.task(&ann, &project, &[&bob]).await;
    stack.kinds_once(&bob, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Assert: after the 410 nothing more was sent, and the subscription is no more.
    assert_eq!(service.received().len(), 1);
    let request = pb::UnsubscribePushRequest { endpoint: service.endpoint("/push/gone") };
    let missing = stack.notifications.unsubscribe_push(bearer(&bob.access_token, request)).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn subscriptions_are_checked_and_belong_to_their_user() {
    // Arrange: Bob and Cat; a push service on loopback.
    let env = ordo_testkit::TestEnv::new();
    let mut stack = stack_with_push(&env).await;
    let bob = stack.processes.sign_up("bob@example.com").await;
    let cat = stack.processes.sign_up("cat@example.com").await;
    let service = push_service().await;
    let good = service.subscription("/push/ok");

    // Act and assert: a bad key is named; the same endpoint twice is one subscription; Cat cannot
    // remove Bob's; Bob can, once.
    let bad = pb::SubscribePushRequest {
        endpoint: good.endpoint.clone(),
        p256dh: "AAAA".to_owned(),
        auth: good.auth.clone(),
    };
    let refused = stack.notifications.subscribe_push(bearer(&bob.access_token, bad)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_details_bad_request(&refused).unwrap();
    assert_eq!(details.field_violations[0].field, "p256dh");
    let request = || pb::SubscribePushRequest {
        endpoint: good.endpoint.clone(),
        p256dh: good.p256dh.clone(),
        auth: good.auth.clone(),
    };
    let first = stack.notifications.subscribe_push(bearer(&bob.access_token, request())).await.unwrap().into_inner();
    let again = stack.notifications.subscribe_push(bearer(&bob.access_token, request())).await.unwrap().into_inner();
    assert_eq!(first.id, again.id);
    let remove = || pb::UnsubscribePushRequest { endpoint: good.endpoint.clone() };
    let cats = stack.notifications.unsubscribe_push(bearer(&cat.access_token, remove())).await.unwrap_err();
    assert_eq!(cats.code(), tonic::Code::NotFound);
    stack.notifications.unsubscribe_push(bearer(&bob.access_token, remove())).await.unwrap();
    let twice = stack.notifications.unsubscribe_push(bearer(&bob.access_token, remove())).await.unwrap_err();
    assert_eq!(twice.code(), tonic::Code::NotFound);
    stack.processes.stop().await.unwrap();
    env.cleanup().await.unwrap();
}
