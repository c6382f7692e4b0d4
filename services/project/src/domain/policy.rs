//! Who may do what in a project. Every decision of the service goes through [`Access`], so the rules
//! of API.md live in one place and are tested here without a database.
//!
//! A caller who may not see a project is told it does not exist ([`Denied::NotFound`]), never that it
//! lacks the right: refusing with "forbidden" would confirm that the project exists.

use super::ProjectRole;

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The caller may not see the project at all.
    NotFound,
    /// The caller sees the project but its role does not allow the action.
    Forbidden(&'static str),
}

/// A caller's standing in one project: their role there, if any, and whether they are a global
/// admin (who may read every project, and do no more unless they are also a member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The caller's role in the project; `None` for a non-member.
    pub role: Option<ProjectRole>,
    /// The caller is a global admin.
    pub global_admin: bool,
}

impl Access {
    /// The standing of a caller with `role` in the project.
    pub fn new(role: Option<ProjectRole>, global_admin: bool) -> Self {
        Self { role, global_admin }
    }

    /// Reading the project, its settings and its members.
    pub fn read(self) -> Result<(), Denied> {
        if self.role.is_some() || self.global_admin { Ok(()) } else { Err(Denied::NotFound) }
    }

    /// Any action that needs at least `least` in the project.
    fn require(self, least: ProjectRole, why: &'static str) -> Result<(), Denied> {
        self.read()?;
        match self.role {
            Some(role) if role >= least => Ok(()),
            _ => Err(Denied::Forbidden(why)),
        }
    }

    /// Changing the project's name or description.
    pub fn update_project(self) -> Result<(), Denied> {
        self.require(ProjectRole::Admin, "only project admins and owners change the project")
    }

    /// Archiving or unarchiving.
    pub fn archive_project(self) -> Result<(), Denied> {
        self.require(ProjectRole::Owner, "only project owners archive or unarchive the project")
    }

    /// Deleting the project.
    pub fn delete_project(self) -> Result<(), Denied> {
        self.require(ProjectRole::Owner, "only project owners delete the project")
    }

    /// Adding a member with `role`.
    pub fn add_member(self, role: ProjectRole) -> Result<(), Denied> {
        self.require(ProjectRole::Admin, "only project admins and owners add members")?;
        if role == ProjectRole::Owner {
            self.require(ProjectRole::Owner, "only project owners grant the owner role")?;
        }
        Ok(())
    }

    /// Changing the role of a member who has `current` to `new`.
    pub fn change_member_role(self, current: ProjectRole, new: ProjectRole) -> Result<(), Denied> {
        self.require(ProjectRole::Admin, "only project admins and owners change roles")?;
        if current == ProjectRole::Owner || new == ProjectRole::Owner {
            self.require(ProjectRole::Owner, "only project owners grant or take the owner role")?;
        }
        Ok(())
    }

    /// Removing a member who has `role`; `is_self` when the caller leaves on their own, which any
    /// member may do.
    pub fn remove_member(self, role: ProjectRole, is_self: bool) -> Result<(), Denied> {
        if is_self && self.role.is_some() {
            return Ok(());
        }
        self.require(ProjectRole::Admin, "only project admins and owners remove members")?;
        if role == ProjectRole::Owner {
            self.require(ProjectRole::Owner, "only project owners remove an owner")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProjectRole::{Admin, Member, Owner, Viewer};

    const OWNER: Access = Access { role: Some(Owner), global_admin: false };
    const ADMIN: Access = Access { role: Some(Admin), global_admin: false };
    const MEMBER: Access = Access { role: Some(Member), global_admin: false };
    const VIEWER: Access = Access { role: Some(Viewer), global_admin: false };
    const STRANGER: Access = Access { role: None, global_admin: false };
    const GLOBAL_ADMIN: Access = Access { role: None, global_admin: true };

    fn forbidden<T>(result: Result<T, Denied>) -> bool {
        matches!(result, Err(Denied::Forbidden(_)))
    }

    #[test]
    fn every_member_and_global_admins_read_and_strangers_see_nothing() {
        for access in [OWNER, ADMIN, MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert_eq!(access.read(), Ok(()), "{access:?}");
        }
        assert_eq!(STRANGER.read(), Err(Denied::NotFound));
    }

    #[test]
    fn strangers_get_not_found_for_every_action() {
        assert_eq!(STRANGER.update_project(), Err(Denied::NotFound));
        assert_eq!(STRANGER.archive_project(), Err(Denied::NotFound));
        assert_eq!(STRANGER.delete_project(), Err(Denied::NotFound));
        for role in ProjectRole::ALL {
            assert_eq!(STRANGER.add_member(role), Err(Denied::NotFound));
            assert_eq!(STRANGER.change_member_role(role, Viewer), Err(Denied::NotFound));
            assert_eq!(STRANGER.remove_member(role, false), Err(Denied::NotFound));
            assert_eq!(STRANGER.remove_member(role, true), Err(Denied::NotFound));
        }
    }

    #[test]
    fn settings_are_for_admins_and_owners_and_the_lifecycle_for_owners() {
        assert_eq!(OWNER.update_project(), Ok(()));
        assert_eq!(ADMIN.update_project(), Ok(()));
        for access in [MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert!(forbidden(access.update_project()), "{access:?}");
        }
        assert_eq!(OWNER.archive_project(), Ok(()));
        assert_eq!(OWNER.delete_project(), Ok(()));
        for access in [ADMIN, MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert!(forbidden(access.archive_project()), "{access:?}");
            assert!(forbidden(access.delete_project()), "{access:?}");
        }
    }

    #[test]
    fn admins_manage_members_below_owner_and_only_owners_touch_owners() {
        for role in ProjectRole::ALL {
            assert_eq!(OWNER.add_member(role), Ok(()));
        }
        for role in [Admin, Member, Viewer] {
            assert_eq!(ADMIN.add_member(role), Ok(()), "{role}");
        }
        assert!(forbidden(ADMIN.add_member(Owner)));
        for access in [MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert!(forbidden(access.add_member(Viewer)), "{access:?}");
        }

        assert_eq!(ADMIN.change_member_role(Member, Admin), Ok(()));
        assert_eq!(ADMIN.change_member_role(Admin, Viewer), Ok(()));
        assert!(forbidden(ADMIN.change_member_role(Owner, Admin)));
        assert!(forbidden(ADMIN.change_member_role(Member, Owner)));
        assert_eq!(OWNER.change_member_role(Owner, Member), Ok(()));
        assert_eq!(OWNER.change_member_role(Viewer, Owner), Ok(()));
        for access in [MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert!(forbidden(access.change_member_role(Viewer, Member)), "{access:?}");
        }

        assert_eq!(ADMIN.remove_member(Member, false), Ok(()));
        assert!(forbidden(ADMIN.remove_member(Owner, false)));
        assert_eq!(OWNER.remove_member(Owner, false), Ok(()));
        for access in [MEMBER, VIEWER, GLOBAL_ADMIN] {
            assert!(forbidden(access.remove_member(Viewer, false)), "{access:?}");
        }
    }

    #[test]
    fn any_member_may_leave() {
        assert_eq!(VIEWER.remove_member(Viewer, true), Ok(()));
        assert_eq!(MEMBER.remove_member(Member, true), Ok(()));
        assert_eq!(OWNER.remove_member(Owner, true), Ok(()));
    }
}
