//! Sending the mails whose window closed: each is claimed before it is sent (so several instances,
//! or a retry, never send it twice), sent, and its outcome recorded. SES's "not now" is tried again
//! with backoff and jitter up to a number of attempts; a refusal is final; a try with no answer is
//! never repeated, since SES may have taken it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use super::ports::{EmailStore, Mail, Mailer, Outcome, SendError};
use crate::domain::email::retry_delay;

/// Tries to record a mail's outcome, with a pause after each failure that starts at
/// [`RECORD_RETRY_FIRST`] and doubles up to [`RECORD_RETRY_MAX`]: about 16 s in all, enough for a
/// database restart (3 s in `just chaos`) and well inside a claim's lease.
const RECORD_ATTEMPTS: u32 = 7;
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(250);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(8);

/// How mails are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    /// The most tries of one mail; the last "not now" fails it.
    pub max_attempts: u32,
    /// The wait after the first "not now", doubled after each next one.
    pub retry_base: Duration,
    /// The longest wait between tries.
    pub retry_cap: Duration,
    /// How long a claim holds: past it, a mail still `sending` belonged to a sender that died.
    pub lease: Duration,
    /// Mails claimed at once.
    pub batch: u32,
    /// Mails sent at once.
    pub concurrency: usize,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(3600),
            lease: Duration::from_secs(300),
            batch: 32,
            concurrency: 8,
        }
    }
}

/// Sends the mails that are due.
#[derive(Clone)]
pub struct EmailSender {
    store: Arc<dyn EmailStore>,
    mailer: Arc<dyn Mailer>,
    policy: SendPolicy,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl EmailSender {
    /// A sender of `store`'s mails through `mailer`.
    pub fn new(store: Arc<dyn EmailStore>, mailer: Arc<dyn Mailer>, policy: SendPolicy) -> Self {
        Self { store, mailer, policy }
    }

    /// Claims the mails due at `now` and tries each once; whether more may be due (a full batch
    /// was claimed).
    ///
    /// # Errors
    ///
    /// What the store answers when claiming; an outcome that could not be recorded is logged (its
    /// mail is found by [`EmailSender::abandon_expired_claims`] once the claim runs out).
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<bool> {
        let mails = self.store.claim(now, self.policy.lease, self.policy.batch).await?;
        let full = mails.len() >= usize::try_from(self.policy.batch).unwrap_or(usize::MAX);
        futures::stream::iter(mails)
            .for_each_concurrent(self.policy.concurrency, |mail| async move {
                let outcome = self.attempt(&mail).await;
                metrics::counter!("ordo_notification_emails_total", "outcome" => outcome_label(&outcome))
                    .increment(1);
                match &outcome {
                    Outcome::Sent { .. } => {}
                    Outcome::Retry { error, .. } => {
                        tracing::info!(email_id = %mail.id, attempt = mail.attempts, %error, "mail deferred")
                    }
                    Outcome::Failed { error } | Outcome::Unknown { error } => {
                        tracing::warn!(email_id = %mail.id, attempt = mail.attempts, %error, outcome = outcome_label(&outcome), "mail not sent")
                    }
                }
                self.record(mail.id, &outcome).await;
            })
            .await;
        Ok(full)
    }

    /// Records `outcome`, trying again while the store fails (a database restarting), for at most
    /// [`RECORD_ATTEMPTS`] tries: a mail SES took stays known as sent. Past them its claim's expiry
    /// marks it `unknown` ([`EmailSender::abandon_expired_claims`]), and it is never sent again.
    async fn record(&self, id: Uuid, outcome: &Outcome) {
        let mut pause = RECORD_RETRY_FIRST;
        for attempt in 1..=RECORD_ATTEMPTS {
            match self.store.record(id, outcome, OffsetDateTime::now_utc()).await {
                Ok(()) => return,
                Err(error) if attempt < RECORD_ATTEMPTS => {
                    tracing::warn!(email_id = %id, attempt, %error, "recording a mail's outcome failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECORD_RETRY_MAX);
                }
                Err(error) => {
                    tracing::error!(email_id = %id, %error, "recording a mail's outcome failed; its claim's expiry will mark it unknown");
                }
            }
        }
    }

    /// Deletes the mails created before `before` that are done with, in batches of `batch`; how
    /// many went.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn delete_finished_before(&self, before: OffsetDateTime, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let deleted = self.store.delete_finished_before(before, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
        }
    }

    /// Marks the mails of senders that died mid-send `unknown`; how many.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn abandon_expired_claims(&self, now: OffsetDateTime) -> Result<u64> {
        let abandoned = self.store.abandon_expired_claims(now).await?;
        if abandoned > 0 {
            metrics::counter!("ordo_notification_emails_total", "outcome" => "unknown").increment(abandoned);
            tracing::warn!(abandoned, "mails whose sender stopped mid-send are left unsent");
        }
        Ok(abandoned)
    }

    async fn attempt(&self, mail: &Mail) -> Outcome {
        let Some(to) = mail.to.as_deref() else {
            return Outcome::Failed { error: "no address: the account is unknown or disabled".into() };
        };
        match self.mailer.send(to, mail).await {
            Ok(message_id) => Outcome::Sent { message_id },
            Err(SendError::Retry(error)) if mail.attempts < self.policy.max_attempts => {
                let jitter = rand::random::<f64>() * 2.0 - 1.0;
                let delay = retry_delay(mail.attempts, self.policy.retry_base, self.policy.retry_cap, jitter);
                let at = OffsetDateTime::now_utc() + delay;
                Outcome::Retry { at, error }
            }
            Err(SendError::Retry(error)) => {
                Outcome::Failed { error: format!("gave up after {} attempts: {error}", mail.attempts) }
            }
            Err(SendError::Rejected(error)) => Outcome::Failed { error },
            Err(SendError::Unknown(error)) => Outcome::Unknown { error },
        }
    }
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Sent { .. } => "sent",
        Outcome::Retry { .. } => "deferred",
        Outcome::Failed { .. } => "failed",
        Outcome::Unknown { .. } => "unknown",
    }
}
