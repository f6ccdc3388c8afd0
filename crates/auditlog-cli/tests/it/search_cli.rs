//! `auditlog search`, `auditlog reindex` and `auditlog tail` (SPEC §6): outputs, exit codes,
//! and the data directory lock.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::{Server, bin, generate, run, run_with_input, tempdir};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Ingests NDJSON lines into the data directory without a server.
fn ingest_local(data: &Path, lines: &[String]) {
    let out = run_with_input(data, &["ingest", "-"], lines.join("\n").as_bytes());
    assert!(out.status.success(), "ingest: {}", stderr(&out));
}

/// `search QUERY args… --format json`: the seqs printed, in order.
fn json_seqs(out: &Output) -> Vec<u64> {
    stdout(out)
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            event["seq"].as_u64().expect("seq")
        })
        .collect()
}

fn search_json(data: &Path, query: &str, extra: &[&str]) -> Vec<u64> {
    let mut args = vec!["search", "--format", "json"];
    args.extend_from_slice(extra);
    // After `--`: a query may start with `-` (a negation).
    args.extend_from_slice(&["--", query]);
    let out = run(data, &args);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "search {query}: {:?} {}",
        out.status,
        stderr(&out)
    );
    json_seqs(&out)
}

/// The seqs (1-based line numbers, the events being ingested in order into a fresh
/// directory) of the generated events that `keep` selects.
fn seqs_where(lines: &[String], keep: impl Fn(&Value) -> bool) -> Vec<u64> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| keep(&serde_json::from_str(line).expect("json")))
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

fn custom(id: &str, message: &str) -> String {
    json!({
        "id": id,
        "user": "mallory",
        "ip": "198.51.100.66",
        "action": "UPDATE",
        "table": "customer",
        "primary_key": "66",
        "message": message,
        "after": {"note": "hostile"}
    })
    .to_string()
}

#[test]
fn search_on_a_data_directory_prints_a_table_and_exits_0() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let lines = generate(200, 41);
    ingest_local(&data, &lines);
    let want = seqs_where(&lines, |e| e["action"] == "DELETE");
    assert!(!want.is_empty() && want.len() < 50, "{}", want.len());
    let out = run(
        &data,
        &["search", "action:DELETE", "--sort", "seq", "--order", "asc"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].contains("SEQ") && rows[0].contains("USER") && rows[0].contains("MESSAGE"),
        "{text}"
    );
    assert_eq!(rows.len(), want.len() + 1, "{text}");
    for (row, seq) in rows[1..].iter().zip(&want) {
        assert_eq!(
            row.split_whitespace().next(),
            Some(seq.to_string().as_str()),
            "{row}"
        );
        assert!(row.contains("DELETE"), "{row}");
    }
}

#[test]
fn search_and_export_of_a_directory_without_data_exit_2_and_create_nothing() {
    let dir = tempdir();
    let data = dir.path().join("nothing-here");
    for args in [&["search", "alice"][..], &["export"][..], &["tail"][..]] {
        let out = run(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no auditlog data"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
}

#[test]
fn search_exits_1_when_nothing_matches() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(50, 42));
    for format in ["table", "json", "csv"] {
        let out = run(
            &data,
            &["search", "user:nobody-by-this-name", "--format", format],
        );
        assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
        assert!(
            !stdout(&out).lines().any(|l| l.contains("nobody")),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn search_exits_2_with_a_caret_on_a_malformed_query() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(10, 43));
    let out = run(&data, &["search", "action:UPDATE user:"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("invalid query"), "{err}");
    // The caret stands under the position of the problem (offset 19, after `user:`).
    let lines: Vec<&str> = err.lines().collect();
    let echo = lines
        .iter()
        .position(|l| l.contains("action:UPDATE user:"))
        .unwrap_or_else(|| panic!("query not echoed: {err}"));
    let caret_line = lines.get(echo + 1).expect("caret line");
    let caret_at = caret_line.find('^').expect("caret");
    let query_at = lines[echo].find("action:").expect("query");
    assert_eq!(caret_at - query_at, 19, "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // Bad options are errors too, not "nothing found".
    for args in [
        &["search", "x", "--sort", "password"][..],
        &["search", "x", "--order", "sideways"][..],
        &["search", "x", "--format", "xml"][..],
    ] {
        let out = run(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn search_json_prints_one_event_per_line_with_the_right_seqs() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let lines = generate(300, 44);
    ingest_local(&data, &lines);
    let want = seqs_where(&lines, |e| e["action"] == "UPDATE");
    assert!(want.len() > 50, "need more than one default page");
    let got = search_json(
        &data,
        "action:UPDATE",
        &["--sort", "seq", "--order", "asc", "--all"],
    );
    assert_eq!(got, want);
    let mut reversed = want.clone();
    reversed.reverse();
    let got = search_json(
        &data,
        "action:UPDATE",
        &["--sort", "seq", "--order", "desc", "--limit", "5"],
    );
    assert_eq!(got, reversed[..5].to_vec());
    // Without --all: the default limit.
    assert_eq!(search_json(&data, "action:UPDATE", &[]).len(), 50);
    // The JSON is the stored event with its leaf hash.
    let out = run(&data, &["search", "seq:1", "--format", "json"]);
    let event: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let generated: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(event["id"], generated["id"]);
    assert!(event["leaf_hash"].is_string(), "{event}");
}

#[test]
fn search_csv_parses_back_and_neutralises_formula_cells() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut lines = generate(40, 45);
    lines.push(custom(
        "formula-eq",
        "=HYPERLINK(\"http://evil.example\",\"x\")",
    ));
    lines.push(custom("formula-plus", "+1+1"));
    lines.push(custom("formula-at", "@SUM(A1:A9)"));
    lines.push(custom("quoted", "say \"hi\", then\nleave"));
    ingest_local(&data, &lines);
    let out = run(
        &data,
        &[
            "search", "", "--format", "csv", "--all", "--sort", "seq", "--order", "asc",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "seq",
            "time",
            "user",
            "ip",
            "primary_key",
            "action",
            "table",
            "message",
            "source"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), lines.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(row.get(0), Some((i + 1).to_string().as_str()));
    }
    let generated: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(rows[0].get(2), generated["user"].as_str());
    assert_eq!(rows[0].get(7), generated["message"].as_str());
    let message = |seq: usize| rows[seq - 1].get(7).expect("message").to_owned();
    assert_eq!(message(41), "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(message(42), "'+1+1");
    assert_eq!(message(43), "'@SUM(A1:A9)");
    assert_eq!(message(44), "say \"hi\", then\nleave");
}

#[test]
fn table_output_never_passes_terminal_control_characters_through() {
    let dir = tempdir();
    let data = dir.path().join("data");
    // An ANSI escape never gets into the log: the validator refuses it, and nothing is stored.
    let ansi = custom(
        "ansi",
        "\u{1b}[31mred alert\u{1b}[0m and \u{1b}]0;title\u{7}",
    );
    let out = run_with_input(&data, &["ingest", "-"], ansi.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("U+001B"), "{}", stderr(&out));
    // Tab, CR and LF are allowed in a message; the table shows each event on one line.
    ingest_local(
        &data,
        &[
            custom("newline", "first line\nsecond\rthird\tfourth"),
            custom("plain", "red alert"),
        ],
    );
    let out = run(
        &data,
        &["search", "user:mallory", "--sort", "seq", "--order", "asc"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for byte in [0x1b_u8, 0x07, b'\r', b'\t'] {
        assert!(!out.stdout.contains(&byte), "byte {byte:#x} in {text:?}");
    }
    assert!(text.contains("red alert"), "{text}");
    assert!(text.contains("first line?second?third?fourth"), "{text}");
    // One line per event: an embedded newline cannot forge a row.
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("mallory")).count(),
        2,
        "{text}"
    );
}

#[test]
fn search_takes_a_query_that_starts_with_a_negation() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let lines = generate(60, 50);
    ingest_local(&data, &lines);
    let out = run(
        &data,
        &[
            "search",
            "-action:LOGIN",
            "--format",
            "json",
            "--all",
            "--sort",
            "seq",
            "--order",
            "asc",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json_seqs(&out),
        seqs_where(&lines, |e| e["action"] != "LOGIN")
    );
}

#[test]
fn search_over_http_gives_the_same_seqs_as_on_the_data_directory() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(250, 46));
    let queries = [
        (
            "action:UPDATE",
            &["--sort", "user", "--order", "asc", "--all"][..],
        ),
        (
            "-action:LOGIN",
            &["--sort", "ip", "--order", "desc", "--limit", "120"][..],
        ),
        ("", &["--limit", "1200", "--sort", "message"][..]),
        ("account_id:>1000", &["--all"][..]),
        ("no-such-thing-anywhere", &[][..]),
    ];
    let local: Vec<Vec<u64>> = queries
        .iter()
        .map(|(q, extra)| search_json(&data, q, extra))
        .collect();
    assert_eq!(local[2].len(), 250);
    let server = Server::start(&data);
    let url = format!("http://{}", server.addr);
    for ((q, extra), want) in queries.iter().zip(&local) {
        let mut args = vec![
            "search",
            "--format",
            "json",
            "--url",
            &url,
            "--token",
            &server.token,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", q]);
        let out = std::process::Command::new(bin())
            .args(&args)
            .output()
            .expect("run");
        let code = if want.is_empty() { 1 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "{q}: {}", stderr(&out));
        assert_eq!(&json_seqs(&out), want, "{q} {extra:?}");
    }
    // A malformed query over HTTP: exit 2 and the server's caret.
    let out = std::process::Command::new(bin())
        .args(["search", "user:", "--url", &url, "--token", &server.token])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains('^'), "{}", stderr(&out));
    // A token without the read scope: exit 2.
    let out = std::process::Command::new(bin())
        .args(["search", "x", "--url", &url, "--token", "alog_wrong"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn reindex_after_deleting_the_index_gives_the_same_answers() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(300, 47));
    let queries = [
        (
            "action:UPDATE",
            &["--sort", "seq", "--order", "asc", "--all"][..],
        ),
        ("ip:203.0.113.0/24", &["--sort", "time", "--all"][..]),
        (
            "account_id:>2000 -table:did",
            &["--sort", "pk", "--order", "asc", "--all"][..],
        ),
        ("", &["--sort", "user", "--order", "desc", "--all"][..]),
    ];
    let before: Vec<Vec<u64>> = queries
        .iter()
        .map(|(q, extra)| search_json(&data, q, extra))
        .collect();
    assert!(data.join("index").exists(), "no index directory");
    std::fs::remove_dir_all(data.join("index")).expect("remove index");
    let out = run(&data, &["reindex"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("300 events"), "{}", stderr(&out));
    let after: Vec<Vec<u64>> = queries
        .iter()
        .map(|(q, extra)| search_json(&data, q, extra))
        .collect();
    assert_eq!(before, after);
    // A reindex of a healthy index changes nothing either.
    let out = run(&data, &["reindex"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(search_json(&data, queries[0].0, queries[0].1), before[0]);
}

#[test]
fn search_rebuilds_a_deleted_index_by_itself() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let lines = generate(120, 48);
    ingest_local(&data, &lines);
    let want = seqs_where(&lines, |e| e["action"] == "CREATE");
    assert_eq!(
        search_json(
            &data,
            "action:CREATE",
            &["--sort", "seq", "--order", "asc", "--all"]
        ),
        want
    );
    std::fs::remove_dir_all(data.join("index")).expect("remove index");
    assert_eq!(
        search_json(
            &data,
            "action:CREATE",
            &["--sort", "seq", "--order", "asc", "--all"]
        ),
        want
    );
}

#[test]
fn reindex_and_local_search_refuse_while_a_server_runs_on_the_directory() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(20, 49));
    let server = Server::start(&data);
    for args in [&["reindex"][..], &["search", "action:UPDATE"][..]] {
        let out = run(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("in use by another auditlog process"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
    // The server is untouched and still answers.
    let reply = server.client().get("/api/v1/events?q=action:UPDATE");
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn tail_over_http_prints_new_matching_events_as_json_lines() {
    use std::io::BufRead as _;
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let url = format!("http://{}", server.addr);
    let mut child = std::process::Command::new(bin())
        .args([
            "tail",
            "user:mallory",
            "--format",
            "json",
            "--url",
            &url,
            "--token",
            &server.token,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tail");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    // tail connects asynchronously: keep sending until the first one shows up.
    let client = server.client();
    let mut sent = Vec::new();
    let mut first = None;
    for i in 0..50 {
        let other = client.post_json(&custom(&format!("o{i}"), "x").replace("mallory", "trent"));
        assert_eq!(other.status, 201);
        let reply = client.post_json(&custom(&format!("m{i}"), "tail me"));
        assert_eq!(reply.status, 201);
        sent.push(reply.json()["events"][0]["seq"].as_u64().expect("seq"));
        if let Ok(line) = receiver.recv_timeout(std::time::Duration::from_millis(300)) {
            first = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = first.expect("tail printed nothing");
    let event: Value = serde_json::from_str(&line).expect("json line");
    assert_eq!(event["user"], "mallory", "{line}");
    assert!(
        sent.contains(&event["seq"].as_u64().expect("seq")),
        "{line}"
    );
}

#[test]
fn search_with_limit_0_is_an_error_not_nothing_found() {
    let dir = tempdir();
    let data = dir.path().join("data");
    ingest_local(&data, &generate(5, 51));
    let out = run(&data, &["search", "", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
