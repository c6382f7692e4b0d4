//! The stage both commands share: the stack started, an admin, a project owner and an assignee
//! registered, the project with both members, the workers logged in and the live streams open; the
//! load started and paused in phases.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::Common;
use crate::load::{self, Outcome, Shared, Worker};
use crate::stack::Stack;
use crate::streams::{self, StreamStats};

/// The running scene.
#[derive(Debug)]
pub(crate) struct Scene {
    pub(crate) stack: Stack,
    pub(crate) shared: Arc<Shared>,
    pub(crate) workers: Vec<Worker>,
    pub(crate) root_email: String,
    pub(crate) assignee_email: String,
    pub(crate) rate: f64,
    streams_stop: Arc<AtomicBool>,
    pub(crate) stream_stats: Vec<Arc<Mutex<StreamStats>>>,
    stream_tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// The load while it runs.
#[derive(Debug)]
pub(crate) struct Running {
    handles: Vec<JoinHandle<(Worker, Vec<Outcome>)>>,
}

impl Scene {
    /// `relogin_after`: see [`Shared::relogin_after`].
    pub(crate) async fn start(common: &Common, relogin_after: Option<Duration>, mail: bool) -> anyhow::Result<Self> {
        let stack = Stack::start(common.bin_dir.clone(), common.out_dir.clone(), mail).await?;
        let client = load::client()?;
        let gateway = stack.gateway_url();
        let id = &stack.env.id;
        // The first account is the admin that may verify the audit chain.
        let root_email = format!("root-{id}@example.com");
        let owner_email = format!("owner-{id}@example.com");
        let assignee_email = format!("assignee-{id}@example.com");
        load::register_and_login(&client, &gateway, &root_email).await?;
        let (_, owner) = load::register_and_login(&client, &gateway, &owner_email).await?;
        let (assignee, _) = load::register_and_login(&client, &gateway, &assignee_email).await?;

        let created = client
            .post(format!("{gateway}/api/v1/projects"))
            .bearer_auth(&owner)
            .json(&json!({"name": "Chaos", "key": "CHAOS"}))
            .send()
            .await?;
        anyhow::ensure!(created.status() == 201, "create the project: {}", created.status());
        let project = created.json::<Value>().await?["id"].as_str().context("a project id")?.to_owned();
        let added = client
            .post(format!("{gateway}/api/v1/projects/{project}/members"))
            .bearer_auth(&owner)
            .json(&json!({"user_id": assignee, "role": "member"}))
            .send()
            .await?;
        anyhow::ensure!(added.status() == 201, "add the assignee: {}", added.status());

        let mut workers = Vec::new();
        for n in 0..common.workers.max(1) {
            let email = format!("worker-{n}-{id}@example.com");
            let (user, token) = load::register_and_login(&client, &gateway, &email).await?;
            let added = client
                .post(format!("{gateway}/api/v1/projects/{project}/members"))
                .bearer_auth(&owner)
                .json(&json!({"user_id": user, "role": "member"}))
                .send()
                .await?;
            anyhow::ensure!(added.status() == 201, "add worker {n}: {}", added.status());
            workers.push(Worker::new(n, email, token));
        }
        let shared = Arc::new(Shared {
            client,
            gateway: gateway.clone(),
            project,
            assignee,
            pause: AtomicBool::new(true),
            relogin_after,
        });
        let streams_stop = Arc::new(AtomicBool::new(false));
        let mut stream_stats = Vec::new();
        let mut stream_tasks = Vec::new();
        for _ in 0..common.streams {
            let stats = Arc::new(Mutex::new(StreamStats::default()));
            stream_stats.push(stats.clone());
            stream_tasks.push(tokio::spawn(streams::run(
                gateway.clone(),
                assignee_email.clone(),
                streams_stop.clone(),
                stats,
            )));
        }
        Ok(Self {
            stack,
            shared,
            workers,
            root_email,
            assignee_email,
            rate: common.rate,
            streams_stop,
            stream_stats,
            stream_tasks,
        })
    }

    /// Starts the workers, each at its share of the rate.
    pub(crate) fn resume(&mut self) -> Running {
        self.shared.pause.store(false, Ordering::Relaxed);
        let per_worker = self.rate / self.workers.len().max(1) as f64;
        let handles = self
            .workers
            .drain(..)
            .map(|mut worker| {
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let outcomes = worker.run(shared, per_worker).await;
                    (worker, outcomes)
                })
            })
            .collect();
        Running { handles }
    }

    /// Stops the workers after their request in hand; what they did since [`Scene::resume`].
    pub(crate) async fn pause(&mut self, running: Running) -> anyhow::Result<Vec<Outcome>> {
        self.shared.pause.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for handle in running.handles {
            let (worker, done) = handle.await.context("a worker panicked")?;
            self.workers.push(worker);
            outcomes.extend(done);
        }
        self.workers.sort_by_key(|worker| worker.id);
        Ok(outcomes)
    }

    /// `GET /audit/verify` as the admin, part after part until the head: whether the chain verified,
    /// and how many records it checked.
    pub(crate) async fn verify_audit(&self) -> anyhow::Result<(bool, u64)> {
        let client = &self.shared.client;
        let token = load::login(client, &self.shared.gateway, &self.root_email).await?;
        let (mut checked, mut cursor) = (0, None::<String>);
        loop {
            let mut request = client.get(format!("{}/api/v1/audit/verify", self.shared.gateway));
            if let Some(cursor) = &cursor {
                request = request.query(&[("cursor", cursor)]);
            }
            let verdict = request.bearer_auth(&token).timeout(Duration::from_secs(30)).send().await?;
            anyhow::ensure!(verdict.status() == 200, "GET /audit/verify answered {}", verdict.status());
            let verdict = verdict.json::<Value>().await?;
            checked += verdict["checked"].as_u64().unwrap_or(0);
            if verdict["ok"] != true {
                return Ok((false, checked));
            }
            match verdict["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok((true, checked)),
            }
        }
    }

    /// Closes the streams and stops the stack, dropping the run's schemas, queues and keys.
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
        self.streams_stop.store(true, Ordering::Relaxed);
        for task in self.stream_tasks {
            let _ = task.await;
        }
        self.stack.shutdown().await
    }
}
