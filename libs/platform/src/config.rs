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
