//! `auditlog ingest [FILE|-]`: NDJSON events into a log, over HTTP (`--url`) or straight into
//! `--data`. Retry-safe: an event without `id` gets one derived from its line number and
//! content, so a rerun of the same file adds nothing twice.
//!
//! Over HTTP the lines are not parsed here: the server parses and checks every event anyway.
//! Lines are split, an `id` is spliced into those whose top-level object has none (a scan of
//! the top level, not a parse), and batches of raw lines go out over several connections at
//! once (`--connections`; events of different batches may then be stored out of file order,
//! `--connections 1` keeps it). A line the server refuses is reported with its line number.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use auditlog_core::json::{JsonLimits, Value, parse};
use auditlog_store::{SqliteStore, Store as _, prepare_event};
use sha2::{Digest as _, Sha256};

use super::{TenantArg, progress_bar};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// NDJSON file, or `-` (default) for stdin.
    file: Option<PathBuf>,
    /// Server to send to, e.g. http://127.0.0.1:8080; without it events go into --data.
    #[arg(long, env = "AUDITLOG_URL")]
    url: Option<String>,
    /// Bearer token with the ingest scope (with --url).
    #[arg(long, env = "AUDITLOG_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Events per request or commit.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Requests in flight at once (with --url).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[command(flatten)]
    tenant: TenantArg,
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    let data = ctx.data.as_path();
    let (input, total): (Box<dyn Read>, u64) = match args.file.as_deref() {
        None => (Box::new(std::io::stdin()), 0),
        Some(p) if p == Path::new("-") => (Box::new(std::io::stdin()), 0),
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(file), size)
        }
    };
    let batch_size = args.batch.clamp(1, 100_000);
    if let Some(url) = &args.url {
        let token = args
            .token
            .clone()
            .context("--url needs --token (or AUDITLOG_TOKEN)")?;
        return send_over_http(input, total, url, token, batch_size, args.connections);
    }
    let store = SqliteStore::open(data, ctx.options())
        .with_context(|| format!("open data directory {}", data.display()))?;
    let mut sink = DirectSink {
        store,
        tenant: args.tenant.parse()?,
    };
    let bar = progress_bar(total, "ingest");
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = String::new();
    let mut batch: Vec<(usize, Value)> = Vec::with_capacity(batch_size);
    let mut line_no = 0usize;
    let mut n_events = 0u64;
    let mut n_bytes = 0u64;
    let limits = JsonLimits::default();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            break;
        }
        line_no += 1;
        n_bytes += read as u64;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let value =
            parse(text.as_bytes(), &limits).map_err(|e| anyhow::anyhow!("line {line_no}: {e}"))?;
        batch.push((line_no, with_id(value, text, line_no)));
        if batch.len() >= batch_size {
            n_events += batch.len() as u64;
            sink.send(std::mem::take(&mut batch))?;
            bar.set_position(n_bytes);
        }
    }
    if !batch.is_empty() {
        n_events += batch.len() as u64;
        sink.send(batch)?;
    }
    sink.finish()?;
    bar.finish_and_clear();
    eprintln!("auditlog: ingested {n_events} events");
    Ok(Outcome::Ok)
}

/// The id an event without one gets: a digest of its line's text and the line number (the
/// same over HTTP and into a data directory, and as earlier versions derived it).
fn derived_id(text: &str, line_no: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("ingest:{hex}:{line_no}")
}

/// Give an event without `id` a stable one, so a rerun is answered from the first receipts.
fn with_id(value: Value, text: &str, line_no: usize) -> Value {
    match value {
        Value::Object(mut fields) => {
            if !fields.iter().any(|(k, _)| k == "id") {
                fields.push(("id".into(), Value::String(derived_id(text, line_no))));
            }
            Value::Object(fields)
        }
        other => other,
    }
}

struct DirectSink {
    store: SqliteStore,
    tenant: auditlog_core::tenant::TenantId,
}

impl DirectSink {
    fn send(&mut self, batch: Vec<(usize, Value)>) -> anyhow::Result<()> {
        let now = auditlog_store::now();
        // Events read from a file have no peer: `ip` is required of them.
        let unspecified = std::net::IpAddr::from([0, 0, 0, 0]);
        let mut prepared = Vec::with_capacity(batch.len());
        for (line_no, value) in batch {
            let has_ip = matches!(&value, Value::Object(f) if f.iter().any(|(k, _)| k == "ip"));
            if !has_ip {
                bail!("line {line_no}: field ip is required when ingesting into a data directory");
            }
            prepared.push(
                prepare_event(value, now, unspecified)
                    .map_err(|e| anyhow::anyhow!("line {line_no}: {}", e.message))?,
            );
        }
        self.store
            .append_blocking(&self.tenant, prepared)
            .map_err(|e| match e {
                auditlog_store::StoreError::Conflict { index, id } => anyhow::anyhow!(
                    "id {id:?} (event {index} of this batch) was already used for a different event"
                ),
                other => other.into(),
            })?;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.store.sign_pending()?;
        self.store.close();
        Ok(())
    }
}

/// A request body is sent once it holds this much, whatever `--batch` says: the server's
/// default body limit is 10 MiB (413 beyond).
const MAX_BODY_BYTES: usize = 8 << 20;

/// One request's worth of events: the NDJSON body and the file line of each event in it.
struct Batch {
    body: Vec<u8>,
    lines: Vec<usize>,
}

/// Where a line stands on `id`, found by scanning its top level (strings skipped, nesting
/// counted), not by parsing it.
#[derive(Debug, PartialEq, Eq)]
enum IdScan {
    /// The top-level object has an `id` member: the line is sent as it is.
    Has,
    /// A top-level object without `id`; `empty` when it has no member at all.
    Missing { empty: bool },
    /// Not an object, unterminated, or a key spelt with escapes: the line is parsed.
    Unsure,
}

fn scan_top_level_id(line: &[u8]) -> IdScan {
    if line.first() != Some(&b'{') {
        return IdScan::Unsure;
    }
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                let mut escaped = false;
                while end < line.len() && line[end] != b'"' {
                    if line[end] == b'\\' {
                        escaped = true;
                        end += 1;
                    }
                    end += 1;
                }
                if end >= line.len() {
                    return IdScan::Unsure;
                }
                if depth == 1 && expect_key {
                    if escaped {
                        return IdScan::Unsure;
                    }
                    if &line[start..end] == b"id" {
                        return IdScan::Has;
                    }
                    expect_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = true;
                }
            }
            b'}' | b']' => match depth.checked_sub(1) {
                Some(0) => {
                    let empty = line[1..].trim_ascii_start().first() == Some(&b'}');
                    return IdScan::Missing { empty };
                }
                Some(d) => depth = d,
                None => return IdScan::Unsure,
            },
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    IdScan::Unsure
}

/// Appends one line to a request body, with an `id` spliced in when its object has none.
fn push_line(body: &mut Vec<u8>, text: &[u8], line_no: usize, limits: &JsonLimits) {
    match scan_top_level_id(text) {
        IdScan::Has => body.extend_from_slice(text),
        IdScan::Missing { empty } => {
            let id = derived_id(&String::from_utf8_lossy(text), line_no);
            body.extend_from_slice(b"{\"id\":\"");
            body.extend_from_slice(id.as_bytes());
            body.extend_from_slice(if empty { b"\"" } else { b"\"," });
            body.extend_from_slice(&text[1..]);
        }
        // Rare: let the strict parser decide; what it refuses goes out as it is and the
        // server names the line's problem.
        IdScan::Unsure => match std::str::from_utf8(text)
            .ok()
            .and_then(|s| parse(s.as_bytes(), limits).ok().map(|v| (s, v)))
        {
            Some((s, value)) => with_id(value, s, line_no).write_canonical(body),
            None => body.extend_from_slice(text),
        },
    }
    body.push(b'\n');
}

fn send_over_http(
    input: Box<dyn Read>,
    total: u64,
    url: &str,
    token: String,
    batch_size: usize,
    connections: usize,
) -> anyhow::Result<Outcome> {
    use std::io::BufRead as _;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, mpsc};

    let connections = connections.clamp(1, 64);
    let sender = Arc::new(HttpSender::new(url, token, connections));
    let (queue, batches) = mpsc::sync_channel::<Batch>(connections * 2);
    let batches = Arc::new(Mutex::new(batches));
    let stop = Arc::new(AtomicBool::new(false));
    let failure: Arc<Mutex<Option<anyhow::Error>>> = Arc::new(Mutex::new(None));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (sender, batches, stop, failure, acknowledged) = (
                sender.clone(),
                batches.clone(),
                stop.clone(),
                failure.clone(),
                acknowledged.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let next = batches.lock().map(|rx| rx.recv());
                    let Ok(Ok(batch)) = next else { return };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match sender.send(&batch) {
                        Ok(()) => {
                            acknowledged.fetch_add(batch.lines.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = failure.lock() {
                                slot.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            })
        })
        .collect();

    let bar = progress_bar(total, "ingest");
    let limits = JsonLimits::default();
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    let mut line_no = 0usize;
    let mut n_bytes = 0u64;
    let new_batch = || Batch {
        body: Vec::with_capacity(batch_size * 1024),
        lines: Vec::with_capacity(batch_size),
    };
    let mut batch = new_batch();
    let read_result = loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break Ok(()),
            Ok(read) => n_bytes += read as u64,
            Err(e) => break Err(anyhow::Error::from(e).context("read the input")),
        }
        line_no += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        push_line(&mut batch.body, text, line_no, &limits);
        batch.lines.push(line_no);
        if batch.lines.len() >= batch_size || batch.body.len() >= MAX_BODY_BYTES {
            if stop.load(Ordering::Relaxed)
                || queue
                    .send(std::mem::replace(&mut batch, new_batch()))
                    .is_err()
            {
                break Ok(());
            }
            bar.set_position(n_bytes);
        }
    };
    if !batch.lines.is_empty() && !stop.load(Ordering::Relaxed) {
        let _ = queue.send(batch);
    }
    drop(queue);
    for worker in workers {
        let _ = worker.join();
    }
    bar.finish_and_clear();
    let failed = failure.lock().ok().and_then(|mut slot| slot.take());
    let n_events = acknowledged.load(Ordering::Relaxed);
    if let Some(e) = failed {
        return Err(e.context(format!(
            "{n_events} events were stored before the error; a rerun adds nothing twice"
        )));
    }
    read_result?;
    eprintln!("auditlog: ingested {n_events} events");
    Ok(Outcome::Ok)
}

struct HttpSender {
    agent: ureq::Agent,
    url: String,
    authorization: String,
}

impl HttpSender {
    fn new(url: &str, token: String, connections: usize) -> HttpSender {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(connections)
            .build()
            .into();
        HttpSender {
            agent,
            url: format!("{}/api/v1/events", url.trim_end_matches('/')),
            authorization: format!("Bearer {token}"),
        }
    }

    /// Sends one batch until it is acknowledged (201); retries what may pass (5xx, 429, a
    /// lost connection) with backoff: events carry ids, so a resent batch adds nothing twice.
    fn send(&self, batch: &Batch) -> anyhow::Result<()> {
        let first_line = batch.lines.first().copied().unwrap_or(0);
        let mut delay = Duration::from_millis(200);
        const ATTEMPTS: u32 = 8;
        for attempt in 1..=ATTEMPTS {
            let response = self
                .agent
                .post(&self.url)
                .header("Authorization", &self.authorization)
                .header("Content-Type", "application/x-ndjson")
                .send(&batch.body[..]);
            match response {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_string()
                        .unwrap_or_default();
                    if status == 201 {
                        return Ok(());
                    }
                    if (status >= 500 || status == 429) && attempt < ATTEMPTS {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(10));
                        continue;
                    }
                    let detail: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    let message = detail["error"]["message"].as_str().unwrap_or(&text);
                    let line = detail["error"]["index"]
                        .as_u64()
                        .and_then(|i| batch.lines.get(i as usize))
                        .map(|n| format!("line {n}: "))
                        .unwrap_or_default();
                    bail!(
                        "server answered {status} for the batch from line {first_line}: {line}{message}"
                    );
                }
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("auditlog: send failed ({e}); retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e).context(format!("send to {}", self.url)),
            }
        }
        bail!("gave up sending the batch from line {first_line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_scan_finds_id_only_as_a_top_level_key() {
        assert_eq!(scan_top_level_id(br#"{"user":"a","id":"x"}"#), IdScan::Has);
        assert_eq!(scan_top_level_id(br#"{ "id" : "x"}"#), IdScan::Has);
        let missing = IdScan::Missing { empty: false };
        assert_eq!(scan_top_level_id(br#"{"user":"id","a":{"id":1}}"#), missing);
        assert_eq!(
            scan_top_level_id(br#"{"a":["id",{"id":2}],"b":"\"id\""}"#),
            missing
        );
        assert_eq!(
            scan_top_level_id(br#"{"message":"say \"id\": 1"}"#),
            missing
        );
        assert_eq!(scan_top_level_id(b"{ }"), IdScan::Missing { empty: true });
        assert_eq!(scan_top_level_id(br#"{"\u0069d":"x"}"#), IdScan::Unsure);
        assert_eq!(scan_top_level_id(br#"[{"id":"x"}]"#), IdScan::Unsure);
        assert_eq!(scan_top_level_id(br#"{"user":"a"#), IdScan::Unsure);
    }

    #[test]
    fn a_spliced_id_is_the_one_the_parsed_path_derives() {
        let limits = JsonLimits::default();
        for text in [
            r#"{"user":"a","ip":"10.0.0.1"}"#,
            "{}",
            r#"{"\u0075ser":"b"}"#,
        ] {
            let mut body = Vec::new();
            push_line(&mut body, text.as_bytes(), 7, &limits);
            let spliced = parse(body.trim_ascii_end(), &limits).expect("valid JSON");
            let parsed = with_id(parse(text.as_bytes(), &limits).expect("json"), text, 7);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            spliced.write_canonical(&mut a);
            parsed.write_canonical(&mut b);
            assert_eq!(String::from_utf8(a), String::from_utf8(b), "{text}");
        }
    }
}
