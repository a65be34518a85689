//! The GitHub Actions recipes in docs/github-actions/ parse as YAML, have the jobs the brief
//! asks for (candidate deploy on merge_group, the failure/cancel heal, promote on push, a
//! scheduled reconcile), and every `mainline <subcommand> --flag` they run exists in
//! `mainline --help` / `mainline <subcommand> --help`.

mod support;

use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn recipes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/github-actions")
}

fn workflows() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(recipes_dir()).expect("docs/github-actions exists") {
        let path = entry.expect("dir entry").path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            let text = std::fs::read_to_string(&path).expect("read workflow");
            let value: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            out.push((path, value));
        }
    }
    assert!(!out.is_empty(), "no workflow in docs/github-actions");
    out
}

/// Every `run:` script of every step, with its job's name and `if:`.
fn steps(wf: &Value) -> Vec<(String, String, String)> {
    let jobs = wf
        .get("jobs")
        .and_then(Value::as_mapping)
        .expect("a workflow has jobs");
    let mut out = Vec::new();
    for (name, job) in jobs {
        let name = name.as_str().expect("job ids are strings").to_owned();
        let job_if = job
            .get("if")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        for step in job
            .get("steps")
            .and_then(Value::as_sequence)
            .expect("jobs have steps")
        {
            if let Some(run) = step.get("run").and_then(Value::as_str) {
                out.push((name.clone(), job_if.clone(), run.to_owned()));
            }
        }
    }
    out
}

/// `(subcommand, flags)` of every `mainline …` command in a script (one per shell command:
/// lines split on `&&`, `||`, `|` and `;`).
fn mainline_calls(script: &str) -> Vec<(String, Vec<String>)> {
    let mut calls = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        for part in line.split(['|', ';', '&']) {
            let words: Vec<&str> = part.split_whitespace().collect();
            if words.first() != Some(&"mainline") {
                continue;
            }
            let sub = words[1..]
                .iter()
                .find(|w| !w.starts_with('-'))
                .unwrap_or_else(|| panic!("`{part}` calls mainline without a subcommand"));
            let flags = words
                .iter()
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split('=').next().unwrap_or(w).to_string())
                .collect();
            calls.push(((*sub).to_owned(), flags));
        }
    }
    calls
}

/// The subcommands `mainline --help` lists.
fn subcommands() -> BTreeSet<String> {
    let help = support::mainline(&["--help"]).ok().stdout;
    let mut in_commands = false;
    let mut subs = BTreeSet::new();
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            if let Some(word) = line.split_whitespace().next() {
                if line.starts_with("  ") && !line.starts_with("   ") {
                    subs.insert(word.to_owned());
                }
            }
        }
    }
    assert!(
        subs.contains("reconcile"),
        "could not read the commands of `mainline --help`:\n{help}"
    );
    subs
}

#[test]
fn every_mainline_command_in_the_recipes_exists() {
    let subs = subcommands();
    let mut seen = BTreeSet::new();
    for (path, wf) in workflows() {
        for (job, _, script) in steps(&wf) {
            for (sub, flags) in mainline_calls(&script) {
                assert!(
                    subs.contains(&sub),
                    "{} job {job} runs `mainline {sub}`, which `mainline --help` does not list ({subs:?})",
                    path.display()
                );
                let help = support::mainline(&[&sub, "--help"]).ok().stdout;
                for flag in flags {
                    assert!(
                        help.contains(&flag),
                        "{} job {job} passes {flag} to `mainline {sub}`, which its --help does not mention",
                        path.display()
                    );
                }
                seen.insert(sub);
            }
        }
    }
    for needed in ["push", "deploy", "reconcile", "promote"] {
        assert!(
            seen.contains(needed),
            "no recipe calls `mainline {needed}` (calls: {seen:?})"
        );
    }
}

#[test]
fn the_workflow_covers_the_four_moments() {
    let (path, wf) = workflows()
        .into_iter()
        .find(|(p, _)| p.ends_with("mainline.yml"))
        .expect("docs/github-actions/mainline.yml");
    // YAML 1.1 readers turn the `on` key into `true`; accept both spellings.
    let on = wf
        .get("on")
        .or_else(|| wf.as_mapping().and_then(|m| m.get(Value::Bool(true))))
        .expect("the workflow has triggers");
    for event in ["merge_group", "push", "schedule"] {
        assert!(
            on.get(event).is_some(),
            "{} does not trigger on {event}",
            path.display()
        );
    }
    let steps = steps(&wf);
    let calls = |pred: &dyn Fn(&str, &str) -> bool, sub: &str| {
        steps.iter().any(|(job, cond, script)| {
            pred(job, cond) && mainline_calls(script).iter().any(|(s, _)| s == sub)
        })
    };
    assert!(
        steps.iter().any(|(_, _, s)| mainline_calls(s)
            .iter()
            .any(|(sub, flags)| sub == "deploy" && flags.iter().any(|f| f == "--candidate"))),
        "no job deploys the merge group's candidate with `mainline deploy --candidate`"
    );
    assert!(
        calls(
            &|_, cond| cond.contains("failure()") && cond.contains("cancelled()"),
            "reconcile"
        ),
        "no job with `if: failure() || cancelled()` calls `mainline reconcile`"
    );
    assert!(
        calls(&|_, cond| cond.contains("'push'"), "promote"),
        "no push-to-main job calls `mainline promote`"
    );
    assert!(
        calls(&|_, cond| cond.contains("'schedule'"), "reconcile"),
        "no scheduled job calls `mainline reconcile`"
    );
    let text = std::fs::read_to_string(&path).expect("read workflow");
    assert!(
        text.matches("# Why:").count() >= 4,
        "every job should say why it exists (a `# Why:` comment)"
    );
}
