//! The `--html` reports in a real browser: `ckscheck run` (a passing and a failing run) and
//! `ckscheck xks run` write their page, Debian's headless chromium loads it offline from a
//! `file://` URL, and its `--dump-dom` must hold the matrix, every deviation of the JSON report
//! of the same run and (xks) the certification summary with its histograms; a screenshot of
//! each page must not be blank.
//!
//! Chromium is `CKSCHECK_CHROMIUM`, else `/usr/bin/chromium` (`.ci/run` installs it). Without
//! it the tests print `skipped: ...` and pass, except on CI (`CI` set), where they fail.
//! `CKSCHECK_WRITE_SCREENSHOTS=1` also copies the screenshots to `docs/` (the README's).

// Not every helper of the shared module is used here.
#[allow(dead_code)]
mod common;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ckscheck, scratch, text};
use serde_json::Value;

/// The window the screenshots are taken at (small PNGs for the README).
const WINDOW: &str = "--window-size=1000,1100";

/// One test at a time: the runs' reference proxies answer within KMS's timing, which a
/// browser starting beside them can spoil on a small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long chromium may take for one page.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The chromium binary, or None (skip) when there is none; a failure on CI.
fn chromium_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("CKSCHECK_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !on_ci(),
        "{} is missing, but CI is set: .ci/run should have installed chromium (apt-get install chromium)",
        path.display()
    );
    println!(
        "skipped: no chromium at {} (apt-get install chromium, or set CKSCHECK_CHROMIUM)",
        path.display()
    );
    None
}

/// Runs headless chromium on `page` with `args`, offline (every proxied request goes
/// nowhere) and with a profile of its own; its stdout.
fn chromium(binary: &Path, page: &Path, args: &[&str], dir: &Path) -> String {
    let profile = dir.join(format!(
        "chromium-profile-{}",
        page.file_stem().and_then(|s| s.to_str()).unwrap_or("page")
    ));
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-extensions",
            "--proxy-server=127.0.0.1:9",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    loop {
        match child.try_wait().expect("chromium can be waited for") {
            Some(status) => {
                assert!(
                    status.success(),
                    "chromium failed on {}: {status}",
                    page.display()
                );
                break;
            }
            None if started.elapsed() > CHROMIUM_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium took over {CHROMIUM_TIMEOUT:?} on {}",
                    page.display()
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader.join().expect("the reader ends")
}

/// `text` as it appears in a serialised attribute value.
fn in_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Runs ckscheck with `args` plus `--html` and `--json` in `dir`: exit code, JSON report, the
/// page's path and what it printed.
fn run_with_html(args: &[&str], dir: &Path) -> (i32, Value, PathBuf, String) {
    let (page, json) = (dir.join("report.html"), dir.join("report.json"));
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--html",
        page.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let out = ckscheck(&all, dir);
    let shown = text(&out);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&json)
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{shown}")),
    )
    .expect("the JSON report parses");
    assert!(page.is_file(), "no HTML report:\n{shown}");
    (out.status.code().unwrap_or(-1), report, page, shown)
}

/// The DOM chromium built from `page` (one run of chromium also takes the screenshot `name`,
/// see [`screenshot_is_not_blank`]), with the checks every report passes: the verdict, the
/// parity matrix, one entry per deviation of `report` (and no other), every check, and no
/// network use.
fn load_and_check(
    chromium_bin: &Path,
    page: &Path,
    report: &Value,
    dir: &Path,
    name: &str,
) -> String {
    let source = std::fs::read_to_string(page).expect("the page reads");
    for remote in [
        "<link",
        " src=\"http",
        " href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(
            !source.contains(remote),
            "the page loads something: {remote}"
        );
    }
    let shot = format!("--screenshot={}", dir.join(name).display());
    let dom = chromium(chromium_bin, page, &["--dump-dom", &shot, WINDOW], dir);
    screenshot_is_not_blank(dir, name);
    assert!(
        dom.contains("id=\"verdict\""),
        "no verdict in the DOM:\n{dom}"
    );
    assert!(dom.contains("id=\"parity-matrix\""), "no matrix in the DOM");
    let deviations = report["deviations"].as_array().expect("deviations");
    for d in deviations {
        let id = d["id"].as_str().expect("an id");
        let entry = format!("data-deviation-id=\"{}\"", in_attribute(id));
        assert!(dom.contains(&entry), "deviation {id} is not in the DOM");
    }
    assert_eq!(
        dom.matches("<details class=\"deviation ").count(),
        deviations.len(),
        "the page has other entries than the JSON report's deviations"
    );
    for c in report["checks"].as_array().expect("checks") {
        let name = c["name"].as_str().expect("a name");
        assert!(
            dom.contains(&format!("<code>{}</code>", in_attribute(name))),
            "check {name}"
        );
    }
    dom
}

/// Checks the screenshot `dir/name` is not blank: many colours, and a fair share of pixels
/// that are not white. Copied to `docs/NAME` under `CKSCHECK_WRITE_SCREENSHOTS=1`.
fn screenshot_is_not_blank(dir: &Path, name: &str) {
    let png_path = dir.join(name);
    let file = std::fs::File::open(&png_path).expect("chromium wrote the screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "a colour screenshot: {:?}", info.color_type);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let colours: HashSet<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    let inked = pixels
        .iter()
        .filter(|p| p[0] < 240 || p[1] < 240 || p[2] < 240)
        .count();
    let share = inked as f64 / pixels.len() as f64;
    assert!(
        colours.len() >= 50 && share > 0.03,
        "{name} looks blank: {} colours, {:.1}% inked",
        colours.len(),
        share * 100.0
    );
    println!(
        "{name}: {}x{}, {} colours, {:.1}% inked",
        info.width,
        info.height,
        colours.len(),
        share * 100.0
    );
    if std::env::var_os("CKSCHECK_WRITE_SCREENSHOTS").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("docs/");
        std::fs::copy(&png_path, docs.join(name)).expect("the screenshot copies");
    }
}

/// A passing run of every check and scenario: its page says it passes, holds the matrix with
/// a cell per operation and family, and lists every check. Catches a passing page that drops
/// the matrix, a check, or a catalogue entry, or that renders blank.
#[test]
fn a_passing_run_renders_its_matrix_and_checks_in_a_browser() {
    let Some(chromium_bin) = chromium_or_skip() else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("html-pass");
    // The scenarios with an XKS proxy are left out: their proxies must answer within KMS's
    // timing, which the browsers of the other tests here can spoil.
    let args = ["run", "--cases", "8", "--seed", "7", "--skip", "xks"];
    let (code, report, page, shown) = run_with_html(&args, &dir);
    assert_eq!(code, 0, "{shown}");
    let dom = load_and_check(&chromium_bin, &page, &report, &dir, "html-report-pass.png");
    assert!(dom.contains("class=\"verdict pass\""), "{dom}");
    for op in [
        "CreateCustomKeyStore",
        "DescribeCustomKeyStores",
        "ConnectCustomKeyStore",
        "DisconnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "DeleteCustomKeyStore",
    ] {
        assert!(
            dom.contains(&format!("data-operation=\"{op}\"")),
            "no row {op}"
        );
    }
    assert!(
        dom.matches("<td class=\"cell pass\"").count() >= 6,
        "few pass cells"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A failing run (a planted paging fault, the paging scenarios): the page says it fails, has a
/// failing matrix cell, and an entry for every deviation of the JSON report with its snapshot
/// diff, its curl and replay lines and their copy buttons. Catches an omitted deviation, a
/// lost diff or copy button, or a verdict that says pass.
#[test]
fn a_failing_run_renders_every_deviation_in_a_browser() {
    let Some(chromium_bin) = chromium_or_skip() else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("html-fail");
    let args = [
        "run",
        "--cases",
        "2",
        "--seed",
        "7",
        "--filter",
        "snapshot::pagination",
        "--fault",
        "skipped-items",
    ];
    let (code, report, page, shown) = run_with_html(&args, &dir);
    assert_eq!(code, 1, "{shown}");
    let deviations = report["deviations"].as_array().expect("deviations");
    assert!(deviations.len() >= 2, "{shown}");
    let dom = load_and_check(&chromium_bin, &page, &report, &dir, "html-report-fail.png");
    assert!(dom.contains("class=\"verdict fail\""));
    assert!(dom.contains("<td class=\"cell fail\""), "no failing cell");
    assert!(dom.contains("<span class=\"add\">+"), "no coloured diff");
    assert!(dom.contains("<span class=\"del\">-"), "no coloured diff");
    // The inline script ran offline and found every button.
    let buttons = dom.matches("<button class=\"copy\"").count();
    assert!(buttons >= deviations.len() * 3, "{buttons} copy buttons");
    assert!(
        dom.contains(&format!("data-copy-ready=\"{buttons}\"")),
        "the inline script did not run"
    );
    for (i, _) in deviations.iter().enumerate() {
        for kind in ["replay", "curl", "aws-cli"] {
            let button = format!("data-target=\"cmd-{i}-{kind}\"");
            assert!(
                dom.contains(&button),
                "no {kind} copy button for deviation {i}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An XKS certification of the embedded proxy: the page has the certification summary (the
/// proxy, the specification version, every requirement with its level) and one latency
/// histogram per operation with p50, p99 and the 250 ms budget. Catches a missing histogram,
/// marker or requirement, or a deviation left out.
#[test]
fn an_xks_certification_renders_its_summary_and_histograms_in_a_browser() {
    let Some(chromium_bin) = chromium_or_skip() else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("html-xks");
    let (code, report, page, shown) =
        run_with_html(&["xks", "run", "--cases", "2", "--seed", "7"], &dir);
    assert_eq!(code, 0, "{shown}");
    let dom = load_and_check(&chromium_bin, &page, &report, &dir, "html-report-xks.png");
    assert!(
        dom.contains("id=\"certification\""),
        "no certification summary"
    );
    assert!(dom.contains("XKS Proxy API v1.0.3"), "no spec version");
    assert!(dom.contains("TLS (HTTPS)"), "no transport");
    for id in ckscheck::spec::Spec::xks().requirements.keys() {
        let row = format!("data-requirement=\"{}\"", in_attribute(id));
        assert!(dom.contains(&row), "requirement {id} is not listed");
    }
    for op in ["GetHealthStatus", "GetKeyMetadata", "Encrypt", "Decrypt"] {
        let start = dom
            .find(&format!("<svg class=\"histogram\" data-operation=\"{op}\""))
            .unwrap_or_else(|| panic!("no histogram for {op}"));
        let svg = &dom[start..start + dom[start..].find("</svg>").expect("closed")];
        for mark in [
            "class=\"budget\"",
            "class=\"p50\"",
            "class=\"p99\"",
            "class=\"bin\"",
        ] {
            assert!(svg.contains(mark), "{op}'s histogram has no {mark}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
