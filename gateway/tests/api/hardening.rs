//! What the gateway refuses or keeps on its own, whatever the services do: `If-Match` lists and weak
//! tags (RFC 9110 §13.1.1), bounded arrays and strings read no further than their bound, bodies that
//! are not JSON enough (deep nesting, NUL bytes, invalid UTF-8), and an idempotent create whose client
//! went away mid-request.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// A signed-in user's access token, and a project of theirs with one task.
struct Board {
    token: String,
    project: String,
    task: Value,
}

async fn board(app: &TestApp) -> Board {
    let (_, tokens) = app.user("alice@example.com", "Alice").await;
    let token = tokens.access;
    let project: Value = app
        .client
        .post(app.url("/api/v1/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "Hardening", "key": "HARD"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().unwrap().to_owned();
    let task = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .json(&json!({"project_id": project, "title": "First"}))
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), StatusCode::CREATED);
    Board { token, project, task: task.json().await.unwrap() }
}

fn call(app: &TestApp, board: &Board, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(&board.token)
}

fn task_path(board: &Board) -> String {
    format!("/tasks/{}", board.task["id"].as_str().unwrap())
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().map_or_else(Vec::new, |errors| {
        errors.iter().map(|error| error["field"].as_str().unwrap().to_owned()).collect()
    })
}

#[tokio::test]
async fn a_weak_if_match_is_412_not_400_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let version = board.task["version"].as_i64().unwrap();

    // Act
    let response = call(&app, &board, Method::PATCH, &task_path(&board))
        .header("If-Match", format!("W/\"{version}\""))
        .json(&json!({"title": "Changed"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::PRECONDITION_FAILED).await;
    let task: Value = call(&app, &board, Method::GET, &task_path(&board)).send().await.unwrap().json().await.unwrap();
    assert_eq!(task["title"], "First");
    app.cleanup().await;
}

#[tokio::test]
async fn an_if_match_list_holding_the_current_version_writes() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let version = board.task["version"].as_i64().unwrap();

    // Act
    let response = call(&app, &board, Method::PATCH, &task_path(&board))
        .header("If-Match", format!("W/\"{version}\", \"{}\", \"{version}\"", version + 7))
        .json(&json!({"title": "Changed"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let task: Value = response.json().await.unwrap();
    assert_eq!(task["title"], "Changed");
    assert_eq!(task["version"].as_i64().unwrap(), version + 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_if_match_list_without_the_current_version_is_412_for_writes_and_deletes() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let version = board.task["version"].as_i64().unwrap();
    let stale = format!("\"{}\", \"{}\", \"abc\"", version + 1, version + 2);

    // Act
    let patch = call(&app, &board, Method::PATCH, &task_path(&board))
        .header("If-Match", &stale)
        .json(&json!({"title": "Changed"}))
        .send()
        .await
        .unwrap();
    let delete =
        call(&app, &board, Method::DELETE, &task_path(&board)).header("If-Match", &stale).send().await.unwrap();

    // Assert
    assert_problem(patch, StatusCode::PRECONDITION_FAILED).await;
    assert_problem(delete, StatusCode::PRECONDITION_FAILED).await;
    let task = call(&app, &board, Method::GET, &task_path(&board)).send().await.unwrap();
    assert_eq!(task.status(), StatusCode::OK);
    app.cleanup().await;
}

#[tokio::test]
async fn an_if_match_that_is_not_an_entity_tag_list_is_still_400() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;

    // Act
    let response = call(&app, &board, Method::PATCH, &task_path(&board))
        .header("If-Match", "1")
        .json(&json!({"title": "Changed"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_problem(response, StatusCode::BAD_REQUEST).await;
    app.cleanup().await;
}

#[tokio::test]
async fn arrays_and_labels_just_over_their_bound_are_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let user = "0190b6a4-7c1e-7000-8000-000000000001";
    let cases = [
        (
            Method::POST,
            "/tasks".to_owned(),
            json!({"project_id": board.project, "title": "t", "labels": vec!["l"; 21]}),
            "labels",
        ),
        (
            Method::POST,
            "/tasks".to_owned(),
            json!({"project_id": board.project, "title": "t", "labels": ["x".repeat(51)]}),
            "labels[0]",
        ),
        (
            Method::POST,
            "/tasks".to_owned(),
            json!({"project_id": board.project, "title": "t", "assignee_ids": vec![user; 21]}),
            "assignee_ids",
        ),
        (Method::PATCH, task_path(&board), json!({"labels": vec!["l"; 21]}), "labels"),
        (Method::PATCH, task_path(&board), json!({"assignee_ids": vec![user; 21]}), "assignee_ids"),
        (Method::POST, "/tasks/bulk".to_owned(), json!({"ids": vec![user; 101], "patch": {"status": "done"}}), "ids"),
        (
            Method::POST,
            "/tasks/bulk".to_owned(),
            json!({"ids": [user], "patch": {"labels": vec!["l"; 21]}}),
            "patch.labels",
        ),
        (
            Method::POST,
            "/tasks/bulk".to_owned(),
            json!({"ids": [user], "patch": {"assignee_ids": vec![user; 21]}}),
            "patch.assignee_ids",
        ),
    ];

    for (method, path, body, field) in cases {
        // Act
        let response = call(&app, &board, method.clone(), &path).json(&body).send().await.unwrap();

        // Assert
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&problem), [field], "{method} {path}: {problem}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_body_of_150000_labels_is_422_naming_labels() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let body = json!({"project_id": board.project, "title": "Flood", "labels": vec!["a"; 150_000]});

    // Act
    let response = call(&app, &board, Method::POST, "/tasks").json(&body).send().await.unwrap();

    // Assert
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), ["labels"]);
    app.cleanup().await;
}

#[tokio::test]
async fn deep_nesting_nul_bytes_and_invalid_utf8_are_client_errors_not_500() {
    // Arrange
    let app = spawn_app().await;
    let board = board(&app).await;
    let deep = |field: &str| format!(r#"{{"{field}": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let raw = |method: Method, path: &str, body: Vec<u8>| {
        call(&app, &board, method, path).header("content-type", "application/json").body(body)
    };
    let cases = [
        ("deep title", raw(Method::PATCH, &task_path(&board), deep("title").into_bytes())),
        ("deep project_id", raw(Method::PATCH, &task_path(&board), deep("project_id").into_bytes())),
        ("deep unknown", raw(Method::POST, "/projects", deep("nope").into_bytes())),
        ("raw NUL", raw(Method::PATCH, &task_path(&board), b"{\"title\": \"a\x00b\"}".to_vec())),
        ("invalid UTF-8", raw(Method::PATCH, &task_path(&board), b"{\"title\": \"a\xff\xfeb\"}".to_vec())),
        ("escaped NUL", raw(Method::PATCH, &task_path(&board), br#"{"title": "a\u0000b"}"#.to_vec())),
        ("lone surrogate", raw(Method::PATCH, &task_path(&board), br#"{"title": "a\ud800b"}"#.to_vec())),
    ];

    for (name, request) in cases {
        // Act
        let response = request.send().await.unwrap();

        // Assert
        let status = response.status();
        assert!(!status.is_server_error(), "{name}: {status}");
        if name != "escaped NUL" {
            assert!(matches!(status.as_u16(), 400 | 422), "{name}: {status}");
        }
    }
    app.cleanup().await;
}

/// Sends a whole `POST /tasks` with an `Idempotency-Key` on a raw connection and closes it after
/// `after`, before any answer: the client went away mid-request.
async fn create_and_hang_up(app: &TestApp, board: &Board, key: &str, body: &Value, after: Duration) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        board.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(after).await;
    drop(stream);
}

#[tokio::test]
async fn a_create_whose_client_hung_up_is_replayed_to_the_retry_and_made_once() {
    // Arrange: hang-ups at several moments, so some fall while the create runs in the task service.
    let app = spawn_app().await;
    let board = board(&app).await;
    let mut replayed = 0;
    for (attempt, after_ms) in [0, 2, 5, 10, 20, 40, 80].into_iter().enumerate() {
        let key = format!("hang-up-{attempt}");
        let title = format!("Made once {attempt}");
        let body = json!({"project_id": board.project, "title": title});
        create_and_hang_up(&app, &board, &key, &body, Duration::from_millis(after_ms)).await;

        // Act: retry with the same key until the first is no longer in flight.
        let mut retry = None;
        for _ in 0..100 {
            let response = call(&app, &board, Method::POST, "/tasks")
                .header("idempotency-key", &key)
                .json(&body)
                .send()
                .await
                .unwrap();
            if response.status() != StatusCode::CONFLICT {
                retry = Some(response);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Assert: one task, whichever request made it.
        let retry = retry.expect("the first request settled");
        assert_eq!(retry.status(), StatusCode::CREATED, "hang-up after {after_ms} ms");
        replayed += usize::from(retry.headers().get("idempotent-replayed").is_some());
        let list: Value = call(&app, &board, Method::GET, &format!("/tasks?project_id={}", board.project))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let made = list["items"].as_array().unwrap().iter().filter(|task| task["title"] == title.as_str()).count();
        assert_eq!(made, 1, "hang-up after {after_ms} ms: {list}");
    }
    assert!(replayed > 0, "no hang-up fell while the create ran; the test proved nothing");
    app.cleanup().await;
}
