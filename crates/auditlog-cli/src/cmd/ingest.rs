//! `auditlog ingest [FILE|-]`: NDJSON events into a log, over HTTP (`--url`) or straight into
//! `--data`. Retry-safe: an event without `id` gets one derived from its line number and
//! content, so a rerun of the same file adds nothing twice.

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
    let mut sink: Box<dyn Sink> = match &args.url {
        Some(url) => {
            let token = args
                .token
                .clone()
                .context("--url needs --token (or AUDITLOG_TOKEN)")?;
            Box::new(HttpSink::new(url, token))
        }
        None => {
            let store = SqliteStore::open(data, ctx.options())
                .with_context(|| format!("open data directory {}", data.display()))?;
            Box::new(DirectSink {
                store,
                tenant: args.tenant.parse()?,
            })
        }
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

/// Give an event without `id` a stable one, so a rerun is answered from the first receipts.
fn with_id(value: Value, text: &str, line_no: usize) -> Value {
    match value {
        Value::Object(mut fields) => {
            if !fields.iter().any(|(k, _)| k == "id") {
                let digest = Sha256::digest(text.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                fields.push((
                    "id".into(),
                    Value::String(format!("ingest:{hex}:{line_no}")),
                ));
            }
            Value::Object(fields)
        }
        other => other,
    }
}

trait Sink {
    fn send(&mut self, batch: Vec<(usize, Value)>) -> anyhow::Result<()>;
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

struct DirectSink {
    store: SqliteStore,
    tenant: auditlog_core::tenant::TenantId,
}

impl Sink for DirectSink {
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

struct HttpSink {
    agent: ureq::Agent,
    url: String,
    authorization: String,
}

impl HttpSink {
    fn new(url: &str, token: String) -> HttpSink {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        HttpSink {
            agent,
            url: format!("{}/api/v1/events", url.trim_end_matches('/')),
            authorization: format!("Bearer {token}"),
        }
    }
}

impl Sink for HttpSink {
    fn send(&mut self, batch: Vec<(usize, Value)>) -> anyhow::Result<()> {
        let first_line = batch.first().map_or(0, |(n, _)| *n);
        let mut body = Vec::with_capacity(batch.len() * 800);
        for (_, value) in &batch {
            value.write_canonical(&mut body);
            body.push(b'\n');
        }
        // Events carry ids, so resending a batch after a lost answer adds nothing twice.
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=8 {
            let response = self
                .agent
                .post(&self.url)
                .header("Authorization", &self.authorization)
                .header("Content-Type", "application/x-ndjson")
                .send(&body[..]);
            match response {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status == 201 {
                        return Ok(());
                    }
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    if status >= 500 && attempt < 8 {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(10));
                        continue;
                    }
                    let detail: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    let message = detail["error"]["message"].as_str().unwrap_or(&text);
                    let line = detail["error"]["index"]
                        .as_u64()
                        .and_then(|i| batch.get(i as usize))
                        .map(|(n, _)| format!("line {n}: "))
                        .unwrap_or_default();
                    bail!(
                        "server answered {status} for the batch from line {first_line}: {line}{message}"
                    );
                }
                Err(e) if attempt < 8 => {
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
