//! `/projects/{id}/reports`: the flow report end to end through the gateway and the task service,
//! its counts checked against what the test did, its SVG chart, who may read it, and its parameter
//! errors.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, call, ok, spawn_app};

/// The sum of `field` over the report's intervals.
fn total(report: &Value, field: &str) -> u64 {
    report["intervals"].as_array().unwrap().iter().map(|i| i[field].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn the_flow_report_counts_what_happened_to_a_projects_tasks() {
    let app = spawn_app().await;
    // The first account is a global admin; the test's people come after it.
    let _root = app.user("root@example.com", "Root").await;
    let (owner_id, owner) = app.user("owner@example.com", "Owner").await;
    let (viewer_id, viewer) = app.user("viewer@example.com", "Viewer").await;
    let (_, outsider) = app.user("outsider@example.com", "Outsider").await;
    let project = ok(
        call(&app, &owner.access, Method::POST, "/projects")
            .json(&json!({"name": "Flow", "key": "FLOW"}))
            .send()
            .await
            .unwrap(),
        "create the project",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        call(&app, &owner.access, Method::POST, &format!("/projects/{project}/members"))
            .json(&json!({"user_id": viewer_id, "role": "viewer"}))
            .send()
            .await
            .unwrap(),
        "add the viewer",
    )
    .await;

    // Five tasks: two done (one through in progress), one cancelled, two open of which one is
    // overdue, assigned to the owner and labelled `bug`.
    let mut ids = Vec::new();
    for (n, fields) in [
        json!({}),
        json!({}),
        json!({}),
        json!({"labels": ["bug"]}),
        json!({"labels": ["bug"], "assignee_ids": [owner_id], "due_at": "2026-01-05T09:00:00Z"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = json!({"project_id": project, "title": format!("Task {n}")});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let task =
            ok(call(&app, &owner.access, Method::POST, "/tasks").json(&body).send().await.unwrap(), "create").await;
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    for (task, status) in [(0, "in_progress"), (0, "done"), (1, "done"), (2, "cancelled")] {
        ok(
            call(&app, &owner.access, Method::PATCH, &format!("/tasks/{}", ids[task]))
                .json(&json!({"status": status}))
                .send()
                .await
                .unwrap(),
            "change a status",
        )
        .await;
    }

    // Monthly from a day ago: one interval, or two when the test runs on a month's first day.
    let from = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let path = format!("/projects/{project}/reports/flow?interval=month&from={}", from.replace('+', "%2B"));
    let report = ok(call(&app, &viewer.access, Method::GET, &path).send().await.unwrap(), "the viewer's report").await;
    assert_eq!(report["project_id"], project.as_str());
    assert_eq!(report["interval"], "month");
    let intervals = report["intervals"].as_array().unwrap();
    assert!((1..=2).contains(&intervals.len()), "{report}");
    assert_eq!(intervals[0]["start"], report["from"]);
    assert_eq!(intervals[intervals.len() - 1]["end"], report["to"]);
    assert!(report["from"].as_str().unwrap().contains("-01T00:00:00Z"), "a month starts on its first: {report}");
    assert_eq!(total(&report, "created"), 5);
    assert_eq!(total(&report, "completed"), 2);
    assert_eq!(intervals[intervals.len() - 1]["open"], 2, "{report}");
    assert_eq!(
        intervals[intervals.len() - 1]["statuses"],
        json!({"backlog": 0, "todo": 2, "in_progress": 0, "in_review": 0, "done": 2, "cancelled": 1}),
        "{report}"
    );
    assert_eq!(report["overdue"], 1);
    // Only task 0 went through in progress before done; its time there is short but measured.
    assert_eq!(report["cycle_time"]["count"], 1, "{report}");
    assert!(report["cycle_time"]["p50_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(report["cycle_time"]["p50_seconds"], report["cycle_time"]["p85_seconds"]);
    assert_eq!(
        report["by_assignee"],
        json!([
            {"assignee_id": null, "created": 4, "completed": 2, "open": 1, "overdue": 0},
            {"assignee_id": owner_id, "created": 1, "completed": 0, "open": 1, "overdue": 1},
        ]),
        "{report}"
    );
    assert_eq!(report["by_label"], json!([{"label": "bug", "created": 2, "completed": 0, "open": 2, "overdue": 1}]));

    // The same report as an SVG chart for a client that prefers it: both charts, every series.
    let chart = call(&app, &viewer.access, Method::GET, &path)
        .header("accept", "application/json;q=0.5, image/svg+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), StatusCode::OK);
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    assert_eq!(chart.headers()["vary"], "accept");
    let svg = chart.text().await.unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    assert!(doc.root_element().has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    let texts: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::trim).collect();
    for series in [
        "Cumulative flow by month",
        "Created and completed by month",
        "backlog",
        "todo",
        "in_progress",
        "in_review",
        "done",
        "cancelled",
        "created",
        "completed",
    ] {
        assert!(texts.contains(&series), "{series} in {texts:?}");
    }
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polygon")).count(), 6, "one area per status");
    let json_again =
        call(&app, &viewer.access, Method::GET, &path).header("accept", "application/json").send().await.unwrap();
    assert_eq!(json_again.headers()["content-type"], "application/json");
    assert_eq!(json_again.headers()["vary"], "accept");

    // A change shows at once, though the report was just computed (and cached) for this range.
    ok(
        call(&app, &owner.access, Method::PATCH, &format!("/tasks/{}", ids[3]))
            .json(&json!({"status": "done"}))
            .send()
            .await
            .unwrap(),
        "complete one more",
    )
    .await;
    let again = ok(call(&app, &viewer.access, Method::GET, &path).send().await.unwrap(), "the report again").await;
    assert_eq!(total(&again, "completed"), 3, "{again}");
    let last = &again["intervals"][again["intervals"].as_array().unwrap().len() - 1];
    assert_eq!((last["open"].as_u64(), last["statuses"]["done"].as_u64()), (Some(1), Some(3)), "{again}");

    // The default: twelve weeks up to now, by week, each from a Monday.
    let weekly = ok(
        call(&app, &owner.access, Method::GET, &format!("/projects/{project}/reports/flow")).send().await.unwrap(),
        "the default report",
    )
    .await;
    assert_eq!(weekly["interval"], "week");
    assert!((12..=13).contains(&weekly["intervals"].as_array().unwrap().len()), "{weekly}");
    let monday =
        time::OffsetDateTime::parse(weekly["from"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(monday.weekday(), time::Weekday::Monday);
    assert_eq!(total(&weekly, "created"), 5);

    // Someone who is no member does not learn the project exists.
    let hidden = call(&app, &outsider.access, Method::GET, &path).send().await.unwrap();
    assert_problem(hidden, StatusCode::NOT_FOUND).await;
    let hidden =
        call(&app, &outsider.access, Method::GET, &path).header("accept", "image/svg+xml").send().await.unwrap();
    assert_problem(hidden, StatusCode::NOT_FOUND).await;
    let nothing = call(&app, &owner.access, Method::GET, "/projects/not-a-project/reports/flow").send().await.unwrap();
    assert_problem(nothing, StatusCode::NOT_FOUND).await;

    // Parameters: an unknown interval or an unparseable time is a 400; an empty or too long range
    // a 422 naming the field.
    let base = format!("/projects/{project}/reports/flow");
    for (query, status, named) in [
        ("interval=year", StatusCode::BAD_REQUEST, "interval"),
        ("from=yesterday", StatusCode::BAD_REQUEST, "from"),
        ("from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", StatusCode::UNPROCESSABLE_ENTITY, "to"),
        ("interval=day&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", StatusCode::UNPROCESSABLE_ENTITY, "from"),
    ] {
        let response = call(&app, &owner.access, Method::GET, &format!("{base}?{query}")).send().await.unwrap();
        let problem = assert_problem(response, status).await;
        if status == StatusCode::BAD_REQUEST {
            assert!(problem["detail"].as_str().unwrap().starts_with(named), "{query}: {problem}");
        } else {
            let fields: Vec<&str> =
                problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
            assert_eq!(fields, [named], "{query}: {problem}");
        }
    }
    app.cleanup().await;
}
