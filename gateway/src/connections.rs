//! The HTTP/1.1 connections of the public port, served by hyper directly (rather than
//! `axum::serve`) for what a public server needs against slow or greedy clients: a deadline on
//! each request's headers (`--header-read-timeout-ms`; the connection is closed past it) and a cap on
//! the connections one client address holds (`--max-connections-per-ip`; a connection past it is
//! closed as soon as it is accepted). The client's address reaches the handlers as axum's
//! `ConnectInfo<SocketAddr>`, and shutdown drains: no new connection is accepted (those the port's
//! accept queue holds already are served, not reset), idle ones are closed, and requests in flight
//! finish.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::ClientLimits;

/// Connections refused because the gateway held as many as it may.
pub(crate) const CONNECTIONS_REFUSED_TOTAL: &str = "ordo_http_connections_refused_total";

/// Pause after a failed `accept` (say, out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How long a connection accepted before the port closed, from which no byte has arrived yet, is
/// given for its first request when the drain ends. Told to close before anything is read, hyper
/// drops such a connection at once — under a client that may have sent its request already (its
/// bytes are in flight, or unread in the socket): that request would be lost. Idle connections that
/// have answered a request close at once.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` is cancelled, then closes the port (serving the
/// connections already waiting in its accept queue) and waits for open connections to finish their
/// requests: idle ones close at once, one that has not sent its first request yet after answering
/// it (or after [`FIRST_REQUEST_WAIT`] without a byte).
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: ClientLimits, shutdown: CancellationToken) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connections = Connections {
        http,
        app,
        per_ip: ConnectionsPerIp::new(limits.max_connections_per_ip),
        closing: CancellationToken::new(),
        open: TaskTracker::new(),
    };
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        connections.serve(stream, peer);
    }
    // The clients of the connections in the accept queue have connected and may have sent their
    // request: closing the listener would reset them. A connection attempt after the close is
    // refused instead, which tells its client that nothing was sent.
    while let Some(Ok((stream, peer))) = accepted_already(&listener).await {
        connections.serve(stream, peer);
    }
    drop(listener);
    connections.closing.cancel();
    connections.open.close();
    connections.open.wait().await;
}

/// A connection the listener's queue holds now, without waiting for one.
async fn accepted_already(listener: &TcpListener) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match listener.poll_accept(cx) {
            Poll::Ready(accepted) => Some(accepted),
            Poll::Pending => None,
        })
    })
    .await
}

/// The accepted connections: each served on a task of its own until the drain closes it.
struct Connections {
    http: hyper::server::conn::http1::Builder,
    app: Router,
    per_ip: ConnectionsPerIp,
    /// Cancelled when the port has closed: the connections finish what they serve and close.
    closing: CancellationToken,
    /// The tasks of the open connections.
    open: TaskTracker,
}

impl Connections {
    /// Serves `stream` from `peer`, or closes it at once when `peer` holds its maximum of connections.
    fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        let Some(slot) = self.per_ip.take(peer.ip()) else {
            metrics::counter!(CONNECTIONS_REFUSED_TOTAL).increment(1);
            tracing::debug!(%peer, "connection refused: too many from this address");
            return;
        };
        // Small responses go out at once rather than waiting for more to fill a segment.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let service = self.app.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let stream = FirstBytes::new(stream);
        let bytes_arrived = stream.arrived.clone();
        let connection = self.http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let closing = self.closing.clone();
        self.open.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                () = closing.cancelled() => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    if !bytes_arrived.is_cancelled() {
                        let first_request = tokio::time::timeout(FIRST_REQUEST_WAIT, bytes_arrived.cancelled());
                        tokio::select! {
                            ended = connection.as_mut() => {
                                log_end(ended, peer);
                                drop(slot);
                                return;
                            }
                            _ = first_request => {}
                        }
                    }
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            log_end(ended, peer);
            drop(slot);
        });
    }
}

/// Logs how a connection ended.
fn log_end(ended: hyper::Result<()>, peer: SocketAddr) {
    if let Err(error) = ended {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// A connection's stream that notes when its first bytes arrive.
struct FirstBytes {
    stream: TcpStream,
    /// Cancelled (a latch) once a read has returned bytes.
    arrived: CancellationToken,
}

impl FirstBytes {
    fn new(stream: TcpStream) -> Self {
        Self { stream, arrived: CancellationToken::new() }
    }
}

impl AsyncRead for FirstBytes {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && !self.arrived.is_cancelled() {
            self.arrived.cancel();
        }
        read
    }
}

impl AsyncWrite for FirstBytes {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Open connections per client address.
#[derive(Debug, Clone)]
struct ConnectionsPerIp {
    max: u32,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl ConnectionsPerIp {
    fn new(max: u32) -> Self {
        Self { max, open: Arc::default() }
    }

    /// A slot for one more connection from `ip`, or `None` when it holds its maximum already.
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot { ip, open: self.open.clone() })
    }
}

/// One open connection of an address; given back when dropped.
#[derive(Debug)]
struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Forget the address, so the map holds only addresses with open connections.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn an_address_gets_up_to_its_maximum_of_slots_and_a_freed_one_back() {
        let per_ip = ConnectionsPerIp::new(2);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();

        let first = per_ip.take(a);
        let second = per_ip.take(a);
        assert!(first.is_some() && second.is_some());
        assert!(per_ip.take(a).is_none(), "a third from the same address is refused");
        assert!(per_ip.take(b).is_some(), "another address is not affected");

        drop(first);
        assert!(per_ip.take(a).is_some(), "a closed connection frees its slot");
    }

    #[tokio::test]
    async fn connections_waiting_in_the_accept_queue_when_the_drain_begins_are_answered_not_reset() {
        // Arrange: connections whose handshakes the kernel completed and whose requests it holds,
        // none accepted yet, and a drain that has begun before the server looks at its port.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..16 {
            let mut client = TcpStream::connect(address).await.unwrap();
            client.write_all(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n").await.unwrap();
            clients.push(client);
        }
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let app = Router::new().route("/", axum::routing::get(|| async { "served" }));
        let limits = ClientLimits {
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_connections_per_ip: 64,
        };

        // Act
        tokio::time::timeout(Duration::from_secs(10), serve(listener, app, limits, shutdown))
            .await
            .expect("the drain finished");

        // Assert: every one was answered, then closed.
        for mut client in clients {
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.expect("closed after an answer, not reset");
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
            assert!(answer.ends_with("served"), "{answer:?}");
        }
        assert!(TcpStream::connect(address).await.is_err(), "the port is closed");
    }

    #[test]
    fn an_address_without_connections_is_forgotten() {
        let per_ip = ConnectionsPerIp::new(1);
        let a: IpAddr = [192, 0, 2, 1].into();
        drop(per_ip.take(a));
        assert!(per_ip.open.lock().unwrap().is_empty());
    }
}
