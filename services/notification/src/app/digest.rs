//! Daily digests: each user on the daily mode gets, at their hour in their time zone, one mail with
//! the day's unread notifications and their open tasks due that day or overdue, and nothing when
//! there is nothing. A schedule is claimed (so one instance composes it), its local day recorded
//! (so a day never has two digests, whatever the clocks or a changed schedule do), its mail queued
//! for the ordinary senders and its next digest set, all in one transaction.

use time::OffsetDateTime;

use super::Result;
use super::ports::{DigestTx, DueDigest};
use crate::domain::digest::{MAX_DIGEST_ITEMS, Schedule};

/// Composes up to `limit` digests due at `now`; how many schedules were claimed.
///
/// A digest covers the notifications from the end of the last one (or from when the daily mode was
/// chosen) until `now`: each notification is in one digest at most, even after an outage that
/// delayed one. After an outage of days, one digest goes, for the day it is composed on.
///
/// # Errors
///
/// What the store answers; nothing of the round is kept then, and the next round tries again.
pub async fn compose_digests(tx: &mut dyn DigestTx, now: OffsetDateTime, limit: u32) -> Result<usize> {
    let due = tx.claim_digests(now, limit).await?;
    for digest in &due {
        compose(tx, digest, now).await?;
    }
    Ok(due.len())
}

async fn compose(tx: &mut dyn DigestTx, digest: &DueDigest, now: OffsetDateTime) -> Result<()> {
    let schedule = Schedule::new(digest.hour, &digest.time_zone).unwrap_or_else(|error| {
        // A zone a newer database dropped (or renamed): the same hour in UTC beats no digest.
        tracing::warn!(user_id = %digest.user_id, time_zone = %digest.time_zone, %error, "digest schedule read as UTC");
        Schedule::new(digest.hour.min(23), "UTC").unwrap_or_default()
    });
    // The day of the digest is the day of its hour, even when it is composed late.
    let day = schedule.day_of(digest.due_at.min(now));
    let next = schedule.next_after(now.max(digest.due_at)).map(|next| next.at);
    let Some(day) = day else {
        tx.reschedule(digest.user_id, next, None).await?;
        return Ok(());
    };
    if !tx.record_digest(digest.user_id, day, now).await? {
        // That day had its digest (the schedule moved within it): what happened since waits for
        // the next one.
        metrics::counter!("ordo_notification_digests_total", "outcome" => "duplicate").increment(1);
        tx.reschedule(digest.user_id, next, None).await?;
        return Ok(());
    }
    let since = digest.since.unwrap_or(digest.due_at - time::Duration::days(1));
    let due_before = schedule.end_of(day).unwrap_or(now);
    let content = tx.digest_content(digest.user_id, since, now, due_before, MAX_DIGEST_ITEMS).await?;
    let outcome = if content.is_empty() {
        "empty"
    } else {
        tx.queue_digest(digest.user_id, day, &content, now).await?;
        "queued"
    };
    metrics::counter!("ordo_notification_digests_total", "outcome" => outcome).increment(1);
    tx.reschedule(digest.user_id, next, Some(now)).await
}
