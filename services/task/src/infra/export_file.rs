//! The files of exports. Both formats carry every field of a task under the names and in the order
//! of the REST API's task:
//!
//! - **CSV** (RFC 4180, through the `csv` crate): a header row, then one row per task; UTF-8, CRLF
//!   line ends, a cell quoted when it holds a comma, a quote or a line break. A task's assignees
//!   and labels are one cell each, one per line (labels hold no control characters). Every text
//!   cell a user wrote is passed through [`neutralise_formula`], so no spreadsheet runs it.
//! - **JSON**: one array of tasks, each the object `GET /api/v1/tasks/{id}` answers.
//!
//! An export may include each task's comments: a last CSV column ([`CSV_COMMENTS_COLUMN`]), a
//! `comments` array of each JSON task (each as `GET /api/v1/comments/{id}` answers it).
//!
//! Pages arrive one at a time and leave as bytes at once: a file is never held whole.

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;

use crate::app::ports::{ExportEncoder, ExportFile};
use crate::app::{AppError, Result};
use crate::domain::{Comment, ExportFormat, Task, neutralise_formula};

/// The columns of a CSV export, in order.
pub const CSV_COLUMNS: [&str; 20] = [
    "id",
    "project_id",
    "number",
    "key",
    "title",
    "description",
    "status",
    "priority",
    "assignee_ids",
    "labels",
    "due_at",
    "start_at",
    "estimate_minutes",
    "parent_id",
    "reporter_id",
    "position",
    "created_at",
    "updated_at",
    "completed_at",
    "version",
];

/// Writes export files in their formats.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportFiles;

/// The column of a CSV export's comments, after [`CSV_COLUMNS`], when the export has them: each
/// comment as its time and author on one line and its body below, the comments apart by a line of
/// `---`, oldest first.
pub const CSV_COMMENTS_COLUMN: &str = "comments";

impl ExportEncoder for ExportFiles {
    fn begin(&self, format: ExportFormat, with_comments: bool) -> Box<dyn ExportFile> {
        match format {
            ExportFormat::Csv => Box::new(CsvFile { header_written: false, with_comments }),
            ExportFormat::Json => Box::new(JsonFile { first: true, with_comments }),
        }
    }
}

/// A CSV file as it is written.
struct CsvFile {
    header_written: bool,
    with_comments: bool,
}

impl CsvFile {
    fn header(&self) -> Vec<&'static str> {
        let mut header = CSV_COLUMNS.to_vec();
        if self.with_comments {
            header.push(CSV_COMMENTS_COLUMN);
        }
        header
    }
}

impl ExportFile for CsvFile {
    fn rows(&mut self, tasks: &[Task], comments: &[Comment]) -> Result<Bytes> {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        if !self.header_written {
            writer.write_record(self.header()).map_err(encoding)?;
            self.header_written = true;
        }
        for task in tasks {
            if self.with_comments {
                let text = of_task(comments, task.id)
                    .map(|c| format!("{} {}:\n{}", rfc3339(c.created_at), c.author_id, c.body.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n---\n");
                let mut record = csv_record(task).to_vec();
                record.push(neutralise_formula(&text).into_owned());
                writer.write_record(record).map_err(encoding)?;
            } else {
                writer.write_record(csv_record(task)).map_err(encoding)?;
            }
        }
        writer.into_inner().map(Bytes::from).map_err(|e| encoding(e.into_error().into()))
    }

    fn end(self: Box<Self>) -> Bytes {
        if self.header_written {
            Bytes::new()
        } else {
            // No task: the file is the header alone.
            let mut header = self.header().join(",");
            header.push_str("\r\n");
            Bytes::from(header)
        }
    }
}

/// The comments of `task_id` among `comments`, which come grouped by task.
fn of_task(comments: &[Comment], task_id: uuid::Uuid) -> impl Iterator<Item = &Comment> {
    comments.iter().filter(move |c| c.task_id == task_id)
}

/// The cells of `task`'s row, in [`CSV_COLUMNS`]' order.
fn csv_record(task: &Task) -> [String; 20] {
    let text = |cell: &str| neutralise_formula(cell).into_owned();
    let time = |t: Option<OffsetDateTime>| t.map(rfc3339).unwrap_or_default();
    let assignees: Vec<String> = task.assignees.as_slice().iter().map(ToString::to_string).collect();
    [
        task.id.to_string(),
        task.project_id.to_string(),
        task.number.to_string(),
        text(&task.key()),
        text(task.title.as_str()),
        task.description.as_ref().map(|d| text(d.as_str())).unwrap_or_default(),
        task.status().as_str().to_owned(),
        task.priority.as_str().to_owned(),
        assignees.join("\n"),
        text(&task.labels.as_slice().join("\n")),
        time(task.schedule.due_at()),
        time(task.schedule.start_at()),
        task.estimate.map(|e| e.minutes().to_string()).unwrap_or_default(),
        task.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        task.reporter_id.to_string(),
        task.position.as_str().to_owned(),
        rfc3339(task.created_at),
        rfc3339(task.updated_at),
        time(task.completed_at()),
        task.version.to_string(),
    ]
}

/// A JSON file as it is written.
struct JsonFile {
    first: bool,
    with_comments: bool,
}

impl ExportFile for JsonFile {
    fn rows(&mut self, tasks: &[Task], comments: &[Comment]) -> Result<Bytes> {
        let mut bytes = Vec::with_capacity(tasks.len() * 512);
        for task in tasks {
            bytes.push(if self.first { b'[' } else { b',' });
            self.first = false;
            let mut item = ApiTask::of(task);
            if self.with_comments {
                item.comments = Some(of_task(comments, task.id).map(ApiComment::of).collect());
            }
            serde_json::to_writer(&mut bytes, &item).map_err(|e| AppError::Internal(e.into()))?;
        }
        Ok(Bytes::from(bytes))
    }

    fn end(self: Box<Self>) -> Bytes {
        Bytes::from_static(if self.first { b"[]" } else { b"]" })
    }
}

/// A task in the REST API's shape (the gateway's `Task`, field for field).
#[derive(Serialize)]
struct ApiTask<'a> {
    id: String,
    project_id: String,
    number: i64,
    key: String,
    title: &'a str,
    description: Option<&'a str>,
    status: &'static str,
    priority: &'static str,
    assignee_ids: Vec<String>,
    labels: &'a [String],
    #[serde(with = "time::serde::rfc3339::option")]
    due_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    start_at: Option<OffsetDateTime>,
    estimate_minutes: Option<i32>,
    parent_id: Option<String>,
    reporter_id: String,
    position: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    completed_at: Option<OffsetDateTime>,
    version: i64,
    /// Only in an export that includes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<Vec<ApiComment<'a>>>,
}

/// A comment in the REST API's shape (the gateway's `Comment`).
#[derive(Serialize)]
struct ApiComment<'a> {
    id: String,
    task_id: String,
    author_id: String,
    body: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    version: i64,
}

impl<'a> ApiComment<'a> {
    fn of(comment: &'a Comment) -> Self {
        Self {
            id: comment.id.to_string(),
            task_id: comment.task_id.to_string(),
            author_id: comment.author_id.to_string(),
            body: comment.body.as_str(),
            created_at: comment.created_at,
            updated_at: comment.updated_at,
            version: comment.version,
        }
    }
}

impl<'a> ApiTask<'a> {
    fn of(task: &'a Task) -> Self {
        Self {
            id: task.id.to_string(),
            project_id: task.project_id.to_string(),
            number: task.number,
            key: task.key(),
            title: task.title.as_str(),
            description: task.description.as_ref().map(|d| d.as_str()),
            status: task.status().as_str(),
            priority: task.priority.as_str(),
            assignee_ids: task.assignees.as_slice().iter().map(ToString::to_string).collect(),
            labels: task.labels.as_slice(),
            due_at: task.schedule.due_at(),
            start_at: task.schedule.start_at(),
            estimate_minutes: task.estimate.map(|e| e.minutes()),
            parent_id: task.parent_id.map(|p| p.to_string()),
            reporter_id: task.reporter_id.to_string(),
            position: task.position.as_str(),
            created_at: task.created_at,
            updated_at: task.updated_at,
            completed_at: task.completed_at(),
            version: task.version,
            comments: None,
        }
    }
}

/// `time` as RFC 3339, as the API writes it.
fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A row that could not be encoded.
fn encoding(error: csv::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("writing an export row failed: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        Assignees, Description, Estimate, Labels, NewTask, Position, Priority, Schedule, Status, Title, restore_formula,
    };

    fn task(title: &str, description: Option<&str>, labels: &[&str]) -> Task {
        let new = NewTask {
            title: Title::parse(title).unwrap(),
            description: description.map(|d| Description::parse(d).unwrap().unwrap()),
            status: Status::InProgress,
            priority: Priority::High,
            assignees: Assignees::from_stored(vec![Uuid::from_u128(7), Uuid::from_u128(8)]),
            labels: Labels::parse(labels).unwrap(),
            schedule: Schedule::new(None, Some(datetime!(2026-12-24 12:00 UTC))).unwrap(),
            estimate: Some(Estimate::new(90).unwrap()),
            parent_id: None,
        };
        let at = datetime!(2026-12-07 10:00:00.123456 UTC);
        Task::create(
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            "ORDO".into(),
            42,
            new,
            Uuid::from_u128(3),
            Position::first(),
            at,
        )
    }

    fn write(format: ExportFormat, pages: &[Vec<Task>]) -> String {
        let mut file = ExportFiles.begin(format, false);
        let mut bytes = Vec::new();
        for page in pages {
            bytes.extend_from_slice(&file.rows(page, &[]).unwrap());
        }
        bytes.extend_from_slice(&file.end());
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_csv_export_has_a_header_and_a_row_per_task_that_read_back_exactly() {
        let awkward =
            task("Commas, \"quotes\" and ; semicolons", Some("line one\r\nline two, with ü"), &["back end", "api"]);
        let plain = task("Plain", None, &[]);
        let csv = write(ExportFormat::Csv, &[vec![awkward.clone()], vec![plain]]);

        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let cell = |row: &csv::StringRecord, name: &str| {
            row.get(CSV_COLUMNS.iter().position(|c| *c == name).unwrap()).unwrap().to_owned()
        };
        assert_eq!(cell(&rows[0], "title"), "Commas, \"quotes\" and ; semicolons");
        assert_eq!(cell(&rows[0], "description"), "line one\r\nline two, with ü");
        assert_eq!(cell(&rows[0], "labels"), "back end\napi");
        assert_eq!(cell(&rows[0], "assignee_ids"), format!("{}\n{}", Uuid::from_u128(7), Uuid::from_u128(8)));
        assert_eq!(cell(&rows[0], "key"), "ORDO-42");
        assert_eq!(cell(&rows[0], "status"), "in_progress");
        assert_eq!(cell(&rows[0], "priority"), "high");
        assert_eq!(cell(&rows[0], "due_at"), "2026-12-24T12:00:00Z");
        assert_eq!(cell(&rows[0], "created_at"), "2026-12-07T10:00:00.123456Z");
        assert_eq!(cell(&rows[0], "estimate_minutes"), "90");
        assert_eq!(cell(&rows[1], "description"), "");
        assert_eq!(cell(&rows[1], "labels"), "");
        assert!(csv.ends_with("\r\n") && csv.starts_with("id,project_id,number,key,title,"));
    }

    #[test]
    fn formula_like_cells_are_neutralised_in_a_csv_export() {
        let csv = write(ExportFormat::Csv, &[vec![task("=HYPERLINK(\"http://x\",\"y\")", Some("+1"), &["@risk"])]]);
        let row = csv::Reader::from_reader(csv.as_bytes()).records().next().unwrap().unwrap();
        assert_eq!(&row[4], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&row[5], "'+1");
        assert_eq!(&row[9], "'@risk");
        assert_eq!(restore_formula(&row[4]), "=HYPERLINK(\"http://x\",\"y\")");
    }

    #[test]
    fn an_empty_export_is_a_header_alone_or_an_empty_array() {
        assert_eq!(write(ExportFormat::Csv, &[]), format!("{}\r\n", CSV_COLUMNS.join(",")));
        assert_eq!(write(ExportFormat::Csv, &[vec![]]), format!("{}\r\n", CSV_COLUMNS.join(",")));
        assert_eq!(write(ExportFormat::Json, &[]), "[]");
        assert_eq!(write(ExportFormat::Json, &[vec![], vec![]]), "[]");
    }

    #[test]
    fn a_json_export_is_one_array_of_tasks_in_the_api_shape() {
        let first = task("=1+1", Some("described"), &["api"]);
        let json = write(ExportFormat::Json, &[vec![first.clone(), first.clone()], vec![task("Third", None, &[])]]);
        let tasks: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(tasks.len(), 3);
        let keys: Vec<&str> = tasks[0].as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = CSV_COLUMNS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "the same fields as the CSV's columns and the API's task");
        assert_eq!(tasks[0]["title"], "=1+1", "JSON is not a spreadsheet: titles as they are");
        assert_eq!(tasks[0]["assignee_ids"][1], Uuid::from_u128(8).to_string());
        assert_eq!(tasks[0]["labels"], serde_json::json!(["api"]));
        assert_eq!(tasks[0]["estimate_minutes"], 90);
        assert_eq!(tasks[0]["start_at"], serde_json::Value::Null);
        assert_eq!(tasks[0]["completed_at"], serde_json::Value::Null);
        assert_eq!(tasks[0]["created_at"], "2026-12-07T10:00:00.123456Z");
        assert_eq!(tasks[2]["description"], serde_json::Value::Null);
    }

    #[test]
    fn an_export_with_comments_carries_each_tasks_comments_oldest_first() {
        let (first, second) = (task("First", None, &[]), {
            let mut t = task("Second", None, &[]);
            t.id = Uuid::from_u128(9);
            t
        });
        let comment = |n: u128, task_id: Uuid, body: &str| Comment {
            id: Uuid::from_u128(100 + n),
            task_id,
            project_id: first.project_id,
            author_id: Uuid::from_u128(7),
            body: crate::domain::CommentBody::parse(body).unwrap(),
            created_at: datetime!(2026-12-07 11:00 UTC) + time::Duration::minutes(n as i64),
            updated_at: datetime!(2026-12-07 11:00 UTC) + time::Duration::minutes(n as i64),
            version: 1,
        };
        let comments = [comment(1, first.id, "=looks good"), comment(2, first.id, "second\nline")];
        let tasks = [first.clone(), second];

        let mut file = ExportFiles.begin(ExportFormat::Csv, true);
        let mut csv = file.rows(&tasks, &comments).unwrap().to_vec();
        csv.extend_from_slice(&file.end());
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        assert_eq!(reader.headers().unwrap().iter().next_back(), Some(CSV_COMMENTS_COLUMN));
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let author = Uuid::from_u128(7);
        assert_eq!(
            &rows[0][CSV_COLUMNS.len()],
            format!("2026-12-07T11:01:00Z {author}:\n=looks good\n---\n2026-12-07T11:02:00Z {author}:\nsecond\nline")
        );
        assert_eq!(&rows[1][CSV_COLUMNS.len()], "");

        let mut file = ExportFiles.begin(ExportFormat::Json, true);
        let mut json = file.rows(&tasks, &comments).unwrap().to_vec();
        json.extend_from_slice(&file.end());
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json[0]["comments"].as_array().unwrap().len(), 2);
        assert_eq!(json[0]["comments"][0]["body"], "=looks good");
        assert_eq!(json[0]["comments"][1]["created_at"], "2026-12-07T11:02:00Z");
        assert_eq!(json[1]["comments"], serde_json::json!([]));
        // Without them, no column and no member.
        let plain = write(ExportFormat::Json, &[tasks.to_vec()]);
        assert!(!plain.contains("comments"));
    }
}
