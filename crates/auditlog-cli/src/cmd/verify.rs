//! `auditlog verify`: recompute logs from storage; exit 1 on any finding.
//!
//! Without `--tenant` every tenant of the data directory is checked, each with its trail log
//! (SPEC §5), and every finding names its tenant and log; a trail log whose tenant is gone is
//! checked on its own. `--tenant T` narrows it to one tenant (and its trail log). The store's
//! `verify` does the recomputing; this file only chooses what to check and words the result.

use anyhow::Context as _;
use auditlog_core::tenant::TenantId;
use auditlog_store::verify::kind_in_words;
use auditlog_store::{Store as _, VerifyReport};
use serde_json::json;

use super::{Format, progress_bar};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Check only this tenant (and its trail log); default: every tenant.
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Check an NDJSON export offline instead of the data directory (needs --key).
    #[arg(long, requires = "key", conflicts_with = "anchors")]
    bundle: Option<std::path::PathBuf>,
    /// Also check the logs against every checkpoint anchored in this directory (`serve
    /// --anchor-dir`, one subdirectory per tenant): a log cut short or rebuilt since, or a
    /// tenant gone from the data directory, is reported with the anchored size.
    #[arg(long)]
    anchors: Option<std::path::PathBuf>,
    /// The log's verifier key (`auditlog key show`, `GET /api/v1/public-key`), or a file
    /// holding it. Needed with --bundle; with --anchors it replaces the key in the data
    /// directory (a key known from elsewhere also catches a log re-keyed and rebuilt), and
    /// names one tenant's key, so it needs --tenant when the directory holds several.
    #[arg(long)]
    key: Option<String>,
}

/// One tenant's result: its event log, its trail log and its anchors.
struct TenantResult {
    tenant: TenantId,
    /// None for a trail log whose tenant is not in the data directory.
    events: Option<VerifyReport>,
    trail: VerifyReport,
    anchors_checked: Option<usize>,
    anchor_findings: Vec<AnchorFinding>,
}

impl TenantResult {
    fn n_findings(&self) -> u64 {
        let count = |r: &VerifyReport| r.findings.len() as u64 + r.more_findings;
        self.events.as_ref().map_or(0, count)
            + count(&self.trail)
            + self.anchor_findings.len() as u64
    }
}

/// The tenants to check: the one named, or every tenant of the directory, and separately
/// the trail logs stored without their tenant (each is still a signed log to check).
fn chosen(
    store: &auditlog_store::SqliteStore,
    tenant: Option<&str>,
) -> anyhow::Result<(Vec<TenantId>, Vec<TenantId>)> {
    if let Some(name) = tenant {
        let tenant = TenantId::parse(name)?;
        if !store.tenant_exists(&tenant)? && !store.tenant_exists(&tenant.trail())? {
            anyhow::bail!("tenant {tenant} not found in the data directory");
        }
        return Ok((vec![tenant], Vec::new()));
    }
    let stored = store.tenants()?;
    let tenants: Vec<TenantId> = stored.iter().filter(|t| !t.is_trail()).cloned().collect();
    let orphans = stored
        .into_iter()
        .filter(|t| t.is_trail() && !tenants.iter().any(|tenant| tenant.trail() == *t))
        .collect();
    Ok((tenants, orphans))
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
    let (tenants, orphan_trails) = chosen(&store, args.tenant.as_deref())?;
    if args.key.is_some() && tenants.len() > 1 {
        anyhow::bail!(
            "--key is one tenant's key and the data directory holds {} tenants: add --tenant",
            tenants.len()
        );
    }
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    for tenant in &tenants {
        let bar = progress_bar(0, &format!("verify {tenant}"));
        let events = store.verify(tenant, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        // The tenant's trail log (auditlog's records of its own use) is checked with it.
        let trail = store.verify(&tenant.trail(), &|_, _| {})?;
        bar.finish_and_clear();
        let (anchors_checked, anchor_findings) = match &args.anchors {
            Some(dir) => {
                let tenant_dir = dir.join(tenant.as_str());
                // With every tenant, a tenant that was never anchored has nothing to compare;
                // a tenant named on purpose must have anchors.
                if args.tenant.is_none() && !tenant_dir.exists() {
                    (Some(0), Vec::new())
                } else {
                    let (checked, findings) =
                        check_anchors(&store, tenant, &tenant_dir, args.key.as_deref())?;
                    (Some(checked), findings)
                }
            }
            None => (None, Vec::new()),
        };
        results.push(TenantResult {
            tenant: tenant.clone(),
            events: Some(events),
            trail,
            anchors_checked,
            anchor_findings,
        });
    }
    for trail_log in &orphan_trails {
        let trail = store.verify(trail_log, &|_, _| {})?;
        results.push(TenantResult {
            tenant: trail_log.clone(),
            events: None,
            trail,
            anchors_checked: None,
            anchor_findings: Vec::new(),
        });
    }
    // Anchored tenants the data directory no longer holds: the whole log is gone.
    let mut vanished = Vec::new();
    if let (Some(dir), None) = (&args.anchors, &args.tenant) {
        vanished = vanished_tenants(dir, &tenants)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let totals = Totals::of(&results, &vanished, seconds);
    match args.format {
        Format::Json => print_json(&results, &vanished, &totals)?,
        Format::Text => print_text(&results, &vanished, &totals)?,
    }
    Ok(if totals.clean() {
        Outcome::Ok
    } else {
        Outcome::Found
    })
}

/// What the last line of a run sums up, counted once for either output format.
struct Totals {
    tenants: usize,
    events: u64,
    findings: u64,
    anchors_checked: Option<usize>,
    seconds: f64,
}

impl Totals {
    fn of(results: &[TenantResult], vanished: &[AnchorFinding], seconds: f64) -> Totals {
        Totals {
            tenants: results.iter().filter(|r| r.events.is_some()).count(),
            events: results
                .iter()
                .filter_map(|r| r.events.as_ref())
                .map(|events| events.events_checked)
                .sum(),
            findings: results.iter().map(TenantResult::n_findings).sum::<u64>()
                + vanished.len() as u64,
            anchors_checked: results
                .iter()
                .filter_map(|r| r.anchors_checked)
                .reduce(|a, b| a + b),
            seconds,
        }
    }

    fn clean(&self) -> bool {
        self.findings == 0
    }
}

/// Subdirectories of the anchor directory that name a tenant the data directory lacks, with
/// the largest size anchored for each.
fn vanished_tenants(
    dir: &std::path::Path,
    tenants: &[TenantId],
) -> anyhow::Result<Vec<AnchorFinding>> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("read {}: {e}", dir.display()))?;
    let mut names: Vec<(String, std::path::PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .collect();
    names.sort();
    for (name, path) in names {
        let Ok(tenant) = TenantId::parse(&name) else {
            continue;
        };
        if tenants.contains(&tenant) {
            continue;
        }
        let mut largest: Option<u64> = None;
        for entry in std::fs::read_dir(&path)?.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "checkpoint") {
                continue;
            }
            let note = std::fs::read_to_string(&path)?;
            // The size is the note's second line (C2SP tlog-checkpoint); the key is gone with
            // the tenant, so the signature cannot be checked here.
            if let Some(size) = note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) {
                largest = Some(largest.map_or(size, |l| l.max(size)));
            }
        }
        if let Some(size) = largest {
            found.push(AnchorFinding {
                tenant: Some(tenant),
                kind: "truncated",
                size,
                file: path.display().to_string(),
                detail: format!(
                    "checkpoints of up to {size} events were anchored for tenant {name}, which the data directory no longer holds"
                ),
            });
        }
    }
    Ok(found)
}

fn print_json(
    results: &[TenantResult],
    vanished: &[AnchorFinding],
    totals: &Totals,
) -> anyhow::Result<()> {
    for result in results {
        let tenant = result.tenant.as_str();
        for finding in &result.anchor_findings {
            super::out(
                json!({"tenant": tenant, "kind": finding.kind, "anchored_size": finding.size, "anchor": finding.file, "detail": finding.detail}),
            )?;
        }
        if let Some(events) = &result.events {
            for finding in &events.findings {
                super::out(
                    json!({"tenant": tenant, "log": "events", "kind": finding.kind.as_str(), "seq": finding.seq, "detail": finding.detail}),
                )?;
            }
        }
        for finding in &result.trail.findings {
            super::out(
                json!({"tenant": tenant, "log": "trail", "kind": finding.kind.as_str(), "seq": finding.seq, "detail": finding.detail}),
            )?;
        }
        let n_findings = result.n_findings();
        let trail = json!({"tree_size": result.trail.tree_size, "findings": result.trail.findings.len() as u64 + result.trail.more_findings});
        let line = match &result.events {
            Some(events) => json!({
                    "tenant": tenant,
                    "ok": n_findings == 0,
                    "tree_size": events.tree_size,
                    "events_checked": events.events_checked,
                    "checkpoints_checked": events.checkpoints_checked,
                    "latest_checkpoint": events.latest_checkpoint,
                    "findings": n_findings,
                "anchors_checked": result.anchors_checked,
                "trail": trail,
            }),
            None => json!({
                "tenant": tenant,
                "ok": n_findings == 0,
                "log": "trail",
                "tenant_missing": true,
                "trail": trail,
                "findings": n_findings,
            }),
        };
        super::out(line)?;
    }
    for finding in vanished {
        super::out(
            json!({"tenant": finding.tenant.as_ref().map(|t| t.as_str()), "kind": finding.kind, "anchored_size": finding.size, "anchor": finding.file, "detail": finding.detail}),
        )?;
    }
    // The last line sums up the whole run (scripts read it).
    super::out(json!({
        "ok": totals.clean(),
        "tenants": totals.tenants,
        "events_checked": totals.events,
        "findings": totals.findings,
        "anchors_checked": totals.anchors_checked,
        "seconds": totals.seconds,
    }))
}

fn print_text(
    results: &[TenantResult],
    vanished: &[AnchorFinding],
    totals: &Totals,
) -> anyhow::Result<()> {
    for result in results {
        let tenant = &result.tenant;
        for finding in &result.anchor_findings {
            super::out(format!(
                "{} at anchored size {} (tenant {tenant}, {}): {}",
                kind_in_words(finding.kind),
                finding.size,
                finding.file,
                finding.detail
            ))?;
        }
        let logs = [
            (result.events.as_ref(), format!("tenant {tenant}")),
            (Some(&result.trail), format!("tenant {tenant}, trail log")),
        ];
        for (report, whose) in logs {
            let Some(report) = report else { continue };
            for finding in &report.findings {
                match finding.seq {
                    Some(seq) => super::out(format!(
                        "{} seq {seq} ({whose}): {}",
                        finding.kind, finding.detail
                    ))?,
                    None => super::out(format!("{} ({whose}): {}", finding.kind, finding.detail))?,
                }
            }
            if report.more_findings > 0 {
                super::out(format!(
                    "… and {} more findings ({whose})",
                    report.more_findings
                ))?;
            }
        }
        let n_findings = result.n_findings();
        let verdict = if n_findings == 0 { "ok" } else { "FAILED" };
        match &result.events {
            Some(events) => super::out(format!(
                "{verdict}: tenant {tenant}, {} events, {} checkpoints (latest {}), trail log {} records, {n_findings} findings",
                events.events_checked,
                events.checkpoints_checked,
                events
                    .latest_checkpoint
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                result.trail.tree_size,
            ))?,
            None => super::out(format!(
                "{verdict}: trail log {tenant} (its tenant is not in the data directory), {} records, {n_findings} findings",
                result.trail.tree_size
            ))?,
        }
    }
    for finding in vanished {
        super::out(format!(
            "{} at anchored size {} ({}): {}",
            kind_in_words(finding.kind),
            finding.size,
            finding.file,
            finding.detail
        ))?;
    }
    let verdict = if totals.clean() { "ok" } else { "FAILED" };
    let Totals {
        tenants,
        events,
        findings,
        seconds,
        ..
    } = totals;
    super::out(format!(
        "{verdict}: {tenants} tenants, {events} events, {findings} findings, {seconds:.2}s"
    ))
}

/// A disagreement between the log and an anchored checkpoint.
struct AnchorFinding {
    /// Set only for a tenant the data directory no longer holds.
    tenant: Option<TenantId>,
    kind: &'static str,
    size: u64,
    file: String,
    detail: String,
}

/// Checks the live log against every anchored checkpoint of the tenant
/// (`<tenant_dir>/*.checkpoint`): signed with the key, no larger than the log, and the
/// log's tree at that size is the anchored one (consistency proof from it to the log's size).
fn check_anchors(
    store: &auditlog_store::SqliteStore,
    tenant: &TenantId,
    tenant_dir: &std::path::Path,
    key: Option<&str>,
) -> anyhow::Result<(usize, Vec<AnchorFinding>)> {
    use auditlog_ledger::merkle::verify_consistency;
    use auditlog_ledger::note::{NoteVerifier, open_checkpoint};
    let verifier = match key {
        Some(key) => super::bundle::read_key(key)?,
        None => NoteVerifier::parse(&store.verifier_key(tenant)?)
            .map_err(|e| anyhow::anyhow!("the log's key: {e}"))?,
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(tenant_dir)
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
                    tenant: None,
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
                tenant: None,
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
                tenant: None,
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
