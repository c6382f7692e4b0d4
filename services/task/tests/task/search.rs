//! Search: whole words of title and description, every word required, ranked by relevance in a
//! project (or in any list order asked for), read through the word index whichever way it plans.

use super::*;

/// The tasks of `tasks` ranked as a search for `words` ranks them: by the sum of the words'
/// weights (2 in the title, 1 only in the description), newest (highest number) first among
/// equals; tasks lacking a word left out. Worked out here from the texts, independently of the
/// service.
fn ranked(tasks: &[pb::Task], words: &[&str]) -> Vec<String> {
    let words_of = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    let mut scored: Vec<(u32, i64, String)> = tasks
        .iter()
        .filter_map(|task| {
            let title = words_of(&task.title);
            let description = words_of(task.description.as_deref().unwrap_or(""));
            let mut score = 0;
            for word in words {
                if title.iter().any(|w| w == word) {
                    score += 2;
                } else if description.iter().any(|w| w == word) {
                    score += 1;
                } else {
                    return None;
                }
            }
            Some((score, task.number, task.id.clone()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    scored.into_iter().map(|(_, _, id)| id).collect()
}

fn search(project: &str, q: &str, sort: pb::TaskSort) -> pb::ListTasksRequest {
    pb::ListTasksRequest {
        project_id: project.to_owned(),
        query: q.to_owned(),
        sort: sort.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_search_finds_tasks_holding_every_word_best_match_first_across_pages() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "SRCH").await;
    let other = stack.project(&owner, "ELSE").await;

    let texts: [(&str, Option<&str>); 9] = [
        ("Deploy the gateway", None),
        ("Deploy", Some("Then restart the gateway.")),
        ("Notes", Some("deploy gateway, twice")),
        ("Deploy only", None),
        ("Gateway deploy runbook", Some("gateway")),
        ("DEPLOY: the Gateway!", None),
        ("Gateways deployed", Some("plural words are other words")),
        ("Unrelated", Some("nothing to see")),
        ("Naïve café deploy", Some("gateway")),
    ];
    let mut tasks = Vec::new();
    for (title, description) in texts {
        let mut request = new_task(&project, title);
        request.description = description.map(str::to_owned);
        tasks.push(stack.create(&owner, request).await);
    }
    stack.create(&owner, new_task(&other, "Deploy the gateway elsewhere")).await;

    // The default of a search of one project is relevance; pages of two walk it all.
    for (q, words) in [
        ("deploy gateway", vec!["deploy", "gateway"]),
        ("Gateway, DEPLOY", vec!["gateway", "deploy"]),
        ("deploy", vec!["deploy"]),
        ("the deploy", vec!["deploy"]),
        ("café", vec!["café"]),
        ("the", vec!["the"]),
        ("gateways", vec!["gateways"]),
    ] {
        let expected = ranked(&tasks, &words);
        assert!(!expected.is_empty(), "{q:?} finds nothing; the case would prove little");
        for sort in [pb::TaskSort::Unspecified, pb::TaskSort::Relevance] {
            let listed = stack.list_all(&owner, search(&project, q, sort), 2).await;
            assert_eq!(ids(&listed), expected, "{q:?} {sort:?}");
        }
    }
    assert_eq!(
        ids(&stack.list_all(&owner, search(&project, "deploy gateway", pb::TaskSort::Unspecified), 50).await),
        [&tasks[5], &tasks[4], &tasks[0], &tasks[8], &tasks[1], &tasks[2]].map(|t| t.id.clone()),
        "title matches first, newest first among equals"
    );
    assert!(stack.list_all(&owner, search(&project, "deploy nothing", pb::TaskSort::Unspecified), 5).await.is_empty());

    // Any other order on request, still only the matches.
    let matching: Vec<pb::Task> =
        tasks.iter().filter(|t| ranked(std::slice::from_ref(t), &["deploy", "gateway"]).len() == 1).cloned().collect();
    for sort in [pb::TaskSort::CreatedAtAsc, pb::TaskSort::CreatedAtDesc, pb::TaskSort::PositionAsc] {
        let listed = stack.list_all(&owner, search(&project, "deploy gateway", sort), 2).await;
        assert_eq!(ids(&listed), expected_order(matching.clone(), sort), "{sort:?}");
    }

    // A change of title or description is searched at once; a deleted task is gone.
    let renamed = pb::TaskPatch { title: "Archive".into(), ..Default::default() };
    tasks[0] = stack.update(&owner, &tasks[0].id, renamed, &["title"], None).await.unwrap();
    let described = pb::TaskPatch { description: Some("deploy the gateway".into()), ..Default::default() };
    tasks[7] = stack.update(&owner, &tasks[7].id, described, &["description"], None).await.unwrap();
    let request = pb::DeleteTaskRequest { id: tasks[5].id.clone(), client: client_info(), ..Default::default() };
    stack.tasks.delete_task(as_user(&owner, request)).await.unwrap();
    tasks.remove(5);
    let listed = stack.list_all(&owner, search(&project, "deploy gateway", pb::TaskSort::Unspecified), 3).await;
    assert_eq!(ids(&listed), ranked(&tasks, &["deploy", "gateway"]));
    assert!(ids(&listed).contains(&tasks[7].id));
    assert!(!ids(&listed).contains(&tasks[0].id));

    // A cursor of one ranking belongs to it.
    let page = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest {
                page: Some(pb::PageRequest { limit: 1, ..Default::default() }),
                ..search(&project, "deploy", pb::TaskSort::Unspecified)
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_cursor.is_empty());
    let status = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest {
                page: Some(pb::PageRequest { limit: 1, cursor: page.next_cursor }),
                ..search(&project, "gateway", pb::TaskSort::Unspecified)
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["cursor"]);

    // Relevance needs a search of one project; a search is bounded.
    let eleven: String = (0..11).map(|i| format!("word{i} ")).collect();
    for (request, field) in [
        (search(&project, "", pb::TaskSort::Relevance), "sort"),
        (
            pb::ListTasksRequest {
                assignee_id: "me".into(),
                query: "deploy".into(),
                sort: pb::TaskSort::Relevance.into(),
                ..Default::default()
            },
            "sort",
        ),
        (search(&project, &eleven, pb::TaskSort::Unspecified), "query"),
        (search(&project, "--", pb::TaskSort::Unspecified), "query"),
    ] {
        let status = stack.tasks.list_tasks(as_user(&owner, request)).await.unwrap_err();
        assert_eq!(bad_fields(&status), [field]);
    }

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_search_across_projects_of_one_assignee_checks_each_task() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let alice = stack.user("alice@example.com").await;
    let first = stack.project(&alice, "ONE").await;
    let second = stack.project(&alice, "TWO").await;
    let mut assigned = Vec::new();
    for (i, (project, title)) in
        [(&first, "Release notes"), (&second, "Release train"), (&first, "Notes"), (&second, "Write release")]
            .into_iter()
            .enumerate()
    {
        let mut request = new_task(project, title);
        if i != 3 {
            request.assignee_ids = vec![alice.id.to_string()];
        }
        assigned.push(stack.create(&alice, request).await);
    }
    let request = pb::ListTasksRequest { assignee_id: "me".into(), query: "release".into(), ..Default::default() };
    let listed = stack.list_all(&alice, request, 1).await;
    assert_eq!(ids(&listed), [assigned[1].id.clone(), assigned[0].id.clone()], "newest first, assigned only");

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn common_and_rare_words_are_read_by_either_plan_with_the_same_answers() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "MANY").await;

    // More tasks hold "common" than a rare word may (500): a search of it alone walks the list's
    // order; one with "rare" starts from rare's rows; relevance reads common's rows in order.
    let mut tasks = Vec::new();
    for i in 0..600 {
        let title = match i % 7 {
            0 => format!("Common item {i} rare"),
            1 => format!("Item {i}"),
            _ => format!("Common item {i}"),
        };
        let mut request = new_task(&project, &title);
        if i % 5 == 0 {
            request.description = Some("common rare".into());
        }
        request.priority = [pb::TaskPriority::Low, pb::TaskPriority::High][i % 2].into();
        tasks.push(stack.create(&owner, request).await);
    }
    let commons = tasks.iter().filter(|t| ranked(std::slice::from_ref(t), &["common"]).len() == 1).count();
    assert!(commons > 500, "{commons} tasks hold the common word");

    for (q, words) in [("common", vec!["common"]), ("common rare", vec!["common", "rare"]), ("rare", vec!["rare"])] {
        let matching: Vec<pb::Task> =
            tasks.iter().filter(|t| ranked(std::slice::from_ref(t), &words).len() == 1).cloned().collect();
        // The first pages of a few orders, and the whole ranking.
        for sort in [pb::TaskSort::CreatedAtDesc, pb::TaskSort::PriorityDesc, pb::TaskSort::PositionAsc] {
            let page = stack
                .tasks
                .list_tasks(as_user(
                    &owner,
                    pb::ListTasksRequest {
                        page: Some(pb::PageRequest { limit: 50, ..Default::default() }),
                        ..search(&project, q, sort)
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            let expected = expected_order(matching.clone(), sort);
            assert_eq!(ids(&page.tasks), expected[..50.min(expected.len())], "{q:?} {sort:?}");
        }
        let listed = stack.list_all(&owner, search(&project, q, pb::TaskSort::Unspecified), 100).await;
        assert_eq!(ids(&listed), ranked(&tasks, &words), "{q:?} by relevance");
    }

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn tasks_written_before_the_word_index_are_indexed_in_the_background() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "OLD").await;
    let mut tasks = Vec::new();
    for title in ["Legacy import", "Legacy export", "Something else"] {
        tasks.push(stack.create(&owner, new_task(&project, title)).await);
    }
    // As a release before the index left them: no words, not marked indexed.
    sqlx::query("DELETE FROM task_word").execute(&stack.db).await.unwrap();
    sqlx::query("UPDATE task SET words_version = 0").execute(&stack.db).await.unwrap();
    let request = pb::ListTasksRequest {
        project_id: project.clone(),
        query: "legacy".into(),
        sort: pb::TaskSort::CreatedAtAsc.into(),
        ..Default::default()
    };

    eventually("the background indexer writes the old tasks' words", || {
        let mut tasks_client = stack.tasks.clone();
        let request = as_user(&owner, request.clone());
        async move { tasks_client.list_tasks(request).await.unwrap().into_inner().tasks.len() == 2 }
    })
    .await;
    let listed = stack.list_all(&owner, request, 10).await;
    assert_eq!(ids(&listed), [tasks[0].id.clone(), tasks[1].id.clone()]);
    let unindexed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM task WHERE words_version = 0").fetch_one(&stack.db).await.unwrap();
    assert_eq!(unindexed, 0);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn edits_keep_a_tasks_words_exactly_those_of_its_text() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "EDIT").await;
    let mut request = new_task(&project, "Deploy gateway w3 n17");
    request.description = Some("then restart the gateway".into());
    let mut task = stack.create(&owner, request).await;
    let neighbour = stack.create(&owner, new_task(&project, "Deploy gateway w3 n18")).await;

    // The words and weights the index holds for a task, as (word, weight), sorted.
    async fn held(db: &sqlx::MySqlPool, task_id: &str) -> Vec<(String, u8)> {
        sqlx::query_as(
            "SELECT word, weight FROM task_word WHERE task_id = UNHEX(REPLACE(?, '-', '')) ORDER BY word, weight",
        )
        .bind(task_id)
        .fetch_all(db)
        .await
        .unwrap()
    }
    fn expected(title: &str, description: Option<&str>) -> Vec<(String, u8)> {
        let mut words: Vec<(String, u8)> =
            ordo_task::domain::index_words(title, description).into_iter().map(|w| (w.word, w.weight)).collect();
        words.sort();
        words
    }

    // One word swapped; a description word moved to the title (its weight changes); the
    // description dropped; a title of words all new; the same text again.
    let edits: [(Option<&str>, Option<Option<&str>>); 5] = [
        (Some("Deploy gateway w3 u1"), None),
        (Some("Deploy gateway restart w3 u1"), None),
        (None, Some(None)),
        (Some("Archive"), Some(Some("old notes, old notes"))),
        (Some("Archive"), Some(Some("old notes"))),
    ];
    for (title, description) in edits {
        let mut patch = pb::TaskPatch::default();
        let mut fields = Vec::new();
        if let Some(title) = title {
            patch.title = title.to_owned();
            fields.push("title");
        }
        if let Some(description) = description {
            patch.description = description.map(str::to_owned);
            fields.push("description");
        }
        task = stack.update(&owner, &task.id, patch, &fields, None).await.unwrap();
        assert_eq!(
            held(&stack.db, &task.id).await,
            expected(&task.title, task.description.as_deref()),
            "after {title:?} / {description:?}"
        );
    }
    // The other task of the project, sharing words, kept all of its own.
    assert_eq!(held(&stack.db, &neighbour.id).await, expected(&neighbour.title, None));
    let stale: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM task WHERE words_version <> ?")
        .bind(ordo_task::domain::WORDS_VERSION)
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(stale, 0);

    stack.stop().await;
    env.cleanup().await.unwrap();
}
