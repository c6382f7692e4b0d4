//! Broadcast subscriptions: every running instance of a service receives every matching event, for
//! in-process state such as a cache that must forget what an event made stale. Unlike a
//! [`Consumer`](crate::Consumer), whose instances compete for the messages of one durable queue, each
//! [`Subscription`] declares a server-named, exclusive, auto-deleted queue of its own that lives as
//! long as its connection. Nothing is deduplicated, acknowledged or retried: what the listener does
//! must be idempotent, and events published while a subscription is not connected are missed, which
//! [`Listener::on_connected`] announces so that the listener can drop everything it derived.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use ordo_proto::events::v1::Envelope;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::amqp::{self, Backoff};
use crate::trace_context::{self, TRACEPARENT, TRACESTATE};
use crate::{Error, Result, declare_exchange};

const EVENTS_TOTAL: &str = "ordo_subscription_events_total";
const UNDECODABLE_TOTAL: &str = "ordo_subscription_undecodable_total";
const LISTENER_PANICS_TOTAL: &str = "ordo_subscription_listener_panics_total";

/// The length of `-` and a simple UUID, which follow the name in the consumer tag.
const CONSUMER_TAG_SUFFIX_LEN: usize = 33;

/// What a subscription does with what it receives. Called on the subscription's own task; keep it quick and non-blocking.
pub trait Listener: Send + Sync + 'static {
    /// One event, in the order the broker delivered it.
    fn on_event(&self, envelope: &Envelope);

    /// Called each time the queue is (re)declared and bound, before any event of that connection:
    /// events published while the subscription was not connected were missed, so a cache should drop everything here.
    fn on_connected(&self);
}

impl<T: Listener + ?Sized> Listener for Arc<T> {
    fn on_event(&self, envelope: &Envelope) {
        (**self).on_event(envelope);
    }

    fn on_connected(&self) {
        (**self).on_connected();
    }
}

/// Where a [`Subscription`] listens.
#[derive(Clone)]
pub struct SubscriptionConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The topic exchange events are published to (`ordo.events`).
    pub exchange: String,
    /// Routing keys or patterns the subscription's queue is bound with, e.g. `project.member_removed`
    /// or `identity.*`.
    pub bindings: Vec<String>,
    /// What the subscription is for, e.g. `task-access-cache`: part of the connection name, and the
    /// `subscription` label of its logs and metrics.
    pub name: String,
    /// The longest pause between reconnection attempts while the broker is away (default 30 s).
    pub max_backoff: Duration,
}

impl SubscriptionConfig {
    /// The default configuration of subscription `name` to the events of `exchange` that match any
    /// of `bindings`.
    pub fn new(
        amqp_url: impl Into<String>,
        exchange: impl Into<String>,
        name: impl Into<String>,
        bindings: &[&str],
    ) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            exchange: exchange.into(),
            bindings: bindings.iter().map(|&binding| binding.to_owned()).collect(),
            name: name.into(),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for SubscriptionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionConfig")
            .field("amqp_url", &amqp::redact_url(&self.amqp_url))
            .field("exchange", &self.exchange)
            .field("bindings", &self.bindings)
            .field("name", &self.name)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// Hands every event of an exchange that matches its bindings to one [`Listener`], in every instance
/// of the service that runs it.
///
/// Each connection gets a fresh server-named queue (exclusive, auto-deleted, not durable) that the
/// broker deletes when the connection ends, so a stopped or crashed instance leaves nothing behind
/// and nothing piles up for it. Messages are not acknowledged (`no_ack`): a delivery is handed to the
/// listener once, and an event that arrives while the listener is busy waits in memory.
///
/// A listener that panics at an event has missed that event (logged and counted) and gets the next
/// one; a listener that panics in [`Listener::on_connected`] may still hold stale state, so the
/// subscription drops the connection and, after the backoff, connects and asks it again.
pub struct Subscription {
    config: SubscriptionConfig,
    listener: Arc<dyn Listener>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why one connection's life ended before shutdown.
#[derive(Debug)]
enum Interrupted {
    /// The broker refused something or went away.
    Broker(Error),
    /// [`Listener::on_connected`] panicked, so the listener may still hold what it should have
    /// dropped; connecting again calls it again.
    ListenerPanicked(String),
}

impl From<Error> for Interrupted {
    fn from(error: Error) -> Self {
        Self::Broker(error)
    }
}

impl From<lapin::Error> for Interrupted {
    fn from(error: lapin::Error) -> Self {
        Self::Broker(error.into())
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Broker(error) => error.fmt(f),
            Self::ListenerPanicked(message) => write!(f, "on_connected panicked: {message}"),
        }
    }
}

impl Subscription {
    /// A subscription handing the events that match `config.bindings` to `listener`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for no bindings, an empty exchange or name, or an exchange, binding
    /// or name too long for AMQP (the name leaves room for the consumer tag's unique suffix).
    pub fn new(config: SubscriptionConfig, listener: impl Listener) -> Result<Self> {
        let invalid = |reason: &str| Err(Error::InvalidConfig(reason.to_owned()));
        if config.exchange.is_empty() || config.name.is_empty() {
            return invalid("exchange and name must not be empty");
        }
        if config.bindings.is_empty() {
            return invalid("bindings must not be empty, or the subscription would receive nothing");
        }
        amqp::check_name("exchange", &config.exchange, 0)?;
        for binding in &config.bindings {
            amqp::check_name("binding", binding, 0)?;
        }
        // The consumer tag is the name, a dash and a simple UUID.
        amqp::check_name("name", &config.name, CONSUMER_TAG_SUFFIX_LEN)?;
        describe_metrics();
        Ok(Self { config, listener: Arc::new(listener) })
    }

    /// Subscribes until `shutdown` is cancelled, reconnecting with a jittered backoff when the broker goes away.
    ///
    /// On shutdown it stops consuming and closes the channel and the connection, and the broker
    /// deletes the queue with them; events still buffered are dropped.
    #[tracing::instrument(name = "event subscription", skip_all, fields(subscription = %self.config.name))]
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), self.config.max_backoff);
        while !shutdown.is_cancelled() {
            match self.subscribe(&shutdown, &mut backoff).await {
                Ok(()) => break,
                Err(interrupted) => {
                    let delay = backoff.next_delay();
                    match &interrupted {
                        Interrupted::Broker(error) => tracing::warn!(
                            %error,
                            subscription = %self.config.name,
                            retry_in = ?delay,
                            "event subscription lost the broker; reconnecting"
                        ),
                        Interrupted::ListenerPanicked(_) => tracing::error!(
                            error = %interrupted,
                            subscription = %self.config.name,
                            retry_in = ?delay,
                            "the listener panicked on connecting; reconnecting"
                        ),
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!(subscription = %self.config.name, "event subscription stopped");
    }

    fn connection_name(&self) -> String {
        format!("ordo-subscription-{}", self.config.name)
    }

    /// One connection's life: declare and bind a fresh queue, tell the listener, then hand it every
    /// delivery until shutdown (`Ok`) or until the connection fails (`Err`, and [`run`](Self::run)
    /// reconnects).
    async fn subscribe(&self, shutdown: &CancellationToken, backoff: &mut Backoff) -> Result<(), Interrupted> {
        let connection = amqp::connect(&self.config.amqp_url, &self.connection_name()).await?;
        let result = async {
            let channel = connection.create_channel().await?;
            declare_exchange(&channel, &self.config.exchange).await?;
            let options =
                QueueDeclareOptions { exclusive: true, auto_delete: true, durable: false, ..Default::default() };
            let mut arguments = FieldTable::default();
            // Exclusive queues are classic anyway; saying so keeps a vhost whose default queue type
            // is quorum from refusing the declaration.
            arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("classic")));
            // An empty name asks the broker for a unique one (`amq.gen-...`).
            let queue = channel.queue_declare("".into(), options, arguments).await?;
            let queue = queue.name().as_str().to_owned();
            for binding in &self.config.bindings {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        self.config.exchange.as_str().into(),
                        binding.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            // Bound before the listener hears of it, so nothing published after this call is missed;
            // consuming starts after it, so no event of this connection comes before it.
            let connected = std::panic::catch_unwind(AssertUnwindSafe(|| self.listener.on_connected()));
            if let Err(panic) = connected {
                metrics::counter!(LISTENER_PANICS_TOTAL, "subscription" => self.config.name.clone()).increment(1);
                return Err(Interrupted::ListenerPanicked(panic_message(panic.as_ref())));
            }

            let tag = format!("{}-{}", self.config.name, Uuid::now_v7().simple());
            let mut deliveries = channel
                .basic_consume(
                    queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions { no_ack: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(subscription = %self.config.name, %queue, "event subscription started");
            backoff.reset();

            loop {
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    next = deliveries.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => self.deliver(&delivery),
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(Error::ConsumerCancelled { queue }.into()),
                }
            }

            channel.basic_cancel(tag.into(), BasicCancelOptions::default()).await?;
            channel.close(200, "shutting down".into()).await?;
            Ok(())
        }
        .await;
        // The queue is exclusive to this connection, so closing it deletes the queue too.
        amqp::close(&connection).await;
        result
    }

    /// Hands one delivery to the listener, in a span that continues the producer's trace. Neither an
    /// undecodable body nor a panicking listener ends the subscription: the event is lost for this
    /// listener, which is logged and counted.
    fn deliver(&self, delivery: &Delivery) {
        let subscription = self.config.name.clone();
        let envelope = match Envelope::decode(delivery.data.as_slice()) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(
                    %subscription,
                    routing_key = %delivery.routing_key,
                    %error,
                    "undecodable event; dropping it"
                );
                metrics::counter!(UNDECODABLE_TOTAL, "subscription" => subscription).increment(1);
                return;
            }
        };
        metrics::counter!(EVENTS_TOTAL, "subscription" => subscription.clone()).increment(1);

        let span = tracing::debug_span!(
            "receive event",
            %subscription,
            event_id = %envelope.event_id,
            event_type = %envelope.r#type,
        );
        if !span.is_disabled() {
            // Prefer the headers (what the relay sent), fall back to the envelope's own copy.
            let headers = delivery.properties.headers().as_ref();
            let traceparent = amqp::string_header(headers, TRACEPARENT).unwrap_or(&envelope.traceparent);
            let tracestate = amqp::string_header(headers, TRACESTATE).unwrap_or(&envelope.tracestate);
            trace_context::set_parent(&span, traceparent, tracestate);
        }
        let _entered = span.enter();
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| self.listener.on_event(&envelope))) {
            tracing::error!(
                %subscription,
                event_id = %envelope.event_id,
                event_type = %envelope.r#type,
                reason = %panic_message(panic.as_ref()),
                "the listener panicked; going on with the next event"
            );
            metrics::counter!(LISTENER_PANICS_TOTAL, "subscription" => subscription).increment(1);
        }
    }
}

/// What a caught panic said, as far as it can be told.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
        .to_owned()
}

fn describe_metrics() {
    metrics::describe_counter!(EVENTS_TOTAL, "Events handed to the listener, by subscription.");
    metrics::describe_counter!(UNDECODABLE_TOTAL, "Deliveries dropped because they held no Envelope, by subscription.");
    metrics::describe_counter!(
        LISTENER_PANICS_TOTAL,
        "Panics of the listener (on an event, or on connecting), by subscription."
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_config_debug_output_hides_the_broker_password() {
        let config = SubscriptionConfig::new("amqp://guest:secret@127.0.0.1:5672/%2f", "ordo.events", "cache", &["#"]);

        let debug = format!("{config:?}");

        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("amqp://guest:***@127.0.0.1:5672/%2f"), "{debug}");
    }
}
