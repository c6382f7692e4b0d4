//! One running process of a [`Stack`](crate::Stack): its parsed configuration, the task serving it on
//! its own loopback port (and, for a backend service, an ops port beside it), how to tell it is ready,
//! and how to stop it within a bounded wait.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ordo_proto::audit::v1::VerifyLogRequest;
use ordo_proto::audit::v1::audit_service_client::AuditServiceClient;
use ordo_proto::identity::v1::GetJwksRequest;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::notification::v1::ListNotificationsRequest;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_proto::project::v1::ListProjectsRequest;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::task::v1::GetTaskRequest;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use ordo_service::Listeners;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Service;

/// How long a process may take to become ready, and to stop once asked to.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The parsed configuration of one process, kept so that it can be started again as it was.
#[derive(Debug, Clone)]
pub(crate) enum Config {
    Identity(Box<ordo_identity::Config>),
    Project(Box<ordo_project::Config>),
    Task(Box<ordo_task::Config>),
    Audit(Box<ordo_audit::Config>),
    Notification(Box<ordo_notification::Config>),
    Gateway(Box<ordo_gateway::Config>),
}

/// A running identity, project, task, audit or notification service, or gateway.
#[derive(Debug)]
pub struct Instance {
    service: Service,
    addr: SocketAddr,
    ops_addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Instance {
    /// Starts `config` on `listener`; a backend service also gets an ops port of its own (the gateway
    /// serves `/healthz`, `/readyz` and `/metrics` on its one port).
    pub(crate) async fn start(config: Config, listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("the listener's address");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let (service, ops_addr, task) = match config {
            Config::Identity(config) => {
                let (ops_addr, task) = spawn(listener, |ports| ordo_identity::serve(*config, ports, token)).await;
                (Service::Identity, ops_addr, task)
            }
            Config::Project(config) => {
                let (ops_addr, task) = spawn(listener, |ports| ordo_project::serve(*config, ports, token)).await;
                (Service::Project, ops_addr, task)
            }
            Config::Task(config) => {
                let (ops_addr, task) = spawn(listener, |ports| ordo_task::serve(*config, ports, token)).await;
                (Service::Task, ops_addr, task)
            }
            Config::Audit(config) => {
                let (ops_addr, task) = spawn(listener, |ports| ordo_audit::serve(*config, ports, token)).await;
                (Service::Audit, ops_addr, task)
            }
            Config::Notification(config) => {
                let (ops_addr, task) = spawn(listener, |ports| ordo_notification::serve(*config, ports, token)).await;
                (Service::Notification, ops_addr, task)
            }
            Config::Gateway(config) => {
                (Service::Gateway, addr, tokio::spawn(ordo_gateway::serve(*config, listener, token)))
            }
        };
        Self { service, addr, ops_addr, shutdown, task }
    }

    /// Which process this is.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The address it serves its API on: gRPC for a backend service, HTTP for the gateway.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, as the flags that point one process at another take it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its `/healthz`, `/readyz` and `/metrics` (the gateway's own port).
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    /// A lazily connecting gRPC channel to it.
    pub fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).expect("a loopback URL").connect_lazy()
    }

    /// Starts its stop (what SIGTERM starts) without waiting for it; [`Instance::stop`] waits.
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Whether its task has ended (it failed to start, or it stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until it is ready, failing the test if it stops or is not ready within [`READY_TIMEOUT`]:
    /// identity once it serves its key set (migrations and the signing key are done by then); project,
    /// task and audit once they answer a call with anything but `Unavailable` (audit declares and binds
    /// its queue before it serves gRPC, so no event published afterwards can miss it); the gateway once
    /// its `/readyz` is 200.
    pub async fn wait_until_ready(&self) {
        let started = Instant::now();
        while !self.is_ready().await {
            assert!(!self.is_finished(), "{} stopped while starting", self.service);
            assert!(started.elapsed() < READY_TIMEOUT, "{} was not ready within {READY_TIMEOUT:?}", self.service);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_ready(&self) -> bool {
        fn serving<T>(answer: Result<T, tonic::Status>) -> bool {
            answer.err().is_none_or(|status| status.code() != tonic::Code::Unavailable)
        }
        match self.service {
            Service::Identity => IdentityServiceClient::new(self.channel()).get_jwks(GetJwksRequest {}).await.is_ok(),
            Service::Project => {
                serving(ProjectServiceClient::new(self.channel()).list_projects(ListProjectsRequest::default()).await)
            }
            Service::Task => {
                let request = GetTaskRequest { id: String::new() };
                serving(TaskServiceClient::new(self.channel()).get_task(request).await)
            }
            Service::Audit => {
                serving(AuditServiceClient::new(self.channel()).verify_log(VerifyLogRequest::default()).await)
            }
            Service::Notification => serving(
                NotificationServiceClient::new(self.channel())
                    .list_notifications(ListNotificationsRequest::default())
                    .await,
            ),
            Service::Gateway => self.ops_ready().await,
        }
    }

    /// Whether its `/readyz` answers 200.
    pub async fn ops_ready(&self) -> bool {
        ordo_testkit::http_get(self.ops_addr, "/readyz").await.is_ok_and(|(status, _)| status == 200)
    }

    /// Asks it to stop and waits until it has, failing the test after [`STOP_TIMEOUT`]; what its serve
    /// function returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.begin_stop();
        match tokio::time::timeout(STOP_TIMEOUT, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Ok(Err(join)) => Err(join.into()),
            Err(_) => panic!("{} did not stop within {STOP_TIMEOUT:?}", self.service),
        }
    }
}

/// Spawns `serve` on `grpc` and a fresh ops listener; the ops address and the task.
async fn spawn<F>(grpc: TcpListener, serve: impl FnOnce(Listeners) -> F) -> (SocketAddr, JoinHandle<anyhow::Result<()>>)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let ops = ordo_testkit::free_listener().await.expect("a free loopback port");
    let ops_addr = ops.local_addr().expect("the listener's address");
    (ops_addr, tokio::spawn(serve(Listeners { grpc, ops })))
}
