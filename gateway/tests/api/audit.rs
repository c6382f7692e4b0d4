//! `/audit`: what reaches the audit log through the gateway (each event once, with who, what, where
//! from), who may read which records, the filters and pages, and the hash chain.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{PASSWORD, TestApp, assert_problem, spawn_app};

/// How long the records of a test may take to reach the log.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to keep watching after the expected records arrived, for a duplicate or a stray one.
const SETTLE: Duration = Duration::from_millis(500);

/// The address the services record for a client of the gateway on the loopback interface: the
/// gateway's peer address (`X-Forwarded-For` is not trusted by default).
const LOOPBACK: &str = "127.0.0.1";

/// A signed-in user.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    token: String,
}

/// The user agent a test sends for `step`, so each record can be traced to its request.
fn agent(step: &str) -> String {
    format!("ordo-audit-e2e/1.0 ({step})")
}

/// A request to `path` (under `/api/v1`) with the user agent of `step`.
fn call(app: &TestApp, method: Method, path: &str, step: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(&format!("/api/v1{path}"))).header("user-agent", agent(step))
}

/// Registers `<name>@example.com` and signs it in, each with its own user agent
/// (`register <name>`, `login <name>`). The first account of a test is a global admin.
async fn person(app: &TestApp, name: &str) -> Person {
    let email = format!("{name}@example.com");
    let response = call(app, Method::POST, "/auth/register", &format!("register {name}"))
        .json(&json!({"email": email, "password": PASSWORD, "display_name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let token = login(app, name).await["access_token"].as_str().unwrap().to_owned();
    Person { id, token }
}

/// Signs `<name>@example.com` in with the user agent `login <name>`; returns the token pair.
async fn login(app: &TestApp, name: &str) -> Value {
    let response = call(app, Method::POST, "/auth/login", &format!("login {name}"))
        .json(&json!({"email": format!("{name}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {name}");
    response.json().await.unwrap()
}

/// The session id (`sid`) of an access token.
fn session_id(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// `POST /projects` as `who`, failing the test unless it is created; returns the project id.
async fn create_project(app: &TestApp, who: &Person, key: &str) -> String {
    let response = call(app, Method::POST, "/projects", &format!("create {key}"))
        .bearer_auth(&who.token)
        .json(&json!({"name": format!("Project {key}"), "key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "create project {key}");
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// `POST /projects/{id}/members` as `who`, failing the test unless it is created.
async fn add_member(app: &TestApp, who: &Person, project: &str, user: &Person, role: &str) {
    let response = call(app, Method::POST, &format!("/projects/{project}/members"), &format!("add {role}"))
        .bearer_auth(&who.token)
        .json(&json!({"user_id": user.id, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "add {} as {role}", user.id);
}

/// `GET /audit/events?<query>` as `token`.
async fn events(app: &TestApp, token: &str, query: &[(&str, &str)]) -> reqwest::Response {
    app.client.get(app.url("/api/v1/audit/events")).query(query).bearer_auth(token).send().await.unwrap()
}

/// One page of `GET /audit/events?<query>` that must be served.
async fn page(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Value {
    let response = events(app, token, query).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    body
}

/// Every record matching `query`, page after page of `limit`, in the order served.
async fn all_records(app: &TestApp, token: &str, query: &[(&str, &str)], limit: &str) -> Vec<Value> {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = query.to_vec();
        params.push(("limit", limit));
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let body = page(app, token, &params).await;
        records.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return records,
        }
    }
}

/// Every record, once `count` have arrived (within [`ARRIVAL_TIMEOUT`]); fails if more arrive.
async fn wait_for_records(app: &TestApp, admin: &Person, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let records = all_records(app, &admin.token, &[], "100").await;
        if records.len() >= count {
            break;
        }
        assert!(started.elapsed() < ARRIVAL_TIMEOUT, "{} of {count} records arrived: {records:#?}", records.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let records = all_records(app, &admin.token, &[], "100").await;
    assert_eq!(records.len(), count, "{records:#?}");
    records
}

/// The records' `seq`s.
fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

/// The records' `action`s, sorted (events of different services may reach the log in either order).
fn sorted_actions(records: &[Value]) -> Vec<String> {
    let mut actions: Vec<String> = records.iter().map(|r| r["action"].as_str().unwrap().to_owned()).collect();
    actions.sort();
    actions
}

/// The one record with `action` and the user agent of `step`.
fn the_record<'a>(records: &'a [Value], action: &str, step: &str) -> &'a Value {
    let found: Vec<&Value> =
        records.iter().filter(|r| r["action"] == action && r["user_agent"] == agent(step).as_str()).collect();
    assert_eq!(found.len(), 1, "{action} from {step:?}: {records:#?}");
    found[0]
}

/// The `hash` of a served record, recomputed from its JSON with the canonical encoding documented on
/// `AuditRecord.hash` (`null` is the empty string; `data` is its compact JSON text).
fn recomputed_hash(record: &Value) -> String {
    let mut bytes = b"ordo-audit-v1".to_vec();
    bytes.extend_from_slice(&record["seq"].as_u64().unwrap().to_be_bytes());
    bytes.extend_from_slice(&hex::decode(record["prev_hash"].as_str().unwrap()).unwrap());
    bytes.extend_from_slice(uuid::Uuid::parse_str(record["id"].as_str().unwrap()).unwrap().as_bytes());
    let occurred_at = OffsetDateTime::parse(record["occurred_at"].as_str().unwrap(), &Rfc3339).unwrap();
    bytes.extend_from_slice(&i64::try_from(occurred_at.unix_timestamp_nanos() / 1_000).unwrap().to_be_bytes());
    let data = serde_json::to_string(&record["data"]).unwrap();
    let fields = ["action", "actor_id", "producer", "entity_type", "entity_id", "project_id", "ip", "user_agent"];
    let values = fields.iter().map(|field| record[*field].as_str().unwrap_or_default()).chain([data.as_str()]);
    for value in values {
        bytes.extend_from_slice(&u32::try_from(value.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(value.as_bytes());
    }
    hex::encode(Sha256::digest(&bytes))
}

/// Asserts what every full listing must show: `seq` 1, 2, 3, ... with no gap, each event once, and
/// an unbroken chain whose hashes a client can recompute.
fn assert_whole_chain(records: &[Value]) {
    assert_eq!(seqs(records), (1..=records.len() as u64).collect::<Vec<_>>(), "seq runs from 1 with no gap");
    let ids: HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "each event is recorded once");
    let mut prev_hash = "0".repeat(64);
    for record in records {
        assert_eq!(record["prev_hash"], prev_hash.as_str(), "{record}");
        assert_eq!(record["hash"], recomputed_hash(record).as_str(), "{record}");
        prev_hash = record["hash"].as_str().unwrap().to_owned();
    }
}

/// Asserts who did what to which entity, from where.
#[allow(clippy::too_many_arguments)]
fn assert_record(
    record: &Value,
    producer: &str,
    actor_id: Option<&str>,
    entity_type: &str,
    entity_id: Option<&str>,
    project_id: Option<&str>,
    step: &str,
) {
    assert_eq!(record["producer"], producer, "{record}");
    assert_eq!(record["actor_id"], json!(actor_id), "{record}");
    assert_eq!(record["entity_type"], entity_type, "{record}");
    assert_eq!(record["entity_id"], json!(entity_id), "{record}");
    assert_eq!(record["project_id"], json!(project_id), "{record}");
    assert_eq!(record["ip"], LOOPBACK, "{record}");
    assert_eq!(record["user_agent"], agent(step).as_str(), "{record}");
    assert!(uuid::Uuid::try_parse(record["id"].as_str().unwrap()).is_ok(), "{record}");
    assert!(OffsetDateTime::parse(record["occurred_at"].as_str().unwrap(), &Rfc3339).is_ok(), "{record}");
    assert!(record["data"].is_object(), "{record}");
}

#[tokio::test]
async fn each_security_and_project_event_is_recorded_once_with_its_actor_entity_ip_and_user_agent() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let alice_tokens = login(&app, "alice").await;
    let bob = person(&app, "bob").await;

    // Act
    let failed = call(&app, Method::POST, "/auth/login", "wrong password")
        .json(&json!({"email": "alice@example.com", "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let project = create_project(&app, &alice, "AUD").await;
    add_member(&app, &alice, &project, &bob, "member").await;
    let changed = call(&app, Method::PATCH, &format!("/projects/{project}/members/{}", bob.id), "change role")
        .bearer_auth(&alice.token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let spent = alice_tokens["refresh_token"].as_str().unwrap();
    let refreshed = call(&app, Method::POST, "/auth/refresh", "refresh").json(&json!({"refresh_token": spent}));
    assert_eq!(refreshed.send().await.unwrap().status(), StatusCode::OK);
    let reused = call(&app, Method::POST, "/auth/refresh", "reuse").json(&json!({"refresh_token": spent}));
    assert_eq!(reused.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Assert: 3 registrations, 4 logins (alice twice), the failed login, the project, the member and
    // the role change, and the reuse, which also ends the session. A successful refresh is no event.
    let records = wait_for_records(&app, &root, 13).await;
    assert_whole_chain(&records);
    assert_eq!(
        sorted_actions(&records),
        [
            "identity.login_failed",
            "identity.login_succeeded",
            "identity.login_succeeded",
            "identity.login_succeeded",
            "identity.login_succeeded",
            "identity.refresh_reuse_detected",
            "identity.session_revoked",
            "identity.user_registered",
            "identity.user_registered",
            "identity.user_registered",
            "project.created",
            "project.member_added",
            "project.member_role_changed",
        ]
    );

    let registered = the_record(&records, "identity.user_registered", "register root");
    assert_record(registered, "identity", Some(&root.id), "user", Some(&root.id), None, "register root");
    assert_eq!(
        registered["data"],
        json!({"user_registered": {"user_id": root.id, "email": "root@example.com", "display_name": "root", "role": "admin"}})
    );
    let registered = the_record(&records, "identity.user_registered", "register alice");
    assert_record(registered, "identity", Some(&alice.id), "user", Some(&alice.id), None, "register alice");
    assert_eq!(registered["data"]["user_registered"]["role"], "member");

    let root_session = session_id(&root.token);
    let logged_in = the_record(&records, "identity.login_succeeded", "login root");
    assert_record(logged_in, "identity", Some(&root.id), "session", Some(&root_session), None, "login root");
    assert_eq!(logged_in["data"], json!({"login_succeeded": {"user_id": root.id, "session_id": root_session}}));

    let login_failed = the_record(&records, "identity.login_failed", "wrong password");
    assert_record(login_failed, "identity", Some(&alice.id), "user", Some(&alice.id), None, "wrong password");
    assert_eq!(
        login_failed["data"],
        json!({"login_failed": {"email": "alice@example.com", "user_id": alice.id, "reason": "bad_credentials"}})
    );

    let created = the_record(&records, "project.created", "create AUD");
    assert_record(created, "project", Some(&alice.id), "project", Some(&project), Some(&project), "create AUD");
    assert_eq!(created["data"]["project_created"]["key"], "AUD");
    assert_eq!(created["data"]["project_created"]["created_by"], alice.id.as_str());

    let added = the_record(&records, "project.member_added", "add member");
    assert_record(added, "project", Some(&alice.id), "project_member", Some(&bob.id), Some(&project), "add member");
    assert_eq!(added["data"]["project_member_added"]["role"], "member");

    let role_changed = the_record(&records, "project.member_role_changed", "change role");
    assert_record(
        role_changed,
        "project",
        Some(&alice.id),
        "project_member",
        Some(&bob.id),
        Some(&project),
        "change role",
    );
    assert_eq!(role_changed["data"]["project_member_role_changed"]["old_role"], "member");
    assert_eq!(role_changed["data"]["project_member_role_changed"]["new_role"], "admin");

    let alice_session = session_id(alice_tokens["access_token"].as_str().unwrap());
    let reuse = the_record(&records, "identity.refresh_reuse_detected", "reuse");
    assert_record(reuse, "identity", Some(&alice.id), "session", Some(&alice_session), None, "reuse");
    let revoked = the_record(&records, "identity.session_revoked", "reuse");
    assert_record(revoked, "identity", Some(&alice.id), "session", Some(&alice_session), None, "reuse");
    assert_eq!(revoked["data"]["session_revoked"]["reason"], "refresh_reuse");
    assert!(records.iter().all(|r| r["user_agent"] != agent("refresh").as_str()), "a refresh is no event");
    app.cleanup().await;
}

#[tokio::test]
async fn admins_read_everything_project_managers_their_project_with_its_id_and_others_nothing() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let carol = person(&app, "carol").await;
    let project = create_project(&app, &alice, "MINE").await;
    let other = create_project(&app, &bob, "OTHER").await;
    add_member(&app, &alice, &project, &bob, "member").await;
    add_member(&app, &alice, &project, &carol, "admin").await;
    // 4 registrations, 4 logins, 2 projects, 2 members added.
    let everything = wait_for_records(&app, &root, 12).await;
    let nowhere = "0190b6a4-7c1e-7000-8000-0000000000ff";

    // Act
    let as_owner = all_records(&app, &alice.token, &[("project_id", &project)], "100").await;
    let as_project_admin = all_records(&app, &carol.token, &[("project_id", &project)], "100").await;
    let as_admin = all_records(&app, &root.token, &[("project_id", &project)], "100").await;

    // Assert: the project's records only, by seq.
    let expected = ["project.created", "project.member_added", "project.member_added"];
    assert_eq!(sorted_actions(&as_owner), expected);
    assert!(as_owner.iter().all(|r| r["project_id"] == project.as_str()), "{as_owner:#?}");
    assert!(seqs(&as_owner).windows(2).all(|w| w[0] < w[1]), "{as_owner:#?}");
    assert_eq!(as_project_admin, as_owner);
    assert_eq!(as_admin, as_owner);
    assert!(all_records(&app, &root.token, &[("project_id", nowhere)], "100").await.is_empty());

    // Assert: everyone else is refused, whether or not the project exists.
    let refused = [
        (&bob, vec![("project_id", project.as_str())]),
        (&alice, vec![]),
        (&alice, vec![("action", "project.created")]),
        (&alice, vec![("project_id", other.as_str())]),
        (&alice, vec![("project_id", nowhere)]),
        (&carol, vec![]),
    ];
    for (who, query) in &refused {
        let problem = assert_problem(events(&app, &who.token, query).await, StatusCode::FORBIDDEN).await;
        assert_eq!(problem["type"], "https://ordo.dev/problems/forbidden", "{query:?}");
    }

    // Assert: verifying is for admins.
    for who in [&alice, &bob, &carol] {
        let response = app.get_as(&who.token, "/api/v1/audit/verify").await;
        assert_problem(response, StatusCode::FORBIDDEN).await;
    }
    let verdict = app.get_as(&root.token, "/api/v1/audit/verify").await;
    assert_eq!(verdict.status(), StatusCode::OK);
    assert_eq!(
        verdict.json::<Value>().await.unwrap(),
        json!({"ok": true, "checked": everything.len(), "anchor": {"seq": 1, "prev_hash": "0".repeat(64)}, "next_cursor": null})
    );
    // In parts of 2: each part names where the next starts, and together they check every record once.
    let (mut checked, mut anchors, mut cursor) = (0, Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            None => "/api/v1/audit/verify?limit=2".to_owned(),
            Some(cursor) => format!("/api/v1/audit/verify?limit=2&cursor={cursor}"),
        };
        let part = app.get_as(&root.token, &path).await.json::<Value>().await.unwrap();
        assert_eq!(part["ok"], true, "{part}");
        checked += part["checked"].as_u64().unwrap();
        anchors.push(part["anchor"]["seq"].as_u64().unwrap());
        match part["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(checked, everything.len() as u64);
    assert_eq!(anchors, (0..everything.len() as u64).step_by(2).map(|n| n + 1).collect::<Vec<_>>());
    // Bad parts are refused before any record is read.
    for query in ["limit=0", "limit=200001", "limit=ten", "cursor=", "cursor=bm90LWEtY3Vyc29y"] {
        let response = app.get_as(&root.token, &format!("/api/v1/audit/verify?{query}")).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().contains(if query.starts_with("limit") {
            "limit"
        } else {
            "cursor"
        }));
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_task_created_and_updated_is_recorded_once_per_event_with_its_actor_entity_project_ip_and_user_agent() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let project = create_project(&app, &alice, "TSK").await;

    // Act: create a task, rename it, then move it to in_progress.
    let created = call(&app, Method::POST, "/tasks", "create task")
        .bearer_auth(&alice.token)
        .json(&json!({"project_id": project, "title": "Write the audit trail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let task = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let renamed = call(&app, Method::PATCH, &format!("/tasks/{task}"), "rename task")
        .bearer_auth(&alice.token)
        .header("if-match", "\"1\"")
        .json(&json!({"title": "Write the tamper-evident audit trail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    let started = call(&app, Method::PATCH, &format!("/tasks/{task}"), "start task")
        .bearer_auth(&alice.token)
        .json(&json!({"status": "in_progress"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);

    // Assert: 2 registrations, 2 logins, the project, then one record per task event (a status
    // change is a task.updated naming `status` and a task.status_changed).
    let records = wait_for_records(&app, &root, 9).await;
    assert_whole_chain(&records);
    let task_actions: Vec<String> =
        sorted_actions(&records).into_iter().filter(|action| action.starts_with("task.")).collect();
    assert_eq!(task_actions, ["task.created", "task.status_changed", "task.updated", "task.updated"]);

    let record = the_record(&records, "task.created", "create task");
    assert_record(record, "task", Some(&alice.id), "task", Some(&task), Some(&project), "create task");
    assert_eq!(record["data"]["task_created"]["task"]["key"], "TSK-1");
    let record = the_record(&records, "task.updated", "rename task");
    assert_record(record, "task", Some(&alice.id), "task", Some(&task), Some(&project), "rename task");
    assert_eq!(record["data"]["task_updated"]["changed_fields"], json!(["title"]));
    assert_eq!(record["data"]["task_updated"]["task"]["title"], "Write the tamper-evident audit trail");
    let record = the_record(&records, "task.status_changed", "start task");
    assert_record(record, "task", Some(&alice.id), "task", Some(&task), Some(&project), "start task");
    assert_eq!(record["data"]["task_status_changed"]["old_status"], "todo");
    assert_eq!(record["data"]["task_status_changed"]["new_status"], "in_progress");
    app.cleanup().await;
}

#[tokio::test]
async fn filters_narrow_the_records_and_pages_of_two_serve_each_record_once_by_seq() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let alice = person(&app, "alice").await;
    let failed = call(&app, Method::POST, "/auth/login", "wrong password")
        .json(&json!({"email": "alice@example.com", "password": "not the password at all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let project = create_project(&app, &alice, "FLT").await;
    // 2 registrations, 2 logins, the failed login, the project.
    let everything = wait_for_records(&app, &root, 6).await;

    // Act + Assert: exact-match filters.
    let failures = all_records(&app, &root.token, &[("action", "identity.login_failed")], "100").await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["user_agent"], agent("wrong password").as_str());

    let by_alice = all_records(&app, &root.token, &[("actor_id", &alice.id)], "100").await;
    assert_eq!(
        sorted_actions(&by_alice),
        ["identity.login_failed", "identity.login_succeeded", "identity.user_registered", "project.created"]
    );
    let upper = alice.id.to_uppercase();
    assert_eq!(all_records(&app, &root.token, &[("actor_id", &upper)], "100").await, by_alice, "any UUID case");

    let about_project = all_records(&app, &root.token, &[("entity_type", "project")], "100").await;
    assert_eq!(about_project.len(), 1);
    assert_eq!(about_project[0]["entity_id"], project.as_str());
    let by_entity = all_records(&app, &root.token, &[("entity_id", &project)], "100").await;
    assert_eq!(by_entity, about_project);
    let combined = [("actor_id", alice.id.as_str()), ("entity_type", "user"), ("action", "identity.login_failed")];
    assert_eq!(all_records(&app, &root.token, &combined, "100").await, failures, "all filters apply together");
    let nobody = [("actor_id", root.id.as_str()), ("action", "project.created")];
    assert!(all_records(&app, &root.token, &nobody, "100").await.is_empty());

    // Act + Assert: `from` is inclusive and `to` exclusive, in any offset.
    let times: Vec<OffsetDateTime> = everything
        .iter()
        .map(|r| OffsetDateTime::parse(r["occurred_at"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    // Events of different services may reach the log out of time order: pick bounds by time, not seq.
    let mut sorted = times.clone();
    sorted.sort();
    let middle = sorted[sorted.len() / 2];
    let at_or_after: Vec<Value> =
        everything.iter().zip(&times).filter(|(_, t)| **t >= middle).map(|(r, _)| r.clone()).collect();
    let before: Vec<Value> =
        everything.iter().zip(&times).filter(|(_, t)| **t < middle).map(|(r, _)| r.clone()).collect();
    assert!(!at_or_after.is_empty() && !before.is_empty());
    let middle_utc = middle.format(&Rfc3339).unwrap();
    let middle_offset = middle.to_offset(time::macros::offset!(+02:00)).format(&Rfc3339).unwrap();
    assert!(middle_offset.ends_with("+02:00"), "{middle_offset}");
    for text in [&middle_utc, &middle_offset] {
        assert_eq!(all_records(&app, &root.token, &[("from", text)], "100").await, at_or_after, "from={text}");
        assert_eq!(all_records(&app, &root.token, &[("to", text)], "100").await, before, "to={text}");
        assert!(all_records(&app, &root.token, &[("from", text), ("to", text)], "100").await.is_empty());
    }
    let first = sorted[0].format(&Rfc3339).unwrap();
    let after_last = (sorted[sorted.len() - 1] + Duration::from_micros(1)).format(&Rfc3339).unwrap();
    assert_eq!(all_records(&app, &root.token, &[("from", &first), ("to", &after_last)], "100").await, everything);

    // Act + Assert: pages of two, each record once, by seq; unknown parameters are ignored.
    let mut served = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2"), ("unknown", "ignored")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let body = page(&app, &root.token, &query).await;
        let items = body["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 2, "{body}");
        served.extend(items.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(served, everything);
    assert_eq!(seqs(&served), (1..=6).collect::<Vec<_>>());
    app.cleanup().await;
}

#[tokio::test]
async fn bad_parameter_values_are_400_naming_the_parameter() {
    // Arrange
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let long = "a".repeat(101);
    let cases: [(&[(&str, &str)], &str); 14] = [
        (&[("cursor", "not-a-cursor")], "cursor"),
        (&[("cursor", "AAAA")], "cursor"),
        (&[("from", "yesterday")], "from"),
        (&[("from", "2026-01-31")], "from"),
        (&[("to", "2026-01-31T09:30:00")], "to"),
        // `+02:00` without encoding the `+`: a space.
        (&[("to", "2026-01-31T09:30:00 02:00")], "to"),
        (&[("actor_id", "alice")], "actor_id"),
        (&[("project_id", "42")], "project_id"),
        (&[("action", "")], "action"),
        (&[("entity_id", "")], "entity_id"),
        (&[("limit", "0")], "limit"),
        (&[("limit", "101")], "limit"),
        // Longer than any recorded value: refused by the service, a bad value here too.
        (&[("action", long.as_str())], "action"),
        (&[("entity_type", long.as_str())], "entity_type"),
    ];

    for (query, parameter) in cases {
        // Act
        let response = events(&app, &root.token, query).await;

        // Assert
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().starts_with(parameter), "{query:?}: {problem}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_filter_with_characters_no_record_holds_matches_nothing() {
    // Arrange: the log's text columns are ASCII.
    let app = spawn_app().await;
    let root = person(&app, "root").await;
    let queries: [&[(&str, &str)]; 3] = [
        &[("action", "identity.user_registeréd")],
        &[("entity_type", "user\u{1F600}")],
        &[("entity_id", "\u{0C}\u{F3979}\u{7F}"), ("entity_type", "session")],
    ];

    for query in queries {
        // Act
        let response = events(&app, &root.token, query).await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK, "{query:?}");
        let page: Value = response.json().await.unwrap();
        assert_eq!(page["items"], json!([]), "{query:?}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn without_a_token_the_audit_routes_are_401() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/api/v1/audit/events", "/api/v1/audit/verify"] {
        // Act
        let response = app.client.get(app.url(path)).send().await.unwrap();

        // Assert
        assert_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn while_audit_is_down_readyz_names_it_and_its_routes_answer_503() {
    // Arrange
    let mut app = spawn_app().await;
    let root = person(&app, "root").await;

    // Act
    app.stop_audit().await;
    let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
    let listing = events(&app, &root.token, &[]).await;

    // Assert
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(readyz.json::<Value>().await.unwrap()["failing"], json!(["audit"]));
    assert_eq!(listing.headers()["retry-after"], "1");
    assert_problem(listing, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(app.me(&root.token).await.status(), StatusCode::OK, "the rest of the API is served");
    app.cleanup().await;
}
