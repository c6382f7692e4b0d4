//! `/tasks`, `/comments` and `/attachments`: tasks end to end through the gateway and the task
//! service, who may do what (API.md's project roles), idempotent creates, If-Match, filters and sorts
//! across pages, bulk outcomes, and the attachment limits the gateway enforces itself.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Options, TestApp, assert_problem, spawn_app_with};

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

/// A request as `who` to `path` (under `/api/v1`).
fn call(app: &TestApp, who: &Person, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(&who.token)
}

/// `POST /projects`, failing the test unless it is created; returns the project id.
async fn create_project(app: &TestApp, who: &Person, key: &str) -> String {
    let response =
        call(app, who, Method::POST, "/projects").json(&json!({"name": key, "key": key})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "create project {key}");
    id(&response.json().await.unwrap())
}

/// Makes `user` a `role` of `project`.
async fn add_member(app: &TestApp, who: &Person, project: &str, user: &Person, role: &str) {
    let response = call(app, who, Method::POST, &format!("/projects/{project}/members"))
        .json(&json!({"user_id": user.id, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "add {} as {role}", user.id);
}

/// `POST /tasks` with `fields` added to the project id; returns the raw response.
async fn post_task(app: &TestApp, who: &Person, project: &str, fields: Value) -> reqwest::Response {
    let mut body = json!({"project_id": project});
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    call(app, who, Method::POST, "/tasks").json(&body).send().await.unwrap()
}

/// `POST /tasks`, failing the test unless it is created; returns the task.
async fn create_task(app: &TestApp, who: &Person, project: &str, fields: Value) -> Value {
    let response = post_task(app, who, project, fields.clone()).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "create task {fields}: {body}");
    body
}

/// Every task of `GET /tasks?<query>`, page after page; returns their titles in the order served and
/// how many pages it took.
async fn titles(app: &TestApp, who: &Person, query: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut path = format!("/tasks?{query}");
    loop {
        let response = call(app, who, Method::GET, &path).send().await.unwrap();
        let status = response.status();
        let page: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {page}");
        pages += 1;
        for task in page["items"].as_array().unwrap() {
            all.push(task["title"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/tasks?{query}&cursor={cursor}"),
            None => return (all, pages),
        }
    }
}

/// The `ETag` of a response that must have one.
fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// The `id` of a JSON resource.
fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

/// The `errors[].field` of a problem, sorted.
fn fields(problem: &Value) -> BTreeSet<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

/// A project owned by alice (a second account; the first is the global admin) with one task.
struct Board {
    app: TestApp,
    alice: Person,
    project: String,
}

async fn board() -> Board {
    board_with(Options::default()).await
}

async fn board_with(options: Options) -> Board {
    let app = spawn_app_with(options).await;
    person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "ORDO").await;
    Board { app, alice, project }
}

#[tokio::test]
async fn creating_a_task_returns_201_with_location_etag_and_the_next_number_and_key() {
    // Arrange
    let Board { app, alice, project } = board().await;
    create_task(&app, &alice, &project, json!({"title": "First"})).await;

    // Act
    let response = post_task(&app, &alice, &project, json!({"title": "  Second  ", "priority": "high"})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created_etag = etag(&response);
    let task: Value = response.json().await.unwrap();
    let task_id = id(&task);
    assert_eq!(location, format!("/api/v1/tasks/{task_id}"));
    assert_eq!(created_etag, format!("\"{}\"", task["version"]));
    assert_eq!(task["number"], 2);
    assert_eq!(task["key"], "ORDO-2");
    assert_eq!(task["title"], "Second");
    assert_eq!(task["project_id"], project.as_str());
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["reporter_id"], alice.id.as_str());
    assert_eq!(task["assignee_ids"], json!([]));
    assert_eq!(task["labels"], json!([]));
    for field in ["description", "due_at", "start_at", "estimate_minutes", "parent_id", "completed_at"] {
        assert_eq!(task[field], Value::Null, "{field} in {task}");
    }
    assert!(task["position"].is_string() && task["created_at"].is_string() && task["updated_at"].is_string());
    let keys: BTreeSet<&str> = task.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "id",
        "project_id",
        "number",
        "key",
        "title",
        "description",
        "status",
        "priority",
        "assignee_ids",
        "labels",
        "due_at",
        "start_at",
        "estimate_minutes",
        "parent_id",
        "reporter_id",
        "position",
        "created_at",
        "updated_at",
        "completed_at",
        "version",
    ]
    .into();
    assert_eq!(keys, expected);

    let fetched = call(&app, &alice, Method::GET, &format!("/tasks/{task_id}")).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(etag(&fetched), created_etag);
    assert_eq!(fetched.json::<Value>().await.unwrap(), task, "reads back exactly as created");
    app.cleanup().await;
}

#[tokio::test]
async fn a_task_with_every_field_reads_back_with_utc_times_and_lower_case_values() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let parent = create_task(&app, &alice, &project, json!({"title": "Parent"})).await;

    // Act
    let task = create_task(
        &app,
        &alice,
        &project,
        json!({
            "title": "Child", "description": "Details", "status": "in_progress", "priority": "urgent",
            "assignee_ids": [alice.id], "labels": ["api", "api", "backend"],
            "due_at": "2030-01-02T12:00:00+02:00", "start_at": "2030-01-01T09:00:00Z",
            "estimate_minutes": 90, "parent_id": id(&parent),
        }),
    )
    .await;

    // Assert
    assert_eq!(task["description"], "Details");
    assert_eq!(task["status"], "in_progress");
    assert_eq!(task["priority"], "urgent");
    assert_eq!(task["assignee_ids"], json!([alice.id]));
    assert_eq!(task["labels"], json!(["api", "backend"]));
    assert_eq!(task["due_at"], "2030-01-02T10:00:00Z");
    assert_eq!(task["start_at"], "2030-01-01T09:00:00Z");
    assert_eq!(task["estimate_minutes"], 90);
    assert_eq!(task["parent_id"], id(&parent).as_str());
    app.cleanup().await;
}

#[tokio::test]
async fn creating_a_task_with_invalid_fields_returns_422_with_one_entry_per_bad_field_and_creates_nothing() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let cases = [
        (json!({"title": ""}), vec!["title"]),
        (json!({"title": "   "}), vec!["title"]),
        (json!({"title": "t".repeat(501)}), vec!["title"]),
        (json!({}), vec!["title"]),
        (json!({"title": "T", "status": "doing"}), vec!["status"]),
        (json!({"title": "T", "priority": "p1"}), vec!["priority"]),
        (json!({"title": "T", "due_at": "tomorrow"}), vec!["due_at"]),
        (json!({"title": "T", "estimate_minutes": "long"}), vec!["estimate_minutes"]),
        (json!({"title": "T", "owner": "me"}), vec!["owner"]),
        (json!({"title": "T", "labels": (0..21).map(|i| format!("l{i}")).collect::<Vec<_>>()}), vec!["labels"]),
        (
            json!({"title": "", "estimate_minutes": -1, "description": "d".repeat(100_001)}),
            vec!["description", "estimate_minutes", "title"],
        ),
        (json!({"title": "T", "due_at": "2030-01-01T00:00:00Z", "start_at": "2030-02-01T00:00:00Z"}), vec!["due_at"]),
    ];

    for (body, expected) in &cases {
        // Act
        let response = post_task(&app, &alice, &project, body.clone()).await;

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let expected: BTreeSet<String> = expected.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(fields(&problem), expected, "{body} -> {problem}");
    }
    let (all, _) = titles(&app, &alice, &format!("project_id={project}")).await;
    assert!(all.is_empty(), "nothing was created: {all:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_returns_the_first_task_and_creates_no_other() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let body = json!({"project_id": project, "title": "Once"});
    let post = || call(&app, &alice, Method::POST, "/tasks").header("Idempotency-Key", "task-1").json(&body);

    // Act
    let first = post().send().await.unwrap();
    let retry = post().send().await.unwrap();

    // Assert
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"], first.headers()["location"]);
    let first: Value = first.json().await.unwrap();
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(id(&retry), id(&first));
    let (all, _) = titles(&app, &alice, &format!("project_id={project}")).await;
    assert_eq!(all, ["Once"], "one task was created");
    let next = create_task(&app, &alice, &project, json!({"title": "Next"})).await;
    assert_eq!(next["number"], 2, "no number was spent on the retry");
    app.cleanup().await;
}

#[tokio::test]
async fn a_task_is_found_by_id_and_by_key_and_anything_else_is_404() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Find me"})).await;

    // Act
    let by_id = call(&app, &alice, Method::GET, &format!("/tasks/{}", id(&task))).send().await.unwrap();
    let by_key = call(&app, &alice, Method::GET, "/tasks/by-key/ORDO-1").send().await.unwrap();

    // Assert
    assert_eq!(by_id.status(), StatusCode::OK);
    assert_eq!(by_key.status(), StatusCode::OK);
    assert_eq!(etag(&by_key), format!("\"{}\"", task["version"]));
    assert_eq!(by_key.json::<Value>().await.unwrap(), task);
    for path in [
        "/tasks/by-key/ORDO-2".to_owned(),
        "/tasks/by-key/ordo-1".to_owned(),
        "/tasks/by-key/NOPE-1".to_owned(),
        "/tasks/by-key/garbage".to_owned(),
        "/tasks/not-a-uuid".to_owned(),
        format!("/tasks/{}", uuid::Uuid::now_v7()),
    ] {
        let response = call(&app, &alice, Method::GET, &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn listing_with_filters_and_a_sort_pages_through_exactly_the_matching_tasks_in_order() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let other = create_project(&app, &alice, "OTHER").await;
    let tasks = [
        ("a", "todo", "high", Some("2030-03-01T00:00:00Z"), vec!["api"]),
        ("b", "in_progress", "low", Some("2030-01-01T00:00:00Z"), vec!["api", "ui"]),
        ("c", "done", "high", Some("2030-02-01T00:00:00Z"), vec!["api"]),
        ("d", "todo", "urgent", None, vec!["api"]),
        ("e", "in_progress", "none", Some("2030-02-15T00:00:00Z"), vec!["api"]),
        ("f", "todo", "medium", Some("2030-01-15T00:00:00Z"), vec!["ui"]),
        ("g", "in_review", "high", Some("2030-01-20T00:00:00Z"), vec!["api"]),
    ];
    for (title, status, priority, due_at, labels) in &tasks {
        create_task(
            &app,
            &alice,
            &project,
            json!({"title": title, "status": status, "priority": priority, "due_at": due_at, "labels": labels}),
        )
        .await;
    }
    create_task(&app, &alice, &other, json!({"title": "elsewhere", "labels": ["api"]})).await;
    let filters = format!("project_id={project}&status=todo,in_progress&label=api&limit=2");

    // Act
    let (by_due, pages) = titles(&app, &alice, &format!("{filters}&sort=due_at")).await;
    let (by_due_desc, _) = titles(&app, &alice, &format!("{filters}&sort=-due_at")).await;
    let (by_priority, _) = titles(&app, &alice, &format!("{filters}&sort=-priority")).await;
    let (newest_first, _) = titles(&app, &alice, &filters).await;
    let (oldest_first, _) = titles(&app, &alice, &format!("{filters}&sort=created_at")).await;
    let (high_or_urgent, _) =
        titles(&app, &alice, &format!("project_id={project}&priority=high,urgent&sort=created_at")).await;
    let (due_window, _) = titles(
        &app,
        &alice,
        &format!("project_id={project}&due_after=2030-01-10T00:00:00Z&due_before=2030-02-10T00:00:00Z&sort=due_at"),
    )
    .await;

    // Assert
    assert_eq!(by_due, ["b", "e", "a", "d"], "due first, no due date last");
    assert_eq!(pages, 2);
    assert_eq!(by_due_desc, ["a", "e", "b", "d"], "no due date last in both directions");
    assert_eq!(by_priority, ["d", "a", "b", "e"]);
    assert_eq!(newest_first, ["e", "d", "b", "a"]);
    assert_eq!(oldest_first, ["a", "b", "d", "e"]);
    assert_eq!(high_or_urgent, ["a", "c", "d", "g"]);
    assert_eq!(due_window, ["f", "g", "c"]);
    app.cleanup().await;
}

#[tokio::test]
async fn assignee_id_me_lists_the_callers_tasks_across_their_projects() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let bob = person(&app, "bob").await;
    let other = create_project(&app, &bob, "BOB").await;
    add_member(&app, &bob, &other, &alice, "member").await;
    add_member(&app, &alice, &project, &bob, "member").await;
    create_task(&app, &alice, &project, json!({"title": "mine here", "assignee_ids": [alice.id]})).await;
    create_task(&app, &alice, &project, json!({"title": "bob's", "assignee_ids": [bob.id]})).await;
    create_task(&app, &bob, &other, json!({"title": "mine there", "assignee_ids": [alice.id, bob.id]})).await;
    create_task(&app, &bob, &other, json!({"title": "nobody's"})).await;

    // Act
    let (mine, _) = titles(&app, &alice, "assignee_id=me&sort=created_at").await;
    let (bobs, _) = titles(&app, &alice, &format!("assignee_id={}&sort=created_at", bob.id)).await;
    let (mine_here, _) = titles(&app, &alice, &format!("assignee_id=me&project_id={project}")).await;

    // Assert
    assert_eq!(mine, ["mine here", "mine there"]);
    assert_eq!(bobs, ["bob's", "mine there"]);
    assert_eq!(mine_here, ["mine here"]);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_list_parameters_are_400_and_a_missing_project_id_is_422() {
    // Arrange
    let Board { app, alice, project } = board().await;
    create_task(&app, &alice, &project, json!({"title": "t"})).await;
    let bad = [
        "sort=title",
        "sort=-position",
        "status=doing",
        "status=todo,",
        "priority=p1",
        "limit=0",
        "limit=101",
        "assignee_id=bob",
        "due_before=yesterday",
        "parent_id=42",
        "cursor=not-a-cursor",
        "label=",
    ];

    for query in bad {
        // Act
        let response =
            call(&app, &alice, Method::GET, &format!("/tasks?project_id={project}&{query}")).send().await.unwrap();

        // Assert
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
    let response = call(&app, &alice, Method::GET, "/tasks?status=todo").send().await.unwrap();
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(fields(&problem).contains("project_id"), "{problem}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_patch_with_a_stale_if_match_returns_412_and_leaves_the_task_unchanged() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Before"})).await;
    let path = format!("/tasks/{}", id(&task));
    let first_etag = format!("\"{}\"", task["version"]);
    let changed =
        call(&app, &alice, Method::PATCH, &path).header("If-Match", &first_etag).json(&json!({"title": "After"}));
    let changed = changed.send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let second_etag = etag(&changed);
    assert_ne!(second_etag, first_etag);

    // Act
    let stale = call(&app, &alice, Method::PATCH, &path)
        .header("If-Match", &first_etag)
        .json(&json!({"title": "Lost update"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let now = call(&app, &alice, Method::GET, &path).send().await.unwrap();
    assert_eq!(etag(&now), second_etag);
    assert_eq!(now.json::<Value>().await.unwrap()["title"], "After");
    app.cleanup().await;
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_present_and_null_clears_a_field() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(
        &app,
        &alice,
        &project,
        json!({"title": "T", "description": "D", "due_at": "2030-01-01T00:00:00Z", "labels": ["x"], "priority": "low"}),
    )
    .await;
    let path = format!("/tasks/{}", id(&task));

    // Act
    let response = call(&app, &alice, Method::PATCH, &path)
        .json(&json!({"due_at": null, "status": "done", "labels": null}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let response_etag = etag(&response);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(response_etag, format!("\"{}\"", patched["version"]));
    assert_eq!(patched["due_at"], Value::Null);
    assert_eq!(patched["labels"], json!([]));
    assert_eq!(patched["status"], "done");
    assert!(patched["completed_at"].is_string(), "entering done sets completed_at: {patched}");
    assert_eq!(patched["title"], "T");
    assert_eq!(patched["description"], "D");
    assert_eq!(patched["priority"], "low");
    let reopened = call(&app, &alice, Method::PATCH, &path).json(&json!({"status": "todo"})).send().await.unwrap();
    assert_eq!(reopened.json::<Value>().await.unwrap()["completed_at"], Value::Null, "leaving done clears it");
    app.cleanup().await;
}

#[tokio::test]
async fn a_patch_naming_project_id_or_an_unknown_field_or_a_bad_value_is_422_naming_it() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let other = create_project(&app, &alice, "OTHER").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Stay"})).await;
    let path = format!("/tasks/{}", id(&task));
    let cases = [
        (json!({"project_id": other}), "project_id"),
        (json!({"title": "x", "project_id": null}), "project_id"),
        (json!({"titel": "x"}), "titel"),
        (json!({"title": null}), "title"),
        (json!({"status": null}), "status"),
        (json!({"priority": "p0"}), "priority"),
        (json!({"title": ""}), "title"),
        (json!({"estimate_minutes": 100_001}), "estimate_minutes"),
    ];

    for (body, field) in &cases {
        // Act
        let response = call(&app, &alice, Method::PATCH, &path).json(body).send().await.unwrap();

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&problem), BTreeSet::from([(*field).to_owned()]), "{body} -> {problem}");
    }
    let now: Value = call(&app, &alice, Method::GET, &path).send().await.unwrap().json().await.unwrap();
    assert_eq!(now, task, "nothing changed");
    app.cleanup().await;
}

#[tokio::test]
async fn moving_a_task_places_it_between_its_neighbours_in_board_order() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let a = create_task(&app, &alice, &project, json!({"title": "a"})).await;
    let b = create_task(&app, &alice, &project, json!({"title": "b"})).await;
    let c = create_task(&app, &alice, &project, json!({"title": "c"})).await;
    let board = format!("project_id={project}&sort=position");
    let (before, _) = titles(&app, &alice, &board).await;

    // Act
    let moved = call(&app, &alice, Method::POST, &format!("/tasks/{}/move", id(&c)))
        .header("If-Match", format!("\"{}\"", c["version"]))
        .json(&json!({"after_id": id(&a), "before_id": id(&b)}))
        .send()
        .await
        .unwrap();
    let to_front = call(&app, &alice, Method::POST, &format!("/tasks/{}/move", id(&b)))
        .json(&json!({"before_id": id(&a)}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(before, ["a", "b", "c"], "new tasks go to the end of the board");
    assert_eq!(moved.status(), StatusCode::OK);
    let moved_etag = etag(&moved);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved_etag, format!("\"{}\"", moved["version"]));
    assert_ne!(moved["position"], c["position"]);
    assert_eq!(to_front.status(), StatusCode::OK);
    let (after, _) = titles(&app, &alice, &board).await;
    assert_eq!(after, ["b", "a", "c"]);
    app.cleanup().await;
}

#[tokio::test]
async fn a_deleted_task_is_gone_and_a_stale_if_match_keeps_it() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Doomed"})).await;
    let path = format!("/tasks/{}", id(&task));

    // Act
    let stale = call(&app, &alice, Method::DELETE, &path).header("If-Match", "\"999\"").send().await.unwrap();
    let deleted = call(&app, &alice, Method::DELETE, &path)
        .header("If-Match", format!("\"{}\"", task["version"]))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/comments")),
        (Method::GET, "/tasks/by-key/ORDO-1".to_owned()),
    ] {
        let response = call(&app, &alice, method.clone(), &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn watching_and_unwatching_answer_204_however_often() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Watched"})).await;
    let path = format!("/tasks/{}/watch", id(&task));

    for method in [Method::POST, Method::POST, Method::DELETE, Method::DELETE] {
        // Act
        let response = call(&app, &alice, method.clone(), &path).send().await.unwrap();

        // Assert
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{method}");
    }
    let unknown = call(&app, &alice, Method::POST, &format!("/tasks/{}/watch", uuid::Uuid::now_v7())).send().await;
    assert_problem(unknown.unwrap(), StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_bulk_update_reports_each_task_as_updated_or_failed_with_the_status_a_patch_would_get() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let bob = person(&app, "bob").await;
    let bobs_project = create_project(&app, &bob, "BOB").await;
    let hidden = create_task(&app, &bob, &bobs_project, json!({"title": "hidden"})).await;
    let one = create_task(&app, &alice, &project, json!({"title": "one", "labels": ["x"]})).await;
    let two = create_task(&app, &alice, &project, json!({"title": "two"})).await;
    let missing = uuid::Uuid::now_v7().to_string();

    // Act
    let response = call(&app, &alice, Method::POST, "/tasks/bulk")
        .json(&json!({
            "ids": [id(&one), id(&hidden), id(&two), missing],
            "patch": {"status": "done", "priority": "urgent", "labels": null},
        }))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    let updated = result["updated"].as_array().unwrap();
    assert_eq!(updated.iter().map(id).collect::<Vec<_>>(), [id(&one), id(&two)], "{result}");
    for task in updated {
        assert_eq!(task["status"], "done");
        assert_eq!(task["priority"], "urgent");
        assert_eq!(task["labels"], json!([]));
        assert!(task["completed_at"].is_string());
    }
    let failed = result["failed"].as_array().unwrap();
    assert_eq!(failed.iter().map(id).collect::<Vec<_>>(), [id(&hidden), missing], "{result}");
    for failure in failed {
        assert_eq!(failure["status"], 404, "{failure}");
        assert!(failure["detail"].is_string());
    }
    let untouched: Value =
        call(&app, &bob, Method::GET, &format!("/tasks/{}", id(&hidden))).send().await.unwrap().json().await.unwrap();
    assert_eq!(untouched["status"], "todo");

    let bad = call(&app, &alice, Method::POST, "/tasks/bulk")
        .json(&json!({"ids": [id(&one)], "patch": {"title": "no"}}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), BTreeSet::from(["patch.title".to_owned()]));
    app.cleanup().await;
}

#[tokio::test]
async fn comments_are_written_by_members_edited_by_their_author_and_deleted_by_an_admin() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let bob = person(&app, "bob").await;
    let carol = person(&app, "carol").await;
    add_member(&app, &alice, &project, &bob, "member").await;
    add_member(&app, &alice, &project, &carol, "member").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Discuss"})).await;
    let comments = format!("/tasks/{}/comments", id(&task));

    // Act
    let created = call(&app, &bob, Method::POST, &comments)
        .header("Idempotency-Key", "c1")
        .json(&json!({"body": "First!"}))
        .send()
        .await
        .unwrap();
    let replayed = call(&app, &bob, Method::POST, &comments)
        .header("Idempotency-Key", "c1")
        .json(&json!({"body": "First!"}))
        .send()
        .await
        .unwrap();
    for text in ["second", "third"] {
        let response = call(&app, &carol, Method::POST, &comments).json(&json!({"body": text})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // Assert
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let created_etag = etag(&created);
    let comment: Value = created.json().await.unwrap();
    let comment_path = format!("/comments/{}", id(&comment));
    assert_eq!(location, format!("/api/v1{comment_path}"));
    assert_eq!(created_etag, format!("\"{}\"", comment["version"]));
    assert_eq!(comment["task_id"], id(&task).as_str());
    assert_eq!(comment["author_id"], bob.id.as_str());
    assert_eq!(comment["body"], "First!");
    assert_eq!(id(&replayed.json().await.unwrap()), id(&comment));

    let page: Value =
        call(&app, &alice, Method::GET, &format!("{comments}?limit=2")).send().await.unwrap().json().await.unwrap();
    let bodies: Vec<&str> = page["items"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["First!", "second"], "oldest first, one comment per create");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = call(&app, &alice, Method::GET, &format!("{comments}?limit=2&cursor={cursor}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["body"], "third");
    assert_eq!(rest["next_cursor"], Value::Null);

    let stale = call(&app, &bob, Method::PATCH, &comment_path)
        .header("If-Match", "\"99\"")
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let edited = call(&app, &bob, Method::PATCH, &comment_path)
        .header("If-Match", &created_etag)
        .json(&json!({"body": "Edited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
    assert_ne!(etag(&edited), created_etag);
    assert_eq!(edited.json::<Value>().await.unwrap()["body"], "Edited");
    for other in [&alice, &carol] {
        let response =
            call(&app, other, Method::PATCH, &comment_path).json(&json!({"body": "Not yours"})).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
    let by_carol = call(&app, &carol, Method::DELETE, &comment_path).send().await.unwrap();
    assert_problem(by_carol, StatusCode::FORBIDDEN).await;
    let by_owner = call(&app, &alice, Method::DELETE, &comment_path).send().await.unwrap();
    assert_eq!(by_owner.status(), StatusCode::NO_CONTENT);
    let page: Value = call(&app, &alice, Method::GET, &comments).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let empty = call(&app, &bob, Method::POST, &comments).json(&json!({"body": ""})).send().await.unwrap();
    assert_eq!(
        fields(&assert_problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await),
        BTreeSet::from(["body".to_owned()])
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_viewer_reads_and_watches_but_gets_403_on_every_write() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let viewer = person(&app, "vera").await;
    add_member(&app, &alice, &project, &viewer, "viewer").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Look, don't touch"})).await;
    let neighbour = create_task(&app, &alice, &project, json!({"title": "Neighbour"})).await;
    let task_path = format!("/tasks/{}", id(&task));

    // Act
    let read = call(&app, &viewer, Method::GET, &task_path).send().await.unwrap();
    let listed = titles(&app, &viewer, &format!("project_id={project}")).await.0;
    let watched = call(&app, &viewer, Method::POST, &format!("{task_path}/watch")).send().await.unwrap();
    let writes = [
        call(&app, &viewer, Method::POST, "/tasks").json(&json!({"project_id": project, "title": "x"})),
        call(&app, &viewer, Method::PATCH, &task_path).json(&json!({"title": "x"})),
        call(&app, &viewer, Method::POST, &format!("{task_path}/move")).json(&json!({"after_id": id(&neighbour)})),
        call(&app, &viewer, Method::DELETE, &task_path),
        call(&app, &viewer, Method::POST, &format!("{task_path}/comments")).json(&json!({"body": "x"})),
    ];

    // Assert
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(listed, ["Neighbour", "Look, don't touch"]);
    assert_eq!(watched.status(), StatusCode::NO_CONTENT);
    for write in writes {
        assert_problem(write.send().await.unwrap(), StatusCode::FORBIDDEN).await;
    }
    let bulk: Value = call(&app, &viewer, Method::POST, "/tasks/bulk")
        .json(&json!({"ids": [id(&task)], "patch": {"status": "done"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bulk["updated"], json!([]));
    assert_eq!(bulk["failed"][0]["status"], 403, "{bulk}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_non_member_gets_404_on_the_task_and_its_comments() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let mallory = person(&app, "mallory").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Secret"})).await;
    let task_path = format!("/tasks/{}", id(&task));
    let comment: Value = call(&app, &alice, Method::POST, &format!("{task_path}/comments"))
        .json(&json!({"body": "psst"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let comment_path = format!("/comments/{}", id(&comment));
    let requests = [
        call(&app, &mallory, Method::GET, &task_path),
        call(&app, &mallory, Method::GET, "/tasks/by-key/ORDO-1"),
        call(&app, &mallory, Method::PATCH, &task_path).json(&json!({"title": "mine"})),
        call(&app, &mallory, Method::DELETE, &task_path),
        call(&app, &mallory, Method::POST, &format!("{task_path}/watch")),
        call(&app, &mallory, Method::GET, &format!("{task_path}/comments")),
        call(&app, &mallory, Method::POST, &format!("{task_path}/comments")).json(&json!({"body": "hi"})),
        call(&app, &mallory, Method::PATCH, &comment_path).json(&json!({"body": "hi"})),
        call(&app, &mallory, Method::DELETE, &comment_path),
        call(&app, &mallory, Method::GET, &format!("/tasks?project_id={project}")),
    ];

    for request in requests {
        // Act
        let response = request.send().await.unwrap();

        // Assert
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
    let (mine, _) = titles(&app, &mallory, "assignee_id=me").await;
    assert!(mine.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn in_an_archived_project_every_task_write_is_409_and_reads_still_work() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Frozen"})).await;
    let neighbour = create_task(&app, &alice, &project, json!({"title": "Neighbour"})).await;
    let task_path = format!("/tasks/{}", id(&task));
    let comment: Value = call(&app, &alice, Method::POST, &format!("{task_path}/comments"))
        .json(&json!({"body": "before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let archived = call(&app, &alice, Method::POST, &format!("/projects/{project}/archive")).send().await.unwrap();
    assert_eq!(archived.status(), StatusCode::OK);
    // The task service drops its cached answer when project.archived reaches it; probed with a
    // create that is invalid anyway (422 while the old answer lasts), so nothing is written.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let probe = call(&app, &alice, Method::POST, "/tasks")
            .json(&json!({"project_id": project, "title": ""}))
            .send()
            .await
            .unwrap();
        if probe.status() == StatusCode::CONFLICT {
            break;
        }
        assert_eq!(probe.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(tokio::time::Instant::now() < deadline, "the archival did not reach the task service");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let writes = [
        call(&app, &alice, Method::POST, "/tasks").json(&json!({"project_id": project, "title": "x"})),
        call(&app, &alice, Method::PATCH, &task_path).json(&json!({"title": "x"})),
        call(&app, &alice, Method::POST, &format!("{task_path}/move")).json(&json!({"after_id": id(&neighbour)})),
        call(&app, &alice, Method::DELETE, &task_path),
        call(&app, &alice, Method::POST, &format!("{task_path}/comments")).json(&json!({"body": "x"})),
        call(&app, &alice, Method::PATCH, &format!("/comments/{}", id(&comment))).json(&json!({"body": "x"})),
        call(&app, &alice, Method::DELETE, &format!("/comments/{}", id(&comment))),
    ];

    for write in writes {
        // Act
        let response = write.send().await.unwrap();

        // Assert
        assert_problem(response, StatusCode::CONFLICT).await;
    }
    let read = call(&app, &alice, Method::GET, &task_path).send().await.unwrap();
    assert_eq!(read.json::<Value>().await.unwrap(), task);
    app.cleanup().await;
}

/// Sends a request by hand, so the body can be declared but never sent; returns the status and the
/// problem document of the response.
async fn raw_request(app: &TestApp, head: &str) -> (u16, Value) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                    })
                    .map(|v| v.parse::<usize>().unwrap())
                    .unwrap();
                if body.len() >= length || n == 0 {
                    return text;
                }
            }
            assert!(n > 0, "connection closed early: {text}");
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(10), read).await.expect("a response without the body");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{head}");
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn an_attachment_declared_over_the_limit_is_413_before_its_body_is_read() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Big file"})).await;
    let head = format!(
        "POST /api/v1/tasks/{}/attachments HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        id(&task),
        alice.token,
        26_214_400 + 1024 * 1024,
    );

    // Act: the body is never sent, so only an answer given before reading it can arrive.
    let (status, problem) = raw_request(&app, &head).await;

    // Assert
    assert_eq!(status, 413);
    assert_eq!(problem["type"], "https://ordo.dev/problems/content-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("26214400"), "{problem}");
    app.cleanup().await;
}

#[tokio::test]
async fn the_attachment_limit_is_configurable_and_an_upload_that_is_not_multipart_is_415() {
    // Arrange
    let options = Options { gateway_args: vec!["--max-attachment-bytes=1000".to_owned()], ..Options::default() };
    let app = spawn_app_with(options).await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "ORDO").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Small files"})).await;
    let path = format!("/tasks/{}/attachments", id(&task));
    let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n".to_vec();
    form.extend(std::iter::repeat_n(b'a', 200_000));
    form.extend_from_slice(b"\r\n--XyZ--\r\n");

    // Act
    let too_large = call(&app, &alice, Method::POST, &path)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(form)
        .send()
        .await
        .unwrap();
    let json = call(&app, &alice, Method::POST, &path).json(&json!({"file": "a"})).send().await.unwrap();
    let no_boundary =
        call(&app, &alice, Method::POST, &path).header("Content-Type", "multipart/form-data").body("x").send().await;

    // Assert
    let problem = assert_problem(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(problem["detail"].as_str().unwrap().contains("1000"), "{problem}");
    assert_problem(json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_problem(no_boundary.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    app.cleanup().await;
}

#[tokio::test]
async fn when_the_task_service_stops_task_routes_answer_503_and_readyz_names_it() {
    // Arrange
    let options = Options { backend_timeout_ms: 500, ..Options::default() };
    let mut app = spawn_app_with(options).await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "ORDO").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Still here"})).await;

    // Act
    app.stop_task().await;
    let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
    let get = call(&app, &alice, Method::GET, &format!("/tasks/{}", id(&task))).send().await.unwrap();
    let project_read = call(&app, &alice, Method::GET, &format!("/projects/{project}")).send().await.unwrap();

    // Assert
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(readyz.json::<Value>().await.unwrap()["failing"], json!(["task"]));
    assert_eq!(get.headers()["retry-after"], "1");
    let problem = assert_problem(get, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!problem.to_string().contains("127.0.0.1"), "no internal address in {problem}");
    assert_eq!(project_read.status(), StatusCode::OK, "the other areas still answer");
    app.cleanup().await;
}

/// What the attachment round trips need besides the rest of the stack.
const NEEDS_ATTACHMENTS: &str = "needs the local S3-compatible server (ORDO_TEST_S3_ENDPOINT)";

/// A `multipart/form-data` body with one part `file` holding `bytes`, and its content type.
fn upload_form(filename: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "ordo-test-boundary-7d1c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nskipped\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /tasks/{id}/attachments` with one file.
async fn upload(app: &TestApp, who: &Person, task: &str, filename: &str, bytes: &[u8]) -> reqwest::Response {
    let (content_type, body) = upload_form(filename, "text/plain", bytes);
    call(app, who, Method::POST, &format!("/tasks/{task}/attachments"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_attachment_round_trips_through_upload_list_download_and_delete() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let bob = person(&app, "bob").await;
    add_member(&app, &alice, &project, &bob, "member").await;
    let task = create_task(&app, &alice, &project, json!({"title": "With a file"})).await;
    let bytes: Vec<u8> = (0..300_000_u32).map(|i| (i % 251) as u8).collect();

    // Act
    let uploaded = upload(&app, &bob, &id(&task), "résumé v1.txt", &bytes).await;

    // Assert
    assert_eq!(uploaded.status(), StatusCode::CREATED, "{NEEDS_ATTACHMENTS}");
    let location = uploaded.headers()["location"].to_str().unwrap().to_owned();
    let attachment: Value = uploaded.json().await.unwrap();
    let attachment_path = format!("/attachments/{}", id(&attachment));
    assert_eq!(location, format!("/api/v1{attachment_path}"));
    assert_eq!(attachment["task_id"], id(&task).as_str());
    assert_eq!(attachment["filename"], "résumé v1.txt");
    assert_eq!(attachment["content_type"], "text/plain");
    assert_eq!(attachment["size_bytes"], bytes.len());
    assert_eq!(attachment["uploaded_by"], bob.id.as_str());
    use sha2::Digest as _;
    assert_eq!(attachment["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));

    let listed: Value = call(&app, &alice, Method::GET, &format!("/tasks/{}/attachments", id(&task)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([attachment]));
    let fetched: Value = call(&app, &alice, Method::GET, &attachment_path).send().await.unwrap().json().await.unwrap();
    assert_eq!(fetched, attachment);

    let content = call(&app, &alice, Method::GET, &format!("{attachment_path}/content")).send().await.unwrap();
    assert_eq!(content.status(), StatusCode::OK);
    assert_eq!(content.headers()["content-type"], "text/plain");
    assert_eq!(content.headers()["content-length"], bytes.len().to_string().as_str());
    assert_eq!(content.headers()["content-disposition"], "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20v1.txt");
    assert_eq!(content.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let carol = person(&app, "carol").await;
    add_member(&app, &alice, &project, &carol, "member").await;
    let by_other_member = call(&app, &carol, Method::DELETE, &attachment_path).send().await.unwrap();
    assert_problem(by_other_member, StatusCode::FORBIDDEN).await;
    let by_uploader = call(&app, &bob, Method::DELETE, &attachment_path).send().await.unwrap();
    assert_eq!(by_uploader.status(), StatusCode::NO_CONTENT);
    for path in [attachment_path.clone(), format!("{attachment_path}/content")] {
        assert_problem(call(&app, &alice, Method::GET, &path).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn an_upload_streaming_past_the_limit_without_a_content_length_is_cut_off_with_413_and_stores_nothing() {
    // Arrange
    let options = Options { gateway_args: vec!["--max-attachment-bytes=1000".to_owned()], ..Options::default() };
    let app = spawn_app_with(options).await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "ORDO").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Small files"})).await;
    let (content_type, body) = upload_form("big.bin", "application/octet-stream", &[b'a'; 5000]);
    let mut request = format!(
        "POST /api/v1/tasks/{}/attachments HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        id(&task),
        alice.token,
        body.len(),
    );
    request.push_str(&String::from_utf8(body).unwrap());
    request.push_str("\r\n0\r\n\r\n");

    // Act
    let (status, problem) = raw_request(&app, &request).await;

    // Assert
    assert_eq!(status, 413, "{NEEDS_ATTACHMENTS}: {problem}");
    let listed: Value = call(&app, &alice, Method::GET, &format!("/tasks/{}/attachments", id(&task)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was stored");
    app.cleanup().await;
}

#[tokio::test]
async fn a_30_mib_upload_against_the_25_mib_limit_is_413_and_leaves_no_object_behind() {
    // Arrange: the default limit (25 MiB), and a body that declares no length, so only counting the
    // streamed bytes can stop it: by then several 8 MiB parts are in S3.
    let Board { app, alice, project } = board().await;
    let task = create_task(&app, &alice, &project, json!({"title": "Holiday video"})).await;
    let (content_type, body) = upload_form("video.bin", "application/octet-stream", &vec![b'v'; 30 * 1024 * 1024]);
    let head = format!(
        "POST /api/v1/tasks/{}/attachments HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        id(&task),
        alice.token,
    );
    let stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();

    // Act: send in 64 KiB chunks while reading the answer (which may come before the body ends).
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            writer.write_all(chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    let answer = tokio::time::timeout(Duration::from_secs(60), async {
        while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
            let n = reader.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the gateway closed without answering");
            received.extend_from_slice(&buffer[..n]);
        }
    });
    answer.await.expect("an answer within 60 s");
    // The gateway may stop reading once it has answered: the rest of the body may not get through.
    let _ = sender.await;

    // Assert: 413, no attachment, and nothing in the bucket: no object, no open multipart upload.
    let status_line = String::from_utf8_lossy(&received).lines().next().unwrap_or_default().to_owned();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    let listed: Value = call(&app, &alice, Method::GET, &format!("/tasks/{}/attachments", id(&task)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was recorded");
    let started = Instant::now();
    loop {
        let (objects, uploads) = app.stored_objects().await;
        if objects.is_empty() && uploads == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "left behind: {objects:?}, {uploads} open uploads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_non_member_gets_404_on_a_tasks_attachments_and_a_viewer_403_on_uploading() {
    // Arrange
    let Board { app, alice, project } = board().await;
    let mallory = person(&app, "mallory").await;
    let viewer = person(&app, "vera").await;
    add_member(&app, &alice, &project, &viewer, "viewer").await;
    let task = create_task(&app, &alice, &project, json!({"title": "Private file"})).await;
    let uploaded = upload(&app, &alice, &id(&task), "a.txt", b"secret").await;
    assert_eq!(uploaded.status(), StatusCode::CREATED, "{NEEDS_ATTACHMENTS}");
    let attachment_path = format!("/attachments/{}", id(&uploaded.json().await.unwrap()));

    // Act
    let by_viewer = upload(&app, &viewer, &id(&task), "b.txt", b"x").await;
    let by_stranger = upload(&app, &mallory, &id(&task), "b.txt", b"x").await;
    let reads = [
        call(&app, &mallory, Method::GET, &format!("/tasks/{}/attachments", id(&task))),
        call(&app, &mallory, Method::GET, &attachment_path),
        call(&app, &mallory, Method::GET, &format!("{attachment_path}/content")),
        call(&app, &mallory, Method::DELETE, &attachment_path),
    ];

    // Assert
    assert_problem(by_viewer, StatusCode::FORBIDDEN).await;
    assert_problem(by_stranger, StatusCode::NOT_FOUND).await;
    for read in reads {
        assert_problem(read.send().await.unwrap(), StatusCode::NOT_FOUND).await;
    }
    app.cleanup().await;
}
