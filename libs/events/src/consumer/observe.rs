//! What a consumer tells Prometheus besides its outcomes: how far behind it is (messages waiting in
//! its queue, and the time from an event's occurrence to its handling), how many deliveries were
//! redeliveries, and how many messages wait in its dead-letter queue.

use std::time::Duration;

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use ordo_proto::events::v1::Envelope;
use time::OffsetDateTime;

use crate::envelope::occurred_at;

pub(super) const QUEUE_MESSAGES: &str = "ordo_consumer_queue_messages";
pub(super) const DEAD_LETTER_MESSAGES: &str = "ordo_consumer_dead_letter_messages";
pub(super) const REDELIVERIES_TOTAL: &str = "ordo_consumer_redeliveries_total";
pub(super) const EVENT_LAG: &str = "ordo_consumer_event_lag_seconds";

pub(super) fn describe() {
    metrics::describe_gauge!(
        QUEUE_MESSAGES,
        "Messages ready in the consumer's queue (not yet delivered to any instance), by consumer."
    );
    metrics::describe_gauge!(DEAD_LETTER_MESSAGES, "Messages in the consumer's dead-letter queue, by consumer.");
    metrics::describe_counter!(
        REDELIVERIES_TOTAL,
        "Deliveries of a message delivered before (after a failure, a requeue or a lost connection), by consumer."
    );
    metrics::describe_histogram!(
        EVENT_LAG,
        metrics::Unit::Seconds,
        "Time from an event's occurrence to its handling by the consumer, by consumer."
    );
}

/// Counts a delivery that is not the message's first.
pub(super) fn redelivery(consumer: &str) {
    metrics::counter!(REDELIVERIES_TOTAL, "consumer" => consumer.to_owned()).increment(1);
}

/// Records how long after it occurred an event was handled.
pub(super) fn handled(consumer: &str, envelope: &Envelope) {
    if let Ok(at) = occurred_at(envelope) {
        let lag = (OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0);
        metrics::histogram!(EVENT_LAG, "consumer" => consumer.to_owned()).record(lag);
    }
}

/// Makes the counters of `consumer` exist from its start, so a rate or an alert sees a zero rather
/// than nothing before the first failure.
pub(super) fn register(consumer: &str) {
    for name in [
        REDELIVERIES_TOTAL,
        super::PROCESSED_TOTAL,
        super::FAILED_TOTAL,
        super::DUPLICATES_TOTAL,
        super::BATCH_FALLBACKS_TOTAL,
    ] {
        metrics::counter!(name, "consumer" => consumer.to_owned()).increment(0);
    }
}

/// The task of [`watch_depths`], stopped when this is dropped (with the connection it reads on).
pub(super) struct DepthWatch(tokio::task::JoinHandle<()>);

impl DepthWatch {
    pub(super) fn start(
        channel: Channel,
        consumer: String,
        queue: String,
        dead_letters: String,
        every: Duration,
    ) -> Self {
        Self(tokio::spawn(watch_depths(channel, consumer, queue, dead_letters, every)))
    }
}

impl Drop for DepthWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every `every`, reads the depth of `queue` and of `dead_letters` with a passive declare (which
/// changes nothing) on `channel`, until the channel fails.
async fn watch_depths(channel: Channel, consumer: String, queue: String, dead_letters: String, every: Duration) {
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for (name, metric) in [(&queue, QUEUE_MESSAGES), (&dead_letters, DEAD_LETTER_MESSAGES)] {
            match channel.queue_declare(name.as_str().into(), passive, FieldTable::default()).await {
                Ok(declared) => {
                    metrics::gauge!(metric, "consumer" => consumer.clone()).set(f64::from(declared.message_count()));
                }
                // A passive declare of a missing queue closes the channel: nothing more to read.
                Err(error) => {
                    tracing::debug!(%error, queue = %name, "could not read the queue's depth");
                    return;
                }
            }
        }
    }
}
