//! A Redis outage under the whole stack: every process talks to Redis through a TCP proxy the test
//! owns (never the shared Redis, which other tests use at the same time), the proxy is cut or
//! blackholed, and every request must still be answered within its budget — `/readyz` at once with a
//! 503 naming Redis, reads from MySQL, writes that need Redis with 503 and `Retry-After` — and the
//! stack must be ready again within seconds of the proxy forwarding again.

use std::time::{Duration, Instant};

use ordo_testkit::TcpProxy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, spawn_app_with};

/// What `/readyz` may take, even with Redis gone (a load balancer's health check waits about this).
const READYZ_BUDGET: Duration = Duration::from_secs(1);
/// What a request may take with Redis gone: a few bounded Redis calls on its way through the gateway
/// and the services, each at most a connection attempt and a reply (0.5 s each by default).
const REQUEST_BUDGET: Duration = Duration::from_secs(3);
/// How soon after Redis's return the stack must be ready and serving logins again.
const RECOVERY_BUDGET: Duration = Duration::from_secs(5);

async fn timed<F: std::future::Future>(request: F) -> (F::Output, Duration) {
    let started = Instant::now();
    let output = request.await;
    (output, started.elapsed())
}

/// Asserts that `response` is a success with `ok`, or a 503 with `Retry-After` (the request needed
/// Redis and said so).
fn assert_served_or_unavailable(what: &str, response: &reqwest::Response, ok: StatusCode) {
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(response.headers().contains_key("retry-after"), "{what}: 503 without Retry-After");
    } else {
        assert_eq!(status, ok, "{what}");
    }
}

/// Takes Redis away with `cut`, checks every kind of request stays within its budget, gives Redis
/// back and checks recovery.
async fn survives_a_redis_outage(cut: fn(&TcpProxy)) {
    // Arrange: a user with a project, everything talking to Redis through the proxy.
    let proxy = TcpProxy::redis().await.unwrap();
    let app = spawn_app_with(Options { redis_url: Some(proxy.redis_url()), ..Options::default() }).await;
    let (_, tokens) = app.user("steady@example.com", "Steady").await;
    let project = app
        .client
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "Steady", "key": "STD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(project.status(), StatusCode::CREATED);
    let project: Value = project.json().await.unwrap();
    let project_id = project["id"].as_str().unwrap().to_owned();
    let logged_out = app.tokens("steady@example.com").await;
    let logout = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&logged_out.access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    // Act: Redis goes away.
    cut(&proxy);
    let (readyz, readyz_took) = timed(app.client.get(app.url("/readyz")).send()).await;
    let readyz = readyz.unwrap();
    let readyz_status = readyz.status();
    let readyz_body = readyz.text().await.unwrap();
    let (me, me_took) = timed(app.me(&tokens.access)).await;
    let (read, read_took) = timed(app.get_as(&tokens.access, &format!("/api/v1/projects/{project_id}"))).await;
    let (revoked, revoked_took) = timed(app.me(&logged_out.access)).await;
    let (login, login_took) = timed(app.login("steady@example.com", crate::helpers::PASSWORD)).await;
    let (create, create_took) = timed(
        app.client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&tokens.access)
            .header("Idempotency-Key", "outage-1")
            .json(&json!({"project_id": project_id, "title": "During the outage"}))
            .send(),
    )
    .await;
    let create = create.unwrap();

    // Assert: each answered within its budget, and said why when it could not serve.
    assert!(readyz_took < READYZ_BUDGET, "/readyz took {readyz_took:?}");
    assert_eq!(readyz_status, StatusCode::SERVICE_UNAVAILABLE, "{readyz_body}");
    assert!(readyz_body.contains("redis"), "{readyz_body}");
    let timings = [("/users/me", me_took), ("a project read", read_took), ("a logged-out token", revoked_took)];
    for (what, took) in [("a login", login_took), ("an idempotent create", create_took)].into_iter().chain(timings) {
        assert!(took < REQUEST_BUDGET, "{what} took {took:?}");
    }
    assert_served_or_unavailable("/users/me", &me, StatusCode::OK);
    assert_served_or_unavailable("a project read", &read, StatusCode::OK);
    // Without Redis the session is checked in MySQL: a logged-out token is still refused, never let in
    // and never an outage.
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    // The login throttle fails closed: no password is verified uncounted.
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.headers().contains_key("retry-after"));
    // An idempotency key cannot be claimed without Redis: refused rather than run unprotected.
    assert_eq!(create.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(create.headers().contains_key("retry-after"));

    // Act: Redis comes back.
    proxy.restore();
    let restored = Instant::now();
    let mut recovered = false;
    while restored.elapsed() < RECOVERY_BUDGET {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap().status() == StatusCode::OK;
        if ready && app.login("steady@example.com", crate::helpers::PASSWORD).await.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: ready and serving within the budget, and the refused create can now run.
    assert!(recovered, "the stack did not recover within {RECOVERY_BUDGET:?} of Redis's return");
    let retried = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&tokens.access)
        .header("Idempotency-Key", "outage-1")
        .json(&json!({"project_id": project_id, "title": "During the outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    app.cleanup().await;
}

#[tokio::test]
async fn with_redis_refusing_every_request_is_answered_within_its_budget_and_the_stack_recovers() {
    survives_a_redis_outage(TcpProxy::cut).await;
}

#[tokio::test]
async fn with_redis_blackholed_every_request_is_answered_within_its_budget_and_the_stack_recovers() {
    survives_a_redis_outage(TcpProxy::blackhole).await;
}
