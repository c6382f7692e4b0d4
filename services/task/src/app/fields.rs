//! A task's writable fields as a request gives them, and how an update reads them: the paths an
//! update or a bulk update may name in its mask, and the validated [`Patch`] applied inside the
//! transaction.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{AppError, Result};
use crate::domain::{Assignees, Description, Estimate, FieldViolation, Labels, Priority, Status, Title, Violations};

/// A task's writable fields as a request gives them (enums already defaulted by the gRPC layer).
#[derive(Debug, Clone, Default)]
pub struct TaskFields {
    pub title: String,
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub assignee_ids: Vec<String>,
    pub labels: Vec<String>,
    pub due_at: Option<OffsetDateTime>,
    pub start_at: Option<OffsetDateTime>,
    pub estimate_minutes: Option<i32>,
    pub parent_id: Option<String>,
}

/// The paths an update may name.
pub(super) const UPDATE_PATHS: &[&str] = &[
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
];
/// The paths a bulk update may name.
pub(super) const BULK_PATHS: &[&str] = &["status", "priority", "assignee_ids", "labels"];
/// The most tasks a bulk update touches.
pub const MAX_BULK: usize = 100;
/// The most paths an update mask names, repeats included (there are ten fields to name).
pub const MAX_MASK_PATHS: usize = 20;
/// The longest path of an update mask echoed back as a field name; a longer one names no field.
const MAX_PATH_LEN: usize = 64;

/// The masked fields of an update, validated before the transaction.
#[derive(Debug, Default)]
pub(super) struct Patch {
    pub(super) paths: Vec<&'static str>,
    pub(super) title: Option<Title>,
    pub(super) description: Option<Option<Description>>,
    pub(super) status: Option<Status>,
    pub(super) priority: Option<Priority>,
    pub(super) assignees: Option<Assignees>,
    pub(super) labels: Option<Labels>,
    pub(super) due_at: Option<Option<OffsetDateTime>>,
    pub(super) start_at: Option<Option<OffsetDateTime>>,
    pub(super) estimate: Option<Option<Estimate>>,
    pub(super) parent_id: Option<Option<Uuid>>,
}

impl Patch {
    pub(super) fn has(&self, path: &str) -> bool {
        self.paths.contains(&path)
    }
}

/// Checks an update mask against the paths allowed; every bad path is named.
pub(super) fn parse_mask(mask: &[String], allowed: &[&'static str]) -> Result<Vec<&'static str>> {
    if mask.is_empty() {
        return Err(AppError::field("update_mask", "name at least one field to change"));
    }
    // Counted before any path is read: a mask of a million paths costs nothing more than one of 21.
    if mask.len() > MAX_MASK_PATHS {
        return Err(AppError::field("update_mask", "name at most 20 paths"));
    }
    let mut violations = Violations::default();
    let mut paths = Vec::new();
    for path in mask {
        match allowed.iter().find(|a| **a == path.as_str()) {
            Some(known) if !paths.contains(known) => paths.push(*known),
            Some(_) => {}
            None if path == "project_id" => {
                violations.push(FieldViolation::new("project_id", "a task cannot move to another project"))
            }
            // Not echoed: a long path is no field name, and the answer stays small.
            None if path.len() > MAX_PATH_LEN => {
                violations.push(FieldViolation::new("update_mask", "names a field that does not exist"))
            }
            None => violations.push(FieldViolation::new(path.clone(), "not a field that can be changed here")),
        }
    }
    if violations.is_empty() { Ok(paths) } else { Err(AppError::Invalid(violations.0)) }
}

/// Validates the masked fields of `fields`.
pub(super) fn parse_patch(paths: Vec<&'static str>, fields: &TaskFields) -> Result<Patch> {
    let mut v = Violations::default();
    let mut patch = Patch { paths, ..Patch::default() };
    for path in patch.paths.clone() {
        match path {
            "title" => patch.title = v.check(Title::parse(&fields.title)),
            "description" => {
                patch.description =
                    v.check(fields.description.as_deref().map(Description::parse).transpose().map(Option::flatten))
            }
            "status" => patch.status = Some(fields.status.unwrap_or(Status::Todo)),
            "priority" => patch.priority = Some(fields.priority.unwrap_or(Priority::None)),
            "assignee_ids" => patch.assignees = v.check(Assignees::parse(&fields.assignee_ids)),
            "labels" => patch.labels = v.check(Labels::parse(&fields.labels)),
            "due_at" => patch.due_at = Some(fields.due_at),
            "start_at" => patch.start_at = Some(fields.start_at),
            "estimate_minutes" => patch.estimate = v.check(fields.estimate_minutes.map(Estimate::new).transpose()),
            "parent_id" => {
                patch.parent_id = v.check(parent_id(fields.parent_id.as_deref()));
            }
            _ => {}
        }
    }
    if v.is_empty() { Ok(patch) } else { Err(AppError::Invalid(v.0)) }
}

/// A parent id from a request: absent or empty for none.
pub(super) fn parent_id(raw: Option<&str>) -> Result<Option<Uuid>, FieldViolation> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => Uuid::parse_str(raw).map(Some).map_err(|_| FieldViolation::new("parent_id", "must be a task id")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn masks_name_every_bad_path_and_refuse_project_id() {
        let err = parse_mask(&["title".into(), "project_id".into(), "colour".into()], UPDATE_PATHS).unwrap_err();
        let AppError::Invalid(v) = err else { panic!("not a validation error") };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_ref()).collect();
        assert_eq!(fields, ["project_id", "colour"]);
        assert!(parse_mask(&[], UPDATE_PATHS).is_err());
        assert!(parse_mask(&["title".into()], BULK_PATHS).is_err());
        assert_eq!(parse_mask(&["status".into(), "status".into()], BULK_PATHS).unwrap(), ["status"]);
    }
}
