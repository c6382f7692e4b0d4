//! The task service's domain: tasks and their value objects, board order, comments, the rules of who
//! may do what, and the events that changes cause. Plain Rust: no I/O here, so every rule is tested
//! without a database.

mod attachment;
mod event;
mod policy;
mod position;
mod task;

pub use attachment::{Attachment, ContentType, DEFAULT_CONTENT_TYPE, Filename, MAX_FILENAME_CHARS};
pub use event::{TaskEvent, Unassignment};
pub use policy::{Access, Denied, ProjectRole};
pub use position::{LONG_POSITION_LEN, MAX_POSITION_LEN, Position, PositionError, SPREAD_POSITION_LEN};
pub use task::{
    Assignees, Comment, CommentBody, Description, Estimate, Labels, MAX_ASSIGNEES, MAX_DEPTH, MAX_LABELS, NewTask,
    ParentChain, Priority, Schedule, Status, Task, Title, check_parent, split_key,
};

/// One broken field rule, named by its field in the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field (`title`, `assignee_ids`, ...).
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Every field rule a request broke, so a client can fix them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    /// Records the error of `result` and returns its value.
    pub fn check<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(violation) => {
                self.0.push(violation);
                None
            }
        }
    }

    /// Records a violation.
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
