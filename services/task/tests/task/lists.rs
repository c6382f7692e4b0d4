//! Filters, sorts and pages of the task list.

use super::*;

#[tokio::test]
async fn every_filter_and_every_sort_returns_the_right_tasks_in_order_across_pages() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.project(&owner, "LIST").await;
    let other = stack.project(&owner, "OTHER").await;
    stack.add(&owner, &project, &bob, ppb::ProjectRole::Member).await;

    let statuses = [pb::TaskStatus::Todo, pb::TaskStatus::Done, pb::TaskStatus::InProgress, pb::TaskStatus::Backlog];
    let priorities = [
        pb::TaskPriority::None,
        pb::TaskPriority::Urgent,
        pb::TaskPriority::Low,
        pb::TaskPriority::High,
        pb::TaskPriority::Medium,
    ];
    let words = ["database migration", "login page", "search index", "payment gateway"];
    let mut parent = None;
    let mut all = Vec::new();
    for i in 0..14_i64 {
        let mut request = new_task(&project, &format!("Task {i} {}", words[i as usize % 4]));
        request.status = statuses[i as usize % 4].into();
        request.priority = priorities[i as usize % 5].into();
        // Some without a due date; some sharing one.
        request.due_at = match i % 4 {
            0 => None,
            1 => ts(1_900_000_000),
            _ => ts(1_900_000_000 + (i % 5) * 3600),
        };
        if i % 3 == 0 {
            request.assignee_ids = vec![bob.id.to_string()];
        }
        if i % 2 == 0 {
            request.labels = vec!["backend".into()];
        }
        if i == 5 {
            request.description = Some("Remember the quarterly invoices".into());
        }
        if i >= 10 {
            request.parent_id = parent.clone();
        }
        let task = stack.create(&owner, request).await;
        if i == 9 {
            parent = Some(task.id.clone());
        }
        all.push(task);
    }
    // Change a few, so updated_at differs from created_at order; move one, so position differs too.
    for i in [3_usize, 7, 1] {
        let patch = pb::TaskPatch { title: format!("Renamed {i}"), ..Default::default() };
        let updated = stack.update(&owner, &all[i].id, patch, &["title"], None).await.unwrap();
        all[i] = updated;
    }
    let moved = stack.move_task(&owner, &all[12].id, None, Some(&all[0].id)).await.unwrap();
    all[12] = moved;
    // Another project's task never shows up.
    stack.create(&owner, new_task(&other, "Task in another project database")).await;

    let sorts = [
        pb::TaskSort::Unspecified,
        pb::TaskSort::CreatedAtAsc,
        pb::TaskSort::CreatedAtDesc,
        pb::TaskSort::UpdatedAtAsc,
        pb::TaskSort::UpdatedAtDesc,
        pb::TaskSort::DueAtAsc,
        pb::TaskSort::DueAtDesc,
        pb::TaskSort::PriorityAsc,
        pb::TaskSort::PriorityDesc,
        pb::TaskSort::PositionAsc,
    ];
    type Filter = (&'static str, pb::ListTasksRequest, Box<dyn Fn(&pb::Task) -> bool>);
    let base = pb::ListTasksRequest { project_id: project.clone(), ..Default::default() };
    let bob_id = bob.id.to_string();
    let parent_id = parent.clone().unwrap();
    let filters: Vec<Filter> = vec![
        ("none", base.clone(), Box::new(|_| true)),
        (
            "statuses",
            pb::ListTasksRequest {
                statuses: vec![pb::TaskStatus::Done.into(), pb::TaskStatus::Backlog.into()],
                ..base.clone()
            },
            Box::new(|t| t.status == pb::TaskStatus::Done as i32 || t.status == pb::TaskStatus::Backlog as i32),
        ),
        (
            "priorities",
            pb::ListTasksRequest {
                priorities: vec![pb::TaskPriority::Urgent.into(), pb::TaskPriority::High.into()],
                ..base.clone()
            },
            Box::new(|t| t.priority >= pb::TaskPriority::High as i32),
        ),
        (
            "assignee",
            pb::ListTasksRequest { assignee_id: bob_id.clone(), ..base.clone() },
            Box::new(move |t| t.assignee_ids.contains(&bob_id)),
        ),
        (
            "label",
            pb::ListTasksRequest { label: "Backend".into(), ..base.clone() },
            Box::new(|t| t.labels.iter().any(|l| l == "backend")),
        ),
        (
            "query",
            pb::ListTasksRequest { query: "database".into(), ..base.clone() },
            Box::new(|t| t.title.contains("database")),
        ),
        (
            "query in description",
            pb::ListTasksRequest { query: "quarterly invoices".into(), ..base.clone() },
            Box::new(|t| t.description.as_deref().is_some_and(|d| d.contains("quarterly"))),
        ),
        (
            "due before",
            pb::ListTasksRequest { due_before: ts(1_900_000_000 + 2 * 3600), ..base.clone() },
            Box::new(|t| t.due_at.as_ref().is_some_and(|d| d.seconds < 1_900_000_000 + 2 * 3600)),
        ),
        (
            "due after",
            pb::ListTasksRequest { due_after: ts(1_900_000_000), ..base.clone() },
            Box::new(|t| t.due_at.as_ref().is_some_and(|d| d.seconds > 1_900_000_000)),
        ),
        (
            "parent",
            pb::ListTasksRequest { parent_id: Some(parent_id.clone()), ..base.clone() },
            Box::new(move |t| t.parent_id.as_deref() == Some(parent_id.as_str())),
        ),
        (
            "top level",
            pb::ListTasksRequest { parent_id: Some(String::new()), ..base.clone() },
            Box::new(|t| t.parent_id.is_none()),
        ),
        (
            "combined",
            pb::ListTasksRequest {
                label: "backend".into(),
                statuses: vec![pb::TaskStatus::Todo.into(), pb::TaskStatus::InProgress.into()],
                due_after: ts(1_800_000_000),
                ..base.clone()
            },
            Box::new(|t| {
                t.labels.contains(&"backend".to_owned())
                    && (t.status == pb::TaskStatus::Todo as i32 || t.status == pb::TaskStatus::InProgress as i32)
                    && t.due_at.is_some()
            }),
        ),
    ];
    for (name, request, keep) in &filters {
        let matching: Vec<pb::Task> = all.iter().filter(|t| keep(t)).cloned().collect();
        assert!(!matching.is_empty(), "filter {name} matches nothing; the test would prove little");
        if *name != "none" {
            assert!(matching.len() < all.len(), "filter {name} matches everything");
        }
        for sort in sorts {
            let listed = stack.list_all(&owner, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 3).await;
            assert_eq!(ids(&listed), expected_order(matching.clone(), sort), "filter {name}, sort {sort:?}");
        }
    }

    // A cursor belongs to its list.
    let page = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 2, ..Default::default() }), ..base.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_cursor.is_empty());
    for request in [
        pb::ListTasksRequest {
            sort: pb::TaskSort::PriorityAsc.into(),
            page: Some(pb::PageRequest { limit: 2, cursor: page.next_cursor.clone() }),
            ..base.clone()
        },
        pb::ListTasksRequest {
            label: "backend".into(),
            page: Some(pb::PageRequest { limit: 2, cursor: page.next_cursor.clone() }),
            ..base.clone()
        },
        pb::ListTasksRequest {
            page: Some(pb::PageRequest { cursor: "not-a-cursor".into(), ..Default::default() }),
            ..base.clone()
        },
    ] {
        let status = stack.tasks.list_tasks(as_user(&owner, request)).await.unwrap_err();
        assert_eq!(bad_fields(&status), ["cursor"]);
    }
    let status = stack.tasks.list_tasks(as_user(&owner, pb::ListTasksRequest::default())).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["project_id"]);
    let status = stack
        .tasks
        .list_tasks(as_user(
            &owner,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 101, ..Default::default() }), ..base.clone() },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["limit"]);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn an_assignee_list_spans_only_the_projects_the_caller_can_see() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let alice = stack.user("alice@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let carol = stack.user("carol@example.com").await;
    let first = stack.project(&alice, "ONE").await;
    let second = stack.project(&alice, "TWO").await;
    let hidden = stack.project(&carol, "HID").await;
    for project in [&first, &second] {
        stack.add(&alice, project, &bob, ppb::ProjectRole::Member).await;
    }
    stack.add(&carol, &hidden, &bob, ppb::ProjectRole::Member).await;

    let mut seen_by_alice = Vec::new();
    let mut everything = Vec::new();
    for i in 0..9 {
        let (project, by) = match i % 3 {
            0 => (&first, &alice),
            1 => (&second, &alice),
            _ => (&hidden, &carol),
        };
        let mut request = new_task(project, &format!("Assigned {i}"));
        request.assignee_ids = vec![bob.id.to_string()];
        let task = stack.create(by, request).await;
        if i % 3 != 2 {
            seen_by_alice.push(task.clone());
        }
        everything.push(task);
    }
    // Not assigned to bob: never listed.
    stack.create(&alice, new_task(&first, "Someone else's")).await;

    let request = pb::ListTasksRequest { assignee_id: bob.id.to_string(), ..Default::default() };
    for sort in [pb::TaskSort::CreatedAtDesc, pb::TaskSort::CreatedAtAsc, pb::TaskSort::PositionAsc] {
        let listed = stack.list_all(&alice, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 2).await;
        assert_eq!(ids(&listed), expected_order(seen_by_alice.clone(), sort), "{sort:?}");
        let listed = stack.list_all(&bob, pb::ListTasksRequest { sort: sort.into(), ..request.clone() }, 4).await;
        assert_eq!(ids(&listed), expected_order(everything.clone(), sort), "{sort:?}");
    }
    let mine = stack.list_all(&bob, pb::ListTasksRequest { assignee_id: "me".into(), ..Default::default() }, 50).await;
    assert_eq!(mine.len(), 9);

    // Many newer tasks alice cannot see: the scan is bounded, so a page may come back short (even
    // empty) with a cursor, and walking on still finds exactly what she sees.
    for i in 0..24 {
        let mut request = new_task(&hidden, &format!("Hidden {i}"));
        request.assignee_ids = vec![bob.id.to_string()];
        stack.create(&carol, request).await;
    }
    let first_page = stack
        .tasks
        .list_tasks(as_user(
            &alice,
            pb::ListTasksRequest { page: Some(pb::PageRequest { limit: 1, ..Default::default() }), ..request.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(first_page.tasks.is_empty());
    assert!(!first_page.next_cursor.is_empty());
    let listed = stack.list_all(&alice, request.clone(), 1).await;
    assert_eq!(ids(&listed), expected_order(seen_by_alice.clone(), pb::TaskSort::CreatedAtDesc));

    stack.stop().await;
    env.cleanup().await.unwrap();
}
