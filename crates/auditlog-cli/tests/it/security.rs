//! The findings of issue 16 (a black-box attack on the running server), one test each, end to
//! end over a socket: live streams end with their credential and their lifetime, sign-in
//! guesses are counted before they are checked, tiles are never cacheable by a shared cache,
//! `/healthz` tells strangers no figures, and identifiers refuse invisible controls.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Reply, Server, create_person, create_token, run, tempdir};

/// A signed-in session: the cookie header value and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn sign_in_reply(anon: &Client, tenant: &str, user: &str, password: &str) -> Reply {
    let body = json!({ "tenant": tenant, "user": user, "password": password }).to_string();
    anon.send(
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    )
}

fn sign_in(anon: &Client, tenant: &str, user: &str, password: &str) -> Session {
    let reply = sign_in_reply(anon, tenant, user, password);
    assert_eq!(reply.status, 200, "sign-in of {user}: {}", reply.text);
    let set_cookie = reply.header_values("set-cookie");
    let pair = set_cookie[0].split(';').next().expect("pair").to_owned();
    Session {
        cookie: pair,
        csrf: reply.json()["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    }
}

fn event(message: &str) -> String {
    json!({
        "user": "alice", "ip": "192.0.2.10", "action": "UPDATE", "table": "customers",
        "primary_key": "pk-1", "message": message,
    })
    .to_string()
}

fn post(client: &Client, message: &str) {
    let reply = client.post_json(&event(message));
    assert_eq!(reply.status, 201, "{}", reply.text);
}

/// A raw HTTP/1.1 `GET /api/v1/stream` whose body is read as text (chunk framing included:
/// the tests look for SSE lines and for the last chunk).
struct RawStream {
    stream: TcpStream,
    text: String,
}

impl RawStream {
    fn open(addr: &str, credential: (&str, &str)) -> RawStream {
        let stream = TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\n{}: {}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n",
            credential.0, credential.1
        );
        (&stream).write_all(request.as_bytes()).expect("write");
        let mut raw = RawStream {
            stream,
            text: String::new(),
        };
        assert!(raw.read_until("\r\n\r\n"), "no response head: {}", raw.text);
        assert!(raw.text.starts_with("HTTP/1.1 200"), "{}", raw.text);
        raw
    }

    /// Reads until `needle` is in the text (true) or the stream ends or stays silent for
    /// 30 s (false). The generous silence bound only keeps a broken server from hanging the
    /// test; nothing here measures time.
    fn read_until(&mut self, needle: &str) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buffer = [0u8; 8192];
        while !self.text.contains(needle) {
            match self.stream.read(&mut buffer) {
                Ok(0) | Err(_) => return self.text.contains(needle),
                Ok(n) => self.text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
        true
    }

    /// Whether the server ends the stream: its `closed` message, then the last chunk.
    fn ends(&mut self) -> bool {
        self.read_until("event: closed") && self.read_until("\r\n0\r\n\r\n")
    }
}

#[test]
fn a_live_stream_ends_when_its_token_is_revoked_its_person_disabled_or_signed_out() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let anon = admin.with_token(None);

    // Revoked through the API: the stream ends before anything appended afterwards is sent.
    let token = create_token(&data, "default", "read", "watcher");
    let mut stream = RawStream::open(&server.addr, ("Authorization", &format!("Bearer {token}")));
    post(&admin, "seen-before-revoke");
    assert!(stream.read_until("seen-before-revoke"), "{}", stream.text);
    let reply = admin.send("DELETE", "/api/v1/tokens/watcher", &[], None);
    assert_eq!(reply.status, 204, "{}", reply.text);
    post(&admin, "sent-after-revoke");
    assert!(stream.ends(), "stream still open: {}", stream.text);
    assert!(
        !stream.text.contains("sent-after-revoke"),
        "{}",
        stream.text
    );
    assert!(stream.text.contains("revoked"), "{}", stream.text);

    // Revoked by the CLI, which this server hears nothing of: the periodic check ends it.
    let token = create_token(&data, "default", "read", "watcher-cli");
    let mut stream = RawStream::open(&server.addr, ("Authorization", &format!("Bearer {token}")));
    post(&admin, "seen-by-cli-watcher");
    assert!(stream.read_until("seen-by-cli-watcher"), "{}", stream.text);
    let out = run(
        &data,
        &[
            "token",
            "revoke",
            "--tenant",
            "default",
            "--name",
            "watcher-cli",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stream.ends(), "stream still open: {}", stream.text);

    // A person disabled by an administrator.
    create_person(&data, "default", "vera", "viewer", "vera's long passphrase");
    let vera = sign_in(&anon, "default", "vera", "vera's long passphrase");
    let mut stream = RawStream::open(&server.addr, ("Cookie", &vera.cookie));
    post(&admin, "seen-by-vera");
    assert!(stream.read_until("seen-by-vera"), "{}", stream.text);
    let reply = admin.send("POST", "/api/v1/users/vera/disable", &[], None);
    assert_eq!(reply.status, 204, "{}", reply.text);
    post(&admin, "sent-after-disable");
    assert!(stream.ends(), "stream still open: {}", stream.text);
    assert!(
        !stream.text.contains("sent-after-disable"),
        "{}",
        stream.text
    );

    // A person who signs out in another tab.
    create_person(&data, "default", "walt", "viewer", "walt's long passphrase");
    let walt = sign_in(&anon, "default", "walt", "walt's long passphrase");
    let mut stream = RawStream::open(&server.addr, ("Cookie", &walt.cookie));
    post(&admin, "seen-by-walt");
    assert!(stream.read_until("seen-by-walt"), "{}", stream.text);
    let reply = anon.send(
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &walt.cookie), ("X-CSRF-Token", &walt.csrf)],
        None,
    );
    assert_eq!(reply.status, 204, "{}", reply.text);
    post(&admin, "sent-after-sign-out");
    assert!(stream.ends(), "stream still open: {}", stream.text);
    assert!(
        !stream.text.contains("sent-after-sign-out"),
        "{}",
        stream.text
    );
}

#[test]
fn a_live_stream_ends_at_its_maximum_lifetime() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--stream-max-secs", "2"]);
    let admin = server.client();
    let mut stream = RawStream::open(
        &server.addr,
        ("Authorization", &format!("Bearer {}", server.token)),
    );
    post(&admin, "within-lifetime");
    assert!(stream.read_until("within-lifetime"), "{}", stream.text);
    assert!(stream.ends(), "stream still open: {}", stream.text);
    assert!(stream.text.contains("maximum lifetime"), "{}", stream.text);
    // A bad value is refused at start.
    let out = run(
        &data,
        &["serve", "--listen", "127.0.0.1:0", "--stream-max-secs", "0"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many trail records answer `q` once every record up to `at_least` is searchable (records
/// are durable before their answer; the trail's index catches up a moment later).
fn trail_total(admin: &Client, q: &str, at_least: u64) -> u64 {
    let path = format!(
        "/api/v1/events?q={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let mut total = 0;
    for _ in 0..300 {
        let reply = admin.get(&path);
        assert_eq!(reply.status, 200, "{}", reply.text);
        total = reply.json()["total"].as_u64().expect("total");
        if total >= at_least {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    total
}

/// Sends `n` sign-ins at once (each on its own connection) and counts the answers by status.
fn parallel_sign_ins(addr: &str, n: usize, user_of: impl Fn(usize) -> String + Sync) -> (u64, u64) {
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let user = user_of(i);
                scope.spawn(move || {
                    let anon = Client::new(addr, None);
                    sign_in_reply(&anon, "default", &user, "a wrong guess, again").status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for status in &statuses {
        assert!([401, 429].contains(status), "{statuses:?}");
    }
    let refused = statuses.iter().filter(|s| **s == 401).count() as u64;
    let throttled = statuses.iter().filter(|s| **s == 429).count() as u64;
    (refused, throttled)
}

#[test]
fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    create_person(
        &data,
        "default",
        "alice",
        "viewer",
        "alice's long passphrase",
    );

    // 30 at once for one account from one address: only the pair's 5 free tries are checked.
    let (refused, throttled) = parallel_sign_ins(&server.addr, 30, |_| "alice".to_owned());
    assert!(refused <= 5, "{refused} wrong passwords were checked");
    assert_eq!(refused + throttled, 30);
    let q = "table:auditlog.session action:LOGIN_FAILED pk:alice";
    assert_eq!(trail_total(&admin, q, refused), refused);

    // 40 at once for 40 names (no such people: still counted and recorded) from one address:
    // at most the address's 20 free tries.
    let (refused, throttled) = parallel_sign_ins(&server.addr, 40, |i| format!("p{i}"));
    // Alice's 5 count against the address too.
    assert!(refused <= 15, "{refused} wrong passwords were checked");
    assert_eq!(refused + throttled, 40);
    let q = "table:auditlog.session action:LOGIN_FAILED -pk:alice";
    assert_eq!(trail_total(&admin, q, refused), refused);
}
