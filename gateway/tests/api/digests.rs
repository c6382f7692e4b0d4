//! The daily digest through the gateway with every service, the real broker and two notification
//! instances: a user who chose a digest gets no mail as things happen, then one mail at their hour
//! listing the day's notifications and their overdue task; a digest user with nothing to hear of
//! gets none; a day never has a second digest, even when the hour moves after it went; a wrong
//! mode, hour or time zone is a `422` naming each.

use std::time::Duration;

use ordo_testkit::mails_once;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Waits until `token`'s user lists `count` notifications.
async fn notifications_once(app: &TestApp, token: &str, count: usize) {
    for _ in 0..100 {
        let list: Value = send(app, token, Method::GET, "/notifications", None).await.json().await.unwrap();
        if list["items"].as_array().unwrap().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} notifications arrived");
}

/// Sets how `token`'s user gets mail; the preferences answered.
async fn deliver(app: &TestApp, token: &str, email_delivery: Value) -> Value {
    let body = json!({ "email_delivery": email_delivery });
    let response = send(app, token, Method::PUT, "/notifications/preferences", Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Brings the hour of `users`' digests: their next one is due `at` (the schedule each instance
/// claims from, moved as the clock would move to it).
async fn the_hour_comes(app: &TestApp, users: &[&str], at: OffsetDateTime) {
    let at = ordo_platform::db::utc_datetime(at);
    for user in users {
        let user = Uuid::parse_str(user).unwrap();
        sqlx::query("UPDATE email_schedule SET next_digest_at = ? WHERE user_id = ?")
            .bind(at)
            .bind(user)
            .execute(app.notification_pool())
            .await
            .unwrap();
    }
}

async fn digests_made(app: &TestApp, user: &str, with_mail: bool) -> i64 {
    let sql = if with_mail {
        "SELECT COUNT(*) FROM digest WHERE user_id = ? AND email_id IS NOT NULL"
    } else {
        "SELECT COUNT(*) FROM digest WHERE user_id = ? AND email_id IS NULL"
    };
    sqlx::query_scalar(sql).bind(Uuid::parse_str(user).unwrap()).fetch_one(app.notification_pool()).await.unwrap()
}

#[tokio::test]
async fn a_digest_user_gets_one_mail_at_their_hour_listing_the_day_and_an_idle_one_none() {
    // Arrange: two notification instances, each looking for digests every 200 ms; Ann owns a
    // project with Bob and Cy as members, who each got the mail of being added (mail goes at once
    // by default).
    let app = spawn_app_with(Options {
        notification_args: vec!["--digest-poll-ms".to_owned(), "200".to_owned()],
        notification_pool: true,
        ..Options::default()
    })
    .await;
    let second = app.another_notification().await;
    let address = |name: &str| format!("{name}-{}@example.com", app.env.id);
    let (_, ann) = app.user(&address("ann"), "Ann").await;
    let (bob_id, bob) = app.user(&address("bob"), "Bob").await;
    let (cy_id, cy) = app.user(&address("cy"), "Cy").await;
    let created =
        send(&app, &ann.access, Method::POST, "/projects", Some(json!({"name": "Digest", "key": "DIG"}))).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let project = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    for member in [&bob_id, &cy_id] {
        let body = json!({"user_id": member, "role": "member"});
        let added = send(&app, &ann.access, Method::POST, &format!("/projects/{project}/members"), Some(body)).await;
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    mails_once(&address("bob"), 1).await.unwrap();
    mails_once(&address("cy"), 1).await.unwrap();

    // Act 1: Bob and Cy choose a digest at 08:00 in Tokyo (UTC+9, no daylight saving); Ann assigns
    // Bob a task overdue since yesterday and one due next week.
    let chosen_at = OffsetDateTime::now_utc();
    let preferences = deliver(&app, &bob.access, json!({"mode": "daily", "hour": 8, "time_zone": "asia/tokyo"})).await;
    deliver(&app, &cy.access, json!({"mode": "daily", "hour": 8, "time_zone": "Asia/Tokyo"})).await;
    let now = OffsetDateTime::now_utc();
    for (title, due_at) in [
        ("Renew the certificate", now - Duration::from_secs(86_400)),
        ("Plan the offsite", now + Duration::from_secs(7 * 86_400)),
    ] {
        let body = json!({
            "project_id": project, "title": title, "assignee_ids": [bob_id], "due_at": due_at.format(&Rfc3339).unwrap(),
        });
        assert_eq!(send(&app, &ann.access, Method::POST, "/tasks", Some(body)).await.status(), StatusCode::CREATED);
    }
    notifications_once(&app, &bob.access, 3).await;

    // Assert 1: the schedule reads back in the database's spelling with the next 08:00 in Tokyo
    // (23:00 UTC); no mail of the assignments went (past the one-second window of tests).
    let delivery = &preferences["email_delivery"];
    assert_eq!((delivery["mode"].as_str(), delivery["time_zone"].as_str()), (Some("daily"), Some("Asia/Tokyo")));
    let next = OffsetDateTime::parse(delivery["next_digest_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!((next.hour(), next.minute()), (23, 0));
    assert!(next > chosen_at && next - chosen_at <= Duration::from_secs(86_400), "{next}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ordo_testkit::sent_mails(&address("bob")).await.unwrap().len(), 1);

    // Act 2: their hour comes.
    let hour = OffsetDateTime::now_utc() - Duration::from_secs(1);
    the_hour_comes(&app, &[&bob_id, &cy_id], hour).await;

    // Assert 2: Bob gets one digest (two instances looking) with both assignments and the overdue
    // task, not the one due next week; Cy, with nothing since choosing it, gets none; both
    // schedules move on to the next day.
    let mails = mails_once(&address("bob"), 2).await.unwrap();
    assert_eq!(mails.len(), 2, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let digest = mails.iter().find(|m| m.subject.starts_with("Your Ordo digest for ")).unwrap();
    assert!(digest.subject.ends_with(": 2 notifications, 1 task due"), "{}", digest.subject);
    assert!(digest.body.contains("DIG-1 was assigned to you") && digest.body.contains("DIG-2 was assigned to you"));
    assert!(digest.body.contains("Renew the certificate"), "{}", digest.body);
    assert_eq!(digest.body.matches("(overdue since").count(), 1, "{}", digest.body);
    assert!(!digest.body.contains("(due "), "{}", digest.body);
    assert_eq!(ordo_testkit::sent_mails(&address("cy")).await.unwrap().len(), 1);
    assert_eq!((digests_made(&app, &bob_id, true).await, digests_made(&app, &cy_id, false).await), (1, 1));
    let after: Value =
        send(&app, &bob.access, Method::GET, "/notifications/preferences", None).await.json().await.unwrap();
    let next = OffsetDateTime::parse(after["email_delivery"]["next_digest_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(next > OffsetDateTime::now_utc() && (next.hour(), next.minute()) == (23, 0), "{next}");

    // Act 3: Bob moves his hour to later in the same Tokyo day, something happens, and it comes
    // (on the day of the first).
    deliver(&app, &bob.access, json!({"hour": 20})).await;
    let body = json!({"project_id": project, "title": "Another", "assignee_ids": [bob_id]});
    assert_eq!(send(&app, &ann.access, Method::POST, "/tasks", Some(body)).await.status(), StatusCode::CREATED);
    notifications_once(&app, &bob.access, 4).await;
    the_hour_comes(&app, &[&bob_id], hour).await;

    // Assert 3: that day had its digest; the new notification waits for the next one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ordo_testkit::sent_mails(&address("bob")).await.unwrap().len(), 2);
    assert_eq!(digests_made(&app, &bob_id, true).await, 1);
    let _ = second.stop().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_wrong_mode_hour_or_time_zone_is_422_naming_each_and_changes_nothing() {
    let app = spawn_app_with(Options::default()).await;
    let (_, bob) = app.user(&format!("bob-{}@example.com", app.env.id), "Bob").await;
    let before: Value =
        send(&app, &bob.access, Method::GET, "/notifications/preferences", None).await.json().await.unwrap();
    assert_eq!(
        before["email_delivery"],
        json!({"mode": "immediate", "hour": 8, "time_zone": "UTC", "next_digest_at": null})
    );

    let wrong = json!({"email_delivery": {"mode": "daily", "hour": 24, "time_zone": "Mars/Olympus_Mons"}});
    let refused = send(&app, &bob.access, Method::PUT, "/notifications/preferences", Some(wrong)).await;
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> = problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["email_delivery.hour", "email_delivery.time_zone"], "{problem}");
    let weekly = json!({"email_delivery": {"mode": "weekly"}});
    let refused = send(&app, &bob.access, Method::PUT, "/notifications/preferences", Some(weekly)).await;
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem.to_string().contains("email_delivery"), "{problem}");

    let after: Value =
        send(&app, &bob.access, Method::GET, "/notifications/preferences", None).await.json().await.unwrap();
    assert_eq!(after, before);
    let off = deliver(&app, &bob.access, json!({"mode": "off"})).await;
    assert_eq!(off["email_delivery"]["mode"], "off");
    assert_eq!(off["email_delivery"]["next_digest_at"], Value::Null);
    app.cleanup().await;
}
