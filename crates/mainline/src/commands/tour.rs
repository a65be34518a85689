//! `mainline tour`: the incident this tool exists for, replayed on a throwaway OCI layout store
//! and a throwaway git remote, through exactly the code paths real use takes (the same
//! command functions CI calls). It needs git and nothing else: no server, no network.
//!
//! Story: main deploys; PR #7's merge group deploys its candidate (the pre-merge gate) and then
//! fails — the job that should heal is cancelled, so prod keeps running code that never landed.
//! `status` says DIVERGED and why; `reconcile` (from a schedule, say) restores main's artifact
//! by re-tagging it. PR #8 then deploys as a candidate and merges: CONVERGED, nothing to redo.

use crate::cli::{DeployArgs, PromoteArgs, ReconcileArgs, StatusArgs, TourArgs};
use crate::commands::channel;
use crate::config::ChannelArgs;
use crate::error::{CliError, Kind};
use crate::settings::Context;
use std::io::Write;
use std::path::Path;
use std::process::Command;

pub fn run(ctx: &Context, args: &TourArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let tmp =
        tempfile::tempdir().map_err(|e| internal(format!("cannot create a temp dir: {e}")))?;
    let root = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::invalid(format!("--keep {}: {e}", dir.display())))?;
            dir.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let remote = root.join("remote.git");
    let work = root.join("work");
    let store = root.join("store");
    if remote.exists() || store.exists() {
        return Err(CliError::invalid(format!(
            "--keep {}: already holds a tour; pick an empty directory",
            root.display()
        )));
    }
    let channel_args = ChannelArgs {
        channel: Some(format!("oci-layout:{}:latest", store.display())),
        git: Some(remote.display().to_string()),
        path: Some("k8s".into()),
        branch: Some("main".into()),
        source: Some("https://github.com/acme/shop".into()),
        cache_dir: Some(root.join("cache")),
        ..ChannelArgs::default()
    };
    let mut t = Tour {
        ctx,
        out,
        args: channel_args,
        work: &work,
        steps: Vec::new(),
        intro: Vec::new(),
    };

    t.say("mainline tour: a merge-queue deploy fails, prod is left on unmerged code, mainline heals it.")?;
    t.say(&format!(
        "(store {}, git remote {})\n",
        store.display(),
        remote.display()
    ))?;
    git(
        &root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap_or_default(),
        ],
    )?;
    git(
        &root,
        &[
            "init",
            "-q",
            "-b",
            "main",
            work.to_str().unwrap_or_default(),
        ],
    )?;
    write(
        &work,
        "k8s/deployment.yaml",
        "kind: Deployment\nmetadata: {name: shop}\nspec: {replicas: 2, image: shop:1.0}\n",
    )?;
    write(&work, "src/main.rs", "fn main() {}\n")?;
    let a = commit(&work, "shop 1.0", "2024-05-01T09:00:00Z")?;
    git(
        &work,
        &["push", "-q", remote.to_str().unwrap_or_default(), "main"],
    )?;

    t.step(
        1,
        &format!(
            "main is at {} (shop 1.0). A push to main promotes it.",
            &a[..12]
        ),
    )?;
    t.promote()?;

    t.step(2, "PR #7 enters the merge queue. Its group deploys the speculative merge commit first, as a gate.")?;
    write(
        &work,
        "k8s/deployment.yaml",
        "kind: Deployment\nmetadata: {name: shop}\nspec: {replicas: 2, image: shop:1.1-broken}\n",
    )?;
    let b = commit(
        &work,
        "Merge pull request #7 (shop 1.1)",
        "2024-05-01T10:00:00Z",
    )?;
    let group7 = format!("gh-readonly-queue/main/pr-7-{b}");
    git(
        &work,
        &[
            "push",
            "-q",
            remote.to_str().unwrap_or_default(),
            &format!("HEAD:refs/heads/{group7}"),
        ],
    )?;
    t.deploy(&group7, &b)?;

    t.step(3, "The group's checks fail; GitHub deletes the queue ref. The job's failure step was cancelled, so nothing redeployed main.")?;
    git(
        &work,
        &[
            "push",
            "-q",
            remote.to_str().unwrap_or_default(),
            &format!(":refs/heads/{group7}"),
        ],
    )?;
    git(&work, &["reset", "-q", "--hard", &a])?;
    t.say("  prod now runs shop:1.1-broken, which never landed on main. mainline status says:")?;
    let code = t.status()?;
    t.say(&format!("  (exit code {code}: CI and alerting see it)"))?;

    t.step(4, "Any reconcile — a schedule, the guard, a webhook, the next job — heals it, without waiting on a cluster:")?;
    t.reconcile()?;

    t.step(
        5,
        "PR #8 enters the queue, deploys its candidate, and merges.",
    )?;
    write(
        &work,
        "k8s/deployment.yaml",
        "kind: Deployment\nmetadata: {name: shop}\nspec: {replicas: 3, image: shop:1.2}\n",
    )?;
    let c = commit(
        &work,
        "Merge pull request #8 (shop 1.2)",
        "2024-05-01T11:00:00Z",
    )?;
    let group8 = format!("gh-readonly-queue/main/pr-8-{c}");
    git(
        &work,
        &[
            "push",
            "-q",
            remote.to_str().unwrap_or_default(),
            &format!("HEAD:refs/heads/{group8}"),
        ],
    )?;
    t.deploy(&group8, &c)?;
    git(
        &work,
        &[
            "push",
            "-q",
            remote.to_str().unwrap_or_default(),
            "HEAD:main",
            &format!(":refs/heads/{group8}"),
        ],
    )?;
    t.say(&format!(
        "  main fast-forwards to {}; the queue ref is gone.",
        &c[..12]
    ))?;
    let code = t.status()?;

    t.step(6, "Every move is in the journal (hash-chained records on the git remote): what ran when, and why.")?;
    t.history()?;

    if code != 0 {
        return Err(internal(format!(
            "the tour ended with status exit code {code}: this is a bug"
        )));
    }
    if ctx.json {
        let body = serde_json::json!({
            "tour": "a merge-queue deploy fails, prod is left on unmerged code, mainline heals it",
            "store": format!("oci-layout:{}", store.display()),
            "git_remote": remote.display().to_string(),
            "kept": args.keep.is_some(),
            "notes": t.intro,
            "steps": t.steps,
            "final_status_exit_code": code,
        });
        writeln!(t.out, "{body}").map_err(crate::error::output_error)?;
        return Ok(0);
    }
    t.say("")?;
    t.say("Done: prod ran only what landed on main or a group still in flight, and every move was a re-tag")?;
    t.say("of identical manifest bytes (digests and signatures kept). Try it on a real registry:")?;
    t.say("  mainline status --channel oci://HOST/REPO:latest --git <remote> --path k8s")?;
    Ok(0)
}

/// The tour's narrator. In text it prints as it goes; with `-o json` it collects the steps
/// (each with its notes and the commands' own JSON reports) into the one object printed at
/// the end, so stdout is a single JSON document like every other command's.
struct Tour<'a> {
    ctx: &'a Context,
    out: &'a mut dyn Write,
    args: ChannelArgs,
    work: &'a Path,
    steps: Vec<serde_json::Value>,
    /// Notes said before the first step (JSON mode).
    intro: Vec<String>,
}

impl Tour<'_> {
    fn say(&mut self, line: &str) -> Result<(), CliError> {
        if self.ctx.json {
            let note = line.trim().to_owned();
            if note.is_empty() {
                return Ok(());
            }
            match self.steps.last_mut() {
                Some(step) => push(step, "notes", serde_json::Value::String(note)),
                None => self.intro.push(note),
            }
            return Ok(());
        }
        writeln!(self.out, "{line}").map_err(crate::error::output_error)
    }
    fn step(&mut self, n: u32, text: &str) -> Result<(), CliError> {
        if self.ctx.json {
            self.steps.push(serde_json::json!({
                "step": n, "title": text, "notes": [], "commands": [],
            }));
            return Ok(());
        }
        self.say(&format!("\n[{n}] {text}"))
    }
    /// Run a command function: indent its text report, or keep its JSON report in the step.
    fn show(
        &mut self,
        f: impl FnOnce(&Context, &mut dyn Write) -> Result<u8, CliError>,
    ) -> Result<u8, CliError> {
        let mut buf = Vec::new();
        let code = f(self.ctx, &mut buf)?;
        if self.ctx.json {
            let report: serde_json::Value = serde_json::from_slice(&buf).map_err(|e| {
                internal(format!("a tour command printed no single JSON object: {e}"))
            })?;
            let step = self
                .steps
                .last_mut()
                .ok_or_else(|| internal("a tour command ran before the first step".into()))?;
            let ran = step["notes"]
                .as_array_mut()
                .and_then(|n| n.pop())
                .and_then(|v| v.as_str().map(|s| s.trim_start_matches("$ ").to_owned()))
                .unwrap_or_default();
            push(
                step,
                "commands",
                serde_json::json!({"command": ran, "exit_code": code, "report": report}),
            );
            return Ok(code);
        }
        for line in String::from_utf8_lossy(&buf).lines() {
            self.say(&format!("    {line}"))?;
        }
        Ok(code)
    }
    fn promote(&mut self) -> Result<u8, CliError> {
        let a = PromoteArgs {
            channel: self.args.clone(),
            commit: None,
            wait: None,
        };
        self.say("  $ mainline promote")?;
        self.show(|c, w| channel::promote(c, &a, w))
    }
    fn deploy(&mut self, group: &str, head: &str) -> Result<u8, CliError> {
        let a = DeployArgs {
            channel: self.args.clone(),
            candidate: true,
            group: Some(group.to_owned()),
            commit: Some(head.to_owned()),
            wait: None,
        };
        self.say(&format!("  $ mainline deploy --candidate --group {group}"))?;
        self.show(|c, w| channel::deploy(c, &a, w))
    }
    fn status(&mut self) -> Result<u8, CliError> {
        let a = StatusArgs {
            channel: self.args.clone(),
        };
        self.say("  $ mainline status")?;
        self.show(|c, w| channel::status(c, &a, w))
    }
    fn history(&mut self) -> Result<u8, CliError> {
        let a = crate::cli::HistoryArgs {
            channel: self.args.clone(),
            since: None,
            at: None,
            verify: true,
            last: None,
        };
        self.say("  $ mainline history --verify")?;
        self.show(|c, w| crate::commands::history::run(c, &a, w))
    }
    fn reconcile(&mut self) -> Result<u8, CliError> {
        let a = ReconcileArgs {
            channel: self.args.clone(),
            force_restore: false,
        };
        self.say("  $ mainline reconcile")?;
        let _ = self.work;
        self.show(|c, w| channel::reconcile(c, &a, w))
    }
}

/// Append `value` to the array `key` of a step object.
fn push(step: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(list) = step[key].as_array_mut() {
        list.push(value);
    }
}

fn internal(msg: String) -> CliError {
    CliError::new(Kind::Internal, msg)
}

fn write(root: &Path, rel: &str, content: &str) -> Result<(), CliError> {
    let p = root.join(rel);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| internal(format!("{}: {e}", dir.display())))?;
    }
    std::fs::write(&p, content).map_err(|e| internal(format!("{}: {e}", p.display())))
}

fn commit(work: &Path, message: &str, date: &str) -> Result<String, CliError> {
    git_env(work, &["add", "-A"], date)?;
    git_env(work, &["commit", "-q", "-m", message], date)?;
    git(work, &["rev-parse", "HEAD"])
}

fn git(dir: &Path, args: &[&str]) -> Result<String, CliError> {
    git_env(dir, args, "2024-05-01T09:00:00Z")
}

fn git_env(dir: &Path, args: &[&str], date: &str) -> Result<String, CliError> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Tour")
        .env("GIT_AUTHOR_EMAIL", "tour@example.com")
        .env("GIT_COMMITTER_NAME", "Tour")
        .env("GIT_COMMITTER_EMAIL", "tour@example.com")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .map_err(|e| {
            CliError::new(Kind::Unavailable, format!("cannot run git: {e}"))
                .with_hint("the tour needs git: apt-get install -y git")
        })?;
    if !out.status.success() {
        return Err(internal(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
