//! A Trello board as Trello exports it (Menu → Print, export and share → Export as JSON): one JSON
//! object with the board's `lists` and `cards`. Each open card of an open list becomes a task, in
//! the board's order (lists by position, then cards by position): its name the title, its
//! description, its labels (by name, or by colour when unnamed), its due and start dates. Its
//! status is its list's name, mapped by the request or by the usual names (`To Do`, `Doing`,
//! `Done`, ...), and `todo` for a list of another name. Archived cards and lists, checklists,
//! members (Trello accounts are not Ordo's) and the board's history are not imported.

use std::collections::HashMap;

use serde::Deserialize;

use super::{bad_file, too_many};
use crate::app::Result;
use crate::domain::ImportRecord;

#[derive(Deserialize)]
struct Board {
    lists: Vec<List>,
    cards: Vec<Card>,
}

#[derive(Deserialize)]
struct List {
    id: String,
    name: String,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    pos: f64,
}

#[derive(Deserialize)]
struct Card {
    id: String,
    name: String,
    #[serde(default)]
    desc: String,
    #[serde(rename = "idList")]
    id_list: String,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    pos: f64,
    #[serde(default)]
    due: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    #[serde(default)]
    name: String,
    #[serde(default)]
    color: Option<String>,
}

/// The tasks of a Trello board's JSON.
pub(super) fn records(file: &[u8], max_rows: usize) -> Result<Vec<ImportRecord>> {
    let board: Board =
        serde_json::from_slice(file).map_err(|e| bad_file(format!("is not a Trello board's JSON: {e}")))?;
    let lists: HashMap<&str, (usize, &List)> = {
        let mut open: Vec<&List> = board.lists.iter().filter(|l| !l.closed).collect();
        open.sort_by(|a, b| a.pos.total_cmp(&b.pos));
        open.into_iter().enumerate().map(|(rank, list)| (list.id.as_str(), (rank, list))).collect()
    };
    let mut cards: Vec<(&Card, usize, &List)> = board
        .cards
        .iter()
        .filter(|card| !card.closed)
        .filter_map(|card| lists.get(card.id_list.as_str()).map(|(rank, list)| (card, *rank, *list)))
        .collect();
    if cards.len() > max_rows {
        return Err(too_many(max_rows));
    }
    cards.sort_by(|(a, a_rank, _), (b, b_rank, _)| a_rank.cmp(b_rank).then(a.pos.total_cmp(&b.pos)));
    cards
        .into_iter()
        .enumerate()
        .map(|(index, (card, _, list))| {
            Ok(ImportRecord {
                row: u32::try_from(index + 1).map_err(|_| too_many(max_rows))?,
                id: card.id.clone(),
                title: card.name.clone(),
                description: card.desc.clone(),
                status: list.name.clone(),
                status_fallback: "todo".to_owned(),
                labels: card
                    .labels
                    .iter()
                    .filter_map(|l| if l.name.trim().is_empty() { l.color.clone() } else { Some(l.name.clone()) })
                    .collect(),
                due_at: card.due.clone().unwrap_or_default(),
                start_at: card.start.clone().unwrap_or_default(),
                ..ImportRecord::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BOARD: &str = r#"{
        "id": "b1", "name": "Launch", "actions": [{"type": "createCard"}],
        "lists": [
            {"id": "l3", "name": "Done", "closed": false, "pos": 300},
            {"id": "l1", "name": "To Do", "closed": false, "pos": 100},
            {"id": "l2", "name": "Ideas", "closed": false, "pos": 200},
            {"id": "l4", "name": "Old", "closed": true, "pos": 400}
        ],
        "cards": [
            {"id": "c3", "name": "Shipped", "desc": "", "idList": "l3", "closed": false, "pos": 1, "labels": []},
            {"id": "c2", "name": "Second", "desc": "", "idList": "l1", "closed": false, "pos": 2, "labels": []},
            {"id": "c1", "name": "First", "desc": "**Markdown**", "idList": "l1", "closed": false, "pos": 1,
             "due": "2027-01-15T17:00:00.000Z", "start": null,
             "labels": [{"id": "x", "name": "bug", "color": "red"}, {"id": "y", "name": "", "color": "green"}]},
            {"id": "c4", "name": "Archived", "desc": "", "idList": "l1", "closed": true, "pos": 3, "labels": []},
            {"id": "c5", "name": "In an archived list", "desc": "", "idList": "l4", "closed": false, "pos": 1},
            {"id": "c6", "name": "Maybe", "desc": "", "idList": "l2", "closed": false, "pos": 1}
        ]
    }"#;

    #[test]
    fn open_cards_of_open_lists_come_in_board_order_with_their_list_as_status() {
        let records = records(BOARD.as_bytes(), 100).unwrap();
        let seen: Vec<(u32, &str, &str)> =
            records.iter().map(|r| (r.row, r.title.as_str(), r.status.as_str())).collect();
        assert_eq!(
            seen,
            [(1, "First", "To Do"), (2, "Second", "To Do"), (3, "Maybe", "Ideas"), (4, "Shipped", "Done")]
        );
        let first = &records[0];
        assert_eq!((first.id.as_str(), first.description.as_str()), ("c1", "**Markdown**"));
        assert_eq!(first.labels, ["bug", "green"]);
        assert_eq!((first.due_at.as_str(), first.start_at.as_str()), ("2027-01-15T17:00:00.000Z", ""));
        assert!(records.iter().all(|r| r.status_fallback == "todo"));
    }

    #[test]
    fn a_board_past_the_limit_or_of_another_shape_is_refused() {
        assert!(records(BOARD.as_bytes(), 3).is_err());
        assert!(records(br#"{"name": "not a board"}"#, 10).is_err());
    }
}
