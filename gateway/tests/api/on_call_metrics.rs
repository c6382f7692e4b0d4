//! The metrics the on-call questions are answered with count what happened: logins by outcome and
//! lockouts, and an event's way through Redis, MySQL, the outbox and RabbitMQ into both consumers.
//!
//! Every process of the stack runs in this test's process and shares one metrics recorder, so one
//! `/metrics` scrape of the gateway shows every process's series.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

/// How long an event may take to reach both consumers.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The sum of the samples of `name` (exactly that name, so `x_count` is not `x`) whose labels include
/// every `key="value"` of `labels`; `None` when there is no such sample.
fn sample(scraped: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in scraped.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name {
            continue;
        }
        if labels.iter().all(|(key, value)| series_labels.contains(&format!("{key}=\"{value}\""))) {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

async fn login(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.login(email, password).await.status()
}

#[tokio::test]
async fn logins_are_counted_by_outcome_and_a_lockout_once_when_it_begins() {
    // Arrange: two failures a window are allowed; the third attempt locks the email out.
    let app = spawn_app_with(Options {
        identity_args: vec!["--login-max-failures".to_owned(), "2".to_owned()],
        ..Options::default()
    })
    .await;
    app.user("lee@example.com", "Lee").await;
    let before = scrape(&app).await;
    let count = |scraped: &str, outcome: &str| {
        sample(scraped, "ordo_identity_logins_total", &[("outcome", outcome)]).expect("exported from the start")
    };
    let lockouts =
        |scraped: &str| sample(scraped, "ordo_identity_lockouts_total", &[]).expect("exported from the start");

    // Act
    assert_eq!(login(&app, "lee@example.com", crate::helpers::PASSWORD).await, StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(login(&app, "lee@example.com", "not the password at all").await, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..2 {
        assert_eq!(login(&app, "lee@example.com", "not the password at all").await, StatusCode::TOO_MANY_REQUESTS);
    }

    // Assert
    let after = scrape(&app).await;
    assert_eq!(count(&after, "success") - count(&before, "success"), 1.0);
    assert_eq!(count(&after, "invalid_credentials") - count(&before, "invalid_credentials"), 2.0);
    assert_eq!(count(&after, "locked") - count(&before, "locked"), 2.0);
    assert_eq!(count(&after, "disabled") - count(&before, "disabled"), 0.0);
    assert_eq!(lockouts(&after) - lockouts(&before), 1.0, "one lockout, however many attempts it refuses");
    app.cleanup().await;
}

#[tokio::test]
async fn an_events_way_through_the_backends_into_both_consumers_is_measured() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("ann@example.com", "Ann").await;
    let response =
        app.post_json_as(&tokens.access, "/api/v1/projects", &json!({"name": "Metered", "key": "MTR"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let project: Value = response.json().await.unwrap();

    // Act
    let response = app
        .post_json_as(&tokens.access, "/api/v1/tasks", &json!({"project_id": project["id"], "title": "Count me"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Assert: both consumers handled events, and how late is measured.
    let started = Instant::now();
    let scraped = loop {
        let scraped = scrape(&app).await;
        let handled = |consumer| {
            sample(&scraped, "ordo_consumer_event_lag_seconds_count", &[("consumer", consumer)]).unwrap_or(0.0)
        };
        if handled("audit") >= 3.0 && handled("notification") >= 3.0 {
            break scraped;
        }
        assert!(started.elapsed() < SETTLE_TIMEOUT, "the consumers' lag was not measured: {scraped}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Registration, the project and the task: every event is at most seconds old when handled.
    for consumer in ["audit", "notification"] {
        let lag = sample(&scraped, "ordo_consumer_event_lag_seconds_sum", &[("consumer", consumer)]).unwrap();
        assert!(lag < 30.0, "{consumer} handled three fresh events {lag} s late in all");
        assert_eq!(
            sample(&scraped, "ordo_consumer_redeliveries_total", &[("consumer", consumer)]),
            Some(0.0),
            "exported at zero, and nothing was delivered twice"
        );
    }
    // RabbitMQ: each consumer's queue and dead-letter queue are read; nothing was dead-lettered.
    for consumer in ["audit", "notification"] {
        assert!(sample(&scraped, "ordo_consumer_queue_messages", &[("consumer", consumer)]).is_some(), "{consumer}");
        assert_eq!(sample(&scraped, "ordo_consumer_dead_letter_messages", &[("consumer", consumer)]), Some(0.0));
    }
    // Redis: the session markers every request reads.
    let gets = sample(&scraped, "ordo_redis_command_duration_seconds_count", &[("command", "GET")]);
    assert!(gets.is_some_and(|n| n > 0.0), "Redis GETs are timed: {scraped}");
    // MySQL: the pools are sampled, and none is over its size.
    let max = sample(&scraped, "ordo_db_pool_max_connections", &[]).expect("the pools' size");
    let in_use = sample(&scraped, "ordo_db_pool_connections", &[("state", "in_use")]).expect("the pools' use");
    assert!(max > 0.0 && in_use >= 0.0, "max {max}, in use {in_use}");
    // The outbox: published within the poll interval, confirmed by RabbitMQ, and nothing old left.
    let publishes = sample(&scraped, "ordo_outbox_publish_seconds_count", &[]).expect("relay batches are timed");
    assert!(publishes >= 1.0);
    let oldest = sample(&scraped, "ordo_outbox_oldest_unpublished_age_seconds", &[]).expect("the outbox's age");
    assert!(oldest < 30.0, "an event waited {oldest} s in an outbox");
    app.cleanup().await;
}
