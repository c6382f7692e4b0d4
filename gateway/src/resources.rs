//! The JSON resources the API answers with, translated from the services' protobuf messages. A
//! message the service should never send (a user without timestamps, an unknown role) is a `500`:
//! the client cannot fix it, and the cause is logged.

use axum::http::HeaderValue;
use ordo_proto::identity::v1 as pb;
use ordo_proto::project::v1 as project_pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;

/// A user's global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users; may read every project.
    Admin,
    /// Everyone else.
    Member,
}

impl Role {
    fn from_proto(role: i32) -> Result<Self, ApiError> {
        match pb::Role::try_from(role) {
            Ok(pb::Role::Admin) => Ok(Self::Admin),
            Ok(pb::Role::Member) => Ok(Self::Member),
            Ok(pb::Role::Unspecified) | Err(_) => Err(malformed("a user without a known role")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> pb::Role {
        match self {
            Self::Admin => pb::Role::Admin,
            Self::Member => pb::Role::Member,
        }
    }
}

/// A whole account, as its owner and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// The user id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub id: String,
    /// The sign-in email, trimmed and lower-cased.
    #[schema(format = Email, example = "alice@example.com")]
    pub email: String,
    /// The name shown to others.
    #[schema(example = "Alice")]
    pub display_name: String,
    /// The global role.
    pub role: Role,
    /// A disabled user can neither sign in nor use a token.
    pub disabled: bool,
    /// When the account was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the account last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
}

impl User {
    /// The user of a response that must carry one.
    pub(crate) fn from_proto(user: Option<pb::User>) -> Result<Self, ApiError> {
        let user = user.ok_or_else(|| malformed("a response without its user"))?;
        Ok(Self {
            role: Role::from_proto(user.role)?,
            created_at: timestamp(user.created_at)?,
            updated_at: timestamp(user.updated_at)?,
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            disabled: user.disabled,
            version: user.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// The entity tag of a resource at `version`.
pub(crate) fn etag(version: i64) -> HeaderValue {
    // Digits and quotes only, so always a valid header value.
    HeaderValue::try_from(format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// What anyone may see of another user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicProfile {
    /// The user id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The name shown to others.
    pub display_name: String,
}

/// A user found by exact email; the email is included because the caller already knows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserContact {
    /// The user id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The name shown to others.
    pub display_name: String,
    /// The email that was looked up.
    #[schema(format = Email)]
    pub email: String,
}

/// `GET /users/{id}`: the full user for self and admins, the public profile for everyone else.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserView {
    /// The caller is the user or an admin.
    User(User),
    /// Anyone else.
    Profile(PublicProfile),
}

impl UserView {
    pub(crate) fn from_proto(response: pb::GetUserResponse) -> Result<Self, ApiError> {
        match response.view {
            Some(pb::get_user_response::View::User(user)) => User::from_proto(Some(user)).map(Self::User),
            Some(pb::get_user_response::View::Profile(profile)) => {
                Ok(Self::Profile(PublicProfile { id: profile.id, display_name: profile.display_name }))
            }
            None => Err(malformed("a user lookup without a view")),
        }
    }
}

/// A page of users (admins' listing).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    /// The users of this page, in a stable order.
    pub items: Vec<User>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The result of an exact email lookup, shaped as a page of 0 or 1 items.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserContactPage {
    /// The user with that email, if any.
    pub items: Vec<UserContact>,
    /// Always `null`: there is never a next page.
    pub next_cursor: Option<String>,
}

/// `GET /users`: a lookup by email or an admin's listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserListing {
    /// `?email=` was given.
    Lookup(UserContactPage),
    /// Every user (admins only).
    Users(UserPage),
}

/// A role in a project, strongest first. Each role may do what the weaker ones may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
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
        match project_pb::ProjectRole::try_from(role) {
            Ok(project_pb::ProjectRole::Owner) => Ok(Self::Owner),
            Ok(project_pb::ProjectRole::Admin) => Ok(Self::Admin),
            Ok(project_pb::ProjectRole::Member) => Ok(Self::Member),
            Ok(project_pb::ProjectRole::Viewer) => Ok(Self::Viewer),
            Ok(project_pb::ProjectRole::Unspecified) | Err(_) => Err(malformed("a member without a known role")),
        }
    }

    /// The protobuf value.
    pub(crate) fn to_proto(self) -> project_pb::ProjectRole {
        match self {
            Self::Owner => project_pb::ProjectRole::Owner,
            Self::Admin => project_pb::ProjectRole::Admin,
            Self::Member => project_pb::ProjectRole::Member,
            Self::Viewer => project_pb::ProjectRole::Viewer,
        }
    }
}

/// A project: the home of tasks, and the unit of membership.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Project {
    /// The project id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub id: String,
    /// `^[A-Z][A-Z0-9]{1,9}$`, unique across projects; prefixes the keys of its tasks (`ORDO-42`).
    #[schema(pattern = "^[A-Z][A-Z0-9]{1,9}$", example = "ORDO")]
    pub key: String,
    /// 1 to 200 characters.
    #[schema(example = "Ordo backend")]
    pub name: String,
    /// At most 10,000 characters; `null` when the project has none.
    #[schema(required = true, example = "The services and the gateway.")]
    pub description: Option<String>,
    /// An archived project is read-only: every task write in it answers `409`.
    pub archived: bool,
    /// The user who created the project (its first owner).
    #[schema(format = Uuid)]
    pub created_by: String,
    /// When the project was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the project last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
}

impl Project {
    /// The project of a response that must carry one.
    pub(crate) fn from_proto(project: Option<project_pb::Project>) -> Result<Self, ApiError> {
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
pub struct ProjectPage {
    /// The projects of this page.
    pub items: Vec<Project>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A user's membership of a project.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    /// The member's user id.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub user_id: String,
    /// The member's role in the project.
    pub role: ProjectRole,
    /// When the user became a member (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
    /// Increases on every change of the membership; sent as `ETag: "<version>"`, checked against
    /// `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
    /// The account is disabled: it keeps its membership but cannot act.
    pub user_disabled: bool,
}

impl Member {
    /// The member of a response that must carry one.
    pub(crate) fn from_proto(member: Option<project_pb::Member>) -> Result<Self, ApiError> {
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
pub struct MemberPage {
    /// The members of this page.
    pub items: Vec<Member>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// An access and refresh token pair.
#[derive(Clone, Serialize, ToSchema)]
pub struct TokenPair {
    /// A JWT (EdDSA) to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// An opaque token for `POST /auth/refresh`; spent when used.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    #[schema(example = 2_592_000)]
    pub refresh_expires_in: i64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

impl TokenPair {
    pub(crate) fn from_proto(tokens: Option<pb::TokenPair>) -> Result<Self, ApiError> {
        let tokens = tokens.ok_or_else(|| malformed("a response without its tokens"))?;
        Ok(Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
        })
    }
}

/// A JSON Web Key Set (RFC 7517), documentation only: the gateway passes identity's document through.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct JwkSet {
    /// The keys that verify access tokens; a token names its key in the `kid` header.
    keys: Vec<Jwk>,
}

/// One Ed25519 public key (RFC 8037), documentation only.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Jwk {
    /// `OKP`.
    #[schema(example = "OKP")]
    kty: String,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    /// The key id.
    kid: String,
    /// `EdDSA`.
    #[schema(example = "EdDSA")]
    alg: String,
    /// `sig`.
    #[schema(rename = "use", example = "sig")]
    key_use: String,
}

fn timestamp(value: Option<prost_types::Timestamp>) -> Result<OffsetDateTime, ApiError> {
    let value = value.ok_or_else(|| malformed("a resource without its timestamps"))?;
    let nanos = i128::from(value.seconds) * 1_000_000_000 + i128::from(value.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| malformed("a timestamp out of range"))
}

fn malformed(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("a service sent {what}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn proto_user() -> pb::User {
        pb::User {
            id: "0190b6a4-7c1e-7000-8000-000000000001".into(),
            email: "alice@example.com".into(),
            display_name: "Alice".into(),
            role: pb::Role::Admin as i32,
            disabled: false,
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 123_456_000 }),
            updated_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            version: 3,
        }
    }

    #[test]
    fn a_user_has_rfc3339_utc_times_and_a_lowercase_role() {
        let user = User::from_proto(Some(proto_user())).unwrap();

        let json = serde_json::to_value(&user).unwrap();

        assert_eq!(json["role"], "admin");
        assert_eq!(json["created_at"], "2024-05-01T12:00:00.123456Z");
        assert_eq!(json["updated_at"], "2024-05-01T12:00:00Z");
        assert_eq!(json["version"], 3);
        assert_eq!(user.etag(), "\"3\"");
    }

    #[test]
    fn a_user_without_a_role_is_a_backend_fault() {
        let user = pb::User { role: pb::Role::Unspecified as i32, ..proto_user() };
        assert_eq!(User::from_proto(Some(user)).unwrap_err().status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    }

    fn proto_project() -> project_pb::Project {
        project_pb::Project {
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
        let member = project_pb::Member {
            user_id: "u1".into(),
            role: project_pb::ProjectRole::Unspecified as i32,
            added_at: Some(prost_types::Timestamp { seconds: 1, nanos: 0 }),
            version: 1,
            user_disabled: false,
        };
        assert_eq!(
            Member::from_proto(Some(member)).unwrap_err().status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_profile_shows_only_id_and_name() {
        let response = pb::GetUserResponse {
            view: Some(pb::get_user_response::View::Profile(pb::PublicProfile {
                id: "u1".into(),
                display_name: "Bob".into(),
            })),
        };

        let json = serde_json::to_value(UserView::from_proto(response).unwrap()).unwrap();

        assert_eq!(json, serde_json::json!({"id": "u1", "display_name": "Bob"}));
    }
}
