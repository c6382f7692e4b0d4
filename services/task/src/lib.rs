//! Ordo's task service: tasks, their numbering and board order, comments, watchers and attachments.
