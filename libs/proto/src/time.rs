//! Conversions between `time`'s `OffsetDateTime` and protobuf's `Timestamp`, written once for every
//! service and the gateway.

use prost_types::Timestamp;
use time::OffsetDateTime;

/// `time` as a protobuf timestamp.
pub fn timestamp(time: OffsetDateTime) -> Timestamp {
    // `nanosecond()` is below 10^9, so it always fits an i32.
    Timestamp { seconds: time.unix_timestamp(), nanos: i32::try_from(time.nanosecond()).unwrap_or(0) }
}

/// The time a protobuf timestamp names, or `None` when it is out of `time`'s range or its nanos
/// are out of `0..10^9`.
pub fn offset_date_time(timestamp: &Timestamp) -> Option<OffsetDateTime> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return None;
    }
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_survives_the_round_trip() {
        let time = time::macros::datetime!(2026-12-03 13:40:05.123_456_789 UTC);
        assert_eq!(offset_date_time(&timestamp(time)), Some(time));
    }

    #[test]
    fn times_before_the_epoch_keep_positive_nanos() {
        let time = time::macros::datetime!(1969-12-31 23:59:59.5 UTC);
        let ts = timestamp(time);
        assert_eq!((ts.seconds, ts.nanos), (-1, 500_000_000));
        assert_eq!(offset_date_time(&ts), Some(time));
    }

    #[test]
    fn out_of_range_timestamps_are_refused() {
        assert_eq!(offset_date_time(&Timestamp { seconds: i64::MAX, nanos: 0 }), None);
        assert_eq!(offset_date_time(&Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(offset_date_time(&Timestamp { seconds: 0, nanos: 1_000_000_000 }), None);
    }
}
