//! The README's first command runs `mainline tour`: it must keep telling the true story —
//! DIVERGED after the failed group, a restore by reconcile, CONVERGED after the merge, and a
//! journal that verifies — and exit 0.

use std::process::Command;

#[test]
fn the_tour_replays_the_incident_and_the_heal() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_mainline"))
        .arg("tour")
        .env("HOME", home.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run mainline tour");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tour failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"))
    };
    let diverged = at("verdict   DIVERGED");
    let restored = at("action    Restore");
    let converged = text
        .rfind("verdict   CONVERGED")
        .expect("CONVERGED at the end");
    assert!(
        diverged < restored && restored < converged,
        "out of order:\n{text}"
    );
    assert!(
        text.contains("(exit code 3"),
        "status exit code shown:\n{text}"
    );
    assert!(
        text.contains("chain verified: 8 records"),
        "journal verified:\n{text}"
    );
}
