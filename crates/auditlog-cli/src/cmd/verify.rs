//! `auditlog verify`: recompute the tenant's log from storage; exit 1 on any finding.

use auditlog_store::Store as _;
use serde_json::json;

use super::{Format, TenantArg, open_shared, progress_bar};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    tenant: TenantArg,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Check an NDJSON export offline instead of the data directory (needs --key).
    #[arg(long, requires = "key")]
    bundle: Option<std::path::PathBuf>,
    /// The log's verifier key (`auditlog key show`, `GET /api/v1/public-key`), or a file
    /// holding it.
    #[arg(long, requires = "bundle")]
    key: Option<String>,
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    if let (Some(bundle), Some(key)) = (&args.bundle, &args.key) {
        return run_bundle(bundle, key, args.format);
    }
    let store = open_shared(ctx)?;
    let tenant = args.tenant.parse()?;
    let bar = progress_bar(0, "verify");
    let started = std::time::Instant::now();
    let report = store.verify(&tenant, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json => {
            for finding in &report.findings {
                super::out(format!(
                    "{}",
                    json!({"kind": finding.kind.as_str(), "seq": finding.seq, "detail": finding.detail})
                ))?;
            }
            super::out(format!(
                "{}",
                json!({
                    "tenant": report.tenant,
                    "ok": report.is_clean(),
                    "tree_size": report.tree_size,
                    "events_checked": report.events_checked,
                    "checkpoints_checked": report.checkpoints_checked,
                    "latest_checkpoint": report.latest_checkpoint,
                    "findings": report.findings.len() as u64 + report.more_findings,
                    "seconds": seconds,
                })
            ))?;
        }
        Format::Text => {
            for finding in &report.findings {
                match finding.seq {
                    Some(seq) => {
                        super::out(format!("{} seq {seq}: {}", finding.kind, finding.detail))?
                    }
                    None => super::out(format!("{}: {}", finding.kind, finding.detail))?,
                }
            }
            if report.more_findings > 0 {
                super::out(format!("… and {} more findings", report.more_findings))?;
            }
            let verdict = if report.is_clean() { "ok" } else { "FAILED" };
            super::out(format!(
                "{verdict}: tenant {}, {} events, {} checkpoints (latest {}), {} findings, {:.2}s",
                report.tenant,
                report.events_checked,
                report.checkpoints_checked,
                report
                    .latest_checkpoint
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                report.findings.len() as u64 + report.more_findings,
                seconds
            ))?;
        }
    }
    Ok(if report.is_clean() {
        Outcome::Ok
    } else {
        Outcome::Found
    })
}

fn run_bundle(bundle: &std::path::Path, key: &str, format: Format) -> anyhow::Result<Outcome> {
    let verifier = super::bundle::read_key(key)?;
    let report = super::bundle::check(bundle, &verifier)?;
    let clean = report.problems.is_empty();
    match format {
        Format::Json => {
            for problem in &report.problems {
                super::out(json!({
                    "kind": problem.kind,
                    "line": problem.line,
                    "seq": problem.seq,
                    "detail": problem.detail,
                }))?;
            }
            super::out(json!({
                "bundle": bundle.display().to_string(),
                "ok": clean,
                "lines": report.lines,
                "tree_size": report.tree_size,
                "findings": report.problems.len(),
            }))?;
        }
        Format::Text => {
            for problem in &report.problems {
                match problem.seq {
                    Some(seq) => super::out(format!(
                        "{} line {} (seq {seq}): {}",
                        problem.kind, problem.line, problem.detail
                    ))?,
                    None => super::out(format!(
                        "{} line {}: {}",
                        problem.kind, problem.line, problem.detail
                    ))?,
                }
            }
            super::out(format!(
                "{}: {} events against the signed tree of size {}, {} findings",
                if clean { "ok" } else { "FAILED" },
                report.lines,
                report.tree_size,
                report.problems.len()
            ))?;
        }
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Found })
}
