//! A deterministic generator of large histories with merges, written with `git fast-import`
//! (one process for the whole history, so 1,000+ commits take well under a second).
//!
//! Shape: a `main` line, topic branches forked from earlier main commits, merges of topics
//! back into main, and a few topics left unmerged (exported as `refs/heads/topic-<n>`). The
//! deploy folder `k8s/` is deleted from main a third of the way in and re-added later, so the
//! path is absent at some commits.

use super::{commit_id, git, git_stdin, SplitMix64};
use mainline_core::CommitId;
use std::fmt::Write as _;
use std::path::Path;

pub struct History {
    /// Every commit, in creation order (parents always come before children).
    pub commits: Vec<CommitId>,
    /// Parent indices into `commits`, first parent first.
    pub parents: Vec<Vec<usize>>,
    /// Branch name → tip, for every branch exported.
    pub branches: Vec<(String, CommitId)>,
}

struct Topic {
    name: String,
    tip: usize,
}

const FILES: &[&str] = &[
    "k8s/app.yaml",
    "k8s/base/service.yaml",
    "k8s/base/deploy.yaml",
    "src/main.rs",
    "README.md",
];

/// Write `count` commits into the bare repository `bare` from `seed`.
pub fn generate(bare: &Path, seed: u64, count: usize) -> History {
    let mut rng = SplitMix64::new(seed);
    let mut stream = String::new();
    let mut parents: Vec<Vec<usize>> = Vec::with_capacity(count);
    let mut branch_of: Vec<String> = Vec::with_capacity(count);
    let mut main_tip: Option<usize> = None;
    let mut main_line: Vec<usize> = Vec::new();
    let mut topics: Vec<Topic> = Vec::new();
    let mut next_topic = 0;
    let delete_at = count / 3;
    let readd_at = count / 3 + count / 10;

    for i in 0..count {
        let roll = rng.below(100);
        let force_main = i == delete_at || i == readd_at;
        let (branch, commit_parents, on_main) = match (main_tip, roll) {
            (None, _) => ("main".to_owned(), vec![], true),
            (Some(tip), _) if force_main => ("main".to_owned(), vec![tip], true),
            // Merge an open topic into main.
            (Some(tip), 0..=14) if !topics.is_empty() => {
                let topic = topics.remove(rng.below(topics.len()));
                ("main".to_owned(), vec![tip, topic.tip], true)
            }
            // Work on a topic: extend one, or fork a new one from an earlier main commit.
            (Some(_), 15..=44) => {
                if topics.len() < 4 || rng.chance(30) {
                    let base = main_line[main_line.len() - 1 - rng.below(main_line.len().min(40))];
                    let name = format!("topic-{next_topic}");
                    next_topic += 1;
                    topics.push(Topic {
                        name: name.clone(),
                        tip: base,
                    });
                    (name, vec![base], false)
                } else {
                    let t = rng.below(topics.len());
                    (topics[t].name.clone(), vec![topics[t].tip], false)
                }
            }
            (Some(tip), _) => ("main".to_owned(), vec![tip], true),
        };
        let time = 1_700_000_000 + i as i64 * 60;
        let message = format!("commit {i} on {branch}\n");
        let _ = write!(
            stream,
            "commit refs/heads/{branch}\nmark :{}\nauthor Fixture Author <author@example.com> {time} +0000\n\
             committer Fixture Committer <committer@example.com> {time} +0000\ndata {}\n{message}",
            i + 1,
            message.len()
        );
        if let Some(first) = commit_parents.first() {
            let _ = writeln!(stream, "from :{}", first + 1);
        }
        for merged in commit_parents.iter().skip(1) {
            let _ = writeln!(stream, "merge :{}", merged + 1);
        }
        if on_main && i == delete_at {
            stream.push_str("D k8s\n");
        } else if on_main && i == readd_at {
            add_file(&mut stream, "k8s/app.yaml", &format!("re-added at {i}\n"));
        } else if !(on_main && i > delete_at && i < readd_at) {
            // Between deletion and re-adding, main only touches files outside k8s/.
            let file = FILES[rng.below(FILES.len())];
            add_file(&mut stream, file, &format!("{file} at commit {i}\n"));
        } else {
            add_file(&mut stream, "src/main.rs", &format!("main at {i}\n"));
        }
        stream.push('\n');
        if on_main {
            main_tip = Some(i);
            main_line.push(i);
        } else if let Some(t) = topics.iter_mut().find(|t| t.name == branch) {
            t.tip = i;
        }
        parents.push(commit_parents);
        branch_of.push(branch);
    }

    let marks = bare.join("fixture-marks");
    let marks_arg = format!("--export-marks={}", marks.display());
    git_stdin(
        bare,
        &["fast-import", "--quiet", &marks_arg],
        stream.as_bytes(),
    );
    let marks_text = std::fs::read_to_string(&marks).expect("marks file");
    let mut commits = vec![None; count];
    for line in marks_text.lines() {
        let (mark, sha) = line.split_once(' ').expect("`:mark sha` lines");
        let index: usize = mark.trim_start_matches(':').parse().expect("numeric mark");
        commits[index - 1] = Some(commit_id(sha));
    }
    let commits: Vec<CommitId> = commits
        .into_iter()
        .map(|c| c.expect("every commit has a mark"))
        .collect();
    let branches = git(
        bare,
        &[
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            "refs/heads",
        ],
    )
    .lines()
    .map(|l| {
        let (name, sha) = l.split_once(' ').expect("name and sha");
        (name.to_owned(), commit_id(sha))
    })
    .collect();
    History {
        commits,
        parents,
        branches,
    }
}

fn add_file(stream: &mut String, path: &str, content: &str) {
    let _ = write!(
        stream,
        "M 100644 inline {path}\ndata {}\n{content}\n",
        content.len()
    );
}

impl History {
    /// Walk back from `from` along random parents for up to `steps` steps: an ancestor.
    pub fn random_ancestor(&self, rng: &mut SplitMix64, from: usize, steps: usize) -> usize {
        let mut at = from;
        for _ in 0..steps {
            let ps = &self.parents[at];
            if ps.is_empty() {
                break;
            }
            at = ps[rng.below(ps.len())];
        }
        at
    }
}
