//! The search routes of SPEC §3: `GET /api/v1/events` (query, sort, keyset pages),
//! `/api/v1/facets`, `/api/v1/histogram` and `/api/v1/stream` (Server-Sent Events).
//!
//! Parameters are strict: an unknown or repeated parameter is a 400, so a typo never silently
//! widens a query. Limits are capped rather than refused when too large.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as JsonValue, json};

use crate::auth::Permission;
use crate::trail::clip;
use auditlog_core::json::{JsonLimits, parse};
use auditlog_core::tenant::TenantId;
use auditlog_query::Query;
use auditlog_search::{
    Cursor, FacetField, MAX_FACET_LIMIT, MAX_LIMIT, SearchError, SearchRequest, SortField,
    SortOrder,
};
use auditlog_store::trail::{integer, string};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::event_json;
use crate::handlers::blocking;

/// The query parameters of a request, each at most once and each one this route knows.
pub(crate) fn params(uri: &Uri, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    let raw = uri.query().unwrap_or("");
    if raw.len() > 16 * 1024 {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "the query string is longer than 16 KiB",
        ));
    }
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        if !allowed.contains(&name.as_ref()) {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!(
                    "unknown parameter {:?}; this route takes {}",
                    name.chars().take(40).collect::<String>(),
                    allowed.join(", ")
                ),
            ));
        }
        if out.insert(name.to_string(), value.to_string()).is_some() {
            return Err(ApiError::bad_request(
                "duplicate_parameter",
                format!("parameter {name:?} given more than once"),
            ));
        }
    }
    Ok(out)
}

/// The log a query reads: the tenant's events, or its trail log when a `table:` clause asks
/// for `auditlog.*` records (auditlog's records of its own use live in a tree of their own).
pub(crate) fn log_of(caller: &Caller, query: &Query) -> TenantId {
    if auditlog_query::asks_for_trail(query) {
        caller.tenant.trail()
    } else {
        caller.tenant.clone()
    }
}

pub(crate) fn query_of(params: &HashMap<String, String>) -> Result<Query, ApiError> {
    let text = params.get("q").map(String::as_str).unwrap_or("");
    auditlog_query::parse(text).map_err(|e| {
        // SPEC §4: the message itself shows where; `position` (a character offset from 0) and
        // `caret` (the query with a `^` under it) are there for programs and the web page.
        let message = format!("invalid query: {} at position {}", e.message, e.position);
        ApiError::bad_request("invalid_query", message)
            .with("position", e.position)
            .with("caret", e.caret(text))
    })
}

fn limit_of(
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = params.get("limit") else {
        return Ok(default);
    };
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(n) if digits && n >= 1 => Ok((n.min(max as u64)) as usize),
        _ => Err(ApiError::bad_request(
            "invalid_parameter",
            format!(
                "limit must be a whole number from 1 to {max}, got {:?}",
                text.chars().take(40).collect::<String>()
            ),
        )),
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> ApiError {
        match error {
            SearchError::BadRequest(message) => ApiError::bad_request("query_too_broad", message),
            behind @ SearchError::Behind { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_behind",
                behind.to_string(),
            ),
            SearchError::Unavailable(why) => {
                tracing::error!("search index unavailable: {why}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "index_unavailable",
                    "the search index is unavailable; see the server log",
                )
            }
            disabled @ SearchError::Disabled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "search_disabled",
                disabled.to_string(),
            ),
            SearchError::Store(store) => ApiError::from(store),
        }
    }
}

/// `sort` and `order`, with the route's defaults.
pub(crate) fn sort_of(
    params: &HashMap<String, String>,
    default_sort: SortField,
    default_order: SortOrder,
) -> Result<(SortField, SortOrder), ApiError> {
    let sort = match params.get("sort") {
        None => default_sort,
        Some(name) => SortField::from_name(name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "sort must be one of {}, got {:?}",
                    SortField::ALL.map(SortField::name).join(", "),
                    name.chars().take(40).collect::<String>()
                ),
            )
        })?,
    };
    let order = match params.get("order") {
        None => default_order,
        Some(name) => SortOrder::from_name(name).ok_or_else(|| {
            ApiError::bad_request("invalid_parameter", "order must be asc or desc")
        })?,
    };
    Ok((sort, order))
}

fn took_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// `GET /api/v1/events`.
pub async fn search_events(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let started = Instant::now();
    let params = params(&uri, &["q", "sort", "order", "limit", "cursor"])?;
    let query = query_of(&params)?;
    let (sort, order) = sort_of(&params, SortField::Time, SortOrder::Desc)?;
    let limit = limit_of(&params, 50, MAX_LIMIT)?;
    let cursor = match params.get("cursor") {
        None => None,
        Some(text) => Some(
            Cursor::decode(text, sort, order)
                .map_err(|e| ApiError::bad_request("invalid_cursor", e.0))?,
        ),
    };
    let first_page = cursor.is_none();
    let q_text = params.get("q").cloned().unwrap_or_default();
    let tenant = log_of(&caller, &query);
    let engine = state.search.clone();
    let store = state.store.clone();
    let body = blocking(move || {
        let page = engine.search(
            &tenant,
            &SearchRequest {
                query,
                sort,
                order,
                limit,
                cursor,
            },
            auditlog_store::now(),
        )?;
        let mut events = Vec::with_capacity(page.hits.len());
        for (_, seq) in &page.hits {
            // The index only holds events of the log, so every hit is there.
            let event = store
                .event(&tenant, *seq)?
                .ok_or_else(|| ApiError::internal(format!("indexed event {seq} not in the log")))?;
            events.push(JsonValue::Object(
                event_json(&event).map_err(ApiError::internal)?,
            ));
        }
        Ok(json!({
            "events": events,
            "next_cursor": page.next_cursor.map(|c| c.encode()),
            "total": page.total,
            "total_is_exact": true,
            "took_ms": took_ms(started),
        }))
    })
    .await?;
    // The trail keeps every search (its first page; further pages continue it) before the
    // answer leaves.
    if first_page {
        crate::trail::record_read(
            &state,
            &caller,
            "SEARCH",
            "auditlog.search",
            None,
            format!("{} searched: {}", caller.name, clip(&q_text, 200)),
            vec![
                ("q", string(clip(&q_text, 1000))),
                ("sort", string(sort.name())),
                ("order", string(order.name())),
                ("total", integer(body["total"].as_u64().unwrap_or(0) as i64)),
            ],
        )
        .await?;
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/facets?q=…&field=user&limit=…`.
pub async fn facets(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let started = Instant::now();
    let params = params(&uri, &["q", "field", "limit"])?;
    let query = query_of(&params)?;
    let field_name = params.get("field").ok_or_else(|| {
        ApiError::bad_request("missing_parameter", "field is required (e.g. field=user)")
    })?;
    let field = FacetField::from_name(field_name).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_parameter",
            format!(
                "field must be one of {}, got {:?}",
                FacetField::ALL.map(FacetField::name).join(", "),
                field_name.chars().take(40).collect::<String>()
            ),
        )
    })?;
    let limit = limit_of(&params, 20, MAX_FACET_LIMIT)?;
    let tenant = log_of(&caller, &query);
    let engine = state.search.clone();
    let body = blocking(move || {
        let facets = engine.facets(&tenant, &query, field, limit, auditlog_store::now())?;
        Ok(json!({
            "field": field.name(),
            "values": facets.values.iter().map(|(value, count)| json!({"value": value, "count": count})).collect::<Vec<_>>(),
            "distinct": facets.distinct,
            "total": facets.total,
            "took_ms": took_ms(started),
        }))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// An interval like `30s`, `5m`, `1h`, `1d`, `1w`, in seconds.
fn parse_interval(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    (n >= 1).then_some(n * unit_secs)
}

fn interval_name(secs: i64) -> String {
    for (unit, unit_secs) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % unit_secs == 0 {
            return format!("{}{unit}", secs / unit_secs);
        }
    }
    format!("{secs}s")
}

/// `GET /api/v1/histogram?q=…&interval=auto|1h`.
pub async fn histogram(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let started = Instant::now();
    let params = params(&uri, &["q", "interval"])?;
    let query = query_of(&params)?;
    let interval = match params.get("interval").map(String::as_str) {
        None | Some("auto") => None,
        Some(text) => Some(parse_interval(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                "interval must be auto or a number with a unit s, m, h, d or w (e.g. 15m)",
            )
        })?),
    };
    let tenant = log_of(&caller, &query);
    let engine = state.search.clone();
    let body = blocking(move || {
        let histogram = engine.histogram(&tenant, &query, interval, auditlog_store::now())?;
        Ok(json!({
            "interval": interval_name(histogram.interval_secs),
            "interval_seconds": histogram.interval_secs,
            "buckets": histogram.buckets.iter().map(|(start, count)| json!({"start": start.to_rfc3339(), "count": count})).collect::<Vec<_>>(),
            "total": histogram.total,
            "took_ms": took_ms(started),
        }))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// Most events a stream replays after `Last-Event-ID` before it skips ahead.
const MAX_REPLAY: u64 = 10_000;
/// Events read from the log per step of a stream.
const STREAM_BATCH: usize = 500;

/// `GET /api/v1/stream?q=…`: every new matching event as `id: seq`, `event: event`,
/// `data: <event JSON>`. With `Last-Event-ID: n` it resumes after seq n (replaying at most
/// 10,000 events; further back it starts there and sends an `event: skipped` first).
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let params = params(&uri, &["q"])?;
    let query = query_of(&params)?;
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => {
            let text = value.to_str().unwrap_or("");
            let parsed = text.trim().parse::<u64>().ok().filter(|_| text.len() <= 20);
            Some(parsed.ok_or_else(|| {
                ApiError::bad_request("invalid_parameter", "Last-Event-ID must be a seq")
            })?)
        }
    };
    let tenant = log_of(&caller, &query);
    let store = state.store.clone();
    let size = {
        let tenant = tenant.clone();
        blocking(move || Ok(store.tree_size(&tenant)?)).await?
    };
    let mut skipped = None;
    let after = match resume {
        None => size,
        Some(seq) => {
            let seq = seq.min(size);
            if size - seq > MAX_REPLAY {
                skipped = Some((seq, size - MAX_REPLAY));
                size - MAX_REPLAY
            } else {
                seq
            }
        }
    };
    let now = tokio::time::Instant::now();
    let stream = StreamState {
        credentials: state.credentials_changed.subscribe(),
        next_check: now + state.config.stream_recheck,
        ends_at: now + state.config.stream_max_lifetime,
        state,
        caller,
        tenant,
        query,
        after,
        pending: VecDeque::new(),
        skipped,
        appended: None,
        closed: false,
    };
    let events = futures_util::stream::unfold(stream, |mut stream| async move {
        let event = stream.next().await?;
        Some((Ok::<_, Infallible>(event), stream))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

struct StreamState {
    state: AppState,
    /// Who opened the stream: checked again every `stream_recheck` and on every credential
    /// change made through this server.
    caller: Caller,
    credentials: tokio::sync::watch::Receiver<u64>,
    next_check: tokio::time::Instant,
    /// The stream's maximum lifetime ends here.
    ends_at: tokio::time::Instant,
    tenant: TenantId,
    query: Query,
    /// Last seq looked at.
    after: u64,
    /// Matching events read but not sent yet (at most one read's worth, `STREAM_BATCH`).
    pending: VecDeque<SseEvent>,
    skipped: Option<(u64, u64)>,
    appended: Option<tokio::sync::watch::Receiver<u64>>,
    /// The `closed` event was sent: the stream ends.
    closed: bool,
}

impl StreamState {
    /// The next message, or `None` when the stream is over (its credential ended, or its
    /// lifetime did: the last message says which, as `event: closed`).
    async fn next(&mut self) -> Option<SseEvent> {
        if self.closed {
            return None;
        }
        if let Some((from, to)) = self.skipped.take() {
            return Some(
                SseEvent::default()
                    .event("skipped")
                    .data(json!({"from": from, "to": to}).to_string()),
            );
        }
        loop {
            if let Some(reason) = self.why_close().await {
                self.closed = true;
                return Some(
                    SseEvent::default()
                        .event("closed")
                        .data(json!({"reason": reason}).to_string()),
                );
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let appended = self
                .appended
                .get_or_insert_with(|| self.state.appended.subscribe());
            // Mark what is seen now, then read: an append after this wakes the wait below.
            appended.borrow_and_update();
            match self.read().await {
                Ok(()) if !self.pending.is_empty() => continue,
                Ok(()) => {}
                Err(error) => {
                    return Some(
                        SseEvent::default()
                            .event("error")
                            .data(json!({"message": error.message}).to_string()),
                    );
                }
            }
            let appended = self
                .appended
                .get_or_insert_with(|| self.state.appended.subscribe());
            let wake = self.next_check.min(self.ends_at);
            tokio::select! {
                _ = appended.changed() => {}
                changed = self.credentials.changed() => {
                    if changed.is_ok() {
                        self.next_check = tokio::time::Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Why the stream must end now, if it must.
    async fn why_close(&mut self) -> Option<&'static str> {
        let now = tokio::time::Instant::now();
        if now >= self.ends_at {
            return Some("the stream reached its maximum lifetime; reconnect with Last-Event-ID");
        }
        // A change made through this server is looked at before anything else is sent.
        let changed = self.credentials.has_changed().unwrap_or(false);
        if now < self.next_check && !changed {
            return None;
        }
        self.next_check = now + self.state.config.stream_recheck;
        self.credentials.borrow_and_update();
        match self.caller.still_valid(&self.state).await {
            Ok(true) => None,
            Ok(false) => Some("the credential was revoked, disabled or signed out"),
            // A store that cannot answer cannot vouch for the credential either.
            Err(_) => Some("the credential could not be checked"),
        }
    }

    /// Reads the events after `after` from the log and queues the matching ones.
    async fn read(&mut self) -> Result<(), ApiError> {
        let store = self.state.store.clone();
        let tenant = self.tenant.clone();
        let query = self.query.clone();
        let after = self.after;
        let (last, events) = blocking(move || {
            let events = store.events_from(&tenant, after + 1, STREAM_BATCH)?;
            let mut last = after;
            let mut out = Vec::new();
            let limits = JsonLimits {
                max_depth: 64,
                max_event_bytes: 64 << 20,
            };
            let now = auditlog_store::now();
            for event in events {
                last = event.seq;
                let value = parse(&event.canonical, &limits).map_err(ApiError::internal)?;
                if auditlog_query::matches(&query, &value, now) {
                    let body = event_json(&event).map_err(ApiError::internal)?;
                    out.push((event.seq, JsonValue::Object(body).to_string()));
                }
            }
            Ok((last, out))
        })
        .await?;
        self.after = last;
        self.pending = events
            .into_iter()
            .map(|(seq, data)| {
                SseEvent::default()
                    .id(seq.to_string())
                    .event("event")
                    .data(data)
            })
            .collect();
        Ok(())
    }
}
