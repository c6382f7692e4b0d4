//! The JSON of `/projects`: the bodies and queries its routes read, and the projects and members they
//! answer with, translated from the project service's messages.

use axum::http::HeaderValue;
use ordo_proto::project::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{not_null, null_is_a_value};
use crate::routes::representation::{etag, malformed, timestamp};

/// A new project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProjectBody {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, example = "Ordo backend")]
    pub(super) name: String,
    /// `^[A-Z][A-Z0-9]{1,9}$`, unique across all projects (`409` when taken); prefixes the keys of the
    /// project's tasks (`ORDO-42`).
    #[schema(pattern = "^[A-Z][A-Z0-9]{1,9}$", min_length = 2, max_length = 10, example = "ORDO")]
    pub(super) key: String,
    /// At most 10,000 characters; absent or `null` for none.
    #[schema(max_length = 10000, example = "The services and the gateway.")]
    pub(super) description: Option<String>,
}

/// Changes to a project; absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateProjectBody {
    /// 1 to 200 characters. A project always has a name, so `null` is refused (`422`).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, min_length = 1, max_length = 200, example = "Ordo backend")]
    pub(super) name: Option<String>,
    /// At most 10,000 characters; `null` or `""` removes the description.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, max_length = 10000, example = "The services and the gateway.")]
    pub(super) description: Option<Option<String>>,
}

/// A user to make a member of a project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMemberBody {
    /// The user's id (find it with `GET /users?email=`); a user that does not exist is a `422`.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000002")]
    pub(super) user_id: String,
    /// The member's role; only an owner grants `owner`.
    pub(super) role: ProjectRole,
}

/// A member's new role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMemberBody {
    /// The new role; only an owner grants `owner` or changes an owner's role.
    pub(super) role: ProjectRole,
}

/// `GET /projects` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListProjectsParams {
    /// `true`: only archived projects; `false` (the default): only active ones. Any other value is a
    /// `400`.
    #[param(value_type = Option<bool>, default = false)]
    pub(super) archived: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(super) limit: Option<String>,
}

/// A role in a project, strongest first. Each role may do what the weaker ones may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProjectRole {
    /// Also archives, unarchives and deletes the project, and grants, changes and removes `owner`.
    Owner,
    /// Also changes the project's name and description and manages the members below `owner`.
    Admin,
    /// Also creates and edits tasks and comments.
    Member,
    /// Reads the project, its members and its tasks.
    Viewer,
}

impl ProjectRole {
    fn from_proto(role: i32) -> Result<Self, ApiError> {
        match pb::ProjectRole::try_from(role) {
            Ok(pb::ProjectRole::Owner) => Ok(Self::Owner),
            Ok(pb::ProjectRole::Admin) => Ok(Self::Admin),
            Ok(pb::ProjectRole::Member) => Ok(Self::Member),
            Ok(pb::ProjectRole::Viewer) => Ok(Self::Viewer),
            Ok(pb::ProjectRole::Unspecified) | Err(_) => Err(malformed("a member without a known role")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> pb::ProjectRole {
        match self {
            Self::Owner => pb::ProjectRole::Owner,
            Self::Admin => pb::ProjectRole::Admin,
            Self::Member => pb::ProjectRole::Member,
            Self::Viewer => pb::ProjectRole::Viewer,
        }
    }
}

/// A project: the home of tasks, and the unit of membership.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Project {
    /// The project id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) id: String,
    /// `^[A-Z][A-Z0-9]{1,9}$`, unique across projects; prefixes the keys of its tasks (`ORDO-42`).
    #[schema(pattern = "^[A-Z][A-Z0-9]{1,9}$", example = "ORDO")]
    pub(crate) key: String,
    /// 1 to 200 characters.
    #[schema(example = "Ordo backend")]
    pub(crate) name: String,
    /// At most 10,000 characters; `null` when the project has none.
    #[schema(required = true, example = "The services and the gateway.")]
    pub(crate) description: Option<String>,
    /// An archived project is read-only: every task write in it answers `409`.
    pub(crate) archived: bool,
    /// The user who created the project (its first owner).
    #[schema(format = Uuid)]
    pub(crate) created_by: String,
    /// When the project was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When the project last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
}

impl Project {
    /// The project of a response that must carry one.
    pub(crate) fn from_proto(project: Option<pb::Project>) -> Result<Self, ApiError> {
        let project = project.ok_or_else(|| malformed("a response without its project"))?;
        Ok(Self {
            created_at: timestamp(project.created_at)?,
            updated_at: timestamp(project.updated_at)?,
            id: project.id,
            key: project.key,
            name: project.name,
            description: project.description,
            archived: project.archived,
            created_by: project.created_by,
            version: project.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of projects, sorted by name, then id.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ProjectPage {
    /// The projects of this page.
    pub(crate) items: Vec<Project>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

/// A user's membership of a project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Member {
    /// The member's user id.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) user_id: String,
    /// The member's role in the project.
    pub(crate) role: ProjectRole,
    /// When the user became a member (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) added_at: OffsetDateTime,
    /// Increases on every change of the membership; sent as `ETag: "<version>"`, checked against
    /// `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
    /// The account is disabled: it keeps its membership but cannot act.
    pub(crate) user_disabled: bool,
}

impl Member {
    /// The member of a response that must carry one.
    pub(crate) fn from_proto(member: Option<pb::Member>) -> Result<Self, ApiError> {
        let member = member.ok_or_else(|| malformed("a response without its member"))?;
        Ok(Self {
            role: ProjectRole::from_proto(member.role)?,
            added_at: timestamp(member.added_at)?,
            user_id: member.user_id,
            version: member.version,
            user_disabled: member.user_disabled,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A page of a project's members, oldest membership first (by `added_at`, then user id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct MemberPage {
    /// The members of this page.
    pub(crate) items: Vec<Member>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn proto_project() -> pb::Project {
        pb::Project {
            id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            key: "ORDO".into(),
            name: "Ordo".into(),
            description: None,
            archived: false,
            created_by: "0190b6a4-7c1e-7000-8000-000000000001".into(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 5_000 }),
            updated_at: Some(prost_types::Timestamp { seconds: 1_714_564_801, nanos: 0 }),
            version: 2,
        }
    }

    #[test]
    fn a_project_without_a_description_has_a_null_one() {
        let project = Project::from_proto(Some(proto_project())).unwrap();

        let json = serde_json::to_value(&project).unwrap();

        assert_eq!(json["description"], serde_json::Value::Null);
        assert_eq!(json["created_at"], "2024-05-01T12:00:00.000005Z");
        assert_eq!(json["version"], 2);
        assert_eq!(project.etag(), "\"2\"");
    }

    #[test]
    fn a_project_role_is_a_lowercase_string_both_ways() {
        for (role, text) in [
            (ProjectRole::Owner, "owner"),
            (ProjectRole::Admin, "admin"),
            (ProjectRole::Member, "member"),
            (ProjectRole::Viewer, "viewer"),
        ] {
            assert_eq!(serde_json::to_value(role).unwrap(), text);
            assert_eq!(serde_json::from_value::<ProjectRole>(text.into()).unwrap(), role);
            assert_eq!(ProjectRole::from_proto(role.to_proto() as i32).unwrap(), role);
        }
    }

    #[test]
    fn a_member_without_a_role_is_a_backend_fault() {
        let member = pb::Member {
            user_id: "u1".into(),
            role: pb::ProjectRole::Unspecified as i32,
            added_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            version: 1,
            user_disabled: false,
        };
        assert_eq!(
            Member::from_proto(Some(member)).unwrap_err().status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
