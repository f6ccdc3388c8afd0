//! Operating it: `verify` over every tenant (SPEC §5).

use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::support::{generate, run, run_with_input, tempdir};

/// Appends `n` generated events to `tenant` straight into the data directory.
fn ingest_into(data: &Path, tenant: &str, n: u64, seed: u64) {
    let input = generate(n, seed).join("\n");
    let out = run_with_input(data, &["ingest", "-", "--tenant", tenant], input.as_bytes());
    assert!(
        out.status.success(),
        "ingest into {tenant}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Moves one stored event's `received_at` by a nanosecond: it is spliced into the canonical
/// event, so the leaf no longer matches.
fn edit_event(data: &Path, tenant: &str, seq: u64) {
    let conn = Connection::open(data.join("auditlog.db")).expect("open db");
    let changed = conn
        .execute(
            "UPDATE events SET received_at = received_at + 1
             WHERE tenant = (SELECT id FROM tenants WHERE name = ?1) AND seq = ?2",
            params![tenant, seq as i64],
        )
        .expect("update");
    assert_eq!(changed, 1, "no event {seq} in tenant {tenant}");
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[test]
fn verify_without_a_tenant_finds_an_edit_in_a_tenant_other_than_default() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_into(&data, "default", 50, 1);
    ingest_into(&data, "acme", 40, 2);
    ingest_into(&data, "zeta", 30, 3);
    assert!(run(&data, &["verify"]).status.success());

    edit_event(&data, "acme", 17);
    let out = run(&data, &["verify", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out.stdout);
    let findings: Vec<&Value> = lines.iter().filter(|l| l.get("kind").is_some()).collect();
    assert_eq!(findings.len(), 1, "{lines:?}");
    assert_eq!(findings[0]["tenant"], "acme");
    assert_eq!(findings[0]["log"], "events");
    assert_eq!(findings[0]["kind"], "altered");
    assert_eq!(findings[0]["seq"], 17);
    // One summary per tenant, and the run's summary last.
    let tenants: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("kind").is_none() && l.get("tenant").is_some())
        .filter_map(|l| l["tenant"].as_str())
        .collect();
    assert_eq!(tenants, ["acme", "default", "zeta"], "{lines:?}");
    let last = lines.last().expect("summary");
    assert_eq!(last["ok"], false);
    assert_eq!(last["tenants"], 3);
    assert_eq!(last["events_checked"], 120);
    assert_eq!(last["findings"], 1);

    // The text output names the tenant of the finding.
    let out = run(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("altered seq 17 (tenant acme)")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("ok: tenant default")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("FAILED: tenant acme")),
        "{text}"
    );

    // --tenant narrows it: the intact tenant passes, the edited one fails.
    assert_eq!(
        run(&data, &["verify", "--tenant", "default"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&data, &["verify", "--tenant", "zeta"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&data, &["verify", "--tenant", "acme"]).status.code(),
        Some(1)
    );
    // A tenant that is not there is an error, not a clean report.
    let out = run(&data, &["verify", "--tenant", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn verify_checks_a_directory_without_a_default_tenant() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_into(&data, "acme", 20, 4);
    let out = run(&data, &["verify", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = json_lines(&out.stdout).pop().expect("summary");
    assert_eq!(last["tenants"], 1);
    assert_eq!(last["events_checked"], 20);
    edit_event(&data, "acme", 20);
    assert_eq!(run(&data, &["verify"]).status.code(), Some(1));
}

#[test]
fn verify_with_anchors_reports_an_anchored_tenant_the_directory_no_longer_holds() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_into(&data, "default", 10, 6);
    let anchors = dir.path().join("anchors");
    std::fs::create_dir_all(anchors.join("gone")).expect("mkdir");
    // A checkpoint as `serve --anchor-dir` writes it (C2SP tlog-checkpoint: origin, size, root).
    std::fs::write(
        anchors.join("gone/0000000000000042.checkpoint"),
        "auditlog/gone\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— auditlog/gone AAAA\n",
    )
    .expect("write anchor");
    let anchors_arg = anchors.to_str().expect("utf8");
    let out = run(
        &data,
        &["verify", "--anchors", anchors_arg, "--format", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out.stdout);
    let gone: Vec<&Value> = lines.iter().filter(|l| l["tenant"] == "gone").collect();
    assert_eq!(gone.len(), 1, "{lines:?}");
    assert_eq!(gone[0]["kind"], "truncated");
    assert_eq!(gone[0]["anchored_size"], 42);
    // Narrowed to the tenant that is there, the anchors of another tenant do not count.
    let out = run(
        &data,
        &["verify", "--anchors", anchors_arg, "--tenant", "default"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "default was never anchored: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
