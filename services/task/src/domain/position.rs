//! Board order: every task of a project has a `position`, an opaque key over the digits and the
//! lower-case ASCII letters, and the board sorts tasks by it bytewise. A move computes a key strictly
//! between its new neighbours (fractional indexing), so no other task is rewritten.
//!
//! The alphabet is `0-9a-z` because its bytewise order is also its order under the
//! `ascii_general_ci` collation the column uses (the case-folding of that collation cannot reorder
//! keys without upper-case letters). Keys never end in `0`: that keeps a key strictly between any two
//! keys always possible (as with decimals, nothing lies between `0.1` and `0.10`).

use std::fmt;

/// The digits of a key, in order.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE: usize = ALPHABET.len();
/// The longest key the column holds.
pub const MAX_POSITION_LEN: usize = 1000;

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

    /// A key after `last` (the end of a board). Cheaper than the midpoint towards infinity: it
    /// bumps the first digit that can be bumped, so keys grow by one character per 35 appends.
    /// The key is never longer than `last` plus one character.
    pub fn after(last: &Position) -> Result<Self, PositionError> {
        let bytes = last.0.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let d = digit(b).unwrap_or(BASE - 1);
            if d + 1 < BASE {
                let mut key = last.0[..i].to_owned();
                key.push(char::from(ALPHABET[d + 1]));
                return Ok(Self(key));
            }
        }
        let mut key = last.0.clone();
        key.push('1');
        Self::bounded(key)
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
    fn appends_grow_slowly_and_stay_ordered() {
        let mut last = Position::first();
        for _ in 0..2000 {
            let next = Position::after(&last).unwrap();
            assert!(last < next, "{last} < {next}");
            assert!(Position::parse(next.as_str()).is_some());
            last = next;
        }
        assert!(last.as_str().len() <= 70, "{} characters", last.as_str().len());
    }

    #[test]
    fn neighbours_out_of_order_are_refused() {
        assert_eq!(Position::between(Some(&p("b")), Some(&p("a"))), Err(PositionError::NotOrdered));
        assert_eq!(Position::between(Some(&p("b")), Some(&p("b"))), Err(PositionError::NotOrdered));
    }
}
