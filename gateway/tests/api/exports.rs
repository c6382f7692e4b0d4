//! `POST /projects/{id}/exports` and `/jobs/{id}`: an export end to end through the gateway, the task
//! service's job runner and the object store — the file downloaded from the job's URL and read back —
//! who may ask for one and see it, and the errors of a bad request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, call, job_ended, ok, spawn_app};

/// The file of a finished export, from its download URL.
async fn download(job: &Value) -> Vec<u8> {
    let url = job["result"]["url"].as_str().unwrap_or_else(|| panic!("no download URL: {job}"));
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn an_export_is_queued_run_in_the_background_and_downloaded_by_its_requester_alone() {
    let app = spawn_app().await;
    let _root = app.user("root@example.com", "Root").await;
    let (_, owner) = app.user("owner@example.com", "Owner").await;
    let (viewer_id, viewer) = app.user("viewer@example.com", "Viewer").await;
    let (_, outsider) = app.user("outsider@example.com", "Outsider").await;
    let project = ok(
        call(&app, &owner.access, Method::POST, "/projects")
            .json(&json!({"name": "Export", "key": "EXP"}))
            .send()
            .await
            .unwrap(),
        "create the project",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let member = json!({"user_id": viewer_id, "role": "viewer"});
    ok(
        call(&app, &owner.access, Method::POST, &format!("/projects/{project}/members"))
            .json(&member)
            .send()
            .await
            .unwrap(),
        "add the viewer",
    )
    .await;
    let mut tasks = Vec::new();
    for (title, status) in
        [("=2+3", "todo"), ("Second, with \"quotes\"", "todo"), ("Third", "done"), ("Fourth", "in_progress")]
    {
        let body = json!({"project_id": project, "title": title, "status": status, "labels": ["export"]});
        tasks.push(
            ok(call(&app, &owner.access, Method::POST, "/tasks").json(&body).send().await.unwrap(), "create").await,
        );
    }

    // A viewer asks for the `todo` tasks as CSV: 202 with the job, queued, at its Location.
    let response = call(&app, &viewer.access, Method::POST, &format!("/projects/{project}/exports"))
        .json(&json!({"format": "csv", "filter": {"status": "todo", "sort": "created_at"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()));
    assert_eq!(
        (job["kind"].as_str(), job["format"].as_str(), job["state"].as_str()),
        (Some("export"), Some("csv"), Some("queued"))
    );
    assert_eq!(job["result"], Value::Null);
    let done = job_ended(&app, &viewer.access, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"], json!({"rows_done": 2, "rows_total": 2}));
    let csv = String::from_utf8(download(&done).await).unwrap();
    assert_eq!(done["result"]["size_bytes"], csv.len());
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("id,project_id,number,key,title,description,status,"), "{csv}");
    assert!(lines[1].starts_with(&format!("{},{project},1,EXP-1,'=2+3,", tasks[0]["id"].as_str().unwrap())), "{csv}");
    assert!(lines[2].contains(",\"Second, with \"\"quotes\"\"\","), "{csv}");
    assert_eq!(lines[3], "", "two rows and a final line end: {csv}");
    assert_eq!(lines.len(), 4);

    // The whole project as JSON with its comments: each task exactly as `GET /tasks/{id}` shows it,
    // each comment as `GET /comments/{id}` does.
    let first = tasks[0]["id"].as_str().unwrap();
    let comment = call(&app, &owner.access, Method::POST, &format!("/tasks/{first}/comments"))
        .json(&json!({"body": "=exported with its task"}))
        .send()
        .await
        .unwrap();
    let comment = ok(comment, "comment").await;
    let response = call(&app, &viewer.access, Method::POST, &format!("/projects/{project}/exports"))
        .json(&json!({"format": "json", "include": ["comments"]}))
        .send()
        .await
        .unwrap();
    let job = ok(response, "export as JSON").await;
    let done = job_ended(&app, &viewer.access, job["id"].as_str().unwrap()).await;
    let exported: Vec<Value> = serde_json::from_slice(&download(&done).await).unwrap();
    assert_eq!(exported.len(), 4);
    for task in &tasks {
        let id = task["id"].as_str().unwrap();
        let current =
            ok(call(&app, &viewer.access, Method::GET, &format!("/tasks/{id}")).send().await.unwrap(), "get").await;
        let mut item = exported.iter().find(|t| t["id"] == id).unwrap().clone();
        let comments = item.as_object_mut().unwrap().remove("comments").unwrap();
        assert_eq!(item, current, "the export's task is the API's");
        let expected = if id == first { json!([comment]) } else { json!([]) };
        assert_eq!(comments, expected, "the export's comments are the API's");
    }
    let refused = call(&app, &viewer.access, Method::POST, &format!("/projects/{project}/exports"))
        .json(&json!({"format": "json", "include": ["attachments"]}))
        .send()
        .await
        .unwrap();
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Only the requester sees the job; cancelling an ended job leaves it as it ended.
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    for token in [&owner.access, &outsider.access] {
        assert_problem(call(&app, token, Method::GET, &path).send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_problem(call(&app, token, Method::DELETE, &path).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    }
    let after = ok(call(&app, &viewer.access, Method::DELETE, &path).send().await.unwrap(), "cancel").await;
    assert_eq!(after["state"], "done");
    assert_problem(
        call(&app, &viewer.access, Method::GET, "/jobs/not-a-job").send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;

    // Someone who is not a member may not export; bad requests are named.
    let exports = format!("/projects/{project}/exports");
    let refused =
        call(&app, &outsider.access, Method::POST, &exports).json(&json!({"format": "csv"})).send().await.unwrap();
    assert_problem(refused, StatusCode::NOT_FOUND).await;
    let refused =
        call(&app, &viewer.access, Method::POST, &exports).json(&json!({"format": "xlsx"})).send().await.unwrap();
    assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let body = json!({"format": "csv", "filter": {"status": "someday"}});
    let refused = call(&app, &viewer.access, Method::POST, &exports).json(&body).send().await.unwrap();
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "filter", "{problem}");
    let body = json!({"format": "csv", "filter": {"label": "l".repeat(51)}});
    let refused = call(&app, &viewer.access, Method::POST, &exports).json(&body).send().await.unwrap();
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "filter.label", "{problem}");
    let refused = call(&app, &viewer.access, Method::POST, "/projects/not-a-project/exports")
        .json(&json!({"format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_problem(refused, StatusCode::NOT_FOUND).await;

    app.cleanup().await;
}
