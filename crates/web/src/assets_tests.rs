use sha2::{Digest, Sha256};

use super::{asset, paths};

fn text(path: &str) -> String {
    String::from_utf8(asset(path).unwrap().bytes.to_vec()).unwrap()
}

/// The paths a page or module refers to: `src="..."`, `href="..."` and
/// `from './x.js'` / `import('./x.js')`, resolved against the file's place.
fn references(path: &str) -> Vec<String> {
    let source = text(path);
    let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut found = Vec::new();
    for marker in ["src=\"", "href=\"", "from '", "import('"] {
        for piece in source.split(marker).skip(1) {
            let end = piece.find(['"', '\'']).unwrap();
            let target = &piece[..end];
            if target.starts_with('#')
                || target.starts_with("/api/")
                || target.starts_with("data:")
                || target.is_empty()
            {
                continue;
            }
            let resolved = match target.strip_prefix("./") {
                Some(rest) if !base.is_empty() => format!("{base}/{rest}"),
                Some(rest) => rest.to_string(),
                None => target.trim_start_matches('/').to_string(),
            };
            found.push(resolved);
        }
    }
    found
}

#[test]
fn index_is_served_for_the_root() {
    assert_eq!(asset("").unwrap(), asset("index.html").unwrap());
    assert_eq!(asset("/").unwrap(), asset("index.html").unwrap());
    assert!(asset("").unwrap().content_type.starts_with("text/html"));
    assert!(asset("ui/nothing.js").is_none());
    assert!(asset("ui/../index.html").is_none());
}

#[test]
fn every_file_referenced_by_the_page_and_its_modules_is_served() {
    let mut checked = 0;
    for path in paths().filter(|path| path.ends_with(".html") || path.ends_with(".js")) {
        if path.contains("vendor/") {
            continue;
        }
        for reference in references(path) {
            assert!(asset(&reference).is_some(), "{path} refers to {reference}, which is not served");
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} references found");
}

#[test]
fn every_module_is_referenced_from_the_page() {
    let mut reachable = vec!["index.html".to_string()];
    let mut next = 0;
    while next < reachable.len() {
        let path = reachable[next].clone();
        next += 1;
        if path.ends_with(".html") || (path.ends_with(".js") && !path.contains("vendor/")) {
            for reference in references(&path) {
                if !reachable.contains(&reference) {
                    reachable.push(reference);
                }
            }
        }
    }
    for path in paths().filter(|path| !path.ends_with(".LICENSE")) {
        assert!(reachable.iter().any(|found| found == path), "{path} is served but nothing loads it");
    }
}

#[test]
fn vendored_files_match_their_hashes() {
    let sums = include_str!("../assets/vendor/SHA256SUMS");
    let mut checked = 0;
    for line in sums.lines().filter(|line| !line.trim().is_empty()) {
        let (hash, name) = line.split_once("  ").unwrap();
        let served = asset(&format!("ui/vendor/{name}")).unwrap_or_else(|| panic!("{name} is not served"));
        let digest = hex::encode(Sha256::digest(served.bytes));
        assert_eq!(digest, hash, "{name} does not match vendor/SHA256SUMS");
        checked += 1;
    }
    assert_eq!(checked, 3);
}

/// Outside comments and the vendored files, no asset names another host:
/// the UI works offline and the CSP allows only `self`.
#[test]
fn no_asset_refers_to_another_host() {
    for path in paths().filter(|path| !path.contains("vendor/")) {
        for (number, line) in text(path).lines().enumerate() {
            let code = line.split("// ").next().unwrap_or(line);
            let trimmed = code.trim_start();
            if trimmed.starts_with('*') || trimmed.starts_with("/*") || trimmed.starts_with("<!--") {
                continue;
            }
            assert!(
                !code.contains("http://") && !code.contains("https://"),
                "{path}:{} names another host: {line}",
                number + 1
            );
        }
    }
}

#[test]
fn the_vendored_script_names_no_host_to_fetch() {
    let script = text("ui/vendor/uPlot.iife.min.js");
    assert!(!script.contains("fetch("), "uPlot fetches something");
    assert!(!script.contains("XMLHttpRequest"), "uPlot makes requests");
}

#[test]
fn etags_differ_by_content() {
    let index = asset("").unwrap();
    let script = asset("ui/app.js").unwrap();
    assert_ne!(index.etag(), script.etag());
    assert_eq!(index.etag(), asset("index.html").unwrap().etag());
    assert!(index.etag().starts_with('"') && index.etag().ends_with('"'));
}
