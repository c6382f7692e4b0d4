//! The use cases of the project service, one method each.

use std::sync::Arc;

use ordo_auth::Caller;
use time::OffsetDateTime;
use uuid::Uuid;

use super::cursor::{self, MemberCursor, ProjectCursor};
use super::ports::{AccessCache, AccessRecord, CacheLookup, ProjectQuery, ProjectStore, ProjectTx, UserDirectory};
use super::{AppError, Result, denied};
use crate::domain::{
    Access, Description, MemberRemoval, Membership, Project, ProjectEvent, ProjectKey, ProjectName, ProjectRole,
    Violations,
};

/// Where a request came from, as the gateway saw it; recorded in the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// Changes to a project's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new description; an empty one removes it.
    pub description: Option<String>,
    /// Apply only if the project is still at this version.
    pub expected_version: Option<i64>,
}

/// A page of projects.
#[derive(Debug, Clone)]
pub struct ProjectPage {
    /// The projects, sorted by name then id.
    pub projects: Vec<Project>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// A member as listed.
#[derive(Debug, Clone)]
pub struct MemberView {
    /// The membership.
    pub membership: Membership,
    /// The account is disabled.
    pub user_disabled: bool,
}

/// A page of members.
#[derive(Debug, Clone)]
pub struct MemberPage {
    /// The members, oldest membership first.
    pub members: Vec<MemberView>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// The answer of `CheckAccess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessAnswer {
    /// The role the user may act with; `None` for a non-member or a disabled account.
    pub role: Option<ProjectRole>,
    /// The project is archived.
    pub archived: bool,
    /// The project's key.
    pub key: String,
    /// The user is a member whose account is disabled.
    pub user_disabled: bool,
}

/// The project service's use cases.
#[derive(Clone)]
pub struct ProjectService {
    store: Arc<dyn ProjectStore>,
    cache: Arc<dyn AccessCache>,
    users: Arc<dyn UserDirectory>,
}

impl std::fmt::Debug for ProjectService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectService").finish_non_exhaustive()
    }
}

/// The time now, truncated to the microseconds MySQL keeps, so what is returned equals what is read
/// back later.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

/// Global admins may read every project.
fn is_global_admin(caller: &Caller) -> bool {
    caller.role == "admin"
}

/// A project id from a request; one that is not a UUID names no project.
fn project_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound("no such project".into()))
}

/// A member's user id from a request path; one that is not a UUID names no member.
fn member_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound("no such member".into()))
}

impl ProjectService {
    /// The use cases over these ports.
    pub fn new(store: Arc<dyn ProjectStore>, cache: Arc<dyn AccessCache>, users: Arc<dyn UserDirectory>) -> Self {
        Self { store, cache, users }
    }

    /// The caller's standing in a project, read inside `tx` under the project's lock.
    async fn access_in(tx: &mut Box<dyn ProjectTx>, project_id: Uuid, caller: &Caller) -> Result<Access> {
        let role = tx.membership(project_id, caller.user_id).await?.map(|m| m.role);
        Ok(Access::new(role, is_global_admin(caller)))
    }

    /// Locks a project the caller can see; `NotFound` otherwise.
    async fn lock_visible(tx: &mut Box<dyn ProjectTx>, id: Uuid, caller: &Caller) -> Result<(Project, Access)> {
        let project = tx.project_for_update(id).await?.ok_or_else(|| AppError::NotFound("no such project".into()))?;
        let access = Self::access_in(tx, id, caller).await?;
        access.read().map_err(denied)?;
        Ok((project, access))
    }

    /// Writes the events, invalidates the access cache of `invalidate` (before the commit, so no
    /// instance can keep serving what the change undid), and commits.
    async fn finish(
        &self,
        mut tx: Box<dyn ProjectTx>,
        events: &[ProjectEvent],
        caller: &Caller,
        client: &ClientInfo,
        invalidate: &[Uuid],
    ) -> Result<()> {
        for event in events {
            tx.record(event, Some(caller.user_id), client).await?;
        }
        if !invalidate.is_empty() {
            self.cache.invalidate(invalidate).await?;
        }
        tx.commit().await
    }

    /// Creates a project; the caller becomes its owner.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: &str,
        key: &str,
        description: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Project> {
        let mut violations = Violations::default();
        let name = violations.check(ProjectName::parse(name));
        let key = violations.check(ProjectKey::parse(key));
        let description = violations.check(description.map(Description::parse).transpose().map(Option::flatten));
        let (Some(name), Some(key), Some(description)) = (name, key, description) else {
            return Err(AppError::Invalid(violations.0));
        };
        let now = now();
        let project = Project::new(Uuid::now_v7(), key, name, description, caller.user_id, now);
        let owner = Membership {
            project_id: project.id,
            user_id: caller.user_id,
            role: ProjectRole::Owner,
            added_at: now,
            version: 1,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_project(&project).await?;
        tx.insert_membership(&owner).await?;
        let events = [ProjectEvent::Created { project: project.clone() }];
        self.finish(tx, &events, caller, client, &[project.id]).await?;
        Ok(project)
    }

    /// The caller's projects (global admins: every project), archived or active, sorted by name.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id))]
    pub async fn list_projects(
        &self,
        caller: &Caller,
        archived: bool,
        limit: i32,
        cursor: &str,
    ) -> Result<ProjectPage> {
        let limit = cursor::limit(limit)?;
        let after = cursor::decode::<ProjectCursor>(cursor)?.map(|c| (c.name, c.id));
        let member = if is_global_admin(caller) { None } else { Some(caller.user_id) };
        let query = ProjectQuery { member, archived, after, limit: limit + 1 };
        let mut projects = self.store.list_projects(&query).await?;
        let next_cursor = if projects.len() > limit as usize {
            projects.truncate(limit as usize);
            projects.last().map(|p| cursor::encode(&ProjectCursor { name: p.name.as_str().to_owned(), id: p.id }))
        } else {
            None
        };
        Ok(ProjectPage { projects, next_cursor })
    }

    /// One project the caller can see.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id))]
    pub async fn get_project(&self, caller: &Caller, id: &str) -> Result<Project> {
        let id = project_id(id)?;
        let (project, role) = self
            .store
            .project_with_role(id, caller.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such project".into()))?;
        Access::new(role, is_global_admin(caller)).read().map_err(denied)?;
        Ok(project)
    }

    /// Changes a project's name or description (project admins and owners; not while archived).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id))]
    pub async fn update_project(
        &self,
        caller: &Caller,
        id: &str,
        update: ProjectUpdate,
        client: &ClientInfo,
    ) -> Result<Project> {
        let id = project_id(id)?;
        let mut tx = self.store.begin().await?;
        let (mut project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        access.update_project().map_err(denied)?;

        let mut violations = Violations::default();
        let name = update.name.as_deref().map(ProjectName::parse).transpose();
        let name = violations.check(name).flatten();
        let description = update.description.as_deref().map(Description::parse).transpose();
        let description = violations.check(description).flatten();
        if !violations.is_empty() {
            return Err(AppError::Invalid(violations.0));
        }
        AppError::check_version(project.version, update.expected_version)?;
        if project.archived {
            return Err(AppError::Conflict("the project is archived; unarchive it to change it".into()));
        }

        let previous = project.version;
        let mut changed = Vec::new();
        if let Some(name) = name.filter(|n| *n != project.name) {
            project.name = name;
            changed.push("name");
        }
        if let Some(description) = description.filter(|d| *d != project.description) {
            project.description = description;
            changed.push("description");
        }
        if changed.is_empty() {
            return Ok(project);
        }
        project.touch(now());
        tx.update_project(&project, previous).await?;
        let events = [ProjectEvent::Updated { project: project.clone(), changed }];
        self.finish(tx, &events, caller, client, &[]).await?;
        Ok(project)
    }

    /// Archives (`archived` true) or unarchives a project (owners). Asking for the state the
    /// project is in already changes nothing and announces nothing.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id, archived))]
    pub async fn set_archived(
        &self,
        caller: &Caller,
        id: &str,
        archived: bool,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<Project> {
        let id = project_id(id)?;
        let mut tx = self.store.begin().await?;
        let (mut project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        access.archive_project().map_err(denied)?;
        AppError::check_version(project.version, expected_version)?;
        if project.archived == archived {
            return Ok(project);
        }
        let previous = project.version;
        project.archived = archived;
        project.touch(now());
        tx.update_project(&project, previous).await?;
        let event = if archived {
            ProjectEvent::Archived { project: project.clone() }
        } else {
            ProjectEvent::Unarchived { project: project.clone() }
        };
        self.finish(tx, &[event], caller, client, &[id]).await?;
        Ok(project)
    }

    /// Deletes a project and its memberships (owners).
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id))]
    pub async fn delete_project(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let id = project_id(id)?;
        let mut tx = self.store.begin().await?;
        let (project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        access.delete_project().map_err(denied)?;
        AppError::check_version(project.version, expected_version)?;
        let member_ids = tx.member_ids(id).await?;
        tx.delete_project(id).await?;
        let events = [ProjectEvent::Deleted { project, member_ids }];
        self.finish(tx, &events, caller, client, &[id]).await
    }

    /// A page of a project's members, oldest membership first.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id))]
    pub async fn list_members(&self, caller: &Caller, id: &str, limit: i32, cursor: &str) -> Result<MemberPage> {
        let id = project_id(id)?;
        let limit = cursor::limit(limit)?;
        let after = match cursor::decode::<MemberCursor>(cursor)? {
            Some(c) => Some((c.added_at()?, c.user_id)),
            None => None,
        };
        let (_, role) = self
            .store
            .project_with_role(id, caller.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such project".into()))?;
        Access::new(role, is_global_admin(caller)).read().map_err(denied)?;
        let mut rows = self.store.list_members(id, after, limit + 1).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|(m, _)| cursor::encode(&MemberCursor::new(m.added_at, m.user_id)))
        } else {
            None
        };
        let members =
            rows.into_iter().map(|(membership, user_disabled)| MemberView { membership, user_disabled }).collect();
        Ok(MemberPage { members, next_cursor })
    }

    /// One member of a project the caller can see.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id, member = %user_id))]
    pub async fn get_member(&self, caller: &Caller, id: &str, user_id: &str) -> Result<MemberView> {
        let id = project_id(id)?;
        let user_id = member_id(user_id)?;
        let (_, role) = self
            .store
            .project_with_role(id, caller.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such project".into()))?;
        Access::new(role, is_global_admin(caller)).read().map_err(denied)?;
        let (membership, user_disabled) =
            self.store.member(id, user_id).await?.ok_or_else(|| AppError::NotFound("no such member".into()))?;
        Ok(MemberView { membership, user_disabled })
    }

    /// Adds a member (project admins and owners; only an owner grants owner). `authorization` is the
    /// caller's bearer credential, with which identity is asked whether the user exists.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id))]
    pub async fn add_member(
        &self,
        caller: &Caller,
        authorization: &str,
        id: &str,
        user_id: &str,
        role: Option<ProjectRole>,
        client: &ClientInfo,
    ) -> Result<MemberView> {
        let id = project_id(id)?;
        // Who may add is decided before the input is judged, so strangers learn nothing.
        let (_, caller_role) = self
            .store
            .project_with_role(id, caller.user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such project".into()))?;
        let access = Access::new(caller_role, is_global_admin(caller));
        access.read().map_err(denied)?;

        let mut violations = Violations::default();
        let user_id = violations.check(
            Uuid::parse_str(user_id).map_err(|_| crate::domain::FieldViolation::new("user_id", "must be a UUID")),
        );
        let role = violations.check(
            role.ok_or_else(|| crate::domain::FieldViolation::new("role", "must be owner, admin, member or viewer")),
        );
        let (Some(user_id), Some(role)) = (user_id, role) else {
            return Err(AppError::Invalid(violations.0));
        };
        access.add_member(role).map_err(denied)?;
        // Asked outside the transaction: no lock is held across a network call.
        if !self.users.user_exists(authorization, user_id).await? {
            return Err(AppError::field("user_id", "no user has this id"));
        }

        let mut tx = self.store.begin().await?;
        let (project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        access.add_member(role).map_err(denied)?;
        if tx.membership(id, user_id).await?.is_some() {
            return Err(crate::app::already_member());
        }
        let membership = Membership { project_id: id, user_id, role, added_at: now(), version: 1 };
        tx.insert_membership(&membership).await?;
        let user_disabled = tx.user_disabled(user_id).await?;
        let events = [ProjectEvent::MemberAdded { project, membership: membership.clone() }];
        self.finish(tx, &events, caller, client, &[id]).await?;
        Ok(MemberView { membership, user_disabled })
    }

    /// Changes a member's role; the last owner cannot be demoted.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id, member = %user_id))]
    pub async fn update_member(
        &self,
        caller: &Caller,
        id: &str,
        user_id: &str,
        role: Option<ProjectRole>,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<MemberView> {
        let id = project_id(id)?;
        let user_id = member_id(user_id)?;
        let mut tx = self.store.begin().await?;
        let (project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        let mut membership =
            tx.membership(id, user_id).await?.ok_or_else(|| AppError::NotFound("no such member".into()))?;
        let role = role.ok_or_else(|| AppError::field("role", "must be owner, admin, member or viewer"))?;
        access.change_member_role(membership.role, role).map_err(denied)?;
        AppError::check_version(membership.version, expected_version)?;
        let user_disabled = tx.user_disabled(user_id).await?;
        if membership.role == role {
            return Ok(MemberView { membership, user_disabled });
        }
        if membership.role == ProjectRole::Owner && tx.owner_count(id).await? <= 1 {
            return Err(AppError::Conflict("the last owner cannot be demoted; make someone else owner first".into()));
        }
        let old_role = membership.role;
        membership.role = role;
        membership.version += 1;
        tx.update_membership(&membership).await?;
        let events = [ProjectEvent::MemberRoleChanged { project, user_id, old_role, new_role: role }];
        self.finish(tx, &events, caller, client, &[id]).await?;
        Ok(MemberView { membership, user_disabled })
    }

    /// Removes a member, or the caller leaves; the last owner cannot be removed.
    #[tracing::instrument(skip_all, fields(caller = %caller.user_id, project = %id, member = %user_id))]
    pub async fn remove_member(
        &self,
        caller: &Caller,
        id: &str,
        user_id: &str,
        expected_version: Option<i64>,
        client: &ClientInfo,
    ) -> Result<()> {
        let id = project_id(id)?;
        let user_id = member_id(user_id)?;
        let mut tx = self.store.begin().await?;
        let (project, access) = Self::lock_visible(&mut tx, id, caller).await?;
        let membership =
            tx.membership(id, user_id).await?.ok_or_else(|| AppError::NotFound("no such member".into()))?;
        let is_self = user_id == caller.user_id;
        access.remove_member(membership.role, is_self).map_err(denied)?;
        AppError::check_version(membership.version, expected_version)?;
        if membership.role == ProjectRole::Owner && tx.owner_count(id).await? <= 1 {
            return Err(AppError::Conflict(
                "the last owner cannot be removed; make someone else owner first, or delete the project".into(),
            ));
        }
        tx.delete_membership(id, user_id).await?;
        let how = if is_self { MemberRemoval::Left } else { MemberRemoval::Removed };
        let events = [ProjectEvent::MemberRemoved { project, user_id, role: membership.role, how }];
        self.finish(tx, &events, caller, client, &[id]).await
    }

    /// The role `user_id` may act with in a project, for the other services. The caller must be
    /// able to see the project (an active member, or a global admin); otherwise the project does
    /// not exist as far as the caller is concerned.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check_access(&self, caller: &Caller, project_id: &str, user_id: &str) -> Result<AccessAnswer> {
        let mut violations = Violations::default();
        let project = violations.check(
            Uuid::parse_str(project_id).map_err(|_| crate::domain::FieldViolation::new("project_id", "must be a UUID")),
        );
        let user = violations.check(
            Uuid::parse_str(user_id).map_err(|_| crate::domain::FieldViolation::new("user_id", "must be a UUID")),
        );
        let (Some(project), Some(user)) = (project, user) else {
            return Err(AppError::Invalid(violations.0));
        };
        // The answer shows the project's key and state, so the caller must be able to see the
        // project: a global admin, or an active member.
        let caller_record = self.lookup(project, caller.user_id).await?;
        let visible = match &caller_record {
            AccessRecord::NoProject => false,
            AccessRecord::Project { role, user_disabled, .. } => {
                is_global_admin(caller) || (role.is_some() && !user_disabled)
            }
        };
        if !visible {
            return Err(AppError::NotFound("no such project".into()));
        }
        let record = if user == caller.user_id { caller_record } else { self.lookup(project, user).await? };
        match record {
            AccessRecord::NoProject => Err(AppError::NotFound("no such project".into())),
            AccessRecord::Project { key, archived, role, user_disabled } => {
                Ok(AccessAnswer { role: if user_disabled { None } else { role }, archived, key, user_disabled })
            }
        }
    }

    /// An access record from the cache, or from the database (then cached).
    async fn lookup(&self, project_id: Uuid, user_id: Uuid) -> Result<AccessRecord> {
        let lookup = match self.cache.get(project_id, user_id).await {
            Ok(lookup) => lookup,
            Err(error) => {
                // The database holds the truth; a cache outage only costs speed.
                tracing::warn!(%error, "access cache read failed");
                CacheLookup::Bypass
            }
        };
        match lookup {
            CacheLookup::Hit(record) => {
                metrics::counter!("ordo_project_access_cache_total", "result" => "hit").increment(1);
                Ok(record)
            }
            CacheLookup::Miss(ticket) => {
                metrics::counter!("ordo_project_access_cache_total", "result" => "miss").increment(1);
                let record = self.store.access(project_id, user_id).await?;
                if let Err(error) = self.cache.fill(project_id, user_id, ticket, &record).await {
                    tracing::warn!(%error, "access cache fill failed");
                }
                Ok(record)
            }
            CacheLookup::Bypass => {
                metrics::counter!("ordo_project_access_cache_total", "result" => "bypass").increment(1);
                self.store.access(project_id, user_id).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_uuids_name_nothing() {
        assert!(matches!(project_id("nope"), Err(AppError::NotFound(_))));
        assert!(matches!(member_id(""), Err(AppError::NotFound(_))));
        assert!(project_id(&Uuid::now_v7().to_string()).is_ok());
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
