//! The authorisation matrix (OWASP API1 BOLA, API5 BFLA): every REST operation sent as every kind of
//! caller, each answer compared with the status `authz_matrix.tsv` says the contract requires. One stack
//! serves the whole matrix; a cell that changes something acts on a resource made for it alone, so cells
//! cannot change each other's answers and run a few at a time. Every mismatch is collected and reported
//! together, and an operation of the served OpenAPI document without a row fails the test.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, TestApp, Tokens, spawn_app_with};

/// The table: what each caller must get from each request.
const TABLE: &str = include_str!("authz_matrix.tsv");

/// How many cells are in flight at once.
const CONCURRENCY: usize = 8;

/// The VAPID private key of the matrix's notification service (base64url of a P-256 scalar, made for
/// these tests alone), so that push is on and the push rows meet the key and subscriptions, not the
/// `409` of a deployment without push.
const VAPID_PRIVATE_KEY: &str = "huM8zMvY4aY5jtiQoyL-227hAzjTqewk2NYKVghvosY";

/// The callers, one column each, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Actor {
    Owner,
    Admin,
    Member,
    Viewer,
    Author,
    OtherProject,
    Outsider,
    Disabled,
    DemotedOldToken,
    DemotedAdmin,
    GlobalAdmin,
    Anonymous,
}

impl Actor {
    const ALL: [Actor; 12] = [
        Actor::Owner,
        Actor::Admin,
        Actor::Member,
        Actor::Viewer,
        Actor::Author,
        Actor::OtherProject,
        Actor::Outsider,
        Actor::Disabled,
        Actor::DemotedOldToken,
        Actor::DemotedAdmin,
        Actor::GlobalAdmin,
        Actor::Anonymous,
    ];

    /// Its column's name in the table.
    fn column(self) -> &'static str {
        match self {
            Actor::Owner => "owner",
            Actor::Admin => "admin",
            Actor::Member => "member",
            Actor::Viewer => "viewer",
            Actor::Author => "author",
            Actor::OtherProject => "other_project",
            Actor::Outsider => "outsider",
            Actor::Disabled => "disabled",
            Actor::DemotedOldToken => "demoted_old_token",
            Actor::DemotedAdmin => "demoted_admin",
            Actor::GlobalAdmin => "global_admin",
            Actor::Anonymous => "anonymous",
        }
    }
}

/// Which token a cell sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The caller's access token.
    Bearer,
    /// None at all.
    None,
    /// A session of the caller's own, made for the cell (its only token where it cannot sign in).
    Session,
}

/// What a cell's expected status is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The response's status.
    Status,
    /// For a `200` bulk answer, the status reported for its one task (`200` when updated).
    BulkItem,
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    label: String,
    method: Method,
    /// The operation's path as the OpenAPI document names it.
    route: String,
    expected: Vec<(Actor, u16)>,
    auth: Auth,
    outcome: Outcome,
    /// The path sent, with placeholders.
    request: String,
    /// `None`, a JSON text with placeholders, or `multipart`.
    body: Option<String>,
}

const FIXED_COLUMNS: [&str; 3] = ["label", "method", "route"];
const TRAILING_COLUMNS: [&str; 4] = ["auth", "outcome", "request", "body"];

/// Reads the table, failing on any line that does not fit its header.
fn parse_table(text: &str) -> Vec<Row> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#'));
    let header: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    let expected_header: Vec<&str> =
        FIXED_COLUMNS.into_iter().chain(Actor::ALL.map(Actor::column)).chain(TRAILING_COLUMNS).collect();
    assert_eq!(header, expected_header, "the table's header");
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), header.len(), "a line with {} cells: {line}", cells.len());
            let label = cells[0].to_owned();
            let statuses = &cells[FIXED_COLUMNS.len()..FIXED_COLUMNS.len() + Actor::ALL.len()];
            let expected = Actor::ALL
                .into_iter()
                .zip(statuses)
                .map(|(actor, status)| {
                    let status: u16 = status.parse().unwrap_or_else(|_| panic!("{label}: status {status:?}"));
                    assert!(StatusCode::from_u16(status).is_ok(), "{label}: status {status}");
                    (actor, status)
                })
                .collect();
            let [auth, outcome, request, body] = cells[cells.len() - TRAILING_COLUMNS.len()..] else {
                unreachable!("the length is checked above")
            };
            let route = cells[2].to_owned();
            Row {
                method: cells[1].parse().unwrap_or_else(|_| panic!("{label}: method {:?}", cells[1])),
                expected,
                auth: match auth {
                    "bearer" => Auth::Bearer,
                    "none" => Auth::None,
                    "session" => Auth::Session,
                    other => panic!("{label}: auth {other:?}"),
                },
                outcome: match outcome {
                    "status" => Outcome::Status,
                    "bulk_item" => Outcome::BulkItem,
                    other => panic!("{label}: outcome {other:?}"),
                },
                request: if request == "-" { route.clone() } else { request.to_owned() },
                body: (body != "-").then(|| body.to_owned()),
                route,
                label,
            }
        })
        .collect()
}

/// Whether `request` (with placeholders, maybe a query) is a path of the OpenAPI `route` template.
fn fits_route(request: &str, route: &str) -> bool {
    let path = request.split_once('?').map_or(request, |(path, _)| path);
    let sent: Vec<&str> = path.split('/').collect();
    let template: Vec<&str> = route.split('/').collect();
    sent.len() == template.len()
        && sent.iter().zip(&template).all(|(sent, template)| {
            let is_parameter = template.starts_with('{') && template.ends_with('}');
            if is_parameter { !sent.is_empty() } else { sent == template }
        })
}

/// Every `(METHOD, path)` the served OpenAPI document lists.
fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];
    let paths = document["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .into_iter()
                .filter(|method| item.get(*method).is_some())
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The `{name}` placeholders of `text`, in order (JSON braces are not placeholders).
fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        rest = &rest[start + 1..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !name.is_empty() && rest[name.len()..].starts_with('}') {
            found.push(name);
        }
    }
    found
}

/// A `multipart/form-data` body with one small `file` part: its content type and bytes.
fn multipart_file() -> (String, Vec<u8>) {
    let boundary = "matrix-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

/// An account of the matrix.
#[derive(Debug, Clone)]
struct Account {
    id: String,
    email: String,
    /// The tokens it acts with.
    tokens: Tokens,
    /// Its tokens are all it has: it cannot sign in again (disabled), or the column is about these
    /// very tokens (a demoted admin's old ones).
    stale: bool,
}

/// The stack, the cast and project A's shared resources.
struct World {
    app: TestApp,
    accounts: HashMap<Actor, Account>,
    project: String,
    task: String,
    task_key: String,
    attachment: String,
    project_b: String,
    task_b: String,
    /// A's shared webhook (made by the owner), and the delivery of a ping to it.
    webhook: String,
    delivery: String,
    /// B's webhook (made by other_project).
    webhook_b: String,
    /// A's export job (asked for by the owner).
    job: String,
    next: AtomicU32,
}

/// A response's status and body, failing the test (setup, not a cell) unless it is `status`.
async fn expect(response: reqwest::Response, status: StatusCode, what: &str) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_owned()
}

impl World {
    fn account(&self, actor: Actor) -> Option<&Account> {
        self.accounts.get(&actor)
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.app.client.request(method, self.app.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A JSON request as `actor`, failing the test unless it answers `status`.
    async fn send_as(&self, actor: Actor, method: Method, path: &str, body: Value, status: StatusCode) -> Value {
        let token = &self.account(actor).expect("an account").tokens.access;
        let response = self.request(method.clone(), path, Some(token)).json(&body).send().await.unwrap();
        expect(response, status, &format!("{method} {path} as {actor:?}")).await
    }

    /// A new value for a project key or an email's local part.
    fn unique(&self) -> String {
        format!("U{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// A new account (a plain member of no project); its id.
    async fn new_user(&self) -> String {
        let email = format!("{}@example.com", self.unique()).to_lowercase();
        self.app.register_user(&email, "Fresh").await
    }

    async fn add_member(&self, project: &str, user: &str, role: &str) {
        let path = format!("/api/v1/projects/{project}/members");
        self.send_as(Actor::Owner, Method::POST, &path, json!({"user_id": user, "role": role}), StatusCode::CREATED)
            .await;
    }

    /// A new project of the owner with project A's admin, member, viewer and author, archived if asked.
    async fn new_project(&self, archived: bool) -> String {
        let key = self.unique();
        let body = json!({"name": format!("Project {key}"), "key": key});
        let project =
            id_of(&self.send_as(Actor::Owner, Method::POST, "/api/v1/projects", body, StatusCode::CREATED).await);
        for (actor, role) in
            [(Actor::Admin, "admin"), (Actor::Member, "member"), (Actor::Viewer, "viewer"), (Actor::Author, "member")]
        {
            let user = self.account(actor).expect("a project member").id.clone();
            self.add_member(&project, &user, role).await;
        }
        if archived {
            let path = format!("/api/v1/projects/{project}/archive");
            self.send_as(Actor::Owner, Method::POST, &path, Value::Null, StatusCode::OK).await;
        }
        project
    }

    /// A new task of project A, by the author.
    async fn new_task(&self) -> Value {
        self.new_task_in(&self.project, Actor::Author).await
    }

    /// A new task of `project`, by `actor`.
    async fn new_task_in(&self, project: &str, actor: Actor) -> Value {
        let body = json!({"project_id": project, "title": format!("Task {}", self.unique())});
        self.send_as(actor, Method::POST, "/api/v1/tasks", body, StatusCode::CREATED).await
    }

    /// A new attachment of A's shared task, by the author; its id.
    async fn new_attachment(&self) -> String {
        let (content_type, bytes) = multipart_file();
        let token = &self.account(Actor::Author).expect("the author").tokens.access;
        let path = format!("/api/v1/tasks/{}/attachments", self.task);
        let response = self
            .request(Method::POST, &path, Some(token))
            .header("Content-Type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        id_of(&expect(response, StatusCode::CREATED, "upload an attachment").await)
    }

    /// A new webhook of `project`, by `actor`; its id. Its URL is on loopback (the harness lets the
    /// notification service send there) where nothing listens, and it asks for an event the matrix
    /// never causes in A, so its only deliveries are the pings and redeliveries of the rows.
    async fn new_webhook(&self, project: &str, actor: Actor) -> String {
        let path = format!("/api/v1/projects/{project}/webhooks");
        let body = json!({"url": "http://127.0.0.1:9/matrix", "event_types": ["project.archived"]});
        id_of(&self.send_as(actor, Method::POST, &path, body, StatusCode::CREATED).await)
    }

    /// Tokens of a session of `actor`'s own: a new sign-in, or its only tokens when it cannot.
    async fn session(&self, actor: Actor) -> Option<Tokens> {
        let account = self.account(actor)?;
        if account.stale { Some(account.tokens.clone()) } else { Some(self.app.tokens(&account.email).await) }
    }

    /// The value of a placeholder for a cell of `actor`; the `fresh_` ones are made anew.
    async fn value(&self, name: &str, actor: Actor) -> String {
        let account = self.account(actor);
        match name {
            "project" => self.project.clone(),
            "task" => self.task.clone(),
            "task_key" => self.task_key.clone(),
            "attachment" => self.attachment.clone(),
            "user" => self.account(Actor::Author).expect("the author").id.clone(),
            "unique" => self.unique(),
            "password" => PASSWORD.to_owned(),
            "me" => account.map_or_else(|| uuid::Uuid::now_v7().to_string(), |a| a.id.clone()),
            "email" => account.map_or_else(|| "nobody@example.com".to_owned(), |a| a.email.clone()),
            "refresh" => self.session(actor).await.map_or_else(|| "no-such-refresh-token".to_owned(), |t| t.refresh),
            "fresh_project" => self.new_project(false).await,
            "archived_project" => self.new_project(true).await,
            "fresh_task" => id_of(&self.new_task().await),
            "task_b" => self.task_b.clone(),
            "fresh_task_b" => id_of(&self.new_task_in(&self.project_b, Actor::OtherProject).await),
            "fresh_comment" => {
                let path = format!("/api/v1/tasks/{}/comments", self.task);
                let body = json!({"body": "The author's comment"});
                id_of(&self.send_as(Actor::Author, Method::POST, &path, body, StatusCode::CREATED).await)
            }
            "fresh_attachment" => self.new_attachment().await,
            "webhook" => self.webhook.clone(),
            "delivery" => self.delivery.clone(),
            "webhook_b" => self.webhook_b.clone(),
            "job" => self.job.clone(),
            "fresh_webhook" => self.new_webhook(&self.project, Actor::Owner).await,
            "fresh_user" => self.new_user().await,
            "fresh_member" => {
                let user = self.new_user().await;
                self.add_member(&self.project, &user, "member").await;
                user
            }
            other => panic!("the table names an unknown placeholder {{{other}}}"),
        }
    }

    /// Sends one cell's request; returns the status to compare and, for the report, the request
    /// as sent with (the start of) its answer.
    async fn run(&self, row: &Row, actor: Actor) -> (u16, String) {
        let mut values = HashMap::new();
        for name in placeholders(&row.request).into_iter().chain(row.body.iter().flat_map(|body| placeholders(body))) {
            if let Entry::Vacant(slot) = values.entry(name) {
                let value = self.value(slot.key(), actor).await;
                slot.insert(value);
            }
        }
        let fill = |text: &str| {
            values.iter().fold(text.to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
        };
        let token = match row.auth {
            Auth::None => None,
            Auth::Bearer => self.account(actor).map(|a| a.tokens.access.clone()),
            Auth::Session => self.session(actor).await.map(|t| t.access),
        };
        let path = fill(&row.request);
        let mut request = self.request(row.method.clone(), &path, token.as_deref());
        match row.body.as_deref() {
            None => {}
            Some("multipart") => {
                let (content_type, bytes) = multipart_file();
                request = request.header("Content-Type", content_type).body(bytes);
            }
            Some(json) => {
                let body: Value = serde_json::from_str(&fill(json))
                    .unwrap_or_else(|error| panic!("{}: the body is not JSON: {error}", row.label));
                request = request.json(&body);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let observed = match row.outcome {
            Outcome::BulkItem if status == 200 => bulk_item_status(&text),
            _ => status,
        };
        let start: String = text.chars().take(300).collect();
        (observed, format!("{} {path} answered {status} {start}", row.method))
    }
}

/// The status a bulk answer reports for its one task: `200` when updated, else its failure's.
fn bulk_item_status(text: &str) -> u16 {
    let Ok(body) = serde_json::from_str::<Value>(text) else { return 0 };
    match (body["updated"].as_array().map(Vec::len), body["failed"].as_array().map(Vec::as_slice)) {
        (Some(1), Some([])) => 200,
        (Some(0), Some([failed])) => failed["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0),
        // Anything else is no answer for one task: 0 never matches a cell.
        _ => 0,
    }
}

/// Registers and signs in the cast, makes projects A and B, A's shared task, attachment and webhook
/// (with a ping's delivery) and B's webhook, then
/// disables one account and demotes the admin whose old token is kept.
async fn set_up(app: TestApp) -> World {
    let sign_up = |name: &'static str| {
        let app = &app;
        async move {
            let email = format!("{name}@example.com");
            let (id, tokens) = app.user(&email, name).await;
            Account { id, email, tokens, stale: false }
        }
    };
    // The first account ever registered is the global admin.
    let global_admin = sign_up("root").await;
    let names = ["owner", "admin", "member", "viewer", "author", "other", "outsider", "disabled", "demoted"];
    let mut signed_up = futures::future::join_all(names.map(sign_up)).await.into_iter();
    let mut accounts = HashMap::new();
    // One account per actor but the admin (above), the demoted admin's old token (the same account)
    // and no one, in the order of `names`.
    let own_accounts = Actor::ALL
        .into_iter()
        .filter(|actor| !matches!(actor, Actor::GlobalAdmin | Actor::DemotedOldToken | Actor::Anonymous));
    for actor in own_accounts {
        accounts.insert(actor, signed_up.next().expect("one account per actor"));
    }
    accounts.insert(Actor::GlobalAdmin, global_admin);
    let mut world = World {
        app,
        accounts,
        project: String::new(),
        task: String::new(),
        task_key: String::new(),
        attachment: String::new(),
        project_b: String::new(),
        task_b: String::new(),
        webhook: String::new(),
        delivery: String::new(),
        webhook_b: String::new(),
        job: String::new(),
        next: AtomicU32::new(0),
    };

    // Project A with every role (the disabled account a member while it still could be), and B.
    let body = json!({"name": "Project A", "key": "PROJA"});
    world.project =
        id_of(&world.send_as(Actor::Owner, Method::POST, "/api/v1/projects", body, StatusCode::CREATED).await);
    for (actor, role) in [
        (Actor::Admin, "admin"),
        (Actor::Member, "member"),
        (Actor::Viewer, "viewer"),
        (Actor::Author, "member"),
        (Actor::Disabled, "member"),
    ] {
        let user = world.accounts[&actor].id.clone();
        world.add_member(&world.project, &user, role).await;
    }
    let body = json!({"name": "Project B", "key": "PROJB"});
    world.project_b =
        id_of(&world.send_as(Actor::OtherProject, Method::POST, "/api/v1/projects", body, StatusCode::CREATED).await);
    world.task_b = id_of(&world.new_task_in(&world.project_b, Actor::OtherProject).await);
    let task = world.new_task().await;
    world.task = id_of(&task);
    world.task_key = task["key"].as_str().expect("a task key").to_owned();
    world.attachment = world.new_attachment().await;
    world.webhook = world.new_webhook(&world.project, Actor::Owner).await;
    world.webhook_b = world.new_webhook(&world.project_b, Actor::OtherProject).await;
    let ping = format!("/api/v1/projects/{}/webhooks/{}/ping", world.project, world.webhook);
    world.delivery = id_of(&world.send_as(Actor::Owner, Method::POST, &ping, Value::Null, StatusCode::ACCEPTED).await);
    let exports = format!("/api/v1/projects/{}/exports", world.project);
    let body = json!({"format": "json"});
    world.job = id_of(&world.send_as(Actor::Owner, Method::POST, &exports, body, StatusCode::ACCEPTED).await);

    // Disabled: its token worked (a member reads A) until an admin disabled the account.
    let project_path = format!("/api/v1/projects/{}", world.project);
    world.send_as(Actor::Disabled, Method::GET, &project_path, Value::Null, StatusCode::OK).await;
    let disabled = world.accounts[&Actor::Disabled].id.clone();
    let body = json!({"disabled": true});
    world.send_as(Actor::GlobalAdmin, Method::PATCH, &format!("/api/v1/users/{disabled}"), body, StatusCode::OK).await;
    world.accounts.get_mut(&Actor::Disabled).expect("the disabled account").stale = true;

    // Demoted: made an admin, signed in as one (its token lists every user), then made a member again.
    let demoted = world.accounts[&Actor::DemotedAdmin].clone();
    let user_path = format!("/api/v1/users/{}", demoted.id);
    world.send_as(Actor::GlobalAdmin, Method::PATCH, &user_path, json!({"role": "admin"}), StatusCode::OK).await;
    let old_tokens = world.app.tokens(&demoted.email).await;
    let listed = world.request(Method::GET, "/api/v1/users?q=example", Some(&old_tokens.access)).send().await.unwrap();
    expect(listed, StatusCode::OK, "an admin lists every user").await;
    world.send_as(Actor::GlobalAdmin, Method::PATCH, &user_path, json!({"role": "member"}), StatusCode::OK).await;
    let new_tokens = world.app.tokens(&demoted.email).await;
    world.accounts.insert(Actor::DemotedOldToken, Account { tokens: old_tokens, stale: true, ..demoted.clone() });
    world.accounts.insert(Actor::DemotedAdmin, Account { tokens: new_tokens, ..demoted });
    world
}

/// A cell's row, caller, expected status, observed status, and the request as sent with its answer.
type Cell<'a> = (&'a Row, Actor, u16, u16, String);

/// Runs one cell: `row` as `actor`, expected to get `expected`.
async fn run_cell<'a>(world: &World, (row, actor, expected): (&'a Row, Actor, u16)) -> Cell<'a> {
    let (got, body) = world.run(row, actor).await;
    (row, actor, expected, got, body)
}

#[tokio::test]
async fn every_operation_answers_every_kind_of_caller_as_the_authz_table_says() {
    // Arrange
    let rows = parse_table(TABLE);
    let misfits: Vec<String> = rows
        .iter()
        .filter(|row| !fits_route(&row.request, &row.route))
        .map(|row| format!("{}: {} is not a path of {}", row.label, row.request, row.route))
        .collect();
    assert!(misfits.is_empty(), "{}", misfits.join("\n"));
    let options = Options {
        notification_args: vec!["--vapid-private-key".to_owned(), VAPID_PRIVATE_KEY.to_owned()],
        ..Options::default()
    };
    let world = set_up(spawn_app_with(options).await).await;
    let document = world.app.client.get(world.app.url("/api/v1/openapi.json")).send().await.unwrap();
    let documented = documented_operations(&expect(document, StatusCode::OK, "the OpenAPI document").await);
    let tabled: BTreeSet<(String, String)> =
        rows.iter().map(|row| (row.method.to_string(), row.route.clone())).collect();

    // Act: the rows that end sessions last, one row at a time; every other cell first, 8 at a time.
    let cells_of = |session: bool| {
        rows.iter()
            .filter(move |row| (row.auth == Auth::Session) == session)
            .flat_map(|row| row.expected.iter().map(move |&(actor, expected)| (row, actor, expected)))
    };
    let shared = &world;
    let mut results: Vec<Cell<'_>> = futures::stream::iter(cells_of(false).map(|cell| run_cell(shared, cell)))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for row in rows.iter().filter(|row| row.auth == Auth::Session) {
        let cells = row.expected.iter().map(|&(actor, expected)| run_cell(shared, (row, actor, expected)));
        results.extend(futures::stream::iter(cells).buffer_unordered(CONCURRENCY).collect::<Vec<_>>().await);
    }

    // Assert: every cell as the table says, and every documented operation in the table.
    let mut mismatches: Vec<String> = results
        .iter()
        .filter(|(_, _, expected, got, _)| expected != got)
        .map(|(row, actor, expected, got, exchange)| {
            format!("{} as {}: expected {expected}, got {got}: {exchange}", row.label, actor.column())
        })
        .collect();
    mismatches.sort();
    for (method, path) in documented.difference(&tabled) {
        mismatches.push(format!("{method} {path} is in the OpenAPI document but has no row in the table"));
    }
    for (method, path) in tabled.difference(&documented) {
        mismatches.push(format!("{method} {path} has a row in the table but is not in the OpenAPI document"));
    }
    assert_eq!(results.len(), rows.len() * Actor::ALL.len(), "every cell ran");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    world.app.cleanup().await;
}
