//! What the benchmarks share: an HTTP agent, the server's address from its log, directory size.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Start `auditlog serve` on `data` on a free port, logging (warnings only) to `log`; returns
/// the process and its address once it listens.
pub fn start_server(data: &Path, log: &Path) -> (std::process::Child, String) {
    start_server_with(data, log, &[])
}

/// [`start_server`] with more `serve` arguments.
pub fn start_server_with(data: &Path, log: &Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let server = Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("AUDITLOG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("server");
    let addr = wait_for_addr(log);
    (server, addr)
}

/// A fresh working directory for one benchmark run, under `AUDITLOG_BENCH_DIR` (default `.`).
pub fn work_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(std::env::var("AUDITLOG_BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("tempdir")
}

/// The benchmarks' data set: `n` events of `auditlog generate --seed 1`, as NDJSON lines.
pub fn generated_lines(n: usize) -> Vec<String> {
    use auditlog_core::generate::{GenerateOptions, Generator};
    eprintln!("generating {n} events…");
    let mut generator = Generator::new(GenerateOptions {
        seed: 1,
        ..GenerateOptions::default()
    });
    (0..n).map(|_| generator.next().expect("event")).collect()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// The address a server started with `--listen 127.0.0.1:0` prints to its log.
pub fn wait_for_addr(log: &Path) -> String {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // The line may be read while it is still being written: wait for its end.
        if let Some(rest) = text.split("listening on http://").nth(1)
            && let Some((line, _)) = rest.split_once('\n')
            && let Some(addr) = line.split_whitespace().next()
        {
            return addr.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes of every file under `path`.
pub fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The value at fraction `p` of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx].as_secs_f64() * 1000.0
}

/// POSTs every body (NDJSON) to `/api/v1/events` over `connections` connections, each taking
/// the next body when its last one is answered; every answer must be 201.
pub fn post_batches(addr: &str, token: &str, bodies: Arc<Vec<Vec<u8>>>, connections: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (next, bodies) = (next.clone(), bodies.clone());
            let url = format!("http://{addr}/api/v1/events");
            let auth = format!("Bearer {token}");
            std::thread::spawn(move || {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { return };
                    let mut response = agent
                        .post(&url)
                        .header("Authorization", &auth)
                        .header("Content-Type", "application/x-ndjson")
                        .send(&body[..])
                        .expect("post");
                    let status = response.status().as_u16();
                    let _ = response.body_mut().read_to_vec();
                    assert_eq!(status, 201, "batch {i}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client");
    }
}

/// A new token with `scopes` on the data directory `data`, made by the binary.
pub fn create_token(data: &Path, scopes: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auditlog"))
        .arg("--data")
        .arg(data)
        .args(["token", "create", "--name", "bench", "--scopes", scopes])
        .output()
        .expect("token");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}
