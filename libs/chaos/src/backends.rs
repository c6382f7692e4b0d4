//! The machine's own MariaDB, RabbitMQ and Redis, really stopped and started again. A stop waits for
//! the old process to exit before anything starts it again (a start while a MariaDB is still shutting
//! down does nothing and leaves it down); a start goes through `deploy/scripts/local-services.sh`, the
//! way every developer machine and CI starts them, and then waits until the server answers its own
//! protocol. [`ensure_up`] runs at the end of every run, failed or not, so none is left down.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use sqlx::Connection as _;
use tokio::process::Command;

/// How long a server may take to exit after it was asked to stop, and to answer after a start.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// A backing server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    MariaDb,
    RabbitMq,
    Redis,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Backend {
    pub(crate) const ALL: [Self; 3] = [Self::MariaDb, Self::RabbitMq, Self::Redis];

    /// Its name for `local-services.sh`.
    fn name(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb",
            Self::RabbitMq => "rabbitmq",
            Self::Redis => "redis",
        }
    }

    /// The ids of its server processes.
    async fn pids(self) -> anyhow::Result<Vec<u32>> {
        let (flag, pattern) = match self {
            Self::MariaDb => ("-x", "mariadbd|mysqld"),
            // The Erlang VM that runs the broker.
            Self::RabbitMq => ("-f", "beam.*rabbit"),
            Self::Redis => ("-x", "redis-server"),
        };
        let output = Command::new("pgrep").arg(flag).arg(pattern).output().await.context("pgrep")?;
        Ok(String::from_utf8_lossy(&output.stdout).split_whitespace().filter_map(|pid| pid.parse().ok()).collect())
    }

    /// Whether it answers a request of its own protocol.
    pub(crate) async fn answers(self) -> bool {
        let attempt = async {
            match self {
                Self::MariaDb => {
                    let mut conn = sqlx::MySqlConnection::connect(&ordo_testkit::mysql_server_url()).await?;
                    sqlx::query("SELECT 1").execute(&mut conn).await?;
                    conn.close().await?;
                }
                Self::RabbitMq => {
                    let options = lapin::ConnectionProperties::default();
                    let amqp = lapin::Connection::connect(&ordo_testkit::amqp_url(), options).await?;
                    amqp.close(200, "ping".into()).await?;
                }
                Self::Redis => {
                    let output =
                        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "ping"]).output().await?;
                    ensure!(String::from_utf8_lossy(&output.stdout).trim() == "PONG", "no PONG");
                }
            }
            anyhow::Ok(())
        };
        matches!(tokio::time::timeout(Duration::from_secs(5), attempt).await, Ok(Ok(())))
    }

    /// Asks the server to stop and waits until its processes have exited; how long that took.
    pub(crate) async fn stop(self) -> anyhow::Result<Duration> {
        let pids = self.pids().await?;
        ensure!(!pids.is_empty(), "{self} is not running");
        let started = Instant::now();
        let status = match self {
            Self::MariaDb => {
                let admin = if which("mariadb-admin") { "mariadb-admin" } else { "mysqladmin" };
                Command::new(admin).args(["-uroot", "-h127.0.0.1", "--protocol=tcp", "shutdown"]).status().await?
            }
            Self::RabbitMq => Command::new("rabbitmqctl").arg("stop").status().await?,
            Self::Redis => {
                Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"]).status().await?
            }
        };
        // redis-cli reports the connection the shutdown closed as an error; the wait below decides.
        if !status.success() && self != Self::Redis {
            bail!("the {self} stop command failed ({status})");
        }
        while pids.iter().any(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
            ensure!(started.elapsed() < STOP_TIMEOUT, "{self} did not exit within {STOP_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed())
    }

    /// Starts the server the way `just services` does and waits until it answers; how long that took.
    pub(crate) async fn start(self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("bash")
            .args(["deploy/scripts/local-services.sh", self.name()])
            .status()
            .await
            .context("deploy/scripts/local-services.sh")?;
        ensure!(status.success(), "local-services.sh could not start {self} ({status})");
        while !self.answers().await {
            ensure!(started.elapsed() < START_TIMEOUT, "{self} did not answer within {START_TIMEOUT:?} of its start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(started.elapsed())
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Starts any backend that does not answer: one still starting is given time to answer, and one still
/// stopping is waited for until its old process has exited. Every error it met, joined.
pub(crate) async fn ensure_up() -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for backend in Backend::ALL {
        let waited = Instant::now();
        loop {
            if backend.answers().await {
                break;
            }
            match backend.pids().await {
                Ok(pids) if pids.is_empty() => {
                    if let Err(error) = backend.start().await {
                        errors.push(format!("{backend}: {error:#}"));
                    }
                    break;
                }
                Ok(_) if waited.elapsed() < STOP_TIMEOUT => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(pids) => {
                    errors.push(format!("{backend}: processes {pids:?} neither answer nor exit"));
                    break;
                }
                Err(error) => {
                    errors.push(format!("{backend}: {error:#}"));
                    break;
                }
            }
        }
    }
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(())
}
