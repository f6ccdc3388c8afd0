//! Tenants, people, tokens and the trail of the trail (issue 5), end to end over a socket:
//! the cross-tenant matrix, scopes and roles, sessions and CSRF, throttling, the records of
//! every administrative action, secrets kept out of storage and logs, TLS and trusted proxies.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    Client, Reply, Server, create_person, create_token, run, run_with_input, tempdir,
};

/// What A searches for: B's events hold it, and so do A's own trail records of those searches.
const CANARY: &str = "CANARYB7x";
/// What only B's events hold, never typed by A: a response of A that has it leaked B's data.
const HIDDEN: &str = "ZQXHIDDENB";

/// A signed-in session: the cookie header value and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![("Cookie", self.cookie.as_str())]
    }

    fn change_headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Content-Type", "application/json"),
        ]
    }
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
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    let pair = set_cookie[0].split(';').next().expect("pair").to_owned();
    assert!(pair.starts_with("auditlog_session=alsess_"), "{pair}");
    Session {
        cookie: pair,
        csrf: reply.json()["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    }
}

fn event(user: &str, table: &str, message: &str, extra: Value) -> String {
    let mut e = json!({
        "user": user, "ip": "192.0.2.10", "action": "UPDATE", "table": table,
        "primary_key": "pk-1", "message": message,
        "before": {"status": "old"}, "after": {"status": "new"},
    });
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(extra.clone());
    }
    e.to_string()
}

/// Search until at least one event matches (records reach the index within a moment).
fn wait_for(client: &Client, headers: &[(&str, &str)], q: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let path = format!(
        "/api/v1/events?limit=100&q={}",
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    loop {
        let reply = client.send("GET", &path, headers, None);
        assert_eq!(reply.status, 200, "{q}: {}", reply.text);
        let events = reply.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !events.is_empty() {
            return events;
        }
        assert!(Instant::now() < deadline, "nothing matches {q}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a raw request on a socket brings within `for_how_long` (for streams that never end).
fn read_for(addr: &str, request: &str, for_how_long: Duration) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + for_how_long;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn no_credential_of_tenant_a_ever_reads_a_byte_of_tenant_b() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let a_token = server.token.clone();
    let b_token = create_token(&data, "beta", "ingest,read,admin", "b-admin");
    create_person(&data, "default", "alice", "admin", "alice's long password");
    create_person(&data, "beta", "bob", "admin", "bob's long password");
    let a = server.client();
    let b = a.with_token(Some(&b_token));
    let anon = a.with_token(None);
    // B's events carry the canary everywhere; there are more of them than A's.
    let mut b_events = Vec::new();
    for n in 0..40 {
        b_events.push(event(
            &format!("{CANARY}-{HIDDEN}-user"),
            &format!("{CANARY}_{HIDDEN}_table"),
            &format!("{CANARY} {HIDDEN} message {n}"),
            json!({
                "primary_key": format!("{CANARY}-{HIDDEN}-{n}"),
                "before": {"secret": CANARY, "hidden": HIDDEN, "n": n},
                "after": {"secret": format!("{CANARY}!"), "hidden": HIDDEN, "n": n},
                "context": {"note": CANARY, "hidden": HIDDEN},
            }),
        ));
    }
    let reply = b.post(
        "/api/v1/events",
        "application/x-ndjson",
        b_events.join("\n").as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let b_size = reply.json()["checkpoint_size"].as_u64().expect("size");
    for n in 0..5 {
        let reply = a.post_json(&event(
            "a-user",
            "a_table",
            &format!("a message {n}"),
            json!({}),
        ));
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    // The test can fail: B itself sees its canary.
    assert!(wait_for(&b, &[], CANARY).len() > 1);
    assert!(b.get("/api/v1/export?format=csv").text.contains(HIDDEN));
    // B's trail log holds the canary too (B searched for it).
    assert_eq!(b.get(&format!("/api/v1/events?q={HIDDEN}")).status, 200);
    assert!(
        wait_for(&b, &[], &format!("table:auditlog.search {HIDDEN}")).len() == 1,
        "B's own trail shows B's search"
    );
    let b_cursor = b.get("/api/v1/events?limit=1").json()["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let alice = sign_in(&anon, "default", "alice", "alice's long password");

    let mut paths: Vec<String> = vec![
        format!("/api/v1/events?q={CANARY}"),
        "/api/v1/events?limit=1000".into(),
        format!("/api/v1/events?cursor={b_cursor}"),
        format!("/api/v1/events?q=user:{CANARY}*"),
        "/api/v1/histogram".into(),
        format!("/api/v1/histogram?q={CANARY}"),
        "/api/v1/export?format=csv".into(),
        "/api/v1/export?format=ndjson".into(),
        format!("/api/v1/export?format=ndjson&q={CANARY}"),
        "/api/v1/checkpoint".into(),
        "/api/v1/public-key".into(),
        format!("/api/v1/proof/consistency?from=1&to={b_size}"),
        "/api/v1/tlog/checkpoint".into(),
        "/api/v1/tlog/tile/0/000".into(),
        "/api/v1/tlog/tile/0/000.p/3".into(),
        "/api/v1/tlog/tile/entries/000.p/3".into(),
        "/api/v1/tokens".into(),
        "/api/v1/users".into(),
        "/api/v1/session".into(),
        "/api/v1/events?tenant=beta".into(),
        "/api/v1/beta/events".into(),
        "/api/v1/events/1?tenant=beta".into(),
        "/api/v1/events?q=table:auditlog.*&limit=1000".into(),
        "/api/v1/events?q=table:auditlog.search&sort=message".into(),
        "/api/v1/facets?field=message&q=table:auditlog.*".into(),
        "/api/v1/export?format=ndjson&q=table:auditlog.*".into(),
        "/api/v1/checkpoint?log=trail".into(),
        "/api/v1/public-key?log=trail".into(),
    ];
    for field in ["user", "ip", "action", "table", "primary_key", "source"] {
        paths.push(format!("/api/v1/facets?field={field}"));
    }
    for seq in 1..=b_size + 2 {
        paths.push(format!("/api/v1/events/{seq}"));
        paths.push(format!("/api/v1/events/{seq}?log=trail"));
        paths.push(format!("/api/v1/proof/inclusion?seq={seq}&size={b_size}"));
    }
    let spoofs: [(&str, &str); 4] = [
        ("X-Tenant", "beta"),
        ("X-Auditlog-Tenant", "beta"),
        ("Tenant", "beta"),
        ("Forwarded", "for=192.0.2.1;host=beta"),
    ];
    type Credential<'a> = (&'a str, Client, Vec<(&'a str, &'a str)>);
    let credentials: Vec<Credential<'_>> = vec![
        ("A's token", a.with_token(Some(&a_token)), Vec::new()),
        ("A's session", anon.with_token(None), alice.headers()),
    ];
    let mut checked = 0;
    for (who, client, base) in &credentials {
        for path in &paths {
            for spoof in std::iter::once(None).chain(spoofs.iter().map(Some)) {
                let mut headers = base.clone();
                headers.extend(spoof.iter().map(|(n, v)| (*n, *v)));
                let reply = client.send("GET", path, &headers, None);
                assert!(
                    !reply.text.contains(HIDDEN),
                    "{who} read B's data at {path} with {spoof:?}: {}",
                    reply.text
                );
                assert!(reply.status != 500, "{who} {path}: {}", reply.text);
                checked += 1;
            }
        }
    }
    // The live stream of A while B writes.
    let request = format!(
        "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a_token}\r\nX-Tenant: beta\r\n\r\n"
    );
    let addr = server.addr.clone();
    let watcher = std::thread::spawn(move || read_for(&addr, &request, Duration::from_secs(3)));
    std::thread::sleep(Duration::from_millis(500));
    let reply = b.post_json(&event(HIDDEN, HIDDEN, HIDDEN, json!({})));
    assert_eq!(reply.status, 201);
    let streamed = watcher.join().expect("watcher");
    assert!(streamed.starts_with("HTTP/1.1 200"), "{streamed}");
    assert!(!streamed.contains(HIDDEN), "A's stream showed B's event");
    assert!(checked > 500, "{checked}");
}

#[test]
fn scopes_and_roles_decide_what_a_caller_may_do() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let token = |scopes: &str, name: &str| create_token(&data, "default", scopes, name);
    let ingest_only = admin.with_token(Some(&token("ingest", "ingest-only")));
    let read_only = admin.with_token(Some(&token("read", "read-only")));
    let admin_only = admin.with_token(Some(&token("admin", "admin-only")));
    let one = event("u", "t", "m", json!({}));
    assert_eq!(ingest_only.post_json(&one).status, 201);
    for path in [
        "/api/v1/events",
        "/api/v1/export",
        "/api/v1/checkpoint",
        "/api/v1/tokens",
    ] {
        let reply = ingest_only.get(path);
        assert_eq!(reply.status, 403, "ingest-only {path}: {}", reply.text);
        assert_eq!(reply.code(), "forbidden");
    }
    assert_eq!(read_only.post_json(&one).status, 403);
    assert_eq!(read_only.get("/api/v1/events").status, 200);
    assert_eq!(read_only.get("/api/v1/export").status, 200);
    let new_token = json!({"name": "x", "scopes": ["read"]}).to_string();
    assert_eq!(
        read_only
            .post("/api/v1/tokens", "application/json", new_token.as_bytes())
            .status,
        403
    );
    assert_eq!(admin_only.get("/api/v1/events").status, 403);
    assert_eq!(admin_only.get("/api/v1/tokens").status, 200);

    // A token made through the API works until it is revoked, then fails at once.
    let reply = admin.post("/api/v1/tokens", "application/json", new_token.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.text);
    let fresh = admin.with_token(reply.json()["token"].as_str());
    assert_eq!(fresh.get("/api/v1/events").status, 200);
    let listed = admin.get("/api/v1/tokens").text;
    assert!(!listed.contains(reply.json()["token"].as_str().expect("token")));
    assert_eq!(
        admin.send("DELETE", "/api/v1/tokens/x", &[], None).status,
        204
    );
    assert_eq!(fresh.get("/api/v1/events").status, 401);
    assert_eq!(
        admin.send("DELETE", "/api/v1/tokens/x", &[], None).status,
        404
    );

    // People: viewers read, auditors also export and verify, admins also administer.
    let anon = admin.with_token(None);
    for (name, role) in [("vera", "viewer"), ("aude", "auditor"), ("adam", "admin")] {
        create_person(&data, "default", name, role, "a very long password");
    }
    let viewer = sign_in(&anon, "default", "vera", "a very long password");
    let auditor = sign_in(&anon, "default", "aude", "a very long password");
    let person_admin = sign_in(&anon, "default", "adam", "a very long password");
    let status = |s: &Session, method: &str, path: &str| {
        let headers = if method == "GET" {
            s.headers()
        } else {
            s.change_headers()
        };
        anon.send(
            method,
            path,
            &headers,
            (method != "GET").then_some(b"{}".as_slice()),
        )
        .status
    };
    assert_eq!(status(&viewer, "GET", "/api/v1/events"), 200);
    assert_eq!(status(&viewer, "GET", "/api/v1/export"), 403);
    assert_eq!(status(&viewer, "POST", "/api/v1/verify"), 403);
    assert_eq!(status(&viewer, "GET", "/api/v1/users"), 403);
    assert_eq!(status(&auditor, "GET", "/api/v1/export"), 200);
    assert_eq!(status(&auditor, "POST", "/api/v1/verify"), 200);
    assert_eq!(status(&auditor, "GET", "/api/v1/tokens"), 403);
    assert_eq!(status(&person_admin, "GET", "/api/v1/users"), 200);
    assert_eq!(status(&person_admin, "GET", "/api/v1/export"), 200);
    // Nobody signed in appends events: that is for ingest tokens.
    let reply = anon.send(
        "POST",
        "/api/v1/events",
        &person_admin.change_headers(),
        Some(one.as_bytes()),
    );
    assert_eq!(reply.status, 403, "{}", reply.text);
    drop(server);
}

#[test]
fn sessions_need_csrf_for_changes_and_end_at_sign_out_disable_and_new_password() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let anon = admin.with_token(None);
    create_person(&data, "default", "alice", "admin", "alice's long password");
    let reply = sign_in_reply(&anon, "default", "alice", "alice's long password");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let cookie = reply.header_values("set-cookie").join("\n");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure without TLS: {cookie}"
    );
    assert!(!reply.text.contains("alice's long password"));
    assert_eq!(reply.json()["role"], "admin");
    let alice = sign_in(&anon, "default", "alice", "alice's long password");
    let me = anon.send("GET", "/api/v1/session", &alice.headers(), None);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"], "alice");
    assert_eq!(me.json()["csrf_token"].as_str(), Some(alice.csrf.as_str()));

    // A change with the cookie alone, or a wrong token, is refused and changes nothing.
    let body = json!({"name": "made-by-alice", "scopes": ["read"]}).to_string();
    for csrf in [None, Some("wrong"), Some("")] {
        let mut headers = vec![
            ("Cookie", alice.cookie.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(csrf) = csrf {
            headers.push(("X-CSRF-Token", csrf));
        }
        let reply = anon.send("POST", "/api/v1/tokens", &headers, Some(body.as_bytes()));
        assert_eq!(reply.status, 403, "{csrf:?}: {}", reply.text);
        assert_eq!(reply.code(), "csrf_failed");
    }
    assert!(!admin.get("/api/v1/tokens").text.contains("made-by-alice"));
    let reply = anon.send(
        "POST",
        "/api/v1/tokens",
        &alice.change_headers(),
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);

    // Sign-out needs the CSRF token too, then the cookie is dead.
    let reply = anon.send("DELETE", "/api/v1/session", &alice.headers(), None);
    assert_eq!(reply.status, 403);
    let reply = anon.send("DELETE", "/api/v1/session", &alice.change_headers(), None);
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(
        reply
            .header_values("set-cookie")
            .join("")
            .contains("Max-Age=0")
    );
    for path in ["/api/v1/session", "/api/v1/events"] {
        assert_eq!(anon.send("GET", path, &alice.headers(), None).status, 401);
    }

    // Wrong password, unknown person, unknown tenant: one answer.
    for (tenant, user, password) in [
        ("default", "alice", "not alice's password"),
        ("default", "nobody", "alice's long password"),
        ("no-such-tenant", "alice", "alice's long password"),
    ] {
        let reply = sign_in_reply(&anon, tenant, user, password);
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.code(), "invalid_credentials");
        assert!(reply.header_values("set-cookie").is_empty());
    }
    // An invalid tenant name is an error, never another tenant.
    let reply = sign_in_reply(&anon, "Default", "alice", "alice's long password");
    assert_eq!(reply.status, 400, "{}", reply.text);

    // Disabling ends her sessions; so does a new password.
    let s1 = sign_in(&anon, "default", "alice", "alice's long password");
    let out = run_with_input(
        &data,
        &[
            "user",
            "set-password",
            "--name",
            "alice",
            "--password-stdin",
        ],
        b"alice's newer password\n",
    );
    assert!(out.status.success());
    assert_eq!(
        anon.send("GET", "/api/v1/session", &s1.headers(), None)
            .status,
        401
    );
    let s2 = sign_in(&anon, "default", "alice", "alice's newer password");
    let reply = admin.send("POST", "/api/v1/users/alice/disable", &[], None);
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        anon.send("GET", "/api/v1/session", &s2.headers(), None)
            .status,
        401
    );
    let reply = sign_in_reply(&anon, "default", "alice", "alice's newer password");
    assert_eq!(reply.status, 401);
}

#[test]
fn failed_sign_ins_are_throttled_per_account() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let anon = server.client().with_token(None);
    create_person(&data, "default", "alice", "viewer", "alice's long password");
    create_person(&data, "default", "bob", "viewer", "bob's long password");
    for _ in 0..5 {
        let reply = sign_in_reply(&anon, "default", "alice", "guess guess guess");
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    // Locked now, even with the right password.
    let reply = sign_in_reply(&anon, "default", "alice", "alice's long password");
    assert_eq!(reply.status, 429, "{}", reply.text);
    assert_eq!(reply.code(), "too_many_attempts");
    let retry: u64 = reply.header_values("retry-after")[0]
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    // Another account from the same address is not locked by alice's failures.
    sign_in(&anon, "default", "bob", "bob's long password");
}

#[test]
fn every_administrative_action_and_read_leaves_its_record_in_the_trail() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let anon = admin.with_token(None);
    create_person(&data, "default", "alice", "admin", "alice's long password");
    assert_eq!(
        sign_in_reply(&anon, "default", "alice", "wrong password!!").status,
        401
    );
    // The records are in the tenant's trail log: its events keep their own seqs.
    let reply = admin.post_json(&event("first", "t", "the first event", json!({})));
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json()["events"][0]["seq"],
        1,
        "records are in a tree of their own"
    );
    let alice = sign_in(&anon, "default", "alice", "alice's long password");
    let as_alice = |method: &str, path: &str, body: Option<Value>| {
        let body = body.map(|b| b.to_string());
        let reply = anon.send(
            method,
            path,
            &alice.change_headers(),
            body.as_deref().map(str::as_bytes),
        );
        assert!(reply.status < 300, "{method} {path}: {}", reply.text);
    };
    as_alice(
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "ci", "scopes": ["ingest"]})),
    );
    as_alice("DELETE", "/api/v1/tokens/ci", None);
    as_alice(
        "POST",
        "/api/v1/users",
        Some(json!({"name": "vera", "role": "viewer", "password": "vera's long password"})),
    );
    as_alice(
        "PUT",
        "/api/v1/users/vera/password",
        Some(json!({"password": "vera's newer password"})),
    );
    as_alice("POST", "/api/v1/users/vera/disable", None);
    as_alice("POST", "/api/v1/verify", None);
    let headers = alice.headers();
    assert_eq!(
        anon.send(
            "GET",
            "/api/v1/export?format=csv&q=user:alice",
            &headers,
            None
        )
        .status,
        200
    );
    assert_eq!(
        anon.send("GET", "/api/v1/events?q=needle4711", &headers, None)
            .status,
        200
    );
    as_alice("DELETE", "/api/v1/session", None);

    let expect = [
        ("table:auditlog.session action:LOGIN_FAILED", "alice"),
        ("table:auditlog.session action:LOGIN", "alice"),
        ("table:auditlog.session action:LOGOUT", "alice"),
        ("table:auditlog.token action:CREATE pk:ci", "alice"),
        ("table:auditlog.token action:DELETE pk:ci", "alice"),
        ("table:auditlog.user action:CREATE pk:vera", "alice"),
        (
            "table:auditlog.user action:UPDATE pk:vera message:password",
            "alice",
        ),
        (
            "table:auditlog.user action:UPDATE pk:vera message:disabled",
            "alice",
        ),
        ("table:auditlog.verify action:VERIFY", "alice"),
        ("table:auditlog.export action:EXPORT", "alice"),
        ("table:auditlog.search action:SEARCH needle4711", "alice"),
    ];
    for (q, user) in expect {
        let events = wait_for(&admin, &[], q);
        let users: Vec<&str> = events.iter().filter_map(|e| e["user"].as_str()).collect();
        let ok = users.iter().any(|u| match user.strip_suffix('*') {
            Some(prefix) => u.starts_with(prefix),
            None => *u == user,
        });
        assert!(ok, "{q}: want user {user}, got {users:?}");
        for e in &events {
            if e["user"] == "alice" {
                assert_eq!(e["ip"], "127.0.0.1", "{e}");
                assert_eq!(e["source"], "panel", "{e}");
            }
        }
    }
    // Only a table clause that names auditlog's tables reads the trail: a prefix that could
    // match them, or a mix with the tenant's own tables, reads the tenant's events.
    let reply = admin.post_json(&event("second", "alert", "an alert", json!({})));
    assert_eq!(reply.status, 201, "{}", reply.text);
    let enc = |q: &str| form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    for q in ["table:a*", "table:alert,auditlog.search", "table:au*,alert"] {
        let page = admin.get(&format!("/api/v1/events?q={}", enc(q)));
        assert_eq!(page.status, 200, "{q}: {}", page.text);
        let tables: Vec<&str> = page.json()["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["table"].as_str())
            .map(|t| if t == "alert" { "alert" } else { "other" })
            .collect();
        assert_eq!(tables, ["alert"], "{q}: {}", page.text);
    }
    let reply = admin.get(&format!("/api/v1/events?q={}", enc("table:auditlog.*")));
    assert!(
        reply.json()["total"].as_u64().unwrap_or(0) > 5,
        "{}",
        reply.text
    );
    // The operator's own commands on the data directory (`token create`, `user create`) are
    // not in the tenant's log: only what people and tokens do through the server is.
    let reply = admin.get("/api/v1/events?q=table:auditlog.*+user:operator&limit=1");
    assert_eq!(reply.json()["total"], 0, "{}", reply.text);
    // The records are part of the verified log.
    let out = run(&data, &["verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn no_secret_reaches_storage_the_trail_or_the_server_log() {
    let dir = tempdir();
    let data = dir.path().join("data");
    // The most talkative log level.
    let out = run(
        &data,
        &[
            "token",
            "create",
            "--scopes",
            "ingest,read,admin",
            "--name",
            "test",
        ],
    );
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    std::fs::write(data.with_extension("token"), &token).expect("token file");
    let server = Server::start_with_env(&data, &[], &[("AUDITLOG_LOG", "debug")]);
    let admin = server.client();
    let anon = admin.with_token(None);
    assert_eq!(
        admin.post_json(&event("first", "t", "m", json!({}))).status,
        201
    );
    let password = "Sup3r-secret-pa55word";
    let reply = admin.post(
        "/api/v1/users",
        "application/json",
        json!({"name": "alice", "role": "admin", "password": password})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    let _ = sign_in_reply(&anon, "default", "alice", "Sup3r-secret-WRONG");
    let reply = sign_in_reply(&anon, "default", "alice", password);
    let session_secret = reply.header_values("set-cookie")[0]
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("auditlog_session="))
        .expect("secret")
        .to_owned();
    let alice = Session {
        cookie: format!("auditlog_session={session_secret}"),
        csrf: reply.json()["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    };
    let reply = anon.send(
        "POST",
        "/api/v1/tokens",
        &alice.change_headers(),
        Some(
            json!({"name": "api-made", "scopes": ["read"]})
                .to_string()
                .as_bytes(),
        ),
    );
    let api_token = reply.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(
        admin
            .with_token(Some(&api_token))
            .get("/api/v1/events")
            .status,
        200
    );
    let _ = admin
        .with_token(Some("alog_bogus_token_value"))
        .get("/api/v1/events");
    assert_eq!(
        anon.send("DELETE", "/api/v1/session", &alice.change_headers(), None)
            .status,
        204
    );
    // Everything the trail holds, decompressed.
    let export = admin.get("/api/v1/export?format=ndjson").text
        + &wait_for(&admin, &[], "table:auditlog.session action:LOGOUT")[0].to_string()
        + &admin
            .get("/api/v1/export?format=ndjson&q=table:auditlog.*")
            .text;
    assert!(export.contains("auditlog.session"), "the trail is there");
    assert!(export.contains("auditlog.token"), "the trail is there");
    let log = {
        let mut server = server;
        server.stop();
        server.log_text()
    };
    assert!(log.contains("DEBUG") || log.contains("INFO"), "{log}");
    let mut stored = Vec::new();
    for entry in walk(&data) {
        stored.extend(std::fs::read(entry).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored).into_owned();
    for secret in [
        token.as_str(),
        api_token.as_str(),
        password,
        "Sup3r-secret-WRONG",
        session_secret.as_str(),
        "alog_bogus_token_value",
    ] {
        assert!(
            !export.contains(secret),
            "the trail holds a secret {secret}"
        );
        assert!(
            !log.contains(secret),
            "the server log holds a secret {secret}"
        );
        assert!(!stored.contains(secret), "storage holds a secret {secret}");
    }
    assert!(!log.to_ascii_lowercase().contains("authorization"), "{log}");
    assert!(!log.contains("Bearer"), "{log}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn bad_administrative_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let admin = server.client();
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let huge =
        json!({"name": "x".repeat(70_000), "role": "viewer", "password": "long enough password"})
            .to_string();
    let bodies: Vec<(&str, String)> = vec![
        ("malformed", "{\"name\": ".into()),
        ("not an object", "[1,2]".into()),
        ("wrong type", r#"{"name": "v", "role": 5, "password": "long enough password"}"#.into()),
        ("duplicate key", r#"{"name": "v", "name": "w", "role": "viewer", "password": "long enough password"}"#.into()),
        ("unknown field", r#"{"name": "v", "role": "viewer", "password": "long enough password", "tenant": "beta"}"#.into()),
        ("deep", deep),
        ("oversized", huge),
        ("html name", r#"{"name": "<script>alert(1)</script>", "role": "viewer", "password": "long enough password"}"#.into()),
        ("formula name", r#"{"name": "=cmd|' /C calc'!A0", "role": "viewer", "password": "long enough password"}"#.into()),
        ("control characters", "{\"name\": \"v\\u0000w\", \"role\": \"viewer\", \"password\": \"long enough password\"}".into()),
        ("short password", r#"{"name": "v", "role": "viewer", "password": "short"}"#.into()),
        ("unknown role", r#"{"name": "v", "role": "root", "password": "long enough password"}"#.into()),
    ];
    for (what, body) in &bodies {
        let reply = admin.post("/api/v1/users", "application/json", body.as_bytes());
        assert!(
            (400..500).contains(&reply.status),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
        assert!(!reply.code().is_empty(), "{what}: {}", reply.text);
        assert!(
            !reply.text.contains("<script>"),
            "{what} echoed: {}",
            reply.text
        );
        let reply =
            admin
                .with_token(None)
                .post("/api/v1/session", "application/json", body.as_bytes());
        assert!(
            (400..500).contains(&reply.status),
            "sign-in {what}: {}",
            reply.text
        );
    }
    let reply = admin.post(
        "/api/v1/users",
        "text/plain",
        br#"{"name": "v", "role": "viewer", "password": "long enough password"}"#,
    );
    assert_eq!(reply.status, 415, "{}", reply.text);
    let users = admin.get("/api/v1/users").json();
    assert_eq!(users["users"], json!([]), "nothing was created");
}

#[test]
fn https_serves_with_secure_cookies() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("key");
    let server = Server::start_with(
        &data,
        &[
            "--tls-cert",
            cert_path.to_str().expect("utf8"),
            "--tls-key",
            key_path.to_str().expect("utf8"),
        ],
    );
    create_person(&data, "default", "alice", "viewer", "alice's long password");
    let roots = {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).expect("root");
        roots
    };
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = |request: String| -> String {
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let conn =
            tokio_rustls::rustls::ClientConnection::new(std::sync::Arc::new(config.clone()), name)
                .expect("client");
        let tcp = TcpStream::connect(&server.addr).expect("connect");
        let mut tls = tokio_rustls::rustls::StreamOwned::new(conn, tcp);
        tls.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let health =
        https("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".into());
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = json!({"tenant": "default", "user": "alice", "password": "alice's long password"})
        .to_string();
    let reply = https(format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let cookie = reply
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = read_for(
        &server.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(1),
    );
    assert!(!plain.contains("200 OK"), "{plain}");
}

#[test]
fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let no_ip = r#"{"user": "u", "action": "LOGIN", "table": "sessions"}"#;
    for (trusted, want) in [(true, "203.0.113.50"), (false, "127.0.0.1")] {
        let dir = tempdir();
        let data = dir.path().join("data");
        let extra: &[&str] = if trusted {
            &["--trusted-proxy", "127.0.0.1,10.0.0.0/8"]
        } else {
            &[]
        };
        let server = Server::start_with(&data, extra);
        let client = server.client();
        let reply = client.send(
            "POST",
            "/api/v1/events",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", "198.51.100.1, 203.0.113.50, 10.1.1.1"),
            ],
            Some(no_ip.as_bytes()),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
        let seq = reply.json()["events"][0]["seq"].as_u64().expect("seq");
        let stored = client.get(&format!("/api/v1/events/{seq}")).json();
        assert_eq!(stored["ip"], want, "trusted={trusted}");
    }
}

#[test]
fn user_create_without_a_role_makes_a_viewer_and_disable_ends_their_sign_in() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let out = run(&data, &["user", "create", "--name", "bob"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert!(
        password.len() >= 16,
        "a generated password on stdout: {password:?}"
    );
    let list = String::from_utf8(run(&data, &["user", "list"]).stdout).expect("utf8");
    let bob = list
        .lines()
        .find(|l| l.starts_with("bob "))
        .expect("bob listed");
    assert!(bob.contains("viewer") && bob.contains("active"), "{list}");

    let server = Server::start(&data);
    let anon = server.client().with_token(None);
    let viewer = sign_in(&anon, "default", "bob", &password);
    // A viewer reads but does not export.
    let headers = viewer.headers();
    assert_eq!(
        anon.send("GET", "/api/v1/events", &headers, None).status,
        200
    );
    assert_eq!(
        anon.send("GET", "/api/v1/export", &headers, None).status,
        403
    );

    let out = run(&data, &["user", "disable", "--name", "bob"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(run(&data, &["user", "list"]).stdout).expect("utf8");
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob ") && l.contains("disabled")),
        "{list}"
    );
    assert_eq!(
        sign_in_reply(&anon, "default", "bob", &password).status,
        401
    );
}
