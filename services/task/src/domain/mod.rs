//! The task service's domain: tasks and their value objects, board order, comments, the rules of who
//! may do what, the events that changes cause, and the background jobs of a project. Plain Rust: no
//! I/O here, so every rule is tested without a database.

mod attachment;
mod event;
mod flow;
mod history;
mod import;
mod job;
mod policy;
mod position;
mod search;
mod task;

pub use attachment::{Attachment, ContentType, DEFAULT_CONTENT_TYPE, Filename, MAX_FILENAME_CHARS};
pub use event::{TaskEvent, Unassignment};
pub use flow::{
    Breakdown, CycleTime, FlowRange, FlowReport, Interval, IntervalFlow, MAX_BREAKDOWN, MAX_INTERVALS, TaskFacts,
    Transition,
};
pub use history::StatusChange;
pub use import::{
    ImportIssue, ImportPlan, ImportRecord, MAX_IMPORT_ROWS, PlannedTask, StatusMap, plan_import, usual_priority,
    usual_status,
};
pub use job::{
    ExportFormat, Job, JobKind, JobResult, JobState, MAX_JOB_ERROR_CHARS, job_error, neutralise_formula,
    restore_formula,
};
pub use policy::{Access, Denied, ProjectRole};
pub use position::{LONG_POSITION_LEN, MAX_POSITION_LEN, Position, PositionError, SPREAD_POSITION_LEN};
pub use search::{
    DESCRIPTION_WEIGHT, IndexedWord, MAX_SEARCH_WORDS, SearchWords, TITLE_WEIGHT, WORDS_VERSION, WordChanges,
    index_words,
};
pub use task::{
    Assignees, Comment, CommentBody, Description, Estimate, Labels, MAX_ASSIGNEES, MAX_DEPTH, MAX_LABELS, NewTask,
    ParentChain, Priority, Schedule, Status, Task, Title, check_parent, split_key,
};

pub use ordo_error::{FieldViolation, Violations};
