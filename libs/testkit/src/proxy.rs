//! A cuttable TCP proxy, so a test can take a backend away from the process under test without
//! stopping the shared server (tests run in parallel and CI shares the machine). [`TcpProxy::cut`]
//! drops every open connection and then refuses new ones (each is reset at once);
//! [`TcpProxy::blackhole`] drops them too and then accepts new ones but never forwards a byte — the
//! nastier case that only timeouts survive. [`TcpProxy::restore`] forwards again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Refuse,
    Blackhole,
}

/// A TCP proxy on a free loopback port in front of `target`; stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    target: String,
    /// The mode and a generation that moves on at every cut, which ends every open forwarding.
    state: watch::Sender<(Mode, u64)>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel((Mode::Forward, 0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(listener, target.to_owned(), state.clone(), held.clone()));
        Ok(Self { addr, target: target.to_owned(), state, held, task })
    }

    /// A proxy in front of the tests' Redis ([`crate::redis_url`]); see [`Self::redis_url`].
    pub async fn redis() -> anyhow::Result<Self> {
        Self::start(&host_port(&crate::redis_url())).await
    }

    /// A proxy in front of the tests' MariaDB ([`crate::mysql_server_url`]); see [`Self::url_of`].
    pub async fn mysql() -> anyhow::Result<Self> {
        Self::start(&host_port(&crate::mysql_server_url())).await
    }

    /// A proxy in front of the tests' RabbitMQ ([`crate::amqp_url`]); see [`Self::amqp_url`].
    pub async fn amqp() -> anyhow::Result<Self> {
        Self::start(&host_port(&crate::amqp_url())).await
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with the proxy's address in place of its target's (any other URL is returned as it is).
    pub fn url_of(&self, url: &str) -> String {
        url.replacen(&self.target, &self.addr.to_string(), 1)
    }

    /// The tests' Redis URL with the proxy's address in place of Redis's.
    pub fn redis_url(&self) -> String {
        self.url_of(&crate::redis_url())
    }

    /// The tests' RabbitMQ URL with the proxy's address in place of RabbitMQ's.
    pub fn amqp_url(&self) -> String {
        self.url_of(&crate::amqp_url())
    }

    /// Drops every open connection and resets every new one until [`Self::restore`].
    pub fn cut(&self) {
        self.switch(Mode::Refuse);
    }

    /// Drops every open connection; new ones are accepted and then never answered.
    pub fn blackhole(&self) {
        self.switch(Mode::Blackhole);
    }

    /// Forwards new connections again (and closes the blackholed ones).
    pub fn restore(&self) {
        self.switch(Mode::Forward);
    }

    fn switch(&self, mode: Mode) {
        self.state.send_modify(|(current, generation)| {
            *current = mode;
            *generation += 1;
        });
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Ends the forwardings too.
        self.switch(Mode::Refuse);
    }
}

async fn accept(
    listener: TcpListener,
    target: String,
    state: watch::Sender<(Mode, u64)>,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    while let Ok((inbound, _)) = listener.accept().await {
        let (mode, generation) = *state.borrow();
        match mode {
            Mode::Forward => {
                let mut cuts = state.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.wait_for(|(_, now)| *now != generation) => {}
                    }
                });
            }
            Mode::Refuse => {
                // A zero linger makes the close a reset, as a closed port answers.
                let _ = inbound.set_zero_linger();
                drop(inbound);
            }
            Mode::Blackhole => held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(inbound),
        }
    }
}

/// `host:port` of a URL such as `redis://user:pass@127.0.0.1:6379/0`.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    /// Sends `ping` and waits up to 300 ms for it to come back.
    async fn round_trip(stream: &mut TcpStream) -> Result<(), String> {
        stream.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buffer = [0u8; 4];
        match tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut buffer)).await {
            Ok(Ok(_)) if &buffer == b"ping" => Ok(()),
            Ok(Ok(_)) => Err("wrong bytes".into()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    #[tokio::test]
    async fn a_cut_drops_open_connections_and_resets_new_ones_until_restored() {
        let proxy = TcpProxy::start(&echo_server().await.to_string()).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut open).await.unwrap();

        proxy.cut();

        assert!(round_trip(&mut open).await.is_err(), "an open connection survived the cut");
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        let error = round_trip(&mut fresh).await.unwrap_err();
        assert_ne!(error, "timed out");
        proxy.restore();
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut fresh).await.unwrap();
    }

    #[tokio::test]
    async fn a_blackhole_accepts_and_never_answers() {
        let proxy = TcpProxy::start(&echo_server().await.to_string()).await.unwrap();

        proxy.blackhole();

        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut fresh).await.unwrap_err(), "timed out");
        proxy.restore();
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut fresh).await.unwrap();
    }

    #[test]
    fn the_host_and_port_are_taken_from_a_url() {
        assert_eq!(host_port("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(host_port("redis://u:p@db:6380/2"), "db:6380");
    }
}
