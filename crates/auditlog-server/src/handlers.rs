//! Helpers every handler shares: blocking store work off the async threads, the API's answers
//! to malformed path and query parameters, seq parsing, the `log=` choice, and base64. No
//! routes live here (`routes` assembles them).

use axum::extract::{Path, Query};
use base64::Engine as _;
use serde_json::Value as JsonValue;

use auditlog_core::json::{JsonLimits, Value};
use auditlog_core::tenant::TenantId;

use crate::auth::Caller;
use crate::error::ApiError;

/// Stored events are read back without the ingest limits: RFC 8785 may make an accepted
/// event larger (`1e15` is written `1000000000000000`), and the server fields add bytes.
pub(crate) fn stored_limits() -> JsonLimits {
    JsonLimits {
        max_depth: 64,
        max_event_bytes: 64 << 20,
    }
}

/// Axum's own rejections (bad path or query encoding) answered in the API's JSON form.
pub(crate) fn path_param(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

pub(crate) fn query_params<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

pub(crate) fn b64(hash: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// Run blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

pub(crate) fn parse_seq(text: &str, what: &str) -> Result<u64, ApiError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(n) if digits_only && n >= 1 && n <= i64::MAX as u64 => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "{what} must be a whole number from 1, got {:?}",
                truncate(text, 40)
            ),
        )),
    }
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Canonical JSON bytes of a stored value, as serde_json (for building responses).
pub(crate) fn to_json(value: &Value) -> JsonValue {
    serde_json::from_slice(&value.to_canonical()).unwrap_or(JsonValue::Null)
}

/// The log a read names with `log=trail` (the tenant's trail log, auditlog's records of its
/// own use) or `log=events` (the default): always one of the caller's own. Other parameters are
/// left to the route.
pub(crate) fn log_param(caller: &Caller, uri: &axum::http::Uri) -> Result<TenantId, ApiError> {
    let raw = uri.query().unwrap_or("");
    let mut log = None;
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        if name == "log" {
            if log.is_some() {
                return Err(ApiError::bad_request(
                    "duplicate_parameter",
                    "parameter \"log\" given more than once",
                ));
            }
            log = Some(value.into_owned());
        }
    }
    match log.as_deref() {
        None | Some("events") => Ok(caller.tenant.clone()),
        Some("trail") => Ok(caller.tenant.trail()),
        Some(_) => Err(ApiError::bad_request(
            "invalid_parameter",
            "log must be events or trail",
        )),
    }
}
