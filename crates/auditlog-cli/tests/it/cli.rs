//! The command line's contract (SPEC §6): outputs scripts rely on, exit codes, the lock.

use crate::support::{Server, bin, create_token, generate, run, run_with_input, tempdir};

#[test]
fn generate_writes_the_same_bytes_for_the_same_count_and_seed() {
    let a = generate(200, 9);
    let b = generate(200, 9);
    let c = generate(200, 10);
    assert_eq!(a.len(), 200);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // A prefix of a longer run is the shorter run.
    assert_eq!(&generate(300, 9)[..200], &a[..]);
}

#[test]
fn every_generated_event_is_accepted_by_the_validator() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(3000, 3).join("\n");
    let out = run_with_input(&data, &["ingest", "-"], input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&data, &["show", "3000", "--format", "json"]);
    assert!(out.status.success());
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(event["seq"], 3000);
}

#[test]
fn token_create_prints_only_the_token_and_works_beside_a_running_server() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let token = create_token(&data, "default", "read", "reader");
    assert!(
        token.starts_with("alog_") && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    let reply = server
        .client()
        .with_token(Some(&token))
        .get("/api/v1/public-key");
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn a_second_server_on_the_same_directory_refuses_to_start() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let _server = Server::start(&data);
    let out = std::process::Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another auditlog process"),
        "{stderr}"
    );
}

#[test]
fn a_fresh_data_directory_prints_an_admin_token_once() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let mut child = std::process::Command::new(bin())
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !text.contains("alog_") && std::time::Instant::now() < deadline {
        let mut buf = [0u8; 256];
        use std::io::Read as _;
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(text.contains("admin token"), "{text}");
    // The first login is usable: the person `admin` signs in with the printed password.
    let password = text
        .lines()
        .skip_while(|line| !line.contains("password (shown once)"))
        .nth(1)
        .expect("a password line")
        .trim()
        .to_owned();
    let addr = crate::support::wait_for_listen(&log, &mut child);
    let anon = crate::support::Client::new(&addr, None);
    let body = serde_json::json!({"tenant": "default", "user": "admin", "password": password});
    let reply = anon.post(
        "/api/v1/session",
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["role"], "admin");
    let _ = child.kill();
    let _ = child.wait();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("keys/default.key"))
            .expect("key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "signing key must be private");
}

#[test]
fn show_exits_1_when_the_event_does_not_exist_and_2_on_bad_arguments() {
    let dir = tempdir();
    let data = dir.path().join("data");
    create_token(&data, "default", "read", "r");
    assert_eq!(run(&data, &["show", "5"]).status.code(), Some(1));
    assert_eq!(run(&data, &["show", "five"]).status.code(), Some(2));
    assert_eq!(
        run(&data, &["show", "1", "--tenant", "Bad Name"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn ingest_over_http_is_retry_safe() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let file = dir.path().join("events.ndjson");
    // Half the events carry no id: the CLI derives one per line.
    let lines: Vec<String> = generate(500, 5)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if i % 2 == 0 {
                let mut v: serde_json::Value = serde_json::from_str(&line).expect("json");
                v.as_object_mut().expect("object").remove("id");
                v.to_string()
            } else {
                line
            }
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let url = format!("http://{}", server.addr);
    for _ in 0..2 {
        let out = std::process::Command::new(bin())
            .args([
                "ingest",
                file.to_str().expect("path"),
                "--url",
                &url,
                "--token",
                &server.token,
                "--batch",
                "64",
            ])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reply = server.client().get("/api/v1/events/500");
    assert_eq!(reply.status, 200);
    let reply = server.client().get("/api/v1/events/501");
    assert_eq!(reply.status, 404, "a rerun must add nothing");
}

#[test]
fn a_key_dir_keeps_signing_keys_outside_the_data_directory() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    let keys_arg = keys.to_str().expect("path");
    let input = generate(50, 4).join("\n");
    let out = run_with_input(
        &data,
        &["--key-dir", keys_arg, "ingest", "-"],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(keys.join("default.key").exists());
    assert!(!data.join("keys/default.key").exists());
    assert!(
        run(&data, &["--key-dir", keys_arg, "verify"])
            .status
            .success()
    );
    // Without the key the checkpoints cannot be checked: that is a finding, and verify never
    // makes up a new key.
    let out = run(&data, &["verify", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"kind\":\"bad_signature\""));
    // The text output words the kind as SPEC §5 does.
    let out = run(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("bad signature seq ")),
        "{text}"
    );
    assert!(!data.join("keys/default.key").exists());
}

#[test]
fn ingesting_the_same_file_into_a_data_directory_twice_adds_nothing() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let input = generate(300, 6).join("\n");
    for _ in 0..2 {
        let out = run_with_input(&data, &["ingest", "-", "--batch", "70"], input.as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(run(&data, &["show", "300"]).status.code(), Some(0));
    assert_eq!(run(&data, &["show", "301"]).status.code(), Some(1));
    assert!(run(&data, &["verify"]).status.success());
}
