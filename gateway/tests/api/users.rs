//! `/users`: the caller's own account, lookup by email, admin listing and administration.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app};

async fn patch_as(app: &TestApp, token: &str, path: &str, if_match: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app.client.patch(app.url(path)).bearer_auth(token).json(body);
    if let Some(if_match) = if_match {
        request = request.header("if-match", if_match);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn me_returns_the_callers_account_with_its_etag() {
    // Arrange
    let app = spawn_app().await;
    let (id, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response = app.me(&tokens.access).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["id"], id.as_str());
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["role"], "admin");
    assert_eq!(etag, format!("\"{}\"", user["version"]));
    app.cleanup().await;
}

#[tokio::test]
async fn the_registered_account_reads_back_exactly_as_it_was_returned() {
    // Arrange
    let app = spawn_app().await;
    let registered: Value = app.register("carol@example.com", PASSWORD, "Carol").await.json().await.unwrap();
    let tokens = app.tokens("carol@example.com").await;

    // Act
    let me: Value = app.me(&tokens.access).await.json().await.unwrap();

    // Assert: same fields, same timestamps to the microsecond the database keeps.
    assert_eq!(me, registered);
    app.cleanup().await;
}

#[tokio::test]
async fn patch_me_with_the_current_if_match_changes_the_display_name_and_the_etag() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let etag = app.me(&tokens.access).await.headers()["etag"].to_str().unwrap().to_owned();

    // Act
    let response =
        patch_as(&app, &tokens.access, "/api/v1/users/me", Some(&etag), &json!({"display_name": "Alice B."})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let new_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["display_name"], "Alice B.");
    assert_eq!(new_etag, format!("\"{}\"", user["version"]));
    app.cleanup().await;
}

#[tokio::test]
async fn patch_me_with_a_stale_if_match_returns_412() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let stale = app.me(&tokens.access).await.headers()["etag"].to_str().unwrap().to_owned();
    let first = patch_as(&app, &tokens.access, "/api/v1/users/me", Some(&stale), &json!({"display_name": "One"})).await;
    assert_eq!(first.status(), StatusCode::OK);

    // Act
    let response =
        patch_as(&app, &tokens.access, "/api/v1/users/me", Some(&stale), &json!({"display_name": "Two"})).await;

    // Assert
    assert_problem(response, StatusCode::PRECONDITION_FAILED).await;
    let user: Value = app.me(&tokens.access).await.json().await.unwrap();
    assert_eq!(user["display_name"], "One");
    app.cleanup().await;
}

#[tokio::test]
async fn patch_me_with_a_malformed_if_match_returns_400() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response =
        patch_as(&app, &tokens.access, "/api/v1/users/me", Some("version-one"), &json!({"display_name": "X"})).await;

    // Assert
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    app.cleanup().await;
}

#[tokio::test]
async fn patch_me_with_an_invalid_display_name_returns_422_naming_it() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    // Act
    let response =
        patch_as(&app, &tokens.access, "/api/v1/users/me", None, &json!({"display_name": "x".repeat(101)})).await;

    // Assert
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "display_name", "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn lookup_by_exact_email_finds_the_user_or_nothing() {
    // Arrange
    let app = spawn_app().await;
    let (bob_id, _) = app.user("bob@example.com", "Bob").await;
    let (_, alice) = app.user("alice@example.com", "Alice").await;

    // Act
    let hit: Value = app.get_as(&alice.access, "/api/v1/users?email=bob@example.com").await.json().await.unwrap();
    let miss = app.get_as(&alice.access, "/api/v1/users?email=nobody@example.com").await;

    // Assert
    assert_eq!(
        hit,
        json!({"items": [{"id": bob_id, "display_name": "Bob", "email": "bob@example.com"}], "next_cursor": null})
    );
    assert_eq!(miss.status(), StatusCode::OK);
    assert_eq!(miss.json::<Value>().await.unwrap(), json!({"items": [], "next_cursor": null}));
    app.cleanup().await;
}

#[tokio::test]
async fn listing_users_is_403_for_members() {
    // Arrange
    let app = spawn_app().await;
    app.register_user("admin@example.com", "Admin").await;
    let (_, member) = app.user("bob@example.com", "Bob").await;

    // Act
    let response = app.get_as(&member.access, "/api/v1/users").await;

    // Assert
    assert_problem(response, StatusCode::FORBIDDEN).await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_admin_lists_every_user_and_q_filters_by_email_or_display_name() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;
    app.register_user("bob@example.com", "Bob Builder").await;
    app.register_user("carol@example.com", "Carol").await;

    // Act
    let all: Value = app.get_as(&admin.access, "/api/v1/users").await.json().await.unwrap();
    let by_name: Value = app.get_as(&admin.access, "/api/v1/users?q=builder").await.json().await.unwrap();
    let by_email: Value = app.get_as(&admin.access, "/api/v1/users?q=CAROL@").await.json().await.unwrap();

    // Assert
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert_eq!(all["next_cursor"], Value::Null);
    assert!(all["items"][0]["email"].is_string(), "admins see full users");
    let emails = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(emails(&by_name), ["bob@example.com"]);
    assert_eq!(emails(&by_email), ["carol@example.com"]);
    app.cleanup().await;
}

#[tokio::test]
async fn listing_with_limit_1_returns_every_user_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let (admin_id, admin) = app.user("admin@example.com", "Admin").await;
    let mut expected = HashSet::from([admin_id]);
    for name in ["bob", "carol", "dave"] {
        expected.insert(app.register_user(&format!("{name}@example.com"), name).await);
    }

    // Act
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=1".to_owned();
    loop {
        let response = app.get_as(&admin.access, &path).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=1&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= expected.len(), "more pages than users: {seen:?}");
    }

    // Assert
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
    app.cleanup().await;
}

#[tokio::test]
async fn listing_with_a_bad_limit_or_cursor_returns_400() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;

    for query in ["limit=0", "limit=101", "limit=ten", "cursor=", "cursor=not-a-cursor-we-issued"] {
        // Act
        let response = app.get_as(&admin.access, &format!("/api/v1/users?{query}")).await;

        // Assert
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_query_parameters_are_ignored() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;

    // Act
    let response = app.get_as(&admin.access, "/api/v1/users?sort=name&page=3").await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn another_users_profile_hides_the_email_while_self_and_admins_see_the_whole_user() {
    // Arrange
    let app = spawn_app().await;
    let (admin_id, admin) = app.user("admin@example.com", "Admin").await;
    let (bob_id, bob) = app.user("bob@example.com", "Bob").await;

    // Act
    let bob_sees_admin = app.get_as(&bob.access, &format!("/api/v1/users/{admin_id}")).await;
    let bob_sees_bob = app.get_as(&bob.access, &format!("/api/v1/users/{bob_id}")).await;
    let admin_sees_bob = app.get_as(&admin.access, &format!("/api/v1/users/{bob_id}")).await;

    // Assert
    assert!(bob_sees_admin.headers().get("etag").is_none());
    assert_eq!(bob_sees_admin.json::<Value>().await.unwrap(), json!({"id": admin_id, "display_name": "Admin"}));
    assert!(bob_sees_bob.headers().get("etag").is_some());
    assert_eq!(bob_sees_bob.json::<Value>().await.unwrap()["email"], "bob@example.com");
    let full: Value = admin_sees_bob.json().await.unwrap();
    assert_eq!(full["email"], "bob@example.com");
    assert_eq!(full["role"], "member");
    app.cleanup().await;
}

#[tokio::test]
async fn a_user_id_that_is_not_a_uuid_or_names_nobody_returns_404() {
    // Arrange
    let app = spawn_app().await;
    let (_, tokens) = app.user("alice@example.com", "Alice").await;

    for id in ["not-a-uuid", "0190b6a4-7c1e-7000-8000-00000000dead"] {
        // Act
        let response = app.get_as(&tokens.access, &format!("/api/v1/users/{id}")).await;

        // Assert
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn an_admin_disabling_a_user_revokes_its_token_at_once_and_its_login() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;
    let (bob_id, bob) = app.user("bob@example.com", "Bob").await;
    assert_eq!(app.me(&bob.access).await.status(), StatusCode::OK);

    // Act
    let response =
        patch_as(&app, &admin.access, &format!("/api/v1/users/{bob_id}"), None, &json!({"disabled": true})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("etag").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    assert_problem(app.me(&bob.access).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.refresh(&bob.refresh).await, StatusCode::UNAUTHORIZED).await;
    assert_problem(app.login("bob@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_admin_promotes_a_member_and_a_stale_if_match_is_412() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;
    let bob_id = app.register_user("bob@example.com", "Bob").await;
    let path = format!("/api/v1/users/{bob_id}");
    let etag = app.get_as(&admin.access, &path).await.headers()["etag"].to_str().unwrap().to_owned();

    // Act
    let promoted = patch_as(&app, &admin.access, &path, Some(&etag), &json!({"role": "admin"})).await;
    let stale = patch_as(&app, &admin.access, &path, Some(&etag), &json!({"role": "member"})).await;

    // Assert
    assert_eq!(promoted.status(), StatusCode::OK);
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "admin");
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_member_cannot_change_users() {
    // Arrange
    let app = spawn_app().await;
    let (admin_id, _) = app.user("admin@example.com", "Admin").await;
    let (_, bob) = app.user("bob@example.com", "Bob").await;

    // Act
    let response =
        patch_as(&app, &bob.access, &format!("/api/v1/users/{admin_id}"), None, &json!({"disabled": true})).await;

    // Assert
    assert_problem(response, StatusCode::FORBIDDEN).await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_role_is_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let (_, admin) = app.user("admin@example.com", "Admin").await;
    let bob_id = app.register_user("bob@example.com", "Bob").await;

    // Act
    let response =
        patch_as(&app, &admin.access, &format!("/api/v1/users/{bob_id}"), None, &json!({"role": "owner"})).await;

    // Assert
    let body = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "role");
    app.cleanup().await;
}

#[tokio::test]
async fn an_admin_cannot_disable_themself() {
    // Arrange
    let app = spawn_app().await;
    let (admin_id, admin) = app.user("admin@example.com", "Admin").await;

    // Act
    let response =
        patch_as(&app, &admin.access, &format!("/api/v1/users/{admin_id}"), None, &json!({"disabled": true})).await;

    // Assert
    assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(app.me(&admin.access).await.status(), StatusCode::OK);
    app.cleanup().await;
}
