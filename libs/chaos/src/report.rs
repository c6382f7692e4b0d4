//! A round's figures and the table `just chaos` prints (Markdown, for RELIABILITY.md).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::check::Events;
use crate::load::{NoAnswer, Op, Outcome};
use crate::stack::BACKEND_TIMEOUT;

/// What one fault did.
#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) fault: String,
    /// When it was injected and when it ended (the process or server started again).
    pub(crate) began: Instant,
    pub(crate) ended: Instant,
    /// How long the stop took (drain, shutdown) and the start until ready, as text.
    pub(crate) detail: String,
    pub(crate) outcomes: Vec<Outcome>,
    /// The events over the run after this round, and the change this round made.
    pub(crate) events: Events,
    pub(crate) new_events: Events,
    /// Acknowledged writes lost or changed, found after this round (new ones only).
    pub(crate) lost: usize,
    /// Whether the gateway itself was the process the fault stopped (then no connection is expected).
    pub(crate) gateway_down: bool,
}

impl Round {
    fn count(&self, keep: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| keep(o)).count()
    }

    pub(crate) fn acknowledged(&self) -> usize {
        self.count(Outcome::acknowledged)
    }

    pub(crate) fn refused(&self) -> usize {
        self.count(|o| o.status == 503)
    }

    /// 503s that did not say when to come back.
    pub(crate) fn refused_without_retry_after(&self) -> usize {
        self.count(|o| o.status == 503 && !o.retry_after)
    }

    /// Server errors other than 503.
    pub(crate) fn other_5xx(&self) -> usize {
        self.count(|o| o.status >= 500 && o.status != 503)
    }

    /// Answers that are neither the success nor a 503 (4xx included: the load sends only valid requests).
    pub(crate) fn unexpected(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.status != 0 && !o.acknowledged() && o.status != 503)
            .map(|o| format!("{:?} answered {}", o.op, o.status))
            .collect()
    }

    pub(crate) fn no_answer(&self, kind: NoAnswer) -> usize {
        self.count(|o| o.no_answer == Some(kind))
    }

    /// Requests that waited past the gateway's backend timeout and a margin of 2 s.
    pub(crate) fn hung(&self) -> usize {
        self.count(|o| o.took > BACKEND_TIMEOUT + Duration::from_secs(2))
    }

    pub(crate) fn slowest(&self) -> Duration {
        self.outcomes.iter().map(|o| o.took).max().unwrap_or_default()
    }

    /// From the fault's end to the answer of the first acknowledged write that started after it.
    pub(crate) fn recovered_in(&self) -> Option<Duration> {
        self.outcomes
            .iter()
            .filter(|o| o.op.writes() && o.acknowledged() && o.started >= self.ended)
            .map(|o| (o.started + o.took).duration_since(self.ended))
            .min()
    }

    /// Acknowledged creates during the fault itself.
    pub(crate) fn acknowledged_during(&self, op: Op) -> usize {
        self.count(|o| o.op == op && o.acknowledged() && o.started >= self.began && o.started + o.took <= self.ended)
    }
}

/// The `503`s of every round that had any, by operation: which requests a fault stopped.
pub(crate) fn refusals(rounds: &[Round]) -> String {
    let mut out = String::new();
    for round in rounds.iter().filter(|round| round.refused() > 0) {
        let mut by_op: std::collections::BTreeMap<Op, usize> = std::collections::BTreeMap::new();
        for outcome in round.outcomes.iter().filter(|o| o.status == 503) {
            *by_op.entry(outcome.op).or_default() += 1;
        }
        let parts: Vec<String> = by_op.iter().map(|(op, n)| format!("{op:?} {n}")).collect();
        let _ = writeln!(out, "- {}: {}", round.fault, parts.join(", "));
    }
    out
}

/// The table of every round.
pub(crate) fn table(rounds: &[Round]) -> String {
    let mut out = String::from(
        "| fault | requests | acknowledged | 503 | no answer | lost | events committed | to audit | to notification | duplicates | 5xx other than 503 | slowest (s) | recovered in (s) | stop / start |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for round in rounds {
        let no_answer =
            round.no_answer(NoAnswer::Connect) + round.no_answer(NoAnswer::Timeout) + round.no_answer(NoAnswer::Broken);
        let recovered = round.recovered_in().map_or_else(|| "never".to_owned(), |d| format!("{:.2}", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {} |",
            round.fault,
            round.outcomes.len(),
            round.acknowledged(),
            round.refused(),
            no_answer,
            round.lost,
            round.new_events.committed,
            round.new_events.audited,
            round.new_events.notified,
            round.new_events.duplicates,
            round.other_5xx(),
            round.slowest().as_secs_f64(),
            recovered,
            round.detail,
        );
    }
    out
}
