//! Reads of single events and of the tree (SPEC §3): an event by seq with its diff, the latest
//! checkpoint, the verifier key, and inclusion and consistency proofs. Searches live in
//! `search`, tiles in `tlog`.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use auditlog_core::diff::diff;
use auditlog_core::json::{Value, parse};
use auditlog_core::tenant::TenantId;

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::handlers::{
    b64, blocking, log_param, parse_seq, path_param, query_params, stored_limits, to_json,
};

pub(crate) async fn event_by_seq(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    seq: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let seq = parse_seq(&path_param(seq)?, "seq")?;
    let tenant = log_param(&caller, &uri)?;
    let store = state.store.clone();
    let event = blocking(move || Ok(store.event(&tenant, seq)?)).await?;
    let Some(event) = event else {
        return Err(ApiError::not_found(format!("event {seq} not found")));
    };
    let body = event_json(&event).map_err(ApiError::internal)?;
    Ok(axum::Json(body).into_response())
}

/// An event as the API shows it: its stored fields, `leaf_hash`, and the derived `diff`.
pub fn event_json(
    event: &auditlog_store::StoredEvent,
) -> Result<serde_json::Map<String, JsonValue>, String> {
    let seq = event.seq;
    let parsed = parse(&event.canonical, &stored_limits())
        .map_err(|e| format!("stored event {seq} does not parse: {e}"))?;
    let Value::Object(fields) = &parsed else {
        return Err(format!("stored event {seq} is not an object"));
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let changes = diff(field("before"), field("after"));
    let mut body: serde_json::Map<String, JsonValue> =
        serde_json::from_slice(&event.canonical).map_err(|e| e.to_string())?;
    body.insert("leaf_hash".into(), JsonValue::from(b64(&event.leaf_hash)));
    body.insert(
        "diff".into(),
        JsonValue::Array(
            changes
                .iter()
                .map(|change| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("path".into(), JsonValue::from(change.path.clone()));
                    entry.insert("op".into(), JsonValue::from(change.op.as_str()));
                    // SPEC §2 shows all four members: an added value's `before` and a
                    // removed value's `after` are null.
                    let side = |value: &Option<_>| value.as_ref().map_or(JsonValue::Null, to_json);
                    entry.insert("before".into(), side(&change.before));
                    entry.insert("after".into(), side(&change.after));
                    JsonValue::Object(entry)
                })
                .collect(),
        ),
    );
    Ok(body)
}

pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let store = state.store.clone();
    let latest = blocking(move || Ok(store.latest_checkpoint(&tenant)?)).await?;
    match latest {
        Some(cp) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            cp.note,
        )
            .into_response()),
        None => Err(ApiError::not_found("no checkpoint has been signed yet")),
    }
}

pub(crate) async fn public_key(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let store = state.store.clone();
    let key = blocking(move || Ok(store.verifier_key(&tenant)?)).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{key}\n"),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct InclusionQuery {
    seq: Option<String>,
    size: Option<String>,
}

/// Proofs default to the latest signed checkpoint, the tree a client can check them against.
async fn default_size(state: &AppState, tenant: &TenantId) -> Result<u64, ApiError> {
    let tenant = tenant.clone();
    let store = state.store.clone();
    let latest = blocking(move || Ok(store.latest_checkpoint(&tenant)?)).await?;
    latest
        .map(|cp| cp.size)
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))
}

/// A required query parameter that names a seq or a tree size.
fn required_seq(text: Option<&str>, what: &str) -> Result<u64, ApiError> {
    let text = text
        .ok_or_else(|| ApiError::bad_request("missing_parameter", format!("{what} is required")))?;
    parse_seq(text, what)
}

pub(crate) async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let query = query_params(query)?;
    let seq = required_seq(query.seq.as_deref(), "seq")?;
    let size = match query.size.as_deref() {
        Some(size) => parse_seq(size, "size")?,
        None => default_size(&state, &tenant).await?,
    };
    let store = state.store.clone();
    let (leaf, hashes) =
        blocking(move || Ok(store.inclusion_proof(&tenant, seq - 1, size)?)).await?;
    Ok(axum::Json(json!({
        "leaf_index": seq - 1,
        "tree_size": size,
        "leaf_hash": b64(&leaf),
        "hashes": hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

pub(crate) async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let query = query_params(query)?;
    let from = required_seq(query.from.as_deref(), "from")?;
    let to = match query.to.as_deref() {
        Some(to) => parse_seq(to, "to")?,
        None => default_size(&state, &tenant).await?,
    };
    let store = state.store.clone();
    let hashes = blocking(move || Ok(store.consistency_proof(&tenant, from, to)?)).await?;
    Ok(axum::Json(json!({
        "from": from,
        "to": to,
        "hashes": hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
    }))
    .into_response())
}
