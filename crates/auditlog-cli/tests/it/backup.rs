//! Backup and restore (SPEC §11): a backup taken while a server ingests restores to a data
//! directory that verifies, whose logs and latest checkpoints are the manifest's, and that
//! holds every event acknowledged before the backup began; a damaged backup or an occupied
//! target is refused without writing anything.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Client, Server, generate, run, run_with_input, tempdir};

fn manifest(backup: &Path) -> Value {
    let text = std::fs::read_to_string(backup.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn log<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .find(|log| log["name"] == name)
        .unwrap_or_else(|| panic!("no log {name} in {manifest}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_backup_taken_during_ingest_restores_to_a_log_that_verifies_and_agrees_with_its_manifest() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    // A second tenant, so the backup holds more than one log and its trail.
    let acme = crate::support::create_token(&data, "acme", "ingest,read", "acme");
    let events = generate(4000, 41);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ingest = {
        let (client, acked, stop) = (server.client(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            for batch in events.chunks(50) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = batch.join("\n");
                let reply = client.post("/api/v1/events", "application/x-ndjson", body.as_bytes());
                assert_eq!(reply.status, 201, "{}", reply.text);
                let last = reply.json()["events"]
                    .as_array()
                    .and_then(|e| e.last())
                    .and_then(|e| e["seq"].as_u64())
                    .expect("seq");
                acked.store(last, Ordering::SeqCst);
            }
        })
    };
    let acme_client = Client::new(&server.addr, Some(&acme));
    let reply = acme_client.post_json(&generate(5, 42)[0]);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < 500 {
        assert!(Instant::now() < deadline, "ingest does not progress");
        std::thread::sleep(Duration::from_millis(10));
    }

    let backup = dir.path().join("backup");
    let acked_before = acked.load(Ordering::SeqCst);
    let out = run(
        &data,
        &[
            "backup",
            "--to",
            backup.to_str().expect("utf8"),
            "--with-keys",
        ],
    );
    assert!(out.status.success(), "backup: {}", stderr(&out));
    let ingest_still_running = !ingest.is_finished();
    stop.store(true, Ordering::Relaxed);
    ingest.join().expect("ingest thread");
    let acked_after = acked.load(Ordering::SeqCst);
    server.stop();

    let manifest = manifest(&backup);
    assert_eq!(manifest["format"], "auditlog-backup/1");
    assert_eq!(manifest["with_keys"], true);
    let default = log(&manifest, "default");
    let size = default["tree_size"].as_u64().expect("tree_size");
    assert!(
        size >= acked_before,
        "acknowledged through {acked_before} before the backup, the backup holds {size}"
    );
    assert!(
        ingest_still_running || size <= acked_after,
        "{size} > {acked_after}"
    );
    assert_eq!(log(&manifest, "acme")["tree_size"], 1);
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(files.contains(&"auditlog.db"), "{files:?}");
    assert!(files.contains(&"keys/default.key"), "{files:?}");
    assert!(files.contains(&"keys/acme.key"), "{files:?}");

    let restored = dir.path().join("restored");
    let out = run(
        &restored,
        &["restore", "--from", backup.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let out = run(&restored, &["verify", "--format", "json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "verify of the restore:\n{text}");
    let summaries: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("tenant").is_some() && v.get("kind").is_none())
        .collect();
    for tenant in ["default", "acme"] {
        let summary = summaries
            .iter()
            .find(|s| s["tenant"] == tenant)
            .unwrap_or_else(|| panic!("no summary of {tenant}:\n{text}"));
        let log = log(&manifest, tenant);
        assert_eq!(summary["tree_size"], log["tree_size"], "{tenant}: {text}");
        assert_eq!(
            summary["latest_checkpoint"], log["latest_checkpoint"]["size"],
            "{tenant}: {text}"
        );
    }

    // The checkpoint of the manifest is one the restored log agrees with (checked as an
    // anchor: same root at that size, signed by the restored key)…
    let anchors = dir.path().join("anchors");
    std::fs::create_dir_all(anchors.join("default")).expect("mkdir");
    let note = default["latest_checkpoint"]["note"].as_str().expect("note");
    std::fs::write(anchors.join("default").join("backup.checkpoint"), note).expect("write");
    let args = [
        "verify",
        "--tenant",
        "default",
        "--anchors",
        anchors.to_str().expect("utf8"),
    ];
    let out = run(&restored, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // …and a server on the restore serves every event acknowledged before the backup and
    // signs the events of the backup after its latest checkpoint; the tokens came along.
    std::fs::copy(
        data.with_extension("token"),
        restored.with_extension("token"),
    )
    .expect("the test's token");
    let mut server = Server::start(&restored);
    let client = server.client();
    let reply = client.get(&format!("/api/v1/events/{acked_before}"));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client.get("/api/v1/checkpoint");
        assert_eq!(reply.status, 200, "{}", reply.text);
        if reply.text.lines().nth(1) == Some(size.to_string().as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", reply.text);
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    let out = run(&restored, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_damaged_backup_or_an_occupied_target_is_refused_and_nothing_is_written() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(300, 43).join("\n");
    let out = run_with_input(&data, &["ingest", "-"], input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let backup = dir.path().join("backup");
    let backup_arg = backup.to_str().expect("utf8");

    // A backup goes into a new or empty directory only.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir_all(&occupied).expect("mkdir");
    std::fs::write(occupied.join("keep"), b"keep").expect("write");
    let out = run(&data, &["backup", "--to", occupied.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&occupied).expect("dir").count(), 1);

    let out = run(&data, &["backup", "--to", backup_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(manifest(&backup)["with_keys"], false);
    assert!(!backup.join("keys").exists());

    // Restore into a directory that holds anything: refused, untouched.
    let out = run(&occupied, &["restore", "--from", backup_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(std::fs::read(occupied.join("keep")).expect("kept"), b"keep");

    // One byte of the database changed: refused before anything is written.
    let db = backup.join("auditlog.db");
    let mut bytes = std::fs::read(&db).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&db, &bytes).expect("write");
    let restored = dir.path().join("restored");
    let out = run(&restored, &["restore", "--from", backup_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing restored"),
        "{}",
        stderr(&out)
    );
    assert!(!restored.exists());
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A manifest that names a file outside the backup is refused.
    bytes[middle] ^= 0x01;
    std::fs::write(&db, &bytes).expect("write");
    let mut manifest = manifest(&backup);
    manifest["files"][0]["path"] = Value::from("../data/auditlog.db");
    std::fs::write(backup.join("manifest.json"), manifest.to_string()).expect("write");
    let out = run(&restored, &["restore", "--from", backup_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!restored.exists());
}
