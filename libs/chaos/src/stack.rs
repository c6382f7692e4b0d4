//! The processes under test: Ordo's release binaries, each a child process on a fixed loopback port,
//! with schemas, Redis prefix, exchange and queues of the run's own [`TestEnv`], killed, stopped and
//! started again as a fault asks. Output goes to `<log dir>/<service>.log`, appended across restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
pub(crate) use ordo_testkit::Service;
use ordo_testkit::TestEnv;
use sqlx::MySqlPool;
use tokio::process::{Child, Command};

/// The key-encryption key identity seals its signing keys with: a run's keys guard nothing.
const KEY_ENCRYPTION_KEY: &str = "b3JkbyBjaGFvcyBzZWFscyBpdHMga2V5cyB3aXRoIGE=";
/// How long a process may take to become ready after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM's drain may take before the process counts as hung (then it is killed).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The gateway's timeout of each backend call; no answer may take much longer.
pub(crate) const BACKEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Those with a schema of their own.
pub(crate) const WITH_SCHEMA: [Service; 5] =
    [Service::Identity, Service::Project, Service::Task, Service::Audit, Service::Notification];

/// The service's number in the ports' convention (gRPC 5025N, ops 1920N; `just dev` uses 5005N).
fn number(service: Service) -> u16 {
    match service {
        Service::Identity => 1,
        Service::Project => 2,
        Service::Task => 3,
        Service::Notification => 4,
        Service::Audit => 5,
        Service::Gateway => 0,
    }
}

fn grpc_addr(service: Service) -> String {
    format!("127.0.0.1:{}", 50250 + number(service))
}

fn ops_addr(service: Service) -> String {
    format!("127.0.0.1:{}", 19200 + number(service))
}

/// The gateway's address.
pub(crate) const GATEWAY_ADDR: &str = "127.0.0.1:18180";

/// The running stack.
#[derive(Debug)]
pub(crate) struct Stack {
    pub(crate) env: TestEnv,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    /// Each process's command line, made once: restarts use the same.
    args: BTreeMap<Service, Vec<String>>,
    pools: BTreeMap<Service, MySqlPool>,
    children: BTreeMap<Service, Child>,
    http: reqwest::Client,
}

impl Stack {
    /// Makes a fresh schema per service and starts every process, identity first, waiting until each
    /// is ready; the notification service mails through the SES stand-in when `mail` is set.
    pub(crate) async fn start(bin_dir: PathBuf, log_dir: PathBuf, mail: bool) -> anyhow::Result<Self> {
        for service in Service::ALL {
            let binary = bin_dir.join(format!("ordo-{service}"));
            ensure!(binary.exists(), "{} is missing: build the release binaries first", binary.display());
        }
        tokio::fs::create_dir_all(&log_dir).await.context("the log directory")?;
        let env = TestEnv::new();
        let mut urls = BTreeMap::new();
        let mut pools = BTreeMap::new();
        for service in WITH_SCHEMA {
            let (url, pool) = env.create_pool(service.name()).await?;
            urls.insert(service, url);
            pools.insert(service, pool);
        }
        let args =
            Service::ALL.into_iter().map(|service| (service, command_line(&env, &urls, service, mail))).collect();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let mut stack = Self { env, bin_dir, log_dir, args, pools, children: BTreeMap::new(), http };
        for service in Service::ALL {
            let _ = tokio::fs::remove_file(stack.log_path(service)).await;
            stack.spawn(service).await?;
            stack.wait_ready(service).await?;
        }
        Ok(stack)
    }

    fn log_path(&self, service: Service) -> PathBuf {
        self.log_dir.join(format!("{service}.log"))
    }

    /// The pool on `service`'s schema.
    pub(crate) fn pool(&self, service: Service) -> &MySqlPool {
        &self.pools[&service]
    }

    /// `http://<gateway>`.
    pub(crate) fn gateway_url(&self) -> String {
        format!("http://{GATEWAY_ADDR}")
    }

    /// The process id of `service`, while it runs.
    pub(crate) fn pid(&self, service: Service) -> Option<u32> {
        self.children.get(&service).and_then(Child::id)
    }

    /// `service`'s command with its arguments and environment.
    fn command(&self, service: Service) -> Command {
        let mut command = Command::new(self.bin_dir.join(format!("ordo-{service}")));
        command.args(&self.args[&service]);
        // One client address at a steady rate far past a person's budget: the limiter still runs on
        // every request, so its cost is in the figures, but it refuses nothing.
        if service == Service::Gateway {
            for (name, value) in [
                ("ORDO_RATE_LIMIT_READ", "1000000000"),
                ("ORDO_RATE_LIMIT_WRITE", "1000000000"),
                ("ORDO_RATE_LIMIT_COSTLY", "1000000000"),
                ("ORDO_RATE_LIMIT_CREDENTIALS", "1000000000"),
                ("ORDO_RATE_LIMIT_EMAIL_LOOKUP", "1000000000"),
                ("ORDO_MAX_CONNECTIONS_PER_IP", "1000000"),
            ] {
                command.env(name, value);
            }
        }
        let filter = std::env::var("CHAOS_RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
        command.env("ORDO_LOG_FORMAT", "json").env("RUST_LOG", filter);
        // The allocator's settings as deployed (deploy/ecs/README.md).
        command.env("MIMALLOC_ALLOW_THP", "0").env("MIMALLOC_PURGE_DELAY", "0");
        command
    }

    /// Starts `service` (not waiting for it to be ready).
    pub(crate) async fn spawn(&mut self, service: Service) -> anyhow::Result<()> {
        ensure!(!self.children.contains_key(&service), "{service} is running already");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(service))?;
        let mut command = self.command(service);
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("start {service}"))?;
        self.children.insert(service, child);
        Ok(())
    }

    /// Waits until `service` answers `/readyz` with 200; how long that took.
    pub(crate) async fn wait_ready(&mut self, service: Service) -> anyhow::Result<Duration> {
        let url = match service {
            Service::Gateway => format!("http://{GATEWAY_ADDR}/readyz"),
            _ => format!("http://{}/readyz", ops_addr(service)),
        };
        let started = Instant::now();
        loop {
            if let Some(child) = self.children.get_mut(&service)
                && let Some(status) = child.try_wait()?
            {
                bail!("{service} exited while starting ({status}); see {}", self.log_path(service).display());
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(started.elapsed());
            }
            ensure!(started.elapsed() < READY_TIMEOUT, "{service} was not ready within {READY_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process ends at once, whatever it was doing.
    pub(crate) async fn kill(&mut self, service: Service) -> anyhow::Result<()> {
        let mut child = self.children.remove(&service).with_context(|| format!("{service} is not running"))?;
        child.kill().await.with_context(|| format!("kill {service}"))?;
        Ok(())
    }

    /// SIGTERM, then waits for the drain to end; how long it took. A process that does not exit within
    /// [`DRAIN_TIMEOUT`], or exits with an error, is a finding.
    pub(crate) async fn terminate(&mut self, service: Service) -> anyhow::Result<Duration> {
        let mut child = self.children.remove(&service).with_context(|| format!("{service} is not running"))?;
        let pid = child.id().with_context(|| format!("{service} has exited already"))?;
        let started = Instant::now();
        let sent = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await?;
        ensure!(sent.success(), "kill -TERM {pid} failed");
        match tokio::time::timeout(DRAIN_TIMEOUT, child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "{service} exited with {status} after SIGTERM");
                Ok(started.elapsed())
            }
            Err(_) => {
                let _ = child.kill().await;
                bail!("{service} did not exit within {DRAIN_TIMEOUT:?} of SIGTERM")
            }
        }
    }

    /// Each running process's resident memory (KiB) and open sockets, read from `/proc`.
    pub(crate) fn sample(&self) -> BTreeMap<Service, (u64, usize)> {
        let mut samples = BTreeMap::new();
        for service in Service::ALL {
            let Some(pid) = self.pid(service) else { continue };
            let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|line| line.strip_prefix("VmRSS:"))
                        .and_then(|rest| rest.split_whitespace().next().and_then(|kib| kib.parse::<u64>().ok()))
                })
                .unwrap_or(0);
            let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|entry| {
                            std::fs::read_link(entry.path())
                                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                        })
                        .count()
                })
                .unwrap_or(0);
            samples.insert(service, (rss, sockets));
        }
        samples
    }

    /// Every process that exited without being asked to.
    pub(crate) fn exited(&mut self) -> Vec<String> {
        let mut exited = Vec::new();
        for (service, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                exited.push(format!("{service} ({status})"));
            }
        }
        exited
    }

    /// Stops every process (SIGTERM, the last started first), then drops the run's schemas, queues
    /// and Redis keys.
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        for service in Service::ALL.into_iter().rev() {
            if self.children.contains_key(&service) {
                let _ = self.terminate(service).await;
            }
        }
        for pool in self.pools.values() {
            pool.close().await;
        }
        self.env.cleanup().await
    }
}

/// The command line of `service`: the run's names, the fixed ports, the other services' addresses
/// (and, for notification, mail through the SES stand-in or none).
fn command_line(env: &TestEnv, urls: &BTreeMap<Service, String>, service: Service, mail: bool) -> Vec<String> {
    let mut args = Vec::new();
    let mut arg = |flag: &str, value: String| args.push(format!("--{flag}={value}"));
    arg("redis-url", ordo_testkit::redis_url());
    arg("redis-prefix", env.redis_prefix());
    let url_of = |callee: Service| format!("http://{}", grpc_addr(callee));
    if service == Service::Gateway {
        arg("http-addr", GATEWAY_ADDR.to_owned());
        arg("backend-timeout-ms", BACKEND_TIMEOUT.as_millis().to_string());
        for callee in [Service::Identity, Service::Project, Service::Task, Service::Audit, Service::Notification] {
            arg(&format!("{callee}-url"), url_of(callee));
        }
        return args;
    }
    arg("grpc-addr", grpc_addr(service));
    arg("ops-addr", ops_addr(service));
    arg("database-url", urls.get(&service).cloned().unwrap_or_default());
    arg("amqp-url", ordo_testkit::amqp_url());
    arg("events-exchange", env.exchange());
    if service != Service::Identity {
        arg("identity-url", url_of(Service::Identity));
        arg("events-queue", env.queue(&format!("{service}.events")));
    }
    if matches!(service, Service::Task | Service::Audit | Service::Notification) {
        arg("project-url", url_of(Service::Project));
    }
    match service {
        Service::Identity => arg("key-encryption-key", KEY_ENCRYPTION_KEY.to_owned()),
        Service::Task => {
            arg("s3-endpoint", ordo_testkit::s3_endpoint());
            arg("s3-bucket", env.bucket());
            arg("s3-access-key-id", "ordo-chaos".to_owned());
            arg("s3-secret-access-key", "ordo-chaos".to_owned());
        }
        Service::Notification if !mail => arg("email-enabled", "false".to_owned()),
        Service::Notification => {
            // Mail to the local SES stand-in, in a window of a second, so mails go out during the run.
            arg("ses-endpoint", ordo_testkit::ses_endpoint());
            arg("ses-access-key-id", "ordo-chaos".to_owned());
            arg("ses-secret-access-key", "ordo-chaos".to_owned());
            arg("email-from", "Ordo <notifications@ordo.test>".to_owned());
            arg("email-window-secs", "1".to_owned());
        }
        _ => {}
    }
    args
}
