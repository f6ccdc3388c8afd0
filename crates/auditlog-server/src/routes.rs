//! The `/api/v1` routes of SPEC §3 that the core log provides, and `/healthz`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use auditlog_core::diff::diff;
use auditlog_core::json::{JsonLimits, Value, parse};
use auditlog_core::tenant::TenantId;
use auditlog_store::{AppendOutcome, BatchError, StoreError, prepare_batch};

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    Router::new()
        .route(
            "/api/v1/events",
            post(ingest).get(crate::search::search_events),
        )
        .route("/api/v1/facets", get(crate::search::facets))
        .route("/api/v1/histogram", get(crate::search::histogram))
        .route("/api/v1/stream", get(crate::search::stream))
        .route("/api/v1/export", get(crate::export::export))
        .route("/api/v1/tlog/checkpoint", get(checkpoint))
        .route("/api/v1/tlog/tile/{*path}", get(crate::tlog::tile))
        .route("/api/v1/events/{seq}", get(event_by_seq))
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/api/v1/public-key", get(public_key))
        .route("/api/v1/proof/inclusion", get(inclusion_proof))
        .route("/api/v1/proof/consistency", get(consistency_proof))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/healthz", get(healthz))
        .merge(crate::admin::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The ingest handler reads the body itself and answers 413 as JSON; this limit is the
        // backstop for every other route.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Stored events are read back without the ingest limits: RFC 8785 may make an accepted
/// event larger (`1e15` is written `1000000000000000`), and the server fields add bytes.
fn stored_limits() -> JsonLimits {
    JsonLimits {
        max_depth: 64,
        max_event_bytes: 64 << 20,
    }
}

/// Axum's own rejections (bad path or query encoding) answered in the API's JSON form.
fn path_param(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

fn query_params<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

fn b64(hash: &[u8]) -> String {
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

async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    caller.require(Permission::Ingest)?;
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        // The body is not read, so the connection cannot carry another request: say so.
        let mut response = too_large().into_response();
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return Ok(response);
    }
    let ndjson = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => false,
        Some(ct) => {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match mime.as_str() {
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => true,
                "application/json" | "" => false,
                other => {
                    // Read what was sent (within the limit), so the connection stays usable.
                    let _ = axum::body::to_bytes(request.into_body(), limit).await;
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        format!(
                            "content type {other:?} is not application/json or application/x-ndjson"
                        ),
                    ));
                }
            }
        }
    };
    // Within the limit here, so it fits a usize.
    let declared = declared.map(|length| length as usize);
    let body = read_body(request.into_body(), limit, declared)
        .await
        .map_err(|_| too_large())?;
    let limits = JsonLimits {
        max_depth: state.config.max_depth,
        max_event_bytes: state.config.max_event_bytes,
    };
    let max_batch = state.config.max_batch_events;
    let received = auditlog_store::now();
    let peer_ip = caller.ip;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let store = state.store.clone();
    let tenant = caller.tenant.clone();
    // Parse, validate and hand over (the store compresses on this thread) in one go.
    let parse_all = move || -> Result<(), ApiError> {
        let prepared = prepare_batch(&body, ndjson, &limits, max_batch, received, peer_ip)
            .map_err(|err| match err {
                BatchError::Json(err) => json_error(err),
                BatchError::TooManyEvents(count) => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_events",
                    format!("a request may carry at most {max_batch} events, this one has {count}"),
                ),
                BatchError::Field { index, error } => {
                    ApiError::bad_request(error.code, format!("event {index}: {}", error.message))
                        .with("index", index)
                        .with("field", error.field)
                }
            })?;
        store.append(
            &tenant,
            prepared,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        Ok(())
    };
    // Small bodies are handled in place; big ones would stall the async threads.
    if declared.is_some_and(|n| n <= 64 * 1024) {
        parse_all()?
    } else {
        blocking(parse_all).await?
    }
    let outcome: AppendOutcome = rx
        .await
        .map_err(|_| ApiError::from(StoreError::Unavailable("writer stopped".into())))??;
    state.search.notify(&caller.tenant);
    state.appended.send_modify(|count| *count += 1);
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        receipts_json(&outcome),
    )
        .into_response())
}

/// Read a request body of at most `limit` bytes into one buffer sized from its declared length
/// (growing a buffer chunk by chunk touched fresh memory many times over for large batches).
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<Vec<u8>, ()> {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The receipt body, written by hand: a 10,000-event batch answers with 10,000 receipts.
fn receipts_json(outcome: &AppendOutcome) -> String {
    let mut out = String::with_capacity(32 + outcome.receipts.len() * 100);
    out.push_str("{\"events\":[");
    for (i, receipt) in outcome.receipts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        match &receipt.id {
            // Ids are [A-Za-z0-9._:-] only, so they need no escaping.
            Some(id) => {
                out.push('"');
                out.push_str(id);
                out.push('"');
            }
            None => out.push_str("null"),
        }
        // Written in place: two small strings per receipt were a measurable part of ingest.
        let _ = write!(out, ",\"seq\":{},\"leaf_hash\":\"", receipt.seq);
        base64::engine::general_purpose::STANDARD.encode_string(receipt.leaf_hash, &mut out);
        out.push_str("\"}");
    }
    let _ = write!(out, "],\"checkpoint_size\":{}", outcome.tree_size);
    out.push('}');
    out
}

/// A body that does not parse into events: 400 with the event's index and the field (SPEC §2,
/// §3; only a body over its limit is a 413, and that is found before parsing).
fn json_error(err: auditlog_core::json::JsonError) -> ApiError {
    let mut api = ApiError::new(StatusCode::BAD_REQUEST, err.code(), err.to_string());
    if let Some(index) = err.index {
        api = api.with("index", index);
    }
    if let auditlog_core::json::JsonErrorKind::DuplicateKey(key) = &err.kind {
        // The repeated member itself: the key at the top level, else the JSON Pointer of the
        // object with the key appended (RFC 6901 escapes).
        let key: String = key.chars().take(128).collect();
        let field = if err.path.is_empty() {
            key
        } else {
            format!("{}/{}", err.path, key.replace('~', "~0").replace('/', "~1"))
        };
        api = api.with("field", field);
    } else if !err.path.is_empty() {
        api = api.with("field", err.path.clone());
    }
    api.with("offset", err.offset)
}

fn parse_seq(text: &str, what: &str) -> Result<u64, ApiError> {
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

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Canonical JSON bytes of a stored value, as serde_json (for building responses).
fn to_json(value: &Value) -> JsonValue {
    serde_json::from_slice(&value.to_canonical()).unwrap_or(JsonValue::Null)
}

/// The log a read names with `log=trail` (the tenant's trail log, auditlog's records of its
/// own use) or `log=events` (the default): always one of the caller's own. Other parameters are
/// left to the route.
fn log_param(caller: &Caller, uri: &axum::http::Uri) -> Result<TenantId, ApiError> {
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

async fn event_by_seq(
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

async fn checkpoint(
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

async fn public_key(
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
struct InclusionQuery {
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

async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let query = query_params(query)?;
    let seq = parse_seq(
        query
            .seq
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("missing_parameter", "seq is required"))?,
        "seq",
    )?;
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
struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let tenant = log_param(&caller, &uri)?;
    let query = query_params(query)?;
    let from = parse_seq(
        query
            .from
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("missing_parameter", "from is required"))?,
        "from",
    )?;
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

async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.store.health();
    let status = if health.writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if health.writable { "ok" } else { "degraded" },
        "storage": {
            "writable": health.writable,
            "problem": health.problem,
        },
        "background": crate::watch::health_json(&state.watch),
    });
    (status, axum::Json(body)).into_response()
}
