//! Board order: every task of a project has a `position`, an opaque key over the digits and the
//! lower-case ASCII letters, and the board sorts tasks by it bytewise. A move computes a key strictly
//! between its new neighbours (fractional indexing), so normally no other task is rewritten.
//!
//! The alphabet is `0-9a-z` because its bytewise order is also its order under the
//! `ascii_general_ci` collation the column uses (the case-folding of that collation cannot reorder
//! keys without upper-case letters). Keys never end in `0`: that keeps a key strictly between any two
//! keys always possible (as with decimals, nothing lies between `0.1` and `0.10`).
//!
//! Appending at the end of a board grows keys only logarithmically (see [`Position::after`]).
//! Inserting into one gap again and again lengthens keys by about one character per five inserts,
//! so a key longer than [`LONG_POSITION_LEN`] is not stored: the board re-spaces a small window of
//! tasks around the gap with [`Position::spread`] (short, evenly spaced keys) and the task takes a
//! slot among them. Keys therefore stay short however a board is used.

use std::fmt;

/// The digits of a key, in order.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE: usize = ALPHABET.len();
/// The longest key the column holds.
pub const MAX_POSITION_LEN: usize = 1000;
/// The longest key a move or a create stores as computed; a longer one re-spaces the tasks around
/// its gap instead (see [`Position::spread`]).
pub const LONG_POSITION_LEN: usize = 12;
/// The longest key [`Position::spread`] hands out: well short of [`LONG_POSITION_LEN`], so a re-spaced
/// gap takes a few dozen more inserts before it is re-spaced again.
pub const SPREAD_POSITION_LEN: usize = 8;
/// The widest append counter read as a base-36 integer in a `u128`.
const MAX_COUNTER_DIGITS: usize = 24;
/// How many keys of a spread's length lie between two neighbouring keys it hands out, at least:
/// one digit's worth, so each gap has room for about five inserts before keys grow.
const SPREAD_ROOM: u128 = BASE as u128;
// Spread keys are read as base-36 integers of `SPREAD_POSITION_LEN` digits in a `u128`.
const _: () = assert!(SPREAD_POSITION_LEN <= 24 && SPREAD_POSITION_LEN < LONG_POSITION_LEN);

/// A board-order key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(String);

/// Why no key could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// The lower neighbour is not below the upper one.
    #[error("the neighbours are not in order")]
    NotOrdered,
    /// The key would be longer than the column holds.
    #[error("the board order is too dense here")]
    TooLong,
}

fn digit(byte: u8) -> Option<usize> {
    ALPHABET.iter().position(|&d| d == byte)
}

impl Position {
    /// A stored key; `None` if it is not one this module could have made.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_POSITION_LEN
            && raw.bytes().all(|b| digit(b).is_some())
            && !raw.ends_with('0');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The key of the first task of an empty board: in the middle, leaving room on both sides.
    pub fn first() -> Self {
        Self("i".to_owned())
    }

    /// A key after `last` (the end of a board), growing only logarithmically with the number of
    /// appends. Keys are read in *levels*: a key that starts with `k` letters `z` is followed by a
    /// counter below `z…` of up to `k + 1` digits. The next key counts the counter up at its own
    /// length while that stays below `z` (short keys, wide gaps), then at the level's full `k + 1`
    /// digits; when even that would reach `z…`, the next level starts (`k + 1` letters `z`, which
    /// sorts after every key of level `k`). Level `k` holds over 36^(k-1) keys of at most `2k + 1`
    /// characters: 10,000 appends stay within 7 characters and 50 million within 11, so appending
    /// never makes a key long enough to re-space the board.
    pub fn after(last: &Position) -> Result<Self, PositionError> {
        let level = last.0.bytes().take_while(|&b| b == b'z').count();
        let width = level + 1;
        if width > MAX_COUNTER_DIGITS {
            // Only a key no board reaches by appending; it grows by one digit as a fallback.
            let mut key = last.0.clone();
            key.push('1');
            return Self::bounded(key);
        }
        let counter = Position(last.0[level..].to_owned());
        let own = counter.0.len().clamp(1, width);
        for digits_counted in [own, width] {
            let mut next = prefix_value(&counter, digits_counted) + 1;
            // Never a trailing `0` (keys never end in one), and no shorter key by dropping it:
            // a key keeps the length it was counted at.
            if next.is_multiple_of(BASE as u128) {
                next += 1;
            }
            // The counter's first digit may not become `z`: that is the next level's prefix.
            let full = (BASE as u128 - 1) * (BASE as u128).pow(u32::try_from(digits_counted - 1).unwrap_or(u32::MAX));
            if next < full {
                return Self::bounded(format!("{}{}", "z".repeat(level), digits(next, digits_counted)));
            }
        }
        Self::bounded(format!("{}1", "z".repeat(level + 1)))
    }

    /// A key strictly between `lower` and `upper`; `None` stands for the start or the end of the
    /// board.
    pub fn between(lower: Option<&Position>, upper: Option<&Position>) -> Result<Self, PositionError> {
        match (lower, upper) {
            (None, None) => Ok(Self::first()),
            (Some(lower), None) => Self::after(lower),
            (lower, Some(upper)) => {
                let lower = lower.map_or("", |p| p.0.as_str());
                if lower >= upper.0.as_str() {
                    return Err(PositionError::NotOrdered);
                }
                Self::bounded(midpoint(lower.as_bytes(), Some(upper.0.as_bytes())))
            }
        }
    }

    /// `n` keys strictly between `lower` and `upper` (`None`: the start or the end of the board), in
    /// ascending order, evenly spaced and as short as leaves [`SPREAD_ROOM`] keys of their length
    /// between any two of them and towards the bounds. All have the same length, at most
    /// [`SPREAD_POSITION_LEN`]; `TooLong` when the bounds are too close for that (a wider window
    /// has farther bounds), `NotOrdered` when `lower` is not below `upper`.
    pub fn spread(lower: Option<&Position>, upper: Option<&Position>, n: usize) -> Result<Vec<Self>, PositionError> {
        if let (Some(lower), Some(upper)) = (lower, upper)
            && lower >= upper
        {
            return Err(PositionError::NotOrdered);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let slots = u128::try_from(n).map_err(|_| PositionError::TooLong)?.saturating_add(1);
        for len in 1..=SPREAD_POSITION_LEN {
            // As `len`-digit integers, a key `v` lies strictly between the bounds exactly when
            // `floor < v < ceiling` (see `prefix_value`).
            let floor = lower.map_or(0, |l| prefix_value(l, len));
            let ceiling = match upper {
                None => (BASE as u128).pow(len as u32),
                // A key that is a proper prefix of `upper` is below it.
                Some(u) => prefix_value(u, len) + u128::from(u.0.len() > len),
            };
            let step = ceiling.saturating_sub(floor) / slots;
            if step < SPREAD_ROOM {
                continue;
            }
            let keys = (1..=slots - 1)
                .map(|i| {
                    let mut value = floor + i * step;
                    // Never a trailing `0`; the next key is `step` > 1 above, so order holds.
                    if value.is_multiple_of(BASE as u128) {
                        value += 1;
                    }
                    Self(digits(value, len))
                })
                .collect();
            return Ok(keys);
        }
        Err(PositionError::TooLong)
    }

    /// Whether the key is too long to store as computed (see [`LONG_POSITION_LEN`]).
    pub fn is_long(&self) -> bool {
        self.0.len() > LONG_POSITION_LEN
    }

    fn bounded(key: String) -> Result<Self, PositionError> {
        if key.len() > MAX_POSITION_LEN { Err(PositionError::TooLong) } else { Ok(Self(key)) }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first `len` digits of `key` as an integer, a missing digit read as `0`. A key `v` of exactly
/// `len` digits is above `key` if `v > prefix_value(key)` (its first `len` digits already are), and
/// below it if `v < prefix_value(key)`, or if equal while `key` is longer (`v` is then a proper
/// prefix of `key`). Equal otherwise, `v` is `key` itself or `key` followed by zeros (which ends in
/// `0`), so a spread leaves it out.
fn prefix_value(key: &Position, len: usize) -> u128 {
    let bytes = key.0.as_bytes();
    (0..len).fold(0, |value, i| {
        let d = bytes.get(i).and_then(|&b| digit(b)).unwrap_or(0);
        value * BASE as u128 + d as u128
    })
}

/// `value` as exactly `len` digits (`value` < 36^`len`).
fn digits(mut value: u128, len: usize) -> String {
    let mut key = vec![b'0'; len];
    for slot in key.iter_mut().rev() {
        *slot = ALPHABET[(value % BASE as u128) as usize];
        value /= BASE as u128;
    }
    String::from_utf8_lossy(&key).into_owned()
}

/// A key strictly between `a` and `b` (`b` = `None`: no upper bound). Requires `a < b`, and neither
/// ending in `0`; `a` may be empty (the start).
fn midpoint(a: &[u8], b: Option<&[u8]>) -> String {
    if let Some(b) = b {
        // The common prefix, reading a missing digit of `a` as `0`.
        let mut n = 0;
        while n < b.len() && a.get(n).copied().unwrap_or(b'0') == b[n] {
            n += 1;
        }
        if n > 0 {
            let mut key = String::from_utf8_lossy(&b[..n]).into_owned();
            key.push_str(&midpoint(a.get(n..).unwrap_or(&[]), Some(&b[n..])));
            return key;
        }
    }
    // The first digits differ.
    let digit_a = a.first().and_then(|&d| digit(d)).unwrap_or(0);
    let digit_b = b.and_then(|b| b.first()).and_then(|&d| digit(d)).unwrap_or(BASE);
    // `a < b`, so `digit_a < digit_b`; saturating all the same, so a broken invariant cannot panic.
    if digit_b.saturating_sub(digit_a) > 1 {
        let mid = (digit_a + digit_b).div_ceil(2);
        return char::from(ALPHABET[mid]).to_string();
    }
    // Consecutive first digits.
    match b {
        // `b`'s first digit alone is above `a` and below `b` (which goes on past it).
        Some(b) if b.len() > 1 => char::from(b[0]).to_string(),
        _ => {
            let mut key = char::from(ALPHABET[digit_a]).to_string();
            key.push_str(&midpoint(a.get(1..).unwrap_or(&[]), None));
            key
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn p(raw: &str) -> Position {
        Position::parse(raw).unwrap()
    }

    fn check_between(lower: Option<&str>, upper: Option<&str>) -> Position {
        let (l, u) = (lower.map(p), upper.map(p));
        let key = Position::between(l.as_ref(), u.as_ref()).unwrap();
        assert!(Position::parse(key.as_str()).is_some(), "{key} is not a valid key");
        if let Some(l) = &l {
            assert!(l.as_str().as_bytes() < key.as_str().as_bytes(), "{l} < {key}");
        }
        if let Some(u) = &u {
            assert!(key.as_str().as_bytes() < u.as_str().as_bytes(), "{key} < {u}");
        }
        key
    }

    #[test]
    fn parse_refuses_what_could_not_be_a_key() {
        for bad in ["", "A", "i0", "a-b", "é", "0"] {
            assert!(Position::parse(bad).is_none(), "{bad:?}");
        }
        assert!(Position::parse(&"z".repeat(MAX_POSITION_LEN + 1)).is_none());
        for good in ["i", "01", "zzz", "a0b"] {
            assert!(Position::parse(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn a_key_between_every_pair_of_short_keys_sits_strictly_between() {
        // Every key of up to two digits (without a trailing zero), pairwise in order.
        let mut keys: Vec<String> = Vec::new();
        for &a in ALPHABET.iter() {
            if a != b'0' {
                keys.push(char::from(a).to_string());
            }
            for &b in ALPHABET.iter().skip(1) {
                keys.push(format!("{}{}", char::from(a), char::from(b)));
            }
        }
        keys.sort();
        for (i, lower) in keys.iter().enumerate() {
            check_between(Some(lower), None);
            check_between(None, Some(lower));
            for upper in keys.iter().skip(i + 1).step_by(7) {
                check_between(Some(lower), Some(upper));
            }
            if let Some(next) = keys.get(i + 1) {
                check_between(Some(lower), Some(next));
            }
        }
    }

    #[test]
    fn tricky_neighbours_still_leave_room() {
        for (lower, upper) in
            [("a", "a01"), ("a", "a0001"), ("z", "z1"), ("zz", "zz01"), ("1", "2"), ("y", "z"), ("a0b", "a0c")]
        {
            check_between(Some(lower), Some(upper));
        }
        check_between(None, Some("01"));
        check_between(None, Some("0001"));
        check_between(Some("zzzz"), None);
    }

    #[test]
    fn repeated_inserts_at_one_spot_keep_a_strict_order() {
        // Always between the same lower key and the last key made: the worst case for growth.
        let lower = p("i");
        let mut upper = p("j");
        for _ in 0..500 {
            let key = Position::between(Some(&lower), Some(&upper)).unwrap();
            assert!(lower < key && key < upper);
            upper = key;
        }
        assert!(upper.as_str().len() < 200, "{} characters", upper.as_str().len());
        // And always at the start.
        let mut first = p("i");
        for _ in 0..500 {
            let key = Position::between(None, Some(&first)).unwrap();
            assert!(key < first);
            first = key;
        }
    }

    #[test]
    fn appends_grow_logarithmically_and_stay_ordered() {
        let mut last = Position::first();
        for i in 1..=100_000 {
            let next = Position::after(&last).unwrap();
            assert!(last.as_str().as_bytes() < next.as_str().as_bytes(), "{last} < {next}");
            assert!(Position::parse(next.as_str()).is_some(), "{next}");
            last = next;
            for (after, most) in [(1_000, 5), (10_000, 7)] {
                if i == after {
                    assert!(last.as_str().len() <= most, "after {after} appends: {last}");
                }
            }
        }
        assert!(last.as_str().len() <= 9, "after 100,000 appends: {last}");
        assert!(!last.is_long());
    }

    #[test]
    fn an_append_after_any_key_sorts_after_it() {
        for raw in [
            "i",
            "y",
            "z",
            "z1",
            "zy",
            "zz",
            "zzz",
            "j5",
            "zyzz",
            "z0z",
            "zz0001",
            "y9zzzzzzzz",
            "zzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            let last = p(raw);

            let next = Position::after(&last).unwrap();

            assert!(last.as_str().as_bytes() < next.as_str().as_bytes(), "{last} < {next}");
            assert!(Position::parse(next.as_str()).is_some(), "{next}");
        }
    }

    /// Checks a spread of `n` keys between `lower` and `upper`: strictly ascending, strictly within
    /// the bounds, valid, of one length no longer than a spread hands out.
    fn check_spread(lower: Option<&Position>, upper: Option<&Position>, n: usize) -> Vec<Position> {
        let keys = Position::spread(lower, upper, n).unwrap();
        assert_eq!(keys.len(), n);
        for key in &keys {
            assert!(Position::parse(key.as_str()).is_some(), "{key} is not a valid key");
            assert_eq!(key.as_str().len(), keys[0].as_str().len(), "{key} differs in length");
            assert!(key.as_str().len() <= SPREAD_POSITION_LEN, "{key} is too long");
            assert!(!key.is_long());
        }
        for pair in keys.windows(2) {
            assert!(pair[0].as_str().as_bytes() < pair[1].as_str().as_bytes(), "{} < {}", pair[0], pair[1]);
        }
        if let (Some(lower), Some(first)) = (lower, keys.first()) {
            assert!(lower.as_str().as_bytes() < first.as_str().as_bytes(), "{lower} < {first}");
        }
        if let (Some(upper), Some(last)) = (upper, keys.last()) {
            assert!(last.as_str().as_bytes() < upper.as_str().as_bytes(), "{last} < {upper}");
        }
        keys
    }

    #[test]
    fn a_spread_between_every_pair_of_short_keys_sits_strictly_between_in_order() {
        let mut keys: Vec<String> = Vec::new();
        for &a in ALPHABET.iter() {
            if a != b'0' {
                keys.push(char::from(a).to_string());
            }
            for &b in ALPHABET.iter().skip(1) {
                keys.push(format!("{}{}", char::from(a), char::from(b)));
            }
        }
        keys.sort();
        let keys: Vec<Position> = keys.iter().map(|k| p(k)).collect();
        for n in [1, 3, 36] {
            for (i, lower) in keys.iter().enumerate() {
                check_spread(Some(lower), None, n);
                check_spread(None, Some(lower), n);
                for upper in keys.iter().skip(i + 1).step_by(11) {
                    check_spread(Some(lower), Some(upper), n);
                }
                if let Some(next) = keys.get(i + 1) {
                    check_spread(Some(lower), Some(next), n);
                }
            }
        }
    }

    #[test]
    fn a_spread_is_as_short_as_its_room_allows() {
        // A digit of room around every key: up to 35 keys take two digits over the whole board, up
        // to 1295 three.
        assert_eq!(check_spread(None, None, 1)[0].as_str().len(), 2);
        assert_eq!(check_spread(None, None, 35)[0].as_str().len(), 2);
        assert_eq!(check_spread(None, None, 36)[0].as_str().len(), 3);
        assert_eq!(check_spread(None, None, 1295)[0].as_str().len(), 3);
        assert_eq!(check_spread(None, None, 1296)[0].as_str().len(), 4);
        assert_eq!(check_spread(None, None, 100_000)[0].as_str().len(), 5);
        // Between long neighbours, keys just past their common prefix.
        let keys = check_spread(Some(&p("abcd1")), Some(&p("abcd2")), 3);
        assert_eq!(keys[0].as_str().len(), 7);
        assert!(keys.iter().all(|k| k.as_str().starts_with("abcd1")));
        // The keys split their range evenly: the gaps differ by at most the trailing-zero nudge.
        let keys = check_spread(None, None, 5);
        let values: Vec<u128> = keys.iter().map(|k| prefix_value(k, 2)).collect();
        let gaps: Vec<u128> = values.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().max().unwrap() - gaps.iter().min().unwrap() <= 1, "{gaps:?}");
    }

    #[test]
    fn a_spread_leaves_every_gap_room_for_many_inserts() {
        // The point of a spread: inserting into one of its gaps over and over takes a couple of
        // dozen inserts before a key is long again.
        for (lower, upper, n) in [(None, None, 1000), (Some("i"), Some("i1"), 9), (Some("zzzz"), None, 30)] {
            let (lower, upper) = (lower.map(p), upper.map(p));
            let keys = check_spread(lower.as_ref(), upper.as_ref(), n);
            let mut bounds = vec![lower.clone()];
            bounds.extend(keys.iter().cloned().map(Some));
            bounds.push(upper.clone());
            for gap in bounds.windows(2) {
                let mut top = gap[1].clone();
                for insert in 0..20 {
                    let key = Position::between(gap[0].as_ref(), top.as_ref()).unwrap();
                    assert!(!key.is_long(), "insert {insert} into {gap:?} made {key}");
                    top = Some(key);
                }
            }
        }
    }

    #[test]
    fn a_spread_between_bounds_too_close_is_refused_and_a_whole_board_spread_never_is() {
        let (a, b) = (p("aaaaaaaa1"), p("aaaaaaaa2"));
        assert_eq!(Position::spread(Some(&a), Some(&b), 1), Err(PositionError::TooLong));
        // One digit of room below the longest length is not enough for even one key; two are
        // enough for 35.
        let (a, b) = (p("aaaaaa1"), p("aaaaaa2"));
        assert_eq!(Position::spread(Some(&a), Some(&b), 1), Err(PositionError::TooLong));
        let (a, b) = (p("aaaaa1"), p("aaaaa2"));
        check_spread(Some(&a), Some(&b), 35);
        assert_eq!(Position::spread(Some(&a), Some(&b), 36), Err(PositionError::TooLong));
        assert_eq!(Position::spread(Some(&p("zzzzzzzz")), None, 1), Err(PositionError::TooLong));
        assert_eq!(Position::spread(None, Some(&p("00000001")), 1), Err(PositionError::TooLong));
        check_spread(None, None, 1_000_000);
    }

    #[test]
    fn a_spread_of_nothing_is_empty_and_bounds_out_of_order_are_refused() {
        assert_eq!(Position::spread(Some(&p("a")), Some(&p("b")), 0), Ok(Vec::new()));
        assert_eq!(Position::spread(Some(&p("b")), Some(&p("a")), 3), Err(PositionError::NotOrdered));
        assert_eq!(Position::spread(Some(&p("b")), Some(&p("b")), 3), Err(PositionError::NotOrdered));
    }

    #[test]
    fn spreads_between_random_neighbours_keep_every_promise() {
        // Neighbours sharing long prefixes, as a board that was inserted into at one spot has.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..20_000 {
            let prefix: String = (0..next(10)).map(|_| char::from(ALPHABET[next(36) as usize])).collect();
            let mut key = || {
                let tail: String = (0..=next(4)).map(|_| char::from(ALPHABET[next(36) as usize])).collect();
                let raw = format!("{prefix}{tail}");
                Position::parse(raw.trim_end_matches('0')).filter(|_| !raw.trim_end_matches('0').is_empty())
            };
            let (Some(a), Some(b)) = (key(), key()) else { continue };
            let (lower, upper) = if a < b { (a, b) } else { (b, a) };
            let n = 1 + next(50) as usize;
            let bounds = match next(3) {
                0 => (Some(&lower), None),
                1 => (None, Some(&upper)),
                _ => (Some(&lower), Some(&upper)),
            };
            if lower == upper && bounds.0.is_some() && bounds.1.is_some() {
                continue;
            }
            match Position::spread(bounds.0, bounds.1, n) {
                Ok(_) => {
                    check_spread(bounds.0, bounds.1, n);
                }
                Err(PositionError::TooLong) => {
                    // Refused only when even the longest keys leave too little room.
                    let floor = bounds.0.map_or(0, |l| prefix_value(l, SPREAD_POSITION_LEN));
                    let ceiling = bounds.1.map_or(u128::MAX, |u| prefix_value(u, SPREAD_POSITION_LEN) + 1);
                    assert!(
                        ceiling.saturating_sub(floor) < SPREAD_ROOM * (n as u128 + 1),
                        "{bounds:?} refused for {n}"
                    );
                }
                Err(PositionError::NotOrdered) => panic!("{bounds:?} are in order"),
            }
        }
    }

    #[test]
    fn neighbours_out_of_order_are_refused() {
        assert_eq!(Position::between(Some(&p("b")), Some(&p("a"))), Err(PositionError::NotOrdered));
        assert_eq!(Position::between(Some(&p("b")), Some(&p("b"))), Err(PositionError::NotOrdered));
    }
}
