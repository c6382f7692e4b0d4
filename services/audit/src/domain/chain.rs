//! Verifying a chain: records are fed in `seq` order, one at a time, so a log of any length is
//! checked in constant memory.
//!
//! The chain is checked from the first record fed, whatever its `seq`: retention archives the oldest
//! records (whole partitions, see the README), and what remains is verified from an **anchor** — the
//! first remaining record's `seq` and its `prev_hash`, which is the `hash` of the last archived
//! record. The verdict reports the anchor so that an auditor can match it against the archived
//! segment. A chain that still starts at `seq` 1 is anchored at the genesis hash, not at whatever the
//! record claims.
//!
//! A long chain is verified in parts: each part ends after a number of records and names the `seq`
//! the next one starts at ([`Verdict::next_seq`]); the next part is anchored at the stored `hash` of
//! the record before its first, which the part before checked against that record's fields. The
//! parts together check exactly what one pass over the whole chain does.

use super::{GENESIS, Record};

/// Where a verification started: the first record checked and the hash it links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The lowest `seq` present, the first one checked.
    pub seq: u64,
    /// The `prev_hash` that record links to: the genesis hash (all zero) at `seq` 1, otherwise the
    /// `hash` of record `seq - 1`, which is the last record of the archived segment before it.
    pub prev_hash: [u8; 32],
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Records read.
    pub checked: u64,
    /// Where the check started; `None` when there was no record at all.
    pub anchor: Option<Anchor>,
    /// The first position where the chain is broken: a record whose fields do not give its hash, a
    /// record that does not link to the one before, or a missing record (a gap, or records cut off
    /// the end).
    pub first_bad_seq: Option<u64>,
    /// Where the next part of the check starts, when this part stopped at its limit before the head
    /// with the chain intact so far; `None` once the check reached the head (or found a break).
    pub next_seq: Option<u64>,
}

impl Verdict {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.first_bad_seq.is_none()
    }
}

/// Checks records fed in `seq` order.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_seq: u64,
    prev_hash: [u8; 32],
    anchor: Option<Anchor>,
    checked: u64,
    first_bad_seq: Option<u64>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS, anchor: None, checked: 0, first_bad_seq: None }
    }
}

impl Verifier {
    /// A verifier that anchors at the first record it is fed (see the module documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that continues a check at `seq`, after a part that ended with the record before
    /// it, whose stored `hash` is `prev_hash`.
    pub fn resume(seq: u64, prev_hash: [u8; 32]) -> Self {
        Self { expected_seq: seq, prev_hash, anchor: Some(Anchor { seq, prev_hash }), checked: 0, first_bad_seq: None }
    }

    /// Checks the next record; `false` once the chain is known broken (the caller may stop reading).
    pub fn check(&mut self, record: &Record) -> bool {
        if self.first_bad_seq.is_some() {
            return false;
        }
        if self.anchor.is_none() {
            // The records before this one were archived (or there were none): take its link on
            // trust, and report it. Record 1 links to the genesis hash, never to what it claims.
            let prev_hash = if record.seq <= 1 { GENESIS } else { record.prev_hash };
            let anchor = Anchor { seq: record.seq.max(1), prev_hash };
            self.anchor = Some(anchor);
            self.expected_seq = anchor.seq;
            self.prev_hash = anchor.prev_hash;
        }
        self.checked += 1;
        if record.seq != self.expected_seq {
            // A record is missing (or the order is not the chain's).
            self.first_bad_seq = Some(self.expected_seq.min(record.seq));
        } else if record.prev_hash != self.prev_hash || !record.hash_matches() {
            self.first_bad_seq = Some(record.seq);
        } else {
            self.prev_hash = record.hash;
            self.expected_seq += 1;
        }
        self.first_bad_seq.is_none()
    }

    /// The verdict, given the chain's head as stored (`seq` and `hash` of the last record appended):
    /// records cut off the end leave the head pointing past the last record read.
    pub fn finish(self, head_seq: u64, head_hash: [u8; 32]) -> Verdict {
        let mut first_bad_seq = self.first_bad_seq;
        let last = self.expected_seq - 1;
        if first_bad_seq.is_none() && (head_seq != last || head_hash != self.prev_hash) {
            first_bad_seq = Some(last.min(head_seq) + 1);
        }
        Verdict { checked: self.checked, anchor: self.anchor, first_bad_seq, next_seq: None }
    }

    /// The verdict of a part that stopped at its limit before the head: the head is only compared
    /// by the part that reaches it, and the next part starts after the last record checked.
    pub fn pause(self) -> Verdict {
        if self.first_bad_seq.is_some() {
            return Verdict {
                checked: self.checked,
                anchor: self.anchor,
                first_bad_seq: self.first_bad_seq,
                next_seq: None,
            };
        }
        Verdict { checked: self.checked, anchor: self.anchor, first_bad_seq: None, next_seq: Some(self.expected_seq) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::entry;
    use super::*;

    fn chain(n: u32) -> Vec<Record> {
        let mut records: Vec<Record> = Vec::new();
        for i in 1..=n {
            let prev = records.last().map_or(GENESIS, |r| r.hash);
            records.push(Record::append(entry(i), u64::from(i), prev));
        }
        records
    }

    fn verify(records: &[Record], head: (u64, [u8; 32])) -> Verdict {
        let mut verifier = Verifier::new();
        for record in records {
            if !verifier.check(record) {
                break;
            }
        }
        verifier.finish(head.0, head.1)
    }

    #[test]
    fn an_honest_chain_passes_and_so_does_an_empty_one() {
        let records = chain(5);
        let head = (5, records[4].hash);
        let anchor = Some(Anchor { seq: 1, prev_hash: GENESIS });
        assert_eq!(verify(&records, head), Verdict { checked: 5, anchor, first_bad_seq: None, next_seq: None });
        let empty = verify(&[], (0, GENESIS));
        assert!(empty.ok());
        assert_eq!(empty.anchor, None);
    }

    #[test]
    fn a_chain_whose_oldest_records_were_archived_verifies_from_its_first_record_and_reports_the_anchor() {
        let records = chain(8);
        let head = (8, records[7].hash);
        let verdict = verify(&records[3..], head);
        assert_eq!(verdict.first_bad_seq, None);
        assert_eq!(verdict.checked, 5);
        assert_eq!(verdict.anchor, Some(Anchor { seq: 4, prev_hash: records[2].hash }));
        // A gap after the anchor is still a missing record.
        let mut gapped = records[3..].to_vec();
        gapped.remove(2);
        assert_eq!(verify(&gapped, head).first_bad_seq, Some(6));
    }

    #[test]
    fn record_one_must_link_to_the_genesis_hash() {
        let mut records = chain(3);
        let head = (3, records[2].hash);
        // Rewritten to link elsewhere, with a hash that matches its new fields.
        records[0] = Record::append(records[0].entry.clone(), 1, [7; 32]);
        assert_eq!(verify(&records, head).first_bad_seq, Some(1));
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut records = chain(5);
        let head = (5, records[4].hash);
        records[2].entry.data = "{\"n\":99}".into();
        assert_eq!(verify(&records, head).first_bad_seq, Some(3));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let mut records = chain(5);
        let head = (5, records[4].hash);
        records[2].entry.actor_id = "someone else".into();
        records[2] = Record::append(records[2].entry.clone(), 3, records[2].prev_hash);
        assert_eq!(verify(&records, head).first_bad_seq, Some(4));
    }

    #[test]
    fn a_deleted_record_is_named() {
        let mut records = chain(5);
        let head = (5, records[4].hash);
        records.remove(1);
        assert_eq!(verify(&records, head).first_bad_seq, Some(2));
    }

    #[test]
    fn records_cut_off_the_end_are_noticed_through_the_head() {
        let records = chain(5);
        let head = (5, records[4].hash);
        assert_eq!(verify(&records[..3], head).first_bad_seq, Some(4));
        // The first record gone as well as all the others.
        assert_eq!(verify(&[], head).first_bad_seq, Some(1));
    }

    /// Checks `records` in parts of `limit`, each resumed as the service does: from the stored hash
    /// of the last record of the part before.
    fn verify_in_parts(records: &[Record], head: (u64, [u8; 32]), limit: usize) -> (Vec<Verdict>, Option<u64>) {
        let mut parts = Vec::new();
        let mut at = 0;
        let mut verifier = Verifier::new();
        loop {
            let part: Vec<&Record> = records.iter().skip(at).take(limit).collect();
            for record in &part {
                if !verifier.check(record) {
                    break;
                }
            }
            at += part.len();
            if part.len() < limit || at == records.len() && records.last().is_some_and(|r| r.seq >= head.0) {
                let verdict = verifier.finish(head.0, head.1);
                let bad = verdict.first_bad_seq;
                parts.push(verdict);
                return (parts, bad);
            }
            let verdict = verifier.pause();
            parts.push(verdict);
            let Some(next) = verdict.next_seq else { return (parts, verdict.first_bad_seq) };
            let before = records.iter().find(|r| r.seq == next - 1).map_or(GENESIS, |r| r.hash);
            verifier = Verifier::resume(next, before);
        }
    }

    #[test]
    fn a_chain_checked_in_parts_passes_as_a_whole_and_each_part_says_where_the_next_starts() {
        let records = chain(10);
        let head = (10, records[9].hash);
        let (parts, bad) = verify_in_parts(&records, head, 4);
        assert_eq!(bad, None);
        let next: Vec<Option<u64>> = parts.iter().map(|p| p.next_seq).collect();
        assert_eq!(next, [Some(5), Some(9), None]);
        let checked: Vec<u64> = parts.iter().map(|p| p.checked).collect();
        assert_eq!(checked, [4, 4, 2]);
        assert_eq!(parts[1].anchor, Some(Anchor { seq: 5, prev_hash: records[3].hash }));
    }

    #[test]
    fn a_break_at_a_parts_first_record_is_found_by_that_part() {
        let mut records = chain(8);
        let head = (8, records[7].hash);
        // Record 5, the second part's first, edited with its hash recomputed: it still links to 4,
        // but 6 no longer links to it.
        records[4].entry.action = "task.deleted".into();
        records[4] = Record::append(records[4].entry.clone(), 5, records[4].prev_hash);
        assert_eq!(verify_in_parts(&records, head, 4).1, Some(6));
        // Record 5 relinked elsewhere: the resumed part checks its link to record 4's stored hash.
        let mut relinked = chain(8);
        relinked[4] = Record::append(relinked[4].entry.clone(), 5, [9; 32]);
        assert_eq!(verify_in_parts(&relinked, head, 4).1, Some(5));
        // Record 4, the first part's last, edited in place: that part names it and gives no next.
        let mut edited = chain(8);
        edited[3].entry.data = "{}".into();
        let (parts, bad) = verify_in_parts(&edited, head, 4);
        assert_eq!((parts.len(), bad, parts[0].next_seq), (1, Some(4), None));
    }

    #[test]
    fn the_head_is_compared_only_by_the_part_that_reaches_it() {
        let records = chain(8);
        // Records 7 and 8 cut off the end: the head still names 8.
        let head = (8, records[7].hash);
        let (parts, bad) = verify_in_parts(&records[..6], head, 3);
        assert_eq!(parts[0].next_seq, Some(4));
        assert_eq!(bad, Some(7));
    }
}
