//! Which users have a live stream open on this instance, and waking them when something of theirs
//! changed. A wake-up carries nothing: the stream reads what is new from the store, so a wake-up
//! that is lost, doubled or early costs a read at most, never a notification.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;
use uuid::Uuid;

use super::{AppError, Result};

/// The live streams of this instance, by user.
#[derive(Debug)]
pub struct LiveHub {
    users: Mutex<HashMap<Uuid, watch::Sender<u64>>>,
    max_per_user: usize,
    /// Set when the service stops: every stream ends, so the server can drain.
    closed: watch::Sender<bool>,
}

/// One open stream's wake-ups; dropping it closes its place.
#[derive(Debug)]
pub struct Wakeups {
    user: watch::Receiver<u64>,
    closed: watch::Receiver<bool>,
}

impl Wakeups {
    /// Waits for the next wake-up after the last one seen (or returns at once if one is pending):
    /// `true`, or `false` once the hub closes (the stream should end).
    pub async fn next(&mut self) -> bool {
        if *self.closed.borrow() {
            return false;
        }
        tokio::select! {
            woken = self.user.changed() => woken.is_ok(),
            _ = self.closed.changed() => false,
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
        let sender = users.entry(user_id).or_insert_with(|| watch::channel(0).0);
        if sender.receiver_count() >= self.max_per_user {
            return Err(AppError::Exhausted {
                message: format!("at most {} notification streams at once", self.max_per_user).into(),
                retry_after_secs: None,
            });
        }
        Ok(Wakeups { user: sender.subscribe(), closed: self.closed.subscribe() })
    }

    /// Wakes every stream of `users`.
    pub fn wake(&self, users: &[Uuid]) {
        let mut open = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        for user in users {
            if let Some(sender) = open.get(user) {
                if sender.receiver_count() == 0 {
                    open.remove(user);
                } else {
                    sender.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        }
    }

    /// Wakes every stream (after wake-ups may have been missed).
    pub fn wake_all(&self) {
        let mut open = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, sender| sender.receiver_count() > 0);
        for sender in open.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
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
        assert!(tokio::time::timeout(Duration::from_secs(1), ann_stream.next()).await.unwrap());
        assert!(tokio::time::timeout(Duration::from_millis(50), bob_stream.next()).await.is_err());
        hub.wake_all();
        assert!(tokio::time::timeout(Duration::from_secs(1), bob_stream.next()).await.unwrap());
    }

    #[tokio::test]
    async fn closing_ends_every_stream_and_refuses_new_ones() {
        let hub = LiveHub::new(5);
        let mut stream = hub.open(Uuid::from_u128(1)).unwrap();

        hub.close();

        assert!(!tokio::time::timeout(Duration::from_secs(1), stream.next()).await.unwrap());
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
