//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads `/` from a
//! running guard whose channels have moved (a restore, promotes), and the DOM it renders has
//! one row per channel with its verdict, and an SVG timeline with a marker per journal move.
//! The screenshot is saved as target/guard-screenshot.png for a person to look at.

mod guard;
mod support;

use guard::*;
use std::path::PathBuf;
use std::process::Command;

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    Command::new(tool("chromium", "chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &profile_arg,
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[test]
fn the_status_page_draws_rows_and_timelines_in_chromium() {
    let w = World::new("guard-page");
    let config = format!(
        r#"git = "{remote}"
path = "k8s"

[guard]
interval = "1h"

[[channels]]
name = "app"
channel = "{store}:latest"

[[channels]]
name = "staging"
channel = "{store}:staging"
"#,
        remote = w.remote_str(),
        store = w.store,
    );
    let path = w.write("mainline.toml", &config);
    let cache = w.path().join("guard-cache");
    let g = GuardProc::start(
        w.path(),
        &[
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            cache.to_str().expect("utf8"),
        ],
        &[("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    let addr = g.addr.clone();
    wait_for(60, "the first pass", || {
        (get(&addr, "/readyz").status == 200).then_some(())
    });

    // A history worth drawing on "app": CI deploys a candidate, the group ends, the guard
    // restores; then a merge lands and the guard promotes. "staging" was promoted on the
    // guard's first pass (its tag did not exist).
    w.mainline(&[
        "deploy",
        "--candidate",
        "--group",
        &w.queue_ref,
        "--commit",
        &w.candidate,
    ])
    .ok();
    w.end_group();
    let n = g.reconciles("app");
    assert_eq!(
        post_token(&addr, "/api/channels/app/reconcile", "").status,
        202
    );
    assert_eq!(g.wait_reconciled("app", n)["restores"], 1);
    w.land(
        &[("k8s/app.yaml", "kind: Deployment\nreplicas: 4\n")],
        "2024-05-06T10:00:00Z",
    );
    let n = g.reconciles("app");
    assert_eq!(post_token(&addr, "/api/reconcile", "").status, 202);
    let app = g.wait_reconciled("app", n);
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    // Make sure staging's catch-up from the same pass finished too.
    wait_for(60, "staging to converge", || {
        let s = g.channel("staging");
        (s["verdict"] == "CONVERGED" && s["running"] == false).then_some(())
    });

    let url = format!("http://{addr}/");
    let out = chromium(&["--dump-dom", "--virtual-time-budget=2000"], &url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium could not load the page: {}\n{dom}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = dom.matches(r#"<tr class="channel""#).count();
    assert_eq!(rows, 2, "one row per channel:\n{dom}");
    assert_eq!(dom.matches(r#"<svg class="timeline""#).count(), 2, "{dom}");
    let app_row = dom
        .split(r#"<tr class="channel" data-channel="app""#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("app's row");
    assert!(app_row.contains(r#"data-verdict="CONVERGED""#), "{app_row}");
    for class in [
        "move move-candidate",
        "move move-restore",
        "move move-promote",
    ] {
        assert!(
            app_row.contains(class),
            "app's timeline lacks a {class} marker:\n{app_row}"
        );
    }
    assert!(app_row.matches("<circle").count() >= 3, "{app_row}");
    assert!(
        app_row.contains(&w.main[..12]) || app_row.contains("mono"),
        "{app_row}"
    );
    let staging_row = dom
        .split(r#"<tr class="channel" data-channel="staging""#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("staging's row");
    assert!(staging_row.contains("move move-promote"), "{staging_row}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("guard-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let shot_arg = format!("--screenshot={}", shot.display());
    let out = chromium(
        &[
            &shot_arg,
            "--window-size=1280,800",
            "--virtual-time-budget=2000",
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}): {}",
            shot.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "the screenshot is suspiciously small ({} bytes)",
        png.len()
    );
    eprintln!("screenshot saved to {}", shot.display());
}
