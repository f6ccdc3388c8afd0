//! A small W3C WebDriver client over `ureq`, enough to drive Debian's headless Chromium
//! through `chromedriver` for the UI tests: navigate, find, click, type, run a script, pointer
//! actions, screenshots. Each [`Browser`] owns its own chromedriver (on a free port) and its
//! own Chromium profile and download directory, both deleted on drop.
//!
//! Missing `chromium` or `chromedriver` is a test failure with the install command, never a
//! silent skip (`scripts/test` installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key WebDriver sends for Enter, Escape and the arrows (W3C WebDriver §17.4.2).
pub mod keys {
    pub const ENTER: &str = "\u{E007}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const ARROW_UP: &str = "\u{E013}";
    pub const ARROW_DOWN: &str = "\u{E015}";
}

/// The W3C identifier of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
    /// How long [`Browser::wait_until`] waits.
    timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct Element(pub String);

impl Element {
    fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub fn start() -> Browser {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
            .unwrap_or_else(|| {
                panic!(
                    "the UI tests need Chromium: apt-get install chromium chromium-driver \
                     (scripts/test installs them)"
                )
            });
        let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!(
                "the UI tests need chromedriver: apt-get install chromium-driver \
                 (scripts/test installs it)"
            )
        });
        let profile = tempfile::Builder::new()
            .prefix("auditlog-ui-profile-")
            .tempdir()
            .expect("profile dir");
        let downloads = tempfile::Builder::new()
            .prefix("auditlog-ui-downloads-")
            .tempdir()
            .expect("download dir");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(90)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = agent
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--window-size=1400,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                        "prefs": {
                            "download.default_directory": downloads.path(),
                            "download.prompt_for_download": false,
                            "download.directory_upgrade": true,
                            "safebrowsing.enabled": false,
                        },
                    },
                }
            }
        });
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
            downloads,
            timeout: Duration::from_secs(30),
        };
        let created = browser.raw("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        // Chromium's headless downloads need the download behaviour set explicitly.
        browser.cdp(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": browser.downloads.path()}),
        );
        browser
    }

    pub fn download_dir(&self) -> &Path {
        self.downloads.path()
    }

    /// One WebDriver command; an error answer fails the test with its message.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            status < 300,
            "WebDriver {method} {path} answered {status}: {}",
            value["value"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string())
        );
        value["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub fn cdp(&self, command: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": command, "params": params})),
        )
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let found = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element(id.to_owned()))
    }

    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches {css:?}"))
    }

    pub fn click(&self, element: &Element) {
        self.cmd("POST", &format!("/element/{}/click", element.0), None);
    }

    pub fn click_css(&self, css: &str) {
        let element = self.wait_for(css);
        self.click(&element);
    }

    pub fn clear(&self, element: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", element.0), None);
    }

    pub fn send_keys(&self, element: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        );
    }

    /// Keys to whatever has the focus, as a user types them.
    pub fn type_keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.actions(json!([{"type": "key", "id": "keyboard", "actions": actions}]));
    }

    pub fn actions(&self, actions: Value) {
        self.cmd("POST", "/actions", Some(json!({ "actions": actions })));
        self.cmd("DELETE", "/actions", None);
    }

    /// The rendered text of an element (what a user sees).
    pub fn text(&self, element: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn text_of(&self, css: &str) -> String {
        let element = self.find(css);
        self.text(&element)
    }

    pub fn property(&self, element: &Element, name: &str) -> Value {
        self.cmd(
            "GET",
            &format!("/element/{}/property/{name}", element.0),
            None,
        )
    }

    pub fn element_arg(element: &Element) -> Value {
        element.json()
    }

    /// Waits (up to the timeout) for `css` to match a displayed element.
    pub fn wait_for(&self, css: &str) -> Element {
        self.wait_until(&format!("{css} is shown"), || {
            let element = self.try_find(css)?;
            let shown = self.cmd("GET", &format!("/element/{}/displayed", element.0), None);
            (shown == json!(true)).then_some(element)
        })
    }

    /// How long waits may take (30 s unless set).
    #[allow(dead_code)] // benches/ui.rs waits on a large trail
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Polls `probe` until it gives a value, for at most the timeout (30 s unless set).
    pub fn wait_until<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = probe() {
                return value;
            }
            if started.elapsed() > self.timeout {
                let _ = std::fs::create_dir_all(screenshot_dir());
                let failed = screenshot_dir().join("failed-wait.png");
                self.screenshot(&failed);
                panic!(
                    "timed out waiting until {what} (screenshot {})",
                    failed.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let data = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    pub fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where the tests leave their screenshots: `target/ui-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("ui-screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/ui-screenshots"))
}
