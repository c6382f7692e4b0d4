//! Where a soak's machine spends itself: CPU time of every process that serves the load (Ordo's six,
//! the backends, the S3 and SES stand-ins and this driver), read from `/proc`, and MariaDB's own
//! counters (buffer pool reads from disk against those served from memory, waits for a free page,
//! the redo log's checkpoint age) with the size of the run's schemas. A latency that rises over a
//! soak is then read beside the process whose CPU rose with it, or the buffer pool that stopped
//! holding the data.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::MySqlPool;

use crate::stack::{Service, Stack, WITH_SCHEMA};

/// `/proc/<pid>/stat` counts CPU time in `USER_HZ` ticks, 100 a second on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// A process CPU time is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Process {
    /// One of Ordo's.
    Ordo(Service),
    MariaDb,
    RabbitMq,
    Redis,
    /// The S3 and SES stand-ins (moto), together.
    Moto,
    /// This driver: the load, the streams and the checks.
    Driver,
}

impl Process {
    /// Every process, in the tables' order.
    pub(crate) fn all() -> Vec<Process> {
        let mut all: Vec<Process> = Service::ALL.into_iter().map(Process::Ordo).collect();
        all.extend([Process::MariaDb, Process::RabbitMq, Process::Redis, Process::Moto, Process::Driver]);
        all
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Ordo(service) => write!(f, "{service}"),
            Process::MariaDb => f.write_str("mariadb"),
            Process::RabbitMq => f.write_str("rabbitmq"),
            Process::Redis => f.write_str("redis"),
            Process::Moto => f.write_str("moto"),
            Process::Driver => f.write_str("driver"),
        }
    }
}

/// CPU seconds used so far by each process found.
pub(crate) fn cpu(stack: &Stack) -> BTreeMap<Process, f64> {
    let mut seconds = BTreeMap::new();
    for service in Service::ALL {
        if let Some(pid) = stack.pid(service)
            && let Some(used) = cpu_seconds(&pid.to_string())
        {
            seconds.insert(Process::Ordo(service), used);
        }
    }
    if let Some(used) = cpu_seconds("self") {
        seconds.insert(Process::Driver, used);
    }
    let Ok(entries) = std::fs::read_dir("/proc") else { return seconds };
    for entry in entries.filter_map(Result::ok) {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(process) = backend(&pid) else { continue };
        if let Some(used) = cpu_seconds(&pid) {
            *seconds.entry(process).or_default() += used;
        }
    }
    seconds
}

/// Which backend `/proc/<pid>` is, if any.
fn backend(pid: &str) -> Option<Process> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    match comm.trim_end() {
        "mariadbd" | "mysqld" => Some(Process::MariaDb),
        "beam.smp" => Some(Process::RabbitMq),
        "redis-server" => Some(Process::Redis),
        name if name.starts_with("python") => {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("moto").then_some(Process::Moto)
        }
        _ => None,
    }
}

/// User and system CPU time of `/proc/<pid>` (all its threads), in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The command name (second field) may hold
/// spaces and parentheses, so the fields are counted from its closing parenthesis.
fn parse_stat(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt,
    // cmajflt, then utime and stime.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// MariaDB's counters at one moment, and the size of the run's schemas.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Database {
    /// Pages read from disk because the buffer pool did not hold them (`Innodb_buffer_pool_reads`).
    pub(crate) disk_reads: u64,
    /// Page reads asked of the buffer pool (`Innodb_buffer_pool_read_requests`).
    pub(crate) read_requests: u64,
    /// Times a write waited for the buffer pool to free a page (`Innodb_buffer_pool_wait_free`).
    pub(crate) wait_free: u64,
    /// Bytes of redo log not yet checkpointed (`Innodb_checkpoint_age`).
    pub(crate) checkpoint_age: u64,
    /// Undo log records of committed transactions that purge has not yet removed
    /// (`Innodb_history_list_length`): while they wait, their old row versions and delete-marked
    /// index entries stay in the pages every read walks.
    pub(crate) history_length: u64,
    /// The buffer pool's size (`innodb_buffer_pool_size`).
    pub(crate) buffer_pool: u64,
    /// Data and indexes of the run's schemas, as InnoDB estimates them.
    pub(crate) schema_bytes: u64,
}

/// MariaDB's counters now, through `stack`'s pools.
pub(crate) async fn database(stack: &Stack) -> anyhow::Result<Database> {
    let pool = stack.pool(Service::Task);
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_reads', \
         'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_wait_free', 'Innodb_checkpoint_age', \
         'Innodb_history_list_length')",
    )
    .fetch_all(pool)
    .await?;
    let counters: BTreeMap<String, u64> =
        rows.into_iter().filter_map(|(name, value)| value.parse().ok().map(|value| (name, value))).collect();
    let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
    let buffer_pool: u64 =
        sqlx::query_scalar("SELECT CAST(@@innodb_buffer_pool_size AS UNSIGNED)").fetch_one(pool).await?;
    let mut schema_bytes = 0;
    for service in WITH_SCHEMA {
        schema_bytes += schema_size(stack.pool(service)).await?;
    }
    Ok(Database {
        disk_reads: counter("Innodb_buffer_pool_reads"),
        read_requests: counter("Innodb_buffer_pool_read_requests"),
        wait_free: counter("Innodb_buffer_pool_wait_free"),
        checkpoint_age: counter("Innodb_checkpoint_age"),
        history_length: counter("Innodb_history_list_length"),
        buffer_pool,
        schema_bytes,
    })
}

/// Sets MariaDB's buffer pool to `bytes` (it resizes online, in the background); the size it had.
pub(crate) async fn resize_buffer_pool(bytes: u64) -> anyhow::Result<u64> {
    use sqlx::{Connection as _, MySqlConnection};
    let mut connection = MySqlConnection::connect(&ordo_testkit::mysql_server_url()).await?;
    let previous: u64 =
        sqlx::query_scalar("SELECT CAST(@@innodb_buffer_pool_size AS UNSIGNED)").fetch_one(&mut connection).await?;
    // A number, so it cannot be anything but a number in the statement (SET takes no placeholder in
    // every server version).
    sqlx::query(sqlx::AssertSqlSafe(format!("SET GLOBAL innodb_buffer_pool_size = {bytes}")))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    eprintln!("soak: MariaDB's buffer pool {} MiB (was {} MiB)", bytes >> 20, previous >> 20);
    Ok(previous)
}

/// Data and index bytes of the pool's schema.
async fn schema_size(pool: &MySqlPool) -> anyhow::Result<u64> {
    let bytes: Option<u64> = sqlx::query_scalar(
        "SELECT CAST(SUM(data_length + index_length) AS UNSIGNED) FROM information_schema.TABLES \
         WHERE table_schema = DATABASE()",
    )
    .fetch_one(pool)
    .await?;
    Ok(bytes.unwrap_or(0))
}

impl Database {
    /// The minute (or any span) from `start` to `self`: the counters' growth over it, the gauges
    /// (checkpoint age, sizes) as they are at its end.
    pub(crate) fn since(&self, start: &Database) -> Database {
        Database {
            disk_reads: self.disk_reads.saturating_sub(start.disk_reads),
            read_requests: self.read_requests.saturating_sub(start.read_requests),
            wait_free: self.wait_free.saturating_sub(start.wait_free),
            ..*self
        }
    }

    /// The share of page reads the buffer pool served, in per cent.
    pub(crate) fn hit_percent(&self) -> f64 {
        if self.read_requests == 0 {
            return 100.0;
        }
        100.0 * (1.0 - self.disk_reads as f64 / self.read_requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name_even_when_it_holds_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 2130 0 0 0 1234 566 0 0 20 0 9 0 12 0";
        assert_eq!(parse_stat(stat), Some(18.0));
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
    }

    #[test]
    fn a_minute_of_the_database_is_the_counters_growth_and_the_gauges_at_its_end() {
        let start =
            Database { disk_reads: 10, read_requests: 1_000, wait_free: 2, checkpoint_age: 5, ..Database::default() };
        let end = Database {
            disk_reads: 60,
            read_requests: 11_000,
            wait_free: 2,
            checkpoint_age: 7,
            history_length: 900,
            buffer_pool: 128,
            schema_bytes: 300,
        };
        let minute = end.since(&start);
        assert_eq!(
            minute,
            Database {
                disk_reads: 50,
                read_requests: 10_000,
                wait_free: 0,
                checkpoint_age: 7,
                history_length: 900,
                buffer_pool: 128,
                schema_bytes: 300
            }
        );
        assert!((minute.hit_percent() - 99.5).abs() < 1e-9);
        assert!((Database::default().hit_percent() - 100.0).abs() < 1e-9);
    }
}
