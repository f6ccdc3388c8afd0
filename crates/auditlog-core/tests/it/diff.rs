//! The before/after diff (SPEC §2): JSON Pointer paths, objects by key, arrays by element.

use auditlog_core::diff::{Change, Op, diff};
use auditlog_core::json::Value;

use crate::json;

fn summary(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|change| {
            let show = |v: &Option<Value>| v.as_ref().map_or("-".to_owned(), |v| v.to_string());
            format!(
                "{} {} {} {}",
                change.op.as_str(),
                change.path,
                show(&change.before),
                show(&change.after)
            )
        })
        .collect()
}

#[test]
fn ops_are_named_add_remove_and_replace() {
    assert_eq!(
        [Op::Add.as_str(), Op::Remove.as_str(), Op::Replace.as_str()],
        ["add", "remove", "replace"]
    );
}

#[test]
fn a_create_lists_one_add_per_top_level_key() {
    let after = json(r#"{"name":"acme","limits":{"credit":100},"tags":[]}"#);
    assert_eq!(
        summary(&diff(None, Some(&after))),
        [
            "add /name - \"acme\"",
            "add /limits - {\"credit\":100}",
            "add /tags - []"
        ]
    );
}

#[test]
fn a_delete_lists_one_remove_per_key() {
    let before = json(r#"{"name":"acme","active":true}"#);
    assert_eq!(
        summary(&diff(Some(&before), None)),
        ["remove /name \"acme\" -", "remove /active true -"]
    );
}

#[test]
fn nothing_before_and_after_is_no_change() {
    assert!(diff(None, None).is_empty());
    let same = json(r#"{"a":[1,{"b":null}]}"#);
    assert!(diff(Some(&same), Some(&same)).is_empty());
}

#[test]
fn nested_objects_are_compared_key_by_key() {
    let before = json(
        r#"{"credit_limit":100,"address":{"city":"Oslo","zip":"0150","street":"A 1"},"plan":"basic"}"#,
    );
    let after = json(
        r#"{"plan":"basic","address":{"zip":"0151","city":"Oslo","country":"NO"},"credit_limit":250,"vip":true}"#,
    );
    assert_eq!(
        summary(&diff(Some(&before), Some(&after))),
        [
            "replace /credit_limit 100 250",
            "replace /address/zip \"0150\" \"0151\"",
            "remove /address/street \"A 1\" -",
            "add /address/country - \"NO\"",
            "add /vip - true",
        ]
    );
}

#[test]
fn arrays_are_compared_element_by_element() {
    let before = json(r#"{"codecs":["opus","g722","pcmu","pcma"],"ports":[5060]}"#);
    let after = json(r#"{"codecs":["opus","g722","g729"],"ports":[5060,5061,{"tls":5062}]}"#);
    assert_eq!(
        summary(&diff(Some(&before), Some(&after))),
        [
            "replace /codecs/2 \"pcmu\" \"g729\"",
            "remove /codecs/3 \"pcma\" -",
            "add /ports/1 - 5061",
            "add /ports/2 - {\"tls\":5062}",
        ]
    );
}

#[test]
fn objects_inside_arrays_are_recursed() {
    let before = json(r#"{"rules":[{"port":22,"open":false}]}"#);
    let after = json(r#"{"rules":[{"port":22,"open":true}]}"#);
    assert_eq!(
        summary(&diff(Some(&before), Some(&after))),
        ["replace /rules/0/open false true"]
    );
}

#[test]
fn a_change_of_type_is_one_replace() {
    let before = json(r#"{"a":{"x":1},"b":[1],"c":"1","d":null,"e":1}"#);
    let after = json(r#"{"a":[1],"b":{"0":1},"c":1,"d":false,"e":1.0}"#);
    assert_eq!(
        summary(&diff(Some(&before), Some(&after))),
        [
            "replace /a {\"x\":1} [1]",
            "replace /b [1] {\"0\":1}",
            "replace /c \"1\" 1",
            "replace /d null false",
        ]
    );
}

#[test]
fn keys_are_escaped_as_json_pointer_tokens() {
    let before = json(r#"{"a/b":1,"m~n":{"~/":1},"":0}"#);
    let after = json(r#"{"a/b":2,"m~n":{"~/":2},"":1}"#);
    assert_eq!(
        summary(&diff(Some(&before), Some(&after)))
            .iter()
            .map(|line| line.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect::<Vec<_>>(),
        ["/a~1b", "/m~0n/~0~1", "/"]
    );
}

#[test]
fn a_change_carries_the_values_before_and_after() {
    let before = json(r#"{"limit":1}"#);
    let after = json(r#"{"limit":2}"#);
    assert_eq!(
        diff(Some(&before), Some(&after)),
        [Change {
            path: "/limit".to_owned(),
            op: Op::Replace,
            before: Some(json("1")),
            after: Some(json("2")),
        }]
    );
}
