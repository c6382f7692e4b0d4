//! `ordo-chaos soak`: the mixed load without faults, at a share of the capacity the same mix reaches
//! on this machine (measured first, for a few seconds, with as many requests in flight as there are
//! workers and no pacing), for a number of minutes. Every minute it records each process's resident
//! memory and open sockets, the requests and errors, and p99 per operation; at the end it checks the
//! data as `chaos` does after a fault and judges the trends: no error, no memory growth after the
//! warm-up, a flat p99.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::Common;
use crate::check;
use crate::load::{Op, Outcome};
use crate::scene::Scene;
use crate::stack::Service;
use crate::usage::{self, Database, Process};

/// `ordo-chaos soak`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    common: Common,
    /// How long the load runs.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// The share of the measured capacity to run at.
    #[arg(long, default_value_t = 0.7)]
    share: f64,
    /// Run at this many requests per second instead, without measuring the capacity.
    #[arg(long)]
    fixed_rate: Option<f64>,
    /// How long the capacity is measured.
    #[arg(long, default_value_t = 20)]
    probe_secs: u64,
    /// Minutes at the start left out of the memory trend (caches and pools fill).
    #[arg(long, default_value_t = 3)]
    warmup_minutes: u64,
    /// Whether notifications are also mailed (to the SES stand-in, which keeps every mail in memory
    /// and costs CPU of its own); `--mail false` keeps them in the app.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mail: bool,
    /// MariaDB's buffer pool (`innodb_buffer_pool_size`) for the run, in MiB, set back as it was when
    /// the run ends (a server restart also does): to tell what the service does with the data from
    /// what the database's cache does once the data outgrows it.
    #[arg(long)]
    buffer_pool_mib: Option<u64>,
}

/// One minute's figures.
#[derive(Debug)]
struct Minute {
    requests: usize,
    errors: usize,
    /// p99 in milliseconds per operation.
    p99: BTreeMap<Op, f64>,
    /// Resident memory (KiB) and open sockets per process, at the minute's end.
    processes: BTreeMap<Service, (u64, usize)>,
    /// CPU seconds each process used over the minute.
    cpu: BTreeMap<Process, f64>,
    /// MariaDB over the minute, when its counters could be read.
    database: Option<Database>,
}

/// The buffer pool's size before the run set it, until it is set back: read again by
/// [`restore_buffer_pool`] when the run ends, also when it was interrupted half-way.
static PREVIOUS_BUFFER_POOL: Mutex<Option<u64>> = Mutex::new(None);

/// Runs the soak (with the buffer pool asked for); whether it found nothing.
pub(crate) async fn run(args: Args) -> anyhow::Result<bool> {
    crate::backends::ensure_up().await?;
    if let Some(mib) = args.buffer_pool_mib {
        let previous = usage::resize_buffer_pool(mib.saturating_mul(1024 * 1024)).await?;
        *PREVIOUS_BUFFER_POOL.lock().unwrap_or_else(PoisonError::into_inner) = Some(previous);
    }
    let outcome = soak(args).await;
    restore_buffer_pool().await;
    outcome
}

/// Sets MariaDB's buffer pool back to its size before the run, if the run changed it and it was not
/// set back yet.
pub(crate) async fn restore_buffer_pool() {
    let previous = PREVIOUS_BUFFER_POOL.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(bytes) = previous
        && let Err(error) = usage::resize_buffer_pool(bytes).await
    {
        eprintln!("soak: MariaDB's buffer pool could not be set back to {bytes} bytes: {error:#}");
    }
}

async fn soak(args: Args) -> anyhow::Result<bool> {
    // People log in a few times a day, not every twenty requests: a token is renewed after ten minutes.
    let mut scene = Scene::start(&args.common, Some(Duration::from_secs(600)), args.mail).await?;

    // The capacity of this mix on this machine: unpaced workers for a few seconds.
    let capacity = match args.fixed_rate {
        Some(_) => None,
        None => {
            scene.rate = 1e9;
            let probe = Duration::from_secs(args.probe_secs);
            let running = scene.resume();
            tokio::time::sleep(probe).await;
            let outcomes = scene.pause(running).await?;
            Some(outcomes.iter().filter(|o| o.acknowledged()).count() as f64 / probe.as_secs_f64())
        }
    };
    scene.rate = match (args.fixed_rate, capacity) {
        (Some(rate), _) => rate,
        (None, Some(capacity)) => capacity * args.share,
        (None, None) => args.common.rate,
    };
    let pace = match capacity {
        Some(capacity) => format!("{:.0} % of the {capacity:.0} the mix reached unpaced", args.share * 100.0),
        None => "a fixed rate".to_owned(),
    };
    eprintln!("soak: {:.0} requests/s ({pace}) for {} minutes", scene.rate, args.minutes);

    let mut minutes = Vec::new();
    for minute in 1..=args.minutes {
        let cpu_before = usage::cpu(&scene.stack);
        let database_before = usage::database(&scene.stack).await;
        let running = scene.resume();
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let outcomes = scene.pause(running).await?;
        let mut figures = figures(&outcomes, scene.stack.sample());
        let cpu_after = usage::cpu(&scene.stack);
        figures.cpu = cpu_after
            .iter()
            .filter_map(|(process, after)| cpu_before.get(process).map(|before| (*process, (after - before).max(0.0))))
            .collect();
        figures.database = match (database_before, usage::database(&scene.stack).await) {
            (Ok(before), Ok(after)) => Some(after.since(&before)),
            (Err(error), _) | (_, Err(error)) => {
                eprintln!("soak: minute {minute}: MariaDB's counters could not be read: {error:#}");
                None
            }
        };
        let database = figures.database.map_or_else(String::new, |db| {
            format!(
                ", {:.0} page reads a request, history list {}",
                db.read_requests as f64 / figures.requests.max(1) as f64,
                db.history_length
            )
        });
        eprintln!(
            "soak: minute {minute}: {} requests in {:.1} s, {} errors, {:.1} MiB in all{database}",
            figures.requests,
            started.elapsed().as_secs_f64(),
            figures.errors,
            figures.processes.values().map(|(rss, _)| *rss as f64 / 1024.0).sum::<f64>()
        );
        minutes.push(figures);
    }

    let mut findings = Vec::new();
    for exited in scene.stack.exited() {
        findings.push(format!("{exited} exited by itself"));
    }
    let errors: usize = minutes.iter().map(|m| m.errors).sum();
    if errors > 0 {
        findings.push(format!("{errors} requests were not acknowledged"));
    }
    findings.extend(trends(&minutes, args.warmup_minutes));
    let events = check::events(&scene.stack, &scene.shared.assignee).await?;
    if events.lost > 0 || events.backlog > 0 || events.duplicates > 0 {
        findings.push(format!("events: {events:?}"));
    }
    let ledgers: Vec<_> = scene.workers.iter().map(|worker| &worker.ledger).collect();
    let writes = check::writes(&scene.stack, &scene.shared.project, &ledgers).await?;
    findings.extend(writes.lost.iter().take(20).cloned());
    // A finding, not the end of the run: the minutes' tables are worth having whatever the verdict.
    let audit = match scene.verify_audit().await {
        Ok((true, checked)) => format!("verified ({checked} records)"),
        Ok((false, checked)) => {
            findings.push(format!("the audit chain does not verify ({checked} records checked)"));
            format!("NOT verified ({checked} records)")
        }
        Err(error) => {
            findings.push(format!("the audit chain could not be verified: {error:#}"));
            "not verified (no verdict)".to_owned()
        }
    };

    let mut text = format!(
        "Soak: {} minutes at {:.0} requests/s ({pace}), {} workers, {} live streams, mail {}, MariaDB buffer pool {}.\n\n",
        args.minutes,
        scene.rate,
        args.common.workers,
        args.common.streams,
        if args.mail { "on" } else { "off" },
        args.buffer_pool_mib.map_or_else(|| "as configured".to_owned(), |mib| format!("{mib} MiB"))
    );
    text.push_str(&tables(&minutes));
    let _ = writeln!(
        text,
        "\nAfter the soak: {} writes checked, {} events committed, {} audited, {} applied by notification, {} lost, {} duplicates; the audit chain {audit}.",
        writes.checked, events.committed, events.audited, events.notified, events.lost, events.duplicates
    );
    if findings.is_empty() {
        text.push_str("\nNo finding.\n");
    } else {
        text.push_str("\nFindings:\n");
        for finding in &findings {
            let _ = writeln!(text, "- {finding}");
        }
    }
    println!("{text}");
    let path = args.common.out_dir.join("soak.md");
    tokio::fs::write(&path, &text).await?;
    eprintln!("soak: report in {}", path.display());
    scene.finish().await?;
    Ok(findings.is_empty())
}

fn figures(outcomes: &[Outcome], processes: BTreeMap<Service, (u64, usize)>) -> Minute {
    let mut histograms: BTreeMap<Op, Histogram<u64>> = BTreeMap::new();
    for outcome in outcomes {
        let histogram = match histograms.entry(outcome.op) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let Ok(histogram) = Histogram::new_with_bounds(1, 60_000_000, 3) else { continue };
                entry.insert(histogram)
            }
        };
        let micros = u64::try_from(outcome.took.as_micros()).unwrap_or(u64::MAX).clamp(1, 60_000_000);
        let _ = histogram.record(micros);
    }
    Minute {
        requests: outcomes.len(),
        errors: outcomes.iter().filter(|o| !o.acknowledged()).count(),
        p99: histograms.into_iter().map(|(op, h)| (op, h.value_at_quantile(0.99) as f64 / 1000.0)).collect(),
        processes,
        cpu: BTreeMap::new(),
        database: None,
    }
}

/// Memory still growing at the end, and p99 drift from the first third to the last (both after the
/// warm-up). A bounded cache fills and then holds (the task cache takes about ten minutes of this load
/// to fill), a leak keeps going: so memory is judged by whether the last third's peak is above the
/// middle third's, not by where it stands against the first minute after the warm-up.
fn trends(minutes: &[Minute], warmup: u64) -> Vec<String> {
    let mut findings = Vec::new();
    let steady: Vec<&Minute> = minutes.iter().skip(usize::try_from(warmup).unwrap_or(0)).collect();
    if steady.len() < 3 {
        return findings;
    }
    let third = steady.len() / 3;
    let total = |m: &&Minute| m.processes.values().map(|(rss, _)| *rss).sum::<u64>() as f64 / 1024.0;
    let peak = |part: &[&Minute]| part.iter().map(total).fold(0.0, f64::max);
    let middle = peak(&steady[third..steady.len() - third]);
    let last = peak(&steady[steady.len() - third..]);
    // More than 3 % and 3 MiB over a third of the steady part is a trend, not noise.
    if last > middle * 1.03 && last - middle > 3.0 {
        findings.push(format!(
            "memory kept growing after the warm-up: its peak rose from {middle:.1} MiB (middle third) to {last:.1} MiB (last third)"
        ));
    }
    for op in [Op::Create, Op::Read, Op::Update, Op::Move, Op::Comment, Op::List, Op::Login] {
        let median = |part: &[&Minute]| {
            let mut values: Vec<f64> = part.iter().filter_map(|m| m.p99.get(&op).copied()).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied()
        };
        if let (Some(early), Some(late)) = (median(&steady[..third]), median(&steady[steady.len() - third..]))
            // The median of a third's minutes, each a p99 of some 20,000 requests: a rise by half is
            // past what the minutes of a flat run differ by (within a quarter in the runs so far).
            && late > early * 1.5
            && late - early > 5.0
        {
            findings.push(format!("{op:?} p99 rose from {early:.1} ms to {late:.1} ms"));
        }
    }
    findings
}

/// The per-minute tables: requests, errors and p99 per operation; memory and sockets per process.
fn tables(minutes: &[Minute]) -> String {
    let ops = [Op::Create, Op::Read, Op::Update, Op::Move, Op::Comment, Op::List, Op::Login];
    let mut out = String::from("| minute | requests | errors |");
    for op in ops {
        let _ = write!(out, " p99 {op:?} (ms) |");
    }
    out.push_str("\n|---:|---:|---:|");
    out.push_str(&"---:|".repeat(ops.len()));
    out.push('\n');
    for (n, minute) in minutes.iter().enumerate() {
        let _ = write!(out, "| {} | {} | {} |", n + 1, minute.requests, minute.errors);
        for op in ops {
            let _ = write!(out, " {} |", minute.p99.get(&op).map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")));
        }
        out.push('\n');
    }
    out.push_str("\n| minute |");
    for service in Service::ALL {
        let _ = write!(out, " {service} MiB / sockets |");
    }
    out.push_str(" all MiB |\n|---:|");
    out.push_str(&"---:|".repeat(Service::ALL.len() + 1));
    out.push('\n');
    for (n, minute) in minutes.iter().enumerate() {
        let _ = write!(out, "| {} |", n + 1);
        let mut total = 0.0;
        for service in Service::ALL {
            let (rss, sockets) = minute.processes.get(&service).copied().unwrap_or_default();
            let mib = rss as f64 / 1024.0;
            total += mib;
            let _ = write!(out, " {mib:.1} / {sockets} |");
        }
        let _ = writeln!(out, " {total:.1} |");
    }
    out.push_str(&usage_tables(minutes));
    out
}

/// CPU seconds per process and MariaDB's buffer pool, per minute.
fn usage_tables(minutes: &[Minute]) -> String {
    let processes = Process::all();
    let mut out = String::from("\n| minute |");
    for process in &processes {
        let _ = write!(out, " {process} CPU s |");
    }
    out.push_str("\n|---:|");
    out.push_str(&"---:|".repeat(processes.len()));
    out.push('\n');
    for (n, minute) in minutes.iter().enumerate() {
        let _ = write!(out, "| {} |", n + 1);
        for process in &processes {
            let _ = write!(out, " {} |", minute.cpu.get(process).map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")));
        }
        out.push('\n');
    }
    out.push_str(
        "\n| minute | pages read from disk | page reads | buffer pool hits % | waits for a free page | checkpoint age MiB | history list | run's schemas MiB | buffer pool MiB |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    for (n, minute) in minutes.iter().enumerate() {
        match &minute.database {
            Some(db) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.2} | {} | {:.1} | {} | {:.1} | {:.0} |",
                    n + 1,
                    db.disk_reads,
                    db.read_requests,
                    db.hit_percent(),
                    db.wait_free,
                    mib(db.checkpoint_age),
                    db.history_length,
                    mib(db.schema_bytes),
                    mib(db.buffer_pool)
                );
            }
            None => {
                let _ = writeln!(out, "| {} | - | - | - | - | - | - | - | - |", n + 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(total_mib: u64, create_p99: f64) -> Minute {
        Minute {
            requests: 100,
            errors: 0,
            p99: BTreeMap::from([(Op::Create, create_p99)]),
            processes: BTreeMap::from([(Service::Task, (total_mib * 1024, 10))]),
            cpu: BTreeMap::from([(Process::MariaDb, 42.5)]),
            database: Some(Database { disk_reads: 5, read_requests: 1000, ..Database::default() }),
        }
    }

    #[test]
    fn memory_that_keeps_growing_after_the_warm_up_is_a_finding_and_noise_is_not() {
        let growing: Vec<Minute> = (0..10).map(|n| minute(100 + n * 3, 10.0)).collect();
        let findings = trends(&growing, 3);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].contains("memory kept growing"), "{findings:?}");

        let flat: Vec<Minute> = (0..10).map(|n| minute(100 + n % 2, 10.0)).collect();
        assert!(trends(&flat, 3).is_empty());
    }

    #[test]
    fn a_cache_that_fills_past_the_warm_up_and_then_holds_is_not_a_finding() {
        let filling: Vec<Minute> = (0..30).map(|n| minute(100 + n.min(12) * 2, 10.0)).collect();
        assert_eq!(trends(&filling, 3), Vec::<String>::new());
    }

    #[test]
    fn a_p99_half_again_as_high_in_the_last_third_as_in_the_first_is_a_finding_and_a_quarter_is_not() {
        let rising: Vec<Minute> = (0..12).map(|n| minute(100, if n < 8 { 100.0 } else { 160.0 })).collect();
        let findings = trends(&rising, 3);
        assert_eq!(findings, vec!["Create p99 rose from 100.0 ms to 160.0 ms".to_owned()]);

        let noisy: Vec<Minute> = (0..12).map(|n| minute(100, if n < 8 { 100.0 } else { 125.0 })).collect();
        assert_eq!(trends(&noisy, 3), Vec::<String>::new());
    }

    #[test]
    fn the_tables_have_a_row_per_minute() {
        let text = tables(&[minute(100, 10.0), minute(101, 11.0)]);
        assert!(text.contains("| 2 | 100 | 0 | 11.0 |"), "{text}");
        assert!(text.contains(" 101.0 / 10 |"), "{text}");
        assert!(text.contains(" mariadb CPU s |"), "{text}");
        assert!(text.contains(" 42.5 |"), "{text}");
        assert!(text.contains("| 2 | 5 | 1000 | 99.50 | 0 |"), "{text}");
    }
}
