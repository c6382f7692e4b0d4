//! Isolation for tests that talk to the real MariaDB, Redis and RabbitMQ: every [`TestEnv`] owns a
//! fresh schema, its own exchange and queue names and its own Redis key prefix, so tests run in
//! parallel and twice in a row, and everything it made is dropped afterwards.
//!
//! Connection addresses come from `ORDO_TEST_MYSQL_URL`, `ORDO_TEST_REDIS_URL`,
//! `ORDO_TEST_AMQP_URL`, `ORDO_TEST_S3_ENDPOINT` and `ORDO_TEST_SES_ENDPOINT`, with the local defaults of a developer machine.
//! A test that uses object storage takes its own bucket ([`TestEnv::bucket`]) and empties and
//! removes it itself (this crate has no S3 client).
//!
//! [`TcpProxy`] puts a cuttable proxy between a process and a backend, to test outages without
//! stopping the shared servers; [`http_get`] reads an ops route such as `/readyz`. With the `push`
//! feature, `push::PushService` is a Web Push service on loopback that checks what it is sent.

mod proxy;
#[cfg(feature = "push")]
pub mod push;
mod service;

use std::sync::{Mutex, PoisonError};

use anyhow::Context as _;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};

pub use proxy::{TcpProxy, host_port};
pub use service::Service;

const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const DEFAULT_S3_ENDPOINT: &str = "http://127.0.0.1:9000";
const DEFAULT_SES_ENDPOINT: &str = "http://127.0.0.1:9002";

/// The server address of MariaDB for tests (no schema).
pub fn mysql_server_url() -> String {
    std::env::var("ORDO_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_owned())
}

/// The Redis address for tests.
pub fn redis_url() -> String {
    std::env::var("ORDO_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// The RabbitMQ address for tests.
pub fn amqp_url() -> String {
    std::env::var("ORDO_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// The S3-compatible endpoint for tests (moto locally; any credentials work).
pub fn s3_endpoint() -> String {
    std::env::var("ORDO_TEST_S3_ENDPOINT").unwrap_or_else(|_| DEFAULT_S3_ENDPOINT.to_owned())
}

/// A mail the local SES stand-in (moto, at [`ses_endpoint`]) took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The sender.
    pub from: String,
    /// The subject.
    pub subject: String,
    /// The body: its HTML part when it has one (moto keeps one part).
    pub body: String,
}

/// The mails the local SES stand-in took for `to`, in the order it took them. Addresses of one test
/// are its own, so other tests' mails never show.
///
/// # Errors
///
/// When the stand-in does not answer, or answers something else than its model dump.
pub async fn sent_mails(to: &str) -> anyhow::Result<Vec<SentMail>> {
    let endpoint = ses_endpoint();
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let addr = tokio::net::lookup_host(authority).await?.next().context("no address for the SES endpoint")?;
    let (status, body) = http_get(addr, "/moto-api/data.json").await?;
    anyhow::ensure!(status == 200, "moto answered {status}");
    let data: serde_json::Value = serde_json::from_str(&body)?;
    let messages = data["ses"]["Message"].as_array().cloned().unwrap_or_default();
    Ok(messages
        .iter()
        .filter(|message| {
            message["destinations"]["ToAddresses"].as_array().is_some_and(|to_all| to_all.iter().any(|a| a == to))
        })
        .map(|message| SentMail {
            from: message["source"].as_str().unwrap_or_default().to_owned(),
            subject: message["subject"].as_str().unwrap_or_default().to_owned(),
            body: message["body"].as_str().unwrap_or_default().to_owned(),
        })
        .collect())
}

/// The mails sent to `to` once there are at least `count` (looked for during 15 s), read again 1.5 s
/// later, so that a mail too many shows.
///
/// # Errors
///
/// When the stand-in does not answer, or fewer than `count` mails came in time.
pub async fn mails_once(to: &str, count: usize) -> anyhow::Result<Vec<SentMail>> {
    for _ in 0..150 {
        if sent_mails(to).await?.len() >= count {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            return sent_mails(to).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{to} did not get {count} mails")
}

/// The SES v2 endpoint for tests (a moto server of its own; any credentials work).
pub fn ses_endpoint() -> String {
    std::env::var("ORDO_TEST_SES_ENDPOINT").unwrap_or_else(|_| DEFAULT_SES_ENDPOINT.to_owned())
}

/// A message for [`publish_all`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its routing key (the event's type).
    pub routing_key: String,
    /// Its message id (the event's id).
    pub message_id: String,
    /// The encoded envelope.
    pub body: Vec<u8>,
}

/// Publishes `messages` on `exchange` as a service's relay would (persistent, protobuf), with at most
/// 1,000 unconfirmed at once, and waits for every confirm: a load generator's bulk publish. How many
/// were published.
///
/// # Errors
///
/// When the broker cannot be reached or does not confirm a message.
pub async fn publish_all(
    amqp_url: &str,
    exchange: &str,
    messages: impl IntoIterator<Item = Outgoing>,
) -> anyhow::Result<u64> {
    let amqp = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = amqp.create_channel().await?;
    channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await?;
    let mut pending = Vec::with_capacity(1000);
    let mut published = 0;
    for message in messages {
        let properties = lapin::BasicProperties::default()
            .with_message_id(message.message_id.into())
            .with_content_type("application/x-protobuf".into())
            .with_delivery_mode(2);
        let options = lapin::options::BasicPublishOptions::default();
        let routing_key = message.routing_key.as_str().into();
        pending.push(channel.basic_publish(exchange.into(), routing_key, options, &message.body, properties).await?);
        published += 1;
        if pending.len() == 1000 {
            for confirm in pending.drain(..) {
                anyhow::ensure!(confirm.await?.is_ack(), "the broker did not confirm a message");
            }
        }
    }
    for confirm in pending {
        anyhow::ensure!(confirm.await?.is_ack(), "the broker did not confirm a message");
    }
    let _ = amqp.close(200, "published".into()).await;
    Ok(published)
}

/// One test's private slice of the shared infrastructure.
#[derive(Debug)]
pub struct TestEnv {
    /// A short unique id, used in every name this environment hands out.
    pub id: String,
    schemas: Mutex<Vec<String>>,
    queues: Mutex<Vec<String>>,
    cleaned: bool,
}

impl TestEnv {
    /// Creates a new environment; schemas and names are made on demand.
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Self { id, schemas: Mutex::new(Vec::new()), queues: Mutex::new(Vec::new()), cleaned: false }
    }

    /// Creates a fresh, empty schema named after `service` and returns its connection URL.
    pub async fn create_schema(&self, service: &str) -> anyhow::Result<String> {
        let name = format!("ordo_test_{}_{}", service, self.id);
        let mut conn = server_options()?.connect().await.context("connect to MariaDB")?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE `{name}`"))).execute(&mut conn).await?;
        conn.close().await?;
        self.schemas.lock().unwrap_or_else(PoisonError::into_inner).push(name.clone());
        Ok(format!("{}/{}", mysql_server_url().trim_end_matches('/'), name))
    }

    /// Creates a fresh schema and returns a small pool on it.
    pub async fn create_pool(&self, service: &str) -> anyhow::Result<(String, MySqlPool)> {
        let url = self.create_schema(service).await?;
        let pool = MySqlPoolOptions::new().max_connections(10).connect(&url).await?;
        Ok((url, pool))
    }

    /// The topic exchange this environment's events go through.
    pub fn exchange(&self) -> String {
        format!("ordo.test.{}.events", self.id)
    }

    /// A queue name owned by this environment; it, its `.dlq` and its `.dlx` exchange are deleted on
    /// cleanup.
    pub fn queue(&self, name: &str) -> String {
        let queue = format!("ordo.test.{}.{}", self.id, name);
        self.queues.lock().unwrap_or_else(PoisonError::into_inner).push(queue.clone());
        queue
    }

    /// The S3 bucket name of this environment (lower-case, DNS-safe).
    pub fn bucket(&self) -> String {
        format!("ordo-test-{}", self.id)
    }

    /// The Redis key prefix of this environment; every key under it is deleted on cleanup.
    pub fn redis_prefix(&self) -> String {
        format!("ordo:test:{}:", self.id)
    }

    /// Publishes `body` on this environment's exchange under `routing_key` (persistent, with
    /// `message_id`), as a service's relay would, and waits for the broker's confirm.
    pub async fn publish(&self, routing_key: &str, body: &[u8], message_id: &str) -> anyhow::Result<()> {
        let amqp = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
        let channel = amqp.create_channel().await?;
        channel.confirm_select(lapin::options::ConfirmSelectOptions::default()).await?;
        let confirm = channel
            .basic_publish(
                self.exchange().as_str().into(),
                routing_key.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default().with_message_id(message_id.into()).with_delivery_mode(2),
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "the broker did not confirm the message");
        let _ = amqp.close(200, "published".into()).await;
        Ok(())
    }

    /// Drops every schema, queue, exchange and Redis key this environment made.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.cleaned = true;
        cleanup(&self).await
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // A test that failed before its explicit cleanup still leaves nothing behind. Drop cannot
        // await, so the cleanup runs on a thread of its own with a small runtime.
        let env = TestEnv {
            id: self.id.clone(),
            schemas: Mutex::new(std::mem::take(&mut *self.schemas.lock().unwrap_or_else(PoisonError::into_inner))),
            queues: Mutex::new(std::mem::take(&mut *self.queues.lock().unwrap_or_else(PoisonError::into_inner))),
            cleaned: true,
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(cleanup(&env));
            }
        })
        .join();
    }
}

fn server_options() -> anyhow::Result<MySqlConnectOptions> {
    Ok(mysql_server_url().parse::<MySqlConnectOptions>()?)
}

async fn cleanup(env: &TestEnv) -> anyhow::Result<()> {
    let schemas = std::mem::take(&mut *env.schemas.lock().unwrap_or_else(PoisonError::into_inner));
    if !schemas.is_empty() {
        let mut conn = server_options()?.connect().await?;
        // A test that panicked may leave pooled connections with an open transaction on the schema;
        // their metadata locks would block DROP DATABASE forever, so end them first.
        sqlx::query("SET SESSION lock_wait_timeout = 30").execute(&mut conn).await?;
        for schema in schemas {
            let holders: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()")
                    .bind(&schema)
                    .fetch_all(&mut conn)
                    .await?;
            for (id,) in holders {
                let _ = sqlx::query(AssertSqlSafe(format!("KILL {id}"))).execute(&mut conn).await;
            }
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{schema}`"))).execute(&mut conn).await?;
        }
        conn.close().await?;
    }

    let queues = std::mem::take(&mut *env.queues.lock().unwrap_or_else(PoisonError::into_inner));
    let amqp = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = amqp.create_channel().await?;
    for queue in &queues {
        for name in [queue.clone(), format!("{queue}.dlq")] {
            channel.queue_delete(name.into(), QueueDeleteOptions::default()).await?;
        }
        channel.exchange_delete(format!("{queue}.dlx").into(), ExchangeDeleteOptions::default()).await?;
    }
    channel.exchange_delete(env.exchange().into(), ExchangeDeleteOptions::default()).await?;
    let _ = amqp.close(200, "test cleanup".into()).await;

    let client = redis::Client::open(redis_url())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{}*", env.redis_prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await?;
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut redis).await?;
    }
    Ok(())
}

/// Binds a listener on a free loopback port.
pub async fn free_listener() -> anyhow::Result<tokio::net::TcpListener> {
    Ok(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
}

/// `GET path` on an HTTP/1.1 server at `addr`: the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").context("no end of headers")?;
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    Ok((status, body.to_owned()))
}
