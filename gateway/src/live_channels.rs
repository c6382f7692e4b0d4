//! The connections live notification streams ride on.
//!
//! Each `GET /notifications/stream` is an HTTP/2 stream to the notification service that stays open
//! for hours. On the connection every other notification call uses, ten thousand of them would share
//! one flow-control window and one TCP ordering with those calls, and would keep both ends' stream
//! tables (h2 keeps streams in a slab, which keeps its peak capacity) at their peak size for as long
//! as the connection lives. So streams go on connections of their own, at most `per_connection` on
//! each, and a connection whose last stream ends is closed unless it is the only one.

use std::sync::{Arc, Mutex, PoisonError};

use tonic::transport::{Channel, Endpoint};

/// Connections for live streams, opened as streams need them and closed when their last one ends.
#[derive(Debug, Clone)]
pub(crate) struct LiveChannels(Arc<Pool>);

#[derive(Debug)]
struct Pool {
    endpoint: Endpoint,
    per_connection: usize,
    connections: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    open: Vec<Connection>,
    next_id: u64,
}

#[derive(Debug)]
struct Connection {
    id: u64,
    channel: Channel,
    streams: usize,
}

/// One stream's place on a connection; dropping it gives the place back (and closes the connection
/// when it was the last stream on it and another connection remains).
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<Pool>,
    connection: u64,
}

impl LiveChannels {
    /// Connections to `endpoint` (dialled lazily, on the first stream), carrying at most
    /// `per_connection` streams each (at least one).
    pub(crate) fn new(endpoint: Endpoint, per_connection: usize) -> Self {
        let pool = Pool { endpoint, per_connection: per_connection.max(1), connections: Mutex::default() };
        Self(Arc::new(pool))
    }

    /// A channel with room for one more stream, and the lease to hold for as long as the stream lives.
    pub(crate) fn acquire(&self) -> (Channel, Lease) {
        let pool = &self.0;
        let mut connections = pool.connections.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match connections.open.iter().position(|c| c.streams < pool.per_connection) {
            Some(index) => index,
            None => {
                let id = connections.next_id;
                connections.next_id += 1;
                let channel = pool.endpoint.connect_lazy();
                connections.open.push(Connection { id, channel, streams: 0 });
                connections.open.len() - 1
            }
        };
        let connection = &mut connections.open[index];
        connection.streams += 1;
        let lease = Lease { pool: Arc::clone(pool), connection: connection.id };
        (connection.channel.clone(), lease)
    }

    /// How many connections are open (or ready to be dialled).
    #[cfg(test)]
    fn connections(&self) -> usize {
        self.0.connections.lock().unwrap_or_else(PoisonError::into_inner).open.len()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut connections = self.pool.connections.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(index) = connections.open.iter().position(|c| c.id == self.connection) else {
            return;
        };
        let connection = &mut connections.open[index];
        connection.streams = connection.streams.saturating_sub(1);
        if connection.streams == 0 && connections.open.len() > 1 {
            // Its streams have ended; once the last handle on its channel goes, so does the connection.
            connections.open.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pool(per_connection: usize) -> LiveChannels {
        LiveChannels::new(Endpoint::from_static("http://127.0.0.1:9"), per_connection)
    }

    #[tokio::test]
    async fn streams_fill_a_connection_before_another_is_opened() {
        let channels = pool(2);

        let leases: Vec<_> = (0..5).map(|_| channels.acquire().1).collect();

        assert_eq!(channels.connections(), 3);
        let per_connection: Vec<_> = leases.iter().map(|lease| lease.connection).collect();
        assert_eq!(per_connection, [0, 0, 1, 1, 2]);
    }

    #[tokio::test]
    async fn a_connection_whose_streams_all_ended_is_closed_unless_it_is_the_last() {
        let channels = pool(2);
        let mut leases: Vec<_> = (0..5).map(|_| channels.acquire().1).collect();

        // The third connection's only stream ends: it closes.
        drop(leases.pop());
        assert_eq!(channels.connections(), 2);
        // One of the first connection's two ends: it stays, and the next stream takes that place.
        let first = leases.remove(0);
        let kept = leases.remove(0);
        drop(first);
        assert_eq!(channels.connections(), 2);
        let (_, refilled) = channels.acquire();
        assert_eq!(refilled.connection, 0);
        // Everything ends: one connection remains, ready for the next stream.
        drop((kept, refilled, leases));
        assert_eq!(channels.connections(), 1);
        let (_, next) = channels.acquire();
        assert_eq!(channels.connections(), 1);
        assert_eq!(next.connection, 1);
    }
}
