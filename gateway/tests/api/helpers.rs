//! Spawns the real thing for each test: fresh identity, project, task and audit schemas, the identity,
//! project, task and audit services and the gateway on free loopback ports, all with the test environment's
//! Redis prefix and exchange, and waits until the gateway's `/readyz` is 200 (and audit's own, which
//! says it has identity's token keys).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser as _;
use ordo_testkit::TestEnv;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A password that passes identity's rules.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The gateway's budget flags, set high for every test that does not set them itself.
const RATE_LIMIT_FLAGS: [&str; 5] = [
    "--rate-limit-read",
    "--rate-limit-write",
    "--rate-limit-costly",
    "--rate-limit-credentials",
    "--rate-limit-email-lookup",
];

/// How long to wait for the stack to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of [`spawn_app_with`].
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The gateway's `--backend-timeout-ms`.
    pub(crate) backend_timeout_ms: u64,
    /// Extra identity flags, such as `--access-token-ttl-secs=-60`.
    pub(crate) identity_args: Vec<String>,
    /// Extra project service flags.
    pub(crate) project_args: Vec<String>,
    /// Extra task service flags.
    pub(crate) task_args: Vec<String>,
    /// The task service the gateway calls, instead of the one spawned (a stand-in of a test).
    pub(crate) task_url: Option<String>,
    /// Extra gateway flags, such as `--max-in-flight=1`.
    pub(crate) gateway_args: Vec<String>,
    /// The Redis every process uses, instead of the shared one (a proxy a test can cut).
    pub(crate) redis_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend_timeout_ms: 5000,
            identity_args: Vec::new(),
            project_args: Vec::new(),
            task_args: Vec::new(),
            task_url: None,
            gateway_args: Vec::new(),
            redis_url: None,
        }
    }
}

/// A running backend service (identity, project, task or audit).
struct Service {
    name: &'static str,
    grpc_addr: SocketAddr,
    /// Its `/healthz`, `/readyz` and `/metrics`.
    ops_addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Service {
    async fn identity(config: ordo_identity::Config, grpc: tokio::net::TcpListener) -> Self {
        Self::start("identity", grpc, |grpc, ops, shutdown| ordo_identity::serve(config, grpc, ops, shutdown)).await
    }

    async fn project(config: ordo_project::Config, grpc: tokio::net::TcpListener) -> Self {
        Self::start("project", grpc, |grpc, ops, shutdown| ordo_project::serve(config, grpc, ops, shutdown)).await
    }

    async fn task(config: ordo_task::Config, grpc: tokio::net::TcpListener) -> Self {
        Self::start("task", grpc, |grpc, ops, shutdown| ordo_task::serve(config, grpc, ops, shutdown)).await
    }

    async fn audit(config: ordo_audit::Config, grpc: tokio::net::TcpListener) -> Self {
        Self::start("audit", grpc, |grpc, ops, shutdown| ordo_audit::serve(config, grpc, ops, shutdown)).await
    }

    async fn start<F>(
        name: &'static str,
        grpc: tokio::net::TcpListener,
        serve: impl FnOnce(tokio::net::TcpListener, tokio::net::TcpListener, CancellationToken) -> F,
    ) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let grpc_addr = grpc.local_addr().unwrap();
        let ops = ordo_testkit::free_listener().await.unwrap();
        let ops_addr = ops.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(grpc, ops, shutdown.clone()));
        Self { name, grpc_addr, ops_addr, shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        assert!(result.is_ok(), "{} did not stop within 30 s", self.name);
    }
}

/// The gateway and services of one test, and a client.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    /// A client without cookies or redirects.
    pub(crate) client: reqwest::Client,
    /// The test's private slice of MariaDB, Redis and RabbitMQ.
    pub(crate) env: TestEnv,
    identity: Option<Service>,
    identity_grpc_addr: SocketAddr,
    identity_config: ordo_identity::Config,
    project: Option<Service>,
    task: Option<Service>,
    audit: Option<Service>,
    gateway_config: ordo_gateway::Config,
    gateway_shutdown: CancellationToken,
    gateway: JoinHandle<anyhow::Result<()>>,
}

/// A second gateway instance beside a [`TestApp`]'s, on the same services and Redis.
pub(crate) struct SecondGateway {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl SecondGateway {
    /// Stops it and waits until it has.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        assert!(result.is_ok(), "the second gateway did not stop within 30 s");
    }
}

/// Spawns identity, project, task, audit and the gateway with the default options.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// Logs of every process to stderr when `TEST_LOG` is set (`TEST_LOG=1 cargo nextest run ...`).
fn init_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some()
            && let Ok(guard) = ordo_platform::telemetry::init("gateway-tests", ordo_platform::LogFormat::Pretty)
        {
            // The guard flushes spans on drop; the test process ends without dropping it.
            std::mem::forget(guard);
        }
    });
}

/// Spawns identity, project, task, audit and the gateway.
pub(crate) async fn spawn_app_with(options: Options) -> TestApp {
    init_logs();
    let env = TestEnv::new();
    let database_url = env.create_schema("identity").await.unwrap();
    let project_database_url = env.create_schema("project").await.unwrap();
    let task_database_url = env.create_schema("task").await.unwrap();
    let audit_database_url = env.create_schema("audit").await.unwrap();
    let prefix = env.redis_prefix();
    let exchange = env.exchange();
    let redis_url = options.redis_url.clone().unwrap_or_else(ordo_testkit::redis_url);

    let mut identity_args = vec![
        "ordo-identity".to_owned(),
        "--database-url".to_owned(),
        database_url,
        "--redis-url".to_owned(),
        redis_url.clone(),
        "--redis-prefix".to_owned(),
        prefix.clone(),
        "--events-exchange".to_owned(),
        exchange.clone(),
        "--amqp-url".to_owned(),
        ordo_testkit::amqp_url(),
    ];
    identity_args.extend(options.identity_args);
    let identity_config = ordo_identity::Config::try_parse_from(identity_args).unwrap();
    let identity = Service::identity(identity_config.clone(), ordo_testkit::free_listener().await.unwrap()).await;
    let identity_grpc_addr = identity.grpc_addr;

    let mut project_args = vec![
        "ordo-project".to_owned(),
        "--database-url".to_owned(),
        project_database_url,
        "--redis-url".to_owned(),
        redis_url.clone(),
        "--redis-prefix".to_owned(),
        prefix.clone(),
        "--amqp-url".to_owned(),
        ordo_testkit::amqp_url(),
        "--events-exchange".to_owned(),
        exchange.clone(),
        "--events-queue".to_owned(),
        env.queue("project.events"),
        "--identity-url".to_owned(),
        format!("http://{identity_grpc_addr}"),
    ];
    project_args.extend(options.project_args);
    let project_config = ordo_project::Config::try_parse_from(project_args).unwrap();
    let project = Service::project(project_config, ordo_testkit::free_listener().await.unwrap()).await;
    let project_grpc_addr = project.grpc_addr;

    let mut task_args = vec![
        "ordo-task".to_owned(),
        "--database-url".to_owned(),
        task_database_url,
        "--redis-url".to_owned(),
        redis_url.clone(),
        "--redis-prefix".to_owned(),
        prefix.clone(),
        "--amqp-url".to_owned(),
        ordo_testkit::amqp_url(),
        "--events-exchange".to_owned(),
        exchange.clone(),
        "--events-queue".to_owned(),
        env.queue("task.events"),
        "--identity-url".to_owned(),
        format!("http://{identity_grpc_addr}"),
        "--project-url".to_owned(),
        format!("http://{project_grpc_addr}"),
    ];
    // Object storage: the S3-compatible server of `ORDO_TEST_S3_ENDPOINT` (any credentials) and a
    // bucket of the test's own, which the service creates and cleanup removes.
    {
        let endpoint = ordo_testkit::s3_endpoint();
        task_args.extend(
            [
                "--s3-endpoint",
                &endpoint,
                "--s3-bucket",
                &env.bucket(),
                "--s3-access-key-id",
                "ordo-test",
                "--s3-secret-access-key",
                "ordo-test",
            ]
            .map(str::to_owned),
        );
    }
    task_args.extend(options.task_args);
    let task_config = ordo_task::Config::try_parse_from(task_args).unwrap();
    let task = Service::task(task_config, ordo_testkit::free_listener().await.unwrap()).await;
    let task_grpc_addr = task.grpc_addr;

    // Audit declares and binds its queue before it serves gRPC, so once the gateway's `/readyz` (which
    // asks audit's gRPC health) is 200, every event of the test reaches it.
    let audit_args = [
        "ordo-audit".to_owned(),
        "--database-url".to_owned(),
        audit_database_url,
        "--amqp-url".to_owned(),
        ordo_testkit::amqp_url(),
        "--events-exchange".to_owned(),
        exchange,
        "--events-queue".to_owned(),
        env.queue("audit.events"),
        "--redis-url".to_owned(),
        redis_url.clone(),
        "--redis-prefix".to_owned(),
        prefix.clone(),
        "--identity-url".to_owned(),
        format!("http://{identity_grpc_addr}"),
        "--project-url".to_owned(),
        format!("http://{project_grpc_addr}"),
    ];
    let audit_config = ordo_audit::Config::try_parse_from(audit_args).unwrap();
    let audit = Service::audit(audit_config, ordo_testkit::free_listener().await.unwrap()).await;
    let audit_grpc_addr = audit.grpc_addr;

    let mut gateway_args = vec![
        "ordo-gateway".to_owned(),
        "--identity-url".to_owned(),
        format!("http://{identity_grpc_addr}"),
        "--project-url".to_owned(),
        format!("http://{project_grpc_addr}"),
        "--task-url".to_owned(),
        options.task_url.unwrap_or_else(|| format!("http://{task_grpc_addr}")),
        "--audit-url".to_owned(),
        format!("http://{audit_grpc_addr}"),
        "--redis-url".to_owned(),
        redis_url,
        "--redis-prefix".to_owned(),
        prefix,
        "--backend-timeout-ms".to_owned(),
        options.backend_timeout_ms.to_string(),
    ];
    // Tests exercise features, not budgets: every budget is far beyond what a test spends, unless the
    // test sets it (`rate_limits.rs` does). The limiter still runs on every request.
    for flag in RATE_LIMIT_FLAGS {
        if !options.gateway_args.iter().any(|arg| arg.split('=').next() == Some(flag)) {
            gateway_args.extend([flag.to_owned(), "1000000".to_owned()]);
        }
    }
    gateway_args.extend(options.gateway_args);
    let gateway_config = ordo_gateway::Config::try_parse_from(gateway_args).unwrap();
    let listener = ordo_testkit::free_listener().await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let gateway_shutdown = CancellationToken::new();
    let gateway = tokio::spawn(ordo_gateway::serve(gateway_config.clone(), listener, gateway_shutdown.clone()));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let app = TestApp {
        address,
        client,
        env,
        identity: Some(identity),
        identity_grpc_addr,
        identity_config,
        project: Some(project),
        task: Some(task),
        audit: Some(audit),
        gateway_config,
        gateway_shutdown,
        gateway,
    };
    app.wait_until_ready().await;
    app
}

impl TestApp {
    /// The URL of `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Waits until the gateway's `/readyz` answers 200, and audit's own: it is ready once it holds
    /// identity's token keys, before which it refuses every query as unauthenticated.
    pub(crate) async fn wait_until_ready(&self) {
        let started = Instant::now();
        let audit_readyz = self.audit.as_ref().map(|audit| format!("http://{}/readyz", audit.ops_addr));
        loop {
            assert!(!self.gateway.is_finished(), "the gateway stopped while starting");
            for service in [&self.identity, &self.project, &self.task, &self.audit].into_iter().flatten() {
                assert!(!service.task.is_finished(), "{} stopped while starting", service.name);
            }
            let audit_ready = match &audit_readyz {
                Some(url) => self.is_ready(url).await,
                None => true,
            };
            if audit_ready && self.is_ready(&self.url("/readyz")).await {
                return;
            }
            assert!(started.elapsed() < READY_TIMEOUT, "not ready within {READY_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `url` answers 200.
    async fn is_ready(&self, url: &str) -> bool {
        self.client.get(url).send().await.is_ok_and(|response| response.status() == StatusCode::OK)
    }

    /// Starts another gateway instance with the same settings, and waits until it is ready.
    pub(crate) async fn second_gateway(&self) -> SecondGateway {
        let listener = ordo_testkit::free_listener().await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(ordo_gateway::serve(self.gateway_config.clone(), listener, shutdown.clone()));
        let ready = format!("{address}/readyz");
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.client.get(&ready).send().await.map(|r| r.status()).ok() != Some(StatusCode::OK) {
            assert!(Instant::now() < deadline, "the second gateway was not ready within {READY_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SecondGateway { address, shutdown, task }
    }

    /// Stops identity (as a crash or a deploy would), leaving the gateway running.
    pub(crate) async fn stop_identity(&mut self) {
        if let Some(identity) = self.identity.take() {
            identity.stop().await;
        }
    }

    /// Stops the project service, leaving identity and the gateway running.
    pub(crate) async fn stop_project(&mut self) {
        if let Some(project) = self.project.take() {
            project.stop().await;
        }
    }

    /// Stops the task service, leaving the others and the gateway running.
    pub(crate) async fn stop_task(&mut self) {
        if let Some(task) = self.task.take() {
            task.stop().await;
        }
    }

    /// Stops the audit service, leaving the others and the gateway running.
    pub(crate) async fn stop_audit(&mut self) {
        if let Some(audit) = self.audit.take() {
            audit.stop().await;
        }
    }

    /// Starts identity again on the port it had.
    pub(crate) async fn start_identity(&mut self) {
        let grpc = tokio::net::TcpListener::bind(self.identity_grpc_addr).await.unwrap();
        self.identity = Some(Service::identity(self.identity_config.clone(), grpc).await);
    }

    /// Stops everything and drops what the test made.
    pub(crate) async fn cleanup(mut self) {
        self.gateway_shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.gateway).await;
        self.stop_audit().await;
        self.stop_task().await;
        self.stop_project().await;
        self.stop_identity().await;
        remove_bucket(&self.env.bucket()).await;
        self.env.cleanup().await.unwrap();
    }

    /// What the test's bucket holds: its objects' keys and how many multipart uploads are open.
    pub(crate) async fn stored_objects(&self) -> (Vec<String>, usize) {
        let s3 = s3_client();
        let bucket = self.env.bucket();
        let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
        let keys = objects.contents().iter().filter_map(|object| object.key().map(str::to_owned)).collect();
        let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
        (keys, uploads.uploads().len())
    }

    /// `POST /api/v1/auth/register`.
    pub(crate) async fn register(&self, email: &str, password: &str, display_name: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "display_name": display_name}),
        )
        .await
    }

    /// Registers an account and returns its user id, failing the test unless it is created.
    pub(crate) async fn register_user(&self, email: &str, display_name: &str) -> String {
        let response = self.register(email, PASSWORD, display_name).await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {email}");
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/auth/login`.
    pub(crate) async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/login", &json!({"email": email, "password": password})).await
    }

    /// Signs in and returns the token pair, failing the test unless it succeeds.
    pub(crate) async fn tokens(&self, email: &str) -> Tokens {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {email}");
        Tokens::from_json(&response.json().await.unwrap())
    }

    /// Registers an account, signs in, and returns its id and tokens.
    pub(crate) async fn user(&self, email: &str, display_name: &str) -> (String, Tokens) {
        let id = self.register_user(email, display_name).await;
        (id, self.tokens(email).await)
    }

    /// `POST /api/v1/auth/refresh`.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/refresh", &json!({"refresh_token": refresh_token})).await
    }

    /// `GET /api/v1/users/me` with `access_token`.
    pub(crate) async fn me(&self, access_token: &str) -> reqwest::Response {
        self.client.get(self.url("/api/v1/users/me")).bearer_auth(access_token).send().await.unwrap()
    }

    /// A GET with a bearer token.
    pub(crate) async fn get_as(&self, access_token: &str, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(access_token).send().await.unwrap()
    }

    /// A POST of a JSON body without a token.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }
}

/// A client of the local S3-compatible server, to look behind the task service's back.
fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("ordo-test", "ordo-test", None, None, "tests"))
        .endpoint_url(ordo_testkit::s3_endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Empties and removes a test's bucket on the local S3-compatible server (absent is fine).
async fn remove_bucket(bucket: &str) {
    let s3 = s3_client();
    let Ok(listed) = s3.list_objects_v2().bucket(bucket).send().await else { return };
    for key in listed.contents().iter().filter_map(|object| object.key()) {
        s3.delete_object().bucket(bucket).key(key).send().await.unwrap();
    }
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

/// An access and refresh token pair.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    /// The JWT.
    pub(crate) access: String,
    /// The opaque refresh token.
    pub(crate) refresh: String,
}

impl Tokens {
    /// Reads a login or refresh response body.
    pub(crate) fn from_json(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// Asserts that `response` is a problem document with `status`, and returns its body.
pub(crate) async fn assert_problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("https://ordo.dev/problems/"), "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}
