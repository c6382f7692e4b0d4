//! gRPC server and client plumbing shared by the services: the request span (with the caller's W3C
//! trace context as parent), RED metrics per RPC, and trace-context injection on outgoing calls.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};

/// The span of one incoming RPC; its parent is the trace context in the request's metadata.
/// Use with `tonic::transport::Server::builder().trace_fn(ordo_platform::grpc::request_span)`.
pub fn request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        rpc.method = %request.uri().path(),
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::set_parent_from_http(&span, request.headers());
    if let Some(trace_id) = span.in_scope(crate::telemetry::current_trace_id) {
        span.record("trace_id", trace_id);
    }
    span
}

/// `InvalidArgument` carrying one `google.rpc.BadRequest` field violation per `(field, message)`, which
/// the gateway turns into the `errors` of a `422` problem document.
pub fn invalid_fields<'a>(violations: impl IntoIterator<Item = (&'a str, &'a str)>) -> tonic::Status {
    use tonic_types::StatusExt as _;
    let mut details = tonic_types::ErrorDetails::new();
    for (field, message) in violations {
        details.add_bad_request_violation(field, message);
    }
    tonic::Status::with_error_details(tonic::Code::InvalidArgument, "invalid input", details)
}

/// A channel to another service at `url`, connected on first use (so a process starts whichever
/// backend is down), every call and connection attempt bounded by `timeout`, and idle connections
/// pinged so a vanished peer is noticed before a request waits on it.
pub fn lazy_channel(
    url: &str,
    timeout: std::time::Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .keep_alive_timeout(timeout)
        .connect_lazy())
}

/// The function type of [`propagate_trace`], for naming intercepted clients.
pub type TraceInterceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A tonic client interceptor that forwards the current trace context.
pub fn propagate_trace(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    crate::telemetry::inject_into_metadata(request.metadata_mut());
    Ok(request)
}

/// Records `ordo_grpc_requests_total{method,code}` and `ordo_grpc_request_duration_seconds{method}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

/// The service built by [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<http::Request<B>> for MetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            // Errors of unary RPCs come back "trailers-only", with `grpc-status` in the headers; a
            // response without it finished normally (its status is in the trailers).
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from),
                Err(_) => tonic::Code::Unknown,
            };
            metrics::counter!("ordo_grpc_requests_total", "method" => method.clone(), "code" => format!("{code:?}"))
                .increment(1);
            metrics::histogram!("ordo_grpc_request_duration_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
