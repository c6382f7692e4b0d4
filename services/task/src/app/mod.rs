//! The task service's use cases. They depend on the ports in [`ports`] only; `infra` implements them
//! with MySQL and the project service. Authorization decisions are made here, through the domain's
//! [`Access`](crate::domain::Access) rules.
//!
//! `service` holds the [`TaskService`] and the checks every use case makes, `shared` the small
//! rules they apply alike; each use-case module (`tasks`, `creates`, `lists`, `reads`, `board`,
//! `comments`, `attachments`, `reports`, `jobs`, `imports`) adds its own `impl TaskService` block and imports
//! only those two and the helpers (`placement`, `lanes`, `cursor`, `fields`), never a sibling, except that
//! `imports` are one kind of `jobs`: the two share the job's view and its runner.

mod access_cache;
mod attachments;
mod board;
mod comments;
mod creates;
mod cursor;
mod error;
mod fields;
mod imports;
mod jobs;
mod lanes;
mod lists;
mod placement;
pub mod ports;
mod reads;
mod reports;
mod request;
mod service;
mod shared;
mod tasks;

pub use access_cache::AccessCache;
pub use attachments::{AttachmentPage, NewAttachment};
pub use comments::CommentPage;
pub use error::{AppError, Result};
pub(crate) use error::{denied, interrupted, too_large};
pub use fields::{MAX_BULK, MAX_MASK_PATHS, TaskFields};
pub use imports::{
    ImportOutcome, ImportReport, Issue, MAX_IMPORT_ASSIGNEES, MAX_IMPORT_BYTES, MAX_LISTED_ISSUES, MAX_STATUS_MAP,
};
pub use jobs::{EXPORT_PAGE, JobView, MAX_EXPORT_BYTES, MAX_JOB_ATTEMPTS, MAX_UNFINISHED_JOBS};
pub use lists::{ListTasks, PageEncoder, TaskPage};
pub use ports::{AttachmentSettings, JobSettings};
pub use reads::TaskEncoder;
pub use reports::{Flow, FlowEncoder, FlowRequest, MAX_REPORT_CHANGES, MAX_REPORT_TASKS};
pub use request::{Caller, ClientInfo};
pub use service::TaskService;
pub use shared::EncodedPage;
pub use tasks::BulkOutcome;
