//! `POST /projects/{id}/imports`: an export of a filtered 1,000-task project, as CSV and as JSON,
//! imported through the gateway into new projects with every field a file carries equal; the same
//! file sent twice; a dry run; who may import; and the errors of a bad form.

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, call, job_ended, ok, spawn_app};

/// A `multipart/form-data` body: the file (as `content_type`, named `filename`), then the options.
fn form(file: &[u8], content_type: &str, filename: &str, options: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "imp0rtb0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    for (name, value) in options {
        body.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn import(
    app: &TestApp,
    token: &str,
    project: &str,
    (content_type, body): (String, Vec<u8>),
) -> reqwest::Response {
    call(app, token, Method::POST, &format!("/projects/{project}/imports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn create_project(app: &TestApp, token: &str, key: &str, member: Option<(&str, &str)>) -> String {
    let body = json!({"name": format!("Project {key}"), "key": key});
    let project = ok(call(app, token, Method::POST, "/projects").json(&body).send().await.unwrap(), "create project")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if let Some((user_id, role)) = member {
        let body = json!({"user_id": user_id, "role": role});
        let path = format!("/projects/{project}/members");
        ok(call(app, token, Method::POST, &path).json(&body).send().await.unwrap(), "add a member").await;
    }
    project
}

/// Every task of `project` with `label`, in board order.
async fn tasks(app: &TestApp, token: &str, project: &str, label: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut path = format!("/tasks?project_id={project}&label={label}&sort=position&limit=100");
        if !cursor.is_empty() {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = ok(call(app, token, Method::GET, &path).send().await.unwrap(), "list").await;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return all,
        }
    }
}

/// What an import carries of each task, its parent named by title.
fn carried(tasks: &[Value]) -> Vec<Value> {
    let title_of = |id: &Value| tasks.iter().find(|t| t["id"] == *id).map(|t| t["title"].clone());
    tasks
        .iter()
        .map(|t| {
            let parent = if t["parent_id"].is_null() { Value::Null } else { title_of(&t["parent_id"]).unwrap() };
            json!({
                "title": t["title"], "description": t["description"], "status": t["status"],
                "priority": t["priority"], "assignee_ids": t["assignee_ids"], "labels": t["labels"],
                "due_at": t["due_at"], "start_at": t["start_at"], "estimate_minutes": t["estimate_minutes"],
                "parent": parent,
            })
        })
        .collect()
}

#[tokio::test]
async fn a_filtered_export_of_a_thousand_tasks_round_trips_through_an_import_as_csv_and_json() {
    let app = spawn_app().await;
    let _root = app.user("root@example.com", "Root").await;
    let (member_id, member) = app.user("member@example.com", "Member").await;
    let (_, owner) = app.user("owner@example.com", "Owner").await;
    let source = create_project(&app, &owner.access, "SRC", Some((&member_id, "member"))).await;

    // 1,000 tasks the export keeps (label `keep`) and 100 it leaves out; every 25th kept task is a
    // subtask of the kept task before it.
    let statuses = ["backlog", "todo", "in_progress", "in_review", "done", "cancelled"];
    let priorities = ["none", "low", "medium", "high", "urgent"];
    let body = |n: usize| {
        let mut task = json!({
            "project_id": source,
            "title": if n.is_multiple_of(97) { format!("=cmd|' /C calc'!A{n}") } else { format!("Task {n}, \"quoted\"") },
            "status": statuses[n % statuses.len()],
            "priority": priorities[n % priorities.len()],
            "labels": if n.is_multiple_of(11) { json!(["skip"]) } else { json!(["keep", format!("l{}", n % 7)]) },
        });
        if n.is_multiple_of(3) {
            task["description"] = json!(format!("-first line of {n}\nsecond, with a comma"));
        }
        if n.is_multiple_of(4) {
            task["assignee_ids"] = json!([member_id]);
        }
        if n.is_multiple_of(5) {
            task["due_at"] = json!(format!("2027-0{}-1{}T09:30:00Z", 1 + n % 9, n % 10));
        }
        if n.is_multiple_of(10) {
            task["start_at"] = json!("2026-12-01T08:00:00Z");
            task["estimate_minutes"] = json!(n % 480);
        }
        task
    };
    let mut kept: Vec<Value> = Vec::new();
    let mut n = 0;
    while kept.len() < 1_000 {
        // A batch of creates goes in at once; every third batch starts with a subtask of the last
        // kept task of the batches before it.
        let batch: Vec<usize> = (n..n + 24).collect();
        let parent = if (n / 24) % 3 == 2 { kept.last().map(|t| t["id"].clone()) } else { None };
        n += 24;
        let created: Vec<Value> = futures::stream::iter(batch.iter().map(|&i| {
            let mut task = body(i);
            if let Some(parent) = parent.as_ref().filter(|_| i == batch[0] && !i.is_multiple_of(11)) {
                task["parent_id"] = parent.clone();
            }
            let request = call(&app, &owner.access, Method::POST, "/tasks").json(&task);
            async move { ok(request.send().await.unwrap(), "create").await }
        }))
        .buffered(8)
        .collect()
        .await;
        kept.extend(created.into_iter().filter(|t| t["labels"][0] == "keep"));
    }
    let expected = carried(&tasks(&app, &owner.access, &source, "keep").await);
    assert!(expected.len() >= 1_000);
    assert!(expected.iter().any(|t| !t["parent"].is_null()), "some subtasks");

    for (format, key, content_type, filename) in
        [("csv", "CSVIN", "text/csv", "tasks.csv"), ("json", "JSONIN", "application/octet-stream", "tasks.json")]
    {
        let export = call(&app, &owner.access, Method::POST, &format!("/projects/{source}/exports"))
            .json(&json!({"format": format, "filter": {"label": "keep", "sort": "position"}}))
            .send()
            .await
            .unwrap();
        let export = ok(export, "export").await;
        let export = job_ended(&app, &owner.access, export["id"].as_str().unwrap()).await;
        assert_eq!(export["state"], "done", "{export}");
        let url = export["result"]["url"].as_str().unwrap();
        let file = reqwest::get(url).await.unwrap().bytes().await.unwrap().to_vec();
        let target = create_project(&app, &owner.access, key, Some((&member_id, "member"))).await;

        // A dry run: the whole file would import, and nothing is created.
        let preview = import(&app, &owner.access, &target, form(&file, content_type, filename, &[("dry_run", "true")]));
        let preview = preview.await;
        assert_eq!(preview.status(), StatusCode::OK);
        let preview: Value = preview.json().await.unwrap();
        assert_eq!(preview["rows"], expected.len());
        assert_eq!((preview["tasks"].clone(), preview["error_count"].clone()), (json!(expected.len()), json!(0)));
        assert!(tasks(&app, &owner.access, &target, "keep").await.is_empty());

        let response = import(&app, &owner.access, &target, form(&file, content_type, filename, &[])).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{format}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let job: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()));
        assert_eq!((job["kind"].as_str(), job["format"].as_str()), (Some("import"), Some(format)));
        assert_eq!(job["import"]["tasks"], expected.len());
        let done = job_ended(&app, &owner.access, job["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["progress"], json!({"rows_done": expected.len(), "rows_total": expected.len()}));
        assert_eq!(carried(&tasks(&app, &owner.access, &target, "keep").await), expected, "{format}");

        // The same file again: the first job, 200, and nothing imported twice.
        let again = import(&app, &owner.access, &target, form(&file, content_type, filename, &[])).await;
        assert_eq!(again.status(), StatusCode::OK);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], job["id"]);
        assert_eq!(tasks(&app, &owner.access, &target, "keep").await.len(), expected.len());
        // Only its requester sees the job; a member of the project does not.
        let path = format!("/jobs/{}", job["id"].as_str().unwrap());
        assert_problem(call(&app, &member.access, Method::GET, &path).send().await.unwrap(), StatusCode::NOT_FOUND)
            .await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn who_may_import_and_the_errors_of_a_bad_form() {
    let app = spawn_app().await;
    let _root = app.user("root@example.com", "Root").await;
    let (viewer_id, viewer) = app.user("viewer@example.com", "Viewer").await;
    let (_, outsider) = app.user("outsider@example.com", "Outsider").await;
    let (_, owner) = app.user("owner@example.com", "Owner").await;
    let project = create_project(&app, &owner.access, "IMP", Some((&viewer_id, "viewer"))).await;
    let csv = b"title,status\r\nFirst,todo\r\n,todo\r\nThird,someday\r\n";

    // Rows that break a rule are named, with their field.
    let preview = import(&app, &owner.access, &project, form(csv, "text/csv", "t.csv", &[("dry_run", "true")])).await;
    let preview = ok(preview, "dry run").await;
    assert_eq!((preview["rows"].as_u64(), preview["tasks"].as_u64()), (Some(3), Some(1)));
    let errors: Vec<(u64, &str)> = preview["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(2, "title"), (3, "status")]);
    // A status the request maps is no error.
    let mapped = form(csv, "text/csv", "t.csv", &[("dry_run", "true"), ("status_map", r#"{"Someday": "backlog"}"#)]);
    let mapped = ok(import(&app, &owner.access, &project, mapped).await, "dry run with a map").await;
    assert_eq!((mapped["tasks"].as_u64(), mapped["error_count"].as_u64()), (Some(2), Some(1)));
    let bad_map = form(csv, "text/csv", "t.csv", &[("status_map", r#"{"Someday": "later"}"#)]);
    let bad_map = import(&app, &owner.access, &project, bad_map).await;
    assert_eq!(assert_problem(bad_map, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "status_map");

    // A viewer may not import; someone who is not a member learns nothing.
    let denied = import(&app, &viewer.access, &project, form(csv, "text/csv", "t.csv", &[])).await;
    assert_problem(denied, StatusCode::FORBIDDEN).await;
    let hidden = import(&app, &outsider.access, &project, form(csv, "text/csv", "t.csv", &[])).await;
    assert_problem(hidden, StatusCode::NOT_FOUND).await;
    // Who may import is decided first, whatever is wrong with the form.
    for options in [[("dry_run", "yes")], [("status_map", "[]")]] {
        let bad_form = import(&app, &outsider.access, &project, form(csv, "text/csv", "t.csv", &options)).await;
        assert_problem(bad_form, StatusCode::NOT_FOUND).await;
        let bad_form = import(&app, &viewer.access, &project, form(csv, "text/csv", "t.csv", &options)).await;
        assert_problem(bad_form, StatusCode::FORBIDDEN).await;
    }

    // The form's own errors.
    let plain = call(&app, &owner.access, Method::POST, &format!("/projects/{project}/imports"))
        .header("content-type", "text/csv")
        .body(csv.to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(plain, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let unknown = import(&app, &owner.access, &project, form(csv, "application/octet-stream", "tasks.xlsx", &[])).await;
    let problem = assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "format", "{problem}");
    let named = import(
        &app,
        &owner.access,
        &project,
        form(csv, "application/octet-stream", "tasks.xlsx", &[("format", "csv"), ("dry_run", "true")]),
    )
    .await;
    assert_eq!(ok(named, "the format named by its part").await["tasks"], 1);
    let bad_flag = import(&app, &owner.access, &project, form(csv, "text/csv", "t.csv", &[("dry_run", "yes")])).await;
    assert_eq!(assert_problem(bad_flag, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "dry_run");
    let not_json = import(&app, &owner.access, &project, form(csv, "application/json", "t.json", &[])).await;
    assert_eq!(assert_problem(not_json, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "file");
    let too_large = vec![b'x'; 8 * 1024 * 1024 + 1];
    let too_large = import(&app, &owner.access, &project, form(&too_large, "text/csv", "t.csv", &[])).await;
    assert_problem(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    let boundary = "b";
    let no_file =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\ncsv\r\n--{boundary}--\r\n");
    let no_file = import(
        &app,
        &owner.access,
        &project,
        (format!("multipart/form-data; boundary={boundary}"), no_file.into_bytes()),
    );
    assert_eq!(assert_problem(no_file.await, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "file");
    let (content_type, mut twice) = form(csv, "text/csv", "t.csv", &[]);
    let second = "\r\n--imp0rtb0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"u.csv\"\r\n\r\nx";
    let closing = b"\r\n--imp0rtb0undary--\r\n";
    twice.truncate(twice.len() - closing.len());
    twice.extend_from_slice(second.as_bytes());
    twice.extend_from_slice(closing);
    let twice = import(&app, &owner.access, &project, (content_type, twice)).await;
    assert_eq!(assert_problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["field"], "file");

    // Nothing of all that was imported; the real import creates the one good row.
    let response = import(&app, &owner.access, &project, form(csv, "text/csv", "t.csv", &[])).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    let done = job_ended(&app, &owner.access, job["id"].as_str().unwrap()).await;
    assert_eq!((done["state"].as_str(), done["import"]["error_count"].as_u64()), (Some("done"), Some(2)));
    let path = format!("/tasks?project_id={project}");
    let listed = ok(call(&app, &owner.access, Method::GET, &path).send().await.unwrap(), "list").await;
    let titles: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["First"]);
    // Its requester hears that it ended, in the app.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let list = ok(call(&app, &owner.access, Method::GET, "/notifications").send().await.unwrap(), "list").await;
        let ended: Vec<&Value> =
            list["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "job.ended").collect();
        if let Some(note) = ended.first() {
            assert_eq!(
                (note["title"].as_str(), note["body"].as_str()),
                (Some("Your import is done"), Some("1 task created."))
            );
            assert_eq!(note["project_id"].as_str(), Some(project.as_str()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no job.ended notification: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And the project's audit log records who imported what.
    let path = format!("/audit/events?project_id={project}&action=job.ended");
    loop {
        let page = ok(call(&app, &owner.access, Method::GET, &path).send().await.unwrap(), "audit").await;
        if let Some(record) = page["items"].as_array().unwrap().first() {
            assert_eq!(record["entity_id"], job["id"]);
            assert_eq!(record["data"]["job_ended"]["kind"], "import");
            // A 64-bit integer is a string in protobuf's JSON.
            assert_eq!(record["data"]["job_ended"]["rows"], "1");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no job.ended audit record: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.cleanup().await;
}
