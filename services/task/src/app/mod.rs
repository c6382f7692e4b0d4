//! The task service's use cases. They depend on the ports in [`ports`] only; `infra` implements them
//! with MySQL and the project service. Authorization decisions are made here, through the domain's
//! [`Access`](crate::domain::Access) rules.

mod access_cache;
mod attachments;
mod creates;
mod cursor;
mod error;
pub mod ports;
mod service;

pub use access_cache::AccessCache;
pub use attachments::{AttachmentPage, AttachmentSettings, NewAttachment};
pub use error::{AppError, Result};
pub use service::{
    BulkOutcome, Caller, ClientInfo, CommentPage, ListTasks, MAX_BULK, MAX_MASK_PATHS, PageEncoder, TaskFields,
    TaskPage, TaskService,
};
