//! Schemathesis (a property-based API fuzzer, PyPI, pinned below) against the gateway's own OpenAPI
//! document on a real stack: every operation, authenticated as a global admin, every phase (examples,
//! coverage, fuzzing, and stateful along the document's links) and every check (`--checks all`). It
//! must find no server error, no response the document does not describe (status, content type,
//! headers, body), no input the document calls invalid that the API accepts, and no valid one it
//! refuses; `schemathesis.toml` beside this file lists, with API.md's reason for each, the refusals
//! that depend on the server's state, which no schema can describe.

use std::process::{Command, Stdio};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app_with};

/// The Schemathesis release this test is written against; `.ci/run` and `just tools` install it.
const VERSION: &str = "4.32.5";

/// The seed of every run, so a failure reproduces.
const SEED: &str = "20261203";

/// Examples per operation and phase: enough to reach every documented status of every operation,
/// few enough that the whole run stays within a few minutes on a 2-core machine.
const MAX_EXAMPLES: &str = "25";

/// Operations that end the session whose token the fuzzer sends (`logout` revokes it); they are
/// fuzzed in a run of their own, last, with a token of their own.
const SESSION_ENDING: &str = "^(logout)$";

/// Left out of the first run too: the session-ending operations, and the live stream, whose body
/// never ends (its contract is tested in notifications.rs).
const FIRST_RUN_EXCLUDED: &str = "^(logout|stream_notifications)$";

/// The Python that has the test tools: the project's virtualenv where `just tools` made one (on a
/// system whose own python3 refuses pip), else `python3`.
fn python() -> std::path::PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cache")));
    cache
        .map(|cache| cache.join("ordo/venv/bin/python3"))
        .filter(|venv| venv.is_file())
        .unwrap_or_else(|| "python3".into())
}

/// The installed Schemathesis version, or why there is none.
fn installed_version() -> Result<String, String> {
    let output = Command::new(python())
        .args(["-c", "import importlib.metadata as m; print(m.version('schemathesis'))"])
        .output()
        .map_err(|error| format!("python3 could not be run: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Runs `schemathesis run` against the app's document with `token`, plus `extra` arguments; returns
/// whether it passed and everything it printed.
async fn run_schemathesis(app: &TestApp, token: &str, extra: &[&str]) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis.toml");
    let workdir = std::env::temp_dir().join(format!("ordo-schemathesis-{}", app.env.redis_prefix()));
    std::fs::create_dir_all(&workdir).unwrap();
    let authorization = format!("Authorization: Bearer {token}");
    let document = app.url("/api/v1/openapi.json");
    let mut args = vec![
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "--config-file",
        config,
        "--no-color",
        "run",
        &document,
        "--header",
        &authorization,
        "--seed",
        SEED,
        "--max-examples",
        MAX_EXAMPLES,
        // One worker: Hypothesis parses the source of lambdas as it builds strategies, and CPython
        // 3.11's `ast.parse` is not safe from two threads at once (a run failed with `SystemError:
        // AST constructor recursion depth mismatch` in the coverage phase).
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--checks",
        "all",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    // The stack runs on this test's runtime; the fuzzer is waited for on a blocking thread beside it.
    let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let dir = workdir.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python()).args(&owned).current_dir(&dir).stdin(Stdio::null()).output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&workdir);
    let printed = format!(
        "schemathesis {} ({:?}) exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args[5..].join(" ").replace(token, "<token>"),
        started.elapsed(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    (output.status.success(), printed)
}

/// `POST` of a JSON body as `token`, failing the test unless it answers `201`; returns the body.
async fn create(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app.client.post(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_departure_from_the_openapi_document() {
    // Arrange
    match installed_version() {
        Ok(version) if version == VERSION => {}
        found => panic!(
            "this test needs Schemathesis {VERSION} (found: {found:?}); install it with \
             `just tools` (into ~/.cache/ordo/venv where the system python3 refuses pip)"
        ),
    }
    let app = spawn_app_with(Options::default()).await;
    // The first account is a global admin, so admin-only operations are fuzzed past their check.
    let (_, admin) = app.user("root@example.com", "root").await;
    let (member, _) = app.user("member@example.com", "member").await;
    let project = create(&app, &admin.access, "/api/v1/projects", json!({"name": "Fuzzed", "key": "FUZ"})).await;
    let project_id = project["id"].as_str().unwrap();
    create(
        &app,
        &admin.access,
        &format!("/api/v1/projects/{project_id}/members"),
        json!({"user_id": member, "role": "member"}),
    )
    .await;
    let task = create(
        &app,
        &admin.access,
        "/api/v1/tasks",
        json!({"project_id": project_id, "title": "Fuzz me", "labels": ["api"], "assignee_ids": [member]}),
    )
    .await;
    let task_id = task["id"].as_str().unwrap();
    create(&app, &admin.access, &format!("/api/v1/tasks/{task_id}/comments"), json!({"body": "A comment"})).await;

    // Act: every operation but the session-ending ones with the admin's token, then those with a
    // session of their own (so what they end is not the first run's). That session signs in first:
    // the fuzzer's failed logins lock the email out.
    let session = app.tokens("root@example.com").await;
    let (main_passed, main_output) =
        run_schemathesis(&app, &admin.access, &["--exclude-operation-id-regex", FIRST_RUN_EXCLUDED]).await;
    assert!(main_passed, "{main_output}");
    // No stateful phase there: no link leads to or from them.
    let (ending_passed, ending_output) = run_schemathesis(
        &app,
        &session.access,
        &["--include-operation-id-regex", SESSION_ENDING, "--phases", "examples,coverage,fuzzing"],
    )
    .await;

    // Assert
    assert!(ending_passed, "{ending_output}");
    // The runs really reached the API: the admin's session is still good after the first, and the
    // second's was ended by its logout.
    assert_eq!(app.me(&admin.access).await.status(), StatusCode::OK);
    assert_eq!(app.me(&session.access).await.status(), StatusCode::UNAUTHORIZED, "{ending_output}");
    app.cleanup().await;
}
