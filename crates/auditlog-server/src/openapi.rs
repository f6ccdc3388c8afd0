//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every `/api/v1` route (SPEC §11).
//!
//! The document is written by hand (`openapi.json` beside this file) rather than generated
//! with utoipa: generating it would mean annotating every handler in every module, and the
//! handlers parse their parameters by hand (strict allow-lists, duplicate checks) where
//! utoipa's derives would describe a different, looser contract. It cannot drift silently:
//! the tests here compare its (path, method) set with the routes registered in this crate's
//! source, and the end-to-end tests ask a live server for every operation it names and run
//! Schemathesis against it. It is served without a credential: it describes the API, never a
//! tenant's data.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    let mut response = DOCUMENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;

    const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// (path, method) of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                if METHODS.contains(&method.as_str()) {
                    out.insert((path.clone(), method.clone()));
                }
            }
        }
        out
    }

    /// (path, method) of every `/api/v1` route registered with `.route("…", get(…).post(…))`
    /// in this crate's source, with axum's `{*rest}` written as OpenAPI's `{rest}`.
    fn registered() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut files = Vec::new();
        collect_sources(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
            &mut files,
        );
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                let call = &rest[..closing_paren(rest)];
                let Some((path, handlers)) = split_path(call) else {
                    continue;
                };
                if !path.starts_with("/api/v1/") {
                    continue;
                }
                let path = path.replace("{*", "{");
                for method in methods_of(handlers) {
                    out.insert((path.clone(), method));
                }
            }
        }
        out
    }

    fn collect_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                collect_sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The length of the argument list that starts at `text` (just after `(`).
    fn closing_paren(text: &str) -> usize {
        let mut depth = 1;
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            }
        }
        text.len()
    }

    /// `"PATH", handlers` → (PATH, handlers); None when the path is not a string literal.
    fn split_path(call: &str) -> Option<(&str, &str)> {
        let call = call.trim_start().strip_prefix('"')?;
        let end = call.find('"')?;
        Some((&call[..end], &call[end + 1..]))
    }

    /// The HTTP methods named in a method router: `get(a).post(b)`, `axum::routing::delete(c)`.
    fn methods_of(handlers: &str) -> Vec<String> {
        let mut out = Vec::new();
        let bytes = handlers.as_bytes();
        for method in METHODS {
            let mut from = 0;
            while let Some(at) = handlers[from..].find(method) {
                let start = from + at;
                let end = start + method.len();
                from = end;
                let before_ok = start == 0
                    || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
                let called = handlers[end..].trim_start().starts_with('(');
                if before_ok && called {
                    out.push(method.to_owned());
                }
            }
        }
        out
    }

    #[test]
    fn the_document_names_exactly_the_routes_the_server_registers() {
        let documented = documented();
        let registered = registered();
        assert!(
            registered.len() > 20,
            "the source scan found {registered:?}"
        );
        let missing: Vec<_> = registered.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&registered).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes not in openapi.json: {missing:?}; operations in openapi.json the router lacks: {extra:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let doc = document();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1."))
        );
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("local reference");
            assert!(
                doc.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                assert!(
                    ids.insert(operation["operationId"].as_str().expect("operationId")),
                    "{method} {path}: duplicate operationId"
                );
                let responses = operation["responses"].as_object().expect("responses");
                assert!(!responses.is_empty(), "{method} {path} has no responses");
                // Every path parameter is declared.
                for name in path.split('{').skip(1).filter_map(|p| p.split('}').next()) {
                    let declared = operation["parameters"].as_array().is_some_and(|params| {
                        params
                            .iter()
                            .any(|p| p["in"] == "path" && p["name"] == name)
                    });
                    assert!(
                        declared,
                        "{method} {path}: path parameter {name} undeclared"
                    );
                }
            }
        }
        // The error object every error answer carries (SPEC §3).
        let error = &doc["components"]["schemas"]["Error"];
        assert_eq!(
            error["properties"]["error"]["required"],
            serde_json::json!(["code", "message"])
        );
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == "$ref" {
                        out.push(value.as_str().expect("string $ref").to_owned());
                    } else {
                        collect_refs(value, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_route_scan_reads_method_routers() {
        assert_eq!(
            methods_of(" post(sign_in).get(whoami).delete(sign_out),"),
            ["get", "post", "delete"]
        );
        assert_eq!(
            methods_of(" axum::routing::delete(revoke_token)"),
            ["delete"]
        );
        assert!(methods_of(" get_thing_done(x)").is_empty());
        assert_eq!(
            split_path(" \"/api/v1/x\", get(a)"),
            Some(("/api/v1/x", ", get(a)"))
        );
    }
}
