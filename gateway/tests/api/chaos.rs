//! Faults under load, the short form of the resilience proof: the whole stack runs with MariaDB,
//! RabbitMQ and Redis each behind a TCP proxy this test owns (the shared servers, which other tests
//! use at the same time, are never touched), a steady load of task creates runs through the gateway
//! (each create assigns a second member, so it is also a notification for them) with a read of each
//! created task, and one fault at a time is injected: the broker and then the database each cut
//! (connections reset) and then silent (connections accepted and never answered, which only timeouts
//! end), Redis cut, and the task service stopped gracefully and started again, each for a few seconds
//! with calm between them.
//!
//! Afterwards, from the databases and the API: every create the API acknowledged is there, once;
//! every task that exists reached audit (one `task.created` record) and its assignee (one
//! notification) exactly once; the task service's outbox drained; the audit chain verifies; every
//! answer was a success or a `503` with `Retry-After`, within the gateway's timeout; creates went on
//! while the broker was away (they only need the database); and creates succeeded again within
//! seconds of each fault's end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordo_harness::Service;
use ordo_testkit::TcpProxy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Options, spawn_app_with};

/// The gateway's `--backend-timeout-ms`: no answer may take longer than this and 2 s (a busy CI machine).
const BACKEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a cut or a restart lasts.
const FAULT: Duration = Duration::from_secs(4);
/// How long a silent backend lasts: past the gateway's timeout (and the services' 5 s pool timeout),
/// so a request that meets it ends in a timeout's `503`, not in the restore. A shorter silence lets a
/// request wait it out and succeed, and whether any is refused then depends on the machine's pace.
const SILENCE: Duration = Duration::from_secs(BACKEND_TIMEOUT.as_secs() + 3);
/// The calm before the first fault and after each.
const CALM: Duration = Duration::from_secs(3);
/// Requests in flight at once, each worker one after another.
const WORKERS: usize = 4;
/// How soon after a fault ends a create must succeed again.
const RECOVERY_BUDGET: Duration = Duration::from_secs(10);
/// How long the events of the run may take to reach every consumer once the load stops.
const SETTLE_BUDGET: Duration = Duration::from_secs(90);

/// One fault of the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// Connections to RabbitMQ dropped, new ones reset.
    Broker,
    /// Connections to RabbitMQ dropped, new ones accepted and never answered.
    BrokerSilent,
    /// Connections to MariaDB dropped, new ones reset.
    Database,
    /// Connections to MariaDB dropped, new ones accepted and never answered: only timeouts end a wait.
    DatabaseSilent,
    /// Connections to Redis dropped, new ones reset.
    Redis,
    /// The task service stopped (the drain a SIGTERM starts) and started again.
    TaskRestart,
}

impl Fault {
    /// How long the fault lasts.
    fn duration(self) -> Duration {
        match self {
            Self::BrokerSilent | Self::DatabaseSilent => SILENCE,
            Self::Broker | Self::Database | Self::Redis | Self::TaskRestart => FAULT,
        }
    }
}

/// One request the load sent, and how it was answered.
#[derive(Debug)]
struct Outcome {
    what: &'static str,
    /// 0 when no answer came (the client gave up or the connection failed).
    status: u16,
    retry_after: bool,
    started: Instant,
    took: Duration,
    /// The created task's id (hyphens removed) and title, for an acknowledged create.
    created: Option<(String, String)>,
}

/// What the load shares with the test.
struct Load {
    client: reqwest::Client,
    /// The gateway's `http://<addr>`.
    gateway: String,
    token: String,
    project: String,
    assignee: String,
    stop: AtomicBool,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Load {
    /// Creates one task, then reads it back when it was created.
    async fn step(&self, worker: usize, n: usize) {
        let title = format!("chaos {worker}-{n}");
        let body = json!({"project_id": self.project, "title": title, "assignee_ids": [self.assignee]});
        let started = Instant::now();
        let url = format!("{}/api/v1/tasks", self.gateway);
        let response = self.client.post(url).bearer_auth(&self.token).json(&body).send().await;
        let (status, retry_after, id) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                let id = if status == 201 {
                    response.json::<Value>().await.ok().and_then(|task| task["id"].as_str().map(plain))
                } else {
                    None
                };
                (status, retry_after, id)
            }
            Err(_) => (0, false, None),
        };
        let created = id.clone().map(|id| (id, title));
        self.record(Outcome { what: "create", status, retry_after, started, took: started.elapsed(), created }).await;

        let Some(id) = id else { return };
        let started = Instant::now();
        let url = format!("{}/api/v1/tasks/{}", self.gateway, hyphenated(&id));
        let response = self.client.get(url).bearer_auth(&self.token).send().await;
        let (status, retry_after) = match response {
            Ok(response) => (response.status().as_u16(), response.headers().contains_key("retry-after")),
            Err(_) => (0, false),
        };
        self.record(Outcome { what: "read", status, retry_after, started, took: started.elapsed(), created: None })
            .await;
    }

    async fn record(&self, outcome: Outcome) {
        self.outcomes.lock().await.push(outcome);
    }
}

/// A UUID as the databases print it in hex: lower case, no hyphens.
fn plain(id: &str) -> String {
    id.replace('-', "").to_lowercase()
}

/// `plain`'s inverse.
fn hyphenated(id: &str) -> String {
    format!("{}-{}-{}-{}-{}", &id[0..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_no_acknowledged_write_or_committed_event_is_lost_through_cut_and_silent_backends_and_a_restart() {
    // Arrange: every service reaches the three backends through proxies of this test's own.
    let mysql = TcpProxy::mysql().await.unwrap();
    let amqp = TcpProxy::amqp().await.unwrap();
    let redis = TcpProxy::redis().await.unwrap();
    let options = Options {
        backend_timeout_ms: u64::try_from(BACKEND_TIMEOUT.as_millis()).unwrap(),
        redis_url: Some(redis.redis_url()),
        amqp_url: Some(amqp.amqp_url()),
        mysql_via: Some(mysql.addr()),
        task_and_audit_pools: true,
        notification_pool: true,
        // Notifications stay in the app: the mail stand-in is shared, and mail is not what this proves.
        notification_args: vec!["--email-enabled=false".to_owned()],
        ..Options::default()
    };
    let mut app = spawn_app_with(options).await;
    let (_, root) = app.user(&format!("root-{}@example.com", app.env.id), "Root").await;
    let (_, owner) = app.user(&format!("owner-{}@example.com", app.env.id), "Owner").await;
    let (assignee, _) = app.user(&format!("assignee-{}@example.com", app.env.id), "Assignee").await;
    let project = app.post_json_as(&owner.access, "/api/v1/projects", &json!({"name": "Chaos", "key": "CHS"})).await;
    assert_eq!(project.status(), StatusCode::CREATED);
    let project = project.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let member = json!({"user_id": assignee, "role": "member"});
    let added = app.post_json_as(&owner.access, &format!("/api/v1/projects/{project}/members"), &member).await;
    assert_eq!(added.status(), StatusCode::CREATED);

    let load = Arc::new(Load {
        client: app.client.clone(),
        gateway: app.url(""),
        token: owner.access.clone(),
        project: project.clone(),
        assignee: assignee.clone(),
        stop: AtomicBool::new(false),
        outcomes: Mutex::new(Vec::new()),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let load = load.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while !load.stop.load(Ordering::Relaxed) {
                    load.step(worker, n).await;
                    n += 1;
                }
            })
        })
        .collect();

    // Act: one fault at a time, with calm before and after each.
    let mut windows: BTreeMap<Fault, (Instant, Instant)> = BTreeMap::new();
    tokio::time::sleep(CALM).await;
    let faults =
        [Fault::Broker, Fault::BrokerSilent, Fault::Database, Fault::DatabaseSilent, Fault::Redis, Fault::TaskRestart];
    for fault in faults {
        let began = Instant::now();
        match fault {
            Fault::Broker => amqp.cut(),
            Fault::BrokerSilent => amqp.blackhole(),
            Fault::Database => mysql.cut(),
            Fault::DatabaseSilent => mysql.blackhole(),
            Fault::Redis => redis.cut(),
            // The harness's stop is the graceful drain a SIGTERM starts.
            Fault::TaskRestart => app.stop_service(Service::Task).await,
        }
        tokio::time::sleep(fault.duration()).await;
        match fault {
            Fault::Broker | Fault::BrokerSilent => amqp.restore(),
            Fault::Database | Fault::DatabaseSilent => mysql.restore(),
            Fault::Redis => redis.restore(),
            Fault::TaskRestart => app.start_service(Service::Task).await,
        }
        windows.insert(fault, (began, Instant::now()));
        tokio::time::sleep(CALM).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let outcomes = std::mem::take(&mut *load.outcomes.lock().await);

    // Assert: every answer was a success or a 503 with Retry-After, in time.
    let budget = BACKEND_TIMEOUT + Duration::from_secs(2);
    let mut by_status: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for outcome in &outcomes {
        *by_status.entry((outcome.what, outcome.status)).or_default() += 1;
    }
    // Which fault a request started in, or after which one it started, for a failure's message.
    let when = |started: Instant| {
        windows.iter().filter(|(_, (from, _))| *from <= started).max_by_key(|(_, (from, _))| *from).map_or_else(
            || "before the first fault".to_owned(),
            |(fault, (from, to))| {
                let at = started.duration_since(*from).as_millis();
                if started < *to {
                    format!("{at} ms into {fault:?}")
                } else {
                    format!("{at} ms after {fault:?} began, past its end")
                }
            },
        )
    };
    for outcome in &outcomes {
        let expected = if outcome.what == "create" { 201 } else { 200 };
        assert!(
            outcome.status == expected || (outcome.status == 503 && outcome.retry_after),
            "a {} started {} answered {} (Retry-After: {}) after {:?}; every answer: {by_status:?}",
            outcome.what,
            when(outcome.started),
            outcome.status,
            outcome.retry_after,
            outcome.took
        );
        assert!(outcome.took <= budget, "a {} took {:?}", outcome.what, outcome.took);
    }
    let acknowledged: Vec<&(String, String)> = outcomes.iter().filter_map(|o| o.created.as_ref()).collect();
    assert!(acknowledged.len() >= 20, "too little load to prove anything: {by_status:?}");

    // What each fault did to the load (shown with --no-capture): requests started during it, how many
    // were acknowledged and refused, and how soon after its end a create succeeded again.
    let mut table = String::from("fault | requests | 2xx | 503 | other | first create after (ms)\n");
    for (fault, (from, to)) in &windows {
        let during: Vec<&Outcome> = outcomes.iter().filter(|o| o.started >= *from && o.started < *to).collect();
        let ok = during.iter().filter(|o| o.status == 200 || o.status == 201).count();
        let refused = during.iter().filter(|o| o.status == 503).count();
        let recovered = outcomes
            .iter()
            .filter(|o| o.created.is_some() && o.started >= *to)
            .map(|o| (o.started + o.took).duration_since(*to).as_millis())
            .min();
        table.push_str(&format!(
            "{fault:?} | {} | {ok} | {refused} | {} | {recovered:?}\n",
            during.len(),
            during.len() - ok - refused
        ));
    }
    eprintln!("{table}");
    for fault in [Fault::Database, Fault::DatabaseSilent] {
        let (from, to) = windows[&fault];
        assert!(
            outcomes.iter().any(|o| o.status == 503 && o.started >= from && o.started < to),
            "no create was refused during {fault:?}, so it did not reach the services:\n{table}"
        );
    }

    // Assert: creates went on while the broker was away, and resumed soon after every fault.
    let created_within = |from: Instant, to: Instant| {
        outcomes.iter().any(|o| o.created.is_some() && o.started >= from && o.started + o.took <= to)
    };
    for fault in [Fault::Broker, Fault::BrokerSilent] {
        let (from, to) = windows[&fault];
        assert!(created_within(from, to), "no create succeeded during {fault:?}:\n{table}");
    }
    for (fault, (_, ended)) in &windows {
        assert!(
            created_within(*ended, *ended + RECOVERY_BUDGET),
            "no create succeeded within {RECOVERY_BUDGET:?} of the end of {fault:?}"
        );
    }

    // Assert: every acknowledged create is there, once (no request was retried, so none may be twice).
    let task_pool = app.pool(Service::Task);
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT LOWER(HEX(id)), title FROM task WHERE project_id = UNHEX(REPLACE(?, '-', ''))")
            .bind(&project)
            .fetch_all(task_pool)
            .await
            .unwrap();
    let mut titles: HashMap<&str, usize> = HashMap::new();
    for (_, title) in &stored {
        *titles.entry(title.as_str()).or_default() += 1;
    }
    assert!(titles.values().all(|&n| n == 1), "a title was stored twice");
    let stored_ids: HashMap<&str, &str> = stored.iter().map(|(id, title)| (id.as_str(), title.as_str())).collect();
    for (id, title) in &acknowledged {
        assert_eq!(stored_ids.get(id.as_str()), Some(&title.as_str()), "an acknowledged create is missing");
    }

    // Assert: the outbox drains, and every stored task reached audit and its assignee exactly once.
    let deadline = Instant::now() + SETTLE_BUDGET;
    let (mut backlog, mut audited, mut notified);
    loop {
        backlog = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox_event WHERE published_at IS NULL")
            .fetch_one(task_pool)
            .await
            .unwrap();
        audited = per_task(
            app.pool(Service::Audit),
            "SELECT LOWER(REPLACE(entity_id, '-', '')), COUNT(*) FROM audit_record \
             WHERE action = 'task.created' AND project_id = ? GROUP BY entity_id",
            &project,
        )
        .await;
        notified = per_task(
            app.pool(Service::Notification),
            "SELECT LOWER(HEX(task_id)), COUNT(*) FROM notification \
             WHERE user_id = UNHEX(REPLACE(?, '-', '')) AND kind = 'task.assigned' GROUP BY task_id",
            &assignee,
        )
        .await;
        let settled = backlog == 0 && audited.len() == stored.len() && notified.len() == stored.len();
        if settled || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(backlog, 0, "the task service's outbox did not drain");
    for (consumer, seen) in [("audit", &audited), ("notification", &notified)] {
        for (id, _) in &stored {
            assert_eq!(seen.get(id), Some(&1), "{consumer} saw task {id} {:?} times", seen.get(id));
        }
        assert_eq!(seen.len(), stored.len(), "{consumer} saw a task that is not stored");
    }

    // Assert: the audit chain verifies.
    let verdict = app.get_as(&root.access, "/api/v1/audit/verify").await;
    assert_eq!(verdict.status(), StatusCode::OK);
    assert_eq!(verdict.json::<Value>().await.unwrap()["ok"], true);

    app.cleanup().await;
}

/// `query` (one `?`, bound to `key`) answers a task id and a count per row.
async fn per_task(pool: &sqlx::MySqlPool, query: &'static str, key: &str) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(query).bind(key).fetch_all(pool).await.unwrap().into_iter().collect()
}
