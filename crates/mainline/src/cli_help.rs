//! The help text of every command: what each prints after its options — the exit codes, the
//! deadline, and examples a user can paste. Kept apart from the grammar (`cli.rs`) so each file
//! has one job. Must never: show an example that does not run as written (tests/newcomer_cli.rs
//! checks that every subcommand's help ends with examples of that subcommand).

pub const EXIT_CODES: &str = "\
Exit codes:
  0  success (status: CONVERGED, CANDIDATE or PINNED)
  1  internal error
  2  invalid input or usage
  3  status: BEHIND or DIVERGED (reconcile would move the channel)
  4  status: UNKNOWN (a fact could not be read)
  5  refused: the invariant forbids the requested move
  6  unavailable: a registry or git remote could not be reached (retry later)
  7  unauthorized: credentials were refused
  8  integrity: bytes did not match their digest, or a read-back differed
  9  conflict: an immutable tag already names other bytes
 10  --wait: the Flux consumers did not apply the digest in time

Deadline (--timeout, MAINLINE_TIMEOUT):
  Every command ends within one overall deadline: 60s by default for status, inspect, pull
  and history; 120s for push, tag, reconcile, deploy, promote, pin, unpin and rollback (plus
  --wait). Every registry request (the token endpoint's included), retry and lock wait, and
  every git process is bounded by what is left of it. git runs in its own process group,
  killed at the deadline and when mainline itself dies. A command that runs out of time exits
  6 and names what did not answer. guard, tour and simulate have no overall deadline.

Design: docs/design.md in mainline's repository explains the invariant (S1-S5, L1, L2, G), the
verdicts, the lock and fencing, the journal, the stores and the scenario catalog.
Start with `mainline tour` (offline, in seconds); every subcommand's --help ends with examples.";

pub const STATUS_HELP: &str = "\
Verdicts:
  CONVERGED  the channel runs mainline's deploy tree                     (exit 0)
  CANDIDATE  the channel runs a merge group that is still in flight     (exit 0)
  PINNED     an operator pin holds the channel                          (exit 0)
  BEHIND     mainline changed the deploy tree since; reconcile promotes (exit 3)
  DIVERGED   the channel runs code that is not on mainline; reconcile restores (exit 3)
  UNKNOWN    a fact could not be read; nothing is done                  (exit 4)

Examples:
  mainline status --channel oci://ghcr.io/acme/app:latest --git https://github.com/acme/app --path k8s
  mainline status -o json | jq .verdict";

pub const RECONCILE_HELP: &str = "\
Reconcile reads fresh facts (git remote, registry, merge queue), decides, and acts: it restores
mainline's artifact over code that was ejected from the queue (DIVERGED), promotes when mainline
moved on (BEHIND), and holds for a live candidate. A restore is a re-tag of an artifact that
already exists (or is packed from git objects first): it never waits on a cluster.
Run it from the merge-group job's failure and cancel paths, on pushes to main, on a schedule.

Examples:
  mainline reconcile --channel oci://ghcr.io/acme/app-manifests:latest --git https://github.com/acme/app.git --path k8s
  mainline reconcile --channel-name prod            # a [[channels]] entry of mainline.toml
  mainline reconcile --force-restore                # also over a channel moved by hand
  mainline reconcile -o json | jq '{verdict, after}'";

pub const DEPLOY_HELP: &str = "\
In a GitHub Actions merge_group run, the group comes from GITHUB_EVENT_PATH / GITHUB_SHA /
GITHUB_REF; elsewhere pass --group and --commit. The channel moves only forward along the
queue, never for a group that is no longer in flight, and the write is checked again right
after it happens (a write that raced with the group's end is undone in the same run).

Examples:
  # in a GitHub Actions merge_group job (the group and head come from the event)
  mainline deploy --candidate --wait 5m
  # elsewhere: name both
  mainline deploy --candidate --group gh-readonly-queue/main/pr-7-0123abcd0123abcd0123abcd0123abcd0123abcd --commit 0123abcd0123abcd0123abcd0123abcd0123abcd
  # hosts without a merge queue API: any group id, held by a lease
  mainline deploy --candidate --queue lease --group release-42 --commit 0123abcd0123abcd0123abcd0123abcd0123abcd";

pub const PROMOTE_HELP: &str = "\
Examples:
  mainline promote                                  # mainline's tip (or $GITHUB_SHA in CI)
  mainline promote --commit 0123abcd0123abcd0123abcd0123abcd0123abcd --wait 5m";

pub const UNPIN_HELP: &str = "\
Examples:
  mainline unpin                                    # the channel then reconciles at once
  mainline unpin --channel-name prod -o json";

pub const ROLLBACK_HELP: &str = "\
Examples:
  mainline rollback 0123abcd0123abcd0123abcd0123abcd0123abcd --reason \"INC-123: 1.2 leaks memory\"
  mainline rollback 0123abcd0123abcd0123abcd0123abcd0123abcd --reason \"canary\" --expires 30m
A rollback is a pin: automation holds it until `mainline unpin` (or --expires).";

pub const INSPECT_HELP: &str = "\
Examples:
  mainline inspect oci://ghcr.io/acme/app-manifests:latest
  mainline inspect oci-layout:./store@sha256:4f1c... -o json | jq .files";

pub const PULL_HELP: &str = "\
Examples:
  mainline pull oci://ghcr.io/acme/app-manifests:latest --output-dir ./prod
  mainline pull oci-layout:./store:sha-0123abcd0123abcd0123abcd0123abcd0123abcd --output-dir /tmp/x --max-size 10M
Files counts regular files, as push does (folders and links are counted apart in JSON).";

pub const TOUR_HELP: &str = "\
Examples:
  mainline tour                       # the story, in text
  mainline tour --keep ./tour         # keep the store and the git remote to poke at
  mainline tour -o json | jq '.steps[] | {step, title}'";

pub const PIN_HELP: &str = "\
Examples:
  mainline pin sha256:4f1c... --reason \"INC-123: hold while we debug\" --expires 2h
  mainline pin 0123abcd... --reason \"known good\"
  mainline unpin";

pub const HISTORY_HELP: &str = "\
Examples:
  mainline history                       # every move, pin, unpin and refusal, oldest first
  mainline history --at 16:08            # what did prod run at 16:08 UTC today, and why?
  mainline history --since 2h -o json    # the last two hours, for scripts
  mainline history --verify              # check the hash chain (exit 8 when broken)";

pub const PUSH_HELP: &str = "\
Examples:
  # from a checkout, as CI would (--source defaults to the checkout's origin)
  mainline push ./k8s --to oci://ghcr.io/acme/app-manifests --revision main@sha1:$GITHUB_SHA
  # a folder outside git: name the source; created is 1970-01-01T00:00:00Z unless --created
  mainline push ./k8s --to oci-layout:./store --revision main@sha1:0123abcd0123abcd0123abcd0123abcd0123abcd --source https://github.com/acme/app
  # straight from git objects (no checkout); same digest as the first line
  mainline push --git . --commit main --path k8s --to oci-layout:./store
  # from a remote, as the channel commands take it
  mainline push --git https://github.com/acme/app.git --commit main --path k8s --to oci-layout:./store

STORE is oci://HOST[:PORT]/REPO (a registry) or oci-layout:PATH (an OCI image-layout directory).
Symlinks are refused (Flux drops them when it unpacks) unless --resolve-symlinks stores their
targets; names with a backslash are refused (Flux rejects the whole artifact).
The artifact is reproducible: the same tree, revision, source and created time give the same
digest on any machine. `created` defaults to the commit time when packing from git.
An empty deploy tree is refused (exit 2) unless --allow-empty: Flux would prune everything.
\"already present\" is reported only after every blob was verified in the store (registry: a
HEAD each; layout: a digest check); a missing or corrupt blob is uploaded again.";

pub const TAG_HELP: &str = "\
Examples:
  mainline tag oci://ghcr.io/acme/app-manifests:sha-0123abcd... latest
  mainline tag oci-layout:./store@sha256:4f1c... latest

The manifest bytes are copied unchanged, so the digest (and every signature on it) is kept.
Cost on a registry: one GET of the source manifest, one PUT, one HEAD to read the tag back.
Artifact tags (sha-<commit>) are immutable: re-pointing one to other bytes is refused (exit 9;
the same bytes again is a no-op), and one is only ever written with a manifest whose revision
records that commit (exit 2 otherwise).";

pub const SIMULATE_HELP: &str = "\
Strategies: deploy-no-heal, heal-on-failure, heal-on-failure-or-cancel, heal-plus-cron,
promote-after-merge (the workflows in docs/simulate-baselines/), mainline (with its git-ref
lock), mainline-unlocked. Each history runs a merge queue with batching, failures, cancels,
force-cancels, timeouts, invalidations, re-enqueues, direct pushes, dying runners, skewed runner
clocks, scheduled/webhook/daemon reconcilers, an operator pin, and a registry and git remote
that answer 5xx, time out, lose responses after writes and hold channel writes past their
writer's lease. Clauses checked: S1-S5, L1 and G (docs/design.md).

Examples:
  mainline simulate --histories 10000 --plot strategies.svg
  mainline simulate -o json --seed 7 --strategy mainline --strategy heal-on-failure
  mainline simulate --seed 7 --history 42 --strategy mainline --trace";
