//! Verifying a chain: records are fed in `seq` order, one at a time, so a log of any length is
//! checked in constant memory.
//!
//! The chain is checked from the first record fed, whatever its `seq`: retention archives the oldest
//! records (whole partitions, see the README), and what remains is verified from an **anchor** — the
//! first remaining record's `seq` and its `prev_hash`, which is the `hash` of the last archived
//! record. The verdict reports the anchor so that an auditor can match it against the archived
//! segment. A chain that still starts at `seq` 1 is anchored at the genesis hash, not at whatever the
//! record claims.

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
        Verdict { checked: self.checked, anchor: self.anchor, first_bad_seq }
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
        assert_eq!(verify(&records, head), Verdict { checked: 5, anchor, first_bad_seq: None });
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
}
