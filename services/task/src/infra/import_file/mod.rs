//! The files of imports: the formats exports write ([`super::export_file`]), and the exports of the
//! trackers teams leave — a Trello board's JSON ([`trello`]) and Jira's CSV of issues ([`jira`]),
//! told apart by their shape (a JSON object with `cards`; a CSV with a `Summary` column). Ordo's own:
//!
//! - **CSV**: a header row naming the columns (in any order; `title` is required, a column the
//!   import does not read is ignored: `project_id`, `number`, `key`, `reporter_id`, `position`,
//!   the times a task was created, updated and completed, `version`), then one row per task. A text
//!   cell that an export escaped against formulas ([`restore_formula`]) is given back as it was;
//!   assignees and labels are one per line of their cell. UTF-8, with or without a byte order mark.
//! - **JSON**: one array of tasks, each an object as `GET /api/v1/tasks/{id}` answers it; members
//!   the import does not read are ignored.
//!
//! Both stop reading at one task past the limit, so a long file costs no more than the limit.

use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};

use crate::app::ports::ImportDecoder;
use crate::app::{AppError, Result};
use crate::domain::{ExportFormat, FieldViolation, ImportRecord, restore_formula};

mod jira;
mod trello;

/// Reads import files in their formats.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportFiles;

impl ImportDecoder for ImportFiles {
    fn decode(&self, format: ExportFormat, file: &[u8], max_rows: usize) -> Result<Vec<ImportRecord>> {
        let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
        match format {
            ExportFormat::Csv => csv_records(file, max_rows),
            ExportFormat::Json => match file.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => trello::records(file, max_rows),
                _ => json_records(file, max_rows),
            },
        }
    }
}

/// `Invalid`, naming the file.
pub(super) fn bad_file(message: impl Into<String>) -> AppError {
    AppError::Invalid(vec![FieldViolation::new("file", message)])
}

pub(super) fn too_many(max_rows: usize) -> AppError {
    bad_file(format!("holds more than {max_rows} tasks: split it"))
}

/// The rows of a CSV file.
fn csv_records(file: &[u8], max_rows: usize) -> Result<Vec<ImportRecord>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let header = reader.headers().map_err(|e| bad_file(format!("is not a CSV file: {e}")))?.clone();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let Some(title) = column("title") else {
        if column("Summary").is_some() {
            return jira::records(&header, reader, max_rows);
        }
        return Err(bad_file("has no `title` column (nor Jira's `Summary`)"));
    };
    let columns = Columns {
        id: column("id"),
        title,
        description: column("description"),
        status: column("status"),
        priority: column("priority"),
        assignee_ids: column("assignee_ids"),
        labels: column("labels"),
        due_at: column("due_at"),
        start_at: column("start_at"),
        estimate_minutes: column("estimate_minutes"),
        parent_id: column("parent_id"),
    };
    let mut records = Vec::new();
    for (index, row) in reader.records().enumerate() {
        if index >= max_rows {
            return Err(too_many(max_rows));
        }
        let row = row.map_err(|e| bad_file(format!("could not be read as CSV: {e}")))?;
        let cell = |at: Option<usize>| at.and_then(|at| row.get(at)).unwrap_or_default();
        let text = |at: Option<usize>| restore_formula(cell(at)).to_owned();
        let plain = |at: Option<usize>| cell(at).trim().to_owned();
        let lines = |value: &str| value.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        records.push(ImportRecord {
            row: u32::try_from(index + 1).map_err(|_| too_many(max_rows))?,
            id: plain(columns.id),
            title: text(Some(columns.title)),
            description: text(columns.description),
            status: plain(columns.status),
            status_fallback: String::new(),
            priority: plain(columns.priority),
            assignee_ids: lines(cell(columns.assignee_ids)),
            labels: lines(restore_formula(cell(columns.labels))),
            due_at: plain(columns.due_at),
            start_at: plain(columns.start_at),
            estimate_minutes: plain(columns.estimate_minutes),
            parent_id: plain(columns.parent_id),
        });
    }
    Ok(records)
}

/// Where each field's column is.
struct Columns {
    id: Option<usize>,
    title: usize,
    description: Option<usize>,
    status: Option<usize>,
    priority: Option<usize>,
    assignee_ids: Option<usize>,
    labels: Option<usize>,
    due_at: Option<usize>,
    start_at: Option<usize>,
    estimate_minutes: Option<usize>,
    parent_id: Option<usize>,
}

/// A task of a JSON file: the members of the API's task the import reads.
#[derive(Deserialize)]
struct JsonTask {
    #[serde(default)]
    id: Option<String>,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    assignee_ids: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    due_at: Option<String>,
    #[serde(default)]
    start_at: Option<String>,
    #[serde(default)]
    estimate_minutes: Option<i64>,
    #[serde(default)]
    parent_id: Option<String>,
}

/// The tasks of a JSON file.
fn json_records(file: &[u8], max_rows: usize) -> Result<Vec<ImportRecord>> {
    let mut deserializer = serde_json::Deserializer::from_slice(file);
    let tasks = Bounded { max_rows }.deserialize(&mut deserializer).map_err(|e| {
        if e.to_string().starts_with(TOO_MANY) {
            too_many(max_rows)
        } else {
            bad_file(format!("is not a JSON array of tasks: {e}"))
        }
    })?;
    deserializer.end().map_err(|e| bad_file(format!("holds more than one JSON array: {e}")))?;
    tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            Ok(ImportRecord {
                row: u32::try_from(index + 1).map_err(|_| too_many(max_rows))?,
                id: task.id.unwrap_or_default(),
                title: task.title,
                description: task.description.unwrap_or_default(),
                status: task.status.unwrap_or_default(),
                status_fallback: String::new(),
                priority: task.priority.unwrap_or_default(),
                assignee_ids: task.assignee_ids.unwrap_or_default(),
                labels: task.labels.unwrap_or_default(),
                due_at: task.due_at.unwrap_or_default(),
                start_at: task.start_at.unwrap_or_default(),
                estimate_minutes: task.estimate_minutes.map(|m| m.to_string()).unwrap_or_default(),
                parent_id: task.parent_id.unwrap_or_default(),
            })
        })
        .collect()
}

/// The start of the error a JSON array longer than its bound fails with.
const TOO_MANY: &str = "more tasks than";

/// A JSON array of at most `max_rows` tasks, refused at the first one past it.
struct Bounded {
    max_rows: usize,
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Vec<JsonTask>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Vec<JsonTask>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an array of at most {} tasks", self.max_rows)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        let mut tasks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_rows));
        while let Some(task) = seq.next_element::<JsonTask>()? {
            if tasks.len() == self.max_rows {
                return Err(serde::de::Error::custom(format!("{TOO_MANY} {}", self.max_rows)));
            }
            tasks.push(task);
        }
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::app::ports::ExportEncoder as _;
    use crate::domain::{Assignees, Labels, NewTask, Position, Priority, Schedule, Status, Task, Title};
    use crate::infra::export_file::ExportFiles;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn task(title: &str, labels: &[&str]) -> Task {
        let new = NewTask {
            title: Title::parse(title).unwrap(),
            description: crate::domain::Description::parse("=cmd|' /C calc'!A0\nsecond line").unwrap(),
            status: Status::InProgress,
            priority: Priority::Urgent,
            assignees: Assignees::parse(&[Uuid::from_u128(5).to_string()]).unwrap(),
            labels: Labels::parse(labels).unwrap(),
            schedule: Schedule::new(None, Some(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap())).unwrap(),
            estimate: None,
            parent_id: Some(Uuid::from_u128(3)),
        };
        let position = Position::between(None, None).unwrap();
        Task::create(
            Uuid::from_u128(9),
            Uuid::from_u128(1),
            "ORDO".into(),
            4,
            new,
            Uuid::from_u128(2),
            position,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn exported(format: ExportFormat, tasks: &[Task]) -> Vec<u8> {
        let mut file = ExportFiles.begin(format, false);
        let mut bytes = file.rows(tasks, &[]).unwrap().to_vec();
        bytes.extend_from_slice(&file.end());
        bytes
    }

    #[test]
    fn an_exported_file_reads_back_as_it_was_written() {
        let tasks = [task("=SUM(A1:A9)", &["-urgent", "plain"]), task("Plain title", &[])];
        for format in [ExportFormat::Csv, ExportFormat::Json] {
            let records = ImportFiles.decode(format, &exported(format, &tasks), 10).unwrap();
            assert_eq!(records.len(), 2, "{format:?}");
            let first = &records[0];
            assert_eq!(first.row, 1);
            assert_eq!(first.id, Uuid::from_u128(9).to_string());
            assert_eq!(first.title, "=SUM(A1:A9)", "{format:?}");
            assert_eq!(first.description, "=cmd|' /C calc'!A0\nsecond line", "{format:?}");
            assert_eq!((first.status.as_str(), first.priority.as_str()), ("in_progress", "urgent"));
            assert_eq!(first.assignee_ids, [Uuid::from_u128(5).to_string()]);
            assert_eq!(first.labels, ["-urgent", "plain"], "{format:?}");
            assert_eq!(first.due_at, "2027-01-15T08:00:00Z");
            assert_eq!(first.parent_id, Uuid::from_u128(3).to_string());
            assert!(records[1].labels.is_empty() && records[1].row == 2);
        }
    }

    #[test]
    fn csv_columns_are_found_by_name_and_a_byte_order_mark_is_skipped() {
        let file = "\u{feff}priority,title,extra\r\nhigh,First,x\r\n,Second,y\r\n";
        let records = ImportFiles.decode(ExportFormat::Csv, file.as_bytes(), 10).unwrap();
        assert_eq!(
            records.iter().map(|r| (r.title.as_str(), r.priority.as_str())).collect::<Vec<_>>(),
            [("First", "high"), ("Second", "")]
        );
    }

    #[test]
    fn files_that_cannot_be_read_name_the_file() {
        let cases: [(ExportFormat, &[u8]); 6] = [
            (ExportFormat::Csv, b"name,status\r\nx,todo\r\n"),
            (ExportFormat::Csv, b"title,status\r\nx\r\n"),
            (ExportFormat::Csv, b"title\r\n\xff\xfe\r\n"),
            (ExportFormat::Json, b"{\"title\": \"x\"}"),
            (ExportFormat::Json, b"[{\"title\": 5}]"),
            (ExportFormat::Json, b"[] []"),
        ];
        for (format, file) in cases {
            match ImportFiles.decode(format, file, 10) {
                Err(AppError::Invalid(violations)) => assert_eq!(violations[0].field, "file", "{file:?}"),
                other => panic!("{file:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_file_past_the_row_limit_is_refused() {
        let csv = format!("title\r\n{}", "t\r\n".repeat(4));
        let json = format!("[{}]", ["{\"title\":\"t\"}"; 4].join(","));
        for (format, file) in [(ExportFormat::Csv, csv), (ExportFormat::Json, json)] {
            assert_eq!(ImportFiles.decode(format, file.as_bytes(), 4).unwrap().len(), 4);
            match ImportFiles.decode(format, file.as_bytes(), 3) {
                Err(AppError::Invalid(violations)) => assert!(violations[0].message.contains("more than 3")),
                other => panic!("{format:?}: {other:?}"),
            }
        }
    }
}
