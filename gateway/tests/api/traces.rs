//! One trace per request: `POST /api/v1/tasks` yields spans of the gateway, the task service, the
//! outbox relay and the notification and audit consumers, all under the request's trace id and each
//! a descendant of the gateway's span, though the create is written by the project's create lane and
//! both consumers apply events in batches.
//!
//! Every process of the stack runs in this test's process (the harness starts their `serve`
//! functions), so one OpenTelemetry layer exporting to memory sees every span; nextest runs each
//! test in a process of its own, so the layer can be the process's global subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{TestApp, spawn_app};

/// How long the events of the request may take to reach both consumers.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The spans every process of the test has finished.
#[derive(Debug, Clone, Default)]
struct Finished(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Finished {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Finished {
    /// The finished spans of `trace`.
    fn of_trace(&self, trace: TraceId) -> Vec<SpanData> {
        self.0.lock().unwrap().iter().filter(|span| span.span_context.trace_id() == trace).cloned().collect()
    }
}

/// Records every span at `INFO` and above (as a deployment's default filter does) in memory.
fn record_spans() -> Finished {
    let finished = Finished::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(finished.clone()).build();
    let layer =
        tracing_opentelemetry::layer().with_tracer(provider.tracer("traces-test")).with_filter(LevelFilter::INFO);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the test's process has no subscriber yet");
    finished
}

/// The value of a span's attribute, as text.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

/// Whether `span`'s chain of parents within `spans` reaches `root`.
fn descends_from(span: &SpanData, root: SpanId, spans: &HashMap<SpanId, &SpanData>) -> bool {
    let mut parent = span.parent_span_id;
    for _ in 0..spans.len() + 1 {
        if parent == root {
            return true;
        }
        match spans.get(&parent) {
            Some(next) => parent = next.parent_span_id,
            None => return false,
        }
    }
    false
}

/// Registers and signs in `name`, makes a project and returns the token and the project id.
async fn owner_with_project(app: &TestApp, name: &str) -> (String, String) {
    let (_, tokens) = app.user(&format!("{name}@example.com"), name).await;
    let response = app.post_json_as(&tokens.access, "/api/v1/projects", &json!({"name": "Traced", "key": "TRC"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let project: Value = response.json().await.unwrap();
    (tokens.access, project["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_create_is_one_trace_from_the_gateway_through_the_task_service_into_both_consumers() {
    let finished = record_spans();
    let app = spawn_app().await;
    let (token, project) = owner_with_project(&app, "tracer").await;

    let response =
        app.post_json_as(&token, "/api/v1/tasks", &json!({"project_id": project, "title": "Follow me"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The gateway's span of the request names the route; its trace is the request's.
    let gateway = finished
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|span| {
            span.name == "http.request"
                && attribute(span, "http.method").as_deref() == Some("POST")
                && attribute(span, "url.path").as_deref() == Some("/api/v1/tasks")
        })
        .cloned()
        .expect("the gateway's span of POST /api/v1/tasks");
    let trace = gateway.span_context.trace_id();
    assert_ne!(trace, TraceId::INVALID);

    // Each consumer's span of the event ends once the event is settled, after its batch commits.
    let consumed_by = |spans: &[SpanData], consumer: &str| {
        spans.iter().any(|span| {
            span.name == "consume event"
                && attribute(span, "consumer").as_deref() == Some(consumer)
                && attribute(span, "event_type").as_deref() == Some("task.created")
        })
    };
    let started = Instant::now();
    let spans = loop {
        let spans = finished.of_trace(trace);
        if consumed_by(&spans, "notification") && consumed_by(&spans, "audit") {
            break spans;
        }
        assert!(
            started.elapsed() < ARRIVAL_TIMEOUT,
            "within {ARRIVAL_TIMEOUT:?} the trace should reach both consumers; it holds: {:?}",
            spans.iter().map(|span| span.name.as_ref()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let by_id: HashMap<SpanId, &SpanData> = spans.iter().map(|span| (span.span_context.span_id(), span)).collect();
    let root = gateway.span_context.span_id();
    let named = |name: &str, check: &dyn Fn(&SpanData) -> bool| -> Vec<&SpanData> {
        spans.iter().filter(|span| span.name == name && check(span)).collect()
    };
    let create_rpc = named("grpc.request", &|span| {
        attribute(span, "rpc.method").as_deref() == Some("/ordo.task.v1.TaskService/CreateTask")
    });
    let published = named("publish event", &|span| attribute(span, "routing_key").as_deref() == Some("task.created"));
    let notification = named("consume event", &|span| {
        attribute(span, "consumer").as_deref() == Some("notification")
            && attribute(span, "event_type").as_deref() == Some("task.created")
    });
    let audit = named("consume event", &|span| {
        attribute(span, "consumer").as_deref() == Some("audit")
            && attribute(span, "event_type").as_deref() == Some("task.created")
    });
    for (what, found) in [
        ("the task service's CreateTask", &create_rpc),
        ("the relay's publish of task.created", &published),
        ("notification's handling of task.created", &notification),
        ("audit's handling of task.created", &audit),
    ] {
        assert_eq!(found.len(), 1, "one span of {what} in the request's trace");
        assert!(descends_from(found[0], root, &by_id), "{what} descends from the gateway's span: {:?}", found[0]);
    }
    // The broker is crossed with the publish span's context: each consumer's span is its child.
    let publish = published[0].span_context.span_id();
    assert_eq!(notification[0].parent_span_id, publish);
    assert_eq!(audit[0].parent_span_id, publish);
    assert!(
        notification[0].attributes.iter().any(|kv| kv.key.as_str() == "event_id"),
        "the consumer's span names the event"
    );
    // The whole trace is one tree under the gateway's span: no span of it lost its parent.
    for span in &spans {
        assert!(
            span.span_context.span_id() == root || descends_from(span, root, &by_id),
            "{} ({:?}) is in the trace but not under the gateway's span",
            span.name,
            span.attributes
        );
    }
    app.cleanup().await;
}
