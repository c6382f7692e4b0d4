//! A mail's subject, plain text and HTML, from the templates in `templates/` (minijinja). The HTML
//! template escapes everything it is given (by its `.html` name): a task title or comment is text,
//! never markup.

use minijinja::{Environment, context};
use serde::Serialize;

use crate::app::ports::Mail;
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
        env.add_template("email.txt", include_str!("../../templates/email.txt"))?;
        env.add_template("email.html", include_str!("../../templates/email.html"))?;
        Ok(Self { env })
    }

    /// `mail` rendered.
    ///
    /// # Errors
    ///
    /// A template that fails on these values.
    pub fn render(&self, mail: &Mail) -> Result<Rendered, minijinja::Error> {
        let subject = subject(&mail.items, mail.more);
        let name = if mail.to_name.trim().is_empty() { "there" } else { mail.to_name.as_str() };
        let items: Vec<ItemView<'_>> =
            mail.items.iter().map(|item| ItemView { title: &item.title, body: &item.body }).collect();
        let values = context! { subject => &subject, name => name, items => items, more => mail.more };
        let text = self.env.get_template("email.txt")?.render(&values)?;
        let html = self.env.get_template("email.html")?.render(&values)?;
        Ok(Rendered { subject, text, html })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use uuid::Uuid;

    use super::*;
    use crate::domain::email::MailItem;

    fn mail(items: Vec<MailItem>, more: u32) -> Mail {
        Mail { id: Uuid::nil(), to: Some("b@example.com".into()), to_name: "Bea".into(), items, more, attempts: 1 }
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
