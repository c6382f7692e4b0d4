//! `/projects`: projects, archiving, members, who may do what (API.md's project roles), and what holds
//! under concurrency and inserts.

use std::collections::{HashMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_problem, call, spawn_app, spawn_app_with};

/// A signed-in user.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    token: String,
}

/// Registers `<name>@example.com` and signs it in. The first account of a test is a global admin.
async fn person(app: &TestApp, name: &str) -> Person {
    let (id, tokens) = app.user(&format!("{name}@example.com"), name).await;
    Person { id, token: tokens.access }
}

/// `POST /projects`, failing the test unless it is created; returns the project.
async fn create_project(app: &TestApp, who: &Person, name: &str, key: &str) -> Value {
    let response =
        call(app, &who.token, Method::POST, "/projects").json(&json!({"name": name, "key": key})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "create project {key}");
    response.json().await.unwrap()
}

/// `POST /projects/{id}/members`, failing the test unless it is created; returns the member.
async fn add_member(app: &TestApp, who: &Person, project: &str, user: &str, role: &str) -> Value {
    let response = call(app, &who.token, Method::POST, &format!("/projects/{project}/members"))
        .json(&json!({"user_id": user, "role": role}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "add {user} as {role}: {body}");
    body
}

/// Every member of a project as `(user_id, role)`, page after page, in the order served.
async fn members(app: &TestApp, who: &Person, project: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut path = format!("/projects/{project}/members?limit=100");
    loop {
        let response = call(app, &who.token, Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let page: Value = response.json().await.unwrap();
        for member in page["items"].as_array().unwrap() {
            all.push((member["user_id"].as_str().unwrap().to_owned(), member["role"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/projects/{project}/members?limit=100&cursor={cursor}"),
            None => return all,
        }
    }
}

/// The names of one page of `GET /projects?<query>`.
async fn project_names(app: &TestApp, who: &Person, query: &str) -> Vec<String> {
    let response = call(app, &who.token, Method::GET, &format!("/projects?{query}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET /projects?{query}");
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

/// The `ETag` of a response that must have one.
fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// The `id` of a JSON resource.
fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn creating_a_project_returns_201_with_location_and_etag_and_makes_the_creator_its_owner() {
    // Arrange
    let app = spawn_app().await;
    person(&app, "root").await;
    let alice = person(&app, "alice").await;

    // Act
    let response = call(&app, &alice.token, Method::POST, "/projects")
        .json(&json!({"name": "Ordo backend", "key": "ORDO", "description": "Services and gateway."}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created_etag = etag(&response);
    let project: Value = response.json().await.unwrap();
    let project_id = id(&project);
    assert_eq!(location, format!("/api/v1/projects/{project_id}"));
    assert_eq!(created_etag, format!("\"{}\"", project["version"]));
    assert!(uuid::Uuid::try_parse(&project_id).is_ok(), "{project}");
    assert_eq!(project["key"], "ORDO");
    assert_eq!(project["name"], "Ordo backend");
    assert_eq!(project["description"], "Services and gateway.");
    assert_eq!(project["archived"], false);
    assert_eq!(project["created_by"], alice.id.as_str());
    assert!(project["created_at"].is_string() && project["updated_at"].is_string(), "{project}");

    let fetched = call(&app, &alice.token, Method::GET, &format!("/projects/{project_id}")).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(etag(&fetched), created_etag);
    assert_eq!(fetched.json::<Value>().await.unwrap(), project, "reads back exactly as created");
    assert_eq!(members(&app, &alice, &project_id).await, [(alice.id.clone(), "owner".to_owned())]);
    app.cleanup().await;
}

#[tokio::test]
async fn a_project_created_without_a_description_has_a_null_one() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;

    // Act
    let project = create_project(&app, &alice, "Plain", "PLAIN").await;

    // Assert
    assert_eq!(project["description"], Value::Null, "{project}");
    app.cleanup().await;
}

#[tokio::test]
async fn creating_a_project_with_an_invalid_field_returns_422_naming_it_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let cases = [
        (json!({"name": "P", "key": "ab"}), "key"),
        (json!({"name": "P", "key": "A"}), "key"),
        (json!({"name": "P", "key": "1ABC"}), "key"),
        (json!({"name": "P", "key": "ABCDEFGHIJK"}), "key"),
        (json!({"name": "P", "key": "AB-C"}), "key"),
        (json!({"name": "P", "key": 12}), "key"),
        (json!({"name": "P"}), "key"),
        (json!({"name": "", "key": "EMPTY"}), "name"),
        (json!({"name": "n".repeat(201), "key": "LONG"}), "name"),
        (json!({"key": "NONAME"}), "name"),
        (json!({"name": "P", "key": "DESC", "description": "d".repeat(10_001)}), "description"),
        (json!({"name": "P", "key": "OWNER", "owner": "me"}), "owner"),
    ];

    for (body, field) in &cases {
        // Act
        let response = call(&app, &alice.token, Method::POST, "/projects").json(body).send().await.unwrap();

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, [*field], "{body} -> {problem}");
    }
    assert!(project_names(&app, &alice, "").await.is_empty(), "nothing was created");
    assert!(project_names(&app, &alice, "archived=true").await.is_empty(), "nothing was created");
    app.cleanup().await;
}

#[tokio::test]
async fn the_longest_name_key_and_description_are_accepted() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let body = json!({"name": "n".repeat(200), "key": "A123456789", "description": "d".repeat(10_000)});

    // Act
    let response = call(&app, &alice.token, Method::POST, "/projects").json(&body).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let project: Value = response.json().await.unwrap();
    assert_eq!(project["key"], "A123456789");
    assert_eq!(project["name"].as_str().unwrap().len(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn a_taken_key_returns_409_even_for_another_user() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    create_project(&app, &alice, "First", "DUP").await;

    // Act
    let response = call(&app, &bob.token, Method::POST, "/projects")
        .json(&json!({"name": "Second", "key": "DUP"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::CONFLICT).await;
    assert!(project_names(&app, &bob, "").await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_create_retried_with_the_same_idempotency_key_replays_the_first_response_and_creates_one_project() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let body = json!({"name": "Once", "key": "ONCE"});
    let post = |who: &Person, key: &str, body: &Value| {
        call(&app, &who.token, Method::POST, "/projects").header("idempotency-key", key).json(body).send()
    };
    let first = post(&alice, "create-once", &body).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (first_location, first_etag) = (first.headers()["location"].clone(), etag(&first));
    let first_body: Value = first.json().await.unwrap();

    // Act
    let retry = post(&alice, "create-once", &body).await.unwrap();
    let other_body = post(&alice, "create-once", &json!({"name": "Twice", "key": "TWICE"})).await.unwrap();
    let other_caller = post(&bob, "create-once", &body).await.unwrap();

    // Assert
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], first_location);
    assert_eq!(etag(&retry), first_etag);
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    let reused = assert_problem(other_body, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(reused["type"], "https://ordo.dev/problems/idempotency-key-reused");
    // Keys are scoped to the caller: bob's same key runs for real, and meets the taken project key.
    assert!(other_caller.headers().get("idempotent-replayed").is_none());
    assert_problem(other_caller, StatusCode::CONFLICT).await;
    assert_eq!(project_names(&app, &alice, "").await, ["Once"]);
    app.cleanup().await;
}

#[tokio::test]
async fn listing_shows_the_callers_active_projects_by_name_archived_ones_on_request_and_all_to_an_admin() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    create_project(&app, &alice, "CHARLIE", "CHARLIE").await;
    create_project(&app, &alice, "ALPHA", "ALPHA").await;
    let bravo = create_project(&app, &alice, "BRAVO", "BRAVO").await;
    create_project(&app, &bob, "DELTA", "DELTA").await;
    let archived = call(&app, &alice.token, Method::POST, &format!("/projects/{}/archive", id(&bravo))).send().await;
    assert_eq!(archived.unwrap().status(), StatusCode::OK);

    // Act
    let active = project_names(&app, &alice, "").await;
    let active_explicit = project_names(&app, &alice, "archived=false").await;
    let archived = project_names(&app, &alice, "archived=true").await;
    let bobs = project_names(&app, &bob, "").await;
    let everyone = project_names(&app, &root, "").await;
    let everyone_archived = project_names(&app, &root, "archived=true").await;

    // Assert
    assert_eq!(active, ["ALPHA", "CHARLIE"]);
    assert_eq!(active_explicit, active);
    assert_eq!(archived, ["BRAVO"]);
    assert_eq!(bobs, ["DELTA"]);
    assert_eq!(everyone, ["ALPHA", "CHARLIE", "DELTA"]);
    assert_eq!(everyone_archived, ["BRAVO"]);
    app.cleanup().await;
}

#[tokio::test]
async fn listing_with_a_bad_archived_limit_or_cursor_returns_400() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "P", "PP").await;
    let members_path = format!("/projects/{}/members", id(&project));

    for query in
        ["archived=yes", "archived=1", "archived=", "limit=0", "limit=101", "limit=x", "cursor=", "cursor=bogus"]
    {
        // Act
        let response = call(&app, &alice.token, Method::GET, &format!("/projects?{query}")).send().await.unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "/projects?{query}");
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
    for query in ["limit=0", "limit=101", "cursor=", "cursor=bogus"] {
        // Act
        let path = format!("{members_path}?{query}");
        let response = call(&app, &alice.token, Method::GET, &path).send().await.unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn keyset_pagination_is_stable_under_inserts_before_and_after_the_cursor() {
    // Arrange: P00..P11, read 5 at a time while projects sorting before and after the cursor appear.
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let mut originals = HashSet::new();
    for n in 0..12 {
        originals.insert(id(&create_project(&app, &alice, &format!("P{n:02}"), &format!("P{n:02}")).await));
    }
    // Created between pages: (name, sorts after everything already read).
    let inserts = [[("A1", false), ("Z1", true)], [("P035", false), ("P105", true)], [("A3", false), ("Z3", true)]];

    // Act
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut inserted_after = HashSet::new();
    let mut inserted_before = HashSet::new();
    let mut path = "/projects?limit=5".to_owned();
    for page_number in 0.. {
        assert!(page_number < 10, "too many pages: {seen:?}");
        let response = call(&app, &alice.token, Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|p| (id(p), p["name"].as_str().unwrap().to_owned())));
        let Some(cursor) = page["next_cursor"].as_str() else { break };
        if let Some(pair) = inserts.get(page_number) {
            for (name, after) in pair {
                let created = create_project(&app, &alice, name, name).await;
                if *after { &mut inserted_after } else { &mut inserted_before }.insert(id(&created));
            }
        }
        path = format!("/projects?limit=5&cursor={cursor}");
    }

    // Assert
    let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a project appeared twice: {seen:?}");
    for original in &originals {
        assert_eq!(ids.iter().filter(|id| **id == original).count(), 1, "{original} not exactly once: {seen:?}");
    }
    for after in &inserted_after {
        assert!(unique.contains(after), "a project inserted after the cursor was missed: {seen:?}");
    }
    for before in &inserted_before {
        assert!(!unique.contains(before), "a project inserted before the cursor appeared: {seen:?}");
    }
    let names: Vec<&String> = seen.iter().map(|(_, name)| name).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "not sorted by name: {names:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_project_id_that_is_not_a_uuid_or_names_no_project_returns_404_on_every_route() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "Real", "REAL").await;
    let real = id(&project);
    let unknown = "0190b6a4-7c1e-7000-8000-00000000dead";
    let routes = |project: &str, user: &str| {
        vec![
            (Method::GET, format!("/projects/{project}"), None),
            (Method::PATCH, format!("/projects/{project}"), Some(json!({"name": "X"}))),
            (Method::POST, format!("/projects/{project}/archive"), None),
            (Method::POST, format!("/projects/{project}/unarchive"), None),
            (Method::DELETE, format!("/projects/{project}"), None),
            (Method::GET, format!("/projects/{project}/members"), None),
            (Method::POST, format!("/projects/{project}/members"), Some(json!({"user_id": user, "role": "viewer"}))),
            (Method::PATCH, format!("/projects/{project}/members/{user}"), Some(json!({"role": "viewer"}))),
            (Method::DELETE, format!("/projects/{project}/members/{user}"), None),
        ]
    };
    let mut cases = Vec::new();
    for bad_project in ["not-a-uuid", unknown] {
        cases.extend(routes(bad_project, &alice.id));
    }
    // A member route whose user id is not a UUID, or names no member.
    for bad_user in ["not-a-uuid", unknown] {
        cases.extend(routes(&real, bad_user).into_iter().filter(|(_, path, _)| path.contains("/members/")));
    }

    for (method, path, body) in cases {
        // Act
        let mut request = call(&app, &alice.token, method.clone(), &path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
    let unchanged: Value =
        call(&app, &alice.token, Method::GET, &format!("/projects/{real}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(unchanged, project);
    app.cleanup().await;
}

#[tokio::test]
async fn patching_a_project_with_the_current_if_match_changes_it_and_a_stale_one_returns_412_changing_nothing() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "Before", "PATCHME").await;
    let path = format!("/projects/{}", id(&project));
    let stale = format!("\"{}\"", project["version"]);

    // Act
    let changed = call(&app, &alice.token, Method::PATCH, &path)
        .header("if-match", &stale)
        .json(&json!({"name": "After", "description": "Now described."}))
        .send()
        .await
        .unwrap();
    let refused = call(&app, &alice.token, Method::PATCH, &path)
        .header("if-match", &stale)
        .json(&json!({"name": "Lost update"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(changed.status(), StatusCode::OK);
    let changed_etag = etag(&changed);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["name"], "After");
    assert_eq!(changed["description"], "Now described.");
    assert_eq!(changed["key"], "PATCHME", "the key never changes");
    assert!(changed["version"].as_i64() > project["version"].as_i64());
    assert_eq!(changed_etag, format!("\"{}\"", changed["version"]));
    assert_problem(refused, StatusCode::PRECONDITION_FAILED).await;
    let now = call(&app, &alice.token, Method::GET, &path).send().await.unwrap();
    assert_eq!(etag(&now), changed_etag);
    assert_eq!(now.json::<Value>().await.unwrap(), changed, "nothing changed");
    app.cleanup().await;
}

#[tokio::test]
async fn a_null_or_empty_description_removes_it_an_absent_one_leaves_it_and_a_null_name_is_422() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "Described", "DESCR").await;
    let path = format!("/projects/{}", id(&project));
    let patch = |body: Value| call(&app, &alice.token, Method::PATCH, &path).json(&body).send();

    for removal in [json!(null), json!("")] {
        // Arrange
        let described = patch(json!({"description": "Something."})).await.unwrap();
        assert_eq!(described.json::<Value>().await.unwrap()["description"], "Something.");

        // Act
        let renamed = patch(json!({"name": "Renamed"})).await.unwrap().json::<Value>().await.unwrap();
        let removed = patch(json!({"description": removal})).await.unwrap();

        // Assert
        assert_eq!(renamed["description"], "Something.", "an absent description is left");
        assert_eq!(removed.status(), StatusCode::OK);
        assert_eq!(removed.json::<Value>().await.unwrap()["description"], Value::Null, "{removal} removes it");
    }
    let null_name = patch(json!({"name": null})).await.unwrap();
    let problem = assert_problem(null_name, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (json!({"description": "d".repeat(10_001)}), "description"),
        (json!({"key": "NEWKEY"}), "key"),
    ] {
        let problem = assert_problem(patch(body.clone()).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body} -> {problem}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn archiving_and_unarchiving_flip_archived_and_an_archived_project_refuses_changes_with_409() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "Seasonal", "SEASON").await;
    let path = format!("/projects/{}", id(&project));

    // Act
    let archived = call(&app, &alice.token, Method::POST, &format!("{path}/archive"))
        .header("if-match", format!("\"{}\"", project["version"]))
        .send()
        .await
        .unwrap();
    let archived_etag = etag(&archived);
    let archived: Value = archived.json().await.unwrap();
    let archived_again = call(&app, &alice.token, Method::POST, &format!("{path}/archive")).send().await.unwrap();
    let patch = call(&app, &alice.token, Method::PATCH, &path).json(&json!({"name": "Nope"})).send().await.unwrap();
    let stale_unarchive = call(&app, &alice.token, Method::POST, &format!("{path}/unarchive"))
        .header("if-match", format!("\"{}\"", project["version"]))
        .send()
        .await
        .unwrap();
    let unarchived = call(&app, &alice.token, Method::POST, &format!("{path}/unarchive"))
        .header("if-match", &archived_etag)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(archived["archived"], true);
    assert_eq!(archived_etag, format!("\"{}\"", archived["version"]));
    assert!(archived["version"].as_i64() > project["version"].as_i64());
    assert_eq!(archived_again.status(), StatusCode::OK, "archiving an archived project changes nothing");
    assert_eq!(archived_again.json::<Value>().await.unwrap()["archived"], true);
    assert_problem(patch, StatusCode::CONFLICT).await;
    assert_problem(stale_unarchive, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(unarchived.status(), StatusCode::OK);
    let unarchived: Value = unarchived.json().await.unwrap();
    assert_eq!(unarchived["archived"], false);
    assert_eq!(unarchived["name"], "Seasonal");
    let renamed = call(&app, &alice.token, Method::PATCH, &path).json(&json!({"name": "Back"})).send().await.unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn deleting_a_project_honours_if_match_returns_204_and_then_the_project_is_gone_for_everyone() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = create_project(&app, &alice, "Doomed", "DOOMED").await;
    let path = format!("/projects/{}", id(&project));
    add_member(&app, &alice, &id(&project), &bob.id, "member").await;
    let renamed = call(&app, &alice.token, Method::PATCH, &path).json(&json!({"name": "Doomed!"})).send().await;
    let current = etag(&renamed.unwrap());

    // Act
    let stale = call(&app, &alice.token, Method::DELETE, &path)
        .header("if-match", format!("\"{}\"", project["version"]))
        .send()
        .await
        .unwrap();
    let still_there = call(&app, &alice.token, Method::GET, &path).send().await.unwrap().status();
    let deleted = call(&app, &alice.token, Method::DELETE, &path).header("if-match", &current).send().await.unwrap();

    // Assert
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(still_there, StatusCode::OK);
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for who in [&alice, &bob, &root] {
        let response = call(&app, &who.token, Method::GET, &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND).await;
        assert!(project_names(&app, who, "").await.is_empty());
    }
    let again = call(&app, &alice.token, Method::DELETE, &path).send().await.unwrap();
    assert_problem(again, StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_owner_adds_lists_changes_and_removes_members() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let carol = person(&app, "carol").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);

    // Act: add
    let added = call(&app, &alice.token, Method::POST, &format!("/projects/{project}/members"))
        .json(&json!({"user_id": bob.id, "role": "member"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(added.headers()["location"], format!("/api/v1/projects/{project}/members/{}", bob.id).as_str());
    let added_etag = etag(&added);
    let location = added.headers()["location"].to_str().unwrap().trim_start_matches("/api/v1").to_owned();
    let member: Value = added.json().await.unwrap();
    assert_eq!(member["user_id"], bob.id.as_str());
    assert_eq!(member["role"], "member");
    assert_eq!(member["user_disabled"], false);
    assert!(member["added_at"].is_string(), "{member}");
    assert_eq!(added_etag, format!("\"{}\"", member["version"]));
    // The Location answers with the same membership, to any member.
    let fetched = call(&app, &bob.token, Method::GET, &location).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(etag(&fetched), added_etag);
    assert_eq!(fetched.json::<Value>().await.unwrap(), member);
    add_member(&app, &alice, &project, &carol.id, "viewer").await;

    // Act: list, oldest membership first
    let listed = call(&app, &bob.token, Method::GET, &format!("/projects/{project}/members")).send().await.unwrap();

    // Assert
    assert_eq!(listed.status(), StatusCode::OK);
    let page: Value = listed.json().await.unwrap();
    assert_eq!(page["next_cursor"], Value::Null);
    let items = page["items"].as_array().unwrap();
    let listed: Vec<(&str, &str)> =
        items.iter().map(|m| (m["user_id"].as_str().unwrap(), m["role"].as_str().unwrap())).collect();
    assert_eq!(listed, [(&*alice.id, "owner"), (&*bob.id, "member"), (&*carol.id, "viewer")]);
    assert_eq!(items[1], member, "a member lists exactly as it was added");

    // Act: change the role, with the current and then a stale If-Match
    let member_path = format!("/projects/{project}/members/{}", bob.id);
    let promoted = call(&app, &alice.token, Method::PATCH, &member_path)
        .header("if-match", &added_etag)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    let stale = call(&app, &alice.token, Method::PATCH, &member_path)
        .header("if-match", &added_etag)
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(promoted.status(), StatusCode::OK);
    let promoted_etag = etag(&promoted);
    assert_ne!(promoted_etag, added_etag);
    let promoted: Value = promoted.json().await.unwrap();
    assert_eq!(promoted["role"], "admin");
    assert_eq!(promoted_etag, format!("\"{}\"", promoted["version"]));
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(members(&app, &alice, &project).await[1], (bob.id.clone(), "admin".to_owned()), "nothing changed");

    // Act: remove, with a stale and then the current If-Match
    let stale_removal =
        call(&app, &alice.token, Method::DELETE, &member_path).header("if-match", &added_etag).send().await.unwrap();
    let removed =
        call(&app, &alice.token, Method::DELETE, &member_path).header("if-match", &promoted_etag).send().await.unwrap();

    // Assert
    assert_problem(stale_removal, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        members(&app, &alice, &project).await,
        [(alice.id.clone(), "owner".to_owned()), (carol.id.clone(), "viewer".to_owned())]
    );
    let again = call(&app, &alice.token, Method::DELETE, &member_path).send().await.unwrap();
    assert_problem(again, StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}

#[tokio::test]
async fn members_page_by_added_at_with_every_member_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = id(&create_project(&app, &alice, "Crowd", "CROWD").await);
    let mut expected = vec![alice.id.clone()];
    for name in ["bob", "carol", "dave", "erin"] {
        let user = app.register_user(&format!("{name}@example.com"), name).await;
        add_member(&app, &alice, &project, &user, "viewer").await;
        expected.push(user);
    }

    // Act
    let mut seen = Vec::new();
    let mut path = format!("/projects/{project}/members?limit=2");
    loop {
        let page: Value = call(&app, &alice.token, Method::GET, &path).send().await.unwrap().json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        seen.extend(items.iter().map(|m| m["user_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/projects/{project}/members?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= expected.len(), "more pages than members: {seen:?}");
    }

    // Assert
    assert_eq!(seen, expected);
    app.cleanup().await;
}

#[tokio::test]
async fn adding_a_user_that_does_not_exist_or_is_not_a_uuid_returns_422_naming_user_id() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    let path = format!("/projects/{project}/members");

    for user_id in [json!("0190b6a4-7c1e-7000-8000-00000000dead"), json!("not-a-uuid"), json!(""), json!(7)] {
        // Act
        let response = call(&app, &alice.token, Method::POST, &path)
            .json(&json!({"user_id": user_id, "role": "member"}))
            .send()
            .await
            .unwrap();

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "user_id", "{user_id} -> {problem}");
    }
    assert_eq!(members(&app, &alice, &project).await.len(), 1, "nobody was added");
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_or_missing_role_returns_422_naming_role() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    add_member(&app, &alice, &project, &bob.id, "member").await;
    let cases = [
        (Method::POST, format!("/projects/{project}/members"), json!({"user_id": bob.id, "role": "boss"})),
        (Method::POST, format!("/projects/{project}/members"), json!({"user_id": bob.id})),
        (Method::POST, format!("/projects/{project}/members"), json!({"user_id": bob.id, "role": "Owner"})),
        (Method::PATCH, format!("/projects/{project}/members/{}", bob.id), json!({"role": "superuser"})),
        (Method::PATCH, format!("/projects/{project}/members/{}", bob.id), json!({})),
    ];

    for (method, path, body) in cases {
        // Act
        let response = call(&app, &alice.token, method.clone(), &path).json(&body).send().await.unwrap();

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "role", "{method} {path} {body} -> {problem}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn adding_someone_who_is_already_a_member_returns_409() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    add_member(&app, &alice, &project, &bob.id, "viewer").await;

    // Act
    let twice = call(&app, &alice.token, Method::POST, &format!("/projects/{project}/members"))
        .json(&json!({"user_id": bob.id, "role": "admin"}))
        .send()
        .await
        .unwrap();
    let creator = call(&app, &alice.token, Method::POST, &format!("/projects/{project}/members"))
        .json(&json!({"user_id": alice.id, "role": "viewer"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(twice, StatusCode::CONFLICT).await;
    assert_problem(creator, StatusCode::CONFLICT).await;
    assert_eq!(
        members(&app, &alice, &project).await,
        [(alice.id.clone(), "owner".to_owned()), (bob.id.clone(), "viewer".to_owned())]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_add_member_retried_with_the_same_idempotency_key_replays_the_first_response() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    let body = json!({"user_id": bob.id, "role": "member"});
    let post = || {
        call(&app, &alice.token, Method::POST, &format!("/projects/{project}/members"))
            .header("idempotency-key", "add-bob")
            .json(&body)
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();

    // Act
    let retry = post().await.unwrap();

    // Assert: a replay, not a 409 "already a member".
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], first_location);
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    assert_eq!(members(&app, &alice, &project).await.len(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn any_member_may_leave_and_loses_access_at_once() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    let mut leavers = Vec::new();
    for (name, role) in [("adam", "admin"), ("mona", "member"), ("vera", "viewer"), ("olga", "owner")] {
        let leaver = person(&app, name).await;
        add_member(&app, &alice, &project, &leaver.id, role).await;
        leavers.push((leaver, role));
    }

    for (leaver, role) in &leavers {
        // Arrange
        let path = format!("/projects/{project}");
        assert_eq!(call(&app, &leaver.token, Method::GET, &path).send().await.unwrap().status(), StatusCode::OK);

        // Act
        let left =
            call(&app, &leaver.token, Method::DELETE, &format!("{path}/members/{}", leaver.id)).send().await.unwrap();
        let after = call(&app, &leaver.token, Method::GET, &path).send().await.unwrap();

        // Assert
        assert_eq!(left.status(), StatusCode::NO_CONTENT, "a {role} leaves");
        assert_eq!(after.status(), StatusCode::NOT_FOUND, "a {role} that left no longer sees the project");
    }
    assert_eq!(members(&app, &alice, &project).await, [(alice.id.clone(), "owner".to_owned())]);
    app.cleanup().await;
}

#[tokio::test]
async fn the_last_owner_can_neither_leave_nor_be_demoted_until_there_is_another() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    let alice_path = format!("/projects/{project}/members/{}", alice.id);

    // Act
    let leave = call(&app, &alice.token, Method::DELETE, &alice_path).send().await.unwrap();
    let demote = call(&app, &alice.token, Method::PATCH, &alice_path).json(&json!({"role": "admin"})).send().await;

    // Assert
    assert_problem(leave, StatusCode::CONFLICT).await;
    assert_problem(demote.unwrap(), StatusCode::CONFLICT).await;
    assert_eq!(members(&app, &alice, &project).await, [(alice.id.clone(), "owner".to_owned())]);

    // Act: with a second owner, the first may step down, and then the second is the last.
    add_member(&app, &alice, &project, &bob.id, "owner").await;
    let demoted = call(&app, &alice.token, Method::PATCH, &alice_path).json(&json!({"role": "admin"})).send().await;
    let bob_path = format!("/projects/{project}/members/{}", bob.id);
    let bob_leaves = call(&app, &bob.token, Method::DELETE, &bob_path).send().await.unwrap();

    // Assert
    assert_eq!(demoted.unwrap().status(), StatusCode::OK);
    assert_problem(bob_leaves, StatusCode::CONFLICT).await;
    assert_eq!(
        members(&app, &bob, &project).await,
        [(alice.id.clone(), "admin".to_owned()), (bob.id.clone(), "owner".to_owned())]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_removed_member_loses_access_with_the_very_next_request() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    add_member(&app, &alice, &project, &bob.id, "admin").await;
    let path = format!("/projects/{project}");
    // Reads that may fill any access cache.
    for _ in 0..3 {
        assert_eq!(call(&app, &bob.token, Method::GET, &path).send().await.unwrap().status(), StatusCode::OK);
        let members = call(&app, &bob.token, Method::GET, &format!("{path}/members")).send().await.unwrap();
        assert_eq!(members.status(), StatusCode::OK);
    }
    assert_eq!(project_names(&app, &bob, "").await, ["Team"]);

    // Act
    let removed = call(&app, &alice.token, Method::DELETE, &format!("{path}/members/{}", bob.id)).send().await.unwrap();
    let get = call(&app, &bob.token, Method::GET, &path).send().await.unwrap();
    let list_members = call(&app, &bob.token, Method::GET, &format!("{path}/members")).send().await.unwrap();
    let patch = call(&app, &bob.token, Method::PATCH, &path).json(&json!({"name": "Mine"})).send().await.unwrap();

    // Assert
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_problem(get, StatusCode::NOT_FOUND).await;
    assert_problem(list_members, StatusCode::NOT_FOUND).await;
    assert_problem(patch, StatusCode::NOT_FOUND).await;
    assert!(project_names(&app, &bob, "").await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_role_change_takes_effect_with_the_very_next_request() {
    // Arrange
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);
    add_member(&app, &alice, &project, &bob.id, "viewer").await;
    let path = format!("/projects/{project}");
    let rename = |name: &str| call(&app, &bob.token, Method::PATCH, &path).json(&json!({"name": name})).send();
    let set_role = |role: &str| {
        call(&app, &alice.token, Method::PATCH, &format!("{path}/members/{}", bob.id))
            .json(&json!({"role": role}))
            .send()
    };
    assert_eq!(rename("As viewer").await.unwrap().status(), StatusCode::FORBIDDEN);

    // Act
    assert_eq!(set_role("admin").await.unwrap().status(), StatusCode::OK);
    let as_admin = rename("As admin").await.unwrap().status();
    assert_eq!(set_role("viewer").await.unwrap().status(), StatusCode::OK);
    let as_viewer_again = rename("As viewer again").await.unwrap().status();

    // Assert
    assert_eq!(as_admin, StatusCode::OK);
    assert_eq!(as_viewer_again, StatusCode::FORBIDDEN);
    app.cleanup().await;
}

/// The roles of the authorization matrix, in the order of its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Admin,
    Member,
    Viewer,
    NonMember,
    GlobalAdmin,
}

const COLUMNS: [Who; 6] = [Who::Owner, Who::Admin, Who::Member, Who::Viewer, Who::NonMember, Who::GlobalAdmin];

/// The people of the matrix: each cell gets a fresh project in which they hold these roles.
struct Cast {
    global_admin: Person,
    owner: Person,
    co_owner: Person,
    admin: Person,
    member: Person,
    viewer: Person,
    target: Person,
    newcomer: Person,
    non_member: Person,
}

impl Cast {
    fn caller(&self, who: Who) -> &Person {
        match who {
            Who::Owner => &self.owner,
            Who::Admin => &self.admin,
            Who::Member => &self.member,
            Who::Viewer => &self.viewer,
            Who::NonMember => &self.non_member,
            Who::GlobalAdmin => &self.global_admin,
        }
    }

    /// A project owned by `owner` and `co_owner`, with an `admin`, a `member`, a `viewer` and a
    /// `target` (a member), archived when asked.
    async fn project(&self, app: &TestApp, key: &str, archived: bool) -> String {
        let project = id(&create_project(app, &self.owner, &format!("Matrix {key}"), key).await);
        for (person, role) in [
            (&self.co_owner, "owner"),
            (&self.admin, "admin"),
            (&self.member, "member"),
            (&self.viewer, "viewer"),
            (&self.target, "member"),
        ] {
            add_member(app, &self.owner, &project, &person.id, role).await;
        }
        if archived {
            let response = call(app, &self.owner.token, Method::POST, &format!("/projects/{project}/archive")).send();
            assert_eq!(response.await.unwrap().status(), StatusCode::OK);
        }
        project
    }

    /// `text` with `{project}`, `{me}`, `{target}`, `{co_owner}` and `{newcomer}` filled in.
    fn fill(&self, text: &str, project: &str, me: &Person) -> String {
        text.replace("{project}", project)
            .replace("{me}", &me.id)
            .replace("{target}", &self.target.id)
            .replace("{co_owner}", &self.co_owner.id)
            .replace("{newcomer}", &self.newcomer.id)
    }
}

/// One row of the matrix: a request and the status each column must get.
struct Row {
    route: &'static str,
    body: Option<&'static str>,
    archived: bool,
    expected: [u16; 6],
}

#[tokio::test]
async fn every_project_route_answers_each_role_exactly_as_the_contract_says() {
    // Arrange
    let app = spawn_app().await;
    let cast = Cast {
        // The first account is the global admin; it is a member of no project here.
        global_admin: person(&app, "root").await,
        owner: person(&app, "owner").await,
        co_owner: person(&app, "coowner").await,
        admin: person(&app, "admin").await,
        member: person(&app, "member").await,
        viewer: person(&app, "viewer").await,
        target: person(&app, "target").await,
        newcomer: person(&app, "newcomer").await,
        non_member: person(&app, "outsider").await,
    };
    #[rustfmt::skip]
    let rows = [
        // expected: [owner, admin, member, viewer, non-member, global admin]
        Row { route: "GET /projects/{project}", body: None, archived: false, expected: [200, 200, 200, 200, 404, 200] },
        Row { route: "PATCH /projects/{project}", body: Some(r#"{"name": "Renamed"}"#), archived: false, expected: [200, 200, 403, 403, 404, 403] },
        Row { route: "POST /projects/{project}/archive", body: None, archived: false, expected: [200, 403, 403, 403, 404, 403] },
        Row { route: "POST /projects/{project}/unarchive", body: None, archived: true, expected: [200, 403, 403, 403, 404, 403] },
        Row { route: "DELETE /projects/{project}", body: None, archived: false, expected: [204, 403, 403, 403, 404, 403] },
        Row { route: "GET /projects/{project}/members", body: None, archived: false, expected: [200, 200, 200, 200, 404, 200] },
        Row { route: "GET /projects/{project}/members/{target}", body: None, archived: false, expected: [200, 200, 200, 200, 404, 200] },
        Row { route: "POST /projects/{project}/members", body: Some(r#"{"user_id": "{newcomer}", "role": "member"}"#), archived: false, expected: [201, 201, 403, 403, 404, 403] },
        Row { route: "POST /projects/{project}/members", body: Some(r#"{"user_id": "{newcomer}", "role": "owner"}"#), archived: false, expected: [201, 403, 403, 403, 404, 403] },
        Row { route: "PATCH /projects/{project}/members/{target}", body: Some(r#"{"role": "viewer"}"#), archived: false, expected: [200, 200, 403, 403, 404, 403] },
        Row { route: "PATCH /projects/{project}/members/{target}", body: Some(r#"{"role": "owner"}"#), archived: false, expected: [200, 403, 403, 403, 404, 403] },
        Row { route: "PATCH /projects/{project}/members/{co_owner}", body: Some(r#"{"role": "member"}"#), archived: false, expected: [200, 403, 403, 403, 404, 403] },
        Row { route: "DELETE /projects/{project}/members/{target}", body: None, archived: false, expected: [204, 204, 403, 403, 404, 403] },
        Row { route: "DELETE /projects/{project}/members/{co_owner}", body: None, archived: false, expected: [204, 403, 403, 403, 404, 403] },
        // A global admin who is no member has no membership to remove: 404, as for any unknown member.
        Row { route: "DELETE /projects/{project}/members/{me}", body: None, archived: false, expected: [204, 204, 204, 204, 404, 404] },
    ];
    let mut keys = 0..;
    let mut mismatches = Vec::new();

    for row in &rows {
        let (method, path) = row.route.split_once(' ').unwrap();
        let method: Method = method.parse().unwrap();
        // Each cell in a fresh project, so one cell's effect cannot change another's answer.
        let cells = COLUMNS.iter().zip(row.expected).map(|(&who, expected)| {
            let key = format!("M{}", keys.next().unwrap());
            let (cast, app, method) = (&cast, &app, method.clone());
            async move {
                let project = cast.project(app, &key, row.archived).await;
                let caller = cast.caller(who);
                // Act
                let mut request = call(app, &caller.token, method, &cast.fill(path, &project, caller));
                if let Some(body) = row.body {
                    let body: Value = serde_json::from_str(&cast.fill(body, &project, caller)).unwrap();
                    request = request.json(&body);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                (who, expected, status, body)
            }
        });
        for (who, expected, status, body) in futures::future::join_all(cells).await {
            // Assert (collected, so one run shows the whole matrix)
            if status != expected {
                let body = if body.len() > 200 { &body[..200] } else { &body };
                let shown = row.body.unwrap_or("");
                mismatches.push(format!("{} {shown} as {who:?}: expected {expected}, got {status} {body}", row.route));
            }
        }
    }

    assert!(mismatches.is_empty(), "{} cells differ:\n{}", mismatches.len(), mismatches.join("\n"));
    app.cleanup().await;
}

#[tokio::test]
async fn the_project_list_shows_a_project_to_its_members_and_global_admins_only() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let viewer = person(&app, "viewer").await;
    let outsider = person(&app, "outsider").await;
    let project = id(&create_project(&app, &alice, "Private", "PRIV").await);
    add_member(&app, &alice, &project, &viewer.id, "viewer").await;

    // Act
    let seen_by: HashMap<&str, Vec<String>> = HashMap::from([
        ("owner", project_names(&app, &alice, "").await),
        ("viewer", project_names(&app, &viewer, "").await),
        ("outsider", project_names(&app, &outsider, "").await),
        ("global admin", project_names(&app, &root, "").await),
    ]);

    // Assert
    for who in ["owner", "viewer", "global admin"] {
        assert_eq!(seen_by[who], ["Private"], "{who}");
    }
    assert!(seen_by["outsider"].is_empty());
    app.cleanup().await;
}

/// How the last two owners of a project race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Race {
    /// Each demotes the other to `admin`.
    DemoteEachOther,
    /// Each removes the other.
    RemoveEachOther,
    /// Each steps down to `admin`.
    StepDown,
    /// Each leaves.
    Leave,
}

/// The two owners of a fresh project race, both at once; exactly one may win and one owner must stay.
async fn race_between_the_last_two_owners(app: &TestApp, a: &Person, b: &Person, round: u32, race: Race) {
    // Arrange
    let key = format!("R{}X{round}", race as u8);
    let project = id(&create_project(app, a, &format!("Race {key}"), &key).await);
    add_member(app, a, &project, &b.id, "owner").await;
    let removal = matches!(race, Race::RemoveEachOther | Race::Leave);
    let request = |caller: &Person, other: &Person| {
        let target = if matches!(race, Race::StepDown | Race::Leave) { caller } else { other };
        let path = format!("/projects/{project}/members/{}", target.id);
        if removal {
            call(app, &caller.token, Method::DELETE, &path).send()
        } else {
            call(app, &caller.token, Method::PATCH, &path).json(&json!({"role": "admin"})).send()
        }
    };

    // Act
    let (a_result, b_result) = tokio::join!(request(a, b), request(b, a));

    // Assert
    let success = if removal { StatusCode::NO_CONTENT } else { StatusCode::OK };
    // The service serialises the two, so the loser is judged on the state the winner left. Racing on
    // oneself, the loser is then the last owner: 409. Racing on each other, the loser has just been
    // demoted (an admin may not change an owner: 403) or removed (it sees the project no more: 404);
    // 409 would be right too, for a service that checked the role before the winner committed.
    let refusals: &[StatusCode] = match race {
        Race::StepDown | Race::Leave => &[StatusCode::CONFLICT],
        Race::DemoteEachOther => &[StatusCode::CONFLICT, StatusCode::FORBIDDEN],
        Race::RemoveEachOther => &[StatusCode::CONFLICT, StatusCode::NOT_FOUND],
    };
    let (a_status, b_status) = (a_result.unwrap().status(), b_result.unwrap().status());
    let outcome = format!("round {round} of {race:?}: anna got {a_status}, boris got {b_status}");
    assert!(
        (a_status == success && refusals.contains(&b_status)) || (refusals.contains(&a_status) && b_status == success),
        "{outcome}"
    );
    // After stepping down or being demoted, the loser of a demotion race is still a member; after a
    // removal race only the owner who stayed is. Ask as the one who certainly still is an owner.
    let (winner, loser) = if a_status == success { (a, b) } else { (b, a) };
    let owner = if matches!(race, Race::StepDown | Race::Leave) { loser } else { winner };
    let remaining = members(app, owner, &project).await;
    let owners: Vec<&String> = remaining.iter().filter(|(_, role)| role == "owner").map(|(id, _)| id).collect();
    assert_eq!(owners, [&owner.id], "{outcome}: {remaining:?}");
    assert_eq!(remaining.len(), if removal { 1 } else { 2 }, "{outcome}: {remaining:?}");
}

/// Runs `race` a few times, each in a fresh project.
async fn race_repeatedly(race: Race) {
    // Arrange
    let app = spawn_app().await;
    // The first account is a global admin, who would still see the project after losing the race.
    person(&app, "root").await;
    let a = person(&app, "anna").await;
    let b = person(&app, "boris").await;

    for round in 0..6 {
        race_between_the_last_two_owners(&app, &a, &b, round, race).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn when_the_last_two_owners_demote_each_other_at_once_exactly_one_succeeds() {
    race_repeatedly(Race::DemoteEachOther).await;
}

#[tokio::test]
async fn when_the_last_two_owners_remove_each_other_at_once_exactly_one_succeeds() {
    race_repeatedly(Race::RemoveEachOther).await;
}

#[tokio::test]
async fn when_the_last_two_owners_step_down_at_once_exactly_one_succeeds_and_the_other_gets_409() {
    race_repeatedly(Race::StepDown).await;
}

#[tokio::test]
async fn when_the_last_two_owners_leave_at_once_exactly_one_succeeds_and_the_other_gets_409() {
    race_repeatedly(Race::Leave).await;
}

#[tokio::test]
async fn when_the_project_service_stops_project_routes_answer_503_and_readyz_names_it() {
    // Arrange
    let options = Options { backend_timeout_ms: 500, ..Options::default() };
    let mut app = spawn_app_with(options).await;
    let alice = person(&app, "alice").await;
    let project = id(&create_project(&app, &alice, "Team", "TEAM").await);

    // Act
    app.stop_project().await;
    let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
    let get = call(&app, &alice.token, Method::GET, &format!("/projects/{project}")).send().await.unwrap();
    let me = app.me(&alice.token).await;

    // Assert
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(readyz.json::<Value>().await.unwrap()["failing"], json!(["project"]));
    assert_eq!(get.headers()["retry-after"], "1");
    let problem = assert_problem(get, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!problem.to_string().contains("127.0.0.1"), "no internal address in {problem}");
    assert_eq!(me.status(), StatusCode::OK, "the other areas still answer");
    app.cleanup().await;
}
