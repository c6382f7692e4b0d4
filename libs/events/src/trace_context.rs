//! W3C trace context across the broker: read `traceparent`/`tracestate` from the current tracing span
//! when an event is built, and make a consumer's span a child of them, so one trace follows a request
//! from the gateway through the outbox into every consumer.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header names of <https://www.w3.org/TR/trace-context/>.
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";

/// The W3C context of the current span as `(traceparent, tracestate)`; two empty strings when the
/// span has no valid OpenTelemetry context (no OpenTelemetry layer installed, or no span at all).
pub(crate) fn current() -> (String, String) {
    of(&tracing::Span::current())
}

/// The W3C context of `span` as `(traceparent, tracestate)`, as [`current`] gives it.
pub(crate) fn of(span: &tracing::Span) -> (String, String) {
    let context = span.context();
    let mut carrier = HashMap::new();
    // The propagator itself skips an invalid span context, leaving the carrier empty.
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    (carrier.remove(TRACEPARENT).unwrap_or_default(), carrier.remove(TRACESTATE).unwrap_or_default())
}

/// Makes `span` a child of the remote context in `traceparent`/`tracestate`, if that is valid.
pub(crate) fn set_parent(span: &tracing::Span, traceparent: &str, tracestate: &str) {
    if traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([
        (TRACEPARENT.to_owned(), traceparent.to_owned()),
        (TRACESTATE.to_owned(), tracestate.to_owned()),
    ]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only when the span is already started or has no OpenTelemetry layer; the event is
        // then handled in a trace of its own, which is no reason to fail the delivery.
        let _ = span.set_parent(context);
    }
}

/// Links `span` to `to` (for a batch, which has one parent but serves many traces).
pub(crate) fn link(span: &tracing::Span, to: &tracing::Span) {
    span.add_link(to.context().span().span_context().clone());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn with_otel_subscriber(test: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    #[test]
    fn current_is_empty_outside_any_traced_span() {
        let (traceparent, tracestate) = current();

        assert_eq!(traceparent, "");
        assert_eq!(tracestate, "");
    }

    #[test]
    fn current_returns_the_traceparent_of_the_active_span() {
        with_otel_subscriber(|| {
            let span = tracing::info_span!("request");
            let _entered = span.enter();
            let trace_id = span.context().span().span_context().trace_id();

            let (traceparent, _) = current();

            assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
        });
    }

    #[test]
    fn set_parent_puts_the_span_into_the_remote_trace() {
        with_otel_subscriber(|| {
            let remote = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let span = tracing::info_span!("consume");

            set_parent(&span, remote, "vendor=value");

            let trace_id = span.context().span().span_context().trace_id();
            assert_eq!(trace_id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        });
    }
}
