//! Ordo's task service: tasks, their numbering and board order, comments and watchers, with every
//! change announced through the outbox. Who may do what is the project service's answer
//! (`CheckAccess`), asked with the caller's own token and kept briefly in memory ([`app::AccessCache`]);
//! every instance subscribes to the events that change an answer and drops it when they arrive.
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_events::{Consumer, OutboxSignal, Subscription};
use ordo_platform::aws::AwsSettings;
use ordo_platform::config::Secret;
use ordo_proto::task::v1::job_service_server::JobServiceServer;
use ordo_proto::task::v1::report_service_server::ReportServiceServer;
use ordo_proto::task::v1::task_service_server::TaskServiceServer;
pub use ordo_service::Command;
use ordo_service::projects::ProjectStandings;
use ordo_service::{CancellationToken, IdentityAuth, Listeners, Server, UpstreamArgs};

use crate::app::ports::PageCache;
use crate::app::{AccessCache, AttachmentSettings, JobSettings, TaskService};
use crate::infra::{
    AccessInvalidation, ExportFiles, ImportFiles, MySqlTaskStore, ProjectEventHandler, RedisPageCache, S3ObjectStore,
    S3Settings,
};

ordo_service::config! {
    /// Every setting of the task service, from flags or `ORDO_*` environment variables.
    #[service(name = "task", grpc_port = 50053, ops_port = 9103, queue = "task.events", serve = serve)]
    pub struct Config {
        /// gRPC URL of the project service (who may do what in which project).
        #[arg(long, env = "ORDO_PROJECT_URL", default_value = "http://127.0.0.1:50052")]
        pub project_url: String,
        /// How long an answer of the project service (a user's standing in a project) is reused,
        /// milliseconds; the events that change it drop it sooner. 0 asks every time.
        #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_MS", default_value_t = 5000)]
        pub access_cache_ttl_ms: u64,
        /// Most answers of the project service kept at once.
        #[arg(long, env = "ORDO_ACCESS_CACHE_CAPACITY", default_value_t = 100_000)]
        pub access_cache_capacity: usize,
        /// How long an encoded page of a project's task list is kept in Redis, seconds; any change to
        /// the project's tasks makes its pages stale at once. 0 turns the page cache off.
        #[arg(long, env = "ORDO_LIST_CACHE_TTL_SECS", default_value_t = 30)]
        pub list_cache_ttl_secs: u64,
        /// Tasks whose project each instance remembers, to answer `GetTask` from the page cache
        /// (about 100 bytes each); 0 reads every task from the database. Needs the page cache.
        #[arg(long, env = "ORDO_TASK_CACHE_ENTRIES", default_value_t = 50_000,
              value_parser = clap::value_parser!(u64).range(..=10_000_000))]
        pub task_cache_entries: u64,
        /// S3 endpoint for attachments, e.g. a local S3-compatible server; empty for AWS itself.
        #[arg(long, env = "ORDO_S3_ENDPOINT", default_value = "http://127.0.0.1:9000")]
        pub s3_endpoint: String,
        /// Region of the attachment bucket.
        #[arg(long, env = "ORDO_S3_REGION", default_value = "us-east-1")]
        pub s3_region: String,
        /// Bucket of attachment objects (created at start when missing).
        #[arg(long, env = "ORDO_S3_BUCKET", default_value = "ordo-attachments")]
        pub s3_bucket: String,
        /// Access key id; unset uses the AWS default chain (environment, ECS task role, ...).
        #[arg(long, env = "ORDO_S3_ACCESS_KEY_ID", requires = "s3_secret_access_key")]
        pub s3_access_key_id: Option<String>,
        /// Secret access key, with --s3-access-key-id.
        #[arg(long, env = "ORDO_S3_SECRET_ACCESS_KEY", requires = "s3_access_key_id")]
        pub s3_secret_access_key: Option<Secret<String>>,
        /// Virtual-hosted-style bucket addressing (`bucket.endpoint`), as AWS prefers; off uses path style
        /// (`endpoint/bucket`), which local S3-compatible servers need.
        #[arg(long, env = "ORDO_S3_VIRTUAL_HOSTED", default_value_t = false)]
        pub s3_virtual_hosted: bool,
        /// Largest attachment, in bytes (25 MiB).
        #[arg(long, env = "ORDO_MAX_ATTACHMENT_BYTES", default_value_t = 26_214_400)]
        pub max_attachment_bytes: u64,
        /// Lifetime of presigned download URLs, seconds; 0 turns them off.
        #[arg(long, env = "ORDO_PRESIGN_TTL_SECS", default_value_t = 300)]
        pub presign_ttl_secs: u64,
        /// How often deleted attachments' objects are swept from storage, seconds.
        #[arg(long, env = "ORDO_OBJECT_SWEEP_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        pub object_sweep_secs: u64,
        /// How often an instance looks for tasks whose words the search index lacks (written before it,
        /// or by an older release during a rolling deploy), seconds.
        #[arg(long, env = "ORDO_WORD_INDEX_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        pub word_index_secs: u64,
        /// How long an instance holds a background job (an export) without renewing its lease,
        /// seconds; it renews with every page it writes. An instance that dies leaves the job to
        /// another once the lease has run out.
        #[arg(long, env = "ORDO_JOB_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        pub job_lease_secs: u64,
        /// Whether this instance runs background jobs. Every instance queues them and answers for
        /// them; a deployment may leave the running to some (say, a service of its own in ECS).
        #[arg(long, env = "ORDO_RUN_JOBS", default_value_t = true, action = clap::ArgAction::Set)]
        pub run_jobs: bool,
        /// How often an idle instance looks for a queued job, milliseconds.
        #[arg(long, env = "ORDO_JOB_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
        pub job_poll_ms: u64,
        /// How long a finished export's file is kept in object storage, hours.
        #[arg(long, env = "ORDO_EXPORT_RETENTION_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=8760))]
        pub export_retention_hours: u64,
        /// Identity and the timeout of calls to other services.
        #[command(flatten)]
        pub upstream: UpstreamArgs,
    }
}

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds, the consumer finishes its message.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut server, backends) = Server::start("task", &config.service, &MIGRATOR, shutdown).await?;
    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;
    let timeout = config.upstream.backend_timeout;
    let redis_prefix = &config.service.redis.prefix;

    let projects = ordo_platform::grpc::lazy_channel(&config.project_url, timeout).context("invalid --project-url")?;
    let objects = S3ObjectStore::new(&s3_settings(&config), timeout).await;
    // Not awaited: attachments wait for the bucket, nothing else does (`/readyz` creates it too).
    let bucket = objects.clone();
    tokio::spawn(async move {
        if let Err(error) = bucket.ensure_bucket().await {
            tracing::warn!(%error, bucket = bucket.bucket(), "the attachment bucket is not available yet");
        }
    });
    let access = AccessCache::new(
        Arc::new(ProjectStandings::new(projects)),
        Duration::from_millis(config.access_cache_ttl_ms),
        config.access_cache_capacity,
    );
    let invalidation = Subscription::new(
        config.service.subscription_config("task-access-cache", infra::access_events::BINDINGS),
        AccessInvalidation::new(access.clone()),
    )?;
    server.spawn(|shutdown| invalidation.run(shutdown));
    let signal = OutboxSignal::default();
    let pages: Option<Arc<dyn PageCache>> = (config.list_cache_ttl_secs > 0).then(|| {
        Arc::new(RedisPageCache::new(
            backends.redis.clone(),
            redis_prefix.clone(),
            Duration::from_secs(config.list_cache_ttl_secs),
        )) as Arc<dyn PageCache>
    });
    let store = Arc::new(MySqlTaskStore::new(backends.pool.clone(), signal.clone()));
    let mut service = TaskService::new(store.clone(), Arc::new(access));
    let mut project_events = ProjectEventHandler::new(signal.clone());
    if let Some(pages) = &pages {
        service = service.with_page_cache(pages.clone()).with_task_cache(config.task_cache_entries);
        project_events = project_events.with_page_cache(pages.clone());
    }
    let presign_ttl = (config.presign_ttl_secs > 0).then(|| Duration::from_secs(config.presign_ttl_secs));
    let service = service.with_attachments(AttachmentSettings {
        objects: Arc::new(objects.clone()),
        max_bytes: config.max_attachment_bytes,
        presign_ttl,
    });
    let queued = Arc::new(tokio::sync::Notify::new());
    let service = service.with_jobs(JobSettings {
        store: store.clone(),
        objects: Arc::new(objects.clone()),
        encoder: Arc::new(ExportFiles),
        decoder: Arc::new(ImportFiles),
        lease: Duration::from_secs(config.job_lease_secs),
        retention: Duration::from_secs(config.export_retention_hours * 3600),
        presign_ttl,
        queued: queued.clone(),
    });
    if config.run_jobs {
        let runner = service.clone();
        let poll_every = Duration::from_millis(config.job_poll_ms);
        server.spawn(|shutdown| run_jobs(runner, queued, poll_every, shutdown));
    }
    let sweeper = service.clone();
    let sweep_every = Duration::from_secs(config.object_sweep_secs);
    server.spawn(|shutdown| sweep_objects(sweeper, sweep_every, shutdown));
    let indexer = service.clone();
    let index_every = Duration::from_secs(config.word_index_secs);
    server.spawn(|shutdown| index_words(indexer, index_every, shutdown));

    server.spawn_relay(&config.service, &backends.pool, signal)?;
    let consumer = Consumer::new(
        backends.pool.clone(),
        config.service.consumer_config(config.events_queue.clone(), "task", infra::consumer::BINDINGS.iter().copied()),
        project_events,
    )?;
    server.spawn_consumer(consumer).await;

    let readiness = backends.readiness().with(identity.keys.clone()).with(infra::s3::BucketCheck(objects));
    let authenticate = identity.layer(&config.service, &backends);
    let reports = grpc::ReportGrpc::new(service.clone());
    let jobs = grpc::JobGrpc::new(service.clone());
    let tasks = grpc::TaskGrpc::new(service);
    server.add_method_route(grpc::ListTasksRoute::PATH, grpc::ListTasksRoute::new(tasks.clone()));
    server.add_service(TaskServiceServer::new(tasks));
    server.add_service(ReportServiceServer::new(reports));
    server.add_service(JobServiceServer::new(jobs));
    server.serve(listeners, readiness, authenticate, backends.pool).await
}

/// The object store settings of `config`.
fn s3_settings(config: &Config) -> S3Settings {
    S3Settings {
        aws: AwsSettings::new(
            &config.s3_endpoint,
            &config.s3_region,
            config.s3_access_key_id.as_ref(),
            config.s3_secret_access_key.as_ref(),
        ),
        bucket: config.s3_bucket.clone(),
        force_path_style: !config.s3_virtual_hosted,
    }
}

/// Tasks indexed per transaction.
const WORD_INDEX_BATCH: u32 = 500;

/// Indexes the words of tasks written before the search index, a batch at a time until none is
/// left, then looks again every `every` until `shutdown`.
async fn index_words(service: TaskService, every: Duration, shutdown: CancellationToken) {
    let mut ticks = ordo_platform::shutdown::Ticks::every(every);
    while ticks.next(&shutdown).await {
        let mut indexed = 0;
        loop {
            match service.index_words(WORD_INDEX_BATCH).await {
                Ok(0) => break,
                Ok(n) => indexed += n,
                Err(error) => {
                    tracing::warn!(%error, "indexing the words of tasks failed; retrying later");
                    break;
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        if indexed > 0 {
            tracing::info!(indexed, "indexed the words of tasks written before the search index");
        }
    }
}

/// Runs the background jobs this instance claims, one at a time: at once when this instance queued
/// one (`queued`), else looking every `every` (for jobs other instances queued, or left behind when
/// they died), until `shutdown` (a job running then is finished first).
async fn run_jobs(
    service: TaskService,
    queued: Arc<tokio::sync::Notify>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = ordo_platform::shutdown::Ticks::every(every);
    loop {
        tokio::select! {
            biased;
            more = ticks.next(&shutdown) => if !more { break },
            () = queued.notified() => {}
        }
        if shutdown.is_cancelled() {
            break;
        }
        loop {
            match service.run_next_job().await {
                Ok(true) if !shutdown.is_cancelled() => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "running a job failed; retrying later");
                    break;
                }
            }
        }
    }
}

/// Deletes the objects of deleted attachments, tasks and projects, and of abandoned uploads, every
/// `every` until `shutdown`.
async fn sweep_objects(service: TaskService, every: Duration, shutdown: CancellationToken) {
    let mut ticks = ordo_platform::shutdown::Ticks::every(every);
    while ticks.next(&shutdown).await {
        match service.sweep_objects().await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "deleted objects swept from storage"),
            Err(error) => tracing::warn!(%error, "sweeping deleted objects failed; retrying later"),
        }
    }
}
