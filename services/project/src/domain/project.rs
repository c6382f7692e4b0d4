//! Projects, memberships, and the value objects that make an invalid project impossible to build.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

pub use ordo_error::{FieldViolation, Violations};

/// A project key: an upper-case ASCII letter then 1 to 9 upper-case letters or digits
/// (`^[A-Z][A-Z0-9]{1,9}$`). It prefixes task numbers (`ORDO-42`), so it is not normalised: `ordo`
/// is refused rather than silently upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectKey(String);

impl ProjectKey {
    /// Validates `raw` as the field `key`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let bytes = raw.as_bytes();
        let shape_ok = (2..=10).contains(&bytes.len())
            && bytes[0].is_ascii_uppercase()
            && bytes[1..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if shape_ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldViolation::new(
                "key",
                "must be 2 to 10 characters: an upper-case letter, then upper-case letters or digits",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A project name: 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    /// The longest name.
    pub const MAX_CHARS: usize = 200;

    /// Trims and validates `raw` as the field `name`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldViolation::new("name", "is required"));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new("name", "must be at most 200 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldViolation::new("name", "must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A project description: at most 10,000 characters, kept as written (Markdown, line breaks). An
/// empty or all-blank description is no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The longest description.
    pub const MAX_CHARS: usize = 10_000;

    /// Validates `raw` as the field `description`; `None` when it is blank.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldViolation> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldViolation::new("description", "must be at most 10000 characters"));
        }
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(FieldViolation::new("description", "must not contain control characters"));
        }
        Ok(Some(Self(raw.to_owned())))
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A role in a project. The order is strength: `Viewer < Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProjectRole {
    /// Reads.
    Viewer,
    /// Also creates and edits tasks, comments.
    Member,
    /// Also manages members below owner and the project's settings.
    Admin,
    /// Also archives, deletes and grants owner.
    Owner,
}

impl ProjectRole {
    /// Every role, weakest first.
    pub const ALL: [ProjectRole; 4] =
        [ProjectRole::Viewer, ProjectRole::Member, ProjectRole::Admin, ProjectRole::Owner];

    /// The role's name in the API, events and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Member => "member",
            ProjectRole::Admin => "admin",
            ProjectRole::Owner => "owner",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for ProjectRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// UUID v7.
    pub id: Uuid,
    /// Unique key.
    pub key: ProjectKey,
    /// Display name.
    pub name: ProjectName,
    /// Optional description.
    pub description: Option<Description>,
    /// Archived projects are read-only for tasks.
    pub archived: bool,
    /// The user who created it.
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Optimistic-concurrency version, starting at 1.
    pub version: i64,
}

impl Project {
    /// A new project created by `creator` at `now`.
    pub fn new(
        id: Uuid,
        key: ProjectKey,
        name: ProjectName,
        description: Option<Description>,
        creator: Uuid,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            key,
            name,
            description,
            archived: false,
            created_by: creator,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Records a change at `now`: a new version and update time.
    pub fn touch(&mut self, now: OffsetDateTime) {
        self.updated_at = now;
        self.version += 1;
    }
}

/// A user's membership of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The project.
    pub project_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// Their role.
    pub role: ProjectRole,
    /// When they were added.
    pub added_at: OffsetDateTime,
    /// Optimistic-concurrency version, starting at 1.
    pub version: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn keys_follow_the_pattern() {
        for good in ["AB", "ORDO", "A1", "Z123456789", "OPS2"] {
            assert_eq!(ProjectKey::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "A", "ordo", "Ordo", "1AB", "ABCDEFGHIJK", "AB-C", "AB C", " AB", "ÄB", "A_B"] {
            let error = ProjectKey::parse(bad).unwrap_err();
            assert_eq!(error.field, "key", "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProjectName::parse("  Website relaunch ").unwrap().as_str(), "Website relaunch");
        assert_eq!(ProjectName::parse(&"é".repeat(200)).unwrap().as_str().chars().count(), 200);
        for bad in [String::new(), "   ".to_owned(), "é".repeat(201), "a\u{0}b".to_owned()] {
            assert_eq!(ProjectName::parse(&bad).unwrap_err().field, "name", "{bad:?}");
        }
    }

    #[test]
    fn descriptions_keep_their_text_and_blank_means_none() {
        assert_eq!(Description::parse("   ").unwrap(), None);
        let text = "Line one\n\n- item\twith tab";
        assert_eq!(Description::parse(text).unwrap().unwrap().as_str(), text);
        assert!(Description::parse(&"x".repeat(10_000)).unwrap().is_some());
        assert_eq!(Description::parse(&"x".repeat(10_001)).unwrap_err().field, "description");
        assert_eq!(Description::parse("bell\u{7}").unwrap_err().field, "description");
    }

    #[test]
    fn roles_are_ordered_by_strength_and_round_trip() {
        assert!(ProjectRole::Viewer < ProjectRole::Member);
        assert!(ProjectRole::Member < ProjectRole::Admin);
        assert!(ProjectRole::Admin < ProjectRole::Owner);
        for role in ProjectRole::ALL {
            assert_eq!(ProjectRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(ProjectRole::parse("Owner"), None);
        assert_eq!(ProjectRole::parse("superuser"), None);
    }

    #[test]
    fn touching_moves_the_version_and_time() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut project = Project::new(
            Uuid::now_v7(),
            ProjectKey::parse("AB").unwrap(),
            ProjectName::parse("A").unwrap(),
            None,
            Uuid::now_v7(),
            t0,
        );
        project.touch(t0 + time::Duration::seconds(1));
        assert_eq!(project.version, 2);
        assert_eq!(project.updated_at, t0 + time::Duration::seconds(1));
        assert_eq!(project.created_at, t0);
    }
}
