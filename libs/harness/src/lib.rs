//! Starts any set of Ordo's processes (identity, project, task, audit and the gateway) for one
//! [`TestEnv`], the way every crate's integration tests need them: each on a free loopback port with
//! a fresh schema of its own, the environment's Redis prefix, exchange and queue names, pointed at the
//! others of the set (`--identity-url`, `--project-url`, ...), plus the flags a test adds, which also
//! replace any of these defaults they name. [`Stack`] hands out each one's address, ops address and
//! schema, stops and starts one of them again (an outage, a deploy), and stops them all within a
//! bounded wait. Object storage is the test's business: the task service gets the environment's bucket
//! on `ORDO_TEST_S3_ENDPOINT`, and the test empties and removes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod instance;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use clap::Parser as _;
pub use ordo_testkit::Service;
use ordo_testkit::TestEnv;
use sqlx::MySqlPool;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::instance::Config;
pub use crate::instance::Instance;
pub use crate::users::{PASSWORD, User, bearer};

/// The key-encryption key every identity of a stack seals its signing keys with (base64 of 32 bytes):
/// a test's keys guard nothing.
pub const KEY_ENCRYPTION_KEY: &str = "b3JkbyB0ZXN0cyBzZWFsIHRoZWlyIGtleXMgd2l0aCA=";

/// What to start: which processes, the flags a test adds to each, which schemas the test reads itself.
#[derive(Debug, Default)]
pub struct StackBuilder {
    args: BTreeMap<Service, Vec<String>>,
    pools: BTreeSet<Service>,
    redis_url: Option<String>,
    amqp_url: Option<String>,
    mysql_via: Option<SocketAddr>,
}

impl StackBuilder {
    /// Adds `args` to `service`'s command line (and `service` to the set). A flag named here replaces
    /// the harness's own value of it, such as `--redis-url` or `--task-url`.
    pub fn args<I, S>(mut self, service: Service, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.entry(service).or_default().extend(args.into_iter().map(Into::into));
        self
    }

    /// Opens a pool on `service`'s schema, for a test that looks behind its back ([`Stack::pool`]).
    pub fn pool(mut self, service: Service) -> Self {
        self.pools.insert(service);
        self
    }

    /// The Redis every process uses, instead of the shared one (a proxy a test can cut).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// The broker every service uses, instead of the shared one (a proxy a test can cut).
    pub fn amqp_url(mut self, url: impl Into<String>) -> Self {
        self.amqp_url = Some(url.into());
        self
    }

    /// Every service reaches MariaDB at `addr` (a proxy a test can cut) instead of the shared server;
    /// the schemas are still made, and the test's own pools opened, on the shared one.
    pub fn mysql_via(mut self, addr: SocketAddr) -> Self {
        self.mysql_via = Some(addr);
        self
    }

    /// The gateway's configuration as this builder would give it, for a test that builds the gateway's
    /// router itself: nothing is started, so only the test's own flags point it at services.
    pub fn gateway_config(&self, env: &TestEnv) -> ordo_gateway::Config {
        let extra = self.args.get(&Service::Gateway).map(Vec::as_slice).unwrap_or_default();
        let wiring = Wiring {
            env,
            addrs: &BTreeMap::new(),
            redis_url: self.redis_url.clone(),
            amqp_url: self.amqp_url.clone(),
            database_url: None,
        };
        match wiring.config(Service::Gateway, extra).0 {
            Config::Gateway(config) => *config,
            _ => unreachable!("the gateway's flags parse into the gateway's configuration"),
        }
    }

    /// Starts the set for `env` and waits until every process is ready; identity first, since the
    /// others ask it for its token keys.
    pub async fn start(self, env: &TestEnv) -> Stack {
        // Every port is bound before any command line is made, so each process knows the others'.
        let mut listeners = BTreeMap::new();
        for &service in self.args.keys() {
            listeners.insert(service, ordo_testkit::free_listener().await.expect("a free loopback port"));
        }
        let addrs: BTreeMap<Service, SocketAddr> = listeners
            .iter()
            .map(|(&service, listener)| (service, listener.local_addr().expect("the listener's address")))
            .collect();

        let mut databases = BTreeMap::new();
        let mut configs = BTreeMap::new();
        let mut command_lines = BTreeMap::new();
        for (&service, extra) in &self.args {
            let database = if service == Service::Gateway {
                None
            } else {
                let database = if self.pools.contains(&service) {
                    let (url, pool) = env.create_pool(service.name()).await.expect("a fresh schema and its pool");
                    Database { url, pool: Some(pool) }
                } else {
                    Database { url: env.create_schema(service.name()).await.expect("a fresh schema"), pool: None }
                };
                let url = match self.mysql_via {
                    Some(via) => database.url.replacen(
                        &ordo_testkit::host_port(&ordo_testkit::mysql_server_url()),
                        &via.to_string(),
                        1,
                    ),
                    None => database.url.clone(),
                };
                databases.insert(service, database);
                Some(url)
            };
            let wiring = Wiring {
                env,
                addrs: &addrs,
                redis_url: self.redis_url.clone(),
                amqp_url: self.amqp_url.clone(),
                database_url: database,
            };
            let (config, command_line) = wiring.config(service, extra);
            configs.insert(service, config);
            command_lines.insert(service, command_line);
        }

        let mut stack = Stack { running: BTreeMap::new(), configs, command_lines, addrs, databases };
        for (service, listener) in listeners {
            let instance = Instance::start(stack.configs[&service].clone(), listener).await;
            if service == Service::Identity {
                instance.wait_until_ready().await;
            }
            stack.running.insert(service, instance);
        }
        stack.wait_until_ready().await;
        stack
    }
}

/// The flags that put one process into a stack.
struct Wiring<'a> {
    env: &'a TestEnv,
    addrs: &'a BTreeMap<Service, SocketAddr>,
    redis_url: Option<String>,
    amqp_url: Option<String>,
    database_url: Option<String>,
}

impl Wiring<'_> {
    /// The configuration of `service`, and the command line it was parsed from.
    fn config(&self, service: Service, extra: &[String]) -> (Config, Vec<String>) {
        let env = self.env;
        let mut defaults: Vec<(&str, String)> = Vec::new();
        if let Some(url) = &self.database_url {
            defaults.push(("--database-url", url.clone()));
        }
        defaults.push(("--redis-url", self.redis_url.clone().unwrap_or_else(ordo_testkit::redis_url)));
        defaults.push(("--redis-prefix", env.redis_prefix()));
        if service != Service::Gateway {
            defaults.push(("--amqp-url", self.amqp_url.clone().unwrap_or_else(ordo_testkit::amqp_url)));
            defaults.push(("--events-exchange", env.exchange()));
        }
        if matches!(service, Service::Project | Service::Task | Service::Audit | Service::Notification) {
            defaults.push(("--events-queue", env.queue(&format!("{service}.events"))));
        }
        // Each process is pointed at those of the set it calls.
        let calls: &[(Service, &str)] = match service {
            Service::Identity => &[],
            Service::Project => &[(Service::Identity, "--identity-url")],
            Service::Task | Service::Audit | Service::Notification => {
                &[(Service::Identity, "--identity-url"), (Service::Project, "--project-url")]
            }
            Service::Gateway => &[
                (Service::Identity, "--identity-url"),
                (Service::Project, "--project-url"),
                (Service::Task, "--task-url"),
                (Service::Audit, "--audit-url"),
                (Service::Notification, "--notification-url"),
            ],
        };
        for (callee, flag) in calls {
            if let Some(addr) = self.addrs.get(callee) {
                defaults.push((flag, format!("http://{addr}")));
            }
        }
        if service == Service::Gateway {
            // A test's stop is immediate; the lame-duck period is a test's own choice (`shutdown.rs`).
            defaults.push(("--drain-grace-ms", "0".to_owned()));
        }
        if service == Service::Identity {
            // Identity keeps its signing keys sealed, as deployed (it refuses to start otherwise).
            defaults.push(("--key-encryption-key", KEY_ENCRYPTION_KEY.to_owned()));
        }
        if service == Service::Task {
            // The S3-compatible server of `ORDO_TEST_S3_ENDPOINT` (any credentials) and a bucket of the
            // test's own, which the service creates.
            defaults.push(("--s3-endpoint", ordo_testkit::s3_endpoint()));
            defaults.push(("--s3-bucket", env.bucket()));
            defaults.push(("--s3-access-key-id", "ordo-test".to_owned()));
            defaults.push(("--s3-secret-access-key", "ordo-test".to_owned()));
        }

        if service == Service::Notification {
            // Mail goes to the local SES stand-in (moto, on `ORDO_TEST_SES_ENDPOINT`) in a window of a
            // second, and reminders are looked for five times a second, so tests wait little.
            defaults.push(("--ses-endpoint", ordo_testkit::ses_endpoint()));
            defaults.push(("--ses-access-key-id", "ordo-test".to_owned()));
            defaults.push(("--ses-secret-access-key", "ordo-test".to_owned()));
            defaults.push(("--email-from", "Ordo <notifications@ordo.test>".to_owned()));
            defaults.push(("--email-window-secs", "1".to_owned()));
            defaults.push(("--reminder-poll-ms", "200".to_owned()));
            // Webhook receivers of tests listen on loopback, and nowhere else.
            defaults.push(("--webhook-allow-loopback", "true".to_owned()));
        }

        let args = command_line(service, defaults, extra);
        let parsed = match service {
            Service::Identity => ordo_identity::Config::try_parse_from(&args).map(|c| Config::Identity(Box::new(c))),
            Service::Project => ordo_project::Config::try_parse_from(&args).map(|c| Config::Project(Box::new(c))),
            Service::Task => ordo_task::Config::try_parse_from(&args).map(|c| Config::Task(Box::new(c))),
            Service::Audit => ordo_audit::Config::try_parse_from(&args).map(|c| Config::Audit(Box::new(c))),
            Service::Notification => {
                ordo_notification::Config::try_parse_from(&args).map(|c| Config::Notification(Box::new(c)))
            }
            Service::Gateway => ordo_gateway::Config::try_parse_from(&args).map(|c| Config::Gateway(Box::new(c))),
        };
        (parsed.unwrap_or_else(|error| panic!("the {service} flags: {error}")), args)
    }
}

/// `ordo-<service>`, each default flag the test does not set itself, then the test's own flags.
fn command_line(service: Service, defaults: Vec<(&str, String)>, extra: &[String]) -> Vec<String> {
    let set_by_test = |flag: &str| {
        extra.iter().any(|arg| arg.strip_prefix(flag).is_some_and(|rest| rest.is_empty() || rest.starts_with('=')))
    };
    let mut args = vec![format!("ordo-{service}")];
    for (flag, value) in defaults {
        if !set_by_test(flag) {
            // One argument, so that a value starting with `-` (a base64url key) is never read as a flag.
            args.push(format!("{flag}={value}"));
        }
    }
    args.extend(extra.iter().cloned());
    args
}

/// A process's schema.
#[derive(Debug)]
struct Database {
    url: String,
    pool: Option<MySqlPool>,
}

/// The processes of one test. Addresses stay the same when a process is stopped and started again.
#[derive(Debug)]
pub struct Stack {
    running: BTreeMap<Service, Instance>,
    configs: BTreeMap<Service, Config>,
    /// Each process's command line, its name first.
    command_lines: BTreeMap<Service, Vec<String>>,
    addrs: BTreeMap<Service, SocketAddr>,
    databases: BTreeMap<Service, Database>,
}

impl Stack {
    /// A stack of `services` with the harness's flags only; add to it with [`StackBuilder`]'s methods.
    pub fn of(services: impl IntoIterator<Item = Service>) -> StackBuilder {
        let mut builder = StackBuilder::default();
        for service in services {
            builder.args.entry(service).or_default();
        }
        builder
    }

    /// The flags `service` was started with (without the program's name): the same service's binary
    /// started with them, and addresses of its own (`--grpc-addr`, `--ops-addr`), is another
    /// instance of it in the stack, as a deployment runs several.
    pub fn command_line(&self, service: Service) -> &[String] {
        let line = self.command_lines.get(&service).unwrap_or_else(|| panic!("{service} is not part of the stack"));
        line.get(1..).unwrap_or_default()
    }

    /// The running `service`, failing the test if it is not part of the stack or stopped.
    pub fn instance(&self, service: Service) -> &Instance {
        self.running.get(&service).unwrap_or_else(|| panic!("{service} is not running"))
    }

    /// The address `service` serves its API on (gRPC, or HTTP for the gateway), running or not.
    pub fn addr(&self, service: Service) -> SocketAddr {
        *self.addrs.get(&service).unwrap_or_else(|| panic!("{service} is not part of the stack"))
    }

    /// `http://<addr>` of `service`.
    pub fn url(&self, service: Service) -> String {
        format!("http://{}", self.addr(service))
    }

    /// A lazily connecting gRPC channel to `service`.
    pub fn channel(&self, service: Service) -> Channel {
        Channel::from_shared(self.url(service)).expect("a loopback URL").connect_lazy()
    }

    /// The `/healthz`, `/readyz` and `/metrics` address of the running `service`.
    pub fn ops_addr(&self, service: Service) -> SocketAddr {
        self.instance(service).ops_addr()
    }

    /// The connection URL of `service`'s schema.
    pub fn database_url(&self, service: Service) -> &str {
        &self.database(service).url
    }

    /// The pool on `service`'s schema asked for with [`StackBuilder::pool`].
    pub fn pool(&self, service: Service) -> &MySqlPool {
        let database = self.database(service);
        database.pool.as_ref().unwrap_or_else(|| panic!("no pool was asked for on {service}'s schema"))
    }

    fn database(&self, service: Service) -> &Database {
        self.databases.get(&service).unwrap_or_else(|| panic!("{service} has no schema in the stack"))
    }

    /// The identity service's configuration (its `rotate-key` command works on the same schema).
    pub fn identity_config(&self) -> &ordo_identity::Config {
        match self.configs.get(&Service::Identity) {
            Some(Config::Identity(config)) => config,
            _ => panic!("identity is not part of the stack"),
        }
    }

    /// The audit service's configuration (its `verify` command reads the same schema).
    pub fn audit_config(&self) -> &ordo_audit::Config {
        match self.configs.get(&Service::Audit) {
            Some(Config::Audit(config)) => config,
            _ => panic!("audit is not part of the stack"),
        }
    }

    /// Waits until every running process is ready (see [`Instance::wait_until_ready`]). Beside a
    /// gateway, audit must also hold identity's token keys (its `/readyz`), before which it refuses
    /// every query the gateway forwards as unauthenticated.
    pub async fn wait_until_ready(&self) {
        for instance in self.running.values() {
            instance.wait_until_ready().await;
        }
        if self.running.contains_key(&Service::Gateway)
            && let Some(audit) = self.running.get(&Service::Audit)
        {
            let started = std::time::Instant::now();
            while !audit.ops_ready().await {
                assert!(!audit.is_finished(), "audit stopped while starting");
                assert!(started.elapsed() < instance::READY_TIMEOUT, "audit's /readyz was not 200 in time");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// Starts `service`'s stop (what SIGTERM starts) without waiting for it; [`Stack::stop_service`]
    /// then waits for it.
    pub fn begin_stop(&self, service: Service) {
        if let Some(instance) = self.running.get(&service) {
            instance.begin_stop();
        }
    }

    /// Stops `service` (as a crash or a deploy would), leaving the others running; what its serve
    /// function returned (Ok if it was not running).
    pub async fn stop_service(&mut self, service: Service) -> anyhow::Result<()> {
        match self.running.remove(&service) {
            Some(instance) => instance.stop().await,
            None => Ok(()),
        }
    }

    /// Starts `service` again, as it was and on the port it had, and waits until it is ready.
    pub async fn start_service(&mut self, service: Service) {
        assert!(!self.running.contains_key(&service), "{service} is running already");
        let listener = TcpListener::bind(self.addr(service)).await.expect("the port it had");
        let config = self.configs.get(&service).unwrap_or_else(|| panic!("{service} is not part of the stack"));
        let instance = Instance::start(config.clone(), listener).await;
        instance.wait_until_ready().await;
        self.running.insert(service, instance);
    }

    /// Starts one more instance of `service` with the same settings on a port of its own (another
    /// replica on the same schema, Redis and services), and waits until it is ready.
    pub async fn another(&self, service: Service) -> Instance {
        let listener = ordo_testkit::free_listener().await.expect("a free loopback port");
        let config = self.configs.get(&service).unwrap_or_else(|| panic!("{service} is not part of the stack"));
        let instance = Instance::start(config.clone(), listener).await;
        instance.wait_until_ready().await;
        instance
    }

    /// Stops every process, the last started first, each within a bounded wait, and closes the pools;
    /// the first error a serve function returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        while let Some((_, instance)) = self.running.pop_last() {
            let stopped = instance.stop().await;
            if outcome.is_ok() {
                outcome = stopped;
            }
        }
        for database in self.databases.values() {
            if let Some(pool) = &database.pool {
                pool.close().await;
            }
        }
        outcome
    }
}
