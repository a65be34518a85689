//! The status page at `/`: one row per channel — the verdict in colour, what prod runs (commit,
//! digest, PR) and what Flux applied of it, what mainline is at, the lock holder (git ref or
//! Lease) — and a timeline of the channel's last
//! journal records drawn as inline SVG (see `timeline`: what prod ran, lane by lane, with a
//! marker per move, pin, unpin or refusal; hover for the details).
//!
//! It is server-rendered HTML with no script, so it reads the same in a browser, in
//! `curl`, and in headless Chromium's DOM dump; it refreshes itself every 10 seconds.
//! Invariants: every value from the outside (reasons, actors, explanations) is HTML-escaped.
//! Must never: show a secret or a credential-bearing URL (git remotes are shown redacted).

use super::api::ChannelView;
use super::http::Shared;
use crate::channel::journal::Record;
use mainline_core::{Timestamp, Verdict};
use std::fmt::Write;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Converged => "#1a7f37",
        Verdict::Candidate => "#0969da",
        Verdict::Pinned => "#8250df",
        Verdict::Behind => "#9a6700",
        Verdict::Diverged => "#cf222e",
        Verdict::Unknown => "#57606a",
    }
}

/// The colour of a consumer's applied state.
fn applied_colour(state: &str) -> &'static str {
    match state {
        "APPLIED" => "#1a7f37",
        "PENDING" => "#9a6700",
        "STUCK" => "#cf222e",
        _ => "#57606a",
    }
}

fn short(s: &Option<impl AsRef<str>>) -> String {
    s.as_ref()
        .map_or("-".into(), |c| c.as_ref().chars().take(12).collect())
}

fn row(out: &mut String, v: &ChannelView, records: &[Record], now: Timestamp) {
    let colour = verdict_colour(v.verdict);
    let prs = if v.prod.prs.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = v.prod.prs.iter().map(|p| format!("#{p}")).collect();
        format!(r#"<div class="pr">PR {}</div>"#, esc(&list.join(", ")))
    };
    let lock = match (&v.lock.backend[..], v.lock.held, &v.lock.holder) {
        ("none", _, _) => "none (unlocked)".to_owned(),
        ("kubernetes", true, Some(h)) => format!(
            "Lease held by {} until {}",
            esc(h),
            v.lock.expires_at.map_or("?".into(), super::timeline::clock)
        ),
        ("kubernetes", _, _) => "Lease free".to_owned(),
        (_, true, Some(h)) => format!(
            "held by {} until {}",
            esc(h),
            v.lock.expires_at.map_or("?".into(), super::timeline::clock)
        ),
        (_, true, None) => "held".to_owned(),
        _ => "free".to_owned(),
    };
    let applied = v.applied.as_ref().map_or_else(String::new, |a| {
        let lines: String = a
            .consumers
            .iter()
            .map(|c| {
                let detail = if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&c.detail))
                };
                format!(
                    r#"<div class="sub consumer" data-state="{state}">{state} {name}{detail}</div>"#,
                    state = esc(&c.state),
                    name = esc(&c.consumer),
                )
            })
            .collect();
        format!(
            r#"<div class="applied" data-state="{state}"><span class="verdict" style="background:{colour}">{state}</span> <span class="sub">applied by Flux, {at}</span>{lines}</div>"#,
            state = esc(&a.state),
            colour = applied_colour(&a.state),
            at = super::timeline::clock(a.at),
        )
    });
    let mut notes = String::new();
    if let Some(e) = &v.error {
        let _ = write!(
            notes,
            r#"<div class="error">last reconcile failed: {}</div>"#,
            esc(&e.message)
        );
    }
    if let Some(w) = &v.queue_warning {
        let _ = write!(notes, r#"<div class="warn">{}</div>"#, esc(w));
    }
    if let Some(p) = &v.pin {
        let _ = write!(
            notes,
            r#"<div class="warn">pinned by {}: {}</div>"#,
            esc(&p.actor),
            esc(&p.reason)
        );
    }
    let _ = write!(
        out,
        r#"<tr class="channel" data-channel="{name}" data-verdict="{verdict}">
<td><div class="name">{name}</div><div class="sub">{channel}</div><div class="sub">{git} @ {branch} · {queue}</div></td>
<td><span class="verdict" style="background:{colour}">{verdict}</span><div class="sub explain">{explain}</div>{notes}</td>
<td><div class="mono commit">{commit}</div><div class="mono sub digest">{digest}</div>{prs}{applied}</td>
<td><div class="mono mainline">{mainline}</div></td>
<td class="lock">{lock}</td>
<td>{svg}</td>
</tr>
"#,
        name = esc(&v.name),
        channel = esc(&v.channel),
        git = esc(&v.git),
        branch = esc(&v.branch),
        queue = v.queue,
        verdict = v.verdict,
        explain = esc(&v
            .explanation
            .clone()
            .unwrap_or_else(|| "not reconciled yet".into())),
        commit = esc(&short(&v.prod.commit.as_ref().map(|c| c.to_string()))),
        digest = esc(&v.prod.digest.as_ref().map_or_else(
            || "(tag absent)".to_owned(),
            |d| d.to_string().chars().take(19).collect::<String>()
        )),
        mainline = esc(&short(&v.mainline.as_ref().map(|c| c.to_string()))),
        svg = super::timeline::render(&v.name, records, now),
    );
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328}\
h1{font-size:20px;margin:0 0 4px}.meta{color:#57606a;margin-bottom:16px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:8px;border-bottom:1px solid #d0d7de}\
th{font-size:12px;color:#57606a;text-transform:uppercase}\
.name{font-weight:600}.sub{color:#57606a;font-size:12px}.mono{font-family:ui-monospace,monospace}\
.verdict{color:#fff;font-weight:700;padding:2px 8px;border-radius:10px;font-size:12px}\
.error{color:#cf222e;font-size:12px}.warn{color:#9a6700;font-size:12px}.pr{font-size:12px}\
.legend span{display:inline-block;margin-right:12px;font-size:12px}\
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}";

/// This replica's part, for the header.
fn role(v: &super::leader::LeaderView) -> String {
    match v.role {
        "leader" => format!(
            r#"<span class="role" data-role="leader">leader ({})</span>"#,
            esc(&v.identity)
        ),
        "standby" => format!(
            r#"<span class="role" data-role="standby">standby ({}), read-only: the leader {} reconciles</span>"#,
            esc(&v.identity),
            esc(v.leader.as_deref().unwrap_or("(not known yet)"))
        ),
        _ => r#"<span class="role" data-role="single">single guard</span>"#.to_owned(),
    }
}

/// The whole page.
pub fn render(shared: &Shared) -> String {
    let now = shared.now();
    let mut rows = String::new();
    for slot in &shared.slots {
        let view = ChannelView::of(slot, now);
        let records = slot.state().history.clone();
        row(&mut rows, &view, &records, now);
    }
    let legend = [
        ("promote", "#1a7f37"),
        ("restore", "#d1242f"),
        ("candidate", "#0969da"),
        ("pin", "#8250df"),
        ("unpin", "#6e7781"),
        ("refused", "#9a6700"),
    ]
    .iter()
    .map(|(n, c)| format!(r#"<span><i style="background:{c}"></i>{n}</span>"#))
    .collect::<String>();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>mainline guard</title><style>{STYLE}</style></head>
<body><h1>mainline guard</h1>
<div class="meta">{n} channel(s) · reconciled every {interval:?} and on webhooks · {role} · page generated {now} · <a href="/api/channels">JSON</a> · <a href="/metrics">metrics</a></div>
<div class="legend">{legend}</div>
<table><thead><tr><th>channel</th><th>verdict</th><th>prod runs</th><th>mainline</th><th>lock</th><th>last moves</th></tr></thead>
<tbody>
{rows}</tbody></table></body></html>
"#,
        n = shared.slots.len(),
        interval = shared.interval,
        role = role(&shared.leader.view()),
    )
}
