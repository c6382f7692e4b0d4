//! The flow report of a project: how many tasks were created and completed in each interval of a
//! range, how many were open at each interval's end, how long tasks took from in progress to done,
//! what is overdue now, and the same counts by assignee and by label. Computed from the project's
//! tasks as they are now and their status history (see [`super::StatusChange`]).

use std::collections::{BTreeMap, HashMap};

use time::{Date, Duration, OffsetDateTime, Time};
use uuid::Uuid;

use super::{FieldViolation, Status};

/// The most intervals one report covers: a year by day, or years by week or month.
pub const MAX_INTERVALS: usize = 400;
/// The most entries of each breakdown (by assignee, by label): those with the most open tasks.
pub const MAX_BREAKDOWN: usize = 50;

/// How long each interval of a report is. Intervals are whole UTC days, ISO weeks (from Monday) or
/// calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// The interval named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Interval::Day, Interval::Week, Interval::Month].into_iter().find(|i| i.as_str() == name)
    }

    /// The start of the interval that holds `at`.
    pub fn start_of(self, at: OffsetDateTime) -> OffsetDateTime {
        let day = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at).date();
        let first = match self {
            Interval::Day => day,
            // At the calendar's first days there is no Monday before: the day itself.
            Interval::Week => {
                day.checked_sub(Duration::days(i64::from(day.weekday().number_days_from_monday()))).unwrap_or(day)
            }
            Interval::Month => day.replace_day(1).unwrap_or(day),
        };
        first.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// The start of the interval after the one starting at `start`; `None` past the calendar's end.
    fn after(self, start: OffsetDateTime) -> Option<OffsetDateTime> {
        let day = start.date();
        let next = match self {
            Interval::Day => day.next_day()?,
            Interval::Week => day.checked_add(Duration::days(7))?,
            Interval::Month => {
                let (year, month) = match day.month() {
                    time::Month::December => (day.year().checked_add(1)?, time::Month::January),
                    month => (day.year(), month.next()),
                };
                Date::from_calendar_date(year, month, 1).ok()?
            }
        };
        Some(next.with_time(Time::MIDNIGHT).assume_utc())
    }
}

/// The range of a report, cut into whole intervals: the first holds `from`, the last holds the
/// instant before `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRange {
    interval: Interval,
    /// Each interval's start, then the last one's end.
    bounds: Vec<OffsetDateTime>,
}

impl FlowRange {
    /// Validates a range: `from` before `to`, in at most [`MAX_INTERVALS`] intervals.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime, interval: Interval) -> Result<Self, FieldViolation> {
        if from >= to {
            return Err(FieldViolation::new("to", "must be after from"));
        }
        let too_long = || {
            FieldViolation::new(
                "from",
                format!("the range holds at most {MAX_INTERVALS} intervals of a {}", interval.as_str()),
            )
        };
        let mut bounds = vec![interval.start_of(from)];
        let mut end = bounds[0];
        while end < to {
            end = interval.after(end).ok_or_else(too_long)?;
            bounds.push(end);
            if bounds.len() > MAX_INTERVALS + 1 {
                return Err(too_long());
            }
        }
        Ok(Self { interval, bounds })
    }

    /// The intervals' length.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The first interval's start.
    pub fn start(&self) -> OffsetDateTime {
        self.bounds[0]
    }

    /// The last interval's end.
    pub fn end(&self) -> OffsetDateTime {
        self.bounds[self.bounds.len() - 1]
    }

    /// Each interval as (start, end), the end excluded.
    pub fn intervals(&self) -> impl Iterator<Item = (OffsetDateTime, OffsetDateTime)> + '_ {
        self.bounds.windows(2).map(|pair| (pair[0], pair[1]))
    }
}

/// What the report needs of one task, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub status: Status,
    pub due_at: Option<OffsetDateTime>,
    pub assignees: Vec<Uuid>,
    pub labels: Vec<String>,
}

/// One row of the status history, as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub task_id: Uuid,
    pub to: Status,
    pub at: OffsetDateTime,
}

/// The counts of one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalFlow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Tasks created in the interval.
    pub created: u64,
    /// Times a task became done in the interval.
    pub completed: u64,
    /// Tasks neither done nor cancelled at the interval's end (or now, for an interval not over).
    pub open: u64,
    /// Tasks in each status at the interval's end (or now), in the order of [`Status::ALL`]: the
    /// bands of a cumulative flow diagram.
    pub statuses: [u64; Status::ALL.len()],
}

/// How long tasks took from in progress to done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleTime {
    /// Completions in the range that had been in progress before.
    pub count: u64,
    /// The median, in seconds; `None` without completions.
    pub p50_seconds: Option<i64>,
    /// The 85th percentile, in seconds.
    pub p85_seconds: Option<i64>,
}

/// The counts of one assignee or label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Breakdown {
    /// Tasks created in the range.
    pub created: u64,
    /// Times a task became done in the range.
    pub completed: u64,
    /// Tasks open now.
    pub open: u64,
    /// Open tasks past their due date now.
    pub overdue: u64,
}

/// A project's flow over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReport {
    pub intervals: Vec<IntervalFlow>,
    pub cycle_time: CycleTime,
    /// Open tasks past their due date now.
    pub overdue: u64,
    /// By current assignee (`None`: tasks with no assignee), most open first, at most
    /// [`MAX_BREAKDOWN`].
    pub by_assignee: Vec<(Option<Uuid>, Breakdown)>,
    /// By current label, most open first, at most [`MAX_BREAKDOWN`].
    pub by_label: Vec<(String, Breakdown)>,
}

fn is_open(status: Status) -> bool {
    !matches!(status, Status::Done | Status::Cancelled)
}

/// `status`'s place in [`Status::ALL`].
fn slot(status: Status) -> usize {
    match status {
        Status::Backlog => 0,
        Status::Todo => 1,
        Status::InProgress => 2,
        Status::InReview => 3,
        Status::Done => 4,
        Status::Cancelled => 5,
    }
}

impl FlowReport {
    /// The report of `range` for a project whose tasks are `tasks` and whose status history up to
    /// the range's end is `history`, in the order it was written. A task with no history (changed by
    /// a release that kept none) counts in its current status since its creation.
    pub fn compute(range: &FlowRange, tasks: &[TaskFacts], history: &[Transition], now: OffsetDateTime) -> Self {
        let index: HashMap<Uuid, usize> = tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        // Every status change in time order (a stable sort keeps the written order of equal times),
        // with a first status for the tasks the history does not know.
        let mut known = vec![false; tasks.len()];
        let mut changes: Vec<(OffsetDateTime, usize, Status)> = Vec::with_capacity(history.len() + tasks.len());
        for row in history {
            if let Some(&i) = index.get(&row.task_id) {
                known[i] = true;
                changes.push((row.at, i, row.to));
            }
        }
        for (i, task) in tasks.iter().enumerate() {
            if !known[i] {
                changes.push((task.created_at, i, task.status));
            }
        }
        changes.sort_by_key(|(at, _, _)| *at);

        let (start, end) = (range.start(), range.end());
        let mut completed_by_task = vec![0_u64; tasks.len()];
        let mut cycles: Vec<i64> = Vec::new();
        let mut state: Vec<Option<Status>> = vec![None; tasks.len()];
        let mut started: Vec<Option<OffsetDateTime>> = vec![None; tasks.len()];
        let mut open = 0_u64;
        let mut statuses = [0_u64; Status::ALL.len()];
        let mut next = 0;
        let mut created_times: Vec<OffsetDateTime> = tasks.iter().map(|t| t.created_at).collect();
        created_times.sort_unstable();
        let mut intervals = Vec::new();
        for (interval_start, interval_end) in range.intervals() {
            // The history holds nothing after now, so an interval not over yet ends with what is
            // open now.
            let mut completed = 0;
            while let Some(&(at, i, to)) = changes.get(next) {
                if at >= interval_end {
                    break;
                }
                next += 1;
                let was_open = state[i].is_some_and(is_open);
                if is_open(to) && !was_open {
                    open += 1;
                } else if !is_open(to) && was_open {
                    open -= 1;
                }
                if to == Status::InProgress && started[i].is_none() {
                    started[i] = Some(at);
                }
                if to == Status::Done && state[i] != Some(Status::Done) {
                    if at >= start && at < end {
                        completed_by_task[i] += 1;
                        if at >= interval_start {
                            completed += 1;
                        }
                        if let Some(since) = started[i] {
                            cycles.push((at - since).whole_seconds());
                        }
                    }
                    started[i] = None;
                }
                if let Some(was) = state[i] {
                    statuses[slot(was)] -= 1;
                }
                statuses[slot(to)] += 1;
                state[i] = Some(to);
            }
            let created = (created_times.partition_point(|at| *at < interval_end)
                - created_times.partition_point(|at| *at < interval_start)) as u64;
            intervals.push(IntervalFlow {
                start: interval_start,
                end: interval_end,
                created,
                completed,
                open,
                statuses,
            });
        }

        cycles.sort_unstable();
        let percentile = |q: f64| -> Option<i64> {
            // Nearest rank: the smallest value with at least q of the values at or below it.
            let rank = (q * cycles.len() as f64).ceil() as usize;
            cycles.get(rank.max(1) - 1).copied()
        };
        let cycle_time =
            CycleTime { count: cycles.len() as u64, p50_seconds: percentile(0.5), p85_seconds: percentile(0.85) };

        let overdue_now = |t: &TaskFacts| is_open(t.status) && t.due_at.is_some_and(|due| due < now);
        let mut by_assignee: BTreeMap<Option<Uuid>, Breakdown> = BTreeMap::new();
        let mut by_label: BTreeMap<&str, Breakdown> = BTreeMap::new();
        for (i, task) in tasks.iter().enumerate() {
            let counts = Breakdown {
                created: u64::from(task.created_at >= start && task.created_at < end),
                completed: completed_by_task[i],
                open: u64::from(is_open(task.status)),
                overdue: u64::from(overdue_now(task)),
            };
            if counts == Breakdown::default() {
                continue;
            }
            let assignees: Vec<Option<Uuid>> =
                if task.assignees.is_empty() { vec![None] } else { task.assignees.iter().copied().map(Some).collect() };
            for assignee in assignees {
                by_assignee.entry(assignee).or_default().add(counts);
            }
            for label in &task.labels {
                by_label.entry(label.as_str()).or_default().add(counts);
            }
        }
        FlowReport {
            intervals,
            cycle_time,
            overdue: tasks.iter().filter(|t| overdue_now(t)).count() as u64,
            by_assignee: top(by_assignee.into_iter().collect()),
            by_label: top(by_label.into_iter().map(|(label, counts)| (label.to_owned(), counts)).collect()),
        }
    }
}

impl Breakdown {
    fn add(&mut self, other: Breakdown) {
        self.created += other.created;
        self.completed += other.completed;
        self.open += other.open;
        self.overdue += other.overdue;
    }
}

/// The [`MAX_BREAKDOWN`] entries with the most open tasks, then the most completed, then by key.
fn top<K: Ord>(mut entries: Vec<(K, Breakdown)>) -> Vec<(K, Breakdown)> {
    entries.sort_by(|(a_key, a), (b_key, b)| {
        b.open.cmp(&a.open).then(b.completed.cmp(&a.completed)).then_with(|| a_key.cmp(b_key))
    });
    entries.truncate(MAX_BREAKDOWN);
    entries
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::*;

    #[test]
    fn intervals_are_whole_days_iso_weeks_or_calendar_months() {
        let range =
            FlowRange::new(datetime!(2026-11-04 15:00 UTC), datetime!(2026-11-16 00:00 UTC), Interval::Week).unwrap();
        let starts: Vec<_> = range.intervals().map(|(start, _)| start).collect();
        assert_eq!(starts, [datetime!(2026-11-02 00:00 UTC), datetime!(2026-11-09 00:00 UTC)], "Mondays");
        assert_eq!(range.end(), datetime!(2026-11-16 00:00 UTC));

        let range =
            FlowRange::new(datetime!(2026-11-30 23:59 UTC), datetime!(2027-01-01 00:00:01 UTC), Interval::Month)
                .unwrap();
        let bounds: Vec<_> = range.intervals().collect();
        assert_eq!(
            bounds,
            [
                (datetime!(2026-11-01 00:00 UTC), datetime!(2026-12-01 00:00 UTC)),
                (datetime!(2026-12-01 00:00 UTC), datetime!(2027-01-01 00:00 UTC)),
                (datetime!(2027-01-01 00:00 UTC), datetime!(2027-02-01 00:00 UTC)),
            ]
        );
        let range =
            FlowRange::new(datetime!(2026-12-07 09:00 +1), datetime!(2026-12-07 10:00 +1), Interval::Day).unwrap();
        assert_eq!(range.start(), datetime!(2026-12-07 00:00 UTC), "the day of the instant in UTC");
        assert_eq!(range.intervals().count(), 1);
    }

    #[test]
    fn a_range_that_ends_before_it_starts_or_holds_too_many_intervals_is_refused() {
        let at = datetime!(2026-12-07 09:00 UTC);
        assert_eq!(FlowRange::new(at, at, Interval::Day).unwrap_err().field, "to");
        let year = FlowRange::new(at - Duration::days(365), at, Interval::Day).unwrap();
        assert_eq!(year.intervals().count(), 366);
        assert_eq!(FlowRange::new(at - Duration::days(400), at, Interval::Day).unwrap_err().field, "from");
        assert!(FlowRange::new(at - Duration::days(3650), at, Interval::Month).is_ok());
        assert_eq!(
            FlowRange::new(datetime!(-9999-01-01 00:00 UTC), at, Interval::Week).unwrap_err().field,
            "from",
            "refused without walking ten thousand years"
        );
    }

    struct Seed {
        tasks: Vec<TaskFacts>,
        history: Vec<Transition>,
    }

    impl Seed {
        fn task(&mut self, created_at: OffsetDateTime, changes: &[(Status, OffsetDateTime)]) -> Uuid {
            let id = Uuid::now_v7();
            let status = changes.last().map_or(Status::Todo, |(status, _)| *status);
            self.tasks.push(TaskFacts { id, created_at, status, due_at: None, assignees: vec![], labels: vec![] });
            for (to, at) in changes {
                self.history.push(Transition { task_id: id, to: *to, at: *at });
            }
            id
        }

        fn facts(&mut self, id: Uuid) -> &mut TaskFacts {
            self.tasks.iter_mut().find(|t| t.id == id).unwrap()
        }
    }

    /// Three weeks from Monday 2 November; now is Friday 20 November, in the third.
    #[test]
    fn a_seeded_project_flows_as_counted_by_hand() {
        use Status::*;
        let mut seed = Seed { tasks: vec![], history: vec![] };
        let day = |d: u8| datetime!(2026-11-01 12:00 UTC) + Duration::days(i64::from(d) - 1);
        let before = datetime!(2026-10-30 12:00 UTC);
        // Started 3 Nov, done 10 Nov: 7 days in progress.
        let a = seed.task(before, &[(Todo, before), (InProgress, day(3)), (Done, day(10))]);
        // Done twice: 5 → 6 Nov (1 day) and, reopened, 13 → 17 Nov (4 days).
        let b = seed.task(
            day(4),
            &[
                (Backlog, day(4)),
                (InProgress, day(5)),
                (Done, day(6)),
                (Todo, day(12)),
                (InProgress, day(13)),
                (Done, day(17)),
            ],
        );
        // Cancelled the day after its creation.
        let _c = seed.task(day(10), &[(Todo, day(10)), (Cancelled, day(11))]);
        // Open and overdue, assigned and labelled.
        let d = seed.task(day(18), &[(Todo, day(18))]);
        // Written by a release that kept no history: in progress since its creation (Sunday 8 Nov).
        let e = Uuid::now_v7();
        seed.tasks.push(TaskFacts {
            id: e,
            created_at: day(8),
            status: InProgress,
            due_at: Some(day(30)),
            assignees: vec![],
            labels: vec![],
        });
        let assignee = Uuid::now_v7();
        seed.facts(d).due_at = Some(day(19));
        seed.facts(d).assignees = vec![assignee];
        seed.facts(d).labels = vec!["bug".into()];
        seed.facts(b).labels = vec!["bug".into(), "api".into()];
        let _ = a;

        let range = FlowRange::new(day(2), datetime!(2026-11-23 00:00 UTC), Interval::Week).unwrap();
        let now = datetime!(2026-11-20 12:00 UTC);
        let report = FlowReport::compute(&range, &seed.tasks, &seed.history, now);

        let counts: Vec<(u64, u64, u64)> = report.intervals.iter().map(|i| (i.created, i.completed, i.open)).collect();
        // Week 1: B and E created, B done; A and E open at its end.
        // Week 2: C created, A done; B (reopened) and E open.
        // Week 3: D created, B done; D and E open now.
        assert_eq!(counts, [(2, 1, 2), (1, 1, 2), (1, 1, 2)]);
        // Backlog, todo, in progress, in review, done, cancelled at each end: week 1 A and E in
        // progress, B done; week 2 B back in progress, A done, C cancelled; week 3 D to do, E in
        // progress, A and B done, C cancelled.
        let statuses: Vec<[u64; 6]> = report.intervals.iter().map(|i| i.statuses).collect();
        assert_eq!(statuses, [[0, 0, 2, 0, 1, 0], [0, 0, 2, 0, 1, 1], [0, 1, 1, 0, 2, 1]]);
        for interval in &report.intervals {
            assert_eq!(interval.statuses[..4].iter().sum::<u64>(), interval.open, "open is the first four bands");
        }
        assert_eq!(report.intervals[2].end, datetime!(2026-11-23 00:00 UTC));

        // 1, 4 and 7 days: the median is 4, the 85th percentile 7 (nearest rank).
        assert_eq!(
            report.cycle_time,
            CycleTime { count: 3, p50_seconds: Some(4 * 86_400), p85_seconds: Some(7 * 86_400) }
        );
        assert_eq!(report.overdue, 1);
        let unassigned = Breakdown { created: 3, completed: 3, open: 1, overdue: 0 };
        let theirs = Breakdown { created: 1, completed: 0, open: 1, overdue: 1 };
        assert_eq!(report.by_assignee, [(None, unassigned), (Some(assignee), theirs)]);
        assert_eq!(
            report.by_label,
            [
                ("bug".to_owned(), Breakdown { created: 2, completed: 2, open: 1, overdue: 1 }),
                ("api".to_owned(), Breakdown { created: 1, completed: 2, open: 0, overdue: 0 }),
            ]
        );
    }

    #[test]
    fn an_empty_project_has_zero_counts_and_no_cycle_time() {
        let range =
            FlowRange::new(datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-04 00:00 UTC), Interval::Day).unwrap();
        let report = FlowReport::compute(&range, &[], &[], datetime!(2026-12-07 09:00 UTC));
        assert_eq!(report.intervals.len(), 3);
        assert!(report.intervals.iter().all(|i| (i.created, i.completed, i.open) == (0, 0, 0)));
        assert_eq!(report.cycle_time, CycleTime::default());
        assert!(report.by_assignee.is_empty() && report.by_label.is_empty());
    }

    #[test]
    fn a_breakdown_keeps_the_entries_with_the_most_open_tasks() {
        let entries: Vec<(String, Breakdown)> = (0..MAX_BREAKDOWN as u64 + 10)
            .map(|n| (format!("label-{n:03}"), Breakdown { open: n % 7, completed: n, ..Breakdown::default() }))
            .collect();
        let kept = top(entries);
        assert_eq!(kept.len(), MAX_BREAKDOWN);
        assert!(kept.windows(2).all(|w| (w[0].1.open, w[0].1.completed) >= (w[1].1.open, w[1].1.completed)));
        assert_eq!(kept[0].1.open, 6);
    }
}
