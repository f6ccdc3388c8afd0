//! `auditlog search QUERY`, `auditlog tail [QUERY]` and `auditlog reindex`.
//!
//! Search and tail work over HTTP (`--url`, `--token`) or on the data directory; reindex only
//! on the data directory (with no server running). Table output replaces control characters,
//! so an event cannot drive the terminal; CSV output neutralises formula-like cells.

use std::io::{BufRead as _, BufReader};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use auditlog_core::json::{JsonLimits, parse};
use auditlog_search::{Cursor, SearchEngine, SearchOptions, SearchRequest, SortField, SortOrder};
use auditlog_store::{SqliteStore, Store};
use serde_json::{Map, Value as JsonValue};

use super::{Ctx, TenantArg, out};
use crate::Outcome;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns, one event per line.
    #[default]
    Table,
    /// One JSON object per line.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

#[derive(clap::Args)]
pub struct Remote {
    /// Server to ask, e.g. http://127.0.0.1:8080; without it the data directory is read.
    #[arg(long, env = "AUDITLOG_URL")]
    url: Option<String>,
    /// Bearer token with the read scope (with --url).
    #[arg(long, env = "AUDITLOG_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Query in the query language (SPEC §4), e.g. `user:alice action:UPDATE 4711`.
    #[arg(allow_hyphen_values = true)]
    query: String,
    /// Column to sort by.
    #[arg(long, default_value = "time")]
    sort: String,
    /// asc or desc.
    #[arg(long, default_value = "desc")]
    order: String,
    /// Most events to print, at least 1 (all of them with --all).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
    /// Print every match, page after page.
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    tenant: TenantArg,
}

#[derive(clap::Args)]
pub struct TailArgs {
    /// Only events matching this query.
    #[arg(default_value = "", allow_hyphen_values = true)]
    query: String,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
    #[command(flatten)]
    remote: Remote,
    #[command(flatten)]
    tenant: TenantArg,
}

#[derive(clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    tenant: TenantArg,
}

/// The columns of table and CSV output (SPEC §7 plus seq).
const COLUMNS: [&str; 9] = [
    "seq",
    "time",
    "user",
    "ip",
    "primary_key",
    "action",
    "table",
    "message",
    "source",
];

/// Writes events in one format; the header comes with the first event.
struct Printer {
    format: OutputFormat,
    csv: Option<csv::Writer<std::io::Stdout>>,
    printed: u64,
}

impl Printer {
    fn new(format: OutputFormat) -> Printer {
        Printer {
            format,
            csv: None,
            printed: 0,
        }
    }

    fn print(&mut self, event: &Map<String, JsonValue>) -> anyhow::Result<()> {
        let cell = |name: &str| match event.get(name) {
            Some(JsonValue::String(text)) => text.clone(),
            Some(JsonValue::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        match self.format {
            OutputFormat::Json => out(JsonValue::Object(event.clone()))?,
            OutputFormat::Table => {
                if self.printed == 0 {
                    out(format!(
                        "{:>8}  {:<30}  {:<16}  {:<15}  {:<10}  {:<8}  {:<16}  MESSAGE",
                        "SEQ", "TIME", "USER", "IP", "PK", "ACTION", "TABLE"
                    ))?;
                }
                out(format!(
                    "{:>8}  {:<30}  {:<16}  {:<15}  {:<10}  {:<8}  {:<16}  {}",
                    cell("seq"),
                    terminal_safe(&cell("time"), 30),
                    terminal_safe(&cell("user"), 16),
                    terminal_safe(&cell("ip"), 39),
                    terminal_safe(&cell("primary_key"), 10),
                    terminal_safe(&cell("action"), 8),
                    terminal_safe(&cell("table"), 16),
                    terminal_safe(&cell("message"), 200),
                ))?;
            }
            OutputFormat::Csv => {
                let writer = self
                    .csv
                    .get_or_insert_with(|| csv::Writer::from_writer(std::io::stdout()));
                if self.printed == 0 {
                    writer.write_record(COLUMNS)?;
                }
                writer.write_record(
                    COLUMNS.map(|name| auditlog_server::spreadsheet_safe(&cell(name))),
                )?;
                writer.flush()?;
            }
        }
        self.printed += 1;
        Ok(())
    }
}

/// A cell a terminal shows as text: control characters (escape sequences, newlines) become
/// `?`, and the text is cut at `width` characters.
pub fn terminal_safe(text: &str, width: usize) -> String {
    let mut shown: String = text
        .chars()
        .take(width)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > width {
        shown.pop();
        shown.push('…');
    }
    shown
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// The error message of an API error body.
fn api_error(status: u16, body: &str) -> anyhow::Error {
    let detail: JsonValue = serde_json::from_str(body).unwrap_or(JsonValue::Null);
    let message = detail["error"]["message"].as_str().unwrap_or(body);
    match detail["error"]["caret"].as_str() {
        Some(caret) => anyhow::anyhow!("server answered {status}: {message}\n{caret}"),
        None => anyhow::anyhow!("server answered {status}: {message}"),
    }
}

/// Open the data directory for this process alone, with its search index.
pub fn open_local(
    ctx: &Ctx,
    options: SearchOptions,
) -> anyhow::Result<(Arc<dyn Store>, SearchEngine)> {
    // Reading a directory that is not there is an error, not an empty log made on the spot.
    if !SqliteStore::holds_data(&ctx.data) {
        anyhow::bail!(
            "no auditlog data in {} (give --data, or --url for a server)",
            ctx.data.display()
        );
    }
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&ctx.data, ctx.options()).with_context(|| {
            format!(
                "open data directory {} (if a server runs on it, use --url)",
                ctx.data.display()
            )
        })?,
    );
    let engine = SearchEngine::open(store.clone(), &ctx.data.join("index"), options)?;
    Ok((store, engine))
}

/// The log a query reads: the tenant's events, or its trail log when a `table:` clause asks
/// for auditlog's records of its own use (`table:auditlog.*`).
pub fn log_of(
    tenant: auditlog_core::tenant::TenantId,
    query: &auditlog_query::Query,
) -> auditlog_core::tenant::TenantId {
    if auditlog_query::asks_for_trail(query) {
        tenant.trail()
    } else {
        tenant
    }
}

/// A query from the command line; an error shows the caret under the problem.
pub fn parse_query(text: &str) -> anyhow::Result<auditlog_query::Query> {
    auditlog_query::parse(text)
        .map_err(|e| anyhow::anyhow!("invalid query: {}\n{}", e.message, e.caret(text)))
}

pub fn search(ctx: &Ctx, args: SearchArgs) -> anyhow::Result<Outcome> {
    let sort = SortField::from_name(&args.sort).with_context(|| {
        format!(
            "--sort must be one of {}",
            SortField::ALL.map(SortField::name).join(", ")
        )
    })?;
    let order = SortOrder::from_name(&args.order).context("--order must be asc or desc")?;
    let wanted = if args.all { u64::MAX } else { args.limit };
    let mut printer = Printer::new(args.format);
    let total = match &args.remote.url {
        Some(url) => {
            let token = args
                .remote
                .token
                .as_deref()
                .context("--url needs --token (or AUDITLOG_TOKEN)")?;
            search_http(url, token, &args, wanted, &mut printer)?
        }
        None => search_local(ctx, &args, sort, order, wanted, &mut printer)?,
    };
    if args.format == OutputFormat::Table && printer.printed < total {
        eprintln!("{} of {total} matches shown", printer.printed);
    }
    Ok(if total == 0 {
        Outcome::Found
    } else {
        Outcome::Ok
    })
}

fn search_local(
    ctx: &Ctx,
    args: &SearchArgs,
    sort: SortField,
    order: SortOrder,
    wanted: u64,
    printer: &mut Printer,
) -> anyhow::Result<u64> {
    let query = parse_query(&args.query)?;
    let tenant = log_of(args.tenant.parse()?, &query);
    let (store, engine) = open_local(ctx, SearchOptions::default())?;
    catch_up(&engine, store.as_ref(), &tenant)?;
    let mut cursor: Option<Cursor> = None;
    let mut total = 0;
    while printer.printed < wanted {
        let limit = (wanted - printer.printed).min(1000) as usize;
        let page = engine.search(
            &tenant,
            &SearchRequest {
                query: query.clone(),
                sort,
                order,
                limit,
                cursor: cursor.take(),
            },
            auditlog_store::now(),
        )?;
        total = page.total;
        for (_, seq) in &page.hits {
            let event = store
                .event(&tenant, *seq)?
                .with_context(|| format!("indexed event {seq} is not in the log"))?;
            printer.print(&auditlog_server::event_json(&event).map_err(anyhow::Error::msg)?)?;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(total)
}

/// Bring the local index up to the log, with a progress bar when that takes a while.
fn catch_up(
    engine: &SearchEngine,
    store: &dyn Store,
    tenant: &auditlog_core::tenant::TenantId,
) -> anyhow::Result<()> {
    let size = store.tree_size(tenant)?;
    let bar = super::progress_bar(size, "indexing");
    loop {
        match engine.catch_up(tenant, Duration::from_millis(250)) {
            Ok(_) => break,
            Err(auditlog_search::SearchError::Behind { indexed, .. }) => bar.set_position(indexed),
            Err(other) => return Err(other.into()),
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn search_http(
    url: &str,
    token: &str,
    args: &SearchArgs,
    wanted: u64,
    printer: &mut Printer,
) -> anyhow::Result<u64> {
    let agent = agent();
    let base = format!("{}/api/v1/events", url.trim_end_matches('/'));
    let authorization = format!("Bearer {token}");
    let mut cursor: Option<String> = None;
    let mut total = 0;
    while printer.printed < wanted {
        let limit = (wanted - printer.printed).min(1000).to_string();
        let mut request = agent
            .get(&base)
            .header("Authorization", &authorization)
            .query("q", &args.query)
            .query("sort", &args.sort)
            .query("order", &args.order)
            .query("limit", &limit);
        if let Some(cursor) = &cursor {
            request = request.query("cursor", cursor);
        }
        let mut response = request.call().with_context(|| format!("GET {base}"))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        if status != 200 {
            return Err(api_error(status, &body));
        }
        let page: JsonValue = serde_json::from_str(&body).context("server answer")?;
        total = page["total"].as_u64().unwrap_or(0);
        for event in page["events"].as_array().into_iter().flatten() {
            if let JsonValue::Object(event) = event {
                printer.print(event)?;
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(total)
}

pub fn tail(ctx: &Ctx, args: TailArgs) -> anyhow::Result<Outcome> {
    let query = parse_query(&args.query)?;
    let mut printer = Printer::new(args.format);
    match &args.remote.url {
        Some(url) => {
            let token = args
                .remote
                .token
                .as_deref()
                .context("--url needs --token (or AUDITLOG_TOKEN)")?;
            tail_http(url, token, &args.query, &mut printer)
        }
        None => {
            // Beside a running server: read only, poll the log.
            let store = super::open_shared(ctx)?;
            let tenant = args.tenant.parse()?;
            let mut after = store.tree_size(&tenant)?;
            let limits = JsonLimits {
                max_depth: 64,
                max_event_bytes: 64 << 20,
            };
            loop {
                let events = store.events_from(&tenant, after + 1, 500)?;
                if events.is_empty() {
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
                let now = auditlog_store::now();
                for event in events {
                    after = event.seq;
                    let value = parse(&event.canonical, &limits)
                        .map_err(|e| anyhow::anyhow!("stored event {}: {e}", event.seq))?;
                    if auditlog_query::matches(&query, &value, now) {
                        printer.print(
                            &auditlog_server::event_json(&event).map_err(anyhow::Error::msg)?,
                        )?;
                    }
                }
            }
        }
    }
}

/// Follow `/api/v1/stream`, reconnecting with `Last-Event-ID` when the connection drops.
fn tail_http(
    url: &str,
    token: &str,
    query: &str,
    printer: &mut Printer,
) -> anyhow::Result<Outcome> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("{}/api/v1/stream", url.trim_end_matches('/'));
    let authorization = format!("Bearer {token}");
    let mut last_id: Option<String> = None;
    loop {
        let mut request = agent
            .get(&base)
            .header("Authorization", &authorization)
            .header("Accept", "text/event-stream")
            .query("q", query);
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(e) => {
                eprintln!("auditlog: stream failed ({e}); reconnecting");
                std::thread::sleep(Duration::from_secs(2));
                continue;
            }
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if status != 200 {
            let text = body.read_to_string().unwrap_or_default();
            return Err(api_error(status, &text));
        }
        let reader = BufReader::new(body.into_reader());
        let (mut id, mut kind, mut data) = (None::<String>, String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if kind == "event" {
                    if let Ok(JsonValue::Object(event)) = serde_json::from_str(&data) {
                        printer.print(&event)?;
                    }
                    if id.is_some() {
                        last_id = id.take();
                    }
                } else if kind == "error" {
                    bail!("stream error: {data}");
                }
                kind.clear();
                data.clear();
            } else if let Some(rest) = line.strip_prefix("id:") {
                id = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("event:") {
                kind = rest.trim().to_owned();
            } else if let Some(rest) = line.strip_prefix("data:") {
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
        eprintln!("auditlog: stream ended; reconnecting");
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn reindex(ctx: &Ctx, args: ReindexArgs) -> anyhow::Result<Outcome> {
    let tenant = args.tenant.parse()?;
    let (_store, engine) = open_local(ctx, SearchOptions::default())?;
    let bar = super::progress_bar(0, "reindexing");
    engine.rebuild(&tenant, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let indexed = engine.indexed_through(&tenant)?;
    eprintln!("auditlog: index of {tenant} rebuilt from the log ({indexed} events)");
    Ok(Outcome::Ok)
}
