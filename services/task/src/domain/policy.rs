//! Who may do what with a project's tasks, from the caller's standing in the project as the project
//! service tells it. A caller who may not see the project is told the task does not exist
//! ([`Denied::NotFound`]), never that it lacks the right.

/// A role in a project, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProjectRole {
    /// Reads.
    Viewer,
    /// Also creates and edits tasks, and comments.
    Member,
    /// Also manages members and settings; deletes others' comments.
    Admin,
    /// Everything.
    Owner,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The caller may not see the project at all.
    NotFound,
    /// The caller sees the project but its role does not allow the action.
    Forbidden(&'static str),
    /// The project is archived: no task of it changes.
    Archived,
}

/// A caller's standing in one project, as `CheckAccess` answered it: the project is visible to the
/// caller (a member, or a global admin who is not one), with the caller's role (`None` for a global
/// admin who is no member, or a disabled account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The caller's role; `None` when it has none it may act with.
    pub role: Option<ProjectRole>,
    /// The project is archived.
    pub archived: bool,
}

impl Access {
    /// Reading tasks, comments and watching: anyone who sees the project. (An invisible project
    /// never gets this far: its `Access` does not exist.)
    pub fn read(self) -> Result<(), Denied> {
        Ok(())
    }

    /// Watching a task: viewers and up (a global admin who is no member has nothing to watch for).
    pub fn watch(self) -> Result<(), Denied> {
        match self.role {
            Some(_) => Ok(()),
            None => Err(Denied::Forbidden("only project members watch tasks")),
        }
    }

    /// Creating, changing or deleting a task, and commenting: members and up, in an active project.
    pub fn write(self) -> Result<(), Denied> {
        match self.role {
            Some(role) if role >= ProjectRole::Member => {
                if self.archived {
                    Err(Denied::Archived)
                } else {
                    Ok(())
                }
            }
            _ => Err(Denied::Forbidden("only project members and up change tasks")),
        }
    }

    /// Editing a comment: its author only (who must still be able to write).
    pub fn edit_comment(self, is_author: bool) -> Result<(), Denied> {
        if !is_author {
            return Err(Denied::Forbidden("only its author edits a comment"));
        }
        self.write()
    }

    /// Deleting a comment: its author (still a member), or a project admin or owner.
    pub fn delete_comment(self, is_author: bool) -> Result<(), Denied> {
        let allowed = match self.role {
            Some(role) if role >= ProjectRole::Admin => true,
            Some(role) if role >= ProjectRole::Member => is_author,
            _ => false,
        };
        if !allowed {
            return Err(Denied::Forbidden("only its author or a project admin deletes a comment"));
        }
        if self.archived { Err(Denied::Archived) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(role: Option<ProjectRole>) -> Access {
        Access { role, archived: false }
    }

    #[test]
    fn viewers_read_and_watch_but_do_not_write() {
        let viewer = access(Some(ProjectRole::Viewer));
        assert!(viewer.read().is_ok() && viewer.watch().is_ok());
        assert!(matches!(viewer.write(), Err(Denied::Forbidden(_))));
    }

    #[test]
    fn members_and_up_write_unless_the_project_is_archived() {
        for role in [ProjectRole::Member, ProjectRole::Admin, ProjectRole::Owner] {
            assert!(access(Some(role)).write().is_ok());
            assert_eq!(Access { role: Some(role), archived: true }.write(), Err(Denied::Archived));
        }
    }

    #[test]
    fn a_global_admin_who_is_no_member_only_reads() {
        let admin = access(None);
        assert!(admin.read().is_ok());
        assert!(matches!(admin.write(), Err(Denied::Forbidden(_))));
        assert!(matches!(admin.watch(), Err(Denied::Forbidden(_))));
        assert!(matches!(admin.delete_comment(false), Err(Denied::Forbidden(_))));
    }

    #[test]
    fn comments_are_edited_by_their_author_and_deleted_by_it_or_an_admin() {
        let member = access(Some(ProjectRole::Member));
        assert!(member.edit_comment(true).is_ok());
        assert!(matches!(member.edit_comment(false), Err(Denied::Forbidden(_))));
        assert!(matches!(access(Some(ProjectRole::Owner)).edit_comment(false), Err(Denied::Forbidden(_))));
        assert!(member.delete_comment(true).is_ok());
        assert!(matches!(member.delete_comment(false), Err(Denied::Forbidden(_))));
        assert!(access(Some(ProjectRole::Admin)).delete_comment(false).is_ok());
        assert!(access(Some(ProjectRole::Owner)).delete_comment(false).is_ok());
        // A viewer who once wrote a comment (and was demoted) no longer deletes it.
        assert!(matches!(access(Some(ProjectRole::Viewer)).delete_comment(true), Err(Denied::Forbidden(_))));
        let archived = Access { role: Some(ProjectRole::Owner), archived: true };
        assert_eq!(archived.delete_comment(false), Err(Denied::Archived));
    }
}
