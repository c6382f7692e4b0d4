//! The keys a verifier holds of identity's published set, and how a fetched set is merged into them.
//!
//! Identity publishes a key before it signs with it and keeps publishing it until every token it
//! signed has expired, so a verifier that held exactly the last set it fetched would be right almost
//! always. Almost: behind a load balancer, one fetch may reach an identity instance that has not yet
//! read a key another instance already published (or one that cannot reach its database and serves
//! what it had), and replacing the set with that answer would drop a key that is signing. So a fetched
//! set is merged: its keys are added or updated, and a held key it lacks is kept until it has been
//! missing for a while ([`HeldKeys::merge`]'s `keep_missing`), then dropped. A withdrawn key therefore
//! stops verifying within that time, and never while one fetch happens to miss it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};

/// The most keys a verifier holds. Identity publishes two or three (next, active, previous) and a
/// few configured ones; anything past this is a fault, and the keys seen most recently win.
pub const MAX_HELD_KEYS: usize = 16;

/// The keys a verifier holds, each with when it was first found missing from a fetched set.
#[derive(Debug, Clone, Default)]
pub struct HeldKeys {
    keys: BTreeMap<String, Held>,
}

#[derive(Debug, Clone)]
struct Held {
    jwk: Jwk,
    missing_since: Option<Instant>,
}

impl HeldKeys {
    /// Merges a fetched set at `now`: its Ed25519 keys with a `kid` are held (added, or replaced
    /// when their `x` changed); a held key the set lacks is dropped once it has been missing for
    /// `keep_missing`. `true` when the keys that verify changed.
    pub fn merge(&mut self, fetched: &JwkSet, now: Instant, keep_missing: Duration) -> bool {
        let mut changed = false;
        let mut seen = Vec::new();
        for (kid, jwk) in fetched.keys.iter().filter_map(signing_key).take(MAX_HELD_KEYS) {
            seen.push(kid.to_owned());
            match self.keys.get_mut(kid) {
                Some(held) if held.jwk == *jwk => held.missing_since = None,
                _ => {
                    self.keys.insert(kid.to_owned(), Held { jwk: jwk.clone(), missing_since: None });
                    changed = true;
                }
            }
        }
        self.keys.retain(|kid, held| {
            if seen.contains(kid) {
                return true;
            }
            let since = *held.missing_since.get_or_insert(now);
            let keep = now.saturating_duration_since(since) < keep_missing;
            changed |= !keep;
            keep
        });
        // Over the bound only when missing keys are still kept: the longest missing go first.
        while self.keys.len() > MAX_HELD_KEYS {
            let oldest = self
                .keys
                .iter()
                .filter_map(|(kid, held)| held.missing_since.map(|since| (since, kid.clone())))
                .min()
                .map(|(_, kid)| kid);
            let Some(kid) = oldest else { break };
            self.keys.remove(&kid);
            changed = true;
        }
        changed
    }

    /// The held keys as a key set.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.values().map(|held| held.jwk.clone()).collect() }
    }

    /// The ids of the held keys, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The `kid` of an Ed25519 key (the only kind tokens are signed with), else `None`.
fn signing_key(jwk: &Jwk) -> Option<(&str, &Jwk)> {
    match (&jwk.common.key_id, &jwk.algorithm) {
        (Some(kid), AlgorithmParameters::OctetKeyPair(okp)) if okp.curve == EllipticCurve::Ed25519 => {
            Some((kid.as_str(), jwk))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::SigningKey;

    const KEEP: Duration = Duration::from_secs(60);

    fn key(kid: &str) -> Jwk {
        SigningKey::generate(kid).unwrap().public_jwk()
    }

    fn set(keys: &[&Jwk]) -> JwkSet {
        JwkSet { keys: keys.iter().map(|&k| k.clone()).collect() }
    }

    fn kids(held: &HeldKeys) -> Vec<&str> {
        held.kids().collect()
    }

    #[test]
    fn a_fetched_set_is_held_and_a_new_key_joins_it() {
        let (active, next) = (key("active"), key("next"));
        let mut held = HeldKeys::default();
        let now = Instant::now();

        assert!(held.merge(&set(&[&active]), now, KEEP));
        assert!(held.merge(&set(&[&active, &next]), now, KEEP));
        assert!(!held.merge(&set(&[&active, &next]), now, KEEP), "the same set changes nothing");
        assert_eq!(kids(&held), ["active", "next"]);
    }

    #[test]
    fn a_key_missing_from_one_fetch_is_kept_until_it_has_been_missing_for_a_while() {
        let (previous, active) = (key("previous"), key("active"));
        let mut held = HeldKeys::default();
        let start = Instant::now();
        held.merge(&set(&[&previous, &active]), start, KEEP);

        // An instance that has not read `active` yet answers without it.
        assert!(!held.merge(&set(&[&previous]), start + Duration::from_secs(1), KEEP));
        assert_eq!(kids(&held), ["active", "previous"]);

        // Seen again: the count starts over.
        held.merge(&set(&[&previous, &active]), start + Duration::from_secs(2), KEEP);
        assert!(!held.merge(&set(&[&active]), start + Duration::from_secs(3), KEEP));
        assert!(!held.merge(&set(&[&active]), start + Duration::from_secs(62), KEEP));
        assert_eq!(kids(&held), ["active", "previous"]);

        // Retired: gone once missing for `KEEP`.
        assert!(held.merge(&set(&[&active]), start + Duration::from_secs(63), KEEP));
        assert_eq!(kids(&held), ["active"]);
    }

    #[test]
    fn a_key_whose_value_changed_under_the_same_kid_is_replaced() {
        let mut held = HeldKeys::default();
        let now = Instant::now();
        held.merge(&set(&[&key("k")]), now, KEEP);
        let other = key("k");

        assert!(held.merge(&set(&[&other]), now, KEEP));
        assert_eq!(held.jwks().keys, [other]);
    }

    #[test]
    fn keys_that_do_not_sign_tokens_are_not_held() {
        let mut without_kid = key("x");
        without_kid.common.key_id = None;
        let mut held = HeldKeys::default();

        assert!(!held.merge(&set(&[&without_kid]), Instant::now(), KEEP));
        assert!(held.jwks().keys.is_empty());
    }

    #[test]
    fn the_held_keys_are_bounded_even_while_missing_keys_are_kept() {
        let mut held = HeldKeys::default();
        let start = Instant::now();
        let first: Vec<Jwk> = (0..MAX_HELD_KEYS).map(|i| key(&format!("a{i:02}"))).collect();
        held.merge(&set(&first.iter().collect::<Vec<_>>()), start, KEEP);
        let second: Vec<Jwk> = (0..4).map(|i| key(&format!("b{i}"))).collect();

        held.merge(&set(&second.iter().collect::<Vec<_>>()), start + Duration::from_secs(1), KEEP);

        assert_eq!(held.kids().count(), MAX_HELD_KEYS);
        assert!(second.iter().all(|jwk| held.kids().any(|kid| Some(kid) == jwk.common.key_id.as_deref())));
    }

    #[test]
    fn a_fetched_set_larger_than_the_bound_is_cut_to_it() {
        let many: Vec<Jwk> = (0..MAX_HELD_KEYS + 5).map(|i| key(&format!("k{i:02}"))).collect();
        let mut held = HeldKeys::default();

        held.merge(&set(&many.iter().collect::<Vec<_>>()), Instant::now(), KEEP);

        assert_eq!(held.kids().count(), MAX_HELD_KEYS);
    }
}
