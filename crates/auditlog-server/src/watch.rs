//! What the server does on its own besides answering: copying every signed checkpoint to
//! anchors outside the data directory, and verifying its logs on a schedule. Both report to
//! `/healthz` (times, sizes, counts; no data).
//!
//! Anchors: each checkpoint, once on disk, goes to a directory (`<dir>/<tenant>/<size,
//! 20 digits>.checkpoint`, written to a temporary name, fsynced, renamed) and/or is POSTed
//! (`text/plain`) to a URL such as a webhook, by one thread fed through a channel, so the
//! writer never waits for them. `auditlog verify --anchors DIR` later checks the log against
//! every anchored checkpoint: dropping the newest entries, or rebuilding the log with the same
//! key, is found.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_core::tenant::TenantId;
use auditlog_store::{CheckpointHook, Store};
use serde_json::{Value, json};

/// Where checkpoints are anchored.
#[derive(Debug, Clone, Default)]
pub struct AnchorConfig {
    pub dir: Option<PathBuf>,
    pub url: Option<String>,
}

impl AnchorConfig {
    pub fn is_empty(&self) -> bool {
        self.dir.is_none() && self.url.is_none()
    }
}

/// The state `/healthz` shows of the background work. `/healthz` answers anyone, so it shows
/// times and counts only: no tenant names, sizes or error texts (those go to the server log).
#[derive(Debug, Default)]
pub struct Watch {
    anchors_enabled: bool,
    anchored_at: Option<String>,
    anchor_failing: bool,
    anchors_written: u64,
    verified: Option<Value>,
}

pub type WatchState = Arc<Mutex<Watch>>;

fn lock(state: &WatchState) -> std::sync::MutexGuard<'_, Watch> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `/healthz` view of the background work.
pub fn health_json(state: &WatchState) -> Value {
    let watch = lock(state);
    json!({
        "anchors": {
            "enabled": watch.anchors_enabled,
            "written": watch.anchors_written,
            "last_at": watch.anchored_at,
            "failing": watch.anchor_failing,
        },
        "verify": watch.verified,
    })
}

/// A signed checkpoint on its way to the anchors: tenant, size, note.
type Signed = (TenantId, u64, String);

/// Starts the anchor thread; the hook goes into the store's options.
pub fn start_anchors(config: AnchorConfig, state: WatchState) -> CheckpointHook {
    let (tx, rx): (Sender<Signed>, Receiver<Signed>) = std::sync::mpsc::channel();
    let sender = Mutex::new(tx);
    lock(&state).anchors_enabled = !config.is_empty();
    std::thread::Builder::new()
        .name("anchors".into())
        .spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            while let Ok((tenant, size, note)) = rx.recv() {
                let result = anchor(&config, &agent, &tenant, size, &note);
                let mut watch = lock(&state);
                match result {
                    Ok(()) => {
                        watch.anchors_written += 1;
                        watch.anchored_at = Some(auditlog_store::now().to_rfc3339());
                        watch.anchor_failing = false;
                    }
                    Err(problem) => {
                        tracing::error!("anchoring checkpoint {size} of {tenant}: {problem}");
                        watch.anchor_failing = true;
                    }
                }
            }
        })
        .ok();
    CheckpointHook(Arc::new(move |tenant: &TenantId, size: u64, note: &str| {
        if let Ok(sender) = sender.lock() {
            let _ = sender.send((tenant.clone(), size, note.to_owned()));
        }
    }))
}

fn anchor(
    config: &AnchorConfig,
    agent: &ureq::Agent,
    tenant: &TenantId,
    size: u64,
    note: &str,
) -> Result<(), String> {
    if let Some(dir) = &config.dir {
        let dir = dir.join(tenant.as_str());
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{size:020}.checkpoint"));
        let tmp = dir.join(format!(".{size:020}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(note.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    if let Some(url) = &config.url {
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..4 {
            match agent
                .post(url)
                .header("Content-Type", "text/plain; charset=utf-8")
                .send(note.as_bytes())
            {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("{url} answered {}", response.status()),
                Err(e) => last = format!("{url}: {e}"),
            }
            std::thread::sleep(delay);
            delay *= 2;
        }
        return Err(last);
    }
    Ok(())
}

/// Verifies every tenant's log every `every`, keeping the last result for `/healthz`.
pub fn start_self_verify(store: Arc<dyn Store>, every: Duration, state: WatchState) {
    std::thread::Builder::new()
        .name("self-verify".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let started = Instant::now();
                let tenants = match store.tenants() {
                    Ok(tenants) => tenants,
                    Err(e) => {
                        tracing::error!("self-verification: {e}");
                        lock(&state).verified = Some(json!({"ok": false}));
                        continue;
                    }
                };
                let (mut logs, mut events, mut findings, mut errors) = (0u64, 0u64, 0u64, 0u64);
                for tenant in tenants {
                    logs += 1;
                    match store.verify(&tenant, &|_, _| {}) {
                        Ok(report) => {
                            let found = report.findings.len() as u64 + report.more_findings;
                            events += report.events_checked;
                            findings += found;
                            if found > 0 {
                                tracing::error!(
                                    "self-verification of {tenant}: {found} findings; run auditlog verify"
                                );
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            tracing::error!("self-verification of {tenant}: {e}");
                        }
                    }
                }
                lock(&state).verified = Some(json!({
                    "ok": findings == 0 && errors == 0,
                    "at": auditlog_store::now().to_rfc3339(),
                    "seconds": started.elapsed().as_secs_f64(),
                    "logs": logs,
                    "events": events,
                    "findings": findings,
                    "errors": errors,
                }));
            }
        })
        .ok();
}
