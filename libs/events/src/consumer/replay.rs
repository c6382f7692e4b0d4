//! Replaying dead letters: once the cause of their failure is fixed, the messages in a consumer's
//! dead-letter queue (`<queue>.dlq`) go back to its queue to be applied again.
//!
//! Each message is published again, as it was (body and properties) but without the broker's
//! headers of its earlier life (`x-delivery-count`, `x-death`, ...), to the consumer's own queue
//! through the default exchange: it starts with a fresh delivery count, and no other service's queue
//! receives it a second time. Only after the broker confirms the copy is the dead letter acked, so
//! a crash in between leaves both, and the consumer's dedup drops the event the second time.
//! At most the messages present when the replay starts are taken, so a message that fails again
//! (and is dead-lettered again meanwhile) is not replayed in a loop.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};

use super::ConsumerConfig;
use crate::{Error, Result, amqp};

/// Moves up to `limit` messages from the dead-letter queue of `config`'s consumer back to its
/// queue, oldest first, and returns how many it moved. The queues must exist (the consumer declares
/// them when it starts).
///
/// # Errors
///
/// [`Error::Broker`] when the broker cannot be reached, a queue does not exist, or a copy is not
/// confirmed (that dead letter then stays where it was, and the ones moved before stay moved).
pub async fn replay_dead_letters(config: &ConsumerConfig, limit: u64) -> Result<u64> {
    let connection = amqp::connect(&config.amqp_url, &format!("ordo-replay-{}", config.consumer_name)).await?;
    let result = async {
        let channel = connection.create_channel().await?;
        let replayed = replay(&channel, config, limit).await;
        channel.close(200, "replay done".into()).await?;
        replayed
    }
    .await;
    amqp::close(&connection).await;
    result
}

async fn replay(channel: &Channel, config: &ConsumerConfig, limit: u64) -> Result<u64> {
    let dead_letters = config.dead_letter_queue();
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    // The queue must be there, or the copies would be dropped by the default exchange.
    channel.queue_declare(config.queue.as_str().into(), passive, FieldTable::default()).await?;
    let waiting = channel.queue_declare(dead_letters.as_str().into(), passive, FieldTable::default()).await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;

    let mut replayed = 0;
    let budget = limit.min(u64::from(waiting.message_count()));
    while replayed < budget {
        let Some(message) = channel.basic_get(dead_letters.as_str().into(), BasicGetOptions { no_ack: false }).await?
        else {
            break;
        };
        let delivery = message.delivery;
        let copy = fresh(&delivery.properties);
        let confirmation = channel
            .basic_publish(
                "".into(),
                config.queue.as_str().into(),
                // Mandatory: a copy the queue did not take comes back instead of vanishing.
                BasicPublishOptions { mandatory: true, immediate: false },
                &delivery.data,
                copy,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Ack(None) => {
                delivery.acker.ack(BasicAckOptions::default()).await?;
                replayed += 1;
            }
            Confirmation::Ack(Some(_)) | Confirmation::Nack(_) | Confirmation::NotRequested => {
                delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await?;
                return Err(Error::Nacked { event_id: message_id(&delivery.properties) });
            }
        }
    }
    tracing::info!(queue = %config.queue, replayed, "dead letters replayed");
    Ok(replayed)
}

/// `properties` without the headers the broker added (every `x-` header: the delivery count, the
/// death records), so the copy is a new message to the queue.
fn fresh(properties: &BasicProperties) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(old) = properties.headers() {
        for (name, value) in old.inner() {
            if !name.as_str().starts_with("x-") {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    properties.clone().with_headers(headers)
}

fn message_id(properties: &BasicProperties) -> String {
    properties.message_id().as_ref().map(|id| id.as_str().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use lapin::types::{AMQPValue, LongString};

    use super::*;

    #[test]
    fn a_copy_keeps_its_own_headers_and_drops_the_brokers() {
        let mut headers = FieldTable::default();
        headers.insert("traceparent".into(), AMQPValue::LongString(LongString::from("00-abc-def-01")));
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(4));
        headers.insert("x-death".into(), AMQPValue::LongString(LongString::from("rejected")));
        let properties = BasicProperties::default().with_message_id("event-1".into()).with_headers(headers);

        let copy = fresh(&properties);

        let kept: Vec<&str> = copy.headers().as_ref().unwrap().inner().keys().map(|k| k.as_str()).collect();
        assert_eq!(kept, ["traceparent"]);
        assert_eq!(message_id(&copy), "event-1");
    }
}
