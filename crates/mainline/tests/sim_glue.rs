//! The baselines are the workflows they claim to be: every `docs/simulate-baselines/*.yml` is
//! parsed and compared with the simulator's model of it (`mainline::sim::glue`), and mainline's
//! own recipe (`docs/github-actions/mainline.yml`) with the model of the mainline strategies.

use mainline::sim::glue::{glue, workflow_file, Glue, Heal};
use mainline::sim::Strategy;
// YAML 1.2 (serde-saphyr), as GitHub reads workflows: `on` is the string key "on".
use serde_json::Value;
use std::path::Path;

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn docs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn needs(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(v) => v
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn cond(v: &Value) -> String {
    v["if"].as_str().unwrap_or("").replace(' ', "")
}

/// The model's facts, read off a workflow.
fn model_of(wf: &Value, deploy: &str, heal: &str) -> Glue {
    let on = &wf["on"];
    let jobs = &wf["jobs"];
    let deploy_job = &jobs[deploy];
    let step_heal = deploy_job["steps"]
        .as_array()
        .is_some_and(|steps| steps.iter().any(|s| cond(s) == "failure()"));
    let heal_job = &jobs[heal];
    let job_heal = !heal_job.is_null()
        && needs(heal_job).iter().any(|n| n == deploy)
        && cond(heal_job).contains("failure()||cancelled()");
    let concurrency = |job: &Value| {
        let c = &job["concurrency"];
        c["group"].as_str().map(|g| {
            (
                g.to_owned(),
                c["cancel-in-progress"].as_bool().unwrap_or(false),
            )
        })
    };
    let dc = concurrency(deploy_job);
    if job_heal {
        assert_eq!(
            dc,
            concurrency(heal_job),
            "deploy and heal share a concurrency group"
        );
    }
    let cron = on["schedule"][0]["cron"].as_str().map(str::to_owned);
    let restore = jobs["restore-stranded"].is_object();
    Glue {
        deploys_candidate: on.get("merge_group").is_some(),
        deploys_on_push: on.get("push").is_some(),
        signs_before_deploy: needs(deploy_job).iter().any(|n| n == "sign"),
        heal: match (step_heal, job_heal) {
            (_, true) => Heal::JobOnFailureOrCancel,
            (true, false) => Heal::StepOnFailure,
            _ => Heal::None,
        },
        concurrency: dc.map(|(g, c)| mainline::sim::glue::Concurrency {
            group: Box::leak(g.into_boxed_str()),
            cancel_in_progress: c,
        }),
        restore_cron: cron
            .filter(|_| restore)
            .map(|c| (&*Box::leak(c.into_boxed_str()), 60)),
    }
}

#[test]
fn every_baseline_is_the_workflow_it_models() {
    for strategy in Strategy::ALL {
        let Some(file) = workflow_file(strategy) else {
            continue;
        };
        let wf = load(&docs().join("simulate-baselines").join(file));
        let found = model_of(&wf, "deploy", "heal");
        assert_eq!(
            found,
            glue(strategy),
            "{file} does not match the model of {}",
            strategy.name()
        );
    }
}

#[test]
fn hourly_means_hourly() {
    let (cron, minutes) = glue(Strategy::HealPlusCron)
        .restore_cron
        .expect("heal-plus-cron has its cron");
    assert_eq!(cron, "0 * * * *");
    assert_eq!(minutes, 60);
}

#[test]
fn mainline_recipe_heals_from_a_separate_job() {
    let wf = load(&docs().join("github-actions/mainline.yml"));
    let heal = &wf["jobs"]["heal-on-failure"];
    assert_eq!(needs(heal), vec!["deploy-candidate".to_owned()]);
    assert!(
        cond(heal).contains("failure()||cancelled()"),
        "{:?}",
        heal["if"]
    );
    assert!(wf["jobs"]["deploy-candidate"]["concurrency"].is_null());
    for s in [Strategy::Mainline, Strategy::MainlineUnlocked] {
        assert_eq!(glue(s).heal, Heal::JobOnFailureOrCancel);
        assert!(glue(s).concurrency.is_none());
    }
}
