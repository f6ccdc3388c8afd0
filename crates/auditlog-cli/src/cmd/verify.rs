//! `auditlog verify`: recompute the tenant's log from storage; exit 1 on any finding.

use anyhow::Context as _;
use auditlog_store::Store as _;
use auditlog_store::verify::kind_in_words;
use serde_json::json;

use super::{Format, TenantArg, progress_bar};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    tenant: TenantArg,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Check an NDJSON export offline instead of the data directory (needs --key).
    #[arg(long, requires = "key", conflicts_with = "anchors")]
    bundle: Option<std::path::PathBuf>,
    /// Also check the log against every checkpoint anchored in this directory (`serve
    /// --anchor-dir`): a log cut short or rebuilt since is reported with the anchored size.
    #[arg(long)]
    anchors: Option<std::path::PathBuf>,
    /// The log's verifier key (`auditlog key show`, `GET /api/v1/public-key`), or a file
    /// holding it. Needed with --bundle; with --anchors it replaces the key in the data
    /// directory (a key known from elsewhere also catches a log re-keyed and rebuilt).
    #[arg(long)]
    key: Option<String>,
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    if let (Some(bundle), Some(key)) = (&args.bundle, &args.key) {
        return run_bundle(bundle, key, args.format);
    }
    if args.key.is_some() && args.anchors.is_none() {
        anyhow::bail!("--key goes with --bundle or --anchors");
    }
    // A one-shot process may read through a memory map (see `StoreOptions::verify_mmap`).
    let store = auditlog_store::SqliteStore::open_shared(
        &ctx.data,
        auditlog_store::StoreOptions {
            verify_mmap: true,
            ..ctx.options()
        },
    )
    .with_context(|| format!("open data directory {}", ctx.data.display()))?;
    let tenant = args.tenant.parse()?;
    let bar = progress_bar(0, "verify");
    let started = std::time::Instant::now();
    let report = store.verify(&tenant, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    // The tenant's trail log (auditlog's records of its own use) is checked with it.
    let trail = store.verify(&tenant.trail(), &|_, _| {})?;
    bar.finish_and_clear();
    let (anchors_checked, anchor_findings) = match &args.anchors {
        Some(dir) => {
            let (checked, findings) = check_anchors(&store, &tenant, dir, args.key.as_deref())?;
            (Some(checked), findings)
        }
        None => (None, Vec::new()),
    };
    let clean = report.is_clean() && trail.is_clean() && anchor_findings.is_empty();
    let findings = report.findings.len() as u64
        + report.more_findings
        + trail.findings.len() as u64
        + trail.more_findings
        + anchor_findings.len() as u64;
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json => {
            for finding in &anchor_findings {
                super::out(
                    json!({"kind": finding.kind, "anchored_size": finding.size, "anchor": finding.file, "detail": finding.detail}),
                )?;
            }
            for finding in &report.findings {
                super::out(format!(
                    "{}",
                    json!({"kind": finding.kind.as_str(), "seq": finding.seq, "detail": finding.detail})
                ))?;
            }
            for finding in &trail.findings {
                super::out(format!(
                    "{}",
                    json!({"log": "trail", "kind": finding.kind.as_str(), "seq": finding.seq, "detail": finding.detail})
                ))?;
            }
            super::out(format!(
                "{}",
                json!({
                    "tenant": report.tenant,
                    "ok": clean,
                    "tree_size": report.tree_size,
                    "events_checked": report.events_checked,
                    "checkpoints_checked": report.checkpoints_checked,
                    "latest_checkpoint": report.latest_checkpoint,
                    "findings": findings,
                    "anchors_checked": anchors_checked,
                    "trail": {"tree_size": trail.tree_size, "findings": trail.findings.len() as u64 + trail.more_findings},
                    "seconds": seconds,
                })
            ))?;
        }
        Format::Text => {
            for finding in &anchor_findings {
                super::out(format!(
                    "{} at anchored size {} ({}): {}",
                    kind_in_words(finding.kind),
                    finding.size,
                    finding.file,
                    finding.detail
                ))?;
            }
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
            for finding in &trail.findings {
                match finding.seq {
                    Some(seq) => super::out(format!(
                        "trail log: {} seq {seq}: {}",
                        finding.kind, finding.detail
                    ))?,
                    None => super::out(format!("trail log: {}: {}", finding.kind, finding.detail))?,
                }
            }
            let verdict = if clean { "ok" } else { "FAILED" };
            super::out(format!(
                "{verdict}: tenant {}, {} events, {} checkpoints (latest {}), {} findings, {:.2}s",
                report.tenant,
                report.events_checked,
                report.checkpoints_checked,
                report
                    .latest_checkpoint
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                findings,
                seconds
            ))?;
        }
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Found })
}

/// A disagreement between the log and an anchored checkpoint.
struct AnchorFinding {
    kind: &'static str,
    size: u64,
    file: String,
    detail: String,
}

/// Checks the live log against every anchored checkpoint of the tenant
/// (`<dir>/<tenant>/*.checkpoint`): signed with the key, no larger than the log, and the
/// log's tree at that size is the anchored one (consistency proof from it to the log's size).
fn check_anchors(
    store: &auditlog_store::SqliteStore,
    tenant: &auditlog_core::tenant::TenantId,
    dir: &std::path::Path,
    key: Option<&str>,
) -> anyhow::Result<(usize, Vec<AnchorFinding>)> {
    use auditlog_ledger::merkle::verify_consistency;
    use auditlog_ledger::note::{NoteVerifier, open_checkpoint};
    let verifier = match key {
        Some(key) => super::bundle::read_key(key)?,
        None => NoteVerifier::parse(&store.verifier_key(tenant)?)
            .map_err(|e| anyhow::anyhow!("the log's key: {e}"))?,
    };
    let tenant_dir = dir.join(tenant.as_str());
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&tenant_dir)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", tenant_dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "checkpoint"))
        .collect();
    files.sort();
    let tree_size = store.tree_size(tenant)?;
    let current_root = if tree_size > 0 {
        Some(store.root_at(tenant, tree_size)?)
    } else {
        None
    };
    let mut findings = Vec::new();
    let checked = files.len();
    for path in files {
        let file = path.display().to_string();
        let note = std::fs::read_to_string(&path)?;
        let checkpoint = match open_checkpoint(&verifier, &note) {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                findings.push(AnchorFinding {
                    kind: "bad_signature",
                    size: 0,
                    file,
                    detail: format!("the anchored checkpoint does not verify with the key: {e}"),
                });
                continue;
            }
        };
        let size = checkpoint.size;
        if size > tree_size {
            findings.push(AnchorFinding {
                kind: "truncated",
                size,
                file,
                detail: format!(
                    "a checkpoint of {size} events was anchored, the log now has {tree_size}"
                ),
            });
            continue;
        }
        let Some(current_root) = current_root else {
            continue;
        };
        let consistent = store
            .consistency_proof(tenant, size, tree_size)
            .ok()
            .is_some_and(|proof| {
                verify_consistency(size, tree_size, &checkpoint.root, &current_root, &proof).is_ok()
            });
        if !consistent || store.root_at(tenant, size)? != checkpoint.root {
            findings.push(AnchorFinding {
                kind: "altered",
                size,
                file,
                detail: format!(
                    "the log's first {size} events are not the ones anchored (rewritten or rebuilt)"
                ),
            });
        }
    }
    Ok((checked, findings))
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
                "query": report.query,
                "findings": report.problems.len(),
            }))?;
        }
        Format::Text => {
            for problem in &report.problems {
                match problem.seq {
                    Some(seq) => super::out(format!(
                        "{} line {} (seq {seq}): {}",
                        kind_in_words(problem.kind),
                        problem.line,
                        problem.detail
                    ))?,
                    None => super::out(format!(
                        "{} line {}: {}",
                        kind_in_words(problem.kind),
                        problem.line,
                        problem.detail
                    ))?,
                }
            }
            // What the export claims to be: every match of this query in that tree. A
            // filtered export verifies too, so the reader must see which filter.
            let query = match report.query.as_deref() {
                Some("") => "every event".to_owned(),
                Some(q) => format!("the events matching {}", json!(q)),
                None => "an unknown query".to_owned(),
            };
            super::out(format!(
                "{}: {} events against the signed tree of size {} ({query}), {} findings",
                if clean { "ok" } else { "FAILED" },
                report.lines,
                report.tree_size,
                report.problems.len()
            ))?;
        }
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Found })
}
