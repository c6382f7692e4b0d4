//! The OpenAPI document covers exactly what the router serves. These tests need Redis only: the
//! services are pointed at a closed port, which is enough to see routing.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ordo_harness::{Service, Stack};
use ordo_testkit::TestEnv;
use serde_json::Value;
use tower::ServiceExt as _;

/// The detail of the router's own 404 (the fallback), as opposed to a handler's.
const NO_ROUTE: &str = "No route matches this path.";

async fn app(env: &TestEnv) -> Router {
    let config = Stack::of([Service::Gateway])
        .args(
            Service::Gateway,
            [
                "--identity-url",
                "http://127.0.0.1:1",
                "--project-url",
                "http://127.0.0.1:1",
                "--task-url",
                "http://127.0.0.1:1",
                "--audit-url",
                "http://127.0.0.1:1",
                "--notification-url",
                "http://127.0.0.1:1",
                "--backend-timeout-ms",
                "200",
            ],
        )
        .gateway_config(env);
    ordo_gateway::app(ordo_gateway::AppState::connect(&config).await.unwrap())
}

/// The paths the router serves. axum has no API to list routes, but its `Debug` output prints each
/// route's path (`RouteId(n): "/path"`); the fallback's private catch-all paths are left out.
fn routed_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    debug
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/') && *s != "/" && !s.contains("__private__axum"))
        .map(str::to_owned)
        .collect()
}

fn documented_operations() -> Vec<(String, Method)> {
    let document = ordo_gateway::openapi();
    let mut operations = Vec::new();
    for (path, item) in &document.paths.paths {
        let methods = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                operations.push((path.clone(), method));
            }
        }
    }
    operations
}

async fn call(app: &Router, method: Method, path: &str) -> (StatusCode, Value) {
    let uri = path
        .replace("{id}", "0190b6a4-7c1e-7000-8000-000000000001")
        .replace("{user_id}", "0190b6a4-7c1e-7000-8000-000000000002");
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_paths_the_router_serves() {
    // Arrange
    let env = TestEnv::new();
    let app = app(&env).await;

    // Act
    let routed = routed_paths(&app);
    let documented: BTreeSet<String> = ordo_gateway::openapi().paths.paths.keys().cloned().collect();

    // Assert
    assert!(routed.contains("/api/v1/users/{id}"), "the route listing works: {routed:?}");
    assert_eq!(routed, documented);
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_every_other_method_is_405() {
    // Arrange
    let env = TestEnv::new();
    let app = app(&env).await;
    let operations = documented_operations();
    assert!(operations.len() >= 15, "{operations:?}");

    for (path, method) in &operations {
        // Act
        let (status, body) = call(&app, method.clone(), path).await;

        // Assert
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(!(status == StatusCode::NOT_FOUND && body["detail"] == NO_ROUTE), "{method} {path} is not routed");
    }
    for path in operations.iter().map(|(path, _)| path).collect::<BTreeSet<_>>() {
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            if operations.contains(&(path.clone(), method.clone())) {
                continue;
            }
            // Act
            let (status, _) = call(&app, method.clone(), path).await;

            // Assert
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is served but not documented");
        }
    }
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_document_is_served_with_the_bearer_scheme_and_problem_schemas() {
    // Arrange
    let env = TestEnv::new();
    let app = app(&env).await;

    // Act
    let (status, document) = call(&app, Method::GET, "/api/v1/openapi.json").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
    assert!(document["components"]["schemas"]["Problem"].is_object());
    let me = &document["paths"]["/api/v1/users/me"]["get"];
    assert_eq!(me["security"][0]["bearer"], serde_json::json!([]));
    assert!(me["responses"]["401"]["content"]["application/problem+json"].is_object());
    let register = &document["paths"]["/api/v1/auth/register"]["post"];
    for status in ["201", "400", "409", "413", "415", "422", "500", "503"] {
        assert!(register["responses"][status].is_object(), "register lacks {status}");
    }
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn authenticated_operations_are_exactly_the_ones_that_refuse_anonymous_calls() {
    // Arrange
    let env = TestEnv::new();
    let app = app(&env).await;
    let document = serde_json::to_value(ordo_gateway::openapi()).unwrap();

    for (path, method) in documented_operations() {
        let secured = document["paths"][&path][method.as_str().to_lowercase()]["security"].is_array();

        // Act
        let (status, _) = call(&app, method.clone(), &path).await;

        // Assert
        assert_eq!(status == StatusCode::UNAUTHORIZED, secured, "{method} {path}: {status}");
    }
    env.cleanup().await.unwrap();
}

#[test]
fn every_operation_has_exactly_one_tag_and_every_tag_is_declared_and_used() {
    // Arrange
    let document = serde_json::to_value(ordo_gateway::openapi()).unwrap();
    let declared: BTreeSet<String> =
        document["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();

    // Act
    let mut used = BTreeSet::new();
    for (path, method) in documented_operations() {
        let tags = document["paths"][&path][method.as_str().to_lowercase()]["tags"].as_array().cloned();
        let tags = tags.unwrap_or_default();
        assert_eq!(tags.len(), 1, "{method} {path}: {tags:?}");
        used.insert(tags[0].as_str().unwrap().to_owned());
    }

    // Assert
    assert_eq!(used, declared);
    assert_eq!(
        declared,
        ["audit", "auth", "jobs", "notifications", "operations", "projects", "reports", "tasks", "users", "webhooks"]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn the_tasks_area_documents_its_headers_schemas_and_the_upload_form() {
    // Arrange
    let document = serde_json::to_value(ordo_gateway::openapi()).unwrap();
    let operation = |path: &str, method: &str| document["paths"][format!("/api/v1{path}")][method].clone();
    let parameters = |path: &str, method: &str| -> BTreeSet<String> {
        operation(path, method)["parameters"]
            .as_array()
            .map(|params| params.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };

    // Act
    let task = &document["components"]["schemas"]["Task"];
    let upload = operation("/tasks/{id}/attachments", "post");

    // Assert
    let required: BTreeSet<&str> = task["required"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let fields = [
        "id",
        "project_id",
        "number",
        "key",
        "title",
        "description",
        "status",
        "priority",
        "assignee_ids",
        "labels",
        "due_at",
        "start_at",
        "estimate_minutes",
        "parent_id",
        "reporter_id",
        "position",
        "created_at",
        "updated_at",
        "completed_at",
        "version",
    ];
    assert_eq!(required, fields.into_iter().collect(), "every field is always present, null when absent");
    assert!(task["properties"]["position"]["description"].as_str().unwrap().contains("bytewise"));
    assert!(parameters("/tasks", "post").contains("Idempotency-Key"));
    assert!(parameters("/tasks/{id}/comments", "post").contains("Idempotency-Key"));
    for (path, method) in [("/tasks/{id}", "patch"), ("/tasks/{id}", "delete"), ("/comments/{id}", "patch")] {
        assert!(parameters(path, method).contains("If-Match"), "{method} {path}");
        assert!(operation(path, method)["responses"]["412"].is_object(), "{method} {path}");
    }
    for (path, method) in [("/tasks/{id}", "get"), ("/tasks/{id}", "patch"), ("/tasks/by-key/{key}", "get")] {
        assert!(operation(path, method)["responses"]["200"]["headers"]["ETag"].is_object(), "{method} {path}");
    }
    assert!(operation("/tasks", "post")["responses"]["201"]["headers"]["Location"].is_object());
    assert!(upload["requestBody"]["content"]["multipart/form-data"].is_object(), "{upload}");
    for status in ["201", "413", "415"] {
        assert!(upload["responses"][status].is_object(), "upload lacks {status}");
    }
    assert!(!upload["responses"]["413"]["description"].as_str().unwrap().contains("1 MiB"));
    let sort = operation("/tasks", "get")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sort")
        .cloned()
        .unwrap();
    assert!(
        sort["description"].as_str().unwrap().replace('\n', " ").contains("without a due date come last"),
        "{sort}"
    );
    let failure = &document["components"]["schemas"]["BulkFailure"]["properties"]["status"]["description"];
    assert!(failure.as_str().unwrap().contains("would have answered"), "{failure}");
}

#[test]
fn links_lead_from_each_create_to_operations_and_parameters_that_exist() {
    // Arrange
    let document = serde_json::to_value(ordo_gateway::openapi()).unwrap();
    let mut parameters_of = std::collections::HashMap::new();
    for (path, method) in documented_operations() {
        let operation = &document["paths"][&path][method.as_str().to_lowercase()];
        let names: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|params| {
                params
                    .iter()
                    .map(|p| format!("{}.{}", p["in"].as_str().unwrap(), p["name"].as_str().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        parameters_of.insert(operation["operationId"].as_str().unwrap().to_owned(), (operation.clone(), names));
    }

    // Act
    let mut links = Vec::new();
    for (source, (operation, _)) in &parameters_of {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links.push((source.clone(), status.clone(), name.clone(), link.clone()));
            }
        }
    }

    // Assert
    assert!(links.len() >= 30, "{links:?}");
    for (source, status, name, link) in &links {
        assert_eq!(status, "201", "{source} {name}");
        assert!(link.get("operation_id").is_none() && link.get("request_body").is_none(), "snake case: {link}");
        let target = link["operationId"].as_str().unwrap();
        let (target_operation, target_parameters) = &parameters_of[target];
        for (parameter, expression) in link["parameters"].as_object().into_iter().flatten() {
            assert!(target_parameters.contains(parameter), "{source} → {target}: no {parameter}");
            assert!(expression.as_str().unwrap().starts_with('$'), "{source} → {target}: {expression}");
        }
        if let Some(body) = link.get("requestBody") {
            let schema =
                target_operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
            let schema = &document["components"]["schemas"][schema.rsplit('/').next().unwrap()];
            for field in body.as_object().unwrap().keys() {
                assert!(schema["properties"][field].is_object(), "{source} → {target}: no body field {field}");
            }
        }
    }
    let targets = |source: &str| -> BTreeSet<&str> {
        links
            .iter()
            .filter(|(from, ..)| from == source)
            .map(|(.., link)| link["operationId"].as_str().unwrap())
            .collect()
    };
    assert!(targets("create_project").contains("create_task"));
    assert!(targets("create_task").contains("get_task"));
    assert!(targets("add_comment").contains("delete_comment"));
}

#[test]
fn the_document_states_the_header_syntax_text_rules_label_length_and_upload_form_the_gateway_enforces() {
    // Arrange
    let document = serde_json::to_value(ordo_gateway::openapi()).unwrap();

    // Act
    let mut patterns = std::collections::BTreeMap::new();
    for (path, method) in documented_operations() {
        let operation = &document["paths"][&path][method.as_str().to_lowercase()];
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            if ["If-Match", "Idempotency-Key"].contains(&name) {
                let pattern = parameter["schema"]["pattern"].as_str().unwrap_or_default().to_owned();
                patterns.entry(name.to_owned()).or_insert_with(BTreeSet::new).insert(pattern);
            }
        }
    }

    // Assert: one pattern per header, on every operation that takes it.
    assert_eq!(patterns["If-Match"].len(), 1, "{patterns:?}");
    assert_eq!(patterns["Idempotency-Key"].len(), 1, "{patterns:?}");
    assert!(patterns["If-Match"].iter().all(|p| p.starts_with('^') && p.contains("W/")), "{patterns:?}");
    assert!(patterns["Idempotency-Key"].iter().all(|p| p.contains("253")), "{patterns:?}");
    for body in ["CreateTaskBody", "UpdateTaskBody", "BulkPatch"] {
        let label = &document["components"]["schemas"][body]["properties"]["labels"]["items"];
        assert_eq!(label["maxLength"], 50, "{body}: {label}");
        assert_eq!(label["minLength"], 1, "{body}: {label}");
        let assignee = &document["components"]["schemas"][body]["properties"]["assignee_ids"]["items"];
        assert_eq!(assignee["format"], "uuid", "{body}: {assignee}");
    }
    assert_eq!(document["components"]["schemas"]["BulkPatch"]["minProperties"], 1);
    // Every text field a client writes states the services' rule on control characters.
    let text_fields = [
        ("RegisterBody", "display_name"),
        ("UpdateMeBody", "display_name"),
        ("CreateProjectBody", "name"),
        ("CreateProjectBody", "description"),
        ("UpdateProjectBody", "name"),
        ("UpdateProjectBody", "description"),
        ("CreateTaskBody", "title"),
        ("CreateTaskBody", "description"),
        ("UpdateTaskBody", "title"),
        ("UpdateTaskBody", "description"),
        ("CommentBody", "body"),
    ];
    for (body, field) in text_fields {
        let pattern = document["components"]["schemas"][body]["properties"][field]["pattern"].as_str();
        assert!(pattern.is_some_and(|p| p.contains(r"\u0000-")), "{body}.{field}: {pattern:?}");
    }
    for body in ["CreateTaskBody", "UpdateTaskBody", "BulkPatch"] {
        let label = &document["components"]["schemas"][body]["properties"]["labels"]["items"]["pattern"];
        assert!(label.as_str().is_some_and(|p| p.contains(r"\u0000-")), "{body}.labels: {label}");
    }
    assert_eq!(document["components"]["schemas"]["UploadForm"]["additionalProperties"], false);
    assert_eq!(document["components"]["schemas"]["PublicProfile"]["additionalProperties"], false);
    assert_eq!(document["components"]["schemas"]["UserListing"]["anyOf"].as_array().unwrap().len(), 2);
}
