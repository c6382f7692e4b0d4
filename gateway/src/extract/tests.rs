//! Tests of the extractors and parsers of [`super`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::HeaderValue;
use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Body {
    email: String,
    age: Option<u8>,
}

fn field_errors(error: ApiError) -> (StatusCode, Vec<String>) {
    let status = error.status();
    match error {
        ApiError::Validation { errors, .. } => (status, errors.into_iter().map(|e| e.field).collect()),
        other => (other.status(), Vec::new()),
    }
}

#[test]
fn malformed_json_is_a_bad_request() {
    let error = parse_json::<Body>(br#"{"email": "a@b.c",,}"#).unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn trailing_garbage_is_a_bad_request() {
    let error = parse_json::<Body>(br#"{"email": "a@b.c"} x"#).unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn a_wrong_type_names_the_field() {
    let (status, fields) = field_errors(parse_json::<Body>(br#"{"email": "a@b.c", "age": "old"}"#).unwrap_err());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields, ["age"]);
}

#[test]
fn a_missing_field_names_the_field() {
    let (status, fields) = field_errors(parse_json::<Body>(br#"{"age": 3}"#).unwrap_err());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields, ["email"]);
}

#[test]
fn an_unknown_field_names_the_field() {
    let (status, fields) = field_errors(parse_json::<Body>(br#"{"email": "a", "emali": "b"}"#).unwrap_err());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields, ["emali"]);
}

#[test]
fn a_repeated_field_is_unprocessable_naming_the_field() {
    let (status, fields) = field_errors(parse_json::<Body>(br#"{"email": "a@b.c", "email": "a@b.c"}"#).unwrap_err());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields, ["email"]);
}

#[test]
fn a_number_out_of_every_range_is_unprocessable_naming_the_field() {
    for number in ["1e400", "-1e400"] {
        let body = format!(r#"{{"email": "a@b.c", "age": {number}}}"#);
        let (status, fields) = field_errors(parse_json::<Body>(body.as_bytes()).unwrap_err());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{number}");
        assert_eq!(fields, ["age"], "{number}");
    }
}

#[test]
fn a_body_of_the_wrong_shape_is_unprocessable_without_a_field() {
    let (status, fields) = field_errors(parse_json::<Body>(br#""just a string""#).unwrap_err());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields.is_empty());
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Labelled {
    labels: Option<BoundedVec<Counted, 3>>,
}

static DESERIALIZED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A string that counts how many times it was deserialized.
#[derive(Debug)]
struct Counted;

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?;
        DESERIALIZED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Counted)
    }
}

#[test]
fn a_bounded_array_over_its_bound_is_refused_after_one_item_too_many() {
    // Arrange
    let labels = vec!["a"; 150_000];
    let body = serde_json::to_vec(&serde_json::json!({ "labels": labels })).unwrap();

    // Act
    let error = parse_json::<Labelled>(&body).unwrap_err();

    // Assert
    assert_eq!(field_errors(error), (StatusCode::UNPROCESSABLE_ENTITY, vec!["labels".to_owned()]));
    assert_eq!(DESERIALIZED.load(std::sync::atomic::Ordering::SeqCst), 4, "stopped at the bound plus one");
}

#[test]
fn a_bounded_array_at_its_bound_is_accepted() {
    let body: BoundedVec<String, 3> = serde_json::from_str(r#"["a", "b", "c"]"#).unwrap();
    assert_eq!(body.into_vec(), ["a", "b", "c"]);
}

#[test]
fn a_bounded_string_over_its_bound_names_the_item() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Tags {
        labels: BoundedVec<BoundedString<5>, 3>,
    }
    let ok = parse_json::<Tags>(r#"{"labels": ["ééééé"]}"#.as_bytes()).unwrap();
    assert_eq!(ok.labels.into_strings(), ["ééééé"]);

    let error = parse_json::<Tags>(br#"{"labels": ["ok", "sixsix"]}"#).unwrap_err();

    assert_eq!(field_errors(error), (StatusCode::UNPROCESSABLE_ENTITY, vec!["labels[1]".to_owned()]));
}

#[test]
fn a_byte_bounded_string_counts_bytes_not_characters() {
    #[derive(Debug, Deserialize)]
    struct Types {
        types: BoundedVec<ByteBoundedString<4>, 2>,
    }
    let ok = parse_json::<Types>(r#"{"types": ["abcd", "éé"]}"#.as_bytes()).unwrap();
    assert_eq!(ok.types.into_strings(), ["abcd", "éé"]);

    let error = parse_json::<Types>(r#"{"types": ["ok", "ééé"]}"#.as_bytes()).unwrap_err();

    assert_eq!(field_errors(error), (StatusCode::UNPROCESSABLE_ENTITY, vec!["types[1]".to_owned()]));
}

#[derive(Debug, Deserialize)]
struct Switches {
    kinds: BoundedMap<BoundedString<5>, bool, 2>,
}

#[test]
fn a_bounded_map_at_its_bound_is_accepted() {
    let body = parse_json::<Switches>(br#"{"kinds": {"b": false, "a": true}}"#).unwrap();
    assert_eq!(body.kinds.into_entries().collect::<Vec<_>>(), [("a".to_owned(), true), ("b".to_owned(), false)]);
}

#[test]
fn a_bounded_map_over_its_bound_is_refused_before_the_value_after_the_bound_is_read() {
    // The third value is not even a boolean: the bound is hit before it is read.
    let error = parse_json::<Switches>(br#"{"kinds": {"a": true, "b": true, "c": "not read"}}"#).unwrap_err();

    assert_eq!(field_errors(error), (StatusCode::UNPROCESSABLE_ENTITY, vec!["kinds".to_owned()]));
}

#[test]
fn a_bounded_map_refuses_a_repeated_key_and_a_key_over_its_bound() {
    let repeated = parse_json::<Switches>(br#"{"kinds": {"a": true, "a": false}}"#).unwrap_err();
    assert_eq!(field_errors(repeated), (StatusCode::UNPROCESSABLE_ENTITY, vec!["kinds".to_owned()]));

    let long = parse_json::<Switches>(br#"{"kinds": {"sixsix": true}}"#).unwrap_err();
    let (status, fields) = field_errors(long);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields.len() == 1 && fields[0].starts_with("kinds"), "{fields:?}");
}

#[test]
fn a_body_nested_10000_deep_is_refused_or_skipped_without_overflowing_the_stack() {
    // Into a value: serde_json's recursion limit (128) makes it a 400.
    let deep = format!(r#"{{"x": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let error = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    // Into a typed field: refused at its first bracket.
    let typed = format!(r#"{{"email": "a", "age": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(parse_json::<Body>(typed.as_bytes()).unwrap_err().status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Skipped (`IgnoredAny`): serde_json skips without recursing.
    assert!(parse_json::<serde::de::IgnoredAny>(deep.as_bytes()).is_ok());
}

#[test]
fn invalid_utf8_or_a_raw_nul_byte_is_a_bad_request() {
    for body in [&b"{\"email\": \"a\xff\"}"[..], b"{\"email\": \"a\x00\"}"] {
        assert_eq!(parse_json::<Body>(body).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn json_content_types_are_recognised() {
    let accepted =
        ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"];
    for value in accepted {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        assert!(is_json_content_type(&headers), "{value}");
    }
    for value in ["text/plain", "application/x-www-form-urlencoded", "json", "application/+json"] {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        assert!(!is_json_content_type(&headers), "{value}");
    }
    assert!(!is_json_content_type(&HeaderMap::new()));
}

#[test]
fn if_match_accepts_one_quoted_version_or_a_star() {
    assert_eq!(parse_if_match(None).unwrap(), IfMatch::Any);
    assert_eq!(parse_if_match(Some(b"*")).unwrap(), IfMatch::Any);
    assert_eq!(parse_if_match(Some(br#""7""#)).unwrap(), IfMatch::Versions(vec![7]));
    assert_eq!(parse_if_match(Some(br#" "12" "#)).unwrap(), IfMatch::Versions(vec![12]));
}

#[test]
fn if_match_lists_keep_each_strong_version_once_in_order() {
    assert_eq!(parse_if_match(Some(br#""7", "8""#)).unwrap(), IfMatch::Versions(vec![7, 8]));
    assert_eq!(parse_if_match(Some(br#""3",W/"4", "x", "3",, "5""#)).unwrap(), IfMatch::Versions(vec![3, 5]));
}

#[test]
fn if_match_of_only_weak_or_foreign_tags_never_matches() {
    for value in
        [&br#"W/"7""#[..], br#"W/"7", W/"8""#, br#""""#, br#""-1""#, br#""seven""#, br#""99999999999999999999""#]
    {
        assert_eq!(parse_if_match(Some(value)).unwrap(), IfMatch::Never, "{}", String::from_utf8_lossy(value));
    }
}

#[test]
fn if_match_that_is_not_the_syntax_is_a_bad_request() {
    for value in [&b"7"[..], b"\"7", br#""7" "8""#, br#"w/"7""#, b"", b" , ", br#""7", *"#, b"\"a b\"", b"\xff"] {
        let error = parse_if_match(Some(value)).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(value));
    }
    let too_many = (1..=9).map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    assert_eq!(parse_if_match(Some(too_many.as_bytes())).unwrap_err().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn each_version_is_tried_until_one_is_not_refused_with_412() {
    let current = 8;
    let tried = std::sync::Mutex::new(Vec::new());
    let write = |expected: Option<i64>| {
        tried.lock().unwrap().push(expected);
        async move {
            match expected {
                Some(version) if version != current => Err(ApiError::PreconditionFailed("stale".into())),
                _ => Ok(expected),
            }
        }
    };

    assert_eq!(IfMatch::Versions(vec![6, 8, 9]).each_version(write).await.unwrap(), Some(8));
    assert_eq!(*tried.lock().unwrap(), [Some(6), Some(8)]);
    let missing = IfMatch::Versions(vec![6, 7]).each_version(write).await.unwrap_err();
    assert_eq!(missing.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(IfMatch::Any.each_version(write).await.unwrap(), None);
    tried.lock().unwrap().clear();
    let never = IfMatch::Never.each_version(write).await.unwrap_err();
    assert_eq!(never.status(), StatusCode::PRECONDITION_FAILED);
    assert!(tried.lock().unwrap().is_empty(), "a list that cannot match asks no service");
}

#[test]
fn the_client_address_is_the_peer_unless_forwarded_for_is_trusted() {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static("curl/8"));
    let peer = Some("127.0.0.1".parse().unwrap());

    assert_eq!(client_info(&headers, peer, false).ip, "127.0.0.1");
    assert_eq!(client_info(&headers, peer, true).ip, "10.0.0.1");
    assert_eq!(client_info(&headers, peer, true).user_agent, "curl/8");
}

#[test]
fn a_client_cannot_choose_its_address_by_sending_forwarded_for_itself() {
    // The client sent `X-Forwarded-For: 198.51.100.1` (in a header line of its own, or first in the
    // list); the load balancer appended the address it saw, last.
    let peer = Some("10.0.0.2".parse().unwrap());
    let mut one_line = HeaderMap::new();
    one_line.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1,203.0.113.9"));
    let mut two_lines = HeaderMap::new();
    two_lines.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
    two_lines.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));

    assert_eq!(client_info(&one_line, peer, true).ip, "203.0.113.9");
    assert_eq!(client_info(&two_lines, peer, true).ip, "203.0.113.9");
}

#[test]
fn a_forwarded_for_that_is_not_an_address_is_ignored() {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static("evil"));
    let peer = Some("127.0.0.1".parse().unwrap());
    assert_eq!(client_info(&headers, peer, true).ip, "127.0.0.1");
}
