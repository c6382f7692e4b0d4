//! The HTTP/1.1 connections of the public port, served by hyper directly (rather than
//! `axum::serve`) for what a public server needs against slow or greedy clients: a deadline on
//! each request's headers (`--header-read-timeout-ms`; the connection is closed past it) and a cap on
//! the connections one client address holds (`--max-connections-per-ip`; a connection past it is
//! closed as soon as it is accepted). The client's address reaches the handlers as axum's
//! `ConnectInfo<SocketAddr>`, and shutdown drains: no new connection is accepted, idle ones are
//! closed, and requests in flight finish.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::ClientLimits;

/// Connections refused because the gateway held as many as it may.
pub(crate) const CONNECTIONS_REFUSED_TOTAL: &str = "ordo_http_connections_refused_total";

/// Pause after a failed `accept` (say, out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown` is cancelled, then waits for open connections to
/// finish their requests.
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: ClientLimits, shutdown: CancellationToken) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let per_ip = ConnectionsPerIp::new(limits.max_connections_per_ip);
    let graceful = GracefulShutdown::new();
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
        let Some(slot) = per_ip.take(peer.ip()) else {
            metrics::counter!(CONNECTIONS_REFUSED_TOTAL).increment(1);
            tracing::debug!(%peer, "connection refused: too many from this address");
            continue;
        };
        // Small responses go out at once rather than waiting for more to fill a segment.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let service = app.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
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

    #[test]
    fn an_address_without_connections_is_forgotten() {
        let per_ip = ConnectionsPerIp::new(1);
        let a: IpAddr = [192, 0, 2, 1].into();
        drop(per_ip.take(a));
        assert!(per_ip.open.lock().unwrap().is_empty());
    }
}
