//! Configuration pieces shared by every binary. Each binary defines its own `clap` struct (flags and
//! `ORDO_*` environment variables, with defaults that work on a developer machine) and flattens these.

use std::fmt;
use std::str::FromStr;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for machines (the default).
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// Settings of the operations side of a process: logs and the ops HTTP port.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format.
    #[arg(long, env = "ORDO_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
}

/// Settings of the async runtime.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Runtime worker threads [default: half the cores, at least 1]. A request hops between a few
    /// tasks (connection, Redis, gRPC channel); with backends on the same cores, waking another worker
    /// for each hop costs more than the extra thread gives (measured on a 2-core machine with the whole
    /// stack: 1 worker serves ~10% more requests per second than 2). Give a process every core when it
    /// has its machine to itself.
    #[arg(long, env = "ORDO_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
}

impl RuntimeArgs {
    /// The number of worker threads to start.
    pub fn worker_threads(&self) -> usize {
        match self.worker_threads {
            Some(threads) => usize::from(threads),
            None => std::thread::available_parallelism().map_or(1, |cores| cores.get() / 2).max(1),
        }
    }

    /// Builds the multi-threaded runtime a binary runs on.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread().worker_threads(self.worker_threads()).enable_all().build()
    }
}

/// A value that must never appear in logs or `Debug` output, such as a URL carrying a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value; call only where it is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T: FromStr> FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        T::from_str(s).map(Secret)
    }
}

/// Parses a duration given in milliseconds, for `clap` value parsers.
pub fn parse_millis(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<u64>().map(std::time::Duration::from_millis).map_err(|e| format!("not a number of milliseconds: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_the_value() {
        let secret: Secret<String> = "mysql://root:hunter2@db/x".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "mysql://root:hunter2@db/x");
    }

    #[test]
    fn parse_millis_rejects_words() {
        assert_eq!(parse_millis("250"), Ok(std::time::Duration::from_millis(250)));
        assert!(parse_millis("soon").is_err());
    }
}
