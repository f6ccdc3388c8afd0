//! Prometheus metrics (SPEC §11): `GET /metrics` on `serve --metrics-listen ADDR` only, in
//! the OpenMetrics text format written by `prometheus-client`.
//!
//! What is counted as it happens: HTTP requests by route pattern (never the concrete path, so
//! no seq, name or tenant), method and status, their latency, and the latency of searches.
//! What is read at each scrape from the store, the search engine and the background work:
//! events and trail records stored, tenants, tenants whose index is behind (a count, never
//! names), events not yet under a checkpoint and the age of the oldest such checkpoint, the
//! last self-verification and the anchors, and process basics from `/proc/self`.
//!
//! Deliberately not here: figures inside the store's writer (append and fsync latency, group
//! sizes), which need hooks in the writer; and no label ever carries a tenant name or data.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use auditlog_search::SearchEngine;
use auditlog_store::Store;

use crate::watch::WatchState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// What the request middleware records; shared by every request.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    search_latency: Family<RouteLabels, Histogram>,
}

fn latency_buckets() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            search_latency: Family::new_with_constructor(latency_buckets),
        }
    }
}

/// The routes that run a search (index lookups), timed again as search latency.
const SEARCH_ROUTES: [&str; 4] = [
    "/api/v1/events",
    "/api/v1/facets",
    "/api/v1/histogram",
    "/api/v1/export",
];

/// Middleware (a route layer, so the route pattern is known): counts and times each request.
/// A streamed answer (export, live stream) is timed to its headers.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let labels = RouteLabels { route, method };
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: labels.route.clone(),
            method: labels.method.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics.latency.get_or_create(&labels).observe(seconds);
    if labels.method == "GET" && SEARCH_ROUTES.contains(&labels.route.as_str()) {
        metrics
            .search_latency
            .get_or_create(&labels)
            .observe(seconds);
    }
    response
}

/// Everything a scrape reads.
#[derive(Clone)]
pub struct MetricsSource {
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    pub search: Arc<SearchEngine>,
    pub watch: WatchState,
    /// False under `serve --no-search-index`: there is no index to lag.
    pub index_enabled: bool,
}

impl std::fmt::Debug for MetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsSource")
    }
}

/// The router of the metrics listener: `GET /metrics` and nothing else.
pub fn router(source: MetricsSource) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(source)
}

/// Serves `GET /metrics` on its own listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, source: MetricsSource) {
    if let Err(e) = axum::serve(listener, router(source)).await {
        tracing::error!("metrics listener: {e}");
    }
}

async fn scrape(State(source): State<MetricsSource>) -> Response {
    let text = tokio::task::spawn_blocking(move || render(&source)).await;
    match text {
        Ok(Ok(text)) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Ok(Err(e)) => {
            tracing::error!("metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
        Err(e) => {
            tracing::error!("metrics: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// The whole exposition, text format.
pub fn render(source: &MetricsSource) -> anyhow::Result<String> {
    let mut root = Registry::default();
    // The process collector's names (`process_*`) stand outside the auditlog_ prefix.
    if let Some(process) = ProcessStats::read() {
        root.register_collector(Box::new(process));
    }
    let registry = root.sub_registry_with_prefix("auditlog");
    registry.register(
        "http_requests",
        "HTTP requests answered, by route pattern, method and status",
        source.metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "time to the response headers, by route pattern and method",
        source.metrics.latency.clone(),
    );
    registry.register(
        "search_duration_seconds",
        "time to answer a search, facet, histogram or export request",
        source.metrics.search_latency.clone(),
    );
    let state = LogState::read(source)?;
    registry.register_collector(Box::new(state));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &root)?;
    Ok(text)
}

/// Figures read from the store and the background work at scrape time.
#[derive(Debug, Default)]
struct LogState {
    tenants: u64,
    events: u64,
    trail_records: u64,
    index_behind: Option<(u64, u64)>,
    unsigned_events: u64,
    oldest_unsigned_checkpoint_secs: f64,
    storage_writable: bool,
    verify: Option<serde_json::Value>,
    anchors_written: u64,
    anchors_failing: bool,
}

impl LogState {
    fn read(source: &MetricsSource) -> anyhow::Result<LogState> {
        let mut state = LogState {
            storage_writable: source.store.health().writable,
            ..LogState::default()
        };
        let now = auditlog_store::now().unix_nanos();
        let (mut behind, mut lag) = (0u64, 0u64);
        for tenant in source.store.tenants()? {
            let size = source.store.tree_size(&tenant)?;
            if tenant.is_trail() {
                state.trail_records += size;
            } else {
                state.tenants += 1;
                state.events += size;
                if source.index_enabled {
                    // A tenant without an open index yet counts as behind by all its events.
                    let indexed = source.search.indexed_through(&tenant).unwrap_or(0);
                    if indexed < size {
                        behind += 1;
                        lag += size - indexed;
                    }
                }
            }
            let (signed, signed_at) = match source.store.latest_checkpoint(&tenant)? {
                Some(cp) => (cp.size, Some(cp.signed_at.unix_nanos())),
                None => (0, None),
            };
            if size > signed {
                state.unsigned_events += size - signed;
                if let Some(at) = signed_at {
                    let age = (now - at).max(0) as f64 / 1e9;
                    state.oldest_unsigned_checkpoint_secs =
                        state.oldest_unsigned_checkpoint_secs.max(age);
                }
            }
        }
        if source.index_enabled {
            state.index_behind = Some((behind, lag));
        }
        let health = crate::watch::health_json(&source.watch);
        state.verify = health.get("verify").filter(|v| !v.is_null()).cloned();
        state.anchors_written = health["anchors"]["written"].as_u64().unwrap_or(0);
        state.anchors_failing = health["anchors"]["failing"].as_bool().unwrap_or(false);
        Ok(state)
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for LogState {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        counter(
            &mut e,
            "stored_events",
            "events in every tenant's log",
            self.events as f64,
        )?;
        counter(
            &mut e,
            "trail_records",
            "records in every tenant's trail log",
            self.trail_records as f64,
        )?;
        gauge(
            &mut e,
            "tenants",
            "tenants in the store",
            self.tenants as f64,
        )?;
        if let Some((behind, lag)) = self.index_behind {
            gauge(
                &mut e,
                "index_tenants_behind",
                "tenants whose search index has not committed every stored event",
                behind as f64,
            )?;
            gauge(
                &mut e,
                "index_lag_events",
                "stored events not yet searchable, over every tenant",
                lag as f64,
            )?;
        }
        gauge(
            &mut e,
            "unsigned_events",
            "stored events not yet covered by a signed checkpoint",
            self.unsigned_events as f64,
        )?;
        gauge(
            &mut e,
            "checkpoint_age_seconds",
            "age of the oldest latest checkpoint among logs with events it does not cover (0: every log is signed through its end)",
            self.oldest_unsigned_checkpoint_secs,
        )?;
        gauge(
            &mut e,
            "storage_writable",
            "1 while storage accepts writes",
            f64::from(u8::from(self.storage_writable)),
        )?;
        counter(
            &mut e,
            "anchors_written",
            "checkpoints copied to the anchors",
            self.anchors_written as f64,
        )?;
        gauge(
            &mut e,
            "anchors_failing",
            "1 while the last anchoring failed",
            f64::from(u8::from(self.anchors_failing)),
        )?;
        if let Some(verify) = &self.verify {
            let ok = verify["ok"].as_bool().unwrap_or(false);
            gauge(
                &mut e,
                "self_verify_ok",
                "1 when the last scheduled self-verification found nothing",
                f64::from(u8::from(ok)),
            )?;
            gauge(
                &mut e,
                "self_verify_findings",
                "findings of the last scheduled self-verification",
                verify["findings"].as_f64().unwrap_or(0.0),
            )?;
            gauge(
                &mut e,
                "self_verify_errors",
                "logs the last scheduled self-verification could not read",
                verify["errors"].as_f64().unwrap_or(0.0),
            )?;
            gauge(
                &mut e,
                "self_verify_duration_seconds",
                "time the last scheduled self-verification took",
                verify["seconds"].as_f64().unwrap_or(0.0),
            )?;
        }
        Ok(())
    }
}

/// The Prometheus process collector's figures, read from `/proc/self` (Linux).
#[derive(Debug)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    threads: f64,
    open_fds: f64,
    max_fds: Option<f64>,
    start_time_seconds: Option<f64>,
}

/// `/proc` reports CPU times and start times in USER_HZ, which Linux fixes at 100.
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Field numbers of proc(5) minus 3: utime 14, stime 15, threads 20, starttime 22,
        // vsize 23, rss 24 (pages).
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let cpu_seconds = (number(11)? + number(12)?) / USER_HZ;
        let page_size = 4096.0;
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse::<f64>().ok())
            });
        Some(ProcessStats {
            cpu_seconds,
            resident_bytes: number(21)? * page_size,
            virtual_bytes: number(20)?,
            threads: number(17)?,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as f64,
            max_fds,
            start_time_seconds: boot_time
                .zip(number(19))
                .map(|(boot, ticks)| boot + ticks / USER_HZ),
        })
    }
}

impl Collector for ProcessStats {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        counter(
            &mut e,
            "process_cpu_seconds",
            "user and system CPU time spent, in seconds",
            self.cpu_seconds,
        )?;
        gauge(
            &mut e,
            "process_resident_memory_bytes",
            "resident memory size in bytes",
            self.resident_bytes,
        )?;
        gauge(
            &mut e,
            "process_virtual_memory_bytes",
            "virtual memory size in bytes",
            self.virtual_bytes,
        )?;
        gauge(
            &mut e,
            "process_threads",
            "OS threads of the process",
            self.threads,
        )?;
        gauge(
            &mut e,
            "process_open_fds",
            "open file descriptors",
            self.open_fds,
        )?;
        if let Some(max) = self.max_fds {
            gauge(
                &mut e,
                "process_max_fds",
                "the most file descriptors the process may open",
                max,
            )?;
        }
        if let Some(start) = self.start_time_seconds {
            gauge(
                &mut e,
                "process_start_time_seconds",
                "start time of the process since the Unix epoch, in seconds",
                start,
            )?;
        }
        Ok(())
    }
}
