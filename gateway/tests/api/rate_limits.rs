//! Rate limits: budgets per user and per client address, shared by every gateway instance through
//! Redis, refused with `429`, `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit` headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Options, PASSWORD, assert_problem, spawn_app_with};

fn options(gateway_args: &[&str]) -> Options {
    Options { gateway_args: gateway_args.iter().map(|arg| (*arg).to_owned()).collect(), ..Options::default() }
}

#[tokio::test]
async fn the_credentials_budget_of_a_client_address_holds_across_two_gateway_instances() {
    // Arrange: a budget of four credential requests per minute, and two gateways.
    let app = spawn_app_with(options(&["--rate-limit-credentials", "4"])).await;
    let second = app.second_gateway().await;
    let login = json!({"email": "nobody@example.com", "password": PASSWORD});

    // Act: two logins through each gateway, then a fifth through the first.
    let mut statuses = Vec::new();
    for address in [&app.address, &second.address, &app.address, &second.address] {
        let response = app.client.post(format!("{address}/api/v1/auth/login")).json(&login).send().await.unwrap();
        statuses.push(response.status());
    }
    let refused = app.client.post(app.url("/api/v1/auth/login")).json(&login).send().await.unwrap();

    // Assert: the four went through to identity (unknown email: 401); the fifth never reached it.
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(refused.headers()["ratelimit-policy"], r#""credentials";q=4;w=60"#);
    let remaining = refused.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert!(remaining.starts_with(r#""credentials";r=0;t="#), "{remaining}");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&retry_after), "one request's share of the minute: {retry_after}");
    let problem = assert_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(problem["detail"].as_str().unwrap().contains("credentials"), "{problem}");

    second.stop().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_user_spends_their_own_budget_whichever_address_and_instance_they_come_from() {
    // Arrange: three reads per minute; two users.
    let app = spawn_app_with(options(&["--rate-limit-read", "3"])).await;
    let (_, ann) = app.user("ann@example.com", "Ann").await;
    let (_, bob) = app.user("bob@example.com", "Bob").await;
    let second = app.second_gateway().await;

    // Act: Ann reads three times (through both instances), then a fourth time.
    let mut headers = Vec::new();
    for address in [&app.address, &second.address, &app.address] {
        let response =
            app.client.get(format!("{address}/api/v1/users/me")).bearer_auth(&ann.access).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        headers.push(response.headers()["ratelimit"].to_str().unwrap().to_owned());
    }
    let fourth = app.client.get(format!("{}/api/v1/users/me", second.address)).bearer_auth(&ann.access).send().await;
    let bob_reads = app.me(&bob.access).await;

    // Assert: every response says what is left; Ann's fourth is refused; Bob's budget is his own.
    let remaining: Vec<&str> = headers.iter().map(|h| h.split(';').nth(1).unwrap()).collect();
    assert_eq!(remaining, ["r=2", "r=1", "r=0"]);
    let fourth = fourth.unwrap();
    assert_eq!(fourth.headers()["ratelimit-policy"], r#""read";q=3;w=60"#);
    assert_problem(fourth, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(bob_reads.status(), StatusCode::OK);

    second.stop().await;
    app.cleanup().await;
}

#[tokio::test]
async fn reads_writes_and_costly_requests_have_budgets_of_their_own() {
    // Arrange: one write and one costly request per minute, reads unlimited.
    let app =
        spawn_app_with(options(&["--rate-limit-write", "1", "--rate-limit-costly", "1", "--rate-limit-read", "0"]))
            .await;
    let (_, ann) = app.user("ann@example.com", "Ann").await;
    let create = |key: &str| {
        app.client
            .post(app.url("/api/v1/projects"))
            .bearer_auth(&ann.access)
            .json(&json!({"name": "Apollo", "key": key}))
            .send()
    };

    // Act
    let first_write = create("APO").await.unwrap();
    let second_write = create("BPO").await.unwrap();
    let project_id = first_write.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let search = |q: &str| {
        app.client.get(app.url(&format!("/api/v1/tasks?project_id={project_id}&q={q}"))).bearer_auth(&ann.access).send()
    };
    let first_search = search("moon").await.unwrap();
    let second_search = search("moon").await.unwrap();
    let plain_list = app.get_as(&ann.access, &format!("/api/v1/tasks?project_id={project_id}")).await;

    // Assert: reads carry no budget headers when unlimited.
    assert_eq!(second_write.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first_search.status(), StatusCode::OK);
    assert_eq!(second_search.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(plain_list.status(), StatusCode::OK);
    assert!(plain_list.headers().get("ratelimit").is_none());

    app.cleanup().await;
}

#[tokio::test]
async fn the_exact_email_lookup_has_a_tighter_budget_than_other_reads() {
    // Arrange
    let app = spawn_app_with(options(&["--rate-limit-email-lookup", "2"])).await;
    let (_, ann) = app.user("ann@example.com", "Ann").await;

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.get_as(&ann.access, "/api/v1/users?email=bob%40example.com").await.status());
    }
    let other_read = app.me(&ann.access).await;

    // Assert
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    assert_eq!(other_read.status(), StatusCode::OK);

    app.cleanup().await;
}
