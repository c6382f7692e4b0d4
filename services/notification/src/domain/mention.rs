//! `@mentions` in a comment: `@` followed by a member's display name or the local part of their
//! email address, matched without regard to case and ending where a word ends (`@ada` does not
//! mention Adam). Only the project's members can be mentioned.

use uuid::Uuid;

use super::Member;

/// The members `text` mentions, each once, in the order of `members`.
pub fn mentioned(text: &str, members: &[Member]) -> Vec<Uuid> {
    if !text.contains('@') {
        return Vec::new();
    }
    let text = text.to_lowercase();
    // Where each mention may start: right after an `@` that does not continue a word (so an email
    // address in the text mentions no one).
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| c == '@' && text[..i].chars().next_back().is_none_or(|before| !is_word(before)))
        .map(|(i, _)| i + 1)
        .collect();
    members
        .iter()
        .filter(|member| {
            let names = [member.display_name.to_lowercase(), local_part(&member.email).to_lowercase()];
            names.iter().filter(|name| !name.is_empty()).any(|name| starts.iter().any(|&at| names_at(&text, at, name)))
        })
        .map(|member| member.user_id)
        .collect()
}

fn local_part(email: &str) -> &str {
    email.split_once('@').map_or("", |(local, _)| local)
}

/// Whether `name` stands at byte `at` of `text` as a whole word.
fn names_at(text: &str, at: usize, name: &str) -> bool {
    let Some(rest) = text.get(at..) else { return false };
    rest.strip_prefix(name).is_some_and(|after| after.chars().next().is_none_or(|c| !is_word(c)))
}

/// A character that continues a name: a letter, a digit, `_` or `-` (so `@jean` does not mention
/// Jean-Luc), but not `.` (so a mention may end a sentence).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u128, display_name: &str, email: &str) -> Member {
        Member { user_id: Uuid::from_u128(n), display_name: display_name.to_owned(), email: email.to_owned() }
    }

    fn members() -> Vec<Member> {
        vec![
            member(1, "Ada Lovelace", "ada@example.com"),
            member(2, "Adam", "adam.smith@example.com"),
            member(3, "Grace", "ghopper@example.com"),
        ]
    }

    #[test]
    fn a_display_name_with_spaces_and_any_case_mentions_its_member() {
        assert_eq!(mentioned("thanks @ada lovelace, looks good", &members()), [Uuid::from_u128(1)]);
    }

    #[test]
    fn an_email_local_part_mentions_its_member() {
        assert_eq!(mentioned("@ghopper: can you check?", &members()), [Uuid::from_u128(3)]);
        assert_eq!(mentioned("cc @adam.smith.", &members()), [Uuid::from_u128(2)]);
    }

    #[test]
    fn a_name_must_end_where_a_word_ends() {
        // `@adam` names Adam only, not Ada; `@adamant` names no one.
        assert_eq!(mentioned("@adam please", &members()), [Uuid::from_u128(2)]);
        assert!(mentioned("@adamant", &members()).is_empty());
    }

    #[test]
    fn an_email_address_or_a_bare_at_mentions_no_one() {
        assert!(mentioned("write to grace@ada.org or @ alone", &members()).is_empty());
        assert!(mentioned("no at sign at all", &members()).is_empty());
    }

    #[test]
    fn several_mentions_each_count_once() {
        let found = mentioned("@Grace @ada and again @grace", &members());
        assert_eq!(found, [Uuid::from_u128(1), Uuid::from_u128(3)]);
    }

    #[test]
    fn someone_who_is_not_a_member_is_not_mentioned() {
        assert!(mentioned("@linus", &members()).is_empty());
    }
}
