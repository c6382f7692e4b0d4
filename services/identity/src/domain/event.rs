//! The events identity announces. Each becomes one `ordo.events.v1.Envelope` on the outbox.

use uuid::Uuid;

use super::{Email, Role, User};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// A spent refresh token was presented again: the session is presumed stolen.
    RefreshReuse,
    /// The user changed their password (every other session ends).
    PasswordChanged,
    /// An admin disabled the account.
    UserDisabled,
    /// An admin changed the user's global role: tokens carry the role, so every session ends and the
    /// next login issues tokens with the new one.
    RoleChanged,
}

impl RevokeReason {
    /// The reason's name in events and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::RefreshReuse => "refresh_reuse",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::RoleChanged => "role_changed",
        }
    }
}

/// Something that happened in identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityEvent {
    /// `identity.user_registered`
    UserRegistered { user: User },
    /// `identity.login_succeeded`
    LoginSucceeded { user_id: Uuid, session_id: Uuid },
    /// `identity.login_failed`; `reason` is `bad_credentials`, `disabled` or `locked_out`.
    LoginFailed { email: Email, user_id: Option<Uuid>, reason: &'static str },
    /// `identity.session_revoked`
    SessionRevoked { user_id: Uuid, session_id: Uuid, reason: RevokeReason },
    /// `identity.refresh_reuse_detected`
    RefreshReuseDetected { user_id: Uuid, session_id: Uuid },
    /// `identity.password_changed`
    PasswordChanged { user_id: Uuid },
    /// `identity.user_role_changed`
    UserRoleChanged { user_id: Uuid, old_role: Role, new_role: Role },
    /// `identity.user_disabled` (also when an account is enabled again: `disabled` = false)
    UserDisabled { user_id: Uuid, disabled: bool },
}

impl IdentityEvent {
    /// The routing key, `identity.<event>`.
    pub fn event_type(&self) -> &'static str {
        match self {
            IdentityEvent::UserRegistered { .. } => "identity.user_registered",
            IdentityEvent::LoginSucceeded { .. } => "identity.login_succeeded",
            IdentityEvent::LoginFailed { .. } => "identity.login_failed",
            IdentityEvent::SessionRevoked { .. } => "identity.session_revoked",
            IdentityEvent::RefreshReuseDetected { .. } => "identity.refresh_reuse_detected",
            IdentityEvent::PasswordChanged { .. } => "identity.password_changed",
            IdentityEvent::UserRoleChanged { .. } => "identity.user_role_changed",
            IdentityEvent::UserDisabled { .. } => "identity.user_disabled",
        }
    }

    /// The aggregate the event is about: the user, or the session for session events.
    pub fn entity(&self) -> (&'static str, Option<Uuid>) {
        match self {
            IdentityEvent::UserRegistered { user } => ("user", Some(user.id)),
            IdentityEvent::LoginSucceeded { session_id, .. }
            | IdentityEvent::SessionRevoked { session_id, .. }
            | IdentityEvent::RefreshReuseDetected { session_id, .. } => ("session", Some(*session_id)),
            IdentityEvent::LoginFailed { user_id, .. } => ("user", *user_id),
            IdentityEvent::PasswordChanged { user_id }
            | IdentityEvent::UserRoleChanged { user_id, .. }
            | IdentityEvent::UserDisabled { user_id, .. } => ("user", Some(*user_id)),
        }
    }
}
