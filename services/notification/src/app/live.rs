//! Which users have a live stream open on this instance, and waking them when something of theirs
//! changed. A wake-up carries nothing: the stream reads what is new from the store, so a wake-up
//! that is lost, doubled or early costs a read at most, never a notification. The progress of a
//! user's background jobs is the exception: it is kept nowhere, and goes to the streams open when it
//! arrives (a stream that falls behind skips to the latest).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::{AppError, Result};

/// How far one of a user's background jobs got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobProgress {
    pub job_id: Uuid,
    pub project_id: Uuid,
    /// `export` or `import`.
    pub kind: String,
    pub rows_done: u64,
    pub rows_total: Option<u64>,
}

/// Progress items a stream may fall behind by before it skips to the latest.
const JOB_BACKLOG: usize = 16;

/// One user's streams on this instance: their wake-ups and their jobs' progress.
#[derive(Debug)]
struct UserStreams {
    wake: watch::Sender<u64>,
    jobs: broadcast::Sender<JobProgress>,
}

/// What a stream is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Something of the user's changed: look again.
    Look,
    /// One of the user's jobs got further.
    Job(JobProgress),
    /// The hub closed: the stream ends.
    Closed,
}

/// The live streams of this instance, by user.
#[derive(Debug)]
pub struct LiveHub {
    users: Mutex<HashMap<Uuid, UserStreams>>,
    max_per_user: usize,
    /// Set when the service stops: every stream ends, so the server can drain.
    closed: watch::Sender<bool>,
}

/// One open stream's wake-ups; dropping it closes its place.
#[derive(Debug)]
pub struct Wakeups {
    user: watch::Receiver<u64>,
    jobs: broadcast::Receiver<JobProgress>,
    closed: watch::Receiver<bool>,
}

impl Wakeups {
    /// Waits for the next wake-up after the last one seen, or job progress (or returns at once if
    /// one is pending).
    pub async fn next(&mut self) -> Wake {
        loop {
            if *self.closed.borrow() {
                return Wake::Closed;
            }
            tokio::select! {
                woken = self.user.changed() => return if woken.is_ok() { Wake::Look } else { Wake::Closed },
                progress = self.jobs.recv() => match progress {
                    Ok(progress) => return Wake::Job(progress),
                    // Fell behind: the next item is the latest kept.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Wake::Closed,
                },
                _ = self.closed.changed() => return Wake::Closed,
            }
        }
    }
}

impl LiveHub {
    /// A hub allowing `max_per_user` open streams per user on this instance.
    pub fn new(max_per_user: usize) -> Self {
        Self { users: Mutex::new(HashMap::new()), max_per_user, closed: watch::channel(false).0 }
    }

    /// Ends every stream and refuses new ones (the service is stopping; clients reconnect to
    /// another instance and resume).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Opens a stream of `user_id`.
    ///
    /// # Errors
    ///
    /// `Exhausted` when the user already has the most streams open here; `Unavailable` once the
    /// hub is closed.
    pub fn open(&self, user_id: Uuid) -> Result<Wakeups> {
        if *self.closed.borrow() {
            return Err(AppError::Unavailable("the service is stopping".into()));
        }
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let streams = users
            .entry(user_id)
            .or_insert_with(|| UserStreams { wake: watch::channel(0).0, jobs: broadcast::channel(JOB_BACKLOG).0 });
        if streams.wake.receiver_count() >= self.max_per_user {
            return Err(AppError::Exhausted {
                message: format!("at most {} notification streams at once", self.max_per_user).into(),
                retry_after_secs: None,
            });
        }
        Ok(Wakeups { user: streams.wake.subscribe(), jobs: streams.jobs.subscribe(), closed: self.closed.subscribe() })
    }

    /// Tells `user`'s streams how far one of their jobs got; nothing when they have none open here.
    pub fn job_progress(&self, user: Uuid, progress: JobProgress) {
        let mut open = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(streams) = open.get(&user) {
            if streams.wake.receiver_count() == 0 {
                open.remove(&user);
            } else {
                // No receiver between the check and the send is a stream that just closed.
                let _ = streams.jobs.send(progress);
            }
        }
    }

    /// Wakes every stream of `users`.
    pub fn wake(&self, users: &[Uuid]) {
        let mut open = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        for user in users {
            if let Some(streams) = open.get(user) {
                if streams.wake.receiver_count() == 0 {
                    open.remove(user);
                } else {
                    streams.wake.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        }
    }

    /// Wakes every stream (after wake-ups may have been missed).
    pub fn wake_all(&self) {
        let mut open = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, streams| streams.wake.receiver_count() > 0);
        for streams in open.values() {
            streams.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wake_up_reaches_the_users_streams_only_and_is_kept_until_read() {
        let hub = LiveHub::new(5);
        let (ann, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut ann_stream = hub.open(ann).unwrap();
        let mut bob_stream = hub.open(bob).unwrap();

        hub.wake(&[ann]);

        // Pending before anyone waits: not lost.
        assert_eq!(tokio::time::timeout(Duration::from_secs(1), ann_stream.next()).await.unwrap(), Wake::Look);
        assert!(tokio::time::timeout(Duration::from_millis(50), bob_stream.next()).await.is_err());
        hub.wake_all();
        assert_eq!(tokio::time::timeout(Duration::from_secs(1), bob_stream.next()).await.unwrap(), Wake::Look);
    }

    #[tokio::test]
    async fn job_progress_reaches_the_users_open_streams_only_and_a_stream_behind_skips_ahead() {
        let hub = LiveHub::new(5);
        let (ann, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let progress = |rows_done: u64| JobProgress {
            job_id: Uuid::from_u128(9),
            project_id: Uuid::from_u128(8),
            kind: "export".into(),
            rows_done,
            rows_total: Some(10_000),
        };
        hub.job_progress(ann, progress(1)); // no stream open: told to no one, kept nowhere
        let mut ann_stream = hub.open(ann).unwrap();
        let mut bob_stream = hub.open(bob).unwrap();

        hub.job_progress(ann, progress(500));
        assert_eq!(ann_stream.next().await, Wake::Job(progress(500)));
        assert!(tokio::time::timeout(Duration::from_millis(50), bob_stream.next()).await.is_err());
        for n in 0..(JOB_BACKLOG as u64 + 5) {
            hub.job_progress(ann, progress(1000 + n));
        }
        let next = ann_stream.next().await;
        assert!(matches!(&next, Wake::Job(p) if p.rows_done > 1000), "{next:?}");
    }

    #[tokio::test]
    async fn closing_ends_every_stream_and_refuses_new_ones() {
        let hub = LiveHub::new(5);
        let mut stream = hub.open(Uuid::from_u128(1)).unwrap();

        hub.close();

        assert_eq!(tokio::time::timeout(Duration::from_secs(1), stream.next()).await.unwrap(), Wake::Closed);
        assert!(matches!(hub.open(Uuid::from_u128(2)), Err(AppError::Unavailable(_))));
    }

    #[test]
    fn a_user_past_the_limit_is_refused_until_a_stream_closes() {
        let hub = LiveHub::new(2);
        let ann = Uuid::from_u128(1);
        let first = hub.open(ann).unwrap();
        let _second = hub.open(ann).unwrap();

        assert!(matches!(hub.open(ann), Err(AppError::Exhausted { .. })));
        drop(first);
        assert!(hub.open(ann).is_ok());
        assert!(hub.open(Uuid::from_u128(2)).is_ok(), "another user has a limit of their own");
    }
}
