//! Web UI benchmark (issue 4): `cargo bench -p auditlog-cli --bench ui`.
//!
//! On `AUDITLOG_BENCH_EVENTS` (default 1,000,000) `generate`d events, ingested over HTTP with
//! the index on, it opens the page in headless Chromium (through chromedriver, as the UI tests
//! do), signed in as an auditor, and measures over `AUDITLOG_BENCH_RUNS` (default 5) runs:
//! - first usable screen: from navigation start to the first grid rows on screen (the page's
//!   own `auditlog:rows` User Timing mark), and to the page being idle (histogram included);
//! - a search: from the query's submission to its first rows on screen
//!   (`auditlog:query-to-rows`), for a set of typical queries typed into the search box, and the
//!   wall time WebDriver saw from the Enter key to the grid being idle.
//!
//! No thresholds: the figures are printed and written to target/bench-ui-<N>.md.

#[path = "support/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/it/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{agent, create_token, generated_lines, post_batches, start_server, work_dir};
use webdriver::{Browser, keys};

const BATCH: usize = 1000;
const CONNECTIONS: usize = 4;
const PASSWORD: &str = "bench password, long enough";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let n_events = env_or("AUDITLOG_BENCH_EVENTS", 1_000_000);
    let runs = env_or("AUDITLOG_BENCH_RUNS", 5).max(1);
    let work = work_dir("auditlog-ui-bench-");
    let lines = generated_lines(n_events);
    // A typical account id and user of this data, for the queries below.
    let first: Value = serde_json::from_str(&lines[0]).expect("generated JSON");
    let account = first["context"]["account_id"]
        .as_i64()
        .or_else(|| first["after"]["account_id"].as_i64())
        .unwrap_or(2442);
    let user = first["user"].as_str().unwrap_or("alice.moreau").to_owned();

    let data = work.path().join("data");
    let token = create_token(&data, "ingest,read");
    let person = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(&data)
        .args([
            "user",
            "create",
            "--name",
            "bench",
            "--role",
            "auditor",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait()
        })
        .expect("user create");
    assert!(person.success(), "user create failed");
    let log = work.path().join("server.log");
    let (mut server, addr) = start_server(&data, &log);
    eprintln!("ingesting over HTTP with the index on…");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        lines
            .chunks(BATCH)
            .map(|c| c.join("\n").into_bytes())
            .collect(),
    );
    drop(lines);
    let started = Instant::now();
    post_batches(&addr, &token, bodies, CONNECTIONS);
    let http = agent();
    // Searchable: the trail also holds the records of the server's own use, so at least N.
    loop {
        let mut response = http
            .get(format!("http://{addr}/api/v1/events?limit=1"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("search");
        let body: Value = response
            .body_mut()
            .read_to_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        if body["total"].as_u64().is_some_and(|t| t >= n_events as u64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    eprintln!("  searchable after {ingest_secs:.1} s");
    // Settle merges a moment, as a server at rest would be.
    std::thread::sleep(Duration::from_secs(2));

    let mut browser = Browser::start();
    // A debug build on a large trail may take a while; this measures, it does not judge.
    browser.set_timeout(Duration::from_secs(300));
    let base = format!("http://{addr}");
    browser.goto(&format!("{base}/"));
    let name = browser.wait_for("#signin-user");
    browser.send_keys(&name, "bench");
    let password = browser.find("#signin-password");
    browser.send_keys(&password, &format!("{PASSWORD}{}", keys::ENTER));
    wait_idle(&browser);

    // --- first usable screen ---
    let mut first_rows = Vec::new();
    let mut first_idle = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        browser.goto(&format!("{base}/"));
        wait_idle(&browser);
        first_idle.push(started.elapsed().as_secs_f64() * 1000.0);
        let rows = browser.exec(
            "return performance.getEntriesByName('auditlog:rows')[0].startTime",
            vec![],
        );
        first_rows.push(rows.as_f64().expect("auditlog:rows mark"));
    }
    let histogram_ms = browser
        .exec(
            "const e = performance.getEntriesByType('resource')
                 .filter(e => e.name.includes('/api/v1/histogram'));
             return e.length ? e[e.length - 1].duration : null",
            vec![],
        )
        .as_f64()
        .unwrap_or(f64::NAN);

    // --- searches typed into the box ---
    let queries = [
        format!("account_id:{account}"),
        format!("user:{user}"),
        "action:DELETE table:ingress_route".to_owned(),
        "ingress".to_owned(),
        "-action:LOGIN,UPDATE".to_owned(),
    ];
    let mut searches = Vec::new();
    for q in &queries {
        let mut in_page = Vec::new();
        let mut wall = Vec::new();
        let mut total = String::new();
        for _ in 0..runs {
            browser.goto(&format!("{base}/"));
            wait_idle(&browser);
            let input = browser.find("#search");
            browser.clear(&input);
            browser.send_keys(&input, q);
            browser.exec("performance.clearMeasures()", vec![]);
            let started = Instant::now();
            browser.send_keys(&input, keys::ENTER);
            browser.wait_until("the search is measured", || {
                let n = browser.exec(
                    "return performance.getEntriesByName('auditlog:query-to-rows').length",
                    vec![],
                );
                (n.as_u64() == Some(1)).then_some(())
            });
            wait_idle(&browser);
            wall.push(started.elapsed().as_secs_f64() * 1000.0);
            let measured = browser.exec(
                "return performance.getEntriesByName('auditlog:query-to-rows')[0].duration",
                vec![],
            );
            in_page.push(measured.as_f64().expect("measure"));
            total = browser.text_of("#total");
        }
        eprintln!("  {q}: {:.0} ms to rows ({total})", median(in_page.clone()));
        searches.push((q.clone(), total, median(in_page), median(wall)));
    }
    browser
        .screenshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-bench-last.png"));
    drop(browser);
    let _ = server.kill();
    let _ = server.wait();

    let mut report = format!(
        "## Web UI on {n_events} events (median of {runs} runs; headless Chromium, debug or \
         release as built)\n\n\
         Ingested and searchable in {ingest_secs:.1} s.\n\n\
         | measure | ms |\n|---|---|\n\
         | first usable screen: navigation start → first grid rows | {:.0} |\n\
         | first screen idle (rows, count, histogram) as WebDriver saw it | {:.0} |\n\
         | histogram request (last load) | {histogram_ms:.0} |\n\n\
         | search typed in the box | events | submit → rows (in page) | Enter → idle (WebDriver) |\n\
         |---|---|---|---|\n",
        median(first_rows),
        median(first_idle),
    );
    for (q, total, in_page, wall) in &searches {
        report.push_str(&format!("| `{q}` | {total} | {in_page:.0} | {wall:.0} |\n"));
    }
    println!("{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bench-ui-{n_events}.md")),
        &report,
    );
}

fn wait_idle(browser: &Browser) {
    browser.wait_until("the page is idle", || {
        let state = browser.exec(
            "const app = document.getElementById('app');
             return !app.hidden && app.dataset.busy === '0'
                 && document.querySelector('#histogram svg') !== null",
            vec![],
        );
        (state == json!(true)).then_some(())
    });
}
