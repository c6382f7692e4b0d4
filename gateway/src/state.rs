//! What every request shares: one gRPC channel per backend (created lazily, so the gateway starts and
//! recovers on its own whichever backend is down), one Redis connection manager, the access-token
//! keys and the settings handlers read.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ordo_platform::Readiness;
use ordo_platform::ops::RedisCheck;
use ordo_platform::redis::ConnectionManager;
use ordo_proto::audit::v1::audit_service_client::AuditServiceClient;
use ordo_proto::audit::v1::audit_service_server::SERVICE_NAME as AUDIT_SERVICE_NAME;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::identity::v1::identity_service_server::SERVICE_NAME as IDENTITY_SERVICE_NAME;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_proto::notification::v1::notification_service_server::SERVICE_NAME as NOTIFICATION_SERVICE_NAME;
use ordo_proto::notification::v1::webhook_service_client::WebhookServiceClient;
use ordo_proto::notification::v1::{StreamNotificationsRequest, StreamNotificationsResponse};
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::project::v1::project_service_server::SERVICE_NAME as PROJECT_SERVICE_NAME;
use ordo_proto::task::v1::job_service_client::JobServiceClient;
use ordo_proto::task::v1::report_service_client::ReportServiceClient;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use ordo_proto::task::v1::task_service_server::SERVICE_NAME as TASK_SERVICE_NAME;
use tonic::transport::{Channel, Endpoint};

use crate::Config;
use crate::access_keys::AccessKeys;
use crate::backend;
use crate::backend::{
    AuditClient, BackendHealthCheck, IdentityClient, JobClient, NotificationClient, ProjectClient, ReportClient,
    TaskClient, WebhookClient,
};
use crate::config::RateLimitArgs;
use crate::live_channels::{Lease, LiveChannels};

/// Interval of HTTP/2 pings on idle backend connections, so a backend host that vanished without
/// closing its sockets is noticed before a request waits on it.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// The shared state of the gateway; cloning it is cheap.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    identity: IdentityClient,
    project: ProjectClient,
    task: TaskClient,
    task_transfers: TaskClient,
    /// A project's reports, served by the task service on its channel.
    report: ReportClient,
    /// A project's background jobs (exports), served by the task service on its channel.
    job: JobClient,
    /// The same on the transfer channel, for imports, whose calls last as long as the file takes.
    job_transfers: JobClient,
    audit: AuditClient,
    notification: NotificationClient,
    /// A project's webhooks, served by the notification service on `notification_channel`.
    webhook: WebhookClient,
    /// The connections live notification streams ride on.
    live_channels: LiveChannels,
    redis: ConnectionManager,
    keys: AccessKeys,
    readiness: Readiness,
    redis_prefix: String,
    trust_forwarded_for: bool,
    max_attachment_bytes: u64,
    backend_timeout: Duration,
    in_flight: Arc<tokio::sync::Semaphore>,
    rate_limits: RateLimitArgs,
    /// Deadlines on a client's body and request.
    client_limits: crate::config::ClientLimits,
    /// Cancelled when the gateway stops: long-lived responses (the notification stream) end, so
    /// the drain of open connections can finish.
    closing: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("redis_prefix", &self.0.redis_prefix)
            .field("trust_forwarded_for", &self.0.trust_forwarded_for)
            .field("readiness", &self.0.readiness)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Connects to Redis (waiting a few seconds for it at start) and prepares lazy channels to the backends (which
    /// may come up later).
    #[tracing::instrument(skip_all, fields(
        identity = %config.identity_url,
        project = %config.project_url,
        task = %config.task_url,
        audit = %config.audit_url,
        notification = %config.notification_url,
    ))]
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let identity_channel = backend_channel(&config.identity_url, config).context("invalid --identity-url")?;
        let identity = IdentityServiceClient::with_interceptor(
            identity_channel.clone(),
            ordo_platform::grpc::propagate_trace as _,
        );
        let project_channel = backend_channel(&config.project_url, config).context("invalid --project-url")?;
        let project =
            ProjectServiceClient::with_interceptor(project_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let task_channel = backend_channel(&config.task_url, config).context("invalid --task-url")?;
        let task = TaskServiceClient::with_interceptor(task_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let report =
            ReportServiceClient::with_interceptor(task_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let job = JobServiceClient::with_interceptor(task_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let transfer_channel = transfer_channel(&config.task_url, config).context("invalid --task-url")?;
        let job_transfers =
            JobServiceClient::with_interceptor(transfer_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let task_transfers =
            TaskServiceClient::with_interceptor(transfer_channel, ordo_platform::grpc::propagate_trace as _);
        let audit_channel = backend_channel(&config.audit_url, config).context("invalid --audit-url")?;
        let audit =
            AuditServiceClient::with_interceptor(audit_channel.clone(), ordo_platform::grpc::propagate_trace as _);
        let notification_channel =
            backend_channel(&config.notification_url, config).context("invalid --notification-url")?;
        let notification = NotificationServiceClient::with_interceptor(
            notification_channel.clone(),
            ordo_platform::grpc::propagate_trace as _,
        );
        let webhook = WebhookServiceClient::with_interceptor(
            notification_channel.clone(),
            ordo_platform::grpc::propagate_trace as _,
        );

        let redis = config.redis.connect().await.context("connect to Redis (--redis-url)")?;

        let closing = tokio_util::sync::CancellationToken::new();
        let readiness = Readiness::default()
            .with(backend::Draining(closing.clone()))
            .with(RedisCheck(redis.clone()))
            .with(BackendHealthCheck::new("identity", IDENTITY_SERVICE_NAME, identity_channel))
            .with(BackendHealthCheck::new("project", PROJECT_SERVICE_NAME, project_channel))
            .with(BackendHealthCheck::new("task", TASK_SERVICE_NAME, task_channel))
            .with(BackendHealthCheck::new("audit", AUDIT_SERVICE_NAME, audit_channel))
            .with(BackendHealthCheck::new("notification", NOTIFICATION_SERVICE_NAME, notification_channel.clone()));
        Ok(Self(Arc::new(Inner {
            keys: AccessKeys::new(identity.clone(), config.jwks_refresh),
            identity,
            project,
            task,
            task_transfers,
            report,
            job,
            job_transfers,
            audit,
            notification,
            webhook,
            live_channels: LiveChannels::new(
                backend_endpoint(&config.notification_url, config).context("invalid --notification-url")?,
                usize::try_from(config.live_streams_per_connection).unwrap_or(usize::MAX),
            ),
            redis,
            readiness,
            redis_prefix: config.redis.prefix.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
            max_attachment_bytes: config.max_attachment_bytes,
            backend_timeout: config.backend_timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight as usize)),
            rate_limits: config.rate_limits.clone(),
            client_limits: config.client_limits,
            closing,
        })))
    }

    /// Cancelled when the gateway stops; long-lived responses end with it.
    pub(crate) fn closing(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.closing
    }

    /// Whether the gateway is stopping: `/readyz` answers `503` and every response closes its connection.
    pub(crate) fn is_draining(&self) -> bool {
        self.0.closing.is_cancelled()
    }

    /// Ends every long-lived response and starts the drain (the gateway is stopping).
    pub(crate) fn close(&self) {
        self.0.closing.cancel();
    }

    /// A client of the identity service.
    pub(crate) fn identity(&self) -> IdentityClient {
        self.0.identity.clone()
    }

    /// A client of the project service.
    pub(crate) fn project(&self) -> ProjectClient {
        self.0.project.clone()
    }

    /// A client of the task service.
    pub(crate) fn task(&self) -> TaskClient {
        self.0.task.clone()
    }

    /// A client of the task service for attachment uploads and downloads, whose calls last as long as
    /// the bytes take to flow (see [`transfer_channel`]).
    pub(crate) fn task_transfers(&self) -> TaskClient {
        self.0.task_transfers.clone()
    }

    /// A client of the task service's reports.
    pub(crate) fn report(&self) -> ReportClient {
        self.0.report.clone()
    }

    /// A client of the task service's background jobs.
    pub(crate) fn job(&self) -> JobClient {
        self.0.job.clone()
    }

    /// A client of the task service's background jobs for imports, whose calls last as long as the
    /// file takes to arrive (see [`transfer_channel`]).
    pub(crate) fn job_transfers(&self) -> JobClient {
        self.0.job_transfers.clone()
    }

    /// The largest attachment accepted, in bytes.
    pub(crate) fn max_attachment_bytes(&self) -> u64 {
        self.0.max_attachment_bytes
    }

    /// How long a backend may take to answer a call.
    pub(crate) fn backend_timeout(&self) -> Duration {
        self.0.backend_timeout
    }

    /// A client of the audit service.
    pub(crate) fn audit(&self) -> AuditClient {
        self.0.audit.clone()
    }

    /// A client of the notification service.
    pub(crate) fn notification(&self) -> NotificationClient {
        self.0.notification.clone()
    }

    /// A client of the notification service's webhooks.
    pub(crate) fn webhook(&self) -> WebhookClient {
        self.0.webhook.clone()
    }

    /// The caller's live notification stream from the notification service (see
    /// [`backend::stream_notifications`]), on a connection for live streams, and its place there:
    /// hold the lease for as long as the stream lives.
    pub(crate) async fn notification_stream(
        &self,
        request: tonic::Request<StreamNotificationsRequest>,
    ) -> Result<(tonic::Streaming<StreamNotificationsResponse>, Lease), tonic::Status> {
        let (channel, lease) = self.0.live_channels.acquire();
        let stream = backend::stream_notifications(channel, request).await?.into_inner();
        Ok((stream, lease))
    }

    /// A handle on the shared Redis connection.
    pub(crate) fn redis(&self) -> ConnectionManager {
        self.0.redis.clone()
    }

    /// The access-token verifier.
    pub(crate) fn keys(&self) -> &AccessKeys {
        &self.0.keys
    }

    /// The checks `/readyz` runs.
    pub(crate) fn readiness(&self) -> Readiness {
        self.0.readiness.clone()
    }

    /// One permit per API request being served (load shedding).
    pub(crate) fn in_flight(&self) -> &tokio::sync::Semaphore {
        &self.0.in_flight
    }

    /// The request budgets.
    pub(crate) fn rate_limits(&self) -> &RateLimitArgs {
        &self.0.rate_limits
    }

    /// Deadlines on a client's body and request.
    pub(crate) fn client_limits(&self) -> crate::config::ClientLimits {
        self.0.client_limits
    }

    /// The prefix of every Redis key (shared with identity).
    pub(crate) fn redis_prefix(&self) -> &str {
        &self.0.redis_prefix
    }

    /// Whether the last entry of `X-Forwarded-For` names the client.
    pub(crate) fn trust_forwarded_for(&self) -> bool {
        self.0.trust_forwarded_for
    }
}

/// A lazily connected channel to the backend at `url`: nothing is dialled until the first call, and a
/// lost connection is dialled again on the next one.
fn backend_channel(url: &str, config: &Config) -> Result<Channel, tonic::transport::Error> {
    Ok(backend_endpoint(url, config)?.connect_lazy())
}

/// The backend at `url`, each connection attempt and call bounded by the backend timeout, idle
/// connections pinged.
fn backend_endpoint(url: &str, config: &Config) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(config.backend_timeout)
        .timeout(config.backend_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(config.backend_timeout))
}

/// Like [`backend_channel`], but without the per-call timeout: an upload's call lasts until the
/// client has sent its last byte, and a download's until the client has read it, which for 25 MiB
/// over a slow link is far longer than the backend timeout. Connecting is still bounded, and the
/// HTTP/2 keep-alive pings still notice a backend that vanished.
fn transfer_channel(url: &str, config: &Config) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(config.backend_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(config.backend_timeout)
        .connect_lazy())
}
