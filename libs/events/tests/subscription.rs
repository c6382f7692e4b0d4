//! Broadcast subscriptions against the real RabbitMQ: every subscription gets every matching event,
//! its queue goes away with it, and neither a bad message nor a panicking listener stops it. Each test
//! publishes to an exchange of its own (see `ordo-testkit`), deleted afterwards, so they run in
//! parallel; none needs a database.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use ordo_events::{Envelope, EnvelopeBuilder, Error, Listener, Subscription, SubscriptionConfig};
use ordo_testkit::TestEnv;
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Waits this long at most for anything asynchronous; generous, because a slow CI machine is not a
/// failure, a hang is.
const WAIT: Duration = Duration::from_secs(30);

/// What a listener was told, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Heard {
    Connected,
    Event(String),
}

/// Records what it is told and lets the test wait for it; panics at the events of type `panic_on`.
#[derive(Clone)]
struct RecordingListener {
    heard: Arc<watch::Sender<Vec<Heard>>>,
    panic_on: Option<String>,
}

impl RecordingListener {
    fn new() -> Self {
        Self { heard: Arc::new(watch::Sender::new(Vec::new())), panic_on: None }
    }

    fn panicking_on(event_type: &str) -> Self {
        Self { panic_on: Some(event_type.to_owned()), ..Self::new() }
    }

    fn heard(&self) -> Vec<Heard> {
        self.heard.borrow().clone()
    }

    /// Waits until what was heard satisfies `condition`, failing after [`WAIT`].
    async fn wait_until(&self, what: &str, condition: impl Fn(&[Heard]) -> bool) -> anyhow::Result<()> {
        let mut heard = self.heard.subscribe();
        tokio::time::timeout(WAIT, heard.wait_for(|heard| condition(heard)))
            .await
            .with_context(|| format!("timed out waiting until {what}; heard {:?}", self.heard()))??;
        Ok(())
    }

    async fn wait_until_connected(&self) -> anyhow::Result<()> {
        self.wait_until("the subscription is connected", |heard| heard.contains(&Heard::Connected)).await
    }

    async fn wait_for_event(&self, envelope: &Envelope) -> anyhow::Result<()> {
        let event = Heard::Event(envelope.event_id.clone());
        self.wait_until(&format!("event {} arrives", envelope.r#type), |heard| heard.contains(&event)).await
    }
}

impl Listener for RecordingListener {
    fn on_event(&self, envelope: &Envelope) {
        self.heard.send_modify(|heard| heard.push(Heard::Event(envelope.event_id.clone())));
        if self.panic_on.as_deref() == Some(envelope.r#type.as_str()) {
            panic!("this listener panics at {}", envelope.r#type);
        }
    }

    fn on_connected(&self) {
        self.heard.send_modify(|heard| heard.push(Heard::Connected));
    }
}

fn subscription_config(env: &TestEnv, name: &str, bindings: &[&str]) -> SubscriptionConfig {
    SubscriptionConfig {
        max_backoff: Duration::from_secs(1),
        ..SubscriptionConfig::new(ordo_testkit::amqp_url(), env.exchange(), name, bindings)
    }
}

/// Starts `listener`'s subscription and waits until its queue is bound, so that nothing the test
/// publishes afterwards can be missed.
async fn start(
    config: SubscriptionConfig,
    listener: &RecordingListener,
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let subscription = Subscription::new(config, listener.clone())?;
    let running = tokio::spawn(subscription.run(shutdown.clone()));
    listener.wait_until_connected().await?;
    Ok(running)
}

/// Stops a subscription and waits for `run` to return.
async fn stop(running: JoinHandle<()>, shutdown: &CancellationToken) -> anyhow::Result<()> {
    shutdown.cancel();
    tokio::time::timeout(WAIT, running).await.context("the subscription did not stop")??;
    Ok(())
}

fn event(event_type: &str) -> Envelope {
    EnvelopeBuilder::new("project", event_type).entity("project", "project-1").build()
}

/// Publishes `body` to `exchange` with `routing_key` and waits for its confirm; returns whether the
/// broker returned it as unroutable (which only a `mandatory` message can be).
async fn publish(exchange: &str, routing_key: &str, body: &[u8], mandatory: bool) -> anyhow::Result<bool> {
    let connection =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let properties = BasicProperties::default().with_content_type(ordo_events::CONTENT_TYPE.into());
    let confirmation = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions { mandatory, ..Default::default() },
            body,
            properties,
        )
        .await?
        .await?;
    connection.close(200, "published".into()).await?;
    anyhow::ensure!(confirmation.is_ack(), "the broker did not accept the message");
    Ok(confirmation.take_message().is_some())
}

async fn publish_event(exchange: &str, envelope: &Envelope) -> anyhow::Result<()> {
    publish(exchange, &envelope.r#type, &envelope.encode_to_vec(), false).await?;
    Ok(())
}

#[tokio::test]
async fn every_subscription_receives_each_event_that_matches_its_bindings() -> anyhow::Result<()> {
    // Arrange
    install_recorder();
    let env = TestEnv::new();
    let exchange = env.exchange();
    let shutdown = CancellationToken::new();
    let (first, second) = (RecordingListener::new(), RecordingListener::new());
    let bindings = ["project.member_removed"];
    let first_running = start(subscription_config(&env, "broadcast-1", &bindings), &first, &shutdown).await?;
    let second_running = start(subscription_config(&env, "broadcast-2", &bindings), &second, &shutdown).await?;
    let unbound = event("project.archived");
    let removed = event("project.member_removed");

    // Act: the unbound event goes first, so once the bound one has arrived the other would have too.
    publish_event(&exchange, &unbound).await?;
    publish_event(&exchange, &removed).await?;
    first.wait_for_event(&removed).await?;
    second.wait_for_event(&removed).await?;
    stop(first_running, &shutdown).await?;
    stop(second_running, &shutdown).await?;

    // Assert
    let expected = vec![Heard::Connected, Heard::Event(removed.event_id.clone())];
    assert_eq!(first.heard(), expected);
    assert_eq!(second.heard(), expected);
    assert_eq!(counter("ordo_subscription_events_total", "broadcast-1"), 1);
    assert_eq!(counter("ordo_subscription_events_total", "broadcast-2"), 1);

    env.cleanup().await
}

#[tokio::test]
async fn a_stopped_subscription_leaves_no_queue_behind() -> anyhow::Result<()> {
    // Arrange: the queue's name is the broker's and stays private, so the test looks for any queue
    // bound with the subscription's key: a mandatory message that no queue takes is returned.
    install_recorder();
    let env = TestEnv::new();
    let exchange = env.exchange();
    let shutdown = CancellationToken::new();
    let listener = RecordingListener::new();
    let running =
        start(subscription_config(&env, "leaves-nothing", &["project.archived"]), &listener, &shutdown).await?;
    let routed = event("project.archived");
    let returned_while_running = publish(&exchange, &routed.r#type, &routed.encode_to_vec(), true).await?;
    listener.wait_for_event(&routed).await?;

    // Act
    stop(running, &shutdown).await?;

    // Assert: the broker deletes the queue on its own time after the connection closes, so wait for
    // it rather than expect it at once.
    let after = event("project.archived");
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            if publish(&exchange, &after.r#type, &after.encode_to_vec(), true).await? {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(!returned_while_running, "while subscribed, the event must reach the subscription's queue");
    assert!(matches!(gone, Ok(Ok(()))), "the queue is still bound after shutdown: {gone:?}");
    assert!(!listener.heard().contains(&Heard::Event(after.event_id.clone())));

    env.cleanup().await
}

#[test]
fn a_subscription_without_bindings_is_refused() {
    let config = SubscriptionConfig::new(ordo_testkit::amqp_url(), "ordo.events", "no-bindings", &[]);

    let subscription = Subscription::new(config, RecordingListener::new());

    assert!(matches!(subscription, Err(Error::InvalidConfig(_))), "{subscription:?}");
}

#[test]
fn a_subscription_without_an_exchange_or_a_name_is_refused() {
    let no_exchange = SubscriptionConfig::new(ordo_testkit::amqp_url(), "", "no-exchange", &["#"]);
    let no_name = SubscriptionConfig::new(ordo_testkit::amqp_url(), "ordo.events", "", &["#"]);

    let without_exchange = Subscription::new(no_exchange, RecordingListener::new());
    let without_name = Subscription::new(no_name, RecordingListener::new());

    assert!(matches!(without_exchange, Err(Error::InvalidConfig(_))), "{without_exchange:?}");
    assert!(matches!(without_name, Err(Error::InvalidConfig(_))), "{without_name:?}");
}

#[tokio::test]
async fn an_undecodable_message_is_dropped_and_the_next_event_still_arrives() -> anyhow::Result<()> {
    // Arrange
    install_recorder();
    let env = TestEnv::new();
    let exchange = env.exchange();
    let shutdown = CancellationToken::new();
    let listener = RecordingListener::new();
    let running = start(subscription_config(&env, "undecodable", &["project.*"]), &listener, &shutdown).await?;
    let good = event("project.member_removed");

    // Act: wire type 7 does not exist, so no protobuf decoder accepts this body.
    publish(&exchange, "project.member_removed", b"\x0fnot an envelope", false).await?;
    publish_event(&exchange, &good).await?;
    listener.wait_for_event(&good).await?;
    stop(running, &shutdown).await?;

    // Assert
    assert_eq!(listener.heard(), vec![Heard::Connected, Heard::Event(good.event_id.clone())]);
    assert_eq!(counter("ordo_subscription_undecodable_total", "undecodable"), 1);
    assert_eq!(counter("ordo_subscription_events_total", "undecodable"), 1);

    env.cleanup().await
}

#[tokio::test]
async fn a_listener_that_panics_at_an_event_still_receives_the_next_one() -> anyhow::Result<()> {
    // Arrange
    install_recorder();
    let env = TestEnv::new();
    let exchange = env.exchange();
    let shutdown = CancellationToken::new();
    let listener = RecordingListener::panicking_on("project.archived");
    let running = start(subscription_config(&env, "panicking", &["project.*"]), &listener, &shutdown).await?;
    let (fatal, next) = (event("project.archived"), event("project.member_removed"));

    // Act
    publish_event(&exchange, &fatal).await?;
    publish_event(&exchange, &next).await?;
    listener.wait_for_event(&next).await?;
    stop(running, &shutdown).await?;

    // Assert: one connection throughout, so the panic did not cost a reconnection either.
    let expected = vec![Heard::Connected, Heard::Event(fatal.event_id.clone()), Heard::Event(next.event_id.clone())];
    assert_eq!(listener.heard(), expected);
    assert_eq!(counter("ordo_subscription_listener_panics_total", "panicking"), 1);

    env.cleanup().await
}

#[tokio::test]
async fn a_subscription_that_cannot_reach_the_broker_stops_when_cancelled() -> anyhow::Result<()> {
    // Arrange
    let unreachable = SubscriptionConfig {
        // Nothing listens on port 1.
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        ..SubscriptionConfig::new(ordo_testkit::amqp_url(), "ordo.events", "unreachable", &["#"])
    };
    let listener = RecordingListener::new();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Subscription::new(unreachable, listener.clone())?.run(shutdown.clone()));

    // Act
    stop(running, &shutdown).await?;

    // Assert
    assert!(listener.heard().is_empty());
    Ok(())
}

/// The value of counter `name` for subscription `subscription`, as the test recorder saw it.
fn counter(name: &str, subscription: &str) -> u64 {
    let key = Key::from_parts(name.to_owned(), vec![Label::new("subscription", subscription.to_owned())]);
    let counters = recorder().counters.lock().unwrap();
    counters.get(&key).map_or(0, |counter| counter.load(Ordering::Relaxed))
}

/// Counters only: enough to observe what the subscription did. Installed once per test binary; every
/// test uses its own subscription name, so their counts do not mix.
#[derive(Clone, Default)]
struct TestRecorder {
    counters: Arc<Mutex<HashMap<Key, Arc<AtomicU64>>>>,
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(counters.entry(key.clone()).or_default().clone())
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn recorder() -> &'static TestRecorder {
    static RECORDER: OnceLock<TestRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone())
            .unwrap_or_else(|_| panic!("another global metrics recorder is installed"));
        recorder
    })
}

fn install_recorder() {
    recorder();
}
