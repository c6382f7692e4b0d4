//! Jira's CSV of issues (Filters → Export → CSV, all or current fields). Each issue becomes a task
//! in the file's order: `Summary` the title, `Description`, `Status` (mapped by the request or by
//! the usual names; else by its `Status Category`, else `todo`), `Priority` (`Highest` urgent to
//! `Lowest` low), every `Labels` column, `Due date` (or `Due Date`), `Original Estimate` (seconds,
//! kept in minutes), and a sub-task under its parent (`Parent id`, or `Parent`, naming an `Issue
//! id`). Dates are read as Jira writes them by default (`15/Jan/27 5:00 PM`, taken as UTC), or as
//! RFC 3339 or `2027-01-15`. Assignees are Jira accounts, not Ordo's, so issues come unassigned.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::{bad_file, too_many};
use crate::app::Result;
use crate::domain::ImportRecord;

/// The issues of a Jira CSV whose header row is `header`, read from `reader`.
pub(super) fn records(
    header: &csv::StringRecord,
    mut reader: csv::Reader<&[u8]>,
    max_rows: usize,
) -> Result<Vec<ImportRecord>> {
    let column =
        |names: &[&str]| names.iter().find_map(|name| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)));
    let labels: Vec<usize> =
        header.iter().enumerate().filter(|(_, h)| h.trim().eq_ignore_ascii_case("labels")).map(|(i, _)| i).collect();
    let summary = column(&["Summary"]);
    let id = column(&["Issue id"]).or(column(&["Issue key"]));
    let parent = column(&["Parent id", "Parent"]);
    let status = column(&["Status"]);
    let category = column(&["Status Category"]);
    let priority = column(&["Priority"]);
    let description = column(&["Description"]);
    let due = column(&["Due date"]);
    let estimate = column(&["Original Estimate", "Original estimate"]);
    let mut records = Vec::new();
    for (index, row) in reader.records().enumerate() {
        if index >= max_rows {
            return Err(too_many(max_rows));
        }
        let row = row.map_err(|e| bad_file(format!("could not be read as CSV: {e}")))?;
        let cell = |at: Option<usize>| at.and_then(|at| row.get(at)).unwrap_or_default().trim().to_owned();
        records.push(ImportRecord {
            row: u32::try_from(index + 1).map_err(|_| too_many(max_rows))?,
            id: cell(id),
            title: cell(summary),
            description: trimmed_lines(description.and_then(|at| row.get(at)).unwrap_or_default()),
            status: cell(status),
            status_fallback: match cell(category) {
                category if category.is_empty() => "todo".to_owned(),
                category => category,
            },
            priority: cell(priority),
            labels: labels
                .iter()
                .filter_map(|&at| row.get(at))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            due_at: instant(&cell(due)),
            estimate_minutes: minutes(&cell(estimate)),
            parent_id: cell(parent),
            ..ImportRecord::default()
        });
    }
    Ok(records)
}

/// A description as it is, without the line breaks Jira's exports leave at its ends.
fn trimmed_lines(raw: &str) -> String {
    raw.trim_matches(['\r', '\n']).to_owned()
}

/// A Jira date-time as RFC 3339 (UTC); a value of no known shape is passed on for the import to name.
fn instant(raw: &str) -> String {
    if raw.is_empty() || OffsetDateTime::parse(raw, &Rfc3339).is_ok() {
        return raw.to_owned();
    }
    jira_time(raw).and_then(|t| t.assume_utc().format(&Rfc3339).ok()).unwrap_or_else(|| raw.to_owned())
}

/// `15/Jan/27 5:00 PM`, `2027-01-15 17:00` or `2027-01-15`.
fn jira_time(raw: &str) -> Option<PrimitiveDateTime> {
    if let Some((date, time)) = raw.split_once(' ')
        && let Some((day, rest)) = date.split_once('/')
        && let Some((month, year)) = rest.split_once('/')
    {
        let month = Month::try_from(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
                .iter()
                .position(|m| m.eq_ignore_ascii_case(month))
                .and_then(|m| u8::try_from(m + 1).ok())?,
        )
        .ok()?;
        let year: i32 = year.parse().ok()?;
        let year = if year < 100 { 2000 + year } else { year };
        let (clock, period) = time.trim().split_once(' ')?;
        let (hour, minute) = clock.split_once(':')?;
        let hour: u8 = hour.parse().ok()?;
        let hour = match (period.to_ascii_uppercase().as_str(), hour) {
            ("AM", 12) => 0,
            ("AM", h @ 1..=11) => h,
            ("PM", 12) => 12,
            ("PM", h @ 1..=11) => h + 12,
            _ => return None,
        };
        let date = Date::from_calendar_date(year, month, day.parse().ok()?).ok()?;
        return Some(PrimitiveDateTime::new(date, Time::from_hms(hour, minute.parse().ok()?, 0).ok()?));
    }
    let (date, time) = raw.split_once(' ').unwrap_or((raw, "00:00"));
    let mut parts = date.splitn(3, '-').map(str::parse::<i32>);
    let (year, month, day) = (parts.next()?.ok()?, parts.next()?.ok()?, parts.next()?.ok()?);
    let date =
        Date::from_calendar_date(year, Month::try_from(u8::try_from(month).ok()?).ok()?, u8::try_from(day).ok()?)
            .ok()?;
    let (hour, minute) = time.split_once(':')?;
    Some(PrimitiveDateTime::new(date, Time::from_hms(hour.parse().ok()?, minute.parse().ok()?, 0).ok()?))
}

/// Seconds as whole minutes; anything else passed on for the import to name.
fn minutes(raw: &str) -> String {
    match raw.parse::<u64>() {
        Ok(seconds) => (seconds / 60).to_string(),
        Err(_) => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::app::ports::ImportDecoder as _;
    use crate::domain::ExportFormat;
    use crate::infra::ImportFiles;

    const ISSUES: &str = "Summary,Issue key,Issue id,Parent id,Issue Type,Status,Status Category,Priority,Labels,Labels,Due date,Original Estimate,Description,Assignee\r\n\
        Set up CI,OPS-1,10001,,Task,In Progress,In Progress,Highest,infra,,15/Jan/27 5:00 PM,7200,\"Run it\non every push\",Ann\r\n\
        Cache deps,OPS-2,10002,10001,Sub-task,Waiting for vendor,To Do,Low,infra,speed,2027-01-20,,,\r\n\
        Old idea,OPS-3,10003,,Task,Won't Do,Done,Medium,,,,,,\r\n";

    #[test]
    fn issues_are_read_with_their_fields_and_their_parents() {
        let records = ImportFiles.decode(ExportFormat::Csv, ISSUES.as_bytes(), 10).unwrap();
        assert_eq!(records.len(), 3);
        let first = &records[0];
        assert_eq!(
            (first.id.as_str(), first.title.as_str(), first.status.as_str()),
            ("10001", "Set up CI", "In Progress")
        );
        assert_eq!((first.priority.as_str(), first.estimate_minutes.as_str()), ("Highest", "120"));
        assert_eq!(first.labels, ["infra"]);
        assert_eq!(first.due_at, "2027-01-15T17:00:00Z");
        assert_eq!(first.description, "Run it\non every push");
        assert!(first.assignee_ids.is_empty(), "Jira accounts are not Ordo's");
        let second = &records[1];
        assert_eq!((second.parent_id.as_str(), second.status_fallback.as_str()), ("10001", "To Do"));
        assert_eq!(second.labels, ["infra", "speed"]);
        assert_eq!(second.due_at, "2027-01-20T00:00:00Z");
        assert_eq!(records[2].status, "Won't Do");
    }

    #[test]
    fn jira_times_are_read_in_its_shapes_and_others_passed_on() {
        assert_eq!(instant("1/Feb/27 12:05 AM"), "2027-02-01T00:05:00Z");
        assert_eq!(instant("1/feb/2027 12:30 PM"), "2027-02-01T12:30:00Z");
        assert_eq!(instant("2027-02-01 09:15"), "2027-02-01T09:15:00Z");
        assert_eq!(instant("2027-02-01T09:15:00+02:00"), "2027-02-01T09:15:00+02:00");
        assert_eq!(instant("next week"), "next week");
        assert_eq!(instant("31/Feb/27 1:00 PM"), "31/Feb/27 1:00 PM");
        for bad in
            ["1/Feb/27 250:00 PM", "1/Feb/27 0:30 AM", "1/Feb/27 13:00 PM", "1/Feb/27 5:61 PM", "1/Foo/27 5:00 PM"]
        {
            assert_eq!(instant(bad), bad, "passed on for the import to name");
        }
        assert_eq!(minutes("59"), "0");
        assert_eq!(minutes("1h"), "1h");
    }
}
