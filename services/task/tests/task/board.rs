//! Board order: moves, respacing, concurrent moves.

use super::*;

#[tokio::test]
async fn moves_land_between_their_neighbours_and_concurrent_moves_keep_a_strict_order() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "MOVE").await;
    let other = stack.project(&owner, "ELSE").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        tasks.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let stranger_task = stack.create(&owner, new_task(&other, "Elsewhere")).await.id;
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };

    // After a neighbour, before one, both, to the start and to the end.
    let moved = stack.move_task(&owner, &tasks[5], Some(&tasks[1]), None).await.unwrap();
    assert_eq!(moved.version, 2);
    let expect = |order: &[usize]| order.iter().map(|i| tasks[*i].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[0, 1, 5, 2, 3, 4, 6, 7]));
    stack.move_task(&owner, &tasks[0], Some(&tasks[7]), None).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[1, 5, 2, 3, 4, 6, 7, 0]));
    stack.move_task(&owner, &tasks[4], None, Some(&tasks[1])).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[4, 1, 5, 2, 3, 6, 7, 0]));
    stack.move_task(&owner, &tasks[7], Some(&tasks[5]), Some(&tasks[2])).await.unwrap();
    assert_eq!(ids(&stack.list_all(&owner, board.clone(), 3).await), expect(&[4, 1, 5, 7, 2, 3, 6, 0]));
    // Already there: nothing changes.
    let same = stack.move_task(&owner, &tasks[7], Some(&tasks[5]), None).await.unwrap();
    assert_eq!(same.version, 2);

    // Neighbours that cannot be.
    let status = stack.move_task(&owner, &tasks[3], Some(&tasks[3]), None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["after_id"]);
    let status = stack.move_task(&owner, &tasks[3], None, Some(&stranger_task)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["before_id"]);
    let status = stack.move_task(&owner, &tasks[3], Some(&tasks[2]), Some(&tasks[4])).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["before_id"]);
    let status = stack.move_task(&owner, &tasks[3], None, None).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["after_id"]);

    // A burst of concurrent moves: every one lands, and the board stays a strict order.
    let moves = (0..24).map(|i| {
        let mut client = stack.tasks.clone();
        let id = tasks[i % 8].clone();
        let neighbour = tasks[(i * 5 + 3) % 8].clone();
        let (after, before) = if i % 2 == 0 { (Some(neighbour), None) } else { (None, Some(neighbour)) };
        let request = as_user(
            &owner,
            pb::MoveTaskRequest { id: id.clone(), after_id: after, before_id: before, ..Default::default() },
        );
        async move {
            if id == request.get_ref().after_id.clone().or(request.get_ref().before_id.clone()).unwrap() {
                Ok(())
            } else {
                client.move_task(request).await.map(|_| ())
            }
        }
    });
    for result in futures::future::join_all(moves).await {
        result.unwrap();
    }
    let board_now = stack.list_all(&owner, board.clone(), 100).await;
    assert_eq!(board_now.len(), 8);
    assert_eq!(board_now.iter().map(|t| t.id.clone()).collect::<HashSet<_>>().len(), 8);
    for pair in board_now.windows(2) {
        assert!(
            pair[0].position.as_bytes() < pair[1].position.as_bytes(),
            "{} < {}",
            pair[0].position,
            pair[1].position
        );
    }
    // A move after the last task of this consistent board lands at the very end.
    let last = board_now.last().unwrap().id.clone();
    let first = board_now[0].id.clone();
    let to_end = stack.move_task(&owner, &first, Some(&last), None).await.unwrap();
    let board_after = stack.list_all(&owner, board.clone(), 100).await;
    assert_eq!(board_after.last().unwrap().id, to_end.id);

    let moved_events = stack
        .outbox()
        .await
        .into_iter()
        .filter(|e| match &e.payload {
            Some(Payload::TaskUpdated(u)) => u.changed_fields == ["position"],
            _ => false,
        })
        .count();
    assert!(moved_events >= 5, "{moved_events} position events");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

/// The longest key the task service stores (`LONG_POSITION_LEN`).
const LONG_POSITION: usize = 12;

/// Every key of the project's board as stored, in board order, checked strictly ascending and short.
async fn stored_board(db: &MySqlPool, project: &str) -> Vec<(String, String, i64)> {
    let project = Uuid::parse_str(project).unwrap();
    let rows: Vec<(Uuid, String, i64)> =
        sqlx::query_as("SELECT id, position, version FROM task WHERE project_id = ? ORDER BY position")
            .bind(project)
            .fetch_all(db)
            .await
            .unwrap();
    for pair in rows.windows(2) {
        assert!(pair[0].1.as_bytes() < pair[1].1.as_bytes(), "{} < {}", pair[0].1, pair[1].1);
    }
    for (_, position, _) in &rows {
        assert!(position.len() <= LONG_POSITION, "{position} is {} characters", position.len());
        assert!(position.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()), "{position}");
    }
    rows.into_iter().map(|(id, position, version)| (id.to_string(), position, version)).collect()
}

#[tokio::test]
async fn two_thousand_moves_into_one_gap_keep_every_key_short_and_the_order_exact() {
    // Arrange: a board of 40 cards.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "DENSE").await;
    let mut expected: Vec<String> = Vec::new();
    for i in 0..40 {
        expected.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let mut moves_of: std::collections::HashMap<String, i64> = std::collections::HashMap::new();

    // Act: 2,000 moves into the gap right after the first card (named by after_id, by before_id or
    // by both), the last card each time, with a create now and then.
    for i in 0..2000 {
        let head = expected[0].clone();
        let second = expected[1].clone();
        let moving = expected.last().unwrap().clone();
        let (after, before) = match i % 3 {
            0 => (Some(head.as_str()), None),
            1 => (None, Some(second.as_str())),
            _ => (Some(head.as_str()), Some(second.as_str())),
        };
        let moved = stack.move_task(&owner, &moving, after, before).await.unwrap_or_else(|e| panic!("move {i}: {e}"));
        assert!(moved.position.len() <= LONG_POSITION, "move {i}: {}", moved.position);
        expected.pop();
        expected.insert(1, moving.clone());
        *moves_of.entry(moving).or_default() += 1;
        if i % 250 == 249 {
            let created = stack.create(&owner, new_task(&project, &format!("Late card {i}"))).await;
            assert!(created.position.len() <= LONG_POSITION, "{}", created.position);
            expected.push(created.id);
        }
        if i % 100 == 99 {
            let stored = stored_board(&stack.db, &project).await;
            assert_eq!(stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), expected, "after move {i}");
        }
    }

    // Assert: the board is exactly what the moves imply, and every key short (2,000 inserts into
    // one gap would otherwise need keys of some 400 characters).
    assert_eq!(ids(&stack.list_all(&owner, board, 17).await), expected);
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.len(), 48);
    // Re-spacing is board upkeep: a task's version counts its own moves only, and only moves
    // raised events.
    for (id, _, version) in &stored {
        assert_eq!(*version, 1 + moves_of.get(id).copied().unwrap_or(0), "version of {id}");
    }
    let position_events = stack
        .outbox()
        .await
        .into_iter()
        .filter(|e| matches!(&e.payload, Some(Payload::TaskUpdated(u)) if u.changed_fields == ["position"]))
        .count();
    assert_eq!(position_events, 2000);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_create_after_a_crowded_end_of_the_board_respaces_it_and_lands_last() {
    // Arrange: five cards whose keys, written behind the service's back, leave no short key after
    // the last one and no room for short keys anywhere near the end: only the whole board will do.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "CROWD").await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let crowded = ["zzzzzzzzzzz1", "zzzzzzzzzzz2", "zzzzzzzzzzz3", "zzzzzzzzzzz4", "zzzzzzzzzzzz"];
    for (id, key) in expected.iter().zip(crowded).rev() {
        sqlx::query("UPDATE task SET position = ? WHERE id = ?")
            .bind(key)
            .bind(Uuid::parse_str(id).unwrap())
            .execute(&stack.db)
            .await
            .unwrap();
    }

    // Act
    let created = stack.create(&owner, new_task(&project, "Last card")).await;

    // Assert: last, with a short key, the others in their order with short keys and untouched
    // versions.
    expected.push(created.id.clone());
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), expected);
    assert!(stored.iter().all(|t| t.1.len() < crowded[0].len()), "{stored:?}");
    assert!(stored.iter().all(|t| t.2 == 1), "{stored:?}");
    assert_eq!(created.position, stored[5].1);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn concurrent_moves_into_one_gap_all_land_and_leave_a_strict_order() {
    // Arrange: 30 cards; the first stays first, the others are moved right after it.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "RACE").await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        tasks.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let head = tasks[0].clone();

    // Act: six clients at once, 60 moves each, every one into the gap after the first card.
    let clients = (0..6).map(|c| {
        let mut client = stack.tasks.clone();
        let (owner, head, tasks) = (owner.clone(), head.clone(), tasks.clone());
        async move {
            for i in 0..60 {
                let id = tasks[1 + (c * 7 + i * 5) % 29].clone();
                let request =
                    as_user(&owner, pb::MoveTaskRequest { id, after_id: Some(head.clone()), ..Default::default() });
                client.move_task(request).await.map_err(|e| format!("client {c}, move {i}: {e}"))?;
            }
            Ok::<_, String>(())
        }
    });
    let results = futures::future::join_all(clients).await;

    // Assert: every move landed; the board is a strict order of short keys over all 30 cards, the
    // same through the API as stored, with the first card still first.
    for result in results {
        result.unwrap();
    }
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.len(), 30);
    assert_eq!(stored[0].0, head);
    assert_eq!(stored.iter().map(|t| &t.0).collect::<HashSet<_>>().len(), 30);
    let board = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let listed = stack.list_all(&owner, board, 7).await;
    assert_eq!(ids(&listed), stored.iter().map(|t| t.0.clone()).collect::<Vec<_>>());
    assert_eq!(
        listed.iter().map(|t| t.position.clone()).collect::<Vec<_>>(),
        stored.iter().map(|t| t.1.clone()).collect::<Vec<_>>()
    );
    // Some client's last move put its card right after the first one.
    let last_moves: HashSet<String> = (0..6).map(|c| tasks[1 + (c * 7 + 59 * 5) % 29].clone()).collect();
    assert!(last_moves.contains(&stored[1].0), "{} came second", stored[1].0);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn moves_written_together_each_get_their_own_answer() {
    // Arrange: 24 cards; cards 0 to 11 are moved by valid requests, cards 12 to 23 by refused ones
    // (a neighbour in another project, or a stale expected version).
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "LANE").await;
    let other = stack.project(&owner, "AWAY").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        tasks.push(stack.create(&owner, new_task(&project, &format!("Card {i}"))).await.id);
    }
    let stranger = stack.create(&owner, new_task(&other, "Elsewhere")).await.id;

    // Act: 48 moves at once (none names its own card as a neighbour), so the project's move lane
    // writes many of them per transaction.
    let moves = (0..48usize).map(|i| {
        let mut client = stack.tasks.clone();
        let (id, after, before, expected_version) = match i % 4 {
            0 | 1 => (tasks[i % 12].clone(), Some(tasks[(i * 7 + 5) % 24].clone()), None, None),
            2 => (tasks[12 + i % 12].clone(), None, Some(stranger.clone()), None),
            _ => (tasks[12 + i % 12].clone(), Some(tasks[0].clone()), None, Some(99)),
        };
        let request = as_user(
            &owner,
            pb::MoveTaskRequest { id, after_id: after, before_id: before, expected_version, ..Default::default() },
        );
        async move { (i, client.move_task(request).await) }
    });
    let results = futures::future::join_all(moves).await;

    // Assert: each refused move got its own refusal, each valid one landed; the refused tasks kept
    // their place, version and silence; the board is a strict order of all 24 cards.
    for (i, result) in results {
        match i % 4 {
            0 | 1 => {
                result.unwrap_or_else(|e| panic!("move {i}: {e}"));
            }
            2 => assert_eq!(bad_fields(&result.unwrap_err()), ["before_id"], "move {i}"),
            _ => assert_eq!(result.unwrap_err().code(), Code::Aborted, "move {i}"),
        }
    }
    let stored = stored_board(&stack.db, &project).await;
    assert_eq!(stored.len(), 24);
    assert_eq!(stored.iter().map(|t| &t.0).collect::<HashSet<_>>().len(), 24);
    let refused: HashSet<&String> = tasks[12..].iter().collect();
    let untouched: Vec<&String> = stored.iter().map(|t| &t.0).filter(|id| refused.contains(id)).collect();
    assert_eq!(untouched, tasks[12..].iter().collect::<Vec<_>>(), "refused cards stay in their order");
    for (id, _, version) in &stored {
        if refused.contains(id) {
            assert_eq!(*version, 1, "version of refused {id}");
        }
    }
    let moved_ids: Vec<String> = stack
        .outbox()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::TaskUpdated(u)) if u.changed_fields == ["position"] => u.task.map(|t| t.task_id),
            _ => None,
        })
        .collect();
    assert!(!moved_ids.is_empty());
    assert!(moved_ids.iter().all(|id| !refused.contains(id)), "{moved_ids:?}");
    // Many moves shared a transaction: some batch held more than one.
    let metrics = http_get(stack.task_ops, "/metrics").await;
    let single = metric_value(&metrics, "ordo_task_move_batch_size_bucket{le=\"1\"}");
    let batches = metric_value(&metrics, "ordo_task_move_batch_size_count");
    let moves = metric_value(&metrics, "ordo_task_move_batch_size_sum");
    assert!(batches < moves && single < batches, "{single} single of {batches} batches, {moves} moves");
    assert_eq!(moves, 48.0, "every move went through the lane");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

/// The value of the sample `name` (with its labels) in a Prometheus text exposition.
fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {exposition}"))
}
