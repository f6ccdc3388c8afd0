//! The before/after difference of an event (SPEC §2): derived from `before` and `after` when
//! an event is shown, never sent by the client and never stored.
//!
//! It is a display diff, not an RFC 6902 patch: paths are RFC 6901 JSON Pointers, objects are
//! compared key by key (keys of `before` in their order, then keys only in `after`), arrays
//! element by element with surplus elements listed in ascending index order, and anything
//! else that differs (a changed scalar or a changed type) is one `replace`.

use std::collections::HashMap;

use crate::json::{Value, push_pointer_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

/// One difference: `before` is absent for an add, `after` for a remove.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub op: Op,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The changes from `before` to `after`. A create (no `before`) lists one add per top-level
/// key of `after`; a delete (no `after`) one remove per key of `before`.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut path = String::new();
    match (before, after) {
        (None, None) => {}
        (None, Some(Value::Object(entries))) => {
            for (key, value) in entries {
                changes.push(added(&pointer_to(&path, key), value));
            }
        }
        (Some(Value::Object(entries)), None) => {
            for (key, value) in entries {
                changes.push(removed(&pointer_to(&path, key), value));
            }
        }
        (None, Some(value)) => changes.push(added("", value)),
        (Some(value), None) => changes.push(removed("", value)),
        (Some(before), Some(after)) => diff_values(&mut path, before, after, &mut changes),
    }
    changes
}

fn pointer_to(parent: &str, key: &str) -> String {
    let mut path = parent.to_owned();
    push_pointer_token(&mut path, key);
    path
}

fn added(path: &str, value: &Value) -> Change {
    Change {
        path: path.to_owned(),
        op: Op::Add,
        before: None,
        after: Some(value.clone()),
    }
}

fn removed(path: &str, value: &Value) -> Change {
    Change {
        path: path.to_owned(),
        op: Op::Remove,
        before: Some(value.clone()),
        after: None,
    }
}

/// Objects with more keys than this are matched through a hash map, so that a hostile
/// 100 000-key record cannot make showing one event quadratic.
const LINEAR_LOOKUP_MAX: usize = 32;

/// Compare two values at `path` (a JSON Pointer, restored before returning). Depth is
/// bounded by the parser's depth limit, so the recursion is too.
fn diff_values(path: &mut String, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    let restore = path.len();
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let index: Option<HashMap<&str, &Value>> = (old.len().max(new.len())
                > LINEAR_LOOKUP_MAX)
                .then(|| new.iter().map(|(k, v)| (k.as_str(), v)).collect());
            let find_new = |key: &str| match &index {
                Some(index) => index.get(key).copied(),
                None => new.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            };
            for (key, old_value) in old {
                push_pointer_token(path, key);
                match find_new(key) {
                    Some(new_value) => diff_values(path, old_value, new_value, changes),
                    None => changes.push(removed(path, old_value)),
                }
                path.truncate(restore);
            }
            let old_keys: Option<std::collections::HashSet<&str>> = index
                .is_some()
                .then(|| old.iter().map(|(k, _)| k.as_str()).collect());
            for (key, new_value) in new {
                let in_old = match &old_keys {
                    Some(keys) => keys.contains(key.as_str()),
                    None => old.iter().any(|(k, _)| k == key),
                };
                if !in_old {
                    push_pointer_token(path, key);
                    changes.push(added(path, new_value));
                    path.truncate(restore);
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            let longest = old.len().max(new.len());
            for element_idx in 0..longest {
                path.push('/');
                path.push_str(&element_idx.to_string());
                match (old.get(element_idx), new.get(element_idx)) {
                    (Some(old_value), Some(new_value)) => {
                        diff_values(path, old_value, new_value, changes);
                    }
                    (Some(old_value), None) => changes.push(removed(path, old_value)),
                    (None, Some(new_value)) => changes.push(added(path, new_value)),
                    (None, None) => {}
                }
                path.truncate(restore);
            }
        }
        _ => {
            if before != after {
                changes.push(Change {
                    path: path.clone(),
                    op: Op::Replace,
                    before: Some(before.clone()),
                    after: Some(after.clone()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonLimits, parse};

    fn json(text: &str) -> Value {
        parse(text.as_bytes(), &JsonLimits::default()).expect("valid JSON")
    }

    fn summary(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {}", c.op.as_str(), c.path))
            .collect()
    }

    #[test]
    fn reordered_keys_are_no_change() {
        let before = json(r#"{"a":1,"b":{"c":[1,2],"d":null}}"#);
        let after = json(r#"{"b":{"d":null,"c":[1,2]},"a":1}"#);
        assert!(diff(Some(&before), Some(&after)).is_empty());
    }

    #[test]
    fn large_objects_are_compared_by_key() {
        let keys: Vec<String> = (0..100).map(|n| format!("\"k{n}\":{n}")).collect();
        let before = json(&format!("{{{}}}", keys.join(",")));
        let after = json(&format!("{{{},\"k7\":70,\"new\":1}}", keys[..7].join(",")));
        let changes = diff(Some(&before), Some(&after));
        assert_eq!(changes.len(), 93 + 1);
        assert_eq!(summary(&changes[..2]), ["replace /k7", "remove /k8"]);
        assert_eq!(summary(&changes[changes.len() - 1..]), ["add /new"]);
    }
}
