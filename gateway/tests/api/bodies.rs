//! Hostile request bodies against the whole stack: bodies at and one byte past the 1 MiB limit,
//! nesting 10,000 deep, invalid UTF-8, control characters, numbers no field holds, repeated keys,
//! arrays at their bound, and Unicode that must come back byte for byte (or be refused with `422`)
//! in every text field a client writes, with lengths counted in characters.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{PASSWORD, TestApp, assert_problem, call, spawn_app};

/// API.md: JSON bodies up to 1 MiB.
const LIMIT: usize = 1024 * 1024;

/// A 4-byte UTF-8 character (U+1F600), to tell characters from bytes.
const WIDE: &str = "\u{1F600}";

/// Text no field may change: bidi marks (RLM, RLO, LRI/PDI), a combining accent next to its
/// precomposed twin (no normalisation), 4-byte characters up to the last code point, zero-width
/// joiner sequences, a zero-width space and a byte order mark inside.
const EDGES: &str = "\u{200F}\u{202E}txt.exe\u{202C} \u{2067}abc\u{2069} e\u{301}=\u{E9} \u{1F600}\u{10FFFF}\u{1F469}\u{200D}\u{1F4BB} \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200B}\u{FEFF}\u{1F44D}\u{1F3FD}";

/// A signed-in user with a project and one task in it.
struct Board {
    token: String,
    user: String,
    project: String,
    task: String,
}

async fn board(app: &TestApp) -> Board {
    let (user, tokens) = app.user("alice@example.com", "Alice").await;
    let token = tokens.access;
    let project =
        json_of(send(app, &token, Method::POST, "/projects", &json!({"name": "Bodies", "key": "BODY"})).await, 201)
            .await;
    let project = project["id"].as_str().unwrap().to_owned();
    let task = json_of(
        send(app, &token, Method::POST, "/tasks", &json!({"project_id": project, "title": "First"})).await,
        201,
    )
    .await;
    let task = task["id"].as_str().unwrap().to_owned();
    Board { token, user, project, task }
}

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: &Value) -> reqwest::Response {
    call(app, token, method, path).json(body).send().await.unwrap()
}

/// Sends `body` as is, declared as JSON.
async fn send_raw(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: impl Into<Vec<u8>>,
) -> reqwest::Response {
    call(app, token, method, path).header("content-type", "application/json").body(body.into()).send().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    json_of(call(app, token, Method::GET, path).send().await.unwrap(), 200).await
}

/// Asserts the status and returns the JSON body.
async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual.as_u16(), status, "{body}");
    body
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().map_or_else(Vec::new, |errors| {
        errors.iter().map(|error| error["field"].as_str().unwrap().to_owned()).collect()
    })
}

/// Asserts a `422` problem naming `field`.
async fn assert_refused(response: reqwest::Response, field: &str, case: &str) {
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&problem), [field], "{case}: {problem}");
}

/// `body` followed by spaces (insignificant in JSON) up to exactly `size` bytes.
fn padded(body: &Value, size: usize) -> Vec<u8> {
    let mut bytes = body.to_string().into_bytes();
    assert!(bytes.len() <= size);
    bytes.resize(size, b' ');
    bytes
}

/// Sends `body` in 64 KiB chunks without a `Content-Length` on a raw connection; returns the
/// status and the whole response, lower-cased.
async fn send_chunked(app: &TestApp, token: &str, path: &str, body: &[u8]) -> (u16, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1{path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and stop reading once the limit is passed.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).to_lowercase();
    let status = response.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn a_json_body_one_byte_over_1_mib_is_413_and_one_of_exactly_1_mib_is_served() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let create = json!({"project_id": b.project, "title": "At the limit"});
    let task_path = format!("/tasks/{}", b.task);

    // Act
    let created = send_raw(&app, &b.token, Method::POST, "/tasks", padded(&create, LIMIT)).await;
    let too_big = send_raw(&app, &b.token, Method::POST, "/tasks", padded(&create, LIMIT + 1)).await;
    let patched =
        send_raw(&app, &b.token, Method::PATCH, &task_path, padded(&json!({"title": "Patched"}), LIMIT)).await;
    let patch_too_big =
        send_raw(&app, &b.token, Method::PATCH, &task_path, padded(&json!({"title": "Too big"}), LIMIT + 1)).await;
    let register = json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"});
    let register_too_big = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(padded(&register, LIMIT + 1))
        .send()
        .await
        .unwrap();
    let (chunked_at_limit, _) = send_chunked(&app, &b.token, "/tasks", &padded(&create, LIMIT)).await;
    let (chunked_over, chunked_response) = send_chunked(&app, &b.token, "/tasks", &padded(&create, LIMIT + 1)).await;

    // Assert
    assert_eq!(json_of(created, 201).await["title"], "At the limit");
    assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(json_of(patched, 200).await["title"], "Patched");
    assert_problem(patch_too_big, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_problem(register_too_big, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(chunked_at_limit, 201);
    assert_eq!(chunked_over, 413, "{chunked_response}");
    assert!(chunked_response.contains("content-type: application/problem+json"), "{chunked_response}");
    assert_eq!(get(&app, &b.token, &task_path).await["title"], "Patched");
    let list = get(&app, &b.token, &format!("/tasks?project_id={}", b.project)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "the first task and the two at the limit: {list}");
    app.cleanup().await;
}

#[tokio::test]
async fn nesting_10000_deep_as_the_body_or_a_field_is_a_client_error_and_the_gateway_answers_afterwards() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let task_path = format!("/tasks/{}", b.task);
    let comments = format!("{task_path}/comments");
    let project = b.project.as_str();
    let cases: Vec<(&str, Method, &str, String)> = vec![
        ("arrays as the body of a create", Method::POST, "/tasks", arrays.clone()),
        ("objects as the body of a create", Method::POST, "/tasks", objects.clone()),
        ("objects as the body of a patch", Method::PATCH, task_path.as_str(), objects.clone()),
        ("arrays as the body of a bulk update", Method::POST, "/tasks/bulk", arrays.clone()),
        ("objects as a title", Method::POST, "/tasks", format!(r#"{{"project_id": "{project}", "title": {objects}}}"#)),
        ("arrays as a description", Method::PATCH, task_path.as_str(), format!(r#"{{"description": {arrays}}}"#)),
        ("objects as a label", Method::PATCH, task_path.as_str(), format!(r#"{{"labels": ["a", {objects}]}}"#)),
        (
            "objects as a project_id that is skipped",
            Method::PATCH,
            task_path.as_str(),
            format!(r#"{{"project_id": {objects}}}"#),
        ),
        ("arrays as a bulk id", Method::POST, "/tasks/bulk", format!(r#"{{"ids": [{arrays}], "patch": {{}}}}"#)),
        ("objects as a comment", Method::POST, comments.as_str(), format!(r#"{{"body": {objects}}}"#)),
        ("arrays as a display name", Method::PATCH, "/users/me", format!(r#"{{"display_name": {arrays}}}"#)),
        (
            "objects as a project description",
            Method::POST,
            "/projects",
            format!(r#"{{"name": "n", "key": "NEST", "description": {objects}}}"#),
        ),
        (
            "a megabyte of unclosed brackets",
            Method::PATCH,
            task_path.as_str(),
            format!(r#"{{"project_id": {}"#, "[".repeat(LIMIT - 100)),
        ),
    ];

    for (case, method, path, body) in cases {
        // Act
        let response = send_raw(&app, &b.token, method, path, body).await;

        // Assert
        let status = response.status();
        assert!(matches!(status.as_u16(), 400 | 422), "{case}: {status}");
        assert_problem(response, status).await;
    }
    for body in [arrays, objects] {
        let anonymous = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = anonymous.status();
        assert!(matches!(status.as_u16(), 400 | 422), "register: {status}");
        assert_problem(anonymous, status).await;
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(get(&app, &b.token, &task_path).await["title"], "First");
    app.cleanup().await;
}

#[tokio::test]
async fn invalid_utf8_anywhere_in_a_json_body_is_400_on_every_json_route() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let task_path = format!("/tasks/{}", b.task);
    let bad: [(&str, &[u8]); 6] = [
        ("a lone continuation byte", b"\x80"),
        ("an overlong slash", b"\xc0\xaf"),
        ("an encoded surrogate", b"\xed\xa0\x80"),
        ("past U+10FFFF", b"\xf4\x90\x80\x80"),
        ("a truncated 4-byte character", b"\xf0\x9f\x98"),
        ("Latin-1", b"caf\xe9"),
    ];
    let labels = format!("{{\"project_id\": \"{}\", \"labels\": [\"", b.project);
    // (method, path, the body before the bad bytes, after them)
    let targets = [
        (Method::PATCH, task_path.clone(), "{\"title\": \"a", "\"}"),
        (Method::PATCH, task_path.clone(), "{\"descr", "iption\": \"a\"}"),
        (Method::POST, "/tasks".to_owned(), labels.as_str(), "\"], \"title\": \"t\"}"),
        (Method::POST, format!("{task_path}/comments"), "{\"body\": \"", "\"}"),
        (Method::POST, "/projects".to_owned(), "{\"key\": \"UTF\", \"name\": \"", "\"}"),
        (Method::PATCH, "/users/me".to_owned(), "{\"display_name\": \"", "\"}"),
        (
            Method::POST,
            "/auth/register".to_owned(),
            "{\"email\": \"c@example.com\", \"password\": \"",
            "aaaaaaaaaaaa\", \"display_name\": \"C\"}",
        ),
    ];

    for (method, path, before, after) in &targets {
        for (name, bytes) in bad {
            let mut body = before.as_bytes().to_vec();
            body.extend_from_slice(bytes);
            body.extend_from_slice(after.as_bytes());

            // Act
            let response = send_raw(&app, &b.token, method.clone(), path, body).await;

            // Assert
            let status = response.status();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} with {name}");
            assert_problem(response, status).await;
        }
    }
    assert_eq!(get(&app, &b.token, &task_path).await["title"], "First");
    app.cleanup().await;
}

#[tokio::test]
async fn nul_and_other_control_characters_are_422_naming_the_field_in_every_text_field() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let task_path = format!("/tasks/{}", b.task);
    let comment = json_of(
        send(&app, &b.token, Method::POST, &format!("{task_path}/comments"), &json!({"body": "Hi"})).await,
        201,
    )
    .await;
    let comment_path = format!("/comments/{}", comment["id"].as_str().unwrap());
    let project_path = format!("/projects/{}", b.project);
    // NUL, ESC, DEL and NEL (C1); in one-line fields a line break too.
    let controls = ["\u{0}", "\u{1b}", "\u{7f}", "\u{85}"];

    for control in controls {
        let text = format!("a{control}b");
        let cases = [
            (Method::PATCH, "/users/me".to_owned(), json!({"display_name": text}), "display_name"),
            (Method::POST, "/projects".to_owned(), json!({"name": text, "key": "CTRL"}), "name"),
            (
                Method::POST,
                "/projects".to_owned(),
                json!({"name": "n", "key": "CTRL", "description": text}),
                "description",
            ),
            (Method::PATCH, project_path.clone(), json!({"name": text}), "name"),
            (Method::PATCH, project_path.clone(), json!({"description": text}), "description"),
            (Method::POST, "/tasks".to_owned(), json!({"project_id": b.project, "title": text}), "title"),
            (
                Method::POST,
                "/tasks".to_owned(),
                json!({"project_id": b.project, "title": "t", "description": text}),
                "description",
            ),
            (
                Method::POST,
                "/tasks".to_owned(),
                json!({"project_id": b.project, "title": "t", "labels": ["ok", text]}),
                "labels",
            ),
            (Method::PATCH, task_path.clone(), json!({"title": text}), "title"),
            (Method::PATCH, task_path.clone(), json!({"description": text}), "description"),
            (Method::PATCH, task_path.clone(), json!({"labels": [text]}), "labels"),
            (Method::POST, "/tasks/bulk".to_owned(), json!({"ids": [b.task], "patch": {"labels": [text]}}), "labels"),
            (Method::POST, format!("{task_path}/comments"), json!({"body": text}), "body"),
            (Method::PATCH, comment_path.clone(), json!({"body": text}), "body"),
        ];
        for (method, path, body, field) in cases {
            // Act
            let response = send(&app, &b.token, method.clone(), &path, &body).await;

            // Assert
            assert_refused(response, field, &format!("{method} {path} {body}")).await;
        }
        let register = json!({"email": "c@example.com", "password": PASSWORD, "display_name": text});
        assert_refused(app.post_json("/api/v1/auth/register", &register).await, "display_name", "register").await;
    }
    for line_break in ["\n", "\t"] {
        let text = format!("a{line_break}b");
        let title = send(&app, &b.token, Method::PATCH, &task_path, &json!({"title": text})).await;
        assert_refused(title, "title", "a line break in a title").await;
        let name = send(&app, &b.token, Method::PATCH, "/users/me", &json!({"display_name": text})).await;
        assert_refused(name, "display_name", "a line break in a display name").await;
    }
    let attachment = upload(&app, &b.token, &b.task, "a\tb.txt").await;
    assert_refused(attachment, "filename", "a tab in a file name").await;

    // Nothing was written: each field is as it was.
    let task = get(&app, &b.token, &task_path).await;
    assert_eq!((&task["title"], &task["description"], &task["labels"]), (&json!("First"), &Value::Null, &json!([])));
    assert_eq!(get(&app, &b.token, "/users/me").await["display_name"], "Alice");
    let comments = get(&app, &b.token, &format!("{task_path}/comments")).await;
    assert_eq!(comments["items"][0]["body"], "Hi");
    let projects = get(&app, &b.token, "/projects").await;
    assert_eq!(projects["items"].as_array().unwrap().len(), 1, "{projects}");
    app.cleanup().await;
}

#[tokio::test]
async fn tabs_and_line_breaks_round_trip_in_descriptions_and_comments() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let text = "Steps:\r\n\t1. open\n\t2. close\n";
    let task_path = format!("/tasks/{}", b.task);

    // Act
    let task = send(&app, &b.token, Method::PATCH, &task_path, &json!({"description": text})).await;
    let project =
        send(&app, &b.token, Method::PATCH, &format!("/projects/{}", b.project), &json!({"description": text})).await;
    let comment = send(&app, &b.token, Method::POST, &format!("{task_path}/comments"), &json!({"body": text})).await;

    // Assert
    assert_eq!(json_of(task, 200).await["description"], text);
    assert_eq!(json_of(project, 200).await["description"], text);
    assert_eq!(json_of(comment, 201).await["body"], text);
    assert_eq!(get(&app, &b.token, &task_path).await["description"], text);
    assert_eq!(get(&app, &b.token, &format!("/projects/{}", b.project)).await["description"], text);
    assert_eq!(get(&app, &b.token, &format!("{task_path}/comments")).await["items"][0]["body"], text);
    app.cleanup().await;
}

#[tokio::test]
async fn numbers_no_field_holds_are_422_in_bodies_and_400_in_query_strings() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let task_path = format!("/tasks/{}", b.task);
    let project = &b.project;
    let numbers =
        ["1e400", "-1e400", "18446744073709551616", "-9223372036854775809", "2147483648", "-1", "1.5", "1e2", "100001"];

    for number in numbers {
        let cases = [
            (
                Method::POST,
                "/tasks".to_owned(),
                format!(r#"{{"project_id": "{project}", "title": "t", "estimate_minutes": {number}}}"#),
                "estimate_minutes",
            ),
            (Method::PATCH, task_path.clone(), format!(r#"{{"estimate_minutes": {number}}}"#), "estimate_minutes"),
            (Method::PATCH, task_path.clone(), format!(r#"{{"priority": {number}}}"#), "priority"),
            (
                Method::POST,
                "/tasks/bulk".to_owned(),
                format!(r#"{{"ids": ["{}"], "patch": {{"priority": {number}}}}}"#, b.task),
                "patch.priority",
            ),
            (Method::POST, "/tasks/bulk".to_owned(), format!(r#"{{"ids": [{number}], "patch": {{}}}}"#), "ids[0]"),
        ];
        for (method, path, body, field) in cases {
            // Act
            let response = send_raw(&app, &b.token, method.clone(), &path, body.clone()).await;

            // Assert
            assert_refused(response, field, &format!("{method} {path} {body}")).await;
        }
        for list in [
            format!("/tasks?project_id={project}&"),
            "/projects?".to_owned(),
            format!("{task_path}/comments?"),
            format!("/projects/{project}/members?"),
        ] {
            let response = call(&app, &b.token, Method::GET, &format!("{list}limit={number}")).send().await.unwrap();
            assert_problem(response, StatusCode::BAD_REQUEST).await;
        }
    }
    for limit in ["0", "101", "+5", "0x10", "1e400"] {
        let response = call(&app, &b.token, Method::GET, &format!("/projects?limit={limit}")).send().await.unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }

    // The ends of the documented ranges are accepted.
    assert_eq!(
        get(&app, &b.token, &format!("/tasks?project_id={project}&limit=100")).await["items"].as_array().unwrap().len(),
        1
    );
    for estimate in [0, 100_000] {
        let task = send(&app, &b.token, Method::PATCH, &task_path, &json!({"estimate_minutes": estimate})).await;
        assert_eq!(json_of(task, 200).await["estimate_minutes"], estimate);
        assert_eq!(get(&app, &b.token, &task_path).await["estimate_minutes"], estimate);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_repeated_key_is_422_naming_it_and_neither_value_is_taken() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let task_path = format!("/tasks/{}", b.task);
    let (bob, _) = app.user("bob@example.com", "Bob").await;
    let p = &b.project;
    let cases = [
        (Method::POST, "/tasks".to_owned(), format!(r#"{{"project_id": "{p}", "title": "a", "title": "b"}}"#), "title"),
        (
            Method::POST,
            "/tasks".to_owned(),
            format!(r#"{{"project_id": "{p}", "title": "same", "title": "same"}}"#),
            "title",
        ),
        (
            Method::POST,
            "/tasks".to_owned(),
            format!(r#"{{"project_id": "{p}", "project_id": "{p}", "title": "t"}}"#),
            "project_id",
        ),
        (Method::PATCH, task_path.clone(), r#"{"title": "a", "title": "b"}"#.to_owned(), "title"),
        (Method::PATCH, task_path.clone(), r#"{"description": null, "description": "x"}"#.to_owned(), "description"),
        (
            Method::POST,
            "/tasks/bulk".to_owned(),
            format!(r#"{{"ids": ["{}"], "patch": {{"status": "done", "status": "cancelled"}}}}"#, b.task),
            "patch.status",
        ),
        (
            Method::POST,
            "/tasks/bulk".to_owned(),
            format!(r#"{{"ids": ["{0}"], "ids": ["{0}"], "patch": {{"status": "done"}}}}"#, b.task),
            "ids",
        ),
        (Method::POST, format!("{task_path}/comments"), r#"{"body": "a", "body": "b"}"#.to_owned(), "body"),
        (
            Method::PATCH,
            "/users/me".to_owned(),
            r#"{"display_name": "A", "display_name": "B"}"#.to_owned(),
            "display_name",
        ),
        (Method::POST, "/projects".to_owned(), r#"{"name": "n", "key": "DUPA", "key": "DUPB"}"#.to_owned(), "key"),
        (
            Method::POST,
            format!("/projects/{p}/members"),
            format!(r#"{{"user_id": "{bob}", "role": "viewer", "role": "owner"}}"#),
            "role",
        ),
    ];

    for (method, path, body, field) in cases {
        // Act
        let response = send_raw(&app, &b.token, method.clone(), &path, body.clone()).await;

        // Assert
        assert_refused(response, field, &format!("{method} {path} {body}")).await;
    }
    let register = r#"{"email": "c@example.com", "email": "d@example.com", "password": "correct horse battery staple", "display_name": "C"}"#;
    let anonymous = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(register)
        .send()
        .await
        .unwrap();
    assert_refused(anonymous, "email", "register").await;

    let task = get(&app, &b.token, &task_path).await;
    assert_eq!((&task["title"], &task["status"]), (&json!("First"), &json!("todo")));
    assert_eq!(get(&app, &b.token, &format!("/tasks?project_id={p}")).await["items"].as_array().unwrap().len(), 1);
    assert_eq!(get(&app, &b.token, &format!("{task_path}/comments")).await["items"], json!([]));
    assert_eq!(get(&app, &b.token, "/users/me").await["display_name"], "Alice");
    assert_eq!(get(&app, &b.token, "/projects").await["items"].as_array().unwrap().len(), 1);
    assert_eq!(get(&app, &b.token, &format!("/projects/{p}/members")).await["items"].as_array().unwrap().len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn arrays_exactly_at_their_bound_are_accepted_and_kept_in_order() {
    // Arrange: 19 more members, so 20 assignees can all belong to the project.
    let app = spawn_app().await;
    let b = board(&app).await;
    let mut members = vec![b.user.clone()];
    for n in 1..20 {
        let id = app.register_user(&format!("member{n}@example.com"), &format!("Member {n}")).await;
        let added = send(
            &app,
            &b.token,
            Method::POST,
            &format!("/projects/{}/members", b.project),
            &json!({"user_id": id, "role": "member"}),
        )
        .await;
        assert_eq!(added.status(), StatusCode::CREATED);
        members.push(id);
    }
    // Twenty distinct labels of 50 four-byte characters each.
    let labels: Vec<String> =
        (0..20).map(|n| format!("{}{}", char::from_u32(0x1F680 + n).unwrap(), WIDE.repeat(49))).collect();
    let task_path = format!("/tasks/{}", b.task);
    let mut ids: Vec<String> = (0..99).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    ids.push(b.task.clone());

    // Act
    let created = send(
        &app,
        &b.token,
        Method::POST,
        "/tasks",
        &json!({"project_id": b.project, "title": "Full", "labels": labels, "assignee_ids": members}),
    )
    .await;
    let patched =
        send(&app, &b.token, Method::PATCH, &task_path, &json!({"labels": labels, "assignee_ids": members})).await;
    let bulk = send(
        &app,
        &b.token,
        Method::POST,
        "/tasks/bulk",
        &json!({"ids": ids, "patch": {"labels": labels, "assignee_ids": members, "status": "done"}}),
    )
    .await;

    // Assert
    let created = json_of(created, 201).await;
    assert_eq!((&created["labels"], &created["assignee_ids"]), (&json!(labels), &json!(members)));
    let created = get(&app, &b.token, &format!("/tasks/{}", created["id"].as_str().unwrap())).await;
    assert_eq!((&created["labels"], &created["assignee_ids"]), (&json!(labels), &json!(members)));
    let patched = json_of(patched, 200).await;
    assert_eq!((&patched["labels"], &patched["assignee_ids"]), (&json!(labels), &json!(members)));
    let bulk = json_of(bulk, 200).await;
    assert_eq!(bulk["updated"].as_array().unwrap().len(), 1, "{bulk}");
    let failed = bulk["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 99, "{bulk}");
    assert!(failed.iter().all(|f| f["status"] == 404), "{bulk}");
    let task = get(&app, &b.token, &task_path).await;
    assert_eq!(
        (&task["labels"], &task["assignee_ids"], &task["status"]),
        (&json!(labels), &json!(members), &json!("done"))
    );
    app.cleanup().await;
}

/// `POST /tasks/{task}/attachments` of a small file named `filename`, sent as raw UTF-8 as browsers do.
async fn upload(app: &TestApp, token: &str, task: &str, filename: &str) -> reqwest::Response {
    let boundary = "ordo-bodies-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    call(app, token, Method::POST, &format!("/tasks/{task}/attachments"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unicode_edge_cases_round_trip_byte_for_byte_in_every_text_field() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let labels = ["\u{200F}", "e\u{301}", "\u{E9}", WIDE, "\u{10FFFF}", "\u{1F469}\u{200D}\u{1F4BB}", EDGES];
    let project_path = format!("/projects/{}", b.project);

    // Act and assert: each write answers the text as sent, and so does the next read.
    let registered = app.register("edges@example.com", PASSWORD, EDGES).await;
    assert_eq!(json_of(registered, 201).await["display_name"], EDGES);
    assert_eq!(get(&app, &app.tokens("edges@example.com").await.access, "/users/me").await["display_name"], EDGES);
    let me = send(&app, &b.token, Method::PATCH, "/users/me", &json!({"display_name": EDGES})).await;
    assert_eq!(json_of(me, 200).await["display_name"], EDGES);
    assert_eq!(get(&app, &b.token, "/users/me").await["display_name"], EDGES);

    let project =
        send(&app, &b.token, Method::POST, "/projects", &json!({"name": EDGES, "key": "EDGE", "description": EDGES}))
            .await;
    let project = json_of(project, 201).await;
    assert_eq!((&project["name"], &project["description"]), (&json!(EDGES), &json!(EDGES)));
    let project = get(&app, &b.token, &format!("/projects/{}", project["id"].as_str().unwrap())).await;
    assert_eq!((&project["name"], &project["description"]), (&json!(EDGES), &json!(EDGES)));
    let patched =
        send(&app, &b.token, Method::PATCH, &project_path, &json!({"name": EDGES, "description": EDGES})).await;
    assert_eq!(json_of(patched, 200).await["name"], EDGES);
    let project = get(&app, &b.token, &project_path).await;
    assert_eq!((&project["name"], &project["description"]), (&json!(EDGES), &json!(EDGES)));

    let task = json!({"project_id": b.project, "title": EDGES, "description": EDGES, "labels": labels});
    let task = json_of(send(&app, &b.token, Method::POST, "/tasks", &task).await, 201).await;
    let task_path = format!("/tasks/{}", task["id"].as_str().unwrap());
    for task in [task, get(&app, &b.token, &task_path).await] {
        assert_eq!(
            (&task["title"], &task["description"], &task["labels"]),
            (&json!(EDGES), &json!(EDGES), &json!(labels))
        );
    }
    let other = format!("/tasks/{}", b.task);
    let patched =
        send(&app, &b.token, Method::PATCH, &other, &json!({"title": EDGES, "description": EDGES, "labels": labels}))
            .await;
    for task in [json_of(patched, 200).await, get(&app, &b.token, &other).await] {
        assert_eq!(
            (&task["title"], &task["description"], &task["labels"]),
            (&json!(EDGES), &json!(EDGES), &json!(labels))
        );
    }

    let comment = send(&app, &b.token, Method::POST, &format!("{task_path}/comments"), &json!({"body": EDGES})).await;
    let comment = json_of(comment, 201).await;
    assert_eq!(comment["body"], EDGES);
    let edited = format!("{EDGES}\n{EDGES}");
    let patched = send(
        &app,
        &b.token,
        Method::PATCH,
        &format!("/comments/{}", comment["id"].as_str().unwrap()),
        &json!({"body": edited}),
    )
    .await;
    assert_eq!(json_of(patched, 200).await["body"], edited.as_str());
    assert_eq!(get(&app, &b.token, &format!("{task_path}/comments")).await["items"][0]["body"], edited.as_str());

    let attachment = json_of(upload(&app, &b.token, &b.task, EDGES).await, 201).await;
    assert_eq!(attachment["filename"], EDGES);
    assert_eq!(get(&app, &b.token, &format!("/tasks/{}/attachments", b.task)).await["items"][0]["filename"], EDGES);
    app.cleanup().await;
}

#[tokio::test]
async fn lengths_are_counted_in_characters_so_4_byte_text_at_the_maximum_is_accepted_and_one_more_is_422() {
    // Arrange
    let app = spawn_app().await;
    let b = board(&app).await;
    let wide = |n: usize| WIDE.repeat(n);
    let task_path = format!("/tasks/{}", b.task);
    let comments = format!("{task_path}/comments");
    let project = b.project.as_str();
    // (method, path, the body holding a text, the field, its maximum in characters)
    type Body = Box<dyn Fn(&str) -> Value>;
    let cases: Vec<(Method, String, Body, &str, usize)> = vec![
        (Method::PATCH, "/users/me".into(), Box::new(|t: &str| json!({"display_name": t})), "display_name", 100),
        (Method::PATCH, format!("/projects/{project}"), Box::new(|t: &str| json!({"name": t})), "name", 200),
        (
            Method::PATCH,
            format!("/projects/{project}"),
            Box::new(|t: &str| json!({"description": t})),
            "description",
            10_000,
        ),
        (Method::PATCH, task_path.clone(), Box::new(|t: &str| json!({"title": t})), "title", 500),
        (Method::PATCH, task_path.clone(), Box::new(|t: &str| json!({"description": t})), "description", 100_000),
        (Method::PATCH, task_path.clone(), Box::new(|t: &str| json!({"labels": ["a", t]})), "labels[1]", 50),
        (Method::POST, comments.clone(), Box::new(|t: &str| json!({"body": t})), "body", 20_000),
    ];

    for (method, path, body, field, max) in &cases {
        // Act
        let at_max = send(&app, &b.token, method.clone(), path, &body(&wide(*max))).await;
        let over = send(&app, &b.token, method.clone(), path, &body(&wide(max + 1))).await;

        // Assert
        let written = json_of(at_max, if *method == Method::POST { 201 } else { 200 }).await;
        let shown = written.to_string();
        assert!(shown.contains(&wide(*max)), "{method} {path} {field} at {max} characters");
        // The gateway names a label by its index; the services name the list.
        let problem = assert_problem(over, StatusCode::UNPROCESSABLE_ENTITY).await;
        let named = fields(&problem);
        assert!(named == [*field] || (*field == "labels[1]" && named == ["labels"]), "{method} {path}: {problem}");
    }
    let task = get(&app, &b.token, &task_path).await;
    assert_eq!(task["title"].as_str().unwrap().chars().count(), 500);
    assert_eq!(task["description"].as_str().unwrap().chars().count(), 100_000);
    assert_eq!(task["labels"][1].as_str().unwrap().chars().count(), 50);
    let project = get(&app, &b.token, &format!("/projects/{project}")).await;
    assert_eq!(
        (project["name"].as_str().unwrap().chars().count(), project["description"].as_str().unwrap().chars().count()),
        (200, 10_000)
    );
    assert_eq!(get(&app, &b.token, "/users/me").await["display_name"], wide(100));
    assert_eq!(get(&app, &b.token, &comments).await["items"][0]["body"], wide(20_000));

    // A password of 128 wide characters registers and signs in; 129 do not register.
    let registered = app.register("wide@example.com", &wide(128), "Wide").await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(app.login("wide@example.com", &wide(128)).await.status(), StatusCode::OK);
    assert_refused(app.register("wider@example.com", &wide(129), "Wider").await, "password", "password").await;
    // A file name of 255 wide characters is kept; 256 are refused.
    let attachment = json_of(upload(&app, &b.token, &b.task, &wide(255)).await, 201).await;
    assert_eq!(attachment["filename"], wide(255));
    assert_refused(upload(&app, &b.token, &b.task, &wide(256)).await, "filename", "file name").await;
    app.cleanup().await;
}
