//! Spawns the real thing for each test through the test harness: fresh identity, project, task and
//! audit schemas, the identity, project, task and audit services and the gateway on free loopback ports,
//! all with the test environment's Redis prefix and exchange, and waits until the gateway's `/readyz` is
//! 200 (and audit's own, which says it has identity's token keys); then drives the gateway over HTTP.

use std::time::Duration;

use ordo_harness::{Instance, Service, Stack};
use ordo_testkit::TestEnv;
use reqwest::StatusCode;
use serde_json::{Value, json};

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
    /// Extra flags of the notification service.
    pub(crate) notification_args: Vec<String>,
    /// Extra flags of the audit service.
    pub(crate) audit_args: Vec<String>,
    /// The task service the gateway calls, instead of the one spawned (a stand-in of a test).
    pub(crate) task_url: Option<String>,
    /// Extra gateway flags, such as `--max-in-flight=1`.
    pub(crate) gateway_args: Vec<String>,
    /// The Redis every process uses, instead of the shared one (a proxy a test can cut).
    pub(crate) redis_url: Option<String>,
    /// A pool on the notification service's schema ([`TestApp::notification_pool`]).
    pub(crate) notification_pool: bool,
    /// The broker every service uses, instead of the shared one (a proxy a test can cut).
    pub(crate) amqp_url: Option<String>,
    /// Where every service reaches MariaDB instead of the shared server (a proxy a test can cut);
    /// the test's own pools still reach the server itself.
    pub(crate) mysql_via: Option<std::net::SocketAddr>,
    /// Pools on the task and audit services' schemas ([`TestApp::pool`]).
    pub(crate) task_and_audit_pools: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend_timeout_ms: 5000,
            identity_args: Vec::new(),
            project_args: Vec::new(),
            task_args: Vec::new(),
            notification_args: Vec::new(),
            audit_args: Vec::new(),
            task_url: None,
            gateway_args: Vec::new(),
            redis_url: None,
            notification_pool: false,
            amqp_url: None,
            mysql_via: None,
            task_and_audit_pools: false,
        }
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
    stack: Stack,
}

/// A second gateway instance beside a [`TestApp`]'s, on the same services and Redis.
pub(crate) struct SecondGateway {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    instance: Instance,
}

impl SecondGateway {
    /// Stops it and waits until it has.
    pub(crate) async fn stop(self) {
        // Only that it stops in time matters here (the harness fails the test otherwise).
        let _ = self.instance.stop().await;
    }
}

/// Spawns identity, project, task, audit, notification and the gateway.with the default options.
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

/// Spawns identity, project, task, audit, notification and the gateway.
pub(crate) async fn spawn_app_with(options: Options) -> TestApp {
    init_logs();
    let env = TestEnv::new();

    let mut gateway_args = vec!["--backend-timeout-ms".to_owned(), options.backend_timeout_ms.to_string()];
    if let Some(task_url) = options.task_url {
        gateway_args.extend(["--task-url".to_owned(), task_url]);
    }
    // Tests exercise features, not budgets: every budget is far beyond what a test spends, unless the
    // test sets it (`rate_limits.rs` does). The limiter still runs on every request.
    for flag in RATE_LIMIT_FLAGS {
        if !options.gateway_args.iter().any(|arg| arg.split('=').next() == Some(flag)) {
            gateway_args.extend([flag.to_owned(), "1000000".to_owned()]);
        }
    }
    gateway_args.extend(options.gateway_args);
    let mut stack = Stack::of([
        Service::Identity,
        Service::Project,
        Service::Task,
        Service::Audit,
        Service::Notification,
        Service::Gateway,
    ])
    .args(Service::Identity, options.identity_args)
    .args(Service::Project, options.project_args)
    .args(Service::Task, options.task_args)
    .args(Service::Notification, options.notification_args)
    .args(Service::Audit, options.audit_args)
    .args(Service::Gateway, gateway_args);
    if let Some(redis_url) = options.redis_url {
        stack = stack.redis_url(redis_url);
    }
    if options.notification_pool {
        stack = stack.pool(Service::Notification);
    }
    if let Some(amqp_url) = options.amqp_url {
        stack = stack.amqp_url(amqp_url);
    }
    if let Some(addr) = options.mysql_via {
        stack = stack.mysql_via(addr);
    }
    if options.task_and_audit_pools {
        stack = stack.pool(Service::Task).pool(Service::Audit);
    }
    // Audit declares and binds its queue before it serves gRPC, so once the stack is ready (which
    // includes the gateway's `/readyz`, asking audit's gRPC health), every event of the test reaches it.
    let stack = stack.start(&env).await;

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp { address: stack.url(Service::Gateway), client, env, stack }
}

impl TestApp {
    /// The address `service` serves its API on.
    pub(crate) fn addr_of(&self, service: Service) -> std::net::SocketAddr {
        self.stack.addr(service)
    }

    /// The URL of `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Waits until the gateway's `/readyz` answers 200, and audit's own: it is ready once it holds
    /// identity's token keys, before which it refuses every query as unauthenticated.
    pub(crate) async fn wait_until_ready(&self) {
        self.stack.wait_until_ready().await;
    }

    /// Starts another gateway instance with the same settings, and waits until it is ready.
    pub(crate) async fn second_gateway(&self) -> SecondGateway {
        let instance = self.stack.another(Service::Gateway).await;
        SecondGateway { address: instance.url(), instance }
    }

    /// Starts another notification service instance on the same schema and queue, and waits until
    /// it is ready.
    pub(crate) async fn another_notification(&self) -> Instance {
        self.stack.another(Service::Notification).await
    }

    /// The pool on the notification service's schema, for a test that looks behind its back (asked
    /// for with [`Options::notification_pool`]).
    pub(crate) fn notification_pool(&self) -> &sqlx::MySqlPool {
        self.stack.pool(Service::Notification)
    }

    /// The pool on `service`'s schema (asked for with [`Options::notification_pool`] or
    /// [`Options::task_and_audit_pools`]), on the shared server whatever the services reach it through.
    pub(crate) fn pool(&self, service: Service) -> &sqlx::MySqlPool {
        self.stack.pool(service)
    }

    /// Identity's configuration (its `rotate-key` command works on the same schema).
    pub(crate) fn identity_config(&self) -> &ordo_identity::Config {
        self.stack.identity_config()
    }

    /// The connection URL of identity's schema, for a test that looks behind its back.
    pub(crate) fn identity_database_url(&self) -> &str {
        self.stack.database_url(Service::Identity)
    }

    /// Stops identity (as a crash or a deploy would), leaving the gateway running.
    pub(crate) async fn stop_identity(&mut self) {
        self.stop(Service::Identity).await;
    }

    /// Stops the project service, leaving identity and the gateway running.
    pub(crate) async fn stop_project(&mut self) {
        self.stop(Service::Project).await;
    }

    /// Stops the task service, leaving the others and the gateway running.
    pub(crate) async fn stop_task(&mut self) {
        self.stop(Service::Task).await;
    }

    /// Stops the audit service, leaving the others and the gateway running.
    pub(crate) async fn stop_audit(&mut self) {
        self.stop(Service::Audit).await;
    }

    /// Stops `service` (the graceful drain a SIGTERM starts), leaving the others running.
    pub(crate) async fn stop_service(&mut self, service: Service) {
        self.stop(service).await;
    }

    /// Starts `service`'s stop (what SIGTERM starts) without waiting for it; `stop_service` waits.
    pub(crate) fn begin_stop(&self, service: Service) {
        self.stack.begin_stop(service);
    }

    /// Starts `service` again on the port it had, and waits until it is ready.
    pub(crate) async fn start_service(&mut self, service: Service) {
        self.stack.start_service(service).await;
    }

    async fn stop(&mut self, service: Service) {
        // Only that it stops in time matters here (the harness fails the test otherwise).
        let _ = self.stack.stop_service(service).await;
    }

    /// Starts identity again on the port it had.
    pub(crate) async fn start_identity(&mut self) {
        self.stack.start_service(Service::Identity).await;
    }

    /// Stops everything and drops what the test made.
    pub(crate) async fn cleanup(self) {
        // Only that everything stops in time matters here (the harness fails the test otherwise).
        let _ = self.stack.stop().await;
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

    /// A POST of a JSON body with a bearer token.
    pub(crate) async fn post_json_as(&self, access_token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(access_token).json(body).send().await.unwrap()
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

/// A raw TCP connection to the app's gateway, for a test that speaks HTTP/1.1 bytes itself.
pub(crate) async fn connect(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap()
}

/// What the server sends until it closes the connection; `None` if it is still open after `wait`.
pub(crate) async fn read_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return None,
        }
    }
}

/// A request as the holder of `token` to `path` (under `/api/v1`).
pub(crate) fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token)
}

/// The JSON body of a successful response, failing the test (naming `what`) on any other.
pub(crate) async fn ok(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

/// A background job (`/jobs/{id}`) once it has ended, asked for every 100 ms for up to two minutes.
pub(crate) async fn job_ended(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let job =
            ok(call(app, token, reqwest::Method::GET, &format!("/jobs/{id}")).send().await.unwrap(), "get the job")
                .await;
        if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job did not end: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
