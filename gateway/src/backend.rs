//! How the gateway talks to the services: the clients handlers call them with, whose requests carry
//! the caller's bearer token and the current W3C trace context, and the `/readyz` check that asks
//! each backend's `grpc.health.v1.Health`.

use futures::future::BoxFuture;
use ordo_platform::ReadinessCheck;
use ordo_proto::audit::v1::audit_service_client::AuditServiceClient;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_proto::notification::v1::webhook_service_client::WebhookServiceClient;
use ordo_proto::notification::v1::{StreamNotificationsRequest, StreamNotificationsResponse};
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::task::v1::job_service_client::JobServiceClient;
use ordo_proto::task::v1::report_service_client::ReportServiceClient;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use tonic::GrpcMethod;
use tonic::client::Grpc;
use tonic::codec::{BufferSettings, Codec};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The client interceptor that writes the current trace context into each call's metadata.
pub(crate) type TraceInterceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// The identity client every handler clones (a cheap handle on one shared channel).
pub(crate) type IdentityClient = IdentityServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The project client every handler clones (a cheap handle on one shared channel).
pub(crate) type ProjectClient = ProjectServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The task client every handler clones (a cheap handle on one shared channel).
pub(crate) type TaskClient = TaskServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The report client every handler clones (a cheap handle on the task service's channel, which
/// serves both).
pub(crate) type ReportClient = ReportServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The job client every handler clones (a cheap handle on the task service's channel).
pub(crate) type JobClient = JobServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The audit client every handler clones (a cheap handle on one shared channel).
pub(crate) type AuditClient = AuditServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The notification client every handler clones (a cheap handle on one shared channel).
pub(crate) type NotificationClient = NotificationServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The webhook client every handler clones (a cheap handle on the notification service's channel,
/// which serves both).
pub(crate) type WebhookClient = WebhookServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// The initial size of the encoding and decoding buffers of a live notification stream. A stream
/// lives for hours and carries messages of a few hundred bytes, so tonic's default of 8 KiB would be
/// a large part of what an idle stream costs the gateway; a buffer still grows to fit a larger
/// message.
const STREAM_BUFFER: usize = 512;

/// The notification service's `StreamNotifications` on `channel`, as the generated client calls
/// it but with small codec buffers ([`STREAM_BUFFER`]).
///
/// # Errors
///
/// The service's answer, as the generated client gives it.
pub(crate) async fn stream_notifications(
    channel: Channel,
    request: tonic::Request<StreamNotificationsRequest>,
) -> Result<tonic::Response<tonic::Streaming<StreamNotificationsResponse>>, tonic::Status> {
    let mut grpc =
        Grpc::new(InterceptedService::new(channel, ordo_platform::grpc::propagate_trace as TraceInterceptor));
    grpc.ready().await.map_err(|error| tonic::Status::unknown(format!("Service was not ready: {error}")))?;
    let path = PathAndQuery::from_static("/ordo.notification.v1.NotificationService/StreamNotifications");
    let mut request = request;
    request.extensions_mut().insert(GrpcMethod::new("ordo.notification.v1.NotificationService", "StreamNotifications"));
    grpc.server_streaming(request, path, StreamCodec).await
}

/// Prost's codec with small buffers (see [`stream_notifications`]).
#[derive(Debug, Clone, Copy, Default)]
struct StreamCodec;

impl Codec for StreamCodec {
    type Encode = StreamNotificationsRequest;
    type Decode = StreamNotificationsResponse;
    type Encoder = ProstEncoder<StreamNotificationsRequest>;
    type Decoder = ProstDecoder<StreamNotificationsResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<Self::Encode, Self::Decode>::raw_encoder(small_buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<Self::Encode, Self::Decode>::raw_decoder(small_buffers())
    }
}

/// [`STREAM_BUFFER`], and tonic's default yield threshold (32 KiB).
fn small_buffers() -> BufferSettings {
    BufferSettings::new(STREAM_BUFFER, 32 * 1024)
}

/// A request without caller credentials (register, login, refresh, JWKS).
pub(crate) fn anonymous<T>(message: T) -> tonic::Request<T> {
    tonic::Request::new(message)
}

/// A request on behalf of a caller: the service verifies the forwarded token again itself.
pub(crate) fn on_behalf_of<T>(authorization: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", authorization.clone());
    request
}

/// `/readyz` check that fails once the gateway drains (its token is cancelled), so a load balancer stops
/// sending it requests while it finishes those it has.
#[derive(Debug, Clone)]
pub(crate) struct Draining(pub(crate) tokio_util::sync::CancellationToken);

impl ReadinessCheck for Draining {
    fn name(&self) -> &str {
        "draining"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let draining = self.0.is_cancelled();
        Box::pin(async move { if draining { Err("the gateway is stopping".to_owned()) } else { Ok(()) } })
    }
}

/// `/readyz` check of one backend service: its `grpc.health.v1.Health` must say `SERVING` for the
/// service it serves the gateway (such as `ordo.identity.v1.IdentityService`).
#[derive(Debug, Clone)]
pub(crate) struct BackendHealthCheck {
    /// The backend's name in `/readyz` (`identity`, `project`, `notification`, ...).
    name: &'static str,
    /// The fully qualified gRPC service whose health is asked.
    service_name: &'static str,
    /// A health client over the same channel the API calls use.
    client: HealthClient<Channel>,
}

impl BackendHealthCheck {
    /// A check named `name` of `service_name` over `channel` (the same channel the API calls use).
    pub(crate) fn new(name: &'static str, service_name: &'static str, channel: Channel) -> Self {
        Self { name, service_name, client: HealthClient::new(channel) }
    }
}

impl ReadinessCheck for BackendHealthCheck {
    fn name(&self) -> &str {
        self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let request = HealthCheckRequest { service: self.service_name.to_owned() };
            let response = client.check(request).await.map_err(|status| status.to_string())?;
            match ServingStatus::try_from(response.into_inner().status) {
                Ok(ServingStatus::Serving) => Ok(()),
                Ok(other) => Err(format!("health status {}", other.as_str_name())),
                Err(_) => Err("unknown health status".to_owned()),
            }
        })
    }
}
