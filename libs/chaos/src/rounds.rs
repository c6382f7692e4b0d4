//! `ordo-chaos chaos`: one round per fault. A round resumes the load, lets it run calm, injects the
//! fault, ends it (the process started again, the server back), keeps the load on until the stopped
//! part is ready and a little after, pauses the load, lets the events settle and checks.

use std::fmt;
use std::time::{Duration, Instant};

use crate::Common;
use crate::backends::Backend;
use crate::check::{self, Events};
use crate::load::{NoAnswer, Op};
use crate::report::{self, Round};
use crate::scene::Scene;
use crate::stack::Service;

/// The load before each fault, and after the stopped part is back.
const CALM: Duration = Duration::from_secs(4);
/// How long a killed process stays down before it is started again.
const DOWN: Duration = Duration::from_secs(2);
/// How long Redis stays away.
const REDIS_AWAY: Duration = Duration::from_secs(30);

/// `ordo-chaos chaos`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    common: Common,
    /// Only these faults, by name (`kill-task`, `term-gateway`, `restart-rabbitmq`, `restart-mariadb`,
    /// `redis-away`, ...); all when none is given.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL, down for [`DOWN`], started again.
    Kill(Service),
    /// SIGTERM (the graceful drain), started again once it exited.
    Term(Service),
    /// The server stopped (its process exited) and started again.
    Restart(Backend),
    /// Redis stopped for [`REDIS_AWAY`].
    RedisAway,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kill(service) => write!(f, "kill-{service}"),
            Self::Term(service) => write!(f, "term-{service}"),
            Self::Restart(backend) => write!(f, "restart-{backend}"),
            Self::RedisAway => f.write_str("redis-away"),
        }
    }
}

impl Fault {
    fn all() -> Vec<Self> {
        let mut faults: Vec<Self> = crate::stack::Service::ALL.into_iter().map(Self::Kill).collect();
        faults.extend(crate::stack::Service::ALL.into_iter().map(Self::Term));
        faults.extend([Self::Restart(Backend::RabbitMq), Self::Restart(Backend::MariaDb), Self::RedisAway]);
        faults
    }

    /// The process or server it stops.
    fn gateway_down(self) -> bool {
        matches!(self, Self::Kill(Service::Gateway) | Self::Term(Service::Gateway))
    }
}

/// Runs every fault; whether the run found nothing.
pub(crate) async fn run(args: Args) -> anyhow::Result<bool> {
    let faults: Vec<Fault> = Fault::all()
        .into_iter()
        .filter(|fault| args.only.is_empty() || args.only.iter().any(|name| *name == fault.to_string()))
        .collect();
    anyhow::ensure!(!faults.is_empty(), "no fault is named {:?}", args.only);
    crate::backends::ensure_up().await?;
    // Mail stays on: that every notification is mailed once is part of what a fault must not break.
    let mut scene = Scene::start(&args.common, None, true).await?;
    eprintln!(
        "chaos: stack up (run {}); {} faults at {} requests/s",
        scene.stack.env.id,
        faults.len(),
        args.common.rate
    );

    let mut rounds = Vec::new();
    let mut findings = Vec::new();
    let mut before = Events::default();
    let mut lost_before = 0;
    for fault in faults {
        eprintln!("chaos: {fault}");
        let running = scene.resume();
        tokio::time::sleep(CALM).await;
        let began = Instant::now();
        let (ended, detail) = match inject(&mut scene, fault).await {
            Ok(done) => done,
            Err(error) => {
                findings.push(format!("{fault}: {error:#}"));
                (Instant::now(), "failed".to_owned())
            }
        };
        tokio::time::sleep(CALM).await;
        let outcomes = scene.pause(running).await?;
        for exited in scene.stack.exited() {
            findings.push(format!("{fault}: {exited} exited by itself"));
        }

        let events = check::events(&scene.stack, &scene.shared.assignee).await?;
        let ledgers: Vec<_> = scene.workers.iter().map(|worker| &worker.ledger).collect();
        let writes = check::writes(&scene.stack, &scene.shared.project, &ledgers).await?;
        let (verified, checked) = scene.verify_audit().await?;
        let round = Round {
            fault: fault.to_string(),
            began,
            ended,
            detail,
            outcomes,
            new_events: Events {
                committed: events.committed - before.committed,
                audited: events.audited - before.audited,
                notified: events.notified - before.notified,
                duplicates: events.duplicates - before.duplicates.min(events.duplicates),
                ..events
            },
            events,
            lost: writes.lost.len().saturating_sub(lost_before),
            gateway_down: fault.gateway_down(),
        };
        for lost in writes.lost.iter().skip(lost_before) {
            findings.push(format!("{fault}: {lost}"));
        }
        lost_before = writes.lost.len();
        before = events;
        findings.extend(judge(fault, &round).into_iter().map(|finding| format!("{fault}: {finding}")));
        if !verified {
            findings.push(format!("{fault}: the audit chain does not verify ({checked} records checked)"));
        }
        eprintln!(
            "chaos: {fault}: {} requests, {} acknowledged, {} refused; {} writes checked; events {}/{}/{} settled in {:.1} s",
            round.outcomes.len(),
            round.acknowledged(),
            round.refused(),
            writes.checked,
            events.committed,
            events.audited,
            events.notified,
            events.settled_in.as_secs_f64()
        );
        rounds.push(round);
    }

    for (n, stats) in scene.stream_stats.iter().enumerate() {
        let stats = stats.lock().await.clone();
        if stats.duplicates > 0 {
            findings.push(format!("stream {n} received {} notifications twice", stats.duplicates));
        }
        let last_fault_end = rounds.last().map(|round| round.ended);
        if stats.last_received.zip(last_fault_end).is_none_or(|(received, ended)| received < ended) {
            findings.push(format!("stream {n} received nothing after the last fault ({stats:?})"));
        }
    }
    let mails = crate::mail::check(&scene).await;
    match &mails {
        Ok(summary) if summary.ok() => {}
        Ok(summary) => findings.push(format!("mail: {summary}")),
        Err(error) => findings.push(format!("mail: {error:#}")),
    }

    let table = report::table(&rounds);
    let streams = crate::streams::summary(&scene.stream_stats).await;
    let mut text = format!("{table}\n`503`s by operation:\n{}\n{streams}\n", report::refusals(&rounds));
    if let Ok(summary) = &mails {
        text.push_str(&format!("{summary}\n"));
    }
    if findings.is_empty() {
        text.push_str("\nNo finding.\n");
    } else {
        text.push_str("\nFindings:\n");
        for finding in &findings {
            text.push_str(&format!("- {finding}\n"));
        }
    }
    println!("{text}");
    let path = args.common.out_dir.join("chaos.md");
    tokio::fs::write(&path, &text).await?;
    eprintln!("chaos: report in {}", path.display());
    scene.finish().await?;
    Ok(findings.is_empty())
}

/// Injects `fault` and ends it: when it ended (the stopped part started again), and how the stop and
/// the start went.
async fn inject(scene: &mut Scene, fault: Fault) -> anyhow::Result<(Instant, String)> {
    let stack = &mut scene.stack;
    match fault {
        Fault::Kill(service) => {
            stack.kill(service).await?;
            tokio::time::sleep(DOWN).await;
            stack.spawn(service).await?;
            let ended = Instant::now();
            let ready = stack.wait_ready(service).await?;
            Ok((ended, format!("down {:.1} s, ready {:.1} s after start", DOWN.as_secs_f64(), ready.as_secs_f64())))
        }
        Fault::Term(service) => {
            let drained = stack.terminate(service).await;
            // Started again whatever the drain did, so the next round has the whole stack.
            if stack.pid(service).is_none() {
                stack.spawn(service).await?;
            }
            let ended = Instant::now();
            let drained = drained?;
            let ready = stack.wait_ready(service).await?;
            Ok((
                ended,
                format!("drained in {:.2} s, ready {:.1} s after start", drained.as_secs_f64(), ready.as_secs_f64()),
            ))
        }
        Fault::Restart(backend) => {
            let stopped = backend.stop().await?;
            let started = backend.start().await?;
            Ok((
                Instant::now(),
                format!(
                    "exited {:.1} s after stop, answered {:.1} s after start",
                    stopped.as_secs_f64(),
                    started.as_secs_f64()
                ),
            ))
        }
        Fault::RedisAway => {
            let began = Instant::now();
            Backend::Redis.stop().await?;
            tokio::time::sleep(REDIS_AWAY.saturating_sub(began.elapsed())).await;
            let started = Backend::Redis.start().await?;
            Ok((
                Instant::now(),
                format!(
                    "away {:.1} s, answered {:.1} s after start",
                    (began.elapsed() - started).as_secs_f64(),
                    started.as_secs_f64()
                ),
            ))
        }
    }
}

/// What a round's answers and events break of the promises.
fn judge(fault: Fault, round: &Round) -> Vec<String> {
    let mut findings = Vec::new();
    if round.other_5xx() > 0 {
        findings.push(format!("{} answers were 5xx other than 503", round.other_5xx()));
    }
    if round.refused_without_retry_after() > 0 {
        findings.push(format!("{} 503s came without Retry-After", round.refused_without_retry_after()));
    }
    let unexpected = round.unexpected();
    if !unexpected.is_empty() {
        findings.push(format!(
            "{} answers neither succeeded nor were 503: {:?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(5)]
        ));
    }
    if round.hung() > 0 {
        findings.push(format!("{} requests waited past the backend timeout and 2 s", round.hung()));
    }
    if !round.gateway_down && round.no_answer(NoAnswer::Connect) > 0 {
        findings.push(format!("{} requests found no gateway while it was running", round.no_answer(NoAnswer::Connect)));
    }
    let broken = round.no_answer(NoAnswer::Broken) + round.no_answer(NoAnswer::Timeout);
    if broken > 0 && fault != Fault::Kill(Service::Gateway) {
        let errors: Vec<String> = round
            .outcomes
            .iter()
            .filter(|o| matches!(o.no_answer, Some(NoAnswer::Broken | NoAnswer::Timeout)))
            .take(3)
            .map(|o| format!("{:?} after {:?}: {}", o.op, o.took, o.error.as_deref().unwrap_or("?")))
            .collect();
        findings.push(format!("{broken} requests in flight got no answer: {errors:?}"));
    }
    if round.recovered_in().is_none() {
        findings.push("no write was acknowledged after the fault ended".to_owned());
    }
    if matches!(fault, Fault::Restart(Backend::RabbitMq) | Fault::RedisAway)
        && round.acknowledged_during(Op::Create) == 0
    {
        findings.push("no create was acknowledged while it lasted (creates need only the database)".to_owned());
    }
    let events = &round.events;
    if events.lost > 0 {
        findings.push(format!("{} committed events never reached a consumer", events.lost));
    }
    if round.new_events.duplicates > 0 {
        findings.push(format!("{} effects were applied twice", round.new_events.duplicates));
    }
    if events.backlog > 0 {
        findings.push(format!("{} outbox rows were never published", events.backlog));
    }
    findings
}
