//! Ordo's processes by name, for whatever starts them: the harness in-process, `ordo-chaos` as
//! release binaries.

use std::fmt;

/// One of Ordo's processes; they start in this order, so each can be pointed at the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Identity,
    Project,
    Task,
    Audit,
    Notification,
    Gateway,
}

impl Service {
    /// Every process, in start order.
    pub const ALL: [Self; 6] =
        [Self::Identity, Self::Project, Self::Task, Self::Audit, Self::Notification, Self::Gateway];

    /// Its name, as in its schema (`ordo_test_<name>_<id>`) and its binary (`ordo-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Project => "project",
            Self::Task => "task",
            Self::Audit => "audit",
            Self::Notification => "notification",
            Self::Gateway => "gateway",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
