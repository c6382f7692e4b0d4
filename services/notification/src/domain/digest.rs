//! How a user's notification mail is delivered: at once (one mail per task's window), once a day as
//! a digest at an hour of their own time zone, or not at all; when the next digest is due, which
//! local day it is for, and what it covers.
//!
//! Local days follow the IANA time zone database bundled into the binary (every instance of one
//! build agrees on every offset): a digest at 08:00 in Europe/Paris is at 07:00 UTC in winter and
//! 06:00 UTC in summer. On the day clocks skip the hour (spring forward, 02:00 → 03:00), a digest set
//! for 02:00 comes at 03:00, the first instant after the gap; on the day an hour repeats (fall back),
//! it comes at the first of the two. Either way, each local day has one digest.

use jiff::civil::Date as CivilDate;
use jiff::tz::TimeZone;
use time::{Date, Month, OffsetDateTime};

use uuid::Uuid;

use super::Kind;
use super::email::MailItem;

/// The longest time zone name accepted (the longest IANA name is 32 characters).
pub const MAX_TIME_ZONE_CHARS: usize = 64;
/// The hour of a new daily schedule, before the user sets one.
pub const DEFAULT_HOUR: u8 = 8;
/// The time zone of a user who never set one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";
/// The most notifications, and the most due or overdue tasks, one digest lists; more are counted
/// ("and 12 more").
pub const MAX_DIGEST_ITEMS: u32 = 50;

/// How a user's notification mail goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmailMode {
    /// Each notification in the mail of its task's window, minutes after it happened.
    #[default]
    Immediate,
    /// One digest a day at the user's hour, in their time zone.
    Daily,
    /// No notification mail.
    Off,
}

impl EmailMode {
    /// Every mode.
    pub const ALL: [EmailMode; 3] = [EmailMode::Immediate, EmailMode::Daily, EmailMode::Off];

    /// The API's (and the database's) name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailMode::Immediate => "immediate",
            EmailMode::Daily => "daily",
            EmailMode::Off => "off",
        }
    }

    /// The mode named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        EmailMode::ALL.into_iter().find(|mode| mode.as_str() == name)
    }
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not an hour of the day.
    #[error("must be an hour from 0 to 23")]
    Hour,
    /// Not a time zone of the IANA database.
    #[error("is not a time zone of the IANA database (such as Europe/Paris or America/New_York)")]
    TimeZone,
}

/// When a user's digest goes: an hour of the day in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    hour: u8,
    name: String,
    zone: TimeZone,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.hour == other.hour && self.name == other.name
    }
}

impl Eq for Schedule {}

impl Default for Schedule {
    fn default() -> Self {
        Self { hour: DEFAULT_HOUR, name: DEFAULT_TIME_ZONE.to_owned(), zone: TimeZone::UTC }
    }
}

/// One digest: the instant it is due, and the local day it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// When it goes.
    pub at: OffsetDateTime,
    /// The day it is for, in the schedule's time zone.
    pub day: Date,
}

impl Schedule {
    /// `hour` (0 to 23) in the time zone named `time_zone` (an IANA name, as `Europe/Paris`).
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Hour`] past 23; [`ScheduleError::TimeZone`] for a name longer than
    /// [`MAX_TIME_ZONE_CHARS`] or not in the database.
    pub fn new(hour: u8, time_zone: &str) -> Result<Self, ScheduleError> {
        if hour > 23 {
            return Err(ScheduleError::Hour);
        }
        if time_zone.is_empty() || time_zone.len() > MAX_TIME_ZONE_CHARS {
            return Err(ScheduleError::TimeZone);
        }
        let zone = TimeZone::get(time_zone).map_err(|_| ScheduleError::TimeZone)?;
        // The database's own spelling (names match whatever their case).
        let name = zone.iana_name().unwrap_or(time_zone).to_owned();
        Ok(Self { hour, name, zone })
    }

    /// The hour of the day.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The time zone's IANA name.
    pub fn time_zone(&self) -> &str {
        &self.name
    }

    /// The first digest after `now`: today's hour in the time zone if it is still to come, else
    /// tomorrow's.
    pub fn next_after(&self, now: OffsetDateTime) -> Option<Occurrence> {
        let today = timestamp(now)?.to_zoned(self.zone.clone()).date();
        let first = self.on(today)?;
        if first.at > now { Some(first) } else { self.on(today.tomorrow().ok()?) }
    }

    /// The local day of instant `at` in the schedule's time zone.
    pub fn day_of(&self, at: OffsetDateTime) -> Option<Date> {
        date(timestamp(at)?.to_zoned(self.zone.clone()).date())
    }

    /// The end of local day `day` (the start of the next) in the schedule's time zone: a task due
    /// before it is due that day.
    pub fn end_of(&self, day: Date) -> Option<OffsetDateTime> {
        let next = CivilDate::new(
            i16::try_from(day.year()).ok()?,
            i8::try_from(u8::from(day.month())).ok()?,
            i8::try_from(day.day()).ok()?,
        )
        .ok()?
        .tomorrow()
        .ok()?;
        let at = self.zone.to_ambiguous_timestamp(next.at(0, 0, 0, 0)).compatible().ok()?;
        OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
    }

    /// How the digest of local day `day`, composed at `at`, words a task's due date, in the
    /// schedule's time zone: "due today at 17:00", "overdue since 09:00" (earlier that day), or
    /// "overdue since Friday 4 December".
    pub fn due_label(&self, day: Date, at: OffsetDateTime, due_at: OffsetDateTime) -> String {
        let Some(local) = timestamp(due_at).map(|ts| ts.to_zoned(self.zone.clone())) else {
            return String::new();
        };
        let clock = format!("{:02}:{:02}", local.hour(), local.minute());
        let due_day = date(local.date());
        match (due_at < at, due_day) {
            (false, Some(due_day)) if due_day == day => format!("due today at {clock}"),
            (false, Some(due_day)) => format!("due {} at {clock}", long(due_day)),
            (true, Some(due_day)) if due_day == day => format!("overdue since {clock}"),
            (true, Some(due_day)) => format!("overdue since {}", long(due_day)),
            (_, None) => String::new(),
        }
    }

    /// The digest of local day `day`: at the hour of that day, or, when the clocks skip it, at the
    /// first instant after the gap; when it repeats, at the first of the two.
    fn on(&self, day: CivilDate) -> Option<Occurrence> {
        let local = day.at(i8::try_from(self.hour).ok()?, 0, 0, 0);
        let at = self.zone.to_ambiguous_timestamp(local).compatible().ok()?;
        Some(Occurrence { at: OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()?, day: date(day)? })
    }
}

fn timestamp(at: OffsetDateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()
}

fn date(day: CivilDate) -> Option<Date> {
    let month = Month::try_from(u8::try_from(day.month()).ok()?).ok()?;
    Date::from_calendar_date(i32::from(day.year()), month, u8::try_from(day.day()).ok()?).ok()
}

/// How a user's notification mail goes out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmailDelivery {
    /// At once, daily, or not at all.
    pub mode: EmailMode,
    /// The digest's hour and time zone (kept while the mode is not daily).
    pub schedule: Schedule,
    /// When the next digest is due, while the mode is daily.
    pub next_digest_at: Option<OffsetDateTime>,
}

impl EmailDelivery {
    /// `mode` on `schedule`, its next digest due after `now` when daily.
    pub fn new(mode: EmailMode, schedule: Schedule, now: OffsetDateTime) -> Self {
        let next_digest_at = match mode {
            EmailMode::Daily => schedule.next_after(now).map(|next| next.at),
            EmailMode::Immediate | EmailMode::Off => None,
        };
        Self { mode, schedule, next_digest_at }
    }
}

/// A task as a digest lists it: due today or overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    /// The task's key, as `ORD-12`.
    pub task_key: String,
    /// Its title.
    pub title: String,
    /// Its due date.
    pub due_at: OffsetDateTime,
}

/// A notification as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestNotification {
    /// Its id.
    pub id: Uuid,
    /// Its kind.
    pub kind: Kind,
    /// How it reads.
    pub item: MailItem,
}

/// What a digest lists, and how many more it counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestContent {
    /// The notifications of the day still unread, oldest first.
    pub notifications: Vec<DigestNotification>,
    /// Notifications past the most a digest lists.
    pub more_notifications: u32,
    /// The user's open tasks due by the end of the day or overdue, soonest first.
    pub tasks: Vec<DueItem>,
    /// Tasks past the most a digest lists.
    pub more_tasks: u32,
}

impl DigestContent {
    /// Nothing to tell: no digest is sent.
    pub fn is_empty(&self) -> bool {
        self.notifications.is_empty() && self.more_notifications == 0 && self.tasks.is_empty() && self.more_tasks == 0
    }
}

/// A digest's subject: the day, and how many notifications and tasks it holds.
pub fn digest_subject(day: Date, notifications: u64, tasks: u64) -> String {
    let mut parts = Vec::with_capacity(2);
    if notifications > 0 {
        parts.push(plural(notifications, "notification"));
    }
    if tasks > 0 {
        parts.push(format!("{} due", plural(tasks, "task")));
    }
    format!("Your Ordo digest for {}: {}", long(day), parts.join(", "))
}

/// `day` in words, as "Monday 7 December".
fn long(day: Date) -> String {
    format!("{} {} {}", day.weekday(), day.day(), day.month())
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::{date, datetime};

    use super::*;

    fn schedule(hour: u8, zone: &str) -> Schedule {
        Schedule::new(hour, zone).unwrap()
    }

    #[test]
    fn the_next_digest_is_today_s_hour_while_it_is_to_come_else_tomorrow_s() {
        let paris = schedule(8, "Europe/Paris");

        // 06:59 UTC is 07:59 in Paris in winter (UTC+1).
        let before = paris.next_after(datetime!(2026-12-07 06:59 UTC)).unwrap();
        let at = paris.next_after(datetime!(2026-12-07 07:00 UTC)).unwrap();

        assert_eq!(before, Occurrence { at: datetime!(2026-12-07 07:00 UTC), day: date!(2026 - 12 - 07) });
        assert_eq!(at, Occurrence { at: datetime!(2026-12-08 07:00 UTC), day: date!(2026 - 12 - 08) });
    }

    #[test]
    fn the_local_day_is_the_time_zone_s_not_utc_s() {
        // 23:30 UTC on the 6th is already 08:30 on the 7th in Tokyo (UTC+9): today's 08:00 is past.
        let tokyo = schedule(8, "Asia/Tokyo");

        let next = tokyo.next_after(datetime!(2026-12-06 23:30 UTC)).unwrap();

        assert_eq!(next, Occurrence { at: datetime!(2026-12-07 23:00 UTC), day: date!(2026 - 12 - 08) });
    }

    #[test]
    fn the_hour_stays_local_across_a_daylight_saving_change() {
        // Europe/Paris moves from UTC+1 to UTC+2 on 28 March 2027.
        let paris = schedule(8, "Europe/Paris");

        let saturday = paris.next_after(datetime!(2027-03-27 00:00 UTC)).unwrap();
        let sunday = paris.next_after(saturday.at).unwrap();
        let monday = paris.next_after(sunday.at).unwrap();

        assert_eq!(saturday.at, datetime!(2027-03-27 07:00 UTC));
        assert_eq!(sunday, Occurrence { at: datetime!(2027-03-28 06:00 UTC), day: date!(2027 - 03 - 28) });
        assert_eq!(monday.at, datetime!(2027-03-29 06:00 UTC));
    }

    #[test]
    fn an_hour_the_clocks_skip_comes_after_the_gap_once() {
        // New York skips 02:00-03:00 on 14 March 2027 (EST to EDT): 02:00 that day is 03:00 EDT.
        let new_york = schedule(2, "America/New_York");

        let before = new_york.next_after(datetime!(2027-03-12 12:00 UTC)).unwrap();
        let skipped = new_york.next_after(before.at).unwrap();
        let after = new_york.next_after(skipped.at).unwrap();

        assert_eq!(before.at, datetime!(2027-03-13 07:00 UTC));
        assert_eq!(skipped, Occurrence { at: datetime!(2027-03-14 07:00 UTC), day: date!(2027 - 03 - 14) });
        assert_eq!(after, Occurrence { at: datetime!(2027-03-15 06:00 UTC), day: date!(2027 - 03 - 15) });
    }

    #[test]
    fn an_hour_that_repeats_comes_at_the_first_of_the_two_once() {
        // New York repeats 01:00-02:00 on 1 November 2026 (EDT to EST).
        let new_york = schedule(1, "America/New_York");

        let repeated = new_york.next_after(datetime!(2026-10-31 12:00 UTC)).unwrap();
        let after = new_york.next_after(repeated.at).unwrap();

        assert_eq!(repeated, Occurrence { at: datetime!(2026-11-01 05:00 UTC), day: date!(2026 - 11 - 01) });
        // The second 01:00 (06:00 UTC) is not another digest of the same day.
        assert_eq!(new_york.next_after(datetime!(2026-11-01 05:30 UTC)).unwrap().day, date!(2026 - 11 - 02));
        assert_eq!(after, Occurrence { at: datetime!(2026-11-02 06:00 UTC), day: date!(2026 - 11 - 02) });
    }

    #[test]
    fn a_local_day_ends_at_the_next_local_midnight_however_long_it_is() {
        let paris = schedule(8, "Europe/Paris");

        // 28 March 2027 has 23 hours in Paris: it starts at 23:00 UTC on the 27th, ends at 22:00 UTC.
        assert_eq!(paris.day_of(datetime!(2027-03-27 23:30 UTC)), Some(date!(2027 - 03 - 28)));
        assert_eq!(paris.end_of(date!(2027 - 03 - 28)), Some(datetime!(2027-03-28 22:00 UTC)));
        assert_eq!(paris.end_of(date!(2026 - 12 - 31)), Some(datetime!(2026-12-31 23:00 UTC)));
    }

    #[test]
    fn a_due_date_reads_in_the_user_s_time_zone_as_due_today_or_overdue() {
        let paris = schedule(8, "Europe/Paris");
        let (day, at) = (date!(2026 - 12 - 07), datetime!(2026-12-07 07:00 UTC));

        assert_eq!(paris.due_label(day, at, datetime!(2026-12-07 16:00 UTC)), "due today at 17:00");
        assert_eq!(paris.due_label(day, at, datetime!(2026-12-07 06:30 UTC)), "overdue since 07:30");
        assert_eq!(paris.due_label(day, at, datetime!(2026-12-04 09:00 UTC)), "overdue since Friday 4 December");
    }

    #[test]
    fn a_delivery_has_a_next_digest_only_when_daily() {
        let now = datetime!(2026-12-07 12:00 UTC);

        let daily = EmailDelivery::new(EmailMode::Daily, schedule(18, "UTC"), now);
        let off = EmailDelivery::new(EmailMode::Off, schedule(18, "UTC"), now);

        assert_eq!(daily.next_digest_at, Some(datetime!(2026-12-07 18:00 UTC)));
        assert_eq!(off.next_digest_at, None);
        assert_eq!(EmailDelivery::default().mode, EmailMode::Immediate);
    }

    #[test]
    fn hours_past_23_and_unknown_or_oversized_zones_are_refused() {
        assert_eq!(Schedule::new(24, "UTC"), Err(ScheduleError::Hour));
        assert_eq!(Schedule::new(8, "Mars/Olympus_Mons"), Err(ScheduleError::TimeZone));
        assert_eq!(Schedule::new(8, ""), Err(ScheduleError::TimeZone));
        assert_eq!(Schedule::new(8, &"A".repeat(65)), Err(ScheduleError::TimeZone));
        assert_eq!(Schedule::new(8, "../../etc/passwd"), Err(ScheduleError::TimeZone));
        assert_eq!(schedule(23, "europe/paris").time_zone(), "Europe/Paris");
    }

    #[test]
    fn modes_round_trip_by_name() {
        for mode in EmailMode::ALL {
            assert_eq!(EmailMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(EmailMode::parse("weekly"), None);
    }

    #[test]
    fn the_subject_names_the_day_and_counts_what_the_digest_holds() {
        let due = DueItem { task_key: "ORD-1".into(), title: "Ship".into(), due_at: datetime!(2026-12-07 17:00 UTC) };
        let content = DigestContent { tasks: vec![due], ..DigestContent::default() };
        let counted = DigestContent { more_notifications: 2, ..DigestContent::default() };

        assert_eq!(
            digest_subject(date!(2026 - 12 - 07), 5, 1),
            "Your Ordo digest for Monday 7 December: 5 notifications, 1 task due"
        );
        assert_eq!(digest_subject(date!(2026 - 12 - 07), 0, 2), "Your Ordo digest for Monday 7 December: 2 tasks due");
        assert!(DigestContent::default().is_empty() && !content.is_empty() && !counted.is_empty());
    }
}
