//! The notification service's use cases: [`ingest`] turns an event into notifications inside the
//! consumer's transaction; [`NotificationService`] answers a user's requests about their own. Both
//! depend on the ports in [`ports`] only; `infra` implements them with MySQL.

mod cursor;
mod ingest;
mod live;
pub mod ports;
mod service;
mod stream;

pub use ingest::{Delivery, Fact, ingest};
pub use live::{LiveHub, Wakeups};
pub use ordo_error::{Error as AppError, Result};
pub use service::{MAX_PREFERENCE_ENTRIES, NotificationPage, NotificationService};
pub use stream::StreamItem;
