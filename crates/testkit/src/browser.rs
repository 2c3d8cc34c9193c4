//! A real browser for tests: Debian's headless Chromium driven through
//! `chromedriver` with a small W3C WebDriver client over HTTP (reqwest).
//! Every method fails the test with what the driver answered, so a test
//! reads as the steps a user takes. Screenshots go to [`screenshot_dir`];
//! the browser's console is kept, and [`Browser::console_errors`] lists
//! its errors.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use tape_testkit::browser::Browser;
//!
//! let browser = Browser::start().await;
//! browser.goto("http://127.0.0.1:8080/").await;
//! let table = browser.wait_for("#sessions-table", Duration::from_secs(10)).await;
//! println!("{}", table.text().await);
//! browser.screenshot("sessions").await;
//! assert!(browser.console_errors().await.is_empty());
//! # }
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The environment variable naming the screenshot directory; without it,
/// `target/screenshots` under the workspace.
pub const SCREENSHOTS_VARIABLE: &str = "OTLP_TAPE_SCREENSHOTS";

/// The Chromium binary (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The driver (Debian's `chromium-driver` package).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the driver may take to say it is ready, and a browser session
/// to start: a guard against a hang, not a measure of speed.
const START_LIMIT: Duration = Duration::from_mins(1);

/// How often [`Browser::wait_for`] and [`Browser::wait_until`] look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The W3C WebDriver key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots go: `$OTLP_TAPE_SCREENSHOTS`, else `target/screenshots`
/// under the workspace. Created when missing.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os(SCREENSHOTS_VARIABLE)
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("screenshot directory {}: {error}", dir.display()));
    dir.canonicalize().unwrap_or(dir)
}

/// An entry of the browser's console log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `javascript`, `console-api`, `network`, ...
    pub source: String,
    /// The text, with the script's address and line.
    pub message: String,
}

/// A headless Chromium driven by its own `chromedriver` on a free loopback
/// port. Dropping it ends the browser session and kills the driver and
/// every process it started.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: reqwest::Client,
    log: Mutex<Vec<LogEntry>>,
}

/// An element of the page, found by [`Browser::find`] or
/// [`Browser::find_all`].
#[derive(Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Element").field("id", &self.id).finish()
    }
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium (window 1400x900,
    /// console kept at every level).
    pub async fn start() -> Browser {
        let port = free_port();
        let mut command = Command::new(CHROMEDRIVER);
        command.arg(format!("--port={port}")).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // A group of its own, so that Drop can end Chromium too whatever
        // state the driver is in.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {CHROMEDRIVER} ({error}); `bash .ci/install-browser` installs it")
        });
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: reqwest::Client::new(),
            log: Mutex::new(Vec::new()),
        };
        browser.until_driver_ready().await;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,900"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created =
            browser.send(reqwest::Method::POST, format!("{}/session", browser.base), Some(capabilities)).await;
        let session = created["sessionId"].as_str();
        let session = session.unwrap_or_else(|| panic!("no browser session in the driver's answer: {created}"));
        session.clone_into(&mut browser.session);
        browser
    }

    async fn until_driver_ready(&mut self) {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.driver.try_wait().unwrap() {
                panic!("{CHROMEDRIVER} exited at start: {status}");
            }
            let answer = self.client.get(format!("{}/status", self.base)).send().await;
            if let Ok(answer) = answer
                && let Ok(text) = answer.text().await
                && let Ok(status) = serde_json::from_str::<Value>(&text)
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(Instant::now() < deadline, "{CHROMEDRIVER} was not ready after {START_LIMIT:?}");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends a command to the driver and hands back its `value`; an error
    /// answer fails the test.
    async fn send(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
        match self.try_send(method.clone(), url.clone(), body).await {
            Ok(value) => value,
            Err(error) => panic!("webdriver {method} {url}: {error}"),
        }
    }

    async fn try_send(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let answer = request.send().await.map_err(|error| error.to_string())?;
        let status = answer.status();
        let text = answer.text().await.map_err(|error| error.to_string())?;
        let mut parsed: Value = serde_json::from_str(&text).map_err(|_| format!("{status}: {text}"))?;
        let value = parsed["value"].take();
        if status.is_success() { Ok(value) } else { Err(format!("{status} {}: {}", value["error"], value["message"])) }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.send(method, format!("{}/session/{}{path}", self.base, self.session), body).await
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The address of the page shown.
    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// The first element that matches the CSS selector `css`; fails the
    /// test when none does.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self.command(reqwest::Method::POST, "/element", Some(locator(css))).await;
        self.element(&found)
    }

    /// Every element that matches the CSS selector `css`, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.command(reqwest::Method::POST, "/elements", Some(locator(css))).await;
        found.as_array().map(|found| found.iter().map(|element| self.element(element)).collect()).unwrap_or_default()
    }

    fn element(&self, reference: &Value) -> Element<'_> {
        let id = reference[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("not an element: {reference}"));
        Element { browser: self, id: id.to_owned() }
    }

    /// Runs `script` (a function body: `return ...` hands back a value) with
    /// `args` (elements as [`Element::reference`]) and hands back what it
    /// returns; a thrown exception fails the test.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Waits until an element matches `css` and hands it back; after
    /// `limit` fails the test with what the page shows (a guard against a
    /// hang, not a measure of speed).
    pub async fn wait_for(&self, css: &str, limit: Duration) -> Element<'_> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = self.find_all(css).await.into_iter().next() {
                return found;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no element {css} after {limit:?}")).await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the JavaScript expression `condition` is truthy (an
    /// exception counts as false) and hands back its value; after `limit`
    /// fails the test with what the page shows.
    pub async fn wait_until(&self, condition: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        let script = format!("try {{ return ({condition}); }} catch (error) {{ return null; }}");
        loop {
            let value = self.execute(&script, Vec::new()).await;
            if truthy(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("{condition} still {value} after {limit:?}")).await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Fails the test with `what`, the page's address, view and `#error`,
    /// and the console's errors; a screenshot `failed-*.png` shows the page.
    async fn fail(&self, what: &str) -> ! {
        let page = self
            .execute(
                "return {url: location.href, view: document.body && document.body.dataset.view, \
                 error: (document.getElementById('error') || {}).textContent};",
                Vec::new(),
            )
            .await;
        let name = format!("failed-{}", std::process::id());
        let shot = self.screenshot(&name).await;
        let errors = self.console_errors().await;
        panic!("{what}\npage: {page}\nconsole errors: {errors:#?}\nscreenshot: {}", shot.display());
    }

    /// Accepts the open `alert`, `confirm` or `prompt` and hands back its
    /// text.
    pub async fn accept_alert(&self) -> String {
        let text = self.command(reqwest::Method::GET, "/alert/text", None).await;
        self.command(reqwest::Method::POST, "/alert/accept", Some(json!({}))).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the window as `NAME.png` in [`screenshot_dir`] and
    /// hands back its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap_or_else(|error| panic!("the screenshot is not base64: {error}"));
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|error| panic!("screenshot {}: {error}", path.display()));
        path
    }

    /// Every console entry of the browser so far (the driver hands each
    /// out once; they are kept here).
    pub async fn console(&self) -> Vec<LogEntry> {
        let fresh = self.command(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        let mut log = self.log.lock().unwrap();
        for entry in fresh.as_array().into_iter().flatten() {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
            log.push(LogEntry { level: text("level"), source: text("source"), message: text("message") });
        }
        log.clone()
    }

    /// The console entries at level `SEVERE` so far: uncaught exceptions,
    /// `console.error` and failed loads.
    pub async fn console_errors(&self) -> Vec<LogEntry> {
        self.console().await.into_iter().filter(|entry| entry.level == "SEVERE").collect()
    }
}

impl Element<'_> {
    /// The element as a script argument of [`Browser::execute`]
    /// (`arguments[i]` in the script).
    pub fn reference(&self) -> Value {
        json!({ELEMENT_KEY: self.id})
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.browser.command(method, &format!("/element/{}{path}", self.id), body).await
    }

    /// Clicks the element (scrolled into view first).
    pub async fn click(&self) {
        self.command(reqwest::Method::POST, "/click", Some(json!({}))).await;
    }

    /// Types `text` into the element.
    pub async fn send_keys(&self, text: &str) {
        self.command(reqwest::Method::POST, "/value", Some(json!({"text": text}))).await;
    }

    /// Empties an input or a text area.
    pub async fn clear(&self) {
        self.command(reqwest::Method::POST, "/clear", Some(json!({}))).await;
    }

    /// The element's visible text.
    pub async fn text(&self) -> String {
        self.command(reqwest::Method::GET, "/text", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute's value (or the property's, as WebDriver does), if set.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.command(reqwest::Method::GET, &format!("/attribute/{name}"), None).await.as_str().map(str::to_owned)
    }

    /// A property of the DOM element (`value`, `checked`, ...), if set.
    pub async fn property(&self, name: &str) -> Value {
        self.command(reqwest::Method::GET, &format!("/property/{name}"), None).await
    }

    /// The element's tag name, in lower case.
    pub async fn tag_name(&self) -> String {
        self.command(reqwest::Method::GET, "/name", None).await.as_str().unwrap_or_default().to_lowercase()
    }

    /// Drags the mouse across the element as a user does: presses the left
    /// button at `from` and releases it at `to`, both offsets `(x, y)` in
    /// CSS pixels from the element's centre.
    pub async fn drag(&self, from: (i64, i64), to: (i64, i64)) {
        let origin = self.reference();
        let steps = json!([
            {"type": "pointerMove", "origin": origin, "x": from.0, "y": from.1, "duration": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "origin": origin, "x": i64::midpoint(from.0, to.0), "y": i64::midpoint(from.1, to.1), "duration": 100},
            {"type": "pointerMove", "origin": origin, "x": to.0, "y": to.1, "duration": 100},
            {"type": "pointerUp", "button": 0},
        ]);
        let actions = json!({"actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": steps},
        ]});
        self.browser.command(reqwest::Method::POST, "/actions", Some(actions)).await;
        self.browser.command(reqwest::Method::DELETE, "/actions", None).await;
    }

    /// The first element inside this one that matches `css`; fails the
    /// test when none does.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self.command(reqwest::Method::POST, "/element", Some(locator(css))).await;
        self.browser.element(&found)
    }

    /// Every element inside this one that matches `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self.command(reqwest::Method::POST, "/elements", Some(locator(css))).await;
        found
            .as_array()
            .map(|found| found.iter().map(|element| self.browser.element(element)).collect())
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session quits Chromium; plain blocking HTTP, since no
        // runtime can be awaited here.
        if !self.session.is_empty() {
            let address = self.base.trim_start_matches("http://").to_owned();
            let _ = delete_session(&address, &self.session);
        }
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(address: &str, session: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "DELETE /session/{session} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

fn locator(css: &str) -> Value {
    json!({"using": "css selector", "value": css})
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(value) => *value,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A free port of 127.0.0.1 (free when asked; the driver binds it next).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(20);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drives_a_page_and_keeps_its_console_errors() {
        println!("screenshots: {}", screenshot_dir().display());
        let browser = Browser::start().await;
        let page = "<title>t</title><input id=i><p id=p data-x=1>hello</p><canvas id=c width=10 height=10></canvas>\
                    <script>setTimeout(() => { document.body.dataset.ready = 'true'; console.error('boom'); }, 100);\
                    document.getElementById('i').addEventListener('input', (e) => \
                    document.getElementById('p').textContent = e.target.value);</script>";
        browser.goto(&format!("data:text/html,{page}")).await;
        browser.wait_until("document.body.dataset.ready === 'true'", LIMIT).await;
        let paragraph = browser.find("#p").await;
        assert_eq!((paragraph.text().await, paragraph.attribute("data-x").await), ("hello".into(), Some("1".into())));
        browser.find("#i").await.send_keys("typed").await;
        assert_eq!(paragraph.text().await, "typed");
        assert!(browser.find_all("#none").await.is_empty());
        let sum =
            browser.execute("return arguments[0].id + arguments[1];", vec![paragraph.reference(), json!(2)]).await;
        assert_eq!(sum, json!("p2"));
        // A drag presses at one offset from the centre and releases at another.
        let area = "<div id=a style='width:200px;height:100px'></div><script>const a = document.getElementById('a');\
                    a.addEventListener('mousedown', (e) => a.dataset.down = e.offsetX);\
                    document.addEventListener('mouseup', (e) => a.dataset.up = e.offsetX);</script>";
        browser.goto(&format!("data:text/html,{area}")).await;
        browser.find("#a").await.drag((-50, 0), (50, 0)).await;
        let offsets = browser
            .execute("const a = document.getElementById('a'); return [a.dataset.down, a.dataset.up];", vec![])
            .await;
        assert_eq!(offsets, json!(["50", "150"]));
        let shot = browser.screenshot("browser-harness").await;
        assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"), "{}", shot.display());
        let errors = browser.console_errors().await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("boom"), "{errors:?}");
        // Kept once read.
        assert_eq!(browser.console_errors().await, errors);
    }
}
