//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Operations come from the handlers'
//! `#[utoipa::path]` attributes through `utoipa_axum::routes!`, so every API route is documented by
//! construction; this module adds what is common to them (the bearer scheme, the problem responses
//! every operation can produce) and the decisions taken where API.md is silent.

use utoipa::OpenApi as _;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, KnownFormat, ObjectBuilder, SchemaFormat};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Responses, Schema, Type,
};

use crate::error::PROBLEM_JSON;

/// The name of the bearer security scheme; handlers name it in `security(("bearer" = []))`.
pub(crate) const BEARER: &str = "bearer";

/// Decisions the contract leaves open, written down for clients.
const DESCRIPTION: &str = r#"Ordo's REST API. The contract is API.md; this document is generated from the gateway's code.

## Conventions this API follows where the contract is silent

- **Errors** are RFC 9457 problem documents (`application/problem+json`). `type` is
  `https://ordo.dev/problems/<slug>`; the slugs are `bad-request`, `unauthorized`, `forbidden`, `not-found`,
  `method-not-allowed`, `conflict`, `idempotency-key-in-use`, `precondition-failed`, `content-too-large`,
  `unsupported-media-type`, `validation-failed`, `idempotency-key-reused`, `too-many-requests`,
  `internal-error`, `service-unavailable`, `request-timeout`, `gateway-timeout`. `errors` appears only on `validation-failed`.
- **Bodies** must be sent with `Content-Type: application/json` (or any `application/*+json`, such as
  `application/merge-patch+json`), else `415`; at most 1 MiB, else `413`. Malformed JSON is `400`. A body
  of the wrong shape — a missing required field, a wrong type, or an **unknown field** — is `422` naming the
  field (unknown fields are refused, as Stripe does, so a misspelt field in a `PATCH` is not silently
  ignored).
- **Query parameters** the operation does not define are ignored (as GitHub does); a bad value of a defined
  one (such as `limit=0`, or a cursor we did not issue) is `400`.
- **401** responses carry `WWW-Authenticate: Bearer realm="ordo"` (with `error="invalid_token"` when a token
  was sent but refused). Missing, malformed, expired, revoked and wrongly signed tokens all get the same
  answer.
- **503** responses carry `Retry-After: 1`: a backend is down or slower than the gateway's backend timeout,
  and the request had no effect. **429** responses carry `Retry-After` in seconds.
- **Rate limits.** Every `/api/v1` request is charged to a budget, shared by every gateway instance:
  reads (`GET`), writes, costly requests (full-text search `GET /tasks?q=`, uploads, `POST /tasks/bulk`,
  `GET /audit/verify`) and exact-email lookups (`GET /users?email=`) per user, or per client address when
  no valid token is sent; register, login and refresh per client address (IPv6: per /64). Budgets are
  requests per minute, spread evenly over the minute (GCRA), with bursts up to the whole budget. Every
  limited response carries `RateLimit-Policy: "<policy>";q=<quota>;w=60` and
  `RateLimit: "<policy>";r=<remaining>;t=<seconds until the budget is whole again>` (IETF
  draft-ietf-httpapi-ratelimit-headers); past the budget, `429` with `Retry-After` in seconds. Default
  budgets: reads 1,200, writes 300, costly 60, email lookups 20, register/login/refresh 30 per address.
- **Visibility.** A resource the caller may not see answers `404`, exactly as one that does not exist, so
  its existence does not leak; `403` means the caller can see it but its role does not allow the action.
  A path id that is not a UUID is a `404` too.
- **`null` in `PATCH` bodies.** An absent field is left as it is. `null` removes an optional value (such as
  a project's `description`, which `""` removes too); `null` for a required value (such as `name`) is `422`.
- **Optimistic concurrency.** `If-Match` (RFC 9110 §13.1.1) takes `*` or a comma-separated list of entity
  tags as sent in `ETag` (`"3"`, or `"3", "4"`, at most 8 distinct versions): the write happens when the
  current version is any strong tag of the list, else `412`. Weak tags (`W/"3"`) never match a write, and
  neither do tags that are not a version, so a list of only those is `412`; only a value that is not this
  syntax is `400`. The services compare one version, so the gateway tries the listed versions in turn
  (each try is atomic there; the first that matches writes, the rest are not tried). Without `If-Match`,
  or with `*`, a write is unconditional.
- **Idempotency.** `Idempotency-Key` (1..255 visible ASCII characters, else `400`) is scoped to the
  caller (the user, or all anonymous callers together for `register`). The same key with the same method,
  path and JSON body (compared after parsing, so key order and whitespace do not matter) within 24 h replays
  the first status, body, `Location`, `ETag` and `Content-Type`, with `Idempotent-Replayed: true`. The
  same key with another request is `422`; while the first is still running, `409`. `5xx` and `429` outcomes
  had no effect and are not stored, so a retry with the same key runs again; requests refused before they
  run (`400`, `413`, `415`, `422` from the body's shape) claim nothing. A key stays claimed until the
  request's effect is known: a client that hangs up mid-request does not cancel it, and its retry gets
  `409` until the first finishes, then the first response.
- **Slow clients.** Request headers must arrive within 10 s (`ORDO_HEADER_READ_TIMEOUT_MS`, else the
  connection is closed) and a JSON body within 10 s of them (`ORDO_BODY_READ_TIMEOUT_MS`, else `408`); the
  body is read before the request counts against the gateway's capacity. A request that runs longer than
  30 s (`ORDO_REQUEST_TIMEOUT_MS`) is `504` (its effect is unknown: retry with the same `Idempotency-Key`).
  One client address holds at most 256 connections (`ORDO_MAX_CONNECTIONS_PER_IP`); past that a new one is
  closed at once.
- **Bounds.** Arrays are refused (`422` naming the field) as soon as they pass their bound, before the rest
  is read: `labels` and `assignee_ids` at most 20 (each label at most 50 characters), bulk `ids` at most
  100, a webhook's `event_types` at most 50 (each at most 100 bytes; its `url` at most 2048 bytes), and
  a push subscription's `endpoint` at most 2048 bytes, `keys.p256dh` 100 and `keys.auth` 40. JSON
  nested deeper than 128 levels is `400`; invalid UTF-8 and raw control characters are `400`. A
  number no field can hold (such as `1e400`) and a key repeated within one object are `422` naming the field.
- **Text** is kept exactly as sent (no Unicode normalisation; one-line fields lose only leading and trailing
  whitespace), lengths count Unicode characters (scalar values, not bytes), and control characters (Unicode
  `Cc`, such as an escaped `\u0000`) are `422` in every text field, except tab and line breaks in
  descriptions and comments.
- **Tokens** are answered with `Cache-Control: no-store`; the key set with `Cache-Control: public,
  max-age=300`.
- **Sessions end at once.** Logging out ends the session; a password change ends every other session of
  the user; an admin disabling an account or changing a user's global `role` ends every session of that
  user. Their access tokens are refused (`401`) from the next request on — by the gateway and by every
  service — and the next login issues tokens that carry the new role.
- **Request ids.** Every response carries `X-Request-Id`: the request's own when it sent one, else a new
  UUID. W3C `traceparent` is honoured and propagated to the services.
- **Tasks.** `position` is an opaque string; tasks sort by it bytewise (`sort=position` is the board order)
  and `POST /tasks/{id}/move` is the only way to change it. `sort=due_at` and `sort=-due_at` put tasks
  without a due date last in both directions; every sort breaks ties by id, so pages never overlap.
  `assignee_id=me` is the caller. `status` and `priority` filters take comma-separated lists; an unknown
  value, sort, UUID or time is `400`, while a list with neither `project_id` nor `assignee_id` is `422`
  naming `project_id`. A `PATCH` changes exactly the fields present (the update mask is built from the
  body's keys); `null` clears `description`, `assignee_ids`, `labels`, `due_at`, `start_at`,
  `estimate_minutes` and `parent_id`, and `""` clears `description` too; `project_id` in a `PATCH` is
  `422` (a task never changes project). In `POST /tasks/bulk`, each `failed[].status` is the HTTP status
  the single `PATCH` of that task would have answered (`404`, `403`, `409`, `422`, ...); the bulk request
  itself is `200` whenever its body is valid. A comment's `Location` (`/comments/{id}`) serves `PATCH` and
  `DELETE`; comments are read through their task.
- **Attachments** are uploaded as `multipart/form-data` with one part `file` (other parts are skipped) and
  streamed through, never held whole: a declared `Content-Length` over the limit (`ORDO_MAX_ATTACHMENT_BYTES`,
  default 25 MiB, plus 64 KiB of multipart envelope) is `413` before a byte is read, and an upload that
  streams more than the limit is cut off with `413` and stores nothing. The 1 MiB JSON limit does not apply
  to uploads, which have no overall deadline; one that stands still for 30 seconds is abandoned (`400`).
  `Idempotency-Key` works on uploads too: the file is known only once streamed, after the key is claimed,
  so a retry is recognised by key, task and declared `Content-Length` (not the multipart type, whose
  boundary differs between clients) and replays the first `201` unread; only a `201` is kept. Downloads are served by the gateway (no redirect) with the
  declared `Content-Type`, `Content-Length`, `Content-Disposition: attachment; filename*=UTF-8''...` and
  `X-Content-Type-Options: nosniff`.
- **Operations.** `/healthz`, `/readyz` and `/metrics` are served at the root of the same port and take no
  token.
"#;

/// The base document: information, tags, the bearer scheme and the problem schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Ordo API",
        version = "1.0.0",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Accounts, sign-in, sessions and the token signing keys."),
        (name = "users", description = "Users: yourself, lookup by email, and administration."),
        (name = "projects", description = "Projects and their members. Project roles, strongest first: `owner`, `admin`, `member`, `viewer`; a global `admin` may read every project but changes only those it is a member of."),
        (name = "tasks", description = "Tasks, their board order, watchers, comments and attachments. Viewers of a project read its tasks; members and up create and edit them and comment; in an archived project every task write answers `409`."),
        (name = "audit", description = "The audit log: one record per domain or security event, in a SHA-256 hash chain that `GET /audit/verify` recomputes. Global admins read everything; a project's owners and admins read that project's records."),
        (name = "notifications", description = "In-app notifications of the caller, made from domain events (assignments, status changes, comments, mentions, due dates, project membership, webhooks the service turned off), with their seen, read and archived states, the caller's delivery preferences per kind and channel (in the app, by email, by Web Push), and the caller's Web Push subscriptions (what a push message carries is written in the descriptions of `get_push_key` and `subscribe_push`). Every operation acts on the caller's own notifications and subscriptions: another user's answers `404`."),
        (name = "webhooks", description = "A project's outgoing webhooks: endpoints that receive the project's events as HTTP `POST`s signed as Standard Webhooks defines, their signing secrets, their delivery log, redelivery and a test ping. Only a project's `owner`s and `admin`s manage them; its `member`s and `viewer`s get `403`. How deliveries are made, signed, retried and turned off is written in the descriptions of `create_webhook`, `list_webhooks` and `get_webhook`."),
        (name = "reports", description = "Reports on a project's tasks, answered on request from the tasks and each task's status history: how work flowed over a range (created, completed and open per day, week or month; the time from in progress to done; what is overdue; by assignee and by label). Any member of a project, viewers too, reads its reports."),
        (name = "jobs", description = "Background jobs of a project: exports of its tasks as CSV or JSON, and imports of tasks from such a file. The request answers at once with the job; the task service writes the file (or creates the tasks) in the background and the requester follows the job to its download link (or its report). Any member of a project, viewers too, may export it; members and up may import into it; only the requester sees a job."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        http.description = Some(
            "An access token from `POST /api/v1/auth/login` or `/auth/refresh` (EdDSA JWT, 15 minutes). \
             Verifiable offline with the keys of `GET /api/v1/auth/jwks`."
                .to_owned(),
        );
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// The whole document from the routes' own `document`: [`ApiDoc`] with the routes' paths and schemas.
/// Adds to every operation the problem responses it can produce without saying so itself: `400`,
/// `413`, `415` and `422` where it takes a body, `401` where it needs a token, `503` where it calls a
/// backend, and `429` and `500` everywhere under `/api/v1`. Adds the operations routes (served by
/// `ordo_platform::ops`) and the links between operations ([`LINKS`]).
pub(crate) fn complete(routes: OpenApi, operations: utoipa::openapi::path::Paths) -> OpenApi {
    // `merge` keeps the receiver's information and tags, so the base must be the receiver: the routes'
    // document holds only their paths and schemas.
    let mut document = ApiDoc::openapi();
    document.merge(routes);
    document.paths.paths.extend(operations.paths);
    for (path, item) in document.paths.paths.iter_mut() {
        // The operations routes answer in their own plain format (see their descriptions).
        if !path.starts_with(crate::routes::API_PREFIX) {
            continue;
        }
        let calls_backend = !path.ends_with("/openapi.json");
        for operation in operations_of(item) {
            add_common_responses(operation, calls_backend);
        }
    }
    add_links(&mut document);
    refine_schemas(&mut document);
    document
}

/// `Idempotency-Key`: 1 to 255 characters of visible ASCII, spaces allowed inside (what the gateway
/// accepts: a header value is trimmed of surrounding whitespace).
const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]([\t -~]{0,253}[!-~])?$";

/// `If-Match`: `*` or a comma-separated list (empty elements allowed) of entity tags, strong (`"3"`)
/// or weak (`W/"3"`), RFC 9110 §13.1.1 and §5.6.1, as `extract::parse_if_match` reads it.
const IF_MATCH_PATTERN: &str = r#"^[\t ]*(\*|(,[\t ]*)*(W/)?"[!#-~]*"([\t ]*,([\t ]*(W/)?"[!#-~]*")?)*)[\t ]*$"#;

/// A one-line text field (a name, a title, a label): no control character (Unicode `Cc`) and at least
/// one character that is not whitespace (the services trim, and an empty name is `422`).
const ONE_LINE_TEXT_PATTERN: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// A multi-line text that must say something (a comment): no control character but tab and line
/// breaks, and at least one character that is not whitespace.
const MULTI_LINE_TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// A multi-line text that may be blank (a description, where blank means none): no control
/// character but tab and line breaks.
const DESCRIPTION_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// A one-line text that may be blank (a webhook's description): the service trims whitespace from
/// both ends, then refuses any control character (tab and line breaks included) in what is left.
const TRIMMED_ONE_LINE_PATTERN: &str = concat!(
    r"^[\t\n\u000B\u000C\r\u0085 \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
    r"[^\u0000-\u001F\u007F-\u009F]*",
    r"[\t\n\u000B\u000C\r\u0085 \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
);

/// The text fields of the request bodies and the pattern each is held to (the services' rules).
const TEXT_FIELDS: &[(&str, &str, &str)] = &[
    ("RegisterBody", "display_name", ONE_LINE_TEXT_PATTERN),
    ("UpdateMeBody", "display_name", ONE_LINE_TEXT_PATTERN),
    ("CreateProjectBody", "name", ONE_LINE_TEXT_PATTERN),
    ("CreateProjectBody", "description", DESCRIPTION_PATTERN),
    ("UpdateProjectBody", "name", ONE_LINE_TEXT_PATTERN),
    ("UpdateProjectBody", "description", DESCRIPTION_PATTERN),
    ("CreateTaskBody", "title", ONE_LINE_TEXT_PATTERN),
    ("CreateTaskBody", "description", DESCRIPTION_PATTERN),
    ("UpdateTaskBody", "title", ONE_LINE_TEXT_PATTERN),
    ("UpdateTaskBody", "description", DESCRIPTION_PATTERN),
    ("CommentBody", "body", MULTI_LINE_TEXT_PATTERN),
    ("CreateWebhookBody", "description", TRIMMED_ONE_LINE_PATTERN),
    ("UpdateWebhookBody", "description", TRIMMED_ONE_LINE_PATTERN),
];

/// Writes into the document the rules the gateway enforces that the handlers' attributes cannot
/// state: the syntax of the `Idempotency-Key` and `If-Match` headers, the length of each task label,
/// that each assignee is a user id (a UUID), that a bulk change names a field, and that an upload's
/// form has only its `file` part.
fn refine_schemas(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        for operation in operations_of(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                // Every parameter is written inline (none is a reference to a component).
                let RefOr::T(parameter) = parameter else { continue };
                if !matches!(parameter.parameter_in, ParameterIn::Header) {
                    continue;
                }
                let pattern = match parameter.name.as_str() {
                    "Idempotency-Key" => IDEMPOTENCY_KEY_PATTERN,
                    "If-Match" => IF_MATCH_PATTERN,
                    _ => continue,
                };
                let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).build();
                parameter.schema = Some(RefOr::T(Schema::Object(schema)));
            }
        }
    }
    let Some(components) = document.components.as_mut() else { return };
    for body in ["CreateTaskBody", "UpdateTaskBody", "BulkPatch"] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) else { continue };
        if let Some(RefOr::T(Schema::Array(labels))) = object.properties.get_mut("labels") {
            // 1 to 50 characters after trimming: at most 50, not only whitespace, no control character.
            let label = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(50))
                .pattern(Some(ONE_LINE_TEXT_PATTERN))
                .build();
            labels.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(label))));
        }
    }
    for body in ["CreateTaskBody", "UpdateTaskBody", "BulkPatch"] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) else { continue };
        if let Some(RefOr::T(Schema::Array(assignees))) = object.properties.get_mut("assignee_ids") {
            let user_id = ObjectBuilder::new().schema_type(Type::String).format(Some(uuid_format())).build();
            assignees.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(user_id))));
        }
    }
    for (body, field, pattern) in TEXT_FIELDS {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*body) else { continue };
        if let Some(RefOr::T(Schema::Object(text))) = object.properties.get_mut(*field) {
            text.pattern = Some((*pattern).to_owned());
        }
    }
    if let Some(RefOr::T(Schema::Object(patch))) = components.schemas.get_mut("BulkPatch") {
        // A bulk change names at least one field (else `422`, as the services refuse an empty mask).
        patch.min_properties = Some(1);
    }
    if let Some(RefOr::T(Schema::Object(form))) = components.schemas.get_mut("UploadForm") {
        // Other parts are skipped by the gateway; the document asks for `file` alone.
        form.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
}

/// A link's `(target parameter, runtime expression)` pairs (see [`LINKS`]).
type LinkParameters = &'static [(&'static str, &'static str)];

/// The response body's `id`: what every create answers with.
const BODY_ID: &str = "$response.body#/id";

/// The links of the document (OpenAPI `links`): from a create's `201` to the operations its new
/// resource's id feeds, as `(source operation, target operation, [(target parameter, expression)])`.
/// A target parameter is `path.<name>`, `query.<name>`, or `body.<field>` (a field of the target's JSON
/// body; the rest of the body is the client's). They let clients, and fuzzers' stateful phases, follow
/// create → read → change → delete.
const LINKS: &[(&str, &str, LinkParameters)] = &[
    ("register", "get_user", &[("path.id", BODY_ID)]),
    ("register", "update_user", &[("path.id", BODY_ID)]),
    ("create_project", "get_project", &[("path.id", BODY_ID)]),
    ("create_project", "update_project", &[("path.id", BODY_ID)]),
    ("create_project", "archive_project", &[("path.id", BODY_ID)]),
    ("create_project", "unarchive_project", &[("path.id", BODY_ID)]),
    ("create_project", "delete_project", &[("path.id", BODY_ID)]),
    ("create_project", "list_members", &[("path.id", BODY_ID)]),
    ("create_project", "add_member", &[("path.id", BODY_ID)]),
    ("create_project", "create_task", &[("body.project_id", BODY_ID)]),
    ("create_project", "list_tasks", &[("query.project_id", BODY_ID)]),
    ("create_project", "list_audit_events", &[("query.project_id", BODY_ID)]),
    ("create_project", "create_webhook", &[("path.id", BODY_ID)]),
    ("create_project", "list_webhooks", &[("path.id", BODY_ID)]),
    ("add_member", "get_member", &[("path.id", "$request.path.id"), ("path.user_id", "$response.body#/user_id")]),
    ("add_member", "update_member", &[("path.id", "$request.path.id"), ("path.user_id", "$response.body#/user_id")]),
    ("add_member", "remove_member", &[("path.id", "$request.path.id"), ("path.user_id", "$response.body#/user_id")]),
    ("create_task", "get_task", &[("path.id", BODY_ID)]),
    ("create_task", "get_task_by_key", &[("path.key", "$response.body#/key")]),
    ("create_task", "update_task", &[("path.id", BODY_ID)]),
    ("create_task", "move_task", &[("path.id", BODY_ID)]),
    ("create_task", "delete_task", &[("path.id", BODY_ID)]),
    ("create_task", "watch_task", &[("path.id", BODY_ID)]),
    ("create_task", "unwatch_task", &[("path.id", BODY_ID)]),
    ("create_task", "add_comment", &[("path.id", BODY_ID)]),
    ("create_task", "list_comments", &[("path.id", BODY_ID)]),
    ("create_task", "upload_attachment", &[("path.id", BODY_ID)]),
    ("create_task", "list_attachments", &[("path.id", BODY_ID)]),
    ("add_comment", "update_comment", &[("path.id", BODY_ID)]),
    ("add_comment", "delete_comment", &[("path.id", BODY_ID)]),
    ("upload_attachment", "get_attachment", &[("path.id", BODY_ID)]),
    ("upload_attachment", "download_attachment", &[("path.id", BODY_ID)]),
    ("upload_attachment", "delete_attachment", &[("path.id", BODY_ID)]),
    ("create_webhook", "get_webhook", WEBHOOK_PATH),
    ("create_webhook", "update_webhook", WEBHOOK_PATH),
    ("create_webhook", "delete_webhook", WEBHOOK_PATH),
    ("create_webhook", "rotate_webhook_secret", WEBHOOK_PATH),
    ("create_webhook", "list_webhook_deliveries", WEBHOOK_PATH),
    ("create_webhook", "ping_webhook", WEBHOOK_PATH),
];

/// The path of a webhook from its create's answer: the project of the request, the id of the body.
const WEBHOOK_PATH: LinkParameters = &[("path.id", "$request.path.id"), ("path.webhook_id", BODY_ID)];

/// Adds [`LINKS`] to the `201` responses of their source operations.
fn add_links(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        for operation in operations_of(item) {
            let Some(source) = operation.operation_id.as_deref() else { continue };
            let targets: Vec<_> = LINKS.iter().filter(|(from, _, _)| *from == source).collect();
            let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") else { continue };
            for (_, target, parameters) in targets {
                created.links.insert((*target).to_owned(), RefOr::T(link(target, parameters)));
            }
        }
    }
}

/// A link to `target` with `parameters` (see [`LINKS`]).
///
/// utoipa 5 writes `Link`'s `operation_id` and `request_body` fields in snake case, which no OpenAPI
/// tool reads, so `operationId` and `requestBody` are written through the link's (flattened)
/// extensions instead.
fn link(target: &str, parameters: &[(&str, &str)]) -> Link {
    let mut builder = LinkBuilder::new();
    let mut fields = vec![("operationId", serde_json::Value::from(target))];
    let mut body = serde_json::Map::new();
    for (name, expression) in parameters {
        match name.strip_prefix("body.") {
            Some(field) => {
                body.insert(field.to_owned(), serde_json::Value::from(*expression));
            }
            None => builder = builder.parameter(*name, *expression),
        }
    }
    if !body.is_empty() {
        let names: Vec<_> = body.keys().map(|field| format!("`{field}`")).collect();
        builder = builder
            .description(format!("Sets {} of the body; the rest of the body is the caller's.", names.join(", ")));
        fields.push(("requestBody", serde_json::Value::Object(body)));
    }
    builder.extensions(Some(Extensions::from_iter(fields))).build()
}

/// JSON Schema's `uuid` format.
fn uuid_format() -> SchemaFormat {
    SchemaFormat::KnownFormat(KnownFormat::Uuid)
}

/// The operations of a path item.
fn operations_of(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

fn add_common_responses(operation: &mut Operation, calls_backend: bool) {
    let has_body = operation.request_body.is_some();
    // Path parameters are not among these: a bad id is a 404 (nothing has that id).
    let has_query_or_header = operation.parameters.as_ref().is_some_and(|params| {
        params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Header)))
    });
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let responses = &mut operation.responses;
    if has_body || has_query_or_header {
        add(responses, "400", "Malformed JSON, or a bad header or query parameter value.", None);
    }
    if secured {
        add(
            responses,
            "401",
            "No valid access token: missing, malformed, expired, revoked or wrongly signed.",
            Some((
                "WWW-Authenticate",
                "`Bearer realm=\"ordo\"`, with `error=\"invalid_token\"` when a token was refused.",
            )),
        );
    }
    if has_body {
        add(responses, "408", "The body did not arrive within the body deadline (10 s by default).", None);
        add(responses, "413", "The body is over 1 MiB.", None);
        add(responses, "415", "The body is not JSON (`Content-Type: application/json`).", None);
        add(responses, "422", "The body has the wrong shape or breaks a field rule; `errors` names the fields.", None);
    }
    add(
        responses,
        "429",
        "The caller's rate limit for this kind of request is used up (see Rate limits above).",
        Some(("Retry-After", "Seconds until the request would be allowed.")),
    );
    add(responses, "500", "Something went wrong on our side (the body says nothing more).", None);
    if calls_backend {
        add(
            responses,
            "503",
            "A service the request needs is down or too slow; the request had no effect.",
            Some(("Retry-After", "Seconds to wait: `1`.")),
        );
        add(
            responses,
            "504",
            "The request ran past the gateway's request deadline; its effect is unknown (retry with the same `Idempotency-Key`).",
            None,
        );
    }
}

fn add(responses: &mut Responses, status: &str, description: &str, header: Option<(&str, &str)>) {
    if responses.responses.contains_key(status) {
        return;
    }
    responses.responses.insert(status.to_owned(), RefOr::T(problem_response(description, header)));
}

/// A response with a problem document body.
fn problem_response(description: &str, header: Option<(&str, &str)>) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name("Problem")))));
    if let Some((name, description)) = header {
        let string = ObjectBuilder::new().schema_type(Type::String).build();
        response =
            response.header(name, HeaderBuilder::new().schema(Some(string)).description(Some(description)).build());
    }
    response.build()
}
