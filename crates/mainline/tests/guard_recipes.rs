//! The GitHub Actions recipes in docs/github-actions/ parse as YAML, have the jobs the brief
//! asks for (candidate deploy on merge_group, the failure/cancel heal, promote on push, a
//! scheduled reconcile), and every `mainline <subcommand> --flag` they run exists in
//! `mainline --help` / `mainline <subcommand> --help` — whether a `run:` script calls it or a
//! step of the mainline Action (`uses: mainline-dev/mainline@…`, input `command`) does, and
//! such a step passes only inputs that action.yml declares.

mod support;

// YAML 1.2 (serde-saphyr), as GitHub reads workflows: `on` is the string key "on".
use serde_json::Value;
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
            let value: Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            out.push((path, value));
        }
    }
    assert!(!out.is_empty(), "no workflow in docs/github-actions");
    out
}

/// Whether a step's `uses:` is the mainline Action (this repository's action.yml).
fn is_mainline_action(step: &Value) -> bool {
    step.get("uses")
        .and_then(Value::as_str)
        .is_some_and(|u| u.starts_with("mainline-dev/mainline@") || u == "./")
}

/// Every `run:` script of every step, with its job's name and `if:`; a mainline Action step
/// counts as the script `mainline <command> [--wait W]` it runs.
fn steps(wf: &Value) -> Vec<(String, String, String)> {
    let jobs = wf
        .get("jobs")
        .and_then(Value::as_object)
        .expect("a workflow has jobs");
    let mut out = Vec::new();
    for (name, job) in jobs {
        let name = name.clone();
        let job_if = job
            .get("if")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        for step in job
            .get("steps")
            .and_then(Value::as_array)
            .expect("jobs have steps")
        {
            if let Some(run) = step.get("run").and_then(Value::as_str) {
                out.push((name.clone(), job_if.clone(), run.to_owned()));
            } else if is_mainline_action(step) {
                let with = step.get("with");
                let input = |k: &str| with.and_then(|w| w.get(k)).and_then(Value::as_str);
                let command = input("command").expect("a mainline Action step gives `command`");
                let wait = input("wait")
                    .map(|w| format!(" --wait {w}"))
                    .unwrap_or_default();
                out.push((
                    name.clone(),
                    job_if.clone(),
                    format!("mainline {command}{wait}"),
                ));
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
    // A YAML 1.1 reader would turn the `on` key into `true`; GitHub, and serde-saphyr (YAML
    // 1.2), read the string "on".
    let on = wf.get("on").expect("the workflow has triggers");
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

#[test]
fn mainline_action_steps_pass_only_declared_inputs_and_nothing_compiles_mainline() {
    let action: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../action.yml"),
        )
        .expect("action.yml at the repository root"),
    )
    .expect("action.yml is YAML");
    let declared: BTreeSet<String> = action
        .get("inputs")
        .and_then(Value::as_object)
        .expect("action.yml declares inputs")
        .keys()
        .cloned()
        .collect();
    for input in ["command", "channel", "git", "path", "wait"] {
        assert!(declared.contains(input), "action.yml lacks input {input}");
    }
    let mut uses = 0;
    for (path, wf) in workflows() {
        let text = std::fs::read_to_string(&path).expect("read workflow");
        assert!(
            !text.contains("cargo install"),
            "{} compiles mainline in the job: use the Action (issue 20)",
            path.display()
        );
        let jobs = wf.get("jobs").and_then(Value::as_object).expect("jobs");
        for step in jobs
            .values()
            .filter_map(|j| j.get("steps").and_then(Value::as_array))
            .flatten()
            .filter(|s| is_mainline_action(s))
        {
            uses += 1;
            for key in step
                .get("with")
                .and_then(Value::as_object)
                .expect("with:")
                .keys()
            {
                let key = key.as_str();
                assert!(
                    declared.contains(key),
                    "{} passes input {key:?}, which action.yml does not declare ({declared:?})",
                    path.display()
                );
            }
        }
    }
    assert!(
        uses >= 4,
        "the recipes should run mainline through the Action ({uses} steps do)"
    );
}
