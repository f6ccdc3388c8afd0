//! Test support: run the real binary on a temporary data directory and talk HTTP to it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_auditlog")
}

/// Run `auditlog --data DIR args…` to completion.
pub fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run auditlog")
}

/// Run with stdin from bytes.
pub fn run_with_input(data: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn auditlog");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait auditlog");
    let _ = writer.join();
    output
}

pub fn create_token(data: &Path, tenant: &str, scopes: &str, name: &str) -> String {
    let out = run(
        data,
        &[
            "token", "create", "--tenant", tenant, "--scopes", scopes, "--name", name,
        ],
    );
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A person who signs in, made with `auditlog user create --password-stdin`.
pub fn create_person(data: &Path, tenant: &str, name: &str, role: &str, password: &str) {
    let out = run_with_input(
        data,
        &[
            "user",
            "create",
            "--tenant",
            tenant,
            "--name",
            name,
            "--role",
            role,
            "--password-stdin",
        ],
        format!("{password}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generated events, NDJSON, from the binary's own generator.
pub fn generate(count: u64, seed: u64) -> Vec<String> {
    let out = Command::new(bin())
        .args([
            "generate",
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("generate");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(str::to_owned)
        .collect()
}

pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub token: String,
    log: PathBuf,
}

impl Server {
    /// Start a server on `data` (created with an admin token named `test` if new).
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data, extra, &[])
    }

    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let token_file = data.with_extension("token");
        let token = match std::fs::read_to_string(&token_file) {
            Ok(token) => token,
            Err(_) => {
                let token = create_token(data, "default", "ingest,read,admin", "test");
                std::fs::write(&token_file, &token).expect("save token");
                token
            }
        };
        let log = data.with_extension(format!("log{}", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin())
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("AUDITLOG_CHECKPOINT_INTERVAL_MS", "200")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn server");
        let mut child = child;
        let addr = wait_for_listen(&log, &mut child);
        Server {
            child: Some(child),
            addr,
            token,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or sign anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY-free: use the kill command rather than libc.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.addr, Some(&self.token))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A small HTTP client that never treats a status as an error.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub text: String,
    pub content_type: String,
    /// Every response header, lower-case names, in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Every value of one response header.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

impl Client {
    pub fn new(addr: &str, token: Option<&str>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: format!("http://{addr}"),
            token: token.map(str::to_owned),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            agent: self.agent.clone(),
            base: self.base.clone(),
            token: token.map(str::to_owned),
        }
    }

    fn reply(
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ureq::Error> {
        let mut response = result?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap_or_default();
        Ok(Reply {
            status,
            text,
            content_type,
            headers,
        })
    }

    pub fn try_post(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        let mut request = self
            .agent
            .post(format!("{}{}", self.base, path))
            .header("Content-Type", content_type);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Self::reply(request.send(body))
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        self.try_post(path, content_type, body).expect("POST")
    }

    pub fn post_json(&self, body: &str) -> Reply {
        self.post("/api/v1/events", "application/json", body.as_bytes())
    }

    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Self::reply(request.call())
    }

    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path).expect("GET")
    }

    /// Any method with extra headers (cookies, CSRF tokens, spoofed tenants) and an optional
    /// body; the bearer token is sent when the client has one.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(body) => self
                .agent
                .run(builder.body(body.to_vec()).expect("request")),
            None => self.agent.run(builder.body(()).expect("request")),
        };
        Self::reply(result).expect("request")
    }
}

/// The address a server started with `--listen 127.0.0.1:0` prints to its log (`log`), once it
/// listens; fails the test if it exits or takes more than 30 s.
pub fn wait_for_listen(log: &Path, child: &mut Child) -> String {
    let started = Instant::now();
    loop {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(log) {
            let _ = f.read_to_string(&mut text);
        }
        if let Some(rest) = text
            .split("listening on http://")
            .nth(1)
            .or_else(|| text.split("listening on https://").nth(1))
        {
            // The line may be read while it is still being written: wait for its end.
            if let Some((line, _)) = rest.split_once('\n')
                && let Some(addr) = line.split_whitespace().next()
            {
                return addr.to_owned();
            }
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "server exited before listening: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("auditlog-it-")
        .tempdir()
        .expect("tempdir")
}

/// What a client was told for one event: (id, seq, leaf_hash).
pub type Ack = (String, u64, String);

/// Every acknowledged event is stored as acknowledged: same id at its seq, same leaf hash.
pub fn assert_acknowledged_present(client: &Client, acked: &[Ack], when: &str) {
    for (id, seq, leaf) in acked {
        let reply = client.get(&format!("/api/v1/events/{seq}"));
        assert_eq!(
            reply.status, 200,
            "{when}: acknowledged event {seq} ({id}) is gone"
        );
        let event = reply.json();
        assert_eq!(
            event["id"].as_str(),
            Some(id.as_str()),
            "{when}: seq {seq} holds another event"
        );
        assert_eq!(
            event["leaf_hash"].as_str(),
            Some(leaf.as_str()),
            "{when}: seq {seq} changed"
        );
    }
}
