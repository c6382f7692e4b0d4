//! The life of the keys that sign access tokens, as a schedule every identity instance reads the same
//! way from the same rows, so instances agree on which key signs without talking to each other.
//!
//! A rotation adds a key that starts to sign at a time set in advance (`activate_at`). Until then it is
//! only *next*: published in the key set, so every verifier holds it before the first token it signs
//! arrives. From `activate_at` it is *active* and signs every new token, and the key it replaces becomes
//! *previous*: it signs nothing more but stays published until every token it signed has expired (the
//! access-token lifetime after `activate_at` of its successor, plus the verifiers' clock leeway). Then
//! it is *retired*: out of the key set, and its row may be deleted. Nobody is logged out by a rotation:
//! a token verifies for its whole life, whichever key signed it.
//!
//! Time alone moves a key from one state to the next; nothing is written when a key activates or
//! retires. An instance that read the rows before `activate_at` switches at `activate_at` like the
//! others, to the microsecond of its own clock.

use time::{Duration, OffsetDateTime};

/// A signing key as the schedule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledKey {
    /// 1 for the first key, one more for each rotation. Unique in the database, so two rotations started
    /// at once add one key, not two.
    pub generation: u32,
    /// The key id (`kid`) tokens name.
    pub kid: String,
    /// When it starts to sign.
    pub activate_at: OffsetDateTime,
}

/// Where a key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signs every new token.
    Active,
    /// Signs no more; published until the tokens it signed have expired.
    Previous,
    /// Neither signs nor is published.
    Retired,
}

/// What starting a rotation at a given time means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation<'a> {
    /// A key is already waiting to sign: the rotation under way is that one.
    Pending(&'a ScheduledKey),
    /// Add a key of this generation, signing from `activate_at`.
    Start {
        /// The new key's generation.
        generation: u32,
        /// When it starts to sign: after the publication lead, or at once when there is no key at all
        /// (no verifier can hold a token of a key that never existed).
        activate_at: OffsetDateTime,
    },
}

/// Every key kept, in the order they sign, and how long a key stays published once it stops signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchedule {
    /// By `activate_at`, then generation.
    keys: Vec<ScheduledKey>,
    published_after_use: Duration,
}

impl KeySchedule {
    /// The schedule of `keys`. `published_after_use`: how long a key stays published after the last
    /// moment it signed (the access-token lifetime plus the verifiers' clock leeway).
    pub fn new(mut keys: Vec<ScheduledKey>, published_after_use: Duration) -> Self {
        keys.sort_by_key(|key| (key.activate_at, key.generation));
        Self { keys, published_after_use }
    }

    /// The keys, in the order they sign.
    pub fn keys(&self) -> &[ScheduledKey] {
        &self.keys
    }

    /// The key that signs at `at`: the one activated last by then.
    pub fn signing_at(&self, at: OffsetDateTime) -> Option<&ScheduledKey> {
        self.active_index(at).map(|index| &self.keys[index])
    }

    fn active_index(&self, at: OffsetDateTime) -> Option<usize> {
        self.keys.iter().rposition(|key| key.activate_at <= at)
    }

    /// The state of the `index`th key (in signing order) at `at`.
    fn state(&self, index: usize, at: OffsetDateTime) -> KeyState {
        let Some(active) = self.active_index(at) else { return KeyState::Next };
        if index > active {
            return KeyState::Next;
        }
        if index == active {
            return KeyState::Active;
        }
        // It signed until its successor took over.
        let stopped = self.keys[index + 1].activate_at;
        if at < stopped + self.published_after_use { KeyState::Previous } else { KeyState::Retired }
    }

    /// Every key with its state at `at`.
    pub fn states_at(&self, at: OffsetDateTime) -> impl Iterator<Item = (&ScheduledKey, KeyState)> {
        self.keys.iter().enumerate().map(move |(index, key)| (key, self.state(index, at)))
    }

    /// The keys published at `at`: the active one first (clients that take the first key take the one
    /// that signs), then the next ones in the order they will sign, then the previous ones, newest
    /// first.
    pub fn published_at(&self, at: OffsetDateTime) -> Vec<&ScheduledKey> {
        let in_state = |wanted: KeyState| self.states_at(at).filter(move |(_, state)| *state == wanted).map(|(k, _)| k);
        let mut published: Vec<&ScheduledKey> = in_state(KeyState::Active).collect();
        published.extend(in_state(KeyState::Next));
        let mut previous: Vec<&ScheduledKey> = in_state(KeyState::Previous).collect();
        previous.reverse();
        published.extend(previous);
        published
    }

    /// The keys retired at `at`, whose rows may be deleted.
    pub fn retired_at(&self, at: OffsetDateTime) -> Vec<&ScheduledKey> {
        self.states_at(at).filter(|(_, state)| *state == KeyState::Retired).map(|(key, _)| key).collect()
    }

    /// What a rotation started at `at` does, a new key being published for `lead` before it signs.
    pub fn rotation(&self, at: OffsetDateTime, lead: Duration) -> Rotation<'_> {
        if let Some(pending) = self.keys.iter().rev().find(|key| key.activate_at > at) {
            return Rotation::Pending(pending);
        }
        match self.keys.iter().map(|key| key.generation).max() {
            Some(last) => Rotation::Start { generation: last.saturating_add(1), activate_at: at + lead },
            None => Rotation::Start { generation: 1, activate_at: at },
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// The access-token lifetime plus the leeway, as identity's defaults make it.
    const AFTER_USE: Duration = Duration::seconds(905);
    const LEAD: Duration = Duration::minutes(10);
    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn key(generation: u32, activate_at: OffsetDateTime) -> ScheduledKey {
        ScheduledKey { generation, kid: format!("k{generation}"), activate_at }
    }

    fn kids(keys: Vec<&ScheduledKey>) -> Vec<&str> {
        keys.into_iter().map(|key| key.kid.as_str()).collect()
    }

    fn states(schedule: &KeySchedule, at: OffsetDateTime) -> Vec<KeyState> {
        schedule.states_at(at).map(|(_, state)| state).collect()
    }

    #[test]
    fn a_lone_key_signs_from_its_activation_and_is_published() {
        let schedule = KeySchedule::new(vec![key(1, T0)], AFTER_USE);

        assert_eq!(schedule.signing_at(T0 - Duration::SECOND), None);
        assert_eq!(schedule.signing_at(T0).map(|k| k.generation), Some(1));
        assert_eq!(kids(schedule.published_at(T0 + Duration::days(400))), ["k1"]);
        assert!(schedule.retired_at(T0 + Duration::days(400)).is_empty());
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_signs_from_its_activation() {
        let activate = T0 + Duration::days(30);
        let schedule = KeySchedule::new(vec![key(2, activate), key(1, T0)], AFTER_USE);

        let before = activate - Duration::MICROSECOND;
        assert_eq!(schedule.signing_at(before).map(|k| k.generation), Some(1));
        assert_eq!(states(&schedule, before), [KeyState::Active, KeyState::Next]);
        assert_eq!(kids(schedule.published_at(before)), ["k1", "k2"]);

        assert_eq!(schedule.signing_at(activate).map(|k| k.generation), Some(2));
        assert_eq!(states(&schedule, activate), [KeyState::Previous, KeyState::Active]);
        assert_eq!(kids(schedule.published_at(activate)), ["k2", "k1"]);
    }

    #[test]
    fn the_previous_key_is_published_until_its_last_tokens_have_expired_then_retires() {
        let activate = T0 + Duration::days(30);
        let schedule = KeySchedule::new(vec![key(1, T0), key(2, activate)], AFTER_USE);
        let retires = activate + AFTER_USE;

        assert_eq!(kids(schedule.published_at(retires - Duration::MICROSECOND)), ["k2", "k1"]);
        assert!(schedule.retired_at(retires - Duration::MICROSECOND).is_empty());

        assert_eq!(kids(schedule.published_at(retires)), ["k2"]);
        assert_eq!(kids(schedule.retired_at(retires)), ["k1"]);
        assert_eq!(states(&schedule, retires), [KeyState::Retired, KeyState::Active]);
    }

    #[test]
    fn each_previous_key_retires_after_its_own_successor_took_over() {
        // Two rotations in quick succession: the first key stopped signing when the second began.
        let (second, third) = (T0 + Duration::hours(1), T0 + Duration::hours(1) + Duration::minutes(5));
        let schedule = KeySchedule::new(vec![key(1, T0), key(2, second), key(3, third)], AFTER_USE);

        assert_eq!(kids(schedule.published_at(third)), ["k3", "k2", "k1"]);
        assert_eq!(kids(schedule.published_at(second + AFTER_USE)), ["k3", "k2"]);
        assert_eq!(kids(schedule.published_at(third + AFTER_USE)), ["k3"]);
        assert_eq!(kids(schedule.retired_at(third + AFTER_USE)), ["k1", "k2"]);
    }

    #[test]
    fn a_rotation_starts_a_key_of_the_next_generation_published_for_the_lead() {
        let schedule = KeySchedule::new(vec![key(1, T0)], AFTER_USE);
        let at = T0 + Duration::days(90);

        assert_eq!(schedule.rotation(at, LEAD), Rotation::Start { generation: 2, activate_at: at + LEAD });
    }

    #[test]
    fn a_rotation_while_a_key_waits_to_sign_is_that_rotation() {
        let waiting = key(2, T0 + Duration::days(90) + LEAD);
        let schedule = KeySchedule::new(vec![key(1, T0), waiting.clone()], AFTER_USE);

        assert_eq!(schedule.rotation(T0 + Duration::days(90) + Duration::SECOND, LEAD), Rotation::Pending(&waiting));
        // Once it signs, another rotation may start.
        let later = waiting.activate_at + Duration::SECOND;
        assert_eq!(schedule.rotation(later, LEAD), Rotation::Start { generation: 3, activate_at: later + LEAD });
    }

    #[test]
    fn the_first_key_signs_at_once() {
        let schedule = KeySchedule::new(Vec::new(), AFTER_USE);

        assert_eq!(schedule.rotation(T0, LEAD), Rotation::Start { generation: 1, activate_at: T0 });
        assert_eq!(schedule.signing_at(T0), None);
        assert!(schedule.published_at(T0).is_empty());
    }

    #[test]
    fn a_generation_after_a_deleted_one_follows_the_highest_kept() {
        // Retired rows are deleted; the newest key never is, so generations never repeat.
        let schedule = KeySchedule::new(vec![key(7, T0)], AFTER_USE);

        assert!(matches!(schedule.rotation(T0 + Duration::days(1), LEAD), Rotation::Start { generation: 8, .. }));
    }
}
