//! `/notifications` through the gateway with every service running: an assignment reaches the
//! assignee's list, badge and mailbox (never the actor's), the caller reads, archives and deletes only
//! their own, and preferences round-trip with unknown kinds refused; the live stream (Server-Sent
//! Events) delivers notifications, resumes after the last event id, and tells a job's progress and
//! end to its requester alone.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use ordo_harness::Service;

use crate::helpers::{Options, TestApp, assert_problem, spawn_app, spawn_app_with};

/// `method path` (under `/api/v1`) as the holder of `token`, with an optional JSON body.
async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `GET /notifications<query>` as `token`, once it lists `count` notifications.
async fn list_once(app: &TestApp, token: &str, query: &str, count: usize) -> Value {
    for _ in 0..100 {
        let response = send(app, token, reqwest::Method::GET, &format!("/notifications{query}"), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        if body["items"].as_array().unwrap().len() >= count {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} notifications arrived");
}

#[tokio::test]
async fn an_assignment_reaches_the_assignee_who_alone_reads_archives_and_deletes_it() {
    // Arrange: Ann owns a project with Bob as a member (addresses of this test's own: the mail
    // stand-in is shared).
    let app = spawn_app().await;
    let (ann_address, bob_address) =
        (format!("ann-{}@example.com", app.env.id), format!("bob-{}@example.com", app.env.id));
    let (_, ann) = app.user(&ann_address, "Ann").await;
    let (bob_id, bob) = app.user(&bob_address, "Bob").await;
    let post = reqwest::Method::POST;
    let project =
        send(&app, &ann.access, post.clone(), "/projects", Some(json!({"name": "Notes", "key": "NTE"}))).await;
    assert_eq!(project.status(), StatusCode::CREATED);
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": bob_id, "role": "member"});
    let added = send(&app, &ann.access, post.clone(), &format!("/projects/{project}/members"), Some(member)).await;
    assert_eq!(added.status(), StatusCode::CREATED);

    // Act: Ann assigns Bob a task.
    let task = json!({"project_id": project, "title": "Write the release notes", "assignee_ids": [bob_id]});
    let created = send(&app, &ann.access, post.clone(), "/tasks", Some(task)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let task: Value = created.json().await.unwrap();

    // Assert: Bob's list, newest first, with his counts; Ann's is empty.
    let list = list_once(&app, &bob.access, "", 2).await;
    let newest = &list["items"][0];
    assert_eq!(newest["kind"], "task.assigned");
    assert_eq!(newest["title"], "NTE-1 was assigned to you");
    assert_eq!(newest["body"], "Write the release notes");
    assert_eq!(newest["task_id"], task["id"]);
    assert_eq!(newest["task_key"], "NTE-1");
    assert_eq!(newest["project_id"], project.as_str());
    assert_eq!(newest["read_at"], Value::Null);
    assert_eq!(list["items"][1]["kind"], "project.member_added");
    assert_eq!(list["items"][1]["task_id"], Value::Null);
    assert_eq!((list["unread_count"].as_i64(), list["unseen_count"].as_i64()), (Some(2), Some(2)));
    assert_eq!(list["next_cursor"], Value::Null);
    let ann_list = send(&app, &ann.access, reqwest::Method::GET, "/notifications", None).await;
    assert_eq!(ann_list.json::<Value>().await.unwrap()["items"], json!([]));

    // Bob got one mail of each (its window is a second in tests); Ann none.
    let mut subjects = Vec::new();
    for _ in 0..100 {
        subjects = ordo_testkit::sent_mails(&bob_address).await.unwrap().into_iter().map(|m| m.subject).collect();
        if subjects.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut mails: Vec<String> =
        ordo_testkit::sent_mails(&bob_address).await.unwrap().into_iter().map(|m| m.subject).collect();
    mails.sort_unstable();
    assert_eq!(mails, ["NTE-1 was assigned to you", "You were added to Notes"], "{subjects:?}");
    assert!(ordo_testkit::sent_mails(&ann_address).await.unwrap().is_empty());

    // Ann cannot touch Bob's notification: it does not exist for her.
    let id = newest["id"].as_str().unwrap().to_owned();
    for path in [format!("/notifications/{id}/read"), format!("/notifications/{id}/archive")] {
        assert_problem(send(&app, &ann.access, post.clone(), &path, None).await, StatusCode::NOT_FOUND).await;
    }
    let delete = reqwest::Method::DELETE;
    let refused = send(&app, &ann.access, delete.clone(), &format!("/notifications/{id}"), None).await;
    assert_problem(refused, StatusCode::NOT_FOUND).await;

    // Bob opens the bell, reads one, archives it, then deletes it.
    let seen = send(&app, &bob.access, post.clone(), "/notifications/seen", None).await;
    assert_eq!(seen.status(), StatusCode::NO_CONTENT);
    let read = send(&app, &bob.access, post.clone(), &format!("/notifications/{id}/read"), None).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let after = list_once(&app, &bob.access, "?unread_only=true", 1).await;
    assert_eq!(after["items"].as_array().unwrap().len(), 1);
    assert_eq!((after["unread_count"].as_i64(), after["unseen_count"].as_i64()), (Some(1), Some(0)));
    let archived = send(&app, &bob.access, post.clone(), &format!("/notifications/{id}/archive"), None).await;
    assert_eq!(archived.status(), StatusCode::NO_CONTENT);
    let archive = list_once(&app, &bob.access, "?archived=true", 1).await;
    assert_eq!(archive["items"][0]["id"], id.as_str());
    assert!(archive["items"][0]["archived_at"].is_string());
    let deleted = send(&app, &bob.access, delete.clone(), &format!("/notifications/{id}"), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = send(&app, &bob.access, delete, &format!("/notifications/{id}"), None).await;
    assert_problem(again, StatusCode::NOT_FOUND).await;
    app.cleanup().await;
}

#[tokio::test]
async fn preferences_list_every_kind_keep_what_is_not_named_and_refuse_unknown_kinds() {
    let app = spawn_app().await;
    let (_, bob) = app.user("bob@example.com", "Bob").await;
    let put = reqwest::Method::PUT;

    let defaults = send(&app, &bob.access, reqwest::Method::GET, "/notifications/preferences", None).await;
    assert_eq!(defaults.status(), StatusCode::OK);
    let defaults: Value = defaults.json().await.unwrap();
    assert_eq!(defaults["in_app"].as_object().unwrap().len(), 11);
    assert!(defaults["email"].as_object().unwrap().values().all(|on| on == &json!(true)));

    let change = json!({"email": {"task.commented": false}});
    let changed = send(&app, &bob.access, put.clone(), "/notifications/preferences", Some(change)).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["email"]["task.commented"], false);
    assert_eq!(changed["in_app"]["task.commented"], true);
    assert_eq!(changed["email"]["task.assigned"], true);

    let unknown = json!({"in_app": {"task.exploded": false}});
    let refused = send(&app, &bob.access, put, "/notifications/preferences", Some(unknown)).await;
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem.to_string().contains("in_app.task.exploded"), "{problem}");
    let kept = send(&app, &bob.access, reqwest::Method::GET, "/notifications/preferences", None).await;
    assert_eq!(kept.json::<Value>().await.unwrap(), changed, "a refused update changes nothing");
    app.cleanup().await;
}

/// One Server-Sent Event: its `event:`, `id:` and `data:` fields (empty when absent).
#[derive(Debug, Default, Clone)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
}

/// Reads the events of an open `text/event-stream` response as they arrive (comments skipped).
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self { response, buffer: String::new() }
    }

    /// The next event with an `event:` field, within a few seconds.
    async fn next(&mut self) -> SseEvent {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                for line in block.lines() {
                    if let Some((field, value)) = line.split_once(": ") {
                        match field {
                            "event" => event.event = value.to_owned(),
                            "id" => event.id = value.to_owned(),
                            "data" => event.data.push_str(value),
                            _ => {}
                        }
                    }
                }
                if !event.event.is_empty() {
                    return event;
                }
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await.unwrap().unwrap().unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `notification` event (counts skipped).
    async fn next_notification(&mut self) -> (String, Value) {
        loop {
            let event = self.next().await;
            if event.event == "notification" {
                return (event.id, serde_json::from_str(&event.data).unwrap());
            }
        }
    }
}

/// Opens `GET /notifications/stream` as `token`, with `Last-Event-ID` if given.
async fn open_stream(app: &TestApp, token: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/api/v1/notifications/stream")).bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    // The test's client times whole requests out; a stream is read as long as the test needs.
    request.timeout(Duration::from_secs(120)).send().await.unwrap()
}

#[tokio::test]
async fn the_stream_delivers_notifications_as_server_sent_events_and_resumes_after_the_last_event_id() {
    // Arrange: Ann owns a project with Bob; Bob's stream is open.
    let app = spawn_app().await;
    let (_, ann) = app.user("ann@example.com", "Ann").await;
    let (bob_id, bob) = app.user("bob@example.com", "Bob").await;
    let post = reqwest::Method::POST;
    let project = send(&app, &ann.access, post.clone(), "/projects", Some(json!({"name": "Live", "key": "LIV"}))).await;
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": bob_id, "role": "member"});
    send(&app, &ann.access, post.clone(), &format!("/projects/{project}/members"), Some(member)).await;
    list_once(&app, &bob.access, "", 1).await;
    let response = open_stream(&app, &bob.access, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut stream = SseReader::new(response);
    let counts = stream.next().await;
    assert_eq!(counts.event, "counts");
    assert_eq!(serde_json::from_str::<Value>(&counts.data).unwrap(), json!({"unread_count": 1, "unseen_count": 1}));

    // Act: Ann assigns Bob a task.
    let task = json!({"project_id": project, "title": "Ship it", "assignee_ids": [bob_id]});
    send(&app, &ann.access, post.clone(), "/tasks", Some(task)).await;

    // Assert: the notification arrives live, its id as the event id.
    let (id, first) = stream.next_notification().await;
    assert_eq!(first["title"], "LIV-1 was assigned to you");
    assert_eq!(first["id"], id.as_str());
    drop(stream);

    // Reconnecting after the first with two missed meanwhile gives exactly those two, in order.
    for title in ["Second", "Third"] {
        let task = json!({"project_id": project, "title": title, "assignee_ids": [bob_id]});
        send(&app, &ann.access, post.clone(), "/tasks", Some(task)).await;
    }
    list_once(&app, &bob.access, "", 4).await;
    let mut resumed = SseReader::new(open_stream(&app, &bob.access, Some(&id)).await);
    assert_eq!(resumed.next_notification().await.1["title"], "LIV-2 was assigned to you");
    assert_eq!(resumed.next_notification().await.1["title"], "LIV-3 was assigned to you");

    // A Last-Event-ID that is not an id at all is refused; the anonymous are refused.
    let too_long = "x".repeat(65);
    assert_problem(open_stream(&app, &bob.access, Some(&too_long)).await, StatusCode::BAD_REQUEST).await;
    let anonymous = app.client.get(app.url("/api/v1/notifications/stream")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Stopping the stack with a stream still open ends it: the gateway and the service drain.
    app.cleanup().await;
    drop(resumed);
}

#[tokio::test]
async fn a_job_tells_its_progress_and_its_end_on_its_requesters_stream_alone() {
    // Arrange: Ann owns a project of three tasks with Bob; both streams are open.
    let app = spawn_app().await;
    let (_, ann) = app.user("ann@example.com", "Ann").await;
    let (bob_id, bob) = app.user("bob@example.com", "Bob").await;
    let post = reqwest::Method::POST;
    let project = send(&app, &ann.access, post.clone(), "/projects", Some(json!({"name": "Jobs", "key": "JOB"}))).await;
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": bob_id, "role": "member"});
    send(&app, &ann.access, post.clone(), &format!("/projects/{project}/members"), Some(member)).await;
    for title in ["One", "Two", "Three"] {
        let task = json!({"project_id": project, "title": title});
        assert_eq!(send(&app, &ann.access, post.clone(), "/tasks", Some(task)).await.status(), StatusCode::CREATED);
    }
    list_once(&app, &bob.access, "", 1).await;
    let mut ann_stream = SseReader::new(open_stream(&app, &ann.access, None).await);
    assert_eq!(ann_stream.next().await.event, "counts");
    let mut bob_stream = SseReader::new(open_stream(&app, &bob.access, None).await);
    assert_eq!(bob_stream.next().await.event, "counts");

    // Act: Ann exports the project.
    let path = format!("/projects/{project}/exports");
    let job = send(&app, &ann.access, post.clone(), &path, Some(json!({"format": "json"}))).await;
    assert_eq!(job.status(), StatusCode::ACCEPTED);
    let job: Value = job.json().await.unwrap();

    // Assert: Ann's stream tells how far the job got, up to all three rows, and that it ended (the
    // two reach the stream by ways of their own, in either order).
    let mut progress: Vec<Value> = Vec::new();
    let mut ended = None;
    while ended.is_none() || progress.last().is_none_or(|p| p["rows_done"] != 3) {
        let event = ann_stream.next().await;
        match event.event.as_str() {
            "job" => progress.push(serde_json::from_str(&event.data).unwrap()),
            "notification" => ended = Some(serde_json::from_str::<Value>(&event.data).unwrap()),
            _ => {}
        }
    }
    let ended = ended.unwrap();
    assert_eq!(
        progress.last().unwrap(),
        &json!({"job_id": job["id"], "project_id": project, "kind": "export", "rows_done": 3, "rows_total": 3})
    );
    assert!(progress.windows(2).all(|w| w[0]["rows_done"].as_u64() <= w[1]["rows_done"].as_u64()), "{progress:?}");
    assert_eq!((&ended["kind"], &ended["title"]), (&json!("job.ended"), &json!("Your export is ready")));
    assert_eq!(ended["body"], "3 tasks exported; open the job to download the file.");
    // Bob's stream heard nothing of Ann's job: the next event it gets is his own assignment.
    let task = json!({"project_id": project, "title": "For Bob", "assignee_ids": [bob_id]});
    send(&app, &ann.access, post, "/tasks", Some(task)).await;
    let next = loop {
        let event = bob_stream.next().await;
        assert_ne!(event.event, "job", "{}", event.data);
        if event.event == "notification" {
            break serde_json::from_str::<Value>(&event.data).unwrap();
        }
    };
    assert_eq!(next["title"], "JOB-4 was assigned to you");
    drop((ann_stream, bob_stream));
    app.cleanup().await;
}

/// Established TCP connections (of any process on this host) to `port` on loopback, from
/// `/proc/net/tcp` and `/proc/net/tcp6`: the client ends of connections to a server on that port.
fn connections_to(port: u16) -> usize {
    let remote_port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            // `sl local_address rem_address st ...`; state 01 is ESTABLISHED.
            fields.len() > 3 && fields[2].ends_with(&remote_port) && fields[3] == "01"
        })
        .count()
}

#[tokio::test]
async fn live_streams_ride_connections_of_their_own_which_close_when_their_streams_end() {
    // Arrange: two streams per connection to the notification service; Bob watches a project of Ann's.
    let options = Options { gateway_args: vec!["--live-streams-per-connection=2".to_owned()], ..Options::default() };
    let app = spawn_app_with(options).await;
    let notification_port = app.addr_of(Service::Notification).port();
    let (_, ann) = app.user(&format!("ann-{}@example.com", app.env.id), "Ann").await;
    let (bob_id, bob) = app.user(&format!("bob-{}@example.com", app.env.id), "Bob").await;
    let post = reqwest::Method::POST;
    let project =
        send(&app, &ann.access, post.clone(), "/projects", Some(json!({"name": "Wires", "key": "WIR"}))).await;
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": bob_id, "role": "member"});
    send(&app, &ann.access, post.clone(), &format!("/projects/{project}/members"), Some(member)).await;
    list_once(&app, &bob.access, "", 1).await;
    let before = connections_to(notification_port);

    // Act: Bob opens five streams (the most one user may), then Ann assigns him a task.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let response = open_stream(&app, &bob.access, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = SseReader::new(response);
        assert_eq!(stream.next().await.event, "counts");
        streams.push(stream);
    }
    let during = connections_to(notification_port);
    let task = json!({"project_id": project, "title": "Wire it", "assignee_ids": [bob_id]});
    send(&app, &ann.access, post, "/tasks", Some(task)).await;

    // Assert: three connections carry the five streams, and every stream gets the notification;
    // once the streams end, all but one of those connections close.
    assert_eq!(during - before, 3, "five streams at two per connection");
    for stream in &mut streams {
        assert_eq!(stream.next_notification().await.1["title"], "WIR-1 was assigned to you");
    }
    drop(streams);
    let mut after = connections_to(notification_port);
    for _ in 0..100 {
        if after == before + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = connections_to(notification_port);
    }
    assert_eq!(after, before + 1, "one connection for live streams is kept, the others close");
    app.cleanup().await;
}
