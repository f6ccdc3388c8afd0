//! Interoperability with an implementation we did not write: Go's `sumdb/tlog` and
//! `sumdb/note` (Debian's golang-golang-x-mod-dev, installed by `scripts/test`) audit a log
//! through the C2SP tlog-tiles endpoints (`tests/interop/tlogcheck.go`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Server, generate, tempdir};

#[test]
fn go_sumdb_tlog_verifies_our_checkpoint_tiles_and_proofs() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    // Several full tiles and a partial one at level 0, a partial one at level 1.
    let events = generate(1500, 9);
    for chunk in events.chunks(500) {
        let reply = client.post(
            "/api/v1/events",
            "application/x-ndjson",
            chunk.join("\n").as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client.get("/api/v1/tlog/checkpoint");
        if reply.status == 200 && reply.text.lines().nth(1) == Some("1500") {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint of size 1500");
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = client.get("/api/v1/public-key").text.trim().to_owned();
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/tlogcheck.go");
    let cache = dir.path().join("gocache");
    let output = Command::new("go")
        .args(["run", program])
        .arg(format!("http://{}", server.addr))
        .arg(&server.token)
        .arg(&key)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .output()
        .expect("run go (scripts/test installs golang-go and golang-golang-x-mod-dev)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "Go's tlog disagrees:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn tile_paths_outside_the_tree_or_malformed_are_not_found() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let client = server.client();
    let reply = client.post(
        "/api/v1/events",
        "application/x-ndjson",
        generate(10, 3).join("\n").as_bytes(),
    );
    assert_eq!(reply.status, 201);
    for path in [
        "tile/0/000",
        "tile/0/001.p/1",
        "tile/0/000.p/11",
        "tile/1/000.p/1",
        "tile/0/x000/000",
        "tile/0/0",
        "tile/abc/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/entries/000.p/11",
        "tile/../../etc/passwd",
    ] {
        let reply = client.get(&format!("/api/v1/tlog/{path}"));
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
    }
    // The tile itself (its bytes are checked by the Go test).
    let tile = client.get("/api/v1/tlog/tile/0/000.p/10");
    assert_eq!(tile.status, 200);
    assert_eq!(tile.content_type, "application/octet-stream");
}
