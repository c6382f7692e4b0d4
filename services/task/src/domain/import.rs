//! Imports of tasks from a file: the rows a file holds ([`ImportRecord`], as its decoder read them)
//! judged one by one into the tasks to create ([`plan_import`]). A row that breaks a rule is left
//! out with its reasons ([`ImportPlan::errors`]); a row whose parent cannot be kept (no imported row
//! of the file has its id, or the link would make a cycle or nest too deep) is imported without one,
//! and says so ([`ImportPlan::warnings`]). The plan depends on nothing but the file and the accounts
//! found not to be members, so every attempt of an import's job plans the same tasks in the same
//! order, and one taken over resumes where the last one committed.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::task::{Assignees, Description, Estimate, Labels, MAX_DEPTH, NewTask, Priority, Schedule, Status, Title};
use super::{FieldViolation, Violations};

/// The most tasks one file may hold.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// One task of a file, as its decoder read it: every field as text, an empty one absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRecord {
    /// Its number among the file's tasks, from 1.
    pub row: u32,
    /// The task's id in the file, which other rows name as their parent.
    pub id: String,
    pub title: String,
    pub description: String,
    /// The status as the file names it.
    pub status: String,
    /// The Ordo status of a row whose status neither the request's map nor the usual names know
    /// (Jira's status category, `todo` for a Trello list); empty: such a row is left out.
    pub status_fallback: String,
    pub priority: String,
    pub assignee_ids: Vec<String>,
    pub labels: Vec<String>,
    /// RFC 3339.
    pub due_at: String,
    /// RFC 3339.
    pub start_at: String,
    pub estimate_minutes: String,
    /// The id of another row of the file.
    pub parent_id: String,
}

/// Why a row was left out, or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssue {
    /// The row's number among the file's tasks, from 1.
    pub row: u32,
    /// The field, as the API names it.
    pub field: String,
    pub message: String,
}

/// A task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTask {
    /// The row it comes from.
    pub row: u32,
    /// The task, without its parent.
    pub new: NewTask,
    /// The row of its parent, planned before it.
    pub parent_row: Option<u32>,
}

/// What a file imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// The tasks to create, in the file's order except that a parent comes before its subtasks.
    pub tasks: Vec<PlannedTask>,
    /// Rows left out, each with every reason.
    pub errors: Vec<ImportIssue>,
    /// Rows imported without their parent, each with why.
    pub warnings: Vec<ImportIssue>,
}

/// How the statuses of a file become Ordo's: the names the request maps (compared without case),
/// then [`usual_status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusMap(HashMap<String, Status>);

impl StatusMap {
    /// The map of `pairs`, each a status name of the file and the Ordo status it becomes.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, Status)>) -> Self {
        Self(pairs.into_iter().map(|(name, status)| (name.trim().to_lowercase(), status)).collect())
    }

    /// The Ordo status of `name`, if the map or the usual names know it.
    pub fn status(&self, name: &str) -> Option<Status> {
        self.0.get(&name.trim().to_lowercase()).copied().or_else(|| usual_status(name))
    }

    /// What the map says, by name (as it compares names: trimmed, without case): two maps that
    /// read a file alike give the same entries.
    pub fn entries(&self) -> Vec<(&str, Status)> {
        let mut entries: Vec<(&str, Status)> = self.0.iter().map(|(name, status)| (name.as_str(), *status)).collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

/// The status a name means in Ordo or in the usual workflows of other trackers (Jira's, Trello's
/// lists, GitHub's): `To Do`, `Doing`, `In Review`, `Closed`, `Won't Do`, ... Exact names only,
/// without case, spaces and dashes taken for underscores: a name it does not know is the request's
/// to map.
pub fn usual_status(name: &str) -> Option<Status> {
    let name = name.trim().to_lowercase().replace([' ', '-'], "_");
    Some(match name.as_str() {
        "backlog" | "icebox" | "later" | "someday_maybe" => Status::Backlog,
        "todo" | "to_do" | "open" | "new" | "ready" | "selected_for_development" | "next" => Status::Todo,
        "in_progress" | "doing" | "in_development" | "started" | "active" | "wip" => Status::InProgress,
        "in_review" | "review" | "code_review" | "in_qa" | "qa" | "testing" | "in_testing" => Status::InReview,
        "done" | "closed" | "resolved" | "complete" | "completed" | "shipped" => Status::Done,
        "cancelled" | "canceled" | "won't_do" | "wont_do" | "rejected" | "duplicate" | "won't_fix" => Status::Cancelled,
        _ => return None,
    })
}

/// The priority a name means in Ordo or in other trackers (Jira's `Highest` to `Lowest`, `Blocker`,
/// `Critical`, `Major`, `Minor`, `Trivial`), without case.
pub fn usual_priority(name: &str) -> Option<Priority> {
    Some(match name.trim().to_lowercase().as_str() {
        "none" | "no_priority" | "no priority" => Priority::None,
        "low" | "lowest" | "minor" | "trivial" => Priority::Low,
        "medium" | "normal" => Priority::Medium,
        "high" | "major" => Priority::High,
        "urgent" | "highest" | "critical" | "blocker" => Priority::Urgent,
        _ => return None,
    })
}

/// The plan of `records`, where an assignee in `non_members` leaves its row out and `statuses`
/// names the statuses.
pub fn plan_import(records: &[ImportRecord], non_members: &HashSet<Uuid>, statuses: &StatusMap) -> ImportPlan {
    let mut plan = ImportPlan::default();
    // The rows kept, in file order, with the file's ids.
    let mut kept: Vec<(&ImportRecord, NewTask)> = Vec::with_capacity(records.len());
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for record in records {
        let issue = |violation: FieldViolation| ImportIssue {
            row: record.row,
            field: violation.field.to_string(),
            message: violation.message,
        };
        match judge(record, non_members, statuses) {
            Err(violations) => plan.errors.extend(violations.into_iter().map(issue)),
            Ok(_) if !record.id.is_empty() && by_id.contains_key(record.id.as_str()) => {
                plan.errors.push(issue(FieldViolation::new("id", "an earlier row of the file has this id")));
            }
            Ok(new) => {
                if !record.id.is_empty() {
                    by_id.insert(record.id.as_str(), kept.len());
                }
                kept.push((record, new));
            }
        }
    }

    // Each kept row's parent among the kept rows; a link that cannot stand is cut, which only ever
    // shortens the chains above other rows, so a link kept earlier stays valid.
    let mut parent: Vec<Option<usize>> = kept
        .iter()
        .map(
            |(record, _)| {
                if record.parent_id.is_empty() { None } else { by_id.get(record.parent_id.as_str()).copied() }
            },
        )
        .collect();
    for (index, (record, _)) in kept.iter().enumerate() {
        let warn = |message: &str| ImportIssue {
            row: record.row,
            field: "parent_id".to_owned(),
            message: format!("{message}: imported without a parent"),
        };
        if !record.parent_id.is_empty() && parent[index].is_none() {
            plan.warnings.push(warn("no imported row of the file has this id"));
            continue;
        }
        let mut ancestors: Vec<usize> = Vec::new();
        let mut next = parent[index];
        let verdict = loop {
            match next {
                None => break None,
                Some(up) if up == index || ancestors.contains(&up) => break Some("the parents form a cycle"),
                Some(_) if ancestors.len() + 1 >= MAX_DEPTH => break Some("tasks nest at most 5 levels deep"),
                Some(up) => {
                    ancestors.push(up);
                    next = parent[up];
                }
            }
        };
        if let Some(message) = verdict {
            parent[index] = None;
            plan.warnings.push(warn(message));
        }
    }

    // File order, each task after its parent.
    let mut planned = vec![false; kept.len()];
    let mut chain = Vec::with_capacity(MAX_DEPTH);
    for index in 0..kept.len() {
        chain.clear();
        let mut at = Some(index);
        while let Some(i) = at.filter(|i| !planned[*i]) {
            chain.push(i);
            at = parent[i];
        }
        for &i in chain.iter().rev() {
            planned[i] = true;
            let (record, new) = &kept[i];
            plan.tasks.push(PlannedTask {
                row: record.row,
                new: new.clone(),
                parent_row: parent[i].map(|p| kept[p].0.row),
            });
        }
    }
    plan
}

/// The task of one row, or every rule it breaks.
fn judge(
    record: &ImportRecord,
    non_members: &HashSet<Uuid>,
    statuses: &StatusMap,
) -> Result<NewTask, Vec<FieldViolation>> {
    let mut v = Violations::default();
    let title = v.check(Title::parse(&record.title));
    let description = v.check(Description::parse(&record.description));
    let status = v.check(if record.status.is_empty() {
        Ok(Status::Todo)
    } else {
        statuses.status(&record.status).or_else(|| usual_status(&record.status_fallback)).ok_or_else(|| {
            FieldViolation::new(
                "status",
                format!(
                    "{:?} is no status: use backlog, todo, in_progress, in_review, done or cancelled, or map it",
                    record.status
                ),
            )
        })
    });
    let priority = v.check(if record.priority.is_empty() {
        Ok(Priority::None)
    } else {
        usual_priority(&record.priority)
            .ok_or_else(|| FieldViolation::new("priority", "must be none, low, medium, high or urgent"))
    });
    let assignees = v.check(Assignees::parse(&record.assignee_ids).and_then(|assignees| {
        match assignees.as_slice().iter().find(|id| non_members.contains(id)) {
            Some(stranger) => {
                Err(FieldViolation::new("assignee_ids", format!("{stranger} is not a member of the project")))
            }
            None => Ok(assignees),
        }
    }));
    let labels = v.check(Labels::parse(&record.labels));
    let due_at = v.check(instant("due_at", &record.due_at));
    let start_at = v.check(instant("start_at", &record.start_at));
    let schedule = match (start_at, due_at) {
        (Some(start), Some(due)) => v.check(Schedule::new(start, due)),
        _ => None,
    };
    let estimate = v.check(if record.estimate_minutes.is_empty() {
        Ok(None)
    } else {
        record
            .estimate_minutes
            .parse::<i32>()
            .map_err(|_| FieldViolation::new("estimate_minutes", "must be a whole number of minutes"))
            .and_then(Estimate::new)
            .map(Some)
    });
    match (title, description, status, priority, assignees, labels, schedule, estimate) {
        (
            Some(title),
            Some(description),
            Some(status),
            Some(priority),
            Some(assignees),
            Some(labels),
            Some(schedule),
            Some(estimate),
        ) => {
            Ok(NewTask { title, description, status, priority, assignees, labels, schedule, estimate, parent_id: None })
        }
        _ => Err(v.0),
    }
}

/// An RFC 3339 date-time, or `None` for an empty cell.
fn instant(field: &'static str, raw: &str) -> Result<Option<OffsetDateTime>, FieldViolation> {
    if raw.is_empty() {
        return Ok(None);
    }
    OffsetDateTime::parse(raw, &Rfc3339)
        .map(Some)
        .map_err(|_| FieldViolation::new(field, "must be an RFC 3339 date-time, such as 2027-01-15T17:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(row: u32, id: &str, title: &str, parent: &str) -> ImportRecord {
        ImportRecord {
            row,
            id: id.to_owned(),
            title: title.to_owned(),
            parent_id: parent.to_owned(),
            ..ImportRecord::default()
        }
    }

    fn rows(plan: &ImportPlan) -> Vec<(u32, Option<u32>)> {
        plan.tasks.iter().map(|t| (t.row, t.parent_row)).collect()
    }

    #[test]
    fn every_field_of_a_row_is_read() {
        let member = Uuid::from_u128(7);
        let full = ImportRecord {
            row: 1,
            id: "a".into(),
            title: "Write the docs".into(),
            description: "All of them".into(),
            status: "in_review".into(),
            status_fallback: String::new(),
            priority: "high".into(),
            assignee_ids: vec![member.to_string()],
            labels: vec!["docs".into(), "q1".into()],
            due_at: "2027-01-15T17:00:00Z".into(),
            start_at: "2027-01-10T09:00:00+01:00".into(),
            estimate_minutes: "90".into(),
            parent_id: String::new(),
        };
        let plan = plan_import(&[full], &HashSet::new(), &StatusMap::default());
        assert!(plan.errors.is_empty() && plan.warnings.is_empty(), "{plan:?}");
        let new = &plan.tasks[0].new;
        assert_eq!(new.title.as_str(), "Write the docs");
        assert_eq!(new.description.as_ref().map(Description::as_str), Some("All of them"));
        assert_eq!((new.status, new.priority), (Status::InReview, Priority::High));
        assert_eq!(new.assignees.as_slice(), [member]);
        assert_eq!(new.labels.as_slice(), ["docs", "q1"]);
        assert_eq!(new.schedule.due_at().map(OffsetDateTime::unix_timestamp), Some(1_800_032_400));
        assert_eq!(new.estimate.map(|e| e.minutes()), Some(90));
    }

    #[test]
    fn empty_cells_take_the_defaults_of_a_create() {
        let plan = plan_import(&[record(1, "", "Bare", "")], &HashSet::new(), &StatusMap::default());
        let new = &plan.tasks[0].new;
        assert_eq!((new.status, new.priority), (Status::Todo, Priority::None));
        assert!(new.description.is_none() && new.estimate.is_none() && new.schedule.due_at().is_none());
        assert!(new.assignees.as_slice().is_empty() && new.labels.as_slice().is_empty());
    }

    #[test]
    fn a_row_that_breaks_rules_is_left_out_with_every_reason() {
        let mut bad = record(2, "", "", "");
        bad.status = "someday".into();
        bad.due_at = "tomorrow".into();
        bad.estimate_minutes = "1.5".into();
        let stranger = Uuid::from_u128(9);
        let mut foreign = record(3, "", "Foreign", "");
        foreign.assignee_ids = vec![stranger.to_string()];
        let plan =
            plan_import(&[record(1, "", "Good", ""), bad, foreign], &HashSet::from([stranger]), &StatusMap::default());
        assert_eq!(rows(&plan), [(1, None)]);
        let fields: Vec<(u32, &str)> = plan.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(fields, [(2, "title"), (2, "status"), (2, "due_at"), (2, "estimate_minutes"), (3, "assignee_ids")]);
        assert!(plan.errors[4].message.contains(&stranger.to_string()));
    }

    #[test]
    fn a_due_date_before_the_start_is_refused() {
        let mut row = record(1, "", "Backwards", "");
        row.start_at = "2027-02-01T00:00:00Z".into();
        row.due_at = "2027-01-01T00:00:00Z".into();
        let plan = plan_import(&[row], &HashSet::new(), &StatusMap::default());
        assert!(plan.tasks.is_empty() && plan.errors.len() == 1, "{plan:?}");
    }

    #[test]
    fn a_second_row_with_an_id_already_seen_is_left_out() {
        let plan = plan_import(
            &[record(1, "x", "One", ""), record(2, "x", "Two", "")],
            &HashSet::new(),
            &StatusMap::default(),
        );
        assert_eq!(rows(&plan), [(1, None)]);
        assert_eq!((plan.errors[0].row, plan.errors[0].field.as_str()), (2, "id"));
    }

    #[test]
    fn parents_come_before_their_subtasks_and_the_rest_keeps_the_file_order() {
        let records = [
            record(1, "c", "Child", "p"),
            record(2, "o", "Other", ""),
            record(3, "g", "Grandchild", "c"),
            record(4, "p", "Parent", ""),
        ];
        let plan = plan_import(&records, &HashSet::new(), &StatusMap::default());
        assert_eq!(rows(&plan), [(4, None), (1, Some(4)), (2, None), (3, Some(1))]);
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn a_parent_missing_from_the_file_or_left_out_is_dropped_with_a_warning() {
        let records = [record(1, "a", "", ""), record(2, "b", "Under a bad row", "a"), record(3, "c", "Orphan", "zz")];
        let plan = plan_import(&records, &HashSet::new(), &StatusMap::default());
        assert_eq!(rows(&plan), [(2, None), (3, None)]);
        let warned: Vec<u32> = plan.warnings.iter().map(|w| w.row).collect();
        assert_eq!(warned, [2, 3]);
    }

    #[test]
    fn a_cycle_is_cut_and_every_row_still_imported() {
        let records = [record(1, "a", "A", "b"), record(2, "b", "B", "a"), record(3, "s", "Self", "s")];
        let plan = plan_import(&records, &HashSet::new(), &StatusMap::default());
        assert_eq!(plan.tasks.len(), 3);
        assert_eq!(plan.warnings.iter().map(|w| w.row).collect::<Vec<_>>(), [1, 3]);
        // B keeps A as its parent once A's own link is cut: A comes first.
        assert_eq!(rows(&plan), [(1, None), (2, Some(1)), (3, None)]);
    }

    #[test]
    fn a_chain_deeper_than_the_limit_is_cut_at_the_limit() {
        let records: Vec<ImportRecord> = (1..=7_u32)
            .map(|n| {
                let parent = if n == 1 { String::new() } else { format!("t{}", n - 1) };
                record(n, &format!("t{n}"), &format!("Level {n}"), &parent)
            })
            .collect();
        let plan = plan_import(&records, &HashSet::new(), &StatusMap::default());
        assert_eq!(plan.tasks.len(), 7);
        // Levels 1..=5 hang in one chain; level 6 starts a new one, which level 7 hangs under.
        assert_eq!(plan.warnings.iter().map(|w| w.row).collect::<Vec<_>>(), [6]);
        let depth = |row: u32| {
            let mut depth = 1;
            let mut at = row;
            while let Some(up) = plan.tasks.iter().find(|t| t.row == at).and_then(|t| t.parent_row) {
                depth += 1;
                at = up;
            }
            depth
        };
        assert_eq!((1..=7).map(depth).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 1, 2]);
    }

    #[test]
    fn statuses_are_the_requests_map_first_then_the_usual_names_of_trackers() {
        let map = StatusMap::new([("Ready for QA", Status::InReview), ("Doing", Status::Backlog)]);
        let named = |name: &str| map.status(name);
        assert_eq!(named("ready for qa"), Some(Status::InReview));
        assert_eq!(named("Doing"), Some(Status::Backlog), "the request's map wins");
        assert_eq!(named("To Do"), Some(Status::Todo));
        assert_eq!(named("In Progress"), Some(Status::InProgress));
        assert_eq!(named("Won't Do"), Some(Status::Cancelled));
        assert_eq!(named("in_review"), Some(Status::InReview));
        assert_eq!(named("Done"), Some(Status::Done));
        assert_eq!(named("Someday soon"), None);
        for status in Status::ALL {
            assert_eq!(usual_status(status.as_str()), Some(status));
        }
        for priority in Priority::ALL {
            assert_eq!(usual_priority(priority.as_str()), Some(priority));
        }
        assert_eq!(usual_priority("Highest"), Some(Priority::Urgent));
        assert_eq!(usual_priority("Lowest"), Some(Priority::Low));
        assert_eq!(usual_priority("P1"), None);
    }

    #[test]
    fn the_same_file_plans_the_same_tasks_every_time() {
        let records: Vec<ImportRecord> =
            (1..=50_u32).map(|n| record(n, &n.to_string(), "T", &((n * 7) % 50).to_string())).collect();
        let first = plan_import(&records, &HashSet::new(), &StatusMap::default());
        assert_eq!(first, plan_import(&records, &HashSet::new(), &StatusMap::default()));
        assert_eq!(first.tasks.len(), 50);
    }
}
