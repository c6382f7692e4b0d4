//! The JSON of `/users`: the bodies and query its routes read, and the users they answer with,
//! translated from identity's messages.

use axum::http::HeaderValue;
use ordo_proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::routes::representation::{etag, malformed, timestamp};

/// Changes to the caller's own profile; absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateMeBody {
    /// 1 to 100 characters after trimming.
    #[schema(min_length = 1, max_length = 100, example = "Alice B.")]
    pub(super) display_name: Option<String>,
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordBody {
    /// The password in use now.
    #[schema(format = Password)]
    pub(super) current_password: String,
    /// 12 to 128 characters.
    #[schema(format = Password, min_length = 12, max_length = 128)]
    pub(super) new_password: String,
}

/// An admin's changes to a user; absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserBody {
    /// The new global role.
    pub(super) role: Option<Role>,
    /// `true` disables the account and revokes all its sessions at once.
    pub(super) disabled: Option<bool>,
}

/// `GET /users` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListUsersParams {
    /// Exact email to look up (any authenticated caller). When given, `q`, `cursor` and `limit` are
    /// not used (a bad `limit` or `cursor` value is still `400`) and the page holds 0 or 1 user. Any string: one that is no user's email (or no email
    /// at all) finds no one.
    pub(super) email: Option<String>,
    /// Admins only: case-insensitive substring of the email or display name.
    pub(super) q: Option<String>,
    /// Admins only: the `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
    /// Admins only: page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(super) limit: Option<String>,
}

/// A user's global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
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
pub(crate) struct User {
    /// The user id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) id: String,
    /// The sign-in email, trimmed and lower-cased.
    #[schema(format = Email, example = "alice@example.com")]
    pub(crate) email: String,
    /// The name shown to others.
    #[schema(example = "Alice")]
    pub(crate) display_name: String,
    /// The global role.
    pub(crate) role: Role,
    /// A disabled user can neither sign in nor use a token.
    pub(crate) disabled: bool,
    /// When the account was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When the account last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
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

/// What anyone may see of another user.
///
/// Exactly these fields (`additionalProperties: false` in the document), so that a full `User`, which
/// has them too, is not also a `PublicProfile` in `UserView`'s `oneOf`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicProfile {
    /// The user id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The name shown to others.
    pub(crate) display_name: String,
}

/// A user found by exact email; the email is included because the caller already knows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UserContact {
    /// The user id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The name shown to others.
    pub(crate) display_name: String,
    /// The email that was looked up.
    #[schema(format = Email)]
    pub(crate) email: String,
}

/// `GET /users/{id}`: the full user for self and admins, the public profile for everyone else.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum UserView {
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
pub(crate) struct UserPage {
    /// The users of this page, in a stable order.
    pub(crate) items: Vec<User>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// The result of an exact email lookup, shaped as a page of 0 or 1 items.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UserContactPage {
    /// The user with that email, if any.
    pub(crate) items: Vec<UserContact>,
    /// Always `null`: there is never a next page.
    pub(crate) next_cursor: Option<String>,
}

/// `GET /users`: a lookup by email or an admin's listing.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum UserListing {
    /// `?email=` was given.
    Lookup(UserContactPage),
    /// Every user (admins only).
    Users(UserPage),
}

/// `anyOf`, not the `oneOf` utoipa derives for an untagged enum: an empty page is both a
/// `UserContactPage` and a `UserPage`, which `oneOf` forbids.
impl utoipa::PartialSchema for UserListing {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, Schema};
        use utoipa::openapi::{Ref, RefOr};
        let any_of = AnyOfBuilder::new()
            .item(Ref::from_schema_name(<UserContactPage as ToSchema>::name()))
            .item(Ref::from_schema_name(<UserPage as ToSchema>::name()))
            .description(Some(
                "`GET /users`: a lookup by email (`UserContactPage`, `?email=` was given) or an admin's listing \
                 (`UserPage`).",
            ))
            .build();
        RefOr::T(Schema::AnyOf(any_of))
    }
}

impl ToSchema for UserListing {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema as _;
        schemas.push((UserContactPage::name().into_owned(), UserContactPage::schema()));
        <UserContactPage as ToSchema>::schemas(schemas);
        schemas.push((UserPage::name().into_owned(), UserPage::schema()));
        <UserPage as ToSchema>::schemas(schemas);
    }
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
