//! Webhook attempts against a receiver on loopback (the only address tests send to): what it
//! receives, what is never sent (a refused address, a redirect's target), and how answers read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ordo_notification::domain::webhook::{Answer, Reach, Target};
use ordo_notification::infra::webhook_http::{EXCERPT_BYTES, WebhookHttp};

/// What a receiver was sent: the path, the headers and the body of each request.
type Received = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on a free loopback port: `/ok` answers 200, `/moved` a redirect to `/elsewhere`,
/// `/busy` 429 with `Retry-After: 120` and a large body, `/later` 503 with a `Retry-After` date 90 s
/// ahead, `/slow` after two seconds, anything else
/// 204. Every request is recorded.
async fn receiver() -> (u16, Received) {
    let received = Received::default();
    let app = Router::new().fallback(answer).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

async fn answer(State(received): State<Received>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    received.lock().unwrap().push((path.clone(), headers, body));
    match path.as_str() {
        "/ok" => "received".into_response(),
        "/moved" => (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]).into_response(),
        "/busy" => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "120")], "x".repeat(100_000)).into_response(),
        "/later" => {
            let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, at)]).into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn loopback() -> Reach {
    Reach { loopback: true, private: false }
}

fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", "1700000000".to_owned()),
        ("webhook-signature", "v1,c2lnbmF0dXJl".to_owned()),
    ]
}

fn paths(received: &Received) -> Vec<String> {
    received.lock().unwrap().iter().map(|(path, ..)| path.clone()).collect()
}

#[tokio::test]
async fn a_receiver_gets_the_body_and_the_webhook_headers_and_its_answer_is_read() {
    let (port, received) = receiver().await;
    let http = WebhookHttp::new(loopback()).unwrap();
    let target = Target::parse(&format!("http://localhost:{port}/ok")).unwrap();

    let attempt = http.send(&target, &headers(), Bytes::from_static(br#"{"type":"task.created"}"#)).await;

    assert_eq!(attempt.answer, Answer::Status { code: 200, retry_after: None });
    assert_eq!(attempt.excerpt, "received");
    let received = received.lock().unwrap();
    let (_, sent, body) = received.first().expect("one request");
    assert_eq!(body.as_ref(), br#"{"type":"task.created"}"#);
    assert_eq!(sent["content-type"], "application/json");
    assert_eq!(sent["webhook-id"], "msg_1");
    assert_eq!(sent["webhook-timestamp"], "1700000000");
    assert_eq!(sent["webhook-signature"], "v1,c2lnbmF0dXJl");
    assert!(sent["user-agent"].to_str().unwrap().starts_with("Ordo-Webhooks/"));
}

#[tokio::test]
async fn a_loopback_receiver_is_never_called_when_the_deployment_does_not_allow_loopback() {
    let (port, received) = receiver().await;
    let http = WebhookHttp::new(Reach::default()).unwrap();

    for url in [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
    ] {
        let attempt = http.send(&Target::parse(&url).unwrap(), &headers(), Bytes::from_static(b"{}")).await;

        assert_eq!(attempt.answer, Answer::Unreachable, "{url}");
        assert!(attempt.excerpt.contains("may not reach"), "the log says why: {url}: {}", attempt.excerpt);
    }
    assert!(paths(&received).is_empty(), "nothing was sent: {:?}", paths(&received));
}

#[tokio::test]
async fn a_redirect_is_an_answer_and_is_not_followed() {
    let (port, received) = receiver().await;
    let http = WebhookHttp::new(loopback()).unwrap();

    let attempt =
        http.send(&Target::parse(&format!("http://127.0.0.1:{port}/moved")).unwrap(), &headers(), Bytes::new()).await;

    assert_eq!(attempt.answer, Answer::Status { code: 302, retry_after: None });
    assert_eq!(paths(&received), ["/moved"]);
}

#[tokio::test]
async fn retry_after_is_read_and_only_an_excerpt_of_a_large_body() {
    let (port, _) = receiver().await;
    let http = WebhookHttp::new(loopback()).unwrap();

    let attempt =
        http.send(&Target::parse(&format!("http://127.0.0.1:{port}/busy")).unwrap(), &headers(), Bytes::new()).await;

    assert_eq!(attempt.answer, Answer::Status { code: 429, retry_after: Some(Duration::from_secs(120)) });
    assert_eq!(attempt.excerpt.len(), EXCERPT_BYTES);
}

#[tokio::test]
async fn retry_after_may_be_an_http_date() {
    let (port, _) = receiver().await;
    let http = WebhookHttp::new(loopback()).unwrap();

    let attempt =
        http.send(&Target::parse(&format!("http://127.0.0.1:{port}/later")).unwrap(), &headers(), Bytes::new()).await;

    let Answer::Status { code: 503, retry_after: Some(wait) } = attempt.answer else {
        panic!("{:?}", attempt.answer);
    };
    assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_a_timeout() {
    let (port, received) = receiver().await;
    let http = WebhookHttp::with_timeout(loopback(), Duration::from_millis(300)).unwrap();

    let attempt =
        http.send(&Target::parse(&format!("http://127.0.0.1:{port}/slow")).unwrap(), &headers(), Bytes::new()).await;

    assert_eq!(attempt.answer, Answer::Timeout);
    assert!(attempt.latency < Duration::from_secs(2), "{:?}", attempt.latency);
    assert_eq!(paths(&received), ["/slow"]);
}
