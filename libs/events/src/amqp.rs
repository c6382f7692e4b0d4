//! What the relay and the consumer share about RabbitMQ: opening a named connection, declaring the
//! events exchange, checking configured names against AMQP's limit, reading string headers, hiding
//! the password of an AMQP URL in logs, and the jittered backoff both use while the broker (or the
//! database) is away.

use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, MAX_SHORT_STRING_LENGTH};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::{Error, Result};

/// Declares `exchange` as a durable topic exchange; idempotent, so every process declares it on
/// connect and none depends on another having started first.
///
/// # Errors
///
/// [`Error::Broker`](crate::Error::Broker) when the exchange exists with other settings (the broker
/// then closes the channel) or the connection fails.
#[tracing::instrument(skip(channel), err)]
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// The largest frame asked of the broker when the URL names none (`?frame_max=` sets another).
/// lapin keeps a receive and a send buffer of 32 frames for each connection, so the 128 KiB frames
/// RabbitMQ offers by default cost 8 MiB of memory per connection, most of a service's heap; at
/// 16 KiB they cost 1 MiB. An event envelope (a few KiB) still fits in one frame, and a larger one
/// is split into several, as AMQP allows any message.
pub const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// How long opening a connection (TCP and the AMQP handshake) may take. A broker that takes the
/// connection and never answers, as a node starting or stopping can, would otherwise hold the caller
/// (a relay, a consumer) forever; heartbeats only start once the handshake is done.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a connection waits for the broker's answer before it is dropped all the same.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection that shows up as `name` in the broker's management UI.
pub(crate) async fn connect(url: &str, name: &str) -> Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let uri = with_frame_max(url).map_err(|e| Error::InvalidConfig(format!("the AMQP URL does not parse: {e}")))?;
    tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri, properties))
        .await
        .map_err(|_| Error::BrokerTimeout { what: "opening a connection", timeout: CONNECT_TIMEOUT })?
        .map_err(Error::from)
}

/// `url` parsed, asking for [`DEFAULT_FRAME_MAX`] unless it names a frame size itself.
fn with_frame_max(url: &str) -> std::result::Result<AMQPUri, String> {
    let mut uri: AMQPUri = url.parse()?;
    uri.query.frame_max.get_or_insert(DEFAULT_FRAME_MAX);
    Ok(uri)
}

/// Closes a connection whose work is done; a failure only means it is gone already, and a broker
/// that does not answer within [`CLOSE_TIMEOUT`] is left behind.
pub(crate) async fn close(connection: &Connection) {
    if !connection.status().connected() {
        return;
    }
    match tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, "shutting down".into())).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "closing the broker connection failed"),
        Err(_) => tracing::debug!("the broker did not answer the close of a connection"),
    }
}

/// [`Error::InvalidConfig`] unless `name`, once `suffix_len` more bytes are appended where it is
/// used, fits in an AMQP short string. Queue, exchange, routing-key and consumer-tag names are short
/// strings, and lapin panics on a longer one, so a configuration is checked when it is accepted.
pub(crate) fn check_name(what: &str, name: &str, suffix_len: usize) -> Result<()> {
    let max = MAX_SHORT_STRING_LENGTH.saturating_sub(suffix_len);
    if name.len() > max {
        return Err(Error::InvalidConfig(format!("{what} must be at most {max} bytes")));
    }
    Ok(())
}

/// The string value of header `name`, if present and a string.
pub(crate) fn string_header<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str()),
        _ => None,
    }
}

/// An integer header, e.g. the quorum queue's `x-delivery-count`, whatever width the broker chose.
pub(crate) fn integer_header(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

/// `url` with its password replaced, fit for `Debug` output and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// Exponential backoff with full jitter, so that many instances losing the broker at the same time
/// do not all come back in the same instant.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failures: 0 }
    }

    /// The pause before the next try: uniformly random up to `base * 2^failures`, capped at `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.base.saturating_mul(2u32.saturating_pow(self.failures)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        // Never zero, so a tight failure loop still yields the CPU and the broker.
        let floor = self.base.min(ceiling) / 2;
        rand::random_range(floor..=ceiling)
    }

    /// Forgets past failures after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_url_without_a_frame_size_asks_for_the_default_and_one_with_a_frame_size_keeps_it() {
        let default = with_frame_max("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        let own = with_frame_max("amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=131072").unwrap();

        assert_eq!(default.query.frame_max, Some(DEFAULT_FRAME_MAX));
        assert_eq!(default.authority.host, "127.0.0.1");
        assert_eq!(own.query.frame_max, Some(131_072));
        assert!(with_frame_max("http://127.0.0.1").is_err());
    }

    #[test]
    fn redact_url_hides_the_password_but_keeps_user_and_host() {
        let redacted = redact_url("amqp://guest:secret@127.0.0.1:5672/%2f");

        assert_eq!(redacted, "amqp://guest:***@127.0.0.1:5672/%2f");
    }

    #[test]
    fn check_name_refuses_a_name_that_outgrows_a_short_string_with_its_suffix() {
        let name = "q".repeat(252);

        let bare = check_name("queue", &name, 0);
        let suffixed = check_name("queue", &name, ".dlq".len());

        assert!(bare.is_ok(), "{bare:?}");
        assert!(matches!(suffixed, Err(Error::InvalidConfig(_))), "{suffixed:?}");
    }

    #[test]
    fn backoff_delays_stay_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

        let delays: Vec<_> = (0..20).map(|_| backoff.next_delay()).collect();

        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2) && *d >= Duration::from_millis(50)));
    }
}
