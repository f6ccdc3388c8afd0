//! The web UI of SPEC §7 in a real headless Chromium (through chromedriver) against the real
//! binary over a real socket: search, sort, column filters, Refresh, View Difference, live
//! mode, the histogram, export, the page address, sign-in, and hostile event text.
//!
//! Screenshots of the grid and the pop-up are left in `target/ui-screenshots/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Client, Server, create_token, tempdir};
use crate::webdriver::{Browser, keys, screenshot_dir};

// ---------------------------------------------------------------------------------------------
// Fixture

struct Ui {
    _dir: tempfile::TempDir,
    server: Server,
    browser: Browser,
}

/// The person the tests sign in as (an auditor: read and export).
const PERSON: &str = "olivia";
const PASSWORD: &str = "correct horse battery staple";

impl Ui {
    /// A server with `events` stored and a browser on its page, signed in as an auditor.
    fn start(events: &[Value]) -> Ui {
        let ui = Ui::unsigned(events);
        ui.add_person(PERSON, "auditor", PASSWORD);
        ui.sign_in(PERSON, PASSWORD);
        ui.wait_idle();
        ui
    }

    /// A server with `events` stored and a browser on its sign-in page.
    fn unsigned(events: &[Value]) -> Ui {
        let dir = tempdir();
        let server = Server::start(&dir.path().join("data"));
        if !events.is_empty() {
            ingest(&server.client(), events);
        }
        let browser = Browser::start();
        let ui = Ui {
            _dir: dir,
            server,
            browser,
        };
        ui.browser.goto(&ui.url("/"));
        ui.browser.wait_for("#signin-form");
        ui
    }

    fn add_person(&self, name: &str, role: &str, password: &str) {
        crate::support::create_person(
            &self._dir.path().join("data"),
            "default",
            name,
            role,
            password,
        );
    }

    /// Signs in through the page's own form.
    fn sign_in(&self, name: &str, password: &str) {
        let user = self.browser.wait_for("#signin-user");
        self.browser.clear(&user);
        self.browser.send_keys(&user, name);
        let secret = self.browser.find("#signin-password");
        self.browser.clear(&secret);
        self.browser
            .send_keys(&secret, &format!("{password}{}", keys::ENTER));
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.addr, path)
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    /// Loads `path` and waits until the grid has loaded.
    fn open(&self, path: &str) {
        self.browser.goto(&self.url(path));
        self.browser.wait_for("#app");
        self.wait_idle();
    }

    /// Waits until no grid page is loading.
    fn wait_idle(&self) {
        self.browser.wait_until("the grid has loaded", || {
            let busy = self
                .browser
                .exec("return document.getElementById('app').dataset.busy", vec![]);
            (busy == json!("0")).then_some(())
        });
    }

    /// The text of every cell of every grid row.
    fn rows(&self) -> Vec<Vec<String>> {
        let rows = self.browser.exec(
            "return [...document.querySelectorAll('#grid-body tr')]
                .map(tr => [...tr.cells].map(td => td.textContent))",
            vec![],
        );
        serde_json::from_value(rows).expect("rows")
    }

    fn column(&self, index: usize) -> Vec<String> {
        self.rows()
            .into_iter()
            .map(|row| row[index].clone())
            .collect()
    }

    /// Opens View Difference of the row whose message is `message`.
    fn open_diff_of(&self, message: &str) {
        let clicked = self.browser.exec(
            "const tr = [...document.querySelectorAll('#grid-body tr')]
                 .find(tr => tr.cells[6].textContent === arguments[0]);
             if (!tr) return false;
             tr.querySelector('.view-diff').click();
             return true",
            vec![json!(message)],
        );
        assert_eq!(clicked, json!(true), "no row with the message {message:?}");
        self.browser.wait_for("#diff[open]");
    }

    fn search(&self, q: &str) {
        let input = self.browser.find("#search");
        self.browser.clear(&input);
        self.browser
            .send_keys(&input, &format!("{q}{}", keys::ENTER));
        self.wait_idle();
    }

    fn query_text(&self) -> String {
        let input = self.browser.find("#search");
        self.browser
            .property(&input, "value")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn total(&self) -> String {
        self.browser.text_of("#total")
    }

    fn address_params(&self) -> Vec<(String, String)> {
        let url = self.browser.current_url();
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn screenshot(&self, name: &str) {
        self.browser
            .screenshot(&screenshot_dir().join(format!("{name}.png")));
    }
}

fn ingest(client: &Client, events: &[Value]) -> Value {
    let reply = client.post_json(&Value::Array(events.to_vec()).to_string());
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

/// Columns of the grid, in order.
const USER: usize = 0;
const IP: usize = 1;
const PRIMARY_KEY: usize = 3;
const ACTION: usize = 4;
const TABLE: usize = 5;
const MESSAGE: usize = 6;

/// A small trail with known users, tables and a record with a history.
fn sample_events() -> Vec<Value> {
    let users = ["alice", "bob", "carol", "dave"];
    let tables = ["customer", "ingress_route", "rate_card"];
    let mut events = Vec::new();
    for i in 0..24u32 {
        let user = users[i as usize % users.len()];
        let table = tables[i as usize % tables.len()];
        events.push(json!({
            "time": format!("2026-03-01T{:02}:{:02}:00Z", i / 2, (i % 2) * 30),
            "user": user,
            "ip": format!("203.0.113.{}", 10 + i),
            "action": "UPDATE",
            "table": table,
            "primary_key": 1000 + i,
            "message": format!("Changed {table} {} by {user}", 1000 + i),
            "before": {"name": format!("n{i}"), "credit_limit": 100, "status": "active"},
            "after": {"name": format!("n{i}"), "credit_limit": 200 + i, "status": "active"},
            "context": {"request_id": format!("req_{i}")},
        }));
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn the_grid_searches_on_enter_sorts_both_ways_and_refreshes() {
    let ui = Ui::start(&sample_events());
    let headers = ui.browser.exec(
        "return [...document.querySelectorAll('#grid-head th')].map(th => th.textContent)",
        vec![],
    );
    let headers: Vec<String> = serde_json::from_value(headers).expect("headers");
    let labels: Vec<&str> = headers
        .iter()
        .map(|h| h.trim_end_matches(['☰', '▲', '▼']))
        .collect();
    assert_eq!(labels[0], "User");
    assert_eq!(labels[1], "IP");
    assert!(labels[2].starts_with("Date/Time"), "{labels:?}");
    assert_eq!(
        &labels[3..],
        ["Primary Key", "Action", "Table", "Message", "Data"]
    );
    // Newest first by default; the log's records of its own use (the sign-in, the searches)
    // are left out unless asked for.
    let rows = ui.rows();
    assert_eq!(ui.total(), format!("{} events", rows.len()));
    assert_eq!(rows.len(), 24, "{rows:?}");
    assert!(
        rows.iter().all(|r| !r[TABLE].starts_with("auditlog.")),
        "{rows:?}"
    );
    assert_eq!(rows[0][PRIMARY_KEY], "1023⟲");
    assert!(rows[1][7].contains("View Difference"));
    assert!(ui.browser.text_of("#whoami").contains(PERSON));
    // "Log activity" asks for them: the sign-in is there.
    ui.browser.click_css("#trail-view");
    ui.wait_idle();
    assert_eq!(
        ui.browser
            .exec("return document.getElementById('search').value", vec![]),
        json!("table:auditlog.*")
    );
    ui.browser
        .wait_until("the sign-in among the log's own records", || {
            ui.browser.click_css("#refresh");
            ui.wait_idle();
            ui.rows()
                .iter()
                .any(|r| {
                    r[USER] == PERSON && r[ACTION] == "LOGIN" && r[TABLE] == "auditlog.session"
                })
                .then_some(())
        });

    // Search runs on Enter.
    ui.search("table:rate_card");
    let tables = ui.column(TABLE);
    assert_eq!(tables.len(), 8);
    assert!(tables.iter().all(|t| t == "rate_card"), "{tables:?}");
    assert_eq!(ui.total(), "8 events");

    // A click on a header sorts ascending, a second click descending.
    ui.browser.click_css("th[data-key='user'] .th-sort");
    ui.wait_idle();
    let users = ui.column(USER);
    let mut sorted = users.clone();
    sorted.sort();
    assert_eq!(users, sorted);
    assert_eq!(
        ui.browser.exec(
            "return document.querySelector(\"th[data-key='user']\").getAttribute('aria-sort')",
            vec![]
        ),
        json!("ascending")
    );
    ui.browser.click_css("th[data-key='user'] .th-sort");
    ui.wait_idle();
    let users = ui.column(USER);
    sorted.reverse();
    assert_eq!(users, sorted);
    assert!(ui.browser.text_of("th[data-key='user']").contains('▼'));
    let params = ui.address_params();
    assert!(
        params.contains(&("sort".into(), "user".into())),
        "{params:?}"
    );
    assert!(
        params.contains(&("order".into(), "desc".into())),
        "{params:?}"
    );

    // Sorting by IP (a column shown in monospace) works the same way.
    ui.browser.click_css("th[data-key='ip'] .th-sort");
    ui.wait_idle();
    let ips = ui.column(IP);
    assert_eq!(ips.first().map(String::as_str), Some("203.0.113.12"));

    // Refresh shows what was stored meanwhile.
    ingest(
        &ui.client(),
        &[
            json!({"user": "erin", "ip": "198.51.100.7", "action": "CREATE", "table": "rate_card",
                 "primary_key": "rc-9", "message": "Created rate card", "after": {"name": "x"}}),
        ],
    );
    assert_eq!(ui.total(), "8 events");
    ui.browser.click_css("#refresh");
    ui.wait_idle();
    assert_eq!(ui.total(), "9 events");
    assert!(ui.column(USER).contains(&"erin".to_owned()));

    // An invalid query is explained, with the position of the problem.
    ui.search("user:\"unterminated");
    let error = ui.browser.wait_for("#error");
    let text = ui.browser.text(&error);
    assert!(text.contains("invalid query"), "{text}");
    assert!(ui.rows().is_empty());
}

#[test]
fn a_column_filter_of_two_values_shows_chips_and_query_text() {
    let ui = Ui::start(&sample_events());
    ui.browser.click_css("th[data-key='user'] .th-menu");
    ui.browser.wait_for("#column-menu .menu-value");
    // Facet values with counts (every sample user has 6 events); the log's records of the
    // person signing in and searching are left out.
    let values = ui.browser.exec(
        "return [...document.querySelectorAll('#menu-values .menu-value')]
            .map(l => [l.dataset.value, l.querySelector('.n').textContent])",
        vec![],
    );
    let values: Vec<(String, String)> = serde_json::from_value(values).expect("values");
    for user in ["alice", "bob", "carol", "dave"] {
        assert!(values.contains(&(user.into(), "6".into())), "{values:?}");
    }
    assert!(!values.iter().any(|(v, _)| v == PERSON), "{values:?}");
    ui.screenshot("filter-menu");
    ui.browser
        .click_css("#menu-values .menu-value[data-value='alice'] input");
    ui.browser
        .click_css("#menu-values .menu-value[data-value='bob'] input");
    ui.browser.click_css("#menu-apply");
    ui.wait_idle();
    assert_eq!(ui.query_text(), "user:alice,bob");
    let chips = ui.browser.exec(
        "return [...document.querySelectorAll('#chips .chip-value')].map(c => c.textContent)",
        vec![],
    );
    assert_eq!(chips, json!(["alice", "bob"]));
    let users = ui.column(USER);
    assert_eq!(users.len(), 12);
    assert!(
        users.iter().all(|u| u == "alice" || u == "bob"),
        "{users:?}"
    );
    assert!(
        ui.address_params()
            .contains(&("q".into(), "user:alice,bob".into()))
    );

    // Removing one chip removes that value from the query.
    ui.browser.click_css("#chips .chip:nth-child(2) button");
    ui.wait_idle();
    assert_eq!(ui.query_text(), "user:alice");
    assert!(ui.column(USER).iter().all(|u| u == "alice"));

    // A typed value joins the checked ones; a filter on another column adds a clause.
    ui.browser.click_css("th[data-key='user'] .th-menu");
    let typed = ui.browser.wait_for("#menu-typed");
    ui.browser
        .send_keys(&typed, &format!("car*{}", keys::ENTER));
    ui.wait_idle();
    assert_eq!(ui.query_text(), "user:alice,car*");
    assert_eq!(ui.column(USER).len(), 12);
    ui.browser.click_css("th[data-key='table'] .th-menu");
    ui.browser
        .click_css("#menu-values .menu-value[data-value='customer'] input");
    ui.browser.click_css("#menu-apply");
    ui.wait_idle();
    assert_eq!(ui.query_text(), "user:alice,car* table:customer");
    let rows = ui.rows();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[TABLE] == "customer"));

    // Esc closes a menu.
    ui.browser.click_css("th[data-key='action'] .th-menu");
    ui.browser.wait_for("#column-menu");
    ui.browser.type_keys(keys::ESCAPE);
    ui.browser.wait_until("the menu is closed", || {
        (ui.browser.exec(
            "return document.getElementById('column-menu').hidden",
            vec![],
        ) == json!(true))
        .then_some(())
    });
}

#[test]
fn view_difference_shows_update_create_and_delete_side_by_side() {
    let events = vec![
        json!({"time": "2026-03-01T10:00:00Z", "user": "alice", "ip": "203.0.113.1",
               "action": "CREATE", "table": "customer", "primary_key": 4711,
               "message": "Created customer 4711",
               "before": null,
               "after": {"name": "Acme", "credit_limit": 100, "tags": ["a"], "billing": {"plan": "basic"}}}),
        json!({"time": "2026-03-01T11:00:00Z", "user": "bob", "ip": "2001:db8::7",
               "action": "UPDATE", "table": "customer", "primary_key": 4711,
               "message": "Raised the credit limit",
               "before": {"name": "Acme", "credit_limit": 100, "tags": ["a"], "billing": {"plan": "basic"},
                          "a": 1, "b": 2, "c": 3, "old": true},
               "after": {"name": "Acme", "credit_limit": 5000, "tags": ["a", "vip"], "billing": {"plan": "gold"},
                         "a": 1, "b": 2, "c": 3, "new": "yes"},
               "context": {"ticket": "TCK-1"}}),
        json!({"time": "2026-03-01T12:00:00Z", "user": "carol", "ip": "203.0.113.3",
               "action": "DELETE", "table": "customer", "primary_key": 4711,
               "message": "Deleted customer 4711",
               "before": {"name": "Acme", "credit_limit": 5000}, "after": null}),
        json!({"time": "2026-03-01T09:00:00Z", "user": "dave", "ip": "203.0.113.4",
               "action": "UPDATE", "table": "rate_card", "primary_key": 7,
               "message": "Another record", "before": {"x": 1}, "after": {"x": 2}}),
    ];
    let ui = Ui::start(&events);
    let diff_rows = |ui: &Ui| -> Vec<(String, String, String, String)> {
        let rows = ui.browser.exec(
            "return [...document.querySelectorAll('#diff-body .diff-table tbody tr:not(.fold)')]
                .map(tr => [...tr.cells].map(td => td.textContent))",
            vec![],
        );
        let rows: Vec<Vec<String>> = serde_json::from_value(rows).expect("diff rows");
        rows.into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
            .collect()
    };

    // The UPDATE: changed, added and removed fields by path.
    ui.open_diff_of("Raised the credit limit");
    assert!(
        ui.browser
            .text_of("#diff-title")
            .contains("UPDATE · customer · 4711")
    );
    let rows = diff_rows(&ui);
    let find = |path: &str| {
        rows.iter()
            .find(|r| r.1 == path)
            .cloned()
            .unwrap_or_else(|| panic!("no row {path} in {rows:?}"))
    };
    assert_eq!(
        find("/credit_limit"),
        (
            "~".into(),
            "/credit_limit".into(),
            "100".into(),
            "5000".into()
        )
    );
    assert_eq!(
        find("/billing/plan"),
        (
            "~".into(),
            "/billing/plan".into(),
            "\"basic\"".into(),
            "\"gold\"".into()
        )
    );
    assert_eq!(
        find("/tags/1"),
        ("+".into(), "/tags/1".into(), "—".into(), "\"vip\"".into())
    );
    assert_eq!(
        find("/old"),
        ("−".into(), "/old".into(), "true".into(), "—".into())
    );
    assert_eq!(find("/new").0, "+");
    // Unchanged fields are folded, and unfold on request.
    assert!(rows.iter().all(|r| r.1 != "/a"), "{rows:?}");
    let fold = ui.browser.text_of("#diff-body tr.fold");
    assert!(fold.contains("unchanged"), "{fold}");
    assert!(ui.browser.text_of("#diff-body").contains("TCK-1"));
    let seq = ui.browser.text_of("#diff-seq");
    assert!(seq.parse::<u64>().is_ok(), "{seq}");
    let leaf = ui.browser.text_of("#diff-leaf");
    assert_eq!(leaf.len(), 44, "base64 of 32 bytes: {leaf}");
    ui.screenshot("diff-update");
    ui.browser.click_css("#show-unchanged");
    assert!(diff_rows(&ui).iter().any(|r| r.1 == "/a" && r.0.is_empty()));

    // The proof link gives the inclusion proof of this event.
    let href = ui
        .browser
        .property(&ui.browser.find("#diff-proof"), "href")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = href.split_once(&ui.server.addr).expect("same origin").1;
    assert!(
        path.starts_with(&format!("/api/v1/proof/inclusion?seq={seq}&size=")),
        "{path}"
    );
    let proof = ui.client().get(path);
    assert_eq!(proof.status, 200, "{}", proof.text);
    assert_eq!(proof.json()["leaf_hash"], json!(leaf));

    // The raw JSON view holds the stored event.
    ui.browser.click_css("#tab-raw");
    let raw: Value =
        serde_json::from_str(&ui.browser.text_of("#raw-body")).expect("raw view is JSON");
    assert_eq!(raw["seq"].to_string(), seq);
    assert_eq!(raw["after"]["credit_limit"], json!(5000));
    ui.browser.click_css("#tab-diff");

    // Esc closes the pop-up.
    ui.browser.type_keys(keys::ESCAPE);
    ui.browser.wait_until("the pop-up is closed", || {
        (ui.browser
            .exec("return document.getElementById('diff').open", vec![])
            == json!(false))
        .then_some(())
    });

    // Keyboard: the UPDATE row stays selected; the row above it is the DELETE (newest).
    ui.browser.type_keys(keys::ARROW_UP);
    ui.browser.type_keys(keys::ENTER);
    ui.browser.wait_for("#diff[open]");
    assert!(ui.browser.text_of("#diff-title").starts_with("DELETE"));
    assert!(ui.browser.text_of("#diff-body").contains("Deleted"));
    let rows = diff_rows(&ui);
    assert!(rows.iter().all(|r| r.0 == "−" && r.3 == "—"), "{rows:?}");
    assert_eq!(rows.len(), 2);
    ui.browser.type_keys(keys::ESCAPE);

    // Down twice: the CREATE (skipping the UPDATE): every field added, nested by path.
    ui.browser.type_keys(keys::ARROW_DOWN);
    ui.browser.type_keys(keys::ARROW_DOWN);
    ui.browser.type_keys(keys::ENTER);
    ui.browser.wait_for("#diff[open]");
    assert!(ui.browser.text_of("#diff-title").starts_with("CREATE"));
    assert!(ui.browser.text_of("#diff-body").contains("Created"));
    let rows = diff_rows(&ui);
    let paths: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    // Stored events are canonical (RFC 8785): keys in sorted order.
    assert_eq!(
        paths,
        ["/billing/plan", "/credit_limit", "/name", "/tags/0"]
    );
    assert!(rows.iter().all(|r| r.0 == "+" && r.2 == "—"), "{rows:?}");

    // The history of this record is one click away.
    ui.browser.click_css("#diff-history");
    ui.wait_idle();
    assert_eq!(ui.query_text(), "table:customer primary_key:4711");
    assert_eq!(ui.rows().len(), 3);
}

#[test]
fn live_mode_shows_new_events_without_refresh() {
    let ui = Ui::start(&sample_events());
    ui.search("user:erin");
    assert!(ui.rows().is_empty());
    ui.browser.click_css("#live");
    assert!(ui.address_params().contains(&("live".into(), "1".into())));
    // The stream starts at the log's end: wait until it is connected before ingesting.
    ui.browser.wait_until("the stream is open", || {
        (ui.browser
            .exec("return document.getElementById('app').dataset.live", vec![])
            == json!("open"))
        .then_some(())
    });
    ingest(
        &ui.client(),
        &[
            json!({"user": "erin", "ip": "198.51.100.7", "action": "LOGIN", "table": "session",
                   "message": "Signed in"}),
            json!({"user": "frank", "ip": "198.51.100.8", "action": "LOGIN", "table": "session",
                   "message": "Not shown: another user"}),
        ],
    );
    let started = Instant::now();
    ui.browser.wait_until("the live event is in the grid", || {
        (ui.column(USER) == ["erin"]).then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(ui.total(), "1 event");
    assert_eq!(ui.column(MESSAGE), ["Signed in"]);
    // Only the matching event came.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ui.rows().len(), 1);
}

#[test]
fn dragging_across_the_histogram_selects_a_time_range() {
    let ui = Ui::start(&sample_events());
    // The sample's users only.
    ui.search("user:alice,bob,carol,dave");
    ui.browser.wait_for("#histogram svg rect.bar");
    let bars = ui
        .browser
        .exec(
            "return document.querySelectorAll('#histogram rect.bar').length",
            vec![],
        )
        .as_u64()
        .expect("bars");
    assert!(bars >= 2, "{bars} bars");
    let width = ui
        .browser
        .exec(
            "return document.getElementById('histogram').getBoundingClientRect().width",
            vec![],
        )
        .as_f64()
        .expect("width");
    // Drag over the left half (origin: the element's centre).
    let histogram = ui.browser.find("#histogram");
    let origin = Browser::element_arg(&histogram);
    let half = (width / 2.0) as i64;
    ui.browser.actions(json!([{
        "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
        "actions": [
            {"type": "pointerMove", "origin": origin, "x": -half + 2, "y": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "origin": origin, "x": -half / 2, "y": 0, "duration": 100},
            {"type": "pointerMove", "origin": origin, "x": -2, "y": 0, "duration": 100},
            {"type": "pointerUp", "button": 0},
        ]
    }]));
    ui.wait_idle();
    let q = ui.query_text();
    assert!(
        q.starts_with("user:alice,bob,carol,dave time:2026-03-01T00:00:00"),
        "{q}"
    );
    assert!(q.contains(".."), "{q}");
    let shown = ui.rows().len();
    assert!(shown > 0 && shown < 24, "{shown} rows for {q}");
    // The range is a real query: the API agrees with the grid.
    let mut path = String::from("/api/v1/events?q=");
    path.extend(form_urlencoded::byte_serialize(q.as_bytes()));
    let api = ui.client().get(&path).json();
    assert_eq!(api["total"], json!(shown));
    let chips = ui.browser.text_of("#chips");
    assert!(chips.contains("Time"), "{chips}");
}

#[test]
fn export_downloads_the_current_view() {
    let ui = Ui::start(&sample_events());
    ui.search("user:alice");
    let href = ui
        .browser
        .property(&ui.browser.find("#export-csv"), "href")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(href.contains("q=user%3Aalice"), "{href}");
    assert!(href.contains("format=csv"), "{href}");
    ui.browser.click_css("#export-csv");
    let file = ui.browser.wait_until("the CSV is downloaded", || {
        std::fs::read_dir(ui.browser.download_dir())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"))
    });
    let text = std::fs::read_to_string(&file).expect("read the download");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].starts_with("seq,"), "{}", lines[0]);
    assert!(lines[1..].iter().all(|l| l.contains("alice")), "{text}");

    // NDJSON: the same filter, one event per line and the signed checkpoint last.
    let href = ui
        .browser
        .property(&ui.browser.find("#export-ndjson"), "href")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = href.split_once(&ui.server.addr).expect("same origin").1;
    let reply = ui.client().get(path);
    assert_eq!(reply.status, 200);
    let lines: Vec<Value> = reply
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[..6].iter().all(|l| l["user"] == json!("alice")));
    assert!(lines[6]["checkpoint"].is_string());
}

#[test]
fn the_page_address_reproduces_the_view() {
    let ui = Ui::start(&sample_events());
    ui.open("/?q=table%3Acustomer&sort=primary_key&order=asc&tz=local&live=1");
    assert_eq!(ui.query_text(), "table:customer");
    let keys_shown = ui.column(PRIMARY_KEY);
    assert_eq!(keys_shown.len(), 8);
    let mut sorted = keys_shown.clone();
    sorted.sort();
    assert_eq!(keys_shown, sorted);
    assert!(
        ui.browser
            .text_of("th[data-key='primary_key']")
            .contains('▲')
    );
    assert_eq!(
        ui.browser
            .exec("return document.getElementById('live').checked", vec![]),
        json!(true)
    );
    assert_eq!(
        ui.browser.exec(
            "return document.getElementById('tz-local').getAttribute('aria-pressed')",
            vec![]
        ),
        json!("true")
    );
    assert!(ui.browser.text_of("th[data-key='time']").contains("local"));
    assert_eq!(ui.browser.text_of("#chips .chip-value"), "customer");

    // Changing the view changes the address; Back restores the earlier view.
    ui.browser.click_css("#tz-utc");
    ui.search("user:bob");
    let params = ui.address_params();
    assert!(
        params.contains(&("q".into(), "user:bob".into())),
        "{params:?}"
    );
    assert!(!params.iter().any(|(k, _)| k == "tz"), "{params:?}");
    ui.browser.exec("history.back()", vec![]);
    ui.browser.wait_until("the earlier query is back", || {
        (ui.query_text() == "table:customer").then_some(())
    });
    ui.wait_idle();
    assert!(ui.column(TABLE).iter().all(|t| t == "customer"));
}

#[test]
fn a_narrow_screen_shows_the_rows_as_cards() {
    let ui = Ui::start(&sample_events());
    ui.browser.set_window_size(420, 900);
    std::thread::sleep(Duration::from_millis(300));
    let display = ui.browser.exec(
        "return getComputedStyle(document.querySelector('#grid-body tr')).display",
        vec![],
    );
    assert_eq!(display, json!("block"));
    let overflow = ui.browser.exec(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
        vec![],
    );
    assert_eq!(overflow, json!(true), "the page scrolls sideways");
    ui.screenshot("narrow");
}

/// Payloads that would run script if any text reached an HTML parser.
const IMG: &str = "<img src=x onerror=window.__xss=1>";
const SCRIPT: &str = "<script>window.__xss=1</script>";

#[test]
fn hostile_event_text_is_shown_as_inert_text() {
    let hostile = json!({
        "time": "2026-03-01T10:00:00Z",
        "user": IMG,
        "ip": "203.0.113.66",
        "action": "UPDATE",
        "table": SCRIPT,
        "primary_key": IMG,
        "message": format!("{SCRIPT} {IMG}"),
        "before": {IMG: SCRIPT, "nested": {SCRIPT: IMG}, "list": [IMG]},
        "after": {IMG: IMG, "nested": {SCRIPT: SCRIPT}, "list": [SCRIPT], SCRIPT: 1},
        "context": {"forwarded_for": format!("10.0.0.1\"><svg onload=window.__xss=1>"), "ua": SCRIPT},
    });
    let ui = Ui::start(&[hostile]);
    let injected = |ui: &Ui| {
        ui.browser.exec(
            "return [window.__xss === undefined,
                     document.querySelectorAll('img, svg[onload], #grid-body script, dialog script').length]",
            vec![],
        )
    };
    let rows = ui.rows();
    let row = rows
        .iter()
        .find(|r| r[ACTION] == "UPDATE")
        .expect("the hostile event is shown");
    assert_eq!(row[USER], IMG);
    assert_eq!(row[TABLE], SCRIPT);
    assert_eq!(row[PRIMARY_KEY], format!("{IMG}⟲"));
    assert_eq!(row[MESSAGE], format!("{SCRIPT} {IMG}"));
    assert_eq!(row[ACTION], "UPDATE");
    assert_eq!(injected(&ui), json!([true, 0]));

    // The pop-up: keys and values at every depth.
    ui.open_diff_of(&format!("{SCRIPT} {IMG}"));
    ui.browser.click_css("#show-unchanged");
    let body = ui.browser.text_of("#diff-body");
    assert!(body.contains(&format!("/{IMG}")), "{body}");
    // A `/` in a key is `~1` in its JSON Pointer (RFC 6901).
    let pointer = SCRIPT.replace('/', "~1");
    assert!(body.contains(&format!("/nested/{pointer}")), "{body}");
    assert!(body.contains("svg onload"), "{body}");
    assert!(ui.browser.text_of("#diff-title").contains(SCRIPT));
    ui.browser.click_css("#tab-raw");
    assert!(ui.browser.text_of("#raw-body").contains(IMG));
    assert_eq!(injected(&ui), json!([true, 0]));
    ui.browser.type_keys(keys::ESCAPE);

    // The filter menu and the chips.
    for column in ["user", "table", "primary_key", "message"] {
        ui.browser
            .click_css(&format!("th[data-key='{column}'] .th-menu"));
        ui.browser.wait_for("#menu-values .menu-value");
        assert_eq!(injected(&ui), json!([true, 0]), "{column} menu");
        let shown = ui.browser.text_of("#menu-values");
        assert!(shown.contains('<'), "{column}: {shown}");
        ui.browser.type_keys(keys::ESCAPE);
    }
    ui.browser.click_css("th[data-key='user'] .th-menu");
    ui.browser.wait_for("#menu-values .menu-value");
    ui.browser.exec(
        "[...document.querySelectorAll('#menu-values .menu-value')]
            .find(l => l.dataset.value === arguments[0]).querySelector('input').click()",
        vec![json!(IMG)],
    );
    ui.browser.click_css("#menu-apply");
    ui.wait_idle();
    assert_eq!(ui.browser.text_of("#chips .chip-value"), IMG);
    assert_eq!(
        ui.rows().len(),
        1,
        "the filter on the hostile value finds it"
    );
    assert_eq!(injected(&ui), json!([true, 0]));
}

#[test]
fn every_page_response_carries_a_strict_policy() {
    let dir = tempdir();
    let server = Server::start(&dir.path().join("data"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for path in [
        "/",
        "/assets/app.js",
        "/assets/app.css",
        "/assets/favicon.svg",
        "/assets/nope.js",
    ] {
        let response = agent
            .get(format!("http://{}{path}", server.addr))
            .call()
            .expect("GET");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let expected = if path.contains("nope") { 404 } else { 200 };
        assert_eq!(response.status().as_u16(), expected, "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    let types = [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in types {
        let response = agent
            .get(format!("http://{}{path}", server.addr))
            .call()
            .expect("GET");
        let got = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(got.starts_with(content_type), "{path}: {got}");
        // An unchanged asset costs a 304.
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("etag")
            .to_owned();
        let again = agent
            .get(format!("http://{}{path}", server.addr))
            .header("If-None-Match", &etag)
            .call()
            .expect("GET");
        assert_eq!(again.status().as_u16(), 304, "{path}");
    }
}

#[test]
fn signing_in_and_out_through_the_page_shows_only_the_own_tenant() {
    let ui = Ui::unsigned(&sample_events());
    ui.add_person(PERSON, "auditor", PASSWORD);
    ui.add_person("victor", "viewer", "a viewer's password");
    // Another tenant's trail, with a user name found nowhere in this one.
    let data = ui._dir.path().join("data");
    let other = create_token(&data, "other", "ingest,read", "other-app");
    ingest(
        &ui.client().with_token(Some(&other)),
        &[
            json!({"user": "mallory", "ip": "192.0.2.1", "action": "UPDATE", "table": "secret",
                 "primary_key": 1, "message": "other tenant", "before": {"a": 1}, "after": {"a": 2}}),
        ],
    );
    assert_eq!(
        ui.browser
            .exec("return document.getElementById('app').hidden", vec![]),
        json!(true)
    );
    ui.screenshot("signin");

    // A wrong password is refused with a message, and nothing else is shown.
    ui.sign_in(PERSON, "not the password");
    let error = ui.browser.wait_for("#signin-error");
    assert!(ui.browser.text(&error).contains("Wrong"));
    assert_eq!(
        ui.browser
            .exec("return document.getElementById('app').hidden", vec![]),
        json!(true)
    );

    // Too many wrong passwords: the page says so, with the time to wait.
    ui.add_person("zed", "viewer", "zed's own password");
    let anonymous = ui.client().with_token(None);
    for _ in 0..6 {
        let reply = anonymous.post(
            "/api/v1/session",
            "application/json",
            br#"{"tenant": "default", "user": "zed", "password": "guess"}"#,
        );
        assert!(reply.status == 401 || reply.status == 429, "{}", reply.text);
    }
    ui.browser.exec(
        "document.getElementById('signin-error').hidden = true",
        vec![],
    );
    ui.sign_in("zed", "another guess");
    let error = ui.browser.wait_for("#signin-error");
    let text = ui.browser.text(&error);
    assert!(text.contains("Too many attempts"), "{text}");

    ui.sign_in(PERSON, PASSWORD);
    ui.browser.wait_for("#grid-body tr");
    ui.wait_idle();
    let who = ui.browser.text_of("#whoami");
    assert!(
        who.contains(PERSON) && who.contains("default") && who.contains("auditor"),
        "{who}"
    );
    ui.browser.wait_for("#export-csv");
    let users = ui.column(USER);
    assert!(!users.iter().any(|u| u == "mallory"), "{users:?}");
    ui.search("mallory");
    assert!(ui.rows().is_empty());
    assert_eq!(ui.total(), "0 events");
    ui.browser.wait_for("#grid-empty");

    // The session survives a reload (cookie), and sign-out ends it for good.
    ui.open("/");
    assert!(ui.browser.text_of("#whoami").contains(PERSON));
    ui.browser.click_css("#signout");
    ui.browser.wait_for("#signin-form");
    assert!(ui.browser.text_of("#signin-error").contains("signed out"));
    ui.browser.goto(&ui.url("/"));
    ui.browser.wait_for("#signin-form");
    let status = ui
        .browser
        .exec("return fetch('/api/v1/events').then(r => r.status)", vec![]);
    assert_eq!(status, json!(401));

    // A viewer may read but not export: the page does not offer it.
    ui.sign_in("victor", "a viewer's password");
    ui.browser.wait_for("#grid-body tr");
    ui.wait_idle();
    assert!(ui.browser.text_of("#whoami").contains("viewer"));
    assert_eq!(
        ui.browser
            .exec("return document.getElementById('export').hidden", vec![]),
        json!(true)
    );
}

/// Realistic generated events, spread over the last hours, for the README's pictures.
#[test]
fn screenshots_of_a_realistic_trail() {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let lines = crate::support::generate(400, 42);
    let n = lines.len() as i64;
    let events: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut event: Value = serde_json::from_str(line).expect("generated JSON");
            let at = now - time::Duration::seconds((n - i as i64) * 45 + 60);
            event["time"] = json!(at.format(&Rfc3339).expect("format"));
            event
        })
        .collect();
    let ui = Ui::start(&events);
    ui.screenshot("grid");
    let update = ui.rows().iter().position(|r| r[ACTION] == "UPDATE");
    let update = update.expect("an UPDATE among the newest events");
    ui.browser.click_css(&format!(
        "#grid-body tr:nth-child({}) .view-diff",
        update + 1
    ));
    ui.browser.wait_for("#diff[open]");
    ui.screenshot("diff");
}
