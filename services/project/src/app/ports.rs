//! What the use cases need from the outside world, as traits. Writes go through a unit of work
//! ([`ProjectTx`]) so the change and its events commit together (the outbox pattern).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ClientInfo, Result};
use crate::domain::{Membership, Project, ProjectEvent, ProjectRole};

/// What the project service knows of one user in one project: the answer of `CheckAccess`, and the
/// value cached per (project, user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRecord {
    /// No project has this id.
    NoProject,
    /// The project exists.
    Project {
        /// Its key.
        key: String,
        /// Whether it is archived.
        archived: bool,
        /// The user's role there, if they are a member.
        role: Option<ProjectRole>,
        /// The user's account is disabled (they keep the membership but cannot act).
        user_disabled: bool,
    },
}

/// The range a page of projects covers.
#[derive(Debug, Clone)]
pub struct ProjectQuery {
    /// Only the projects this user is a member of; `None` for every project (global admins).
    pub member: Option<Uuid>,
    /// Archived projects, or active ones.
    pub archived: bool,
    /// Resume after this (name, id).
    pub after: Option<(String, Uuid)>,
    /// Rows to return.
    pub limit: u32,
}

/// Opens units of work and answers read-only queries.
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Begins a unit of work.
    async fn begin(&self) -> Result<Box<dyn ProjectTx>>;
    /// A project and `user_id`'s role in it.
    async fn project_with_role(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<(Project, Option<ProjectRole>)>>;
    /// A page of projects sorted by name, then id.
    async fn list_projects(&self, query: &ProjectQuery) -> Result<Vec<Project>>;
    /// A page of a project's members sorted by `added_at`, then user id, each with whether the
    /// account is disabled.
    async fn list_members(
        &self,
        project_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Membership, bool)>>;
    /// One membership, with whether the account is disabled.
    async fn member(&self, project_id: Uuid, user_id: Uuid) -> Result<Option<(Membership, bool)>>;
    /// What the database says about `user_id` in `project_id` (no cache).
    async fn access(&self, project_id: Uuid, user_id: Uuid) -> Result<AccessRecord>;
}

/// One transaction: changes and their events commit together or not at all. Dropping it without
/// [`ProjectTx::commit`] rolls back.
#[async_trait]
pub trait ProjectTx: Send {
    /// Inserts a new project; `KeyTaken` if its key is in use.
    async fn insert_project(&mut self, project: &Project) -> Result<()>;
    /// A project, locked for update. Every membership change locks its project first, so changes to
    /// one project's members are serialised (the last-owner rule holds under concurrency).
    async fn project_for_update(&mut self, id: Uuid) -> Result<Option<Project>>;
    /// Writes a changed project whose stored version is `previous_version`.
    async fn update_project(&mut self, project: &Project, previous_version: i64) -> Result<()>;
    /// Deletes a project and its memberships.
    async fn delete_project(&mut self, id: Uuid) -> Result<()>;
    /// A membership (read under the project's lock).
    async fn membership(&mut self, project_id: Uuid, user_id: Uuid) -> Result<Option<Membership>>;
    /// Inserts a membership; `AlreadyMember` if there is one.
    async fn insert_membership(&mut self, membership: &Membership) -> Result<()>;
    /// Writes a membership's new role and version.
    async fn update_membership(&mut self, membership: &Membership) -> Result<()>;
    /// Deletes a membership.
    async fn delete_membership(&mut self, project_id: Uuid, user_id: Uuid) -> Result<()>;
    /// How many owners the project has.
    async fn owner_count(&mut self, project_id: Uuid) -> Result<u64>;
    /// Every member's user id.
    async fn member_ids(&mut self, project_id: Uuid) -> Result<Vec<Uuid>>;
    /// Whether the account is disabled, as far as identity's events tell.
    async fn user_disabled(&mut self, user_id: Uuid) -> Result<bool>;
    /// Every project `user_id` is a member of.
    async fn projects_of(&mut self, user_id: Uuid) -> Result<Vec<Uuid>>;
    /// Records whether an account is disabled as of `as_of`; `false` when a newer status is stored
    /// already (the change is older news and is ignored).
    async fn set_user_status(&mut self, user_id: Uuid, disabled: bool, as_of: OffsetDateTime) -> Result<bool>;
    /// Appends an event to the outbox.
    async fn record(&mut self, event: &ProjectEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()>;
    /// Commits and wakes the outbox relay.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// A cache lookup that missed: fill it with [`AccessCache::fill`], which stores the record only if no
/// change touched the project since this lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTicket(pub Option<String>);

/// The outcome of a cache lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLookup {
    /// The cached record, current as of the last change.
    Hit(AccessRecord),
    /// Nothing usable: read the database, then fill.
    Miss(CacheTicket),
    /// A change is in flight: read the database and do not fill.
    Bypass,
}

/// The shared cache of access records, invalidated by the writers before they commit.
#[async_trait]
pub trait AccessCache: Send + Sync + 'static {
    /// The cached record of `user_id` in `project_id`.
    async fn get(&self, project_id: Uuid, user_id: Uuid) -> Result<CacheLookup>;
    /// Stores a record read from the database after a miss.
    async fn fill(&self, project_id: Uuid, user_id: Uuid, ticket: CacheTicket, record: &AccessRecord) -> Result<()>;
    /// Invalidates every record of these projects; called before the change commits, and an error
    /// aborts the change (a cache that might keep a removed member in is worse than a failed write).
    async fn invalidate(&self, project_ids: &[Uuid]) -> Result<()>;
}

/// The accounts identity knows.
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// Whether an account with this id exists, asked with the caller's bearer `authorization`.
    async fn user_exists(&self, authorization: &str, user_id: Uuid) -> Result<bool>;
}
