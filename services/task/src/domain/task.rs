//! Tasks and the value objects that make an invalid task impossible to build.

use std::collections::HashSet;
use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{FieldViolation, Position};

/// The most assignees a task has.
pub const MAX_ASSIGNEES: usize = 20;
/// The most labels a task has.
pub const MAX_LABELS: usize = 20;
/// The deepest a task sits in its tree, the root counting as level 1.
pub const MAX_DEPTH: usize = 5;

/// Whether a one-line text (a title, a label) holds a control character (Unicode `Cc`: NUL, ESC,
/// DEL, ...). Such characters are refused rather than stored: they mean nothing in a name, break
/// terminals, logs and e-mail headers, and other stores truncate at NUL. The project service holds
/// project names to the same rule.
fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Whether a multi-line text (a description, a comment) holds a control character other than a
/// tab or a line break.
fn has_control_beyond_line_breaks(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A task's title: 1 to 500 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Validates `raw` as the field `title` (trimmed).
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let title = Self::from_stored(raw)?;
        if has_control(&title.0) {
            return Err(FieldViolation::new("title", "must not contain control characters"));
        }
        Ok(title)
    }

    /// A stored title, under the rules of every release that wrote one (rows from before control
    /// characters were refused still read).
    pub fn from_stored(raw: &str) -> Result<Self, FieldViolation> {
        let trimmed = raw.trim();
        match trimmed.chars().count() {
            1..=500 => Ok(Self(trimmed.to_owned())),
            _ => Err(FieldViolation::new("title", "must be 1 to 500 characters")),
        }
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's description: at most 100,000 characters; an empty one is no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Validates `raw` as the field `description`; `None` when it is empty.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldViolation> {
        if has_control_beyond_line_breaks(raw) {
            return Err(FieldViolation::new("description", "must not contain control characters"));
        }
        Self::from_stored(raw)
    }

    /// A stored description, under the rules of every release that wrote one (rows from before
    /// control characters were refused still read).
    pub fn from_stored(raw: &str) -> Result<Option<Self>, FieldViolation> {
        match raw.chars().count() {
            0 => Ok(None),
            1..=100_000 => Ok(Some(Self(raw.to_owned()))),
            _ => Err(FieldViolation::new("description", "must be at most 100000 characters")),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not planned yet.
    Backlog,
    /// Planned (the default).
    Todo,
    /// Being worked on.
    InProgress,
    /// Waiting for review.
    InReview,
    /// Finished; a done task has `completed_at`.
    Done,
    /// Given up.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] =
        [Status::Backlog, Status::Todo, Status::InProgress, Status::InReview, Status::Done, Status::Cancelled];

    /// Its name in the API and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Backlog => "backlog",
            Status::Todo => "todo",
            Status::InProgress => "in_progress",
            Status::InReview => "in_review",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a task is; ordered weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// No priority (the default).
    None,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl Priority {
    /// Every priority, weakest first.
    pub const ALL: [Priority; 5] = [Priority::None, Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];

    /// Its name in the API and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::None => "none",
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Its rank, 0 (`none`) to 4 (`urgent`): what the database stores and sorts by.
    pub fn rank(self) -> u8 {
        match self {
            Priority::None => 0,
            Priority::Low => 1,
            Priority::Medium => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }

    /// The priority of rank `rank`.
    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.get(usize::from(rank)).copied()
    }
}

/// A task's labels: at most 20, each 1 to 50 characters after trimming, de-duplicated
/// (case-insensitively, as the database compares them) keeping the first spelling and order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<String>);

/// The longest label, in characters.
const MAX_LABEL_CHARS: usize = 50;

impl Labels {
    /// Validates `raw` as the field `labels`.
    ///
    /// The count is checked on the raw list, before any label is looked at, and repeats are found
    /// through a set of folded spellings: whatever a request holds, refusing it or accepting it
    /// costs work in proportion to its size, never to its square.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, FieldViolation> {
        let labels = Self::from_stored(raw)?;
        if labels.0.iter().any(|label| has_control(label)) {
            return Err(FieldViolation::new("labels", "labels must not contain control characters"));
        }
        Ok(labels)
    }

    /// Stored labels, under the rules of every release that wrote them (rows from before control
    /// characters were refused still read).
    pub fn from_stored<S: AsRef<str>>(raw: &[S]) -> Result<Self, FieldViolation> {
        if raw.len() > MAX_LABELS {
            return Err(FieldViolation::new("labels", "at most 20 labels"));
        }
        let mut labels: Vec<String> = Vec::with_capacity(raw.len());
        let mut folded: HashSet<String> = HashSet::with_capacity(raw.len());
        for label in raw {
            let label = label.as_ref().trim();
            // A label of more bytes than four per character allowed is too long whatever it holds;
            // the characters are counted (and folded) only for one of bounded size.
            if label.is_empty() || label.len() > 4 * MAX_LABEL_CHARS || label.chars().count() > MAX_LABEL_CHARS {
                return Err(FieldViolation::new("labels", "each label must be 1 to 50 characters"));
            }
            if folded.insert(label.to_lowercase()) {
                labels.push(label.to_owned());
            }
        }
        Ok(Self(labels))
    }

    /// The labels, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// A task's assignees: at most 20 distinct user ids, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignees(Vec<Uuid>);

impl Assignees {
    /// Validates `raw` as the field `assignee_ids`: UUIDs, at most 20 (counted before any is
    /// parsed), no repeats.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, FieldViolation> {
        if raw.len() > MAX_ASSIGNEES {
            return Err(FieldViolation::new("assignee_ids", "at most 20 assignees"));
        }
        let mut ids = Vec::with_capacity(raw.len());
        let mut seen = HashSet::with_capacity(raw.len());
        for id in raw {
            let id = Uuid::parse_str(id.as_ref())
                .map_err(|_| FieldViolation::new("assignee_ids", "each assignee must be a user id"))?;
            if !seen.insert(id) {
                return Err(FieldViolation::new("assignee_ids", "an assignee is named twice"));
            }
            ids.push(id);
        }
        Ok(Self(ids))
    }

    /// Stored assignees (already validated when written).
    pub fn from_stored(ids: Vec<Uuid>) -> Self {
        Self(ids)
    }

    /// The user ids, in order.
    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }

    /// Whether `user` is one.
    pub fn contains(&self, user: Uuid) -> bool {
        self.0.contains(&user)
    }

    /// The same without `user`.
    pub fn without(&self, user: Uuid) -> Self {
        Self(self.0.iter().copied().filter(|id| *id != user).collect())
    }
}

/// An estimate in minutes, 0 to 100,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate(i32);

impl Estimate {
    /// Validates `minutes` as the field `estimate_minutes`.
    pub fn new(minutes: i32) -> Result<Self, FieldViolation> {
        if (0..=100_000).contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(FieldViolation::new("estimate_minutes", "must be 0 to 100000"))
        }
    }

    /// The minutes.
    pub fn minutes(self) -> i32 {
        self.0
    }
}

/// When a task starts and is due; the due date is never before the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    start_at: Option<OffsetDateTime>,
    due_at: Option<OffsetDateTime>,
}

impl Schedule {
    /// Validates the pair; a due date before the start breaks the field `due_at`.
    pub fn new(start_at: Option<OffsetDateTime>, due_at: Option<OffsetDateTime>) -> Result<Self, FieldViolation> {
        match (start_at, due_at) {
            (Some(start), Some(due)) if due < start => {
                Err(FieldViolation::new("due_at", "must not be before start_at"))
            }
            _ => Ok(Self { start_at, due_at }),
        }
    }

    /// The start.
    pub fn start_at(self) -> Option<OffsetDateTime> {
        self.start_at
    }

    /// The due date.
    pub fn due_at(self) -> Option<OffsetDateTime> {
        self.due_at
    }
}

/// A comment's body: 1 to 20,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    /// Validates `raw` as the field `body`; whitespace alone is no comment.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let body = Self::from_stored(raw)?;
        if has_control_beyond_line_breaks(raw) {
            return Err(FieldViolation::new("body", "must not contain control characters"));
        }
        Ok(body)
    }

    /// A stored body, under the rules of every release that wrote one (rows from before control
    /// characters were refused still read).
    pub fn from_stored(raw: &str) -> Result<Self, FieldViolation> {
        let count = raw.chars().count();
        if raw.trim().is_empty() || count > 20_000 {
            Err(FieldViolation::new("body", "must be 1 to 20000 characters"))
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 500 characters, for notifications.
    pub fn excerpt(&self) -> String {
        self.0.chars().take(500).collect()
    }
}

/// Where a task would hang in its tree: the chain from the intended parent up to its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentChain {
    /// The intended parent's project.
    pub project_id: Uuid,
    /// The intended parent, its parent, ... up to the root.
    pub ancestors: Vec<Uuid>,
}

/// Checks hanging task `task_id` (`None` for a new task) of `project_id`, whose own subtree is
/// `subtree_height` levels tall (1 for a task without subtasks), under the parent described by
/// `chain`: same project, no cycle, and no task deeper than [`MAX_DEPTH`].
pub fn check_parent(
    project_id: Uuid,
    task_id: Option<Uuid>,
    subtree_height: usize,
    chain: &ParentChain,
) -> Result<(), FieldViolation> {
    if chain.project_id != project_id {
        return Err(FieldViolation::new("parent_id", "must be a task of the same project"));
    }
    if let Some(id) = task_id
        && chain.ancestors.contains(&id)
    {
        return Err(FieldViolation::new("parent_id", "would make the task its own ancestor"));
    }
    // The task sits one level below its parent; its deepest subtask `subtree_height - 1` below it.
    if chain.ancestors.len() + subtree_height.max(1) > MAX_DEPTH {
        return Err(FieldViolation::new("parent_id", "tasks nest at most 5 levels deep"));
    }
    Ok(())
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    /// Counts up per project from 1.
    pub number: i64,
    /// The project's key when the task was made (keys never change).
    pub project_key: String,
    pub title: Title,
    pub description: Option<Description>,
    status: Status,
    pub priority: Priority,
    pub assignees: Assignees,
    pub labels: Labels,
    pub schedule: Schedule,
    pub estimate: Option<Estimate>,
    pub parent_id: Option<Uuid>,
    pub reporter_id: Uuid,
    pub position: Position,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    pub version: i64,
}

/// What a new task is made of, as validated values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: Title,
    pub description: Option<Description>,
    pub status: Status,
    pub priority: Priority,
    pub assignees: Assignees,
    pub labels: Labels,
    pub schedule: Schedule,
    pub estimate: Option<Estimate>,
    pub parent_id: Option<Uuid>,
}

impl Task {
    /// A new task (version 1); a task created `done` is completed now.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        id: Uuid,
        project_id: Uuid,
        project_key: String,
        number: i64,
        new: NewTask,
        reporter_id: Uuid,
        position: Position,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            project_id,
            number,
            project_key,
            title: new.title,
            description: new.description,
            status: new.status,
            priority: new.priority,
            assignees: new.assignees,
            labels: new.labels,
            schedule: new.schedule,
            estimate: new.estimate,
            parent_id: new.parent_id,
            reporter_id,
            position,
            created_at: now,
            updated_at: now,
            completed_at: (new.status == Status::Done).then_some(now),
            version: 1,
        }
    }

    /// A task as stored; `completed_at` is kept only while the task is done.
    pub fn restore(mut self, status: Status, completed_at: Option<OffsetDateTime>) -> Self {
        self.status = status;
        self.completed_at = if status == Status::Done { completed_at.or(Some(self.updated_at)) } else { None };
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// When it was completed; set exactly while it is done.
    pub fn completed_at(&self) -> Option<OffsetDateTime> {
        self.completed_at
    }

    /// Sets the status: entering `done` completes the task now, leaving it clears the completion.
    pub fn set_status(&mut self, status: Status, now: OffsetDateTime) {
        if status == self.status {
            return;
        }
        self.completed_at = (status == Status::Done).then_some(now);
        self.status = status;
    }

    /// `<PROJECT_KEY>-<number>`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.project_key, self.number)
    }

    /// Records a change: a new version, updated now.
    pub fn touch(&mut self, now: OffsetDateTime) {
        self.version += 1;
        self.updated_at = now;
    }

    /// Who hears about the task: its watchers, assignees and reporter, each once.
    pub fn recipients(&self, watchers: &[Uuid]) -> Vec<Uuid> {
        // A set beside the list: a task may have many watchers, and this runs on every change.
        let mut seen = HashSet::with_capacity(watchers.len() + self.assignees.as_slice().len() + 1);
        watchers
            .iter()
            .chain(self.assignees.as_slice())
            .chain(std::iter::once(&self.reporter_id))
            .copied()
            .filter(|id| seen.insert(*id))
            .collect()
    }
}

/// A task key split into the project key and the number; `None` when it is not one.
pub fn split_key(key: &str) -> Option<(&str, i64)> {
    let (project, number) = key.rsplit_once('-')?;
    let number: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let shape_ok = (2..=10).contains(&project.len())
        && project.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
        && project.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    shape_ok.then_some((project, number))
}

/// A comment on a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub author_id: Uuid,
    pub body: CommentBody,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::*;

    fn new_task(status: Status) -> Task {
        let new = NewTask {
            title: Title::parse("Write the spec").unwrap(),
            description: None,
            status,
            priority: Priority::None,
            assignees: Assignees::default(),
            labels: Labels::default(),
            schedule: Schedule::default(),
            estimate: None,
            parent_id: None,
        };
        let now = datetime!(2026-11-26 10:00 UTC);
        Task::create(Uuid::now_v7(), Uuid::now_v7(), "ORDO".into(), 7, new, Uuid::now_v7(), Position::first(), now)
    }

    #[test]
    fn titles_are_trimmed_and_1_to_500_characters() {
        assert_eq!(Title::parse("  Fix it  ").unwrap().as_str(), "Fix it");
        assert_eq!(Title::parse("é".repeat(500).as_str()).unwrap().as_str().chars().count(), 500);
        for bad in ["", "   ", &"x".repeat(501)] {
            assert_eq!(Title::parse(bad).unwrap_err().field, "title");
        }
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_in_multi_line_text_are_kept() {
        for control in ["\0", "\u{1b}", "\u{7f}", "\u{85}", "\n", "\t"] {
            let text = format!("a{control}b");
            assert_eq!(Title::parse(&text).unwrap_err().field, "title", "{text:?}");
            assert_eq!(Labels::parse(&[text.as_str()]).unwrap_err().field, "labels", "{text:?}");
        }
        for control in ["\0", "\u{1b}", "\u{7f}", "\u{85}"] {
            let text = format!("a{control}b");
            assert_eq!(Description::parse(&text).unwrap_err().field, "description", "{text:?}");
            assert_eq!(CommentBody::parse(&text).unwrap_err().field, "body", "{text:?}");
        }
        // Rows written before the rule still read.
        assert_eq!(Title::from_stored("a\0b").unwrap().as_str(), "a\0b");
        assert!(Description::from_stored("a\0b").unwrap().is_some());
        assert_eq!(Labels::from_stored(&["a\0b"]).unwrap().as_slice(), ["a\0b"]);
        assert_eq!(CommentBody::from_stored("a\0b").unwrap().as_str(), "a\0b");
        let lines = "line one\r\n\tline two\n";
        assert_eq!(Description::parse(lines).unwrap().unwrap().as_str(), lines);
        assert_eq!(CommentBody::parse(lines).unwrap().as_str(), lines);
        // Format characters (bidi marks, joiners) are not control characters.
        let marks = "\u{200f}\u{202e}e\u{301}\u{1f469}\u{200d}\u{1f4bb}\u{10ffff}";
        assert_eq!(Title::parse(marks).unwrap().as_str(), marks);
        assert_eq!(Labels::parse(&[marks]).unwrap().as_slice(), [marks]);
    }

    #[test]
    fn descriptions_hold_at_most_100000_characters_and_empty_is_none() {
        assert_eq!(Description::parse("").unwrap(), None);
        assert!(Description::parse(&"ü".repeat(100_000)).unwrap().is_some());
        assert_eq!(Description::parse(&"x".repeat(100_001)).unwrap_err().field, "description");
    }

    #[test]
    fn entering_done_completes_and_leaving_it_clears() {
        let mut task = new_task(Status::Todo);
        assert_eq!(task.completed_at(), None);
        let later = datetime!(2026-11-26 11:00 UTC);
        task.set_status(Status::Done, later);
        assert_eq!(task.completed_at(), Some(later));
        // Staying done keeps the first completion.
        task.set_status(Status::Done, datetime!(2026-11-26 12:00 UTC));
        assert_eq!(task.completed_at(), Some(later));
        task.set_status(Status::InReview, later);
        assert_eq!(task.completed_at(), None);
        assert_eq!(new_task(Status::Done).completed_at(), Some(datetime!(2026-11-26 10:00 UTC)));
        // A stored task can only be completed while done.
        let restored = new_task(Status::Todo).restore(Status::Cancelled, Some(later));
        assert_eq!(restored.completed_at(), None);
    }

    #[test]
    fn priorities_are_ordered_none_to_urgent_and_ranks_round_trip() {
        assert!(Priority::None < Priority::Low && Priority::Low < Priority::Medium);
        assert!(Priority::Medium < Priority::High && Priority::High < Priority::Urgent);
        for p in Priority::ALL {
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert_eq!(Priority::from_rank(5), None);
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn labels_are_trimmed_deduplicated_in_order_and_bounded() {
        let labels = Labels::parse(&[" bug ", "ui", "Bug", "ui", "backend"]).unwrap();
        assert_eq!(labels.as_slice(), ["bug", "ui", "backend"]);
        assert_eq!(Labels::parse(&[""]).unwrap_err().field, "labels");
        assert_eq!(Labels::parse(&["x".repeat(51)]).unwrap_err().field, "labels");
        assert!(Labels::parse(&["y".repeat(50)]).is_ok());
        let twenty: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
        assert_eq!(Labels::parse(&twenty).unwrap().as_slice().len(), 20);
        let mut twenty_one = twenty.clone();
        twenty_one.push("l20".into());
        assert_eq!(Labels::parse(&twenty_one).unwrap_err().field, "labels");
        // The limit is on the list as sent: repeats count, so no request is worked through
        // beyond 20 labels.
        let mut repeats = twenty;
        repeats.push("L0".into());
        assert_eq!(Labels::parse(&repeats).unwrap_err().field, "labels");
        // A long label is refused whatever its spelling.
        assert_eq!(Labels::parse(&["é".repeat(51)]).unwrap_err().field, "labels");
        assert!(Labels::parse(&["é".repeat(50)]).is_ok());
        assert!(Labels::parse(&[format!("  {}  ", "x".repeat(50))]).is_ok());
    }

    #[test]
    fn a_hundred_and_fifty_thousand_labels_are_refused_on_their_count() {
        let labels: Vec<String> = (0..150_000).map(|i| format!("label-{i}")).collect();
        assert_eq!(Labels::parse(&labels).unwrap_err().field, "labels");
        let same: Vec<&str> = vec!["Bug"; 150_000];
        assert_eq!(Labels::parse(&same).unwrap_err().field, "labels");
        let ids: Vec<String> = (0..150_000).map(|_| "not-a-uuid".to_owned()).collect();
        assert_eq!(Assignees::parse(&ids).unwrap_err().message, "at most 20 assignees");
    }

    #[test]
    fn assignees_are_distinct_user_ids_at_most_20() {
        let ids: Vec<String> = (0..20).map(|_| Uuid::now_v7().to_string()).collect();
        assert_eq!(Assignees::parse(&ids).unwrap().as_slice().len(), 20);
        let mut too_many = ids.clone();
        too_many.push(Uuid::now_v7().to_string());
        assert_eq!(Assignees::parse(&too_many).unwrap_err().field, "assignee_ids");
        assert_eq!(Assignees::parse(&[ids[0].clone(), ids[0].clone()]).unwrap_err().field, "assignee_ids");
        assert_eq!(Assignees::parse(&["me"]).unwrap_err().field, "assignee_ids");
    }

    #[test]
    fn estimates_are_0_to_100000_and_due_is_not_before_start() {
        assert!(Estimate::new(0).is_ok() && Estimate::new(100_000).is_ok());
        assert_eq!(Estimate::new(-1).unwrap_err().field, "estimate_minutes");
        assert_eq!(Estimate::new(100_001).unwrap_err().field, "estimate_minutes");
        let start = datetime!(2026-11-26 10:00 UTC);
        assert!(Schedule::new(Some(start), Some(start)).is_ok());
        assert!(Schedule::new(None, Some(start)).is_ok() && Schedule::new(Some(start), None).is_ok());
        let err = Schedule::new(Some(start), Some(start - time::Duration::SECOND)).unwrap_err();
        assert_eq!(err.field, "due_at");
    }

    #[test]
    fn comment_bodies_are_1_to_20000_characters_and_excerpts_500() {
        assert_eq!(CommentBody::parse("").unwrap_err().field, "body");
        assert_eq!(CommentBody::parse("  \n").unwrap_err().field, "body");
        assert_eq!(CommentBody::parse(&"x".repeat(20_001)).unwrap_err().field, "body");
        let body = CommentBody::parse(&"ß".repeat(20_000)).unwrap();
        assert_eq!(body.excerpt().chars().count(), 500);
    }

    #[test]
    fn parents_are_in_the_same_project_without_cycles_at_most_five_deep() {
        let project = Uuid::now_v7();
        let chain = |n: usize| ParentChain { project_id: project, ancestors: (0..n).map(|_| Uuid::now_v7()).collect() };
        // A new task under a root is level 2; under a level-4 task, level 5: allowed.
        assert!(check_parent(project, None, 1, &chain(1)).is_ok());
        assert!(check_parent(project, None, 1, &chain(4)).is_ok());
        // Under a level-5 task it would be level 6.
        assert_eq!(check_parent(project, None, 1, &chain(5)).unwrap_err().field, "parent_id");
        // A task with two levels of subtasks may go under a level-2 task only.
        assert!(check_parent(project, Some(Uuid::now_v7()), 3, &chain(2)).is_ok());
        assert!(check_parent(project, Some(Uuid::now_v7()), 3, &chain(3)).is_err());
        // Another project.
        let other = ParentChain { project_id: Uuid::now_v7(), ancestors: vec![Uuid::now_v7()] };
        assert!(check_parent(project, None, 1, &other).is_err());
        // A cycle: the task is an ancestor of its intended parent (or the parent itself).
        let mut cyclic = chain(3);
        let me = cyclic.ancestors[2];
        assert!(check_parent(project, Some(me), 1, &cyclic).is_err());
        cyclic.ancestors[0] = me;
        assert!(check_parent(project, Some(me), 1, &cyclic).is_err());
    }

    #[test]
    fn recipients_are_watchers_assignees_and_reporter_each_once() {
        let mut task = new_task(Status::Todo);
        let a = Uuid::now_v7();
        task.assignees = Assignees::from_stored(vec![a, task.reporter_id]);
        let w = Uuid::now_v7();
        assert_eq!(task.recipients(&[w, a]), vec![w, a, task.reporter_id]);
    }

    #[test]
    fn task_keys_split_into_project_key_and_number() {
        assert_eq!(split_key("ORDO-42"), Some(("ORDO", 42)));
        assert_eq!(split_key("A1-1"), Some(("A1", 1)));
        for bad in ["ORDO", "ordo-1", "ORDO-0", "ORDO--1", "ORDO-x", "-1", "O-1"] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }
}
