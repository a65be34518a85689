//! `mainline guard`: resolve the settings, open every channel, bind, say where it listens, and
//! serve until SIGTERM/SIGINT. `--check` validates and prints the channels without serving.

use crate::commands::push::io_err;
use crate::error::CliError;
use crate::guard::{self, GuardArgs, GuardSettings, Stop};
use crate::output::emit;
use crate::settings::Context;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct ChannelLine {
    name: String,
    channel: String,
    git: String,
    branch: String,
    path: String,
    queue: &'static str,
    lock: String,
    github_repository: Option<String>,
}

/// What the guard prints once it is listening (or, with `--check`, instead of serving).
#[derive(Serialize)]
struct Started {
    listening: String,
    interval_ms: u128,
    parallelism: usize,
    webhooks: bool,
    actions: bool,
    channels: Vec<ChannelLine>,
}

fn describe(settings: &GuardSettings, listening: String) -> Started {
    Started {
        listening,
        interval_ms: settings.interval.as_millis(),
        parallelism: settings.parallelism,
        webhooks: settings.webhook_secret.is_some(),
        actions: !settings.tokens.is_empty(),
        channels: settings
            .channels
            .iter()
            .map(|c| ChannelLine {
                name: c.name.clone(),
                channel: c.config.channel_display(),
                git: c.config.git_display.clone(),
                branch: c.config.branch.clone(),
                path: c.config.path.clone(),
                queue: if c.queue_api {
                    "github-api"
                } else if c.config.queue == crate::channel::QueueSource::Lease {
                    "lease"
                } else {
                    "github-refs"
                },
                lock: match c.config.lock {
                    crate::channel::exec::LockMode::None => "none".into(),
                    crate::channel::exec::LockMode::Git { ttl_ms, .. } => {
                        format!("git (ttl {}s)", ttl_ms / 1000)
                    }
                    crate::channel::exec::LockMode::Kubernetes { ttl_ms, .. } => {
                        format!("kubernetes (ttl {}s)", ttl_ms / 1000)
                    }
                },
                github_repository: c.github.as_ref().map(|r| r.full_name()),
            })
            .collect(),
    }
}

fn render(s: &Started, w: &mut dyn Write, check: bool) -> std::io::Result<()> {
    if check {
        writeln!(
            w,
            "guard settings are valid; it would listen on {}",
            s.listening
        )?;
    } else {
        writeln!(w, "guard listening on {}", s.listening)?;
    }
    writeln!(
        w,
        "  every {} ms (jittered), {} at a time; webhooks {}, actions {}",
        s.interval_ms,
        s.parallelism,
        if s.webhooks { "on" } else { "off (no secret)" },
        if s.actions {
            "on"
        } else {
            "off (no MAINLINE_GUARD_TOKEN)"
        }
    )?;
    for c in &s.channels {
        writeln!(
            w,
            "  {:<16} {} <- {} @ {} ({}, queue {}, lock {})",
            c.name, c.channel, c.git, c.branch, c.path, c.queue, c.lock
        )?;
    }
    Ok(())
}

pub fn run(ctx: &Context, args: &GuardArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    if let Some(name) = &args.channel.channel_name {
        return Err(CliError::invalid(format!(
            "--channel-name {name}: the guard watches every [[channels]] entry; --channel-name picks one for the channel commands"
        ))
        .with_hint("drop --channel-name (and MAINLINE_CHANNEL_NAME) for the guard"));
    }
    let settings = GuardSettings::resolve(args)?;
    if args.check {
        let s = describe(&settings, format!("http://{}", settings.listen));
        emit(ctx, out, &s, |w| render(&s, w, true)).map_err(io_err)?;
        return Ok(0);
    }
    let slots = guard::open(ctx, &settings)?;
    let listener = guard::bind(settings.listen)?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| settings.listen.to_string());
    let s = describe(&settings, format!("http://{addr}"));
    emit(ctx, out, &s, |w| render(&s, w, false)).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    let result = guard::serve(&settings, &slots, listener, Stop::Signals);
    drop(slots);
    result?;
    Ok(0)
}
