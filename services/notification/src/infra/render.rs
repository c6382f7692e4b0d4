//! A mail's subject, plain text and HTML, from the templates in `templates/` (minijinja). The HTML
//! template escapes everything it is given (by its `.html` name): a task title or comment is text,
//! never markup.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::app::ports::Mail;
use crate::domain::digest::{Schedule, digest_subject};
use crate::domain::email::subject;

/// A mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// The parsed templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

#[derive(Serialize)]
struct ItemView<'a> {
    title: &'a str,
    body: &'a str,
}

impl Templates {
    /// Parses the templates built into the binary.
    ///
    /// # Errors
    ///
    /// A template that does not parse (a defect caught by the tests, never by a user).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.add_template("layout.html", include_str!("../../templates/layout.html"))?;
        env.add_template("items.html", include_str!("../../templates/items.html"))?;
        env.add_template("email.txt", include_str!("../../templates/email.txt"))?;
        env.add_template("email.html", include_str!("../../templates/email.html"))?;
        env.add_template("digest.txt", include_str!("../../templates/digest.txt"))?;
        env.add_template("digest.html", include_str!("../../templates/digest.html"))?;
        Ok(Self { env })
    }

    /// `mail` rendered: a daily digest with its own templates, any other mail with the window's.
    ///
    /// # Errors
    ///
    /// A template that fails on these values.
    pub fn render(&self, mail: &Mail) -> Result<Rendered, minijinja::Error> {
        let name = if mail.to_name.trim().is_empty() { "there" } else { mail.to_name.as_str() };
        let items: Vec<ItemView<'_>> =
            mail.items.iter().map(|item| ItemView { title: &item.title, body: &item.body }).collect();
        let Some(digest) = &mail.digest else {
            let subject = subject(&mail.items, mail.more);
            let values = context! { subject => &subject, name => name, items => items, more => mail.more };
            let text = self.env.get_template("email.txt")?.render(&values)?;
            let html = self.env.get_template("email.html")?.render(&values)?;
            return Ok(Rendered { subject, text, html });
        };
        let notifications = mail.items.len() as u64 + u64::from(mail.more);
        let tasks = digest.tasks.len() as u64 + u64::from(digest.more_tasks);
        let subject = digest_subject(digest.day, notifications, tasks);
        // The zone was checked when chosen; one a newer database dropped reads as UTC.
        let zone = Schedule::new(0, &digest.time_zone).unwrap_or_default();
        let due: Vec<DueView<'_>> = digest
            .tasks
            .iter()
            .map(|task| DueView {
                key: &task.task_key,
                title: &task.title,
                when: zone.due_label(digest.day, digest.composed_at, task.due_at),
            })
            .collect();
        let values = context! {
            subject => &subject, name => name, items => items, more => mail.more,
            tasks => due, more_tasks => digest.more_tasks,
        };
        let text = self.env.get_template("digest.txt")?.render(&values)?;
        let html = self.env.get_template("digest.html")?.render(&values)?;
        Ok(Rendered { subject, text, html })
    }
}

#[derive(Serialize)]
struct DueView<'a> {
    key: &'a str,
    title: &'a str,
    when: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::{date, datetime};
    use uuid::Uuid;

    use super::*;
    use crate::app::ports::DigestPart;
    use crate::domain::digest::DueItem;
    use crate::domain::email::MailItem;

    fn mail(items: Vec<MailItem>, more: u32) -> Mail {
        Mail {
            id: Uuid::nil(),
            to: Some("b@example.com".into()),
            to_name: "Bea".into(),
            items,
            more,
            attempts: 1,
            digest: None,
        }
    }

    #[test]
    fn every_change_of_the_window_is_listed_in_both_parts() {
        let items = (1..=3)
            .map(|n| MailItem {
                title: format!("ORD-7 change {n}"),
                body: "Fix login".into(),
                task_key: Some("ORD-7".into()),
            })
            .collect();

        let rendered = Templates::new().unwrap().render(&mail(items, 2)).unwrap();

        assert_eq!(rendered.subject, "5 updates on ORD-7");
        for n in 1..=3 {
            assert!(rendered.text.contains(&format!("ORD-7 change {n}")), "{}", rendered.text);
            assert!(rendered.html.contains(&format!("ORD-7 change {n}")), "{}", rendered.html);
        }
        assert!(rendered.text.starts_with("Hi Bea,"));
        assert!(rendered.text.contains("and 2 more."));
    }

    #[test]
    fn a_digest_lists_the_day_s_notifications_and_the_tasks_due_in_the_user_s_time_zone() {
        let items = vec![MailItem {
            title: "ORD-7 was assigned to you".into(),
            body: "Fix <login>".into(),
            task_key: Some("ORD-7".into()),
        }];
        let tasks = vec![
            DueItem { task_key: "ORD-3".into(), title: "Old <one>".into(), due_at: datetime!(2026-12-04 09:00 UTC) },
            DueItem { task_key: "ORD-9".into(), title: "Ship".into(), due_at: datetime!(2026-12-07 16:00 UTC) },
        ];
        let digest = DigestPart {
            day: date!(2026 - 12 - 07),
            composed_at: datetime!(2026-12-07 07:00 UTC),
            time_zone: "Europe/Paris".into(),
            tasks,
            more_tasks: 4,
        };
        let mail = Mail { digest: Some(digest), ..mail(items, 1) };

        let rendered = Templates::new().unwrap().render(&mail).unwrap();

        assert_eq!(rendered.subject, "Your Ordo digest for Monday 7 December: 2 notifications, 6 tasks due");
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("ORD-7 was assigned to you"), "{part}");
            assert!(part.contains("overdue since Friday 4 December"), "{part}");
            assert!(part.contains("due today at 17:00"), "{part}");
            assert!(part.contains("ORD-9"), "{part}");
        }
        assert!(rendered.text.contains("Old <one>") && rendered.text.contains("and 4 more tasks"), "{}", rendered.text);
        assert!(rendered.html.contains("Old &lt;one&gt;") && !rendered.html.contains("<login>"), "{}", rendered.html);
    }

    #[test]
    fn user_text_is_escaped_in_html_and_left_as_it_is_in_text() {
        let items = vec![MailItem {
            title: "<script>alert(1)</script>".into(),
            body: "a & b <img src=x onerror=alert(1)>".into(),
            task_key: None,
        }];

        let rendered = Templates::new().unwrap().render(&mail(items, 0)).unwrap();

        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(!rendered.html.contains("<img"), "{}", rendered.html);
        assert!(rendered.html.contains("&lt;script&gt;"), "{}", rendered.html);
        assert!(rendered.text.contains("<script>alert(1)</script>"));
    }
}
