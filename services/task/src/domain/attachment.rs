//! Attachments: files kept in object storage, described here. The bytes never pass through the
//! domain; an attachment records what they were (size, SHA-256) and where they are (its object key).

use time::OffsetDateTime;
use uuid::Uuid;

use super::FieldViolation;

/// The longest file name, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;
/// The longest media type, in bytes.
const MAX_CONTENT_TYPE_LEN: usize = 255;
/// What an upload without a declared type is stored as.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A file name as the uploader gave it: 1..255 characters after trimming, no path separators and no
/// control characters, so it is safe in a `Content-Disposition` header and a download dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filename(String);

impl Filename {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let name = raw.trim();
        let invalid = |message: &str| FieldViolation::new("filename", message);
        if name.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if name.chars().count() > MAX_FILENAME_CHARS {
            return Err(invalid("must be at most 255 characters"));
        }
        if name.contains(['/', '\\']) {
            return Err(invalid("must not contain a path separator"));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        if name == "." || name == ".." {
            return Err(invalid("must name a file"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A media type such as `image/png` (parameters such as `; charset=utf-8` kept as given), or
/// [`DEFAULT_CONTENT_TYPE`] when the upload declared none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);

impl ContentType {
    /// Validates `raw`; empty means [`DEFAULT_CONTENT_TYPE`].
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(Self(DEFAULT_CONTENT_TYPE.to_owned()));
        }
        let invalid = || FieldViolation::new("content_type", "must be a media type such as image/png");
        if value.len() > MAX_CONTENT_TYPE_LEN || !value.is_ascii() || value.chars().any(|c| c.is_ascii_control()) {
            return Err(invalid());
        }
        let essence = value.split(';').next().unwrap_or_default().trim();
        let mut parts = essence.split('/');
        let (Some(kind), Some(subtype), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        // RFC 9110 token characters.
        let token =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !token(kind) || !token(subtype) {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }

    /// The media type.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A file attached to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub filename: Filename,
    pub content_type: ContentType,
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub uploaded_by: Uuid,
    pub created_at: OffsetDateTime,
}

impl Attachment {
    /// Where the bytes of attachment `id` of `task_id` in `project_id` live in the bucket. Grouped by
    /// project and task, so an operator can find (or expire) a project's objects by prefix.
    pub fn object_key(project_id: Uuid, task_id: Uuid, id: Uuid) -> String {
        format!("attachments/{project_id}/{task_id}/{id}")
    }

    /// This attachment's object key.
    pub fn key(&self) -> String {
        Self::object_key(self.project_id, self.task_id, self.id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn filenames_are_trimmed_and_bounded() {
        assert_eq!(Filename::parse("  report.pdf ").unwrap().as_str(), "report.pdf");
        assert_eq!(Filename::parse("Übersicht 2026 (final).xlsx").unwrap().as_str(), "Übersicht 2026 (final).xlsx");
        assert!(Filename::parse(&"é".repeat(255)).is_ok());
        for bad in ["", "   ", "a/b.txt", "..\\x", "a\nb", "tab\there", ".", ".."] {
            let error = Filename::parse(bad).unwrap_err();
            assert_eq!(error.field, "filename", "{bad:?}");
        }
        assert!(Filename::parse(&"é".repeat(256)).is_err());
    }

    #[test]
    fn content_types_default_and_must_be_media_types() {
        assert_eq!(ContentType::parse("").unwrap().as_str(), DEFAULT_CONTENT_TYPE);
        assert_eq!(ContentType::parse("image/png").unwrap().as_str(), "image/png");
        assert_eq!(ContentType::parse("text/plain; charset=utf-8").unwrap().as_str(), "text/plain; charset=utf-8");
        assert_eq!(
            ContentType::parse("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet").unwrap().as_str(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        for bad in ["png", "image/", "/png", "image/png/x", "image png/x", "text/plain\r\nX-Evil: 1", "ïmage/png"] {
            let error = ContentType::parse(bad).unwrap_err();
            assert_eq!(error.field, "content_type", "{bad:?}");
        }
    }

    #[test]
    fn object_keys_group_by_project_and_task() {
        let (p, t, a) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(Attachment::object_key(p, t, a), format!("attachments/{p}/{t}/{a}"));
    }
}
