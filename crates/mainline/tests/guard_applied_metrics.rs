//! Issue 18 item 6: the consumers' applied state as a labelled 0/1 gauge and the time from a
//! channel move to APPLIED as a histogram, fed with reads as the guard makes them after each
//! reconcile; the output must pass `promtool check metrics` (Debian package `prometheus`).

use mainline::guard::applied_metrics::{render, ApplyTiming};
use mainline::guard::state::{AppliedView, ConsumerView};
use mainline_core::{Digest, Timestamp};

fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
        .parse()
        .expect("a digest")
}

fn view(d: u8, at_s: i64, states: &[(&str, &str)]) -> AppliedView {
    let worst = ["UNREACHABLE", "STUCK", "PENDING", "APPLIED"]
        .into_iter()
        .find(|w| states.iter().any(|(_, s)| s == w))
        .unwrap_or("APPLIED");
    AppliedView {
        state: worst.to_owned(),
        digest: digest(d),
        at: Timestamp(at_s * 1000),
        consumers: states
            .iter()
            .map(|(c, s)| ConsumerView {
                consumer: (*c).to_owned(),
                state: (*s).to_owned(),
                detail: String::new(),
            })
            .collect(),
    }
}

#[test]
fn the_gauge_names_each_consumers_state_and_the_histogram_times_move_to_applied() {
    let mut t = ApplyTiming::default();
    // The guard moved the channel to digest 1 at t=100: both PENDING.
    t.observe(
        &view(
            1,
            100,
            &[
                ("flux-system/app", "PENDING"),
                ("flux-system/edge", "PENDING"),
            ],
        ),
        true,
    );
    // One applied at t=130; the channel is not APPLIED until both are.
    t.observe(
        &view(
            1,
            130,
            &[
                ("flux-system/app", "APPLIED"),
                ("flux-system/edge", "PENDING"),
            ],
        ),
        false,
    );
    assert_eq!(t.count, 0);
    let last = view(
        1,
        190,
        &[
            ("flux-system/app", "APPLIED"),
            ("flux-system/edge", "STUCK"),
        ],
    );
    t.observe(&last, false);
    assert_eq!(t.count, 0, "STUCK is not APPLIED");
    t.observe(
        &view(
            1,
            220,
            &[
                ("flux-system/app", "APPLIED"),
                ("flux-system/edge", "APPLIED"),
            ],
        ),
        false,
    );
    assert_eq!(
        (t.count, t.sum),
        (1, 120.0),
        "from the first read at 100 to 220"
    );
    // Read again: the same digest is never counted twice.
    t.observe(
        &view(
            1,
            280,
            &[
                ("flux-system/app", "APPLIED"),
                ("flux-system/edge", "APPLIED"),
            ],
        ),
        false,
    );
    assert_eq!(t.count, 1);
    // CI moved it to digest 2 while the guard was not looking, and it is already APPLIED: the
    // move time is unknown, so it is not counted.
    t.observe(
        &view(
            2,
            400,
            &[
                ("flux-system/app", "APPLIED"),
                ("flux-system/edge", "APPLIED"),
            ],
        ),
        false,
    );
    assert_eq!(t.count, 1);
    // A guard move that Flux applied before the first read counts as about zero.
    t.observe(
        &view(
            3,
            500,
            &[
                ("flux-system/app", "APPLIED"),
                ("flux-system/edge", "APPLIED"),
            ],
        ),
        true,
    );
    assert_eq!((t.count, t.sum), (2, 120.0));

    let mut out = String::new();
    render(&mut out, &[("prod".to_owned(), Some(last), t)]);
    for line in [
        "mainline_consumer_applied{channel=\"prod\",consumer=\"flux-system/app\",state=\"APPLIED\"} 1",
        "mainline_consumer_applied{channel=\"prod\",consumer=\"flux-system/app\",state=\"STUCK\"} 0",
        "mainline_consumer_applied{channel=\"prod\",consumer=\"flux-system/edge\",state=\"STUCK\"} 1",
        "mainline_consumer_applied{channel=\"prod\",consumer=\"flux-system/edge\",state=\"PENDING\"} 0",
        "mainline_channel_apply_duration_seconds_bucket{channel=\"prod\",le=\"5\"} 1",
        "mainline_channel_apply_duration_seconds_bucket{channel=\"prod\",le=\"60\"} 1",
        "mainline_channel_apply_duration_seconds_bucket{channel=\"prod\",le=\"120\"} 2",
        "mainline_channel_apply_duration_seconds_bucket{channel=\"prod\",le=\"+Inf\"} 2",
        "mainline_channel_apply_duration_seconds_sum{channel=\"prod\"} 120",
        "mainline_channel_apply_duration_seconds_count{channel=\"prod\"} 2",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in:\n{out}");
    }

    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (install the Debian package prometheus)");
    {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(out.as_bytes())
            .expect("write");
        let o = child.wait_with_output().expect("promtool runs");
        assert!(
            o.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
