//! Search: the words of a task as the search index keeps them, a search request's words, and how
//! well a task matches them (its relevance).
//!
//! A word is a run of letters and digits, compared in lower case; a word longer than
//! [`MAX_WORD_CHARS`] is kept as its first [`MAX_WORD_CHARS`] characters, on both sides, so it is
//! still found. A task is indexed by the distinct words of its title and of its description, at
//! most [`MAX_WORDS_PER_TASK`] (the title's first): a word of the title weighs
//! [`TITLE_WEIGHT`], one only in the description [`DESCRIPTION_WEIGHT`]. A search finds the tasks
//! holding every word it asks for (whole words), and ranks them by the sum of those words' weights,
//! newest first among equals: a task naming every word in its title comes first.

use std::collections::HashMap;

use ordo_error::FieldViolation;

/// The longest word kept, in characters; a longer one is kept as its start.
pub(crate) const MAX_WORD_CHARS: usize = 40;
/// The most distinct words indexed of one task: its title's, then its description's in order.
pub(crate) const MAX_WORDS_PER_TASK: usize = 2_000;
/// The weight of a word of the title.
pub const TITLE_WEIGHT: u8 = 2;
/// The weight of a word only in the description.
pub const DESCRIPTION_WEIGHT: u8 = 1;
/// The longest search, in characters.
pub(crate) const MAX_SEARCH_CHARS: usize = 200;
/// The most distinct words one search may ask for.
pub const MAX_SEARCH_WORDS: usize = 10;
/// The version of these rules the stored words were made by: rows indexed by an older one are
/// indexed again.
pub const WORDS_VERSION: u8 = 1;

/// Words too common to narrow a search: left out of a search that has other words (a search of
/// only these still finds them, since every word is indexed). InnoDB's default list.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how", "i", "in", "is", "it",
    "la", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "who", "will", "with", "und",
    "www",
];

/// The words of `text`, in order, lower-cased and cut at [`MAX_WORD_CHARS`], with repeats.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| {
        let mut word = String::with_capacity(w.len());
        for c in w.chars().flat_map(char::to_lowercase).take(MAX_WORD_CHARS) {
            word.push(c);
        }
        word
    })
}

/// One word of a task as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedWord {
    pub word: String,
    pub weight: u8,
}

/// The distinct words a task with this title and description is found by, the title's first, at
/// most [`MAX_WORDS_PER_TASK`].
pub fn index_words(title: &str, description: Option<&str>) -> Vec<IndexedWord> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut out = Vec::new();
    let titled = words(title).map(|w| (w, TITLE_WEIGHT));
    let described = description.into_iter().flat_map(words).map(|w| (w, DESCRIPTION_WEIGHT));
    for (word, weight) in titled.chain(described) {
        if out.len() == MAX_WORDS_PER_TASK {
            break;
        }
        if seen.insert(word.clone(), ()).is_none() {
            out.push(IndexedWord { word, weight });
        }
    }
    out
}

/// What turns a task's stored words into the words it should have: the words to remove (gone, or
/// kept at another weight) and the words to add (new, or at a new weight).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WordChanges {
    pub removed: Vec<String>,
    pub added: Vec<IndexedWord>,
}

impl WordChanges {
    /// The changes from `stored` to `wanted` (each a task's distinct words). A word kept at its
    /// weight is in neither list, so an edit of a title writes only the words it changed, and the
    /// rows of words many tasks share are left alone.
    pub fn between(stored: Vec<IndexedWord>, wanted: Vec<IndexedWord>) -> Self {
        let mut kept: HashMap<String, u8> = stored.into_iter().map(|w| (w.word, w.weight)).collect();
        let mut added = Vec::new();
        for word in wanted {
            match kept.get(&word.word) {
                Some(&weight) if weight == word.weight => {
                    kept.remove(&word.word);
                }
                _ => added.push(word),
            }
        }
        // What is left was not wanted at its weight; a word re-weighted is removed, then added.
        let mut removed: Vec<String> = kept.into_keys().collect();
        removed.sort_unstable();
        Self { removed, added }
    }

    /// Whether the stored words are already the wanted ones.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// The words a search asks for: distinct, at least one, at most [`MAX_SEARCH_WORDS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchWords(Vec<String>);

impl SearchWords {
    /// The search `raw` as the field `field`; `None` when it is blank. Common words
    /// ([`STOPWORDS`]) are left out unless the search has nothing else.
    pub fn parse(raw: &str, field: &'static str) -> Result<Option<Self>, FieldViolation> {
        // Bytes first: more than four per allowed character is too long without counting them.
        if raw.len() > 4 * MAX_SEARCH_CHARS || raw.chars().count() > MAX_SEARCH_CHARS {
            return Err(FieldViolation::new(field, format!("must be at most {MAX_SEARCH_CHARS} characters")));
        }
        if raw.trim().is_empty() {
            return Ok(None);
        }
        let mut all: Vec<String> = Vec::new();
        for word in words(raw) {
            if !all.contains(&word) {
                all.push(word);
            }
        }
        if all.is_empty() {
            return Err(FieldViolation::new(field, "must contain a word (letters or digits)"));
        }
        let narrowing: Vec<String> = all.iter().filter(|w| !STOPWORDS.contains(&w.as_str())).cloned().collect();
        let chosen = if narrowing.is_empty() { all } else { narrowing };
        if chosen.len() > MAX_SEARCH_WORDS {
            return Err(FieldViolation::new(field, format!("must be at most {MAX_SEARCH_WORDS} distinct words")));
        }
        Ok(Some(Self(chosen)))
    }

    /// The words, in the order asked.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// How well a task with this title and description matches: the sum of the weights of the
    /// words it holds, as the index would hold them (0 when it holds none).
    pub fn relevance(&self, title: &str, description: Option<&str>) -> u16 {
        let indexed = index_words(title, description);
        self.0.iter().filter_map(|asked| indexed.iter().find(|w| &w.word == asked)).map(|w| u16::from(w.weight)).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(raw: &str) -> Vec<String> {
        SearchWords::parse(raw, "query").unwrap().unwrap().0
    }

    #[test]
    fn words_are_runs_of_letters_and_digits_in_lower_case() {
        let got: Vec<String> = words("Fix the LOGIN-bug (v2.1), naïve Ünïcode; 東京 x").collect();
        assert_eq!(got, ["fix", "the", "login", "bug", "v2", "1", "naïve", "ünïcode", "東京", "x"]);
    }

    #[test]
    fn a_long_word_is_kept_as_its_start_on_both_sides() {
        let long = "a".repeat(100);
        let got: Vec<String> = words(&long).collect();
        assert_eq!(got, ["a".repeat(MAX_WORD_CHARS)]);
        assert_eq!(parse(&long), ["a".repeat(MAX_WORD_CHARS)]);
        // Characters, not bytes.
        let got: Vec<String> = words(&"é".repeat(50)).collect();
        assert_eq!(got[0].chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn a_task_is_indexed_by_distinct_words_the_title_weighing_more() {
        let got = index_words("Deploy the API", Some("The api gateway: deploy it, then test."));
        let pairs: Vec<(&str, u8)> = got.iter().map(|w| (w.word.as_str(), w.weight)).collect();
        assert_eq!(pairs, [("deploy", 2), ("the", 2), ("api", 2), ("gateway", 1), ("it", 1), ("then", 1), ("test", 1)]);
        assert!(index_words("", None).is_empty());
    }

    #[test]
    fn a_task_is_indexed_by_at_most_its_first_distinct_words() {
        let description: String = (0..5_000).map(|i| format!("w{i} ")).collect();
        let got = index_words("title here", Some(&description));
        assert_eq!(got.len(), MAX_WORDS_PER_TASK);
        assert_eq!(got[0], IndexedWord { word: "title".into(), weight: TITLE_WEIGHT });
        assert_eq!(got.last().unwrap().word, format!("w{}", MAX_WORDS_PER_TASK - 3));
    }

    fn indexed(pairs: &[(&str, u8)]) -> Vec<IndexedWord> {
        pairs.iter().map(|&(word, weight)| IndexedWord { word: word.to_owned(), weight }).collect()
    }

    #[test]
    fn an_edit_changes_only_the_words_it_changed() {
        let stored = index_words("chaos w3 n17", None);
        let changes = WordChanges::between(stored, index_words("chaos w3 u18", None));
        assert_eq!(changes.removed, ["n17"]);
        assert_eq!(changes.added, indexed(&[("u18", 2)]));
    }

    #[test]
    fn a_word_that_changes_weight_is_removed_then_added() {
        let stored = index_words("Deploy", Some("the gateway"));
        let changes = WordChanges::between(stored, index_words("Deploy the gateway", None));
        assert_eq!(changes.removed, ["gateway", "the"]);
        assert_eq!(changes.added, indexed(&[("the", 2), ("gateway", 2)]));
    }

    #[test]
    fn the_same_words_change_nothing_and_no_words_remove_all() {
        let stored = index_words("Fix the bug", Some("in the API"));
        assert!(WordChanges::between(stored.clone(), index_words("fix THE bug!", Some("api, in the"))).is_empty());
        let changes = WordChanges::between(stored.clone(), Vec::new());
        assert_eq!(changes.removed, ["api", "bug", "fix", "in", "the"]);
        assert!(changes.added.is_empty());
        let changes = WordChanges::between(Vec::new(), stored.clone());
        assert!(changes.removed.is_empty());
        assert_eq!(changes.added, stored);
    }

    #[test]
    fn a_search_asks_for_distinct_words_leaving_out_common_ones_unless_alone() {
        assert_eq!(SearchWords::parse("", "query").unwrap(), None);
        assert_eq!(SearchWords::parse("  \t", "query").unwrap(), None);
        assert_eq!(parse("Fix the login-bug, fix it"), ["fix", "login", "bug"]);
        assert_eq!(parse("the of"), ["the", "of"]);
        assert_eq!(parse("go to db"), ["go", "db"]);
    }

    #[test]
    fn a_search_is_bounded_and_needs_a_word() {
        let err = SearchWords::parse("+-*()", "query").unwrap_err();
        assert_eq!(err.field, "query");
        assert!(SearchWords::parse(&"ü".repeat(201), "query").is_err());
        assert!(SearchWords::parse(&"ü".repeat(200), "query").unwrap().is_some());
        let eleven: String = (0..11).map(|i| format!("word{i} ")).collect();
        assert!(SearchWords::parse(&eleven, "query").is_err());
        let ten: String = (0..10).map(|i| format!("word{i} ")).collect();
        assert_eq!(parse(&ten).len(), 10);
    }

    #[test]
    fn relevance_sums_the_weights_of_the_words_asked() {
        let search = SearchWords::parse("deploy gateway", "query").unwrap().unwrap();
        assert_eq!(search.relevance("Deploy the gateway", None), 4);
        assert_eq!(search.relevance("Deploy", Some("through the gateway")), 3);
        assert_eq!(search.relevance("Notes", Some("deploy the gateway")), 2);
        assert_eq!(search.relevance("Notes", None), 0);
    }
}
