//! `auditlog export [QUERY] [--format csv|ndjson] [--output FILE]`: every matching event, over
//! HTTP (`--url`, `--token`) or from the data directory, with a progress bar on a terminal.
//! The NDJSON form carries each event's inclusion proof and ends with the signed checkpoint
//! and export note, so `auditlog verify --bundle FILE --key KEY` checks it offline.

use std::io::{Read as _, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auditlog_search::{SearchOptions, SearchRequest, SortField, SortOrder};
use auditlog_server::{Export, ExportFormat, pin_checkpoint};

use super::{Ctx, TenantArg};
use crate::Outcome;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// One event per line with its proof; the last line is the signed checkpoint.
    #[default]
    Ndjson,
    /// RFC 4180 CSV, formula-like cells neutralised.
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// Only events matching this query (SPEC §4); all by default.
    #[arg(default_value = "", allow_hyphen_values = true)]
    query: String,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Column to sort by.
    #[arg(long, default_value = "seq")]
    sort: String,
    /// asc or desc.
    #[arg(long, default_value = "asc")]
    order: String,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    /// Server to export from; without it the data directory is read (no server running).
    #[arg(long, env = "AUDITLOG_URL")]
    url: Option<String>,
    /// Bearer token with the read scope (with --url).
    #[arg(long, env = "AUDITLOG_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    tenant: TenantArg,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Outcome> {
    // A file is written under a temporary name and renamed when whole, so a failed export
    // never leaves (or empties) a file that looks like one.
    let partial = args
        .output
        .as_ref()
        .map(|path| path.with_extension(format!("partial{}", std::process::id())));
    let mut out: Box<dyn Write> = match &partial {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let bar = super::progress_bar(0, "export");
    let result = match &args.url {
        Some(url) => match args.token.as_deref() {
            Some(token) => export_http(url, token, &args, &mut out, &bar),
            None => Err(anyhow::anyhow!("--url needs --token (or AUDITLOG_TOKEN)")),
        },
        None => export_local(ctx, &args, &mut out, &bar),
    }
    .and_then(|lines| Ok(out.flush().map(|()| lines)?));
    drop(out);
    bar.finish_and_clear();
    let lines = match (result, &partial, &args.output) {
        (Ok(lines), Some(partial), Some(path)) => {
            std::fs::rename(partial, path)
                .with_context(|| format!("rename to {}", path.display()))?;
            lines
        }
        (Ok(lines), _, _) => lines,
        (Err(e), partial, _) => {
            if let Some(partial) = partial {
                let _ = std::fs::remove_file(partial);
            }
            return Err(e);
        }
    };
    if let Some(path) = &args.output {
        eprintln!("auditlog: exported {lines} events to {}", path.display());
    }
    Ok(Outcome::Ok)
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
    }
}

/// Counts newlines as they pass, to move the progress bar.
fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn export_http(
    url: &str,
    token: &str,
    args: &Args,
    out: &mut dyn Write,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .build()
        .into();
    let base = url.trim_end_matches('/');
    let authorization = format!("Bearer {token}");
    // The total for the progress bar.
    if let Ok(mut response) = agent
        .get(format!("{base}/api/v1/events"))
        .header("Authorization", &authorization)
        .query("q", &args.query)
        .query("limit", "1")
        .call()
        && let Ok(text) = response.body_mut().read_to_string()
        && let Ok(page) = serde_json::from_str::<serde_json::Value>(&text)
    {
        bar.set_length(page["total"].as_u64().unwrap_or(0));
    }
    let response = agent
        .get(format!("{base}/api/v1/export"))
        .header("Authorization", &authorization)
        .query("q", &args.query)
        .query("format", format_name(args.format))
        .query("sort", &args.sort)
        .query("order", &args.order)
        .call()
        .with_context(|| format!("GET {base}/api/v1/export"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body.read_to_string().unwrap_or_default();
        let detail: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        anyhow::bail!(
            "server answered {status}: {}",
            detail["error"]["message"].as_str().unwrap_or(&text)
        );
    }
    let mut reader = body.with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut lines = 0;
    loop {
        let n = reader
            .read(&mut buffer)
            .context("the export broke off (the server reported an error)")?;
        if n == 0 {
            break;
        }
        lines += count_lines(&buffer[..n]);
        bar.set_position(lines);
        out.write_all(&buffer[..n])?;
    }
    Ok(lines)
}

fn export_local(
    ctx: &Ctx,
    args: &Args,
    out: &mut dyn Write,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let query = super::search::parse_query(&args.query)?;
    let sort = SortField::from_name(&args.sort).context("unknown --sort column")?;
    let order = SortOrder::from_name(&args.order).context("--order must be asc or desc")?;
    let tenant = super::search::log_of(args.tenant.parse()?, &query);
    let (store, engine) = super::search::open_local(
        ctx,
        SearchOptions {
            visible_timeout: Duration::from_secs(3600),
            ..SearchOptions::default()
        },
    )?;
    let engine = Arc::new(engine);
    let (size, checkpoint) = pin_checkpoint(store.as_ref(), &tenant)?;
    bar.set_length(engine.count(&tenant, &query, auditlog_store::now())?);
    let mut export = Export {
        store,
        engine,
        tenant,
        request: SearchRequest {
            query,
            sort,
            order,
            limit: auditlog_server::SEARCH_PAGE,
            cursor: None,
        },
        query_text: args.query.clone(),
        format: match args.format {
            Format::Csv => ExportFormat::Csv,
            Format::Ndjson => ExportFormat::Ndjson,
        },
        size,
        checkpoint,
    };
    let mut written = 0;
    let lines = export
        .write(&mut |chunk| {
            written += count_lines(&chunk);
            bar.set_position(written);
            out.write_all(&chunk).map_err(|e| e.to_string())
        })
        .map_err(anyhow::Error::msg)?;
    Ok(lines)
}
