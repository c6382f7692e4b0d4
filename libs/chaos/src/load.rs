//! The steady mixed load, from this process through the gateway: each worker logs in, creates tasks
//! (assigned to a second member, so every create is also a notification and a mail), reads, lists,
//! updates (title and status), moves and comments on its own tasks, at a fixed pace. Every answer is
//! recorded as an [`Outcome`]; every write the API acknowledged goes into the worker's [`Ledger`], and
//! so does every write that got no clear answer (it may or may not have been applied).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::stack::BACKEND_TIMEOUT;

/// The password of every user of a run.
pub(crate) const PASSWORD: &str = "chaos-password-1234";

/// What a request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    Login,
    Create,
    Read,
    List,
    Update,
    Move,
    Comment,
}

impl Op {
    /// The status that acknowledges it.
    fn success(self) -> u16 {
        match self {
            Self::Create | Self::Comment => 201,
            _ => 200,
        }
    }

    /// Whether it writes.
    pub(crate) fn writes(self) -> bool {
        !matches!(self, Self::Read | Self::List)
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// No connection could be made (nothing listens: the gateway is down).
    Connect,
    /// The client's own timeout ended the wait.
    Timeout,
    /// The connection broke after the request was sent, or the body could not be read.
    Broken,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) op: Op,
    /// 0 when there was no answer.
    pub(crate) status: u16,
    pub(crate) no_answer: Option<NoAnswer>,
    pub(crate) retry_after: bool,
    pub(crate) started: Instant,
    pub(crate) took: Duration,
    /// What the client said when there was no answer.
    pub(crate) error: Option<String>,
}

impl Outcome {
    pub(crate) fn acknowledged(&self) -> bool {
        self.status == self.op.success()
    }
}

/// What one worker knows of its own tasks: the last acknowledged value of each field it writes, and
/// the values of later writes that got no clear answer (each may have been applied).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) tasks: BTreeMap<String, Expected>,
    /// The ids of `tasks` in the order they were created: a step picks its task here, in constant
    /// time (collecting the map's keys on every step cost the driver CPU that grew with the run).
    ids: Vec<String>,
    /// Acknowledged comments: (task id, comment id).
    pub(crate) comments: Vec<(String, String)>,
    /// Session ids of acknowledged logins.
    pub(crate) sessions: Vec<String>,
    /// Reads whose task was older than an acknowledged write (a stale cache), with what they saw.
    pub(crate) stale_reads: Vec<String>,
}

/// A task as its worker last wrote it.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub(crate) title: String,
    pub(crate) status: String,
    /// (title, status) of writes after the last acknowledged one that got no clear answer.
    pub(crate) unsure: Vec<(String, String)>,
}

impl Expected {
    /// Whether a task read back as `title` and `status` is one the worker's writes allow.
    pub(crate) fn allows(&self, title: &str, status: &str) -> bool {
        (self.title == title && self.status == status) || self.unsure.iter().any(|(t, s)| t == title && s == status)
    }
}

/// The statuses an update walks through.
const STATUSES: [&str; 4] = ["todo", "in_progress", "in_review", "done"];

/// The operations of one worker's cycle, in order (a login per cycle keeps tokens fresh).
const CYCLE: [Op; 20] = [
    Op::Create,
    Op::Read,
    Op::Update,
    Op::Comment,
    Op::Read,
    Op::Create,
    Op::Move,
    Op::List,
    Op::Read,
    Op::Update,
    Op::Create,
    Op::Read,
    Op::Comment,
    Op::Move,
    Op::Read,
    Op::Create,
    Op::Update,
    Op::Read,
    Op::List,
    Op::Login,
];

/// What the workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: reqwest::Client,
    pub(crate) gateway: String,
    pub(crate) project: String,
    pub(crate) assignee: String,
    /// Set to end the workers' loops after their request in hand.
    pub(crate) pause: AtomicBool,
    /// When set, a worker logs in again only once its token is this old (a soak's steady traffic);
    /// otherwise once per cycle of operations (logins are part of what faults are tried against).
    pub(crate) relogin_after: Option<Duration>,
}

/// A worker: a member of the project of its own (a login's throttle counts per account, as people
/// log in), its token, its ledger and its position in the cycle.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) id: usize,
    email: String,
    token: String,
    logged_in_at: Instant,
    step: usize,
    pub(crate) ledger: Ledger,
}

impl Worker {
    pub(crate) fn new(id: usize, email: String, token: String) -> Self {
        Self { id, email, token, logged_in_at: Instant::now(), step: 0, ledger: Ledger::default() }
    }

    /// Runs at `rate` requests per second until `shared.pause` is set; the outcomes.
    pub(crate) async fn run(&mut self, shared: Arc<Shared>, rate: f64) -> Vec<Outcome> {
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
        let mut outcomes = Vec::new();
        let mut next = Instant::now();
        while !shared.pause.load(Ordering::Relaxed) {
            let outcome = self.step(&shared).await;
            outcomes.push(outcome);
            next += interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            } else if now - next > Duration::from_secs(1) {
                // Far behind (a fault held the answer): go on at the pace from now, without a burst.
                next = now;
            }
        }
        outcomes
    }

    async fn step(&mut self, shared: &Shared) -> Outcome {
        let n = self.step;
        self.step += 1;
        let ids = &self.ledger.ids;
        let op = match CYCLE[n % CYCLE.len()] {
            _ if ids.is_empty() => Op::Create,
            // A move needs a second task to go after.
            Op::Move if ids.len() < 2 => Op::Read,
            Op::Login if shared.relogin_after.is_some_and(|after| self.logged_in_at.elapsed() < after) => Op::Read,
            op => op,
        };
        // The task a task operation works on, and another one for a move to go after.
        let index = n.wrapping_mul(7919) % ids.len().max(1);
        let task = ids.get(index).cloned().unwrap_or_default();
        // Never the task itself (moving a task after itself is refused).
        let offset = 1 + n % ids.len().saturating_sub(1).max(1);
        let other = ids.get((index + offset) % ids.len().max(1)).cloned().unwrap_or_default();
        let gateway = &shared.gateway;
        let client = &shared.client;
        let request = match op {
            Op::Login => client
                .post(format!("{gateway}/api/v1/auth/login"))
                .json(&json!({"email": self.email, "password": PASSWORD})),
            Op::Create => {
                let title = format!("chaos w{} n{n}", self.id);
                let body = json!({"project_id": shared.project, "title": title, "assignee_ids": [shared.assignee], "labels": ["chaos"]});
                client.post(format!("{gateway}/api/v1/tasks")).bearer_auth(&self.token).json(&body)
            }
            Op::Read => client.get(format!("{gateway}/api/v1/tasks/{task}")).bearer_auth(&self.token),
            Op::List => client
                .get(format!("{gateway}/api/v1/tasks?project_id={}&limit=20", shared.project))
                .bearer_auth(&self.token),
            Op::Update => {
                let (title, status) = self.next_values(&task, n);
                client
                    .patch(format!("{gateway}/api/v1/tasks/{task}"))
                    .bearer_auth(&self.token)
                    .json(&json!({"title": title, "status": status}))
            }
            Op::Move => client
                .post(format!("{gateway}/api/v1/tasks/{task}/move"))
                .bearer_auth(&self.token)
                .json(&json!({"after_id": other})),
            Op::Comment => client
                .post(format!("{gateway}/api/v1/tasks/{task}/comments"))
                .bearer_auth(&self.token)
                .json(&json!({"body": format!("comment {n} of worker {}", self.id)})),
        };
        let started = Instant::now();
        let response = request.send().await;
        let mut outcome =
            Outcome { op, status: 0, no_answer: None, retry_after: false, started, took: Duration::ZERO, error: None };
        let body = match response {
            Ok(response) => {
                outcome.status = response.status().as_u16();
                outcome.retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
                match response.json::<Value>().await {
                    Ok(body) => Some(body),
                    Err(_) if outcome.status == op.success() => {
                        // An acknowledgement whose body broke: not an answer one can act on.
                        outcome.status = 0;
                        outcome.no_answer = Some(NoAnswer::Broken);
                        None
                    }
                    Err(_) => None,
                }
            }
            Err(error) => {
                outcome.no_answer = Some(if error.is_connect() {
                    NoAnswer::Connect
                } else if error.is_timeout() {
                    NoAnswer::Timeout
                } else {
                    NoAnswer::Broken
                });
                outcome.error = Some(format!("{:#}", anyhow::Error::new(error)));
                None
            }
        };
        outcome.took = started.elapsed();
        self.remember(op, &task, n, &outcome, body.as_ref());
        outcome
    }

    /// The title and status update number `n` of `task` writes.
    fn next_values(&self, task: &str, n: usize) -> (String, String) {
        let title = format!("chaos w{} u{n}", self.id);
        let current = self.ledger.tasks.get(task).map(|t| t.status.as_str()).unwrap_or("todo");
        let index = STATUSES.iter().position(|s| *s == current).unwrap_or(0);
        (title, STATUSES[(index + 1) % STATUSES.len()].to_owned())
    }

    /// Records what `outcome` tells about the worker's data.
    fn remember(&mut self, op: Op, task: &str, n: usize, outcome: &Outcome, body: Option<&Value>) {
        let acknowledged = outcome.acknowledged();
        // A write with no clear answer may have been applied (a 503 after the backend's timeout,
        // a broken connection); a 4xx or a 503 before any backend call was not.
        let unsure = !acknowledged && (outcome.status == 0 || outcome.status >= 500);
        match op {
            Op::Create if acknowledged => {
                let Some(id) = body.and_then(|b| b["id"].as_str()) else { return };
                let title = body.and_then(|b| b["title"].as_str()).unwrap_or_default().to_owned();
                let expected = Expected { title, status: "todo".to_owned(), unsure: Vec::new() };
                if self.ledger.tasks.insert(id.to_owned(), expected).is_none() {
                    self.ledger.ids.push(id.to_owned());
                }
            }
            Op::Update => {
                let (title, status) = self.next_values(task, n);
                let Some(expected) = self.ledger.tasks.get_mut(task) else { return };
                if acknowledged {
                    *expected = Expected { title, status, unsure: Vec::new() };
                } else if unsure {
                    expected.unsure.push((title, status));
                }
            }
            Op::Read if acknowledged => {
                let (Some(expected), Some(body)) = (self.ledger.tasks.get(task), body) else { return };
                let title = body["title"].as_str().unwrap_or_default();
                let status = body["status"].as_str().unwrap_or_default();
                if !expected.allows(title, status) {
                    self.ledger.stale_reads.push(format!(
                        "task {task} read as ({title}, {status}) after ({}, {}) was acknowledged",
                        expected.title, expected.status
                    ));
                }
            }
            Op::Comment if acknowledged => {
                if let Some(id) = body.and_then(|b| b["id"].as_str()) {
                    self.ledger.comments.push((task.to_owned(), id.to_owned()));
                }
            }
            Op::Login if acknowledged => {
                let Some(token) = body.and_then(|b| b["access_token"].as_str()) else { return };
                if let Some(sid) = session_of(token) {
                    self.ledger.sessions.push(sid);
                }
                self.token = token.to_owned();
                self.logged_in_at = Instant::now();
            }
            _ => {}
        }
    }
}

/// The `sid` claim of an access token.
pub(crate) fn session_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sid"].as_str().map(str::to_owned)
}

/// The HTTP client of the load: a request never waits much past the gateway's backend timeout.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(BACKEND_TIMEOUT + Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .context("the HTTP client")
}

/// Registers `email` and logs in; its id and access token.
pub(crate) async fn register_and_login(
    client: &reqwest::Client,
    gateway: &str,
    email: &str,
) -> anyhow::Result<(String, String)> {
    let registered = client
        .post(format!("{gateway}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "display_name": email.split('@').next()}))
        .send()
        .await?;
    anyhow::ensure!(registered.status() == 201, "register {email}: {}", registered.status());
    let id = registered.json::<Value>().await?["id"].as_str().context("a user id")?.to_owned();
    Ok((id, login(client, gateway, email).await?))
}

/// Logs `email` in; its access token.
pub(crate) async fn login(client: &reqwest::Client, gateway: &str, email: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "login {email}: {}", response.status());
    Ok(response.json::<Value>().await?["access_token"].as_str().context("an access token")?.to_owned())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn the_session_is_the_sid_claim_of_the_access_token() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"u","sid":"0190-ab"}"#);
        assert_eq!(session_of(&format!("header.{claims}.signature")), Some("0190-ab".to_owned()));
        assert_eq!(session_of("not a token"), None);
        assert_eq!(session_of("a.%%%.c"), None);
    }

    #[test]
    fn a_task_may_read_as_its_last_acknowledged_write_or_a_later_unanswered_one() {
        let expected = Expected {
            title: "t1".to_owned(),
            status: "todo".to_owned(),
            unsure: vec![("t2".to_owned(), "in_progress".to_owned())],
        };
        assert!(expected.allows("t1", "todo"));
        assert!(expected.allows("t2", "in_progress"));
        assert!(!expected.allows("t2", "todo"), "fields of two writes mixed");
        assert!(!expected.allows("t0", "todo"), "an older value");
    }

    #[test]
    fn a_created_task_is_listed_once_for_the_steps_to_pick() {
        let mut worker = Worker::new(1, String::new(), String::new());
        let created = Outcome {
            op: Op::Create,
            status: Op::Create.success(),
            no_answer: None,
            retry_after: false,
            started: Instant::now(),
            took: Duration::ZERO,
            error: None,
        };
        for id in ["b", "a", "b"] {
            worker.remember(Op::Create, "", 0, &created, Some(&json!({"id": id, "title": "t"})));
        }
        let refused = Outcome { status: 422, ..created };
        worker.remember(Op::Create, "", 0, &refused, Some(&json!({"id": "c", "title": "t"})));
        assert_eq!(worker.ledger.ids, ["b", "a"]);
        assert_eq!(worker.ledger.tasks.len(), 2);
    }

    #[test]
    fn an_update_moves_the_status_one_step_on() {
        let mut worker = Worker::new(3, String::new(), String::new());
        worker
            .ledger
            .tasks
            .insert("a".to_owned(), Expected { title: "x".to_owned(), status: "done".to_owned(), unsure: Vec::new() });
        assert_eq!(worker.next_values("a", 7), ("chaos w3 u7".to_owned(), "todo".to_owned()));
        assert_eq!(worker.next_values("missing", 1).1, "in_progress");
    }
}
