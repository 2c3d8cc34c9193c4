//! What the browser tests share: a browser that says where its screenshots
//! go, seeded sessions, the page's state read by script, forms filled as a
//! user does, and the check that the console holds no error.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tape_testkit::browser::{Browser, Element, screenshot_dir};

use crate::tape;

/// The longest a page may take to show what a test waits for: a guard
/// against a hang, not a measure of speed (the CPU is shared).
pub const LIMIT: Duration = Duration::from_mins(1);

/// Starts a headless browser and prints where the screenshots go, so that
/// `cargo test` shows it with a failure.
pub async fn browser() -> Browser {
    println!("screenshots: {}", screenshot_dir().display());
    Browser::start().await
}

/// Seeds `pattern` for `duration` with the fixed seed `seed` as session `id`.
pub fn seed(store: &Path, pattern: &str, duration: &str, seed: &str, id: &str) {
    let args = ["seed", "--pattern", pattern, "--duration", duration, "--seed", seed, "--session-id", id];
    tape(store).args(args).assert().success();
}

/// Fails the test, listing them, when the console holds errors other than
/// those whose message holds one of `expected`.
pub async fn assert_no_console_errors(browser: &Browser, expected: &[&str]) {
    let errors: Vec<_> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|entry| !expected.iter().any(|fragment| entry.message.contains(fragment)))
        .collect();
    for entry in &errors {
        println!("console error ({}): {}", entry.source, entry.message);
    }
    assert!(errors.is_empty(), "the browser's console holds errors: {errors:#?}");
}

/// Opens `#/route` of the UI at `api` and waits until the view `view` is
/// drawn (`data-ready` on `#view`).
pub async fn open(browser: &Browser, api: &str, route: &str, view: &str) {
    browser.goto(&format!("{api}/#/{route}")).await;
    until_view(browser, view).await;
}

/// Waits until the view `view` is drawn.
pub async fn until_view(browser: &Browser, view: &str) {
    let ready =
        format!("document.body.dataset.view === '{view}' && document.getElementById('view').dataset.ready === 'true'");
    browser.wait_until(&ready, LIMIT).await;
}

/// The values of `attribute` of the elements matching `css` that are shown
/// (a filtered-out row may stay in the page, hidden), in page order.
pub async fn shown(browser: &Browser, css: &str, attribute: &str) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0])) \
                  .filter((element) => element.getClientRects().length > 0) \
                  .map((element) => element.getAttribute(arguments[1]));";
    let values = browser.execute(script, vec![css.into(), attribute.into()]).await;
    values.as_array().unwrap().iter().map(|value| value.as_str().unwrap_or_default().to_owned()).collect()
}

/// The pixels drawn (not transparent) on the canvases matching `css`: zero
/// for a blank chart.
pub async fn ink(browser: &Browser, css: &str) -> u64 {
    let script = "let drawn = 0; \
                  for (const canvas of document.querySelectorAll(arguments[0])) { \
                    if (canvas.width === 0 || canvas.height === 0) continue; \
                    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data; \
                    for (let at = 3; at < pixels.length; at += 4) if (pixels[at] !== 0) drawn++; \
                  } \
                  return drawn;";
    browser.execute(script, vec![css.into()]).await.as_u64().unwrap()
}

/// Sets the field `name` of `form` as a user does: picks the option of a
/// `select`, types into an input.
pub async fn fill(form: &Element<'_>, name: &str, value: &str) {
    let field = form.find(&format!("[name={name}]")).await;
    if field.tag_name().await == "select" {
        // The options may come from the API after the form is drawn.
        let option = format!("option[value=\"{value}\"]");
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(found) = field.find_all(&option).await.into_iter().next() {
                found.click().await;
                break;
            }
            assert!(Instant::now() < deadline, "no option {value} in the field {name} after {LIMIT:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        field.clear().await;
        field.send_keys(value).await;
    }
}

/// A JSON string field as text, failing the test when it is missing.
pub fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value}"))
}
