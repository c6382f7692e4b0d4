//! Accounts and the value objects that make an invalid account impossible to build.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

pub use ordo_error::{FieldViolation, Violations};

fn violation(field: &'static str, message: impl Into<String>) -> FieldViolation {
    FieldViolation::new(field, message)
}

/// A normalised email address: trimmed, lower-cased, at most 254 characters, of valid shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The longest address SMTP allows (RFC 5321, 4.5.3.1.3).
    pub const MAX_LEN: usize = 254;

    /// Normalises and validates `raw` as the field `email`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(violation("email", "is required"));
        }
        if email.chars().count() > Self::MAX_LEN {
            return Err(violation("email", "must be at most 254 characters"));
        }
        if !is_valid_address(&email) {
            return Err(violation("email", "is not a valid email address"));
        }
        Ok(Self(email))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The practical shape of an address (what browsers accept for `<input type=email>`, from the WHATWG
/// HTML spec): one `@`, a local part of permitted characters, and a domain of dot-separated labels
/// of letters, digits and inner hyphens, with at least one dot.
fn is_valid_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.contains('@') {
        return false;
    }
    let local_ok = local.chars().all(|c| c.is_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok && !local.starts_with('.') && !local.ends_with('.') && !local.contains("..")
}

/// A display name: 1..100 characters after trimming, no control characters (as a project name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims and validates `raw` as the field `display_name`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let name = Self::from_stored(raw)?;
        if name.0.chars().any(char::is_control) {
            return Err(violation("display_name", "must not contain control characters"));
        }
        Ok(name)
    }

    /// A stored name, under the rules of every release that wrote one (rows from before control
    /// characters were refused still read).
    pub fn from_stored(raw: &str) -> Result<Self, FieldViolation> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(violation("display_name", "is required")),
            1..=100 => Ok(Self(name.to_owned())),
            _ => Err(violation("display_name", "must be at most 100 characters")),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 12..128 characters (NIST SP 800-63B: length, not composition rules).
#[derive(Clone, PartialEq, Eq)]
pub struct PlainPassword(String);

impl fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainPassword(***)")
    }
}

impl PlainPassword {
    /// Validates `raw` against the password policy, reporting it as `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        match raw.chars().count() {
            0..=11 => Err(violation(field, "must be at least 12 characters")),
            12..=128 => Ok(Self(raw.to_owned())),
            _ => Err(violation(field, "must be at most 128 characters")),
        }
    }

    /// The password.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A user's global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May list and manage every account, and read every project.
    Admin,
    /// Everyone else.
    Member,
}

impl Role {
    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Parses a role name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUID v7.
    pub id: Uuid,
    /// Unique, normalised.
    pub email: Email,
    /// Shown to others.
    pub display_name: DisplayName,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Global role.
    pub role: Role,
    /// A disabled account cannot log in and its sessions are revoked.
    pub disabled: bool,
    /// When it registered.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Bumped on every change (ETag).
    pub version: i64,
}

impl User {
    /// A new account as registered, before the first-account rule decides its role.
    pub fn register(email: Email, display_name: DisplayName, password_hash: String, now: OffsetDateTime) -> Self {
        Self {
            id: Uuid::now_v7(),
            email,
            display_name,
            password_hash,
            role: Role::Member,
            disabled: false,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Records a change made at `now`.
    pub fn touch(&mut self, now: OffsetDateTime) {
        self.updated_at = now;
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  Alice@Example.COM ").map(|e| e.0), Ok("alice@example.com".to_owned()));
    }

    #[test]
    fn email_rejects_bad_shapes() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@-x.com",
            "a..b@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn email_accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("dev+ordo@mail.example.co.uk").is_ok());
    }

    #[test]
    fn email_over_254_characters_is_refused() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(long.len(), 259);
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ada ").map(|n| n.0), Ok("Ada".to_owned()));
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse(&"\u{1f600}".repeat(100)).is_ok());
        for control in ["\0", "\u{1b}", "\n", "\u{7f}"] {
            assert!(DisplayName::parse(&format!("A{control}da")).is_err(), "{control:?}");
        }
        let marks = "\u{200f}\u{202e}e\u{301}\u{1f469}\u{200d}\u{1f4bb}";
        assert_eq!(DisplayName::parse(marks).map(|n| n.0), Ok(marks.to_owned()));
        // Rows written before the rule still read.
        assert_eq!(DisplayName::from_stored("A\0da").map(|n| n.0), Ok("A\0da".to_owned()));
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        assert!(PlainPassword::parse("short", "password").is_err());
        assert!(PlainPassword::parse("ééééééééééé", "password").is_err());
        assert!(PlainPassword::parse("éééééééééééé", "password").is_ok());
        assert!(PlainPassword::parse(&"p".repeat(128), "password").is_ok());
        assert!(PlainPassword::parse(&"p".repeat(129), "password").is_err());
    }

    #[test]
    fn violations_collect_every_broken_rule() {
        let mut violations = Violations::default();
        violations.check(Email::parse("nope"));
        violations.check(PlainPassword::parse("short", "password"));
        violations.check(DisplayName::parse(""));
        let fields: Vec<_> = violations.0.iter().map(|v| v.field.as_ref()).collect();
        assert_eq!(fields, ["email", "password", "display_name"]);
    }

    #[test]
    fn password_debug_hides_it() {
        let password = PlainPassword::parse("correct horse battery", "password").unwrap_or_else(|_| unreachable!());
        assert_eq!(format!("{password:?}"), "PlainPassword(***)");
    }
}
