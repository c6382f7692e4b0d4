//! The dashboards and alert rules name only metrics the processes export: every `ordo_*` name in
//! `deploy/grafana/dashboards/*.json` and `deploy/prometheus/rules/*.yml` (a histogram's `_bucket`,
//! `_sum` and `_count` read as the histogram) must have a `# TYPE` line in `/metrics` once the
//! stack has served some ordinary traffic. A panel on a misspelt or renamed metric shows "No data"
//! for ever, and an alert on one never fires, so this is where such a name is caught.
//!
//! Every process of the stack runs in this test's process and shares one metrics recorder, so the
//! gateway's `/metrics` shows every process's series. A series exists once something records it:
//! most are recorded by the traffic below, and the counters of failures and refusals are exported at
//! zero from the start; the few in [`UNPROVOKED`] exist only once a feature this test does not bring
//! about has run, and for those the check is that the source code records a metric of that name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, TestApp, spawn_app_with};

/// Metrics the dashboards use whose series only appear once what they count has happened, and what
/// that is. Each must still be named in the source of libs/, services/ or gateway/src.
const UNPROVOKED: &[(&str, &str)] = &[
    ("ordo_notification_digests_total", "a user's daily digest hour"),
    ("ordo_push_messages_total", "a Web Push subscription"),
];

/// How long the events of the traffic may take to be published, consumed and mailed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_metric_the_dashboards_and_alerts_name_is_exported_by_the_stack() {
    // Arrange: the names the dashboards and rules use, and a stack where one failed login more than
    // a budget locks an email out and a second email lookup is refused.
    let catalogue = catalogue();
    assert!(catalogue.len() >= 30, "the dashboards and rules name only {} metrics: {catalogue:?}", catalogue.len());
    let sources = exporting_sources();
    let app = spawn_app_with(Options {
        identity_args: vec!["--login-max-failures".to_owned(), "2".to_owned()],
        gateway_args: vec!["--rate-limit-email-lookup".to_owned(), "1".to_owned()],
        ..Options::default()
    })
    .await;

    // Act: ordinary use of every service, and the failures the alerts watch for.
    drive_traffic(&app).await;
    let expected: BTreeSet<&str> = catalogue
        .keys()
        .map(String::as_str)
        .filter(|name| !UNPROVOKED.iter().any(|(unprovoked, _)| unprovoked == name))
        .collect();
    let started = Instant::now();
    let mut exported = exported(&scrape(&app).await);
    while !missing(expected.iter().copied(), &exported).is_empty() && started.elapsed() < SETTLE_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        exported = exported_from(&app, exported).await;
    }

    // Assert
    let absent = missing(expected.iter().copied(), &exported);
    assert!(
        absent.is_empty(),
        "named by the dashboards or alert rules but not exported (no `# TYPE` line in /metrics after {:?}):\n{}",
        started.elapsed(),
        absent.iter().map(|name| format!("  {name} (in {})", uses(&catalogue, name))).collect::<Vec<_>>().join("\n")
    );
    let unnamed: Vec<String> = UNPROVOKED
        .iter()
        .filter(|(name, _)| !exported.contains(*name) && !sources.contains(&format!("\"{name}\"")))
        .map(|(name, after)| format!("  {name} (exported after {after})"))
        .collect();
    assert!(unnamed.is_empty(), "not exported, and named nowhere in the source:\n{}", unnamed.join("\n"));
    let unused: Vec<&str> =
        UNPROVOKED.iter().map(|(name, _)| *name).filter(|name| !catalogue.contains_key(*name)).collect();
    assert!(unused.is_empty(), "UNPROVOKED lists metrics no dashboard or rule uses any more: {unused:?}");
    // The check itself: a name nothing exports is reported, by the scrape and by the source.
    assert_eq!(missing(["ordo_made_up_total"], &exported), ["ordo_made_up_total"]);
    assert!(!sources.contains("\"ordo_made_up_total\""));
    app.cleanup().await;
}

#[test]
fn the_catalogue_reads_metric_names_as_queries_write_them() {
    // Arrange
    let text = r#"histogram_quantile(0.99, sum by (le) (rate(ordo_http_request_duration_seconds_bucket{job="gateway"}[5m])))
        / sum(rate(ordo_task_create_batch_size_sum[5m])) / sum(rate(ordo_task_create_batch_size_count[5m]))
        "expr": "max(ordo_outbox_backlog)", "title": "not_ordo_x, ordo alone, ordo-overview""#;

    // Act
    let names = metric_names(text);

    // Assert
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["ordo_http_request_duration_seconds", "ordo_outbox_backlog", "ordo_task_create_batch_size"]
    );
    let exported = exported("# HELP ordo_a_total A.\n# TYPE ordo_a_total counter\nordo_a_total 1\n");
    assert_eq!(missing(["ordo_a_total", "ordo_b_total"], &exported), ["ordo_b_total"]);
}

/// Register, log in (and fail to), look an email up past its budget, make a project with a member,
/// a webhook and two tasks (one assigned to the member, so a mail goes), move one, list them, and
/// read the member's notifications.
async fn drive_traffic(app: &TestApp) {
    let id = &app.env.id;
    let (ann_email, bob_email, eve_email) =
        (format!("ann-{id}@example.com"), format!("bob-{id}@example.com"), format!("eve-{id}@example.com"));
    let (_, ann) = app.user(&ann_email, "Ann").await;
    let (bob_id, bob) = app.user(&bob_email, "Bob").await;
    assert_eq!(app.login(&ann_email, "not the password at all").await.status(), StatusCode::UNAUTHORIZED);
    // Eve's email: two failures use its budget, the third attempt finds it locked.
    for _ in 0..2 {
        assert_eq!(app.login(&eve_email, "not the password at all").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login(&eve_email, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let lookup = format!("/api/v1/users?email={bob_email}");
    assert_eq!(app.get_as(&ann.access, &lookup).await.status(), StatusCode::OK);
    assert_eq!(app.get_as(&ann.access, &lookup).await.status(), StatusCode::TOO_MANY_REQUESTS);

    let project = json!({"name": "Metrics", "key": "MET"});
    let project = created(app.post_json_as(&ann.access, "/api/v1/projects", &project).await).await;
    let project_id = project["id"].as_str().unwrap();
    let member = json!({"user_id": bob_id, "role": "member"});
    created(app.post_json_as(&ann.access, &format!("/api/v1/projects/{project_id}/members"), &member).await).await;
    let webhook = json!({"url": webhook_receiver().await, "event_types": ["task.created"]});
    created(app.post_json_as(&ann.access, &format!("/api/v1/projects/{project_id}/webhooks"), &webhook).await).await;
    let first = json!({"project_id": project_id, "title": "Chart the outbox", "assignee_ids": [bob_id]});
    let first = created(app.post_json_as(&ann.access, "/api/v1/tasks", &first).await).await;
    let second = json!({"project_id": project_id, "title": "Alert on dead letters"});
    let second = created(app.post_json_as(&ann.access, "/api/v1/tasks", &second).await).await;
    let path = format!("/api/v1/tasks/{}/move", second["id"].as_str().unwrap());
    let moved = app.post_json_as(&ann.access, &path, &json!({"before_id": first["id"]})).await;
    assert_eq!(moved.status(), StatusCode::OK, "{}", moved.text().await.unwrap());
    let listed = app.get_as(&ann.access, &format!("/api/v1/tasks?project_id={project_id}")).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(app.get_as(&bob.access, "/api/v1/notifications").await.status(), StatusCode::OK);
}

/// The body of a `201 Created`, failing the test otherwise.
async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A webhook receiver on a free loopback port that answers every delivery `204`; its URL.
async fn webhook_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hooks", listener.local_addr().unwrap().port());
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The gateway's `/metrics`.
async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// What `/metrics` exports now, together with what it exported before (a gauge a process stopped
/// setting still counts: it was exported).
async fn exported_from(app: &TestApp, mut before: BTreeSet<String>) -> BTreeSet<String> {
    before.extend(exported(&scrape(app).await));
    before
}

/// The metric names of the `# TYPE` lines of a Prometheus text exposition.
fn exported(scraped: &str) -> BTreeSet<String> {
    scraped
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Those of `names` that `exported` lacks, in order.
fn missing<'a>(names: impl IntoIterator<Item = &'a str>, exported: &BTreeSet<String>) -> Vec<&'a str> {
    names.into_iter().filter(|name| !exported.contains(*name)).collect()
}

/// Every `ordo_*` metric name the dashboards and alert rules use, with the files that use it.
fn catalogue() -> BTreeMap<String, BTreeSet<String>> {
    let deploy = workspace().join("deploy");
    let mut files = files_in(&deploy.join("grafana/dashboards"), "json");
    files.extend(files_in(&deploy.join("prometheus/rules"), "yml"));
    assert!(files.len() >= 8, "expected the dashboards and the rules, found {files:?}");
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let short = file.strip_prefix(&deploy).unwrap_or(&file).display().to_string();
        for name in metric_names(&text) {
            names.entry(name).or_default().insert(short.clone());
        }
    }
    names
}

/// The `ordo_*` tokens of `text`, a histogram's series suffixes stripped.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("ordo_") {
        let preceded = text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if preceded {
            continue;
        }
        let rest = &text[at..];
        let name = &rest[..rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len())];
        let name = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name);
        if name.len() > "ordo_".len() {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Where a metric is used, for the failure message.
fn uses(catalogue: &BTreeMap<String, BTreeSet<String>>, name: &str) -> String {
    catalogue.get(name).map(|files| files.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

/// The text of every Rust source file that can record a metric: libs/, services/ and gateway/src,
/// their tests left out.
fn exporting_sources() -> String {
    let root = workspace();
    let mut text = String::new();
    let mut pending = vec![root.join("libs"), root.join("services"), root.join("gateway/src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            if path.is_dir() && !matches!(name, "tests" | "target" | "migrations") {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text
}

/// The files of `dir` whose name ends in `.<extension>`, sorted.
fn files_in(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    files
}

/// The workspace's root (this crate is `gateway/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}
