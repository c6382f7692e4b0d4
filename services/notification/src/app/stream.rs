//! A user's live stream: the counts, then whatever the client missed since its last notification,
//! then each new notification as it is stored, in the user's sequence order, each once.
//!
//! The stream never trusts a wake-up to carry data: on each one it reads the user's notifications
//! after the last one it sent (by `seq`, which follows commit order per user), so nothing is skipped
//! at the seam between replay and live, and a missed wake-up only delays a notification until the
//! next one or the safety poll.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::Result;
use super::live::{JobProgress, LiveHub, Wake, Wakeups};
use super::ports::{Counts, Notification, NotificationStore, SessionCheck};

/// What a stream sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A notification, in sequence order.
    Notification(Box<Notification>),
    /// The badge counts after a change.
    Counts(Counts),
    /// How far one of the user's jobs got.
    Job(JobProgress),
}

/// Notifications read per query while catching up.
const BATCH: u32 = 100;
/// How often a stream looks even without a wake-up (a wake-up lost with a crashed instance).
const SAFETY_POLL: Duration = Duration::from_secs(30);
/// Items buffered for a client; a client that lets them fill up for [`SLOW_CLIENT`] is dropped.
const BUFFER: usize = 64;
/// How long a full buffer may stay full before the stream ends.
const SLOW_CLIENT: Duration = Duration::from_secs(10);
/// How often a stream asks whether its session is still live: a logout, a revoked session or a
/// disabled account ends the stream within this.
const SESSION_RECHECK: Duration = Duration::from_secs(5);

/// Whose stream it is.
pub(super) struct Owner {
    /// The user.
    pub(super) user_id: Uuid,
    /// The session the stream was opened in.
    pub(super) session_id: Uuid,
    /// Where to ask whether that session is still live.
    pub(super) sessions: Arc<dyn SessionCheck>,
}

/// Opens `user_id`'s stream, resuming after notification `last_event_id` (a notification id) when
/// the user has it, else live from now.
///
/// # Errors
///
/// `Exhausted` past the per-user limit of open streams; what the store answers.
pub(super) async fn open(
    store: Arc<dyn NotificationStore>,
    hub: &LiveHub,
    owner: Owner,
    last_event_id: &str,
) -> Result<mpsc::Receiver<Result<StreamItem>>> {
    let user_id = owner.user_id;
    let wakeups = hub.open(user_id)?;
    let resume = match Uuid::parse_str(last_event_id) {
        Ok(id) => store.seq_of(user_id, id).await?,
        Err(_) => None,
    };
    let after = match resume {
        Some(seq) => seq,
        None => store.last_seq(user_id).await?,
    };
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(run(store, owner, after, wakeups, tx));
    Ok(rx)
}

/// Sends until the client goes away or is too slow, the session ends, the service stops, or the
/// store fails (the error is sent last).
async fn run(
    store: Arc<dyn NotificationStore>,
    owner: Owner,
    mut after: i64,
    mut wakeups: Wakeups,
    tx: mpsc::Sender<Result<StreamItem>>,
) {
    let mut last_counts = None;
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + SESSION_RECHECK, SESSION_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match catch_up(store.as_ref(), owner.user_id, &mut after, &mut last_counts, &tx).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        }
        let poll = tokio::time::sleep(SAFETY_POLL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                woken = wakeups.next() => match woken {
                    Wake::Look => break,
                    Wake::Job(progress) => if !send(&tx, StreamItem::Job(progress)).await { return },
                    Wake::Closed => return,
                },
                () = &mut poll => break,
                () = tx.closed() => return,
                _ = recheck.tick() => match owner.sessions.is_live(owner.session_id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let ended = super::AppError::Unauthenticated("the session has ended".into());
                        let _ = tx.send(Err(ended)).await;
                        return;
                    }
                    // Not known now (identity or Redis is down): the stream goes on and asks again.
                    Err(error) => tracing::debug!(%error, "the stream's session could not be checked"),
                },
            }
        }
    }
}

/// Sends what is new after `after` and the counts if they changed; `false` once the client is gone
/// or too slow.
async fn catch_up(
    store: &dyn NotificationStore,
    user_id: Uuid,
    after: &mut i64,
    last_counts: &mut Option<Counts>,
    tx: &mpsc::Sender<Result<StreamItem>>,
) -> Result<bool> {
    loop {
        let batch = store.after(user_id, *after, BATCH).await?;
        let full = batch.len() == BATCH as usize;
        for notification in batch {
            *after = notification.seq;
            if !send(tx, StreamItem::Notification(Box::new(notification))).await {
                return Ok(false);
            }
        }
        if !full {
            break;
        }
    }
    let counts = store.counts(user_id).await?;
    if *last_counts != Some(counts) {
        *last_counts = Some(counts);
        if !send(tx, StreamItem::Counts(counts)).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sends `item`, waiting at most [`SLOW_CLIENT`] for room; `false` if the client is gone or slow.
async fn send(tx: &mpsc::Sender<Result<StreamItem>>, item: StreamItem) -> bool {
    matches!(tokio::time::timeout(SLOW_CLIENT, tx.send(Ok(item))).await, Ok(Ok(())))
}
